"""Sage 50 FR <-> Sage Sales Management, every 15 minutes (G1).

This file only declares and wires: no network, no database, no ``Variable.get()``; the operators import the
engine, pandas, Great Expectations and the hooks inside ``execute()``.

Shape: ``preflight`` (O2 checks, fails fast), ``begin`` (takes the run lease: one run at a time writes), ``match``
(O1 first-sync matching), then one task group per entity of the registry (the mapping files), each
``extract -> validate -> plan -> load -> commit -> approve -> apply_approved``, then ``report`` (which gives the
lease back). ``approve`` skips unless the G4 guard withheld the entity's deletions: then it asks a person in the
UI (count, sample) and waits at most ``approval_timeout_minutes``; ``apply_approved`` applies exactly the approved
set (see :mod:`sage_sync.operators.approval`). An entity waits
for the entities its mapping says it depends on: contacts and invoices wait for the accounts (they attach to accounts' SSM ids); invoices also
wait for the products (their lines reference products). Products run beside the accounts.

Failure modes: retriable errors (network, timeout, 429, 5xx) are retried with exponential backoff; fatal and
configuration errors fail at once (operators raise ``AirflowFailException``). ``load`` has no retry: it commits each
record once SSM confirmed all its writes (``commit`` stores the rest and the counts); a failed write stays
unconfirmed in the state store and the next run re-plans it (G5); a stale plan is never re-sent.

Pool ``ssm_api``: every task that calls the SSM API (extract, load) takes a slot; it bounds the API tasks running
at once. The rate is the key's: the tasks calling with one key share one token bucket at the connection's
``requests_per_second`` (the tenant's limit, 4/s or 13/s), so any number of slots stays under it; in that bucket
the loads other entities wait for (accounts, products) go before the others (contacts, invoices: ADR 0019). Create
the pool with ``airflow pools set ssm_api 2 "SSM API rate limit"`` (``sage-sync demo run`` and the tests do).

Re-runs and backfills are safe: every run reads the current data of both systems and plans against the state
store's committed snapshot, bindings and watermarks (never "as of" the logical date), so an old interval re-syncs
today's data and cannot write older data over newer; catchup is off, ``max_active_runs=1`` keeps this scheduler's
runs apart, and the run lease in the state store keeps any other runner out (a manual ``dags test``, a second
deployment, a zombie retry: docs/adr/0014).

``preflight`` checks connections, ODBC driver, tables and columns, SSM lists and ``Z_`` fields and the media folder;
it fails fast with the table in its log, and says whether the run resumes a dossier that was switched off (M3).
``match`` matches SSM records without extId to Sage records and applies a person's decisions (O1).

Several dossiers (M1): with a dossiers file (``$SAGE_SYNC_DOSSIERS`` or ``$SAGE_SYNC_HOME/dossiers.yaml``) this file
declares one DAG per enabled dossier, ``sage50_ssm_sync__<dossier>``, each with its own connection, settings, data
folder, part of the shared location (staging, reports, alerts) and deadline; all of them share the ``ssm_api`` pool. A dossier whose
entry is wrong still gets its DAG, whose preflight fails with every reason; the others are not affected. Without
the file, the single DAG ``sage50_ssm_sync`` is declared as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, ExceptionRetryPolicy, Param, RetryAction, RetryRule, TaskGroup
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from sage_sync.dossiers import load_dossiers
from sage_sync.mapping.registry import registry
from sage_sync.operators.approval import SageSyncApplyApprovedOperator, SageSyncDeletionApprovalOperator
from sage_sync.operators.begin import SageSyncBeginOperator
from sage_sync.operators.deadline import configured_deadline_minutes
from sage_sync.operators.onboarding import SageSyncMatchOperator, SageSyncPreflightOperator
from sage_sync.operators.report import SageSyncReportOperator
from sage_sync.operators.steps import (
    SageSyncCommitOperator,
    SageSyncExtractOperator,
    SageSyncLoadOperator,
    SageSyncPlanOperator,
    SageSyncValidateOperator,
)
from sage_sync.settings import DAG_ID, SSM_POOL

# Retry only what is transient (ARCHITECTURE habit 4): the project's RetriableSyncError (the hooks raise it for
# connection errors, timeouts, 429 and 5xx once their own backoff is spent), a dropped connection, and a busy state
# database. Anything else (bad data, a bad setting, a bug) fails at once: retrying would not change the outcome.
RETRY_TRANSIENT_ONLY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[
                "sage_sync.errors.RetriableSyncError",
                "requests.exceptions.ConnectionError",
                "requests.exceptions.Timeout",
                "sqlalchemy.exc.OperationalError",
            ],
            action=RetryAction.RETRY,
            reason="transient failure: retry with exponential backoff",
        )
    ],
    default=RetryAction.FAIL,
)

default_args = {
    "owner": "sage-sync",
    "retries": 3,
    "retry_policy": RETRY_TRANSIENT_ONLY,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
    # A guard against a hung call, not a performance target: a first load of a large dossier takes longer than a
    # regular 15-minute cycle, and the deadline alert (not a timeout) is what flags a slow run.
    "execution_timeout": timedelta(minutes=30),
}

# G1: alert when a run is not done 12 minutes after it was queued (3 minutes before the next window). The scheduler
# notices the miss and has the executor run ``run_overdue``, which writes ``<shared>/alerts/<run>.json``,
# marks the run report "deadline missed" and logs a warning (docs/adr/0011). ``SAGE_SYNC_DEADLINE_MINUTES`` sets the
# minutes (decimals allowed: 0.25 is 15 seconds) and 0 turns the alert off: Airflow 3.3.2's ``airflow dags test``
# crashes when it finishes a successful run of a DAG that has a deadline alert (DagRun.update_state looks the alerts
# up by id but gets the in-memory DAG's alert objects), so the demo and the tests that use ``dags test`` set 0; the
# scheduler test (tests/integration/dag/test_scheduler.py) runs with the alert on.
DEADLINE_MINUTES = configured_deadline_minutes()


def deadline(dossier: str | None) -> DeadlineAlert | None:
    """The G1 alert of a DAG (None when off); a dossier's alert files land in its part of the shared location."""
    if DEADLINE_MINUTES <= 0:
        return None
    kwargs: dict[str, object] = {"deadline_minutes": DEADLINE_MINUTES}
    if dossier is not None:
        kwargs["dossier"] = dossier
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=DEADLINE_MINUTES),
        callback=SyncCallback("sage_sync.operators.deadline.run_overdue", kwargs=kwargs),
    )


