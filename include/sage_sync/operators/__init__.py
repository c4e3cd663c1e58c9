"""Airflow operators: one per step of an entity's task group, plus the run report.

Importing this package (as the DAG file does at parse time) imports only the Airflow SDK: pandas, the engine,
the hooks and Great Expectations are imported inside ``execute()``.
"""
