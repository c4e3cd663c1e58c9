"""Onboarding a deployment: first-sync matching onto a tenant in use (O1) and the preflight checks (O2).

No Airflow import here: the DAG's tasks and the ``sage-sync match`` / ``sage-sync doctor`` commands call it.
"""