def build_dag(dag_id: str, *, dossier: str | None = None, sage50_conn_id: str = "sage50_default") -> DAG:
    """The sync DAG of one dossier (``dossier`` None: the single dossier of a deployment without dossiers file)."""
    where = {"dossier": dossier, "sage50_conn_id": sage50_conn_id}
    with DAG(
        dag_id=dag_id,
        description="Sync a Sage 50 FR dossier with Sage Sales Management (customers, prospects, contacts, "
        "products, invoices)" + (f": dossier {dossier}" if dossier else ""),
        schedule="*/15 * * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["sage50", "ssm", "sync", *([f"dossier:{dossier}"] if dossier else [])],
        params={
            "dry_run": Param(
                False, type="boolean", description="G8: plan and report every change, write nothing"
            ),
            "approve_deletions": Param(
                {},
                type="object",
                description="A1: approve the deletions the G4 guard withholds, per entity, by the count (or the "
                'set) the last report gives, e.g. {"accounts": 165}; applied only while the set is still that one',
            ),
            "full_reconcile": Param(
                False,
                type="boolean",
                description="Compare every record of both live sides instead of the changes since the last run "
                "(repairs drift; more API reads)",
            ),
            "match": Param(
                False,
                type="boolean",
                description="O1: match SSM records without extId to Sage records again (proposals in the "
                "dossier's matching/proposals.csv; a person decides in matching/decisions.csv)",
            ),
            "resume": Param(
                False,
                type="boolean",
                description="M3: treat this run as the first one back after the dossier was switched off "
                "(full reconcile, Sage is master, SSM-only fields kept)",
            ),
        },
        deadline=deadline(dossier),
        doc_md=__doc__,
    ) as built:
        preflight = SageSyncPreflightOperator(task_id="preflight", pool=SSM_POOL, **where)
        match = SageSyncMatchOperator(task_id="match", pool=SSM_POOL, **where)
        begin = SageSyncBeginOperator(task_id="begin", **where)
        preflight >> begin >> match
        first: dict[str, SageSyncExtractOperator] = {}
        last: dict[str, SageSyncCommitOperator] = {}
        approved: list[SageSyncApplyApprovedOperator] = []
        for spec in registry():
            entity = spec.name
            with TaskGroup(
                group_id=entity, tooltip=f"extract -> validate -> plan -> load -> commit {entity}"
            ):
                extract = SageSyncExtractOperator(task_id="extract", entity=entity, pool=SSM_POOL, **where)
                validate = SageSyncValidateOperator(task_id="validate", entity=entity, **where)
                plan = SageSyncPlanOperator(task_id="plan", entity=entity, **where)
                load = SageSyncLoadOperator(task_id="load", entity=entity, pool=SSM_POOL, retries=0, **where)
                commit = SageSyncCommitOperator(
                    task_id="commit",
                    entity=entity,
                    outlets=[Asset(name=f"ssm_{entity}", uri=f"sage-sync://ssm/{entity}")],
                    **where,
                )
                # G4: withheld deletions are asked of a person after the commit (other entities do not wait).
                approve = SageSyncDeletionApprovalOperator(
                    task_id="approve", entity=entity, retries=0, **where
                )
                apply_approved = SageSyncApplyApprovedOperator(
                    task_id="apply_approved", entity=entity, pool=SSM_POOL, retries=0, **where
                )
                extract >> validate >> plan >> load >> commit >> approve >> apply_approved
                approved.append(apply_approved)
            first[entity], last[entity] = extract, commit
            match >> extract
            for dependency in spec.depends_on:
                last[dependency] >> extract

        report = SageSyncReportOperator(task_id="report", trigger_rule="all_done", **where)
        approved >> report
    return built


DOSSIERS = load_dossiers()  # reads the small YAML file only (no connection, no database)
if DOSSIERS is None:
    dag = build_dag(DAG_ID)
else:
    for _entry in DOSSIERS:
        if _entry.enabled:  # switched off: no DAG; its first run back takes Sage as master (M3)
            globals()[_entry.dag_id] = build_dag(
                _entry.dag_id, dossier=_entry.name, sage50_conn_id=_entry.connection or "sage50_default"
            )
