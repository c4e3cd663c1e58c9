# Airflow image with the project and the ODBC drivers it needs (used by docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends unixodbc libsqliteodbc odbc-postgresql \
 && rm -rf /var/lib/apt/lists/*
COPY --chown=airflow:root . /opt/sage-sync
USER airflow
RUN pip install --no-cache-dir /opt/sage-sync
