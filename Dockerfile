# Airflow image with the project (its Celery provider, Redis and PostgreSQL clients come with it) and the ODBC
# drivers it needs; used by every service of docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends unixodbc libsqliteodbc odbc-postgresql \
 && rm -rf /var/lib/apt/lists/*
# SAGE_SYNC_HOME (private to each container) and the folders docker-compose.yml mounts volumes on: a new named
# volume takes the owner of the folder it covers, so all of them belong to the airflow user.
RUN mkdir -p /opt/sage-sync/home /opt/sage-sync/shared /opt/sage-sync/dossier /opt/sage-sync/simulator \
 && chown -R airflow:root /opt/sage-sync
USER airflow
# Only what the package is built from: not the working folders of the demo, the native stack or the tests.
COPY --chown=airflow:root pyproject.toml README.md /opt/sage-sync/
COPY --chown=airflow:root include /opt/sage-sync/include
COPY --chown=airflow:root tools /opt/sage-sync/tools
COPY --chown=airflow:root dags /opt/sage-sync/dags
COPY --chown=airflow:root plugins /opt/sage-sync/plugins
RUN pip install --no-cache-dir "apache-airflow==3.3.2" /opt/sage-sync
