"""The five steps of an entity's task group: extract -> validate -> plan -> load -> commit.

Each operator is one call of its step in :mod:`sage_sync.engine.pipeline` plus Airflow glue: the step's context
from the run and the settings, the sides over the connections, the summary returned as XCom and logged. The steps
read and write the run's staging area, so a re-run of one task reads exactly what its upstream task produced.

Safety of re-runs and backfills: every extract reads the *current* state of both systems (never data "as of" the
logical date), the plan is computed against the state store's committed snapshot, bindings and watermarks, and the
load refuses a staged plan once another run has committed the entity since it was made. So re-running an old
interval re-syncs today's data; it never writes older data over newer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from sage_sync.mapping.registry import registry
from sage_sync.operators.base import EntityOperator

if TYPE_CHECKING:
    from sage_sync.hooks.ratelimit import Precedence

log = logging.getLogger(__name__)


class SageSyncExtractOperator(EntityOperator):
    """Read the entity's Sage snapshot (ODBC) and its SSM changes since the watermark (API, by ``dateUpdated``).

    See :mod:`sage_sync.engine.pipeline.extract_step`. C4/K1 codes are reserved here, except in a dry run.
    """

    ui_color = "#d6eaf8"

    def run(self, context: Context) -> dict[str, Any]:
        """Read both sides, stage the snapshot and the plan input; return counts."""
        from sage_sync.engine.pipeline import extract
        from sage_sync.operators.sides import sage_side, ssm_side

        settings = self.settings()
        ctx = self.step_context(context, settings)
        summary = extract(
            ctx,
            sage_side(self.sage50_conn_id, settings),
            ssm_side(self.ssm_conn_id, settings),
            self.open_state(settings),
        )
        log.info("extract %s: %s", self.entity, summary.to_dict())
        return summary.to_dict()


class SageSyncValidateOperator(EntityOperator):
    """Validate the Sage snapshot with the entity's Great Expectations suite (G3, G4).

    See :mod:`sage_sync.engine.pipeline.validate_step`: blocking failures are quarantined, warnings reported, a
    table-level failure stops the entity's load. Data Docs are rebuilt under the shared location's ``data_docs``.
    """

    ui_color = "#fdebd0"

    def run(self, context: Context) -> dict[str, Any]:
        """Validate, take quarantined rows out of the plan input; return the quality counts."""
        from sage_sync.engine.pipeline import validate

        settings = self.settings()
        summary = validate(self.step_context(context, settings), self.open_state(settings))
        if summary.stop_load:
            log.warning("quality %s: load stopped by a table-level failure (see the report)", self.entity)
        log.info("validate %s: %s", self.entity, summary.to_dict())
        return summary.to_dict()


class SageSyncPlanOperator(EntityOperator):
    """Compute the entity's plan (diff, three-way merge, rules) and stage it (no I/O but the staging area)."""

    ui_color = "#e8daef"

    def run(self, context: Context) -> dict[str, Any]:
        """Plan (or stop on a table failure) and stage the plan; return the op counts."""
        from sage_sync.engine.pipeline import plan, staged_plan

        ctx = self.step_context(context, self.settings())
        summary = plan(ctx)
        shown = (
            staged_plan(ctx, commits=False).render()
            if summary.ops <= 50
            else "(more than 50 ops: see the report)"
        )
        log.info("plan %s: %s\n%s", self.entity, summary.to_dict(), shown)
        return summary.to_dict()


class SageSyncLoadOperator(EntityOperator):
    """Apply the staged plan: Sage write-back first, then SSM bulk writes with per-item outcomes (G5, G6).

    A dry run (G8) and an empty plan open no connection and make no call. The DAG gives this task no retries: a
    failed write is left unconfirmed and re-planned by the next run, never re-sent blindly from a stale plan.
    The load of an entity others wait for (accounts, products) leads in the key's rate limit, the load of one
    nothing waits for (contacts, invoices) yields to it: see :attr:`api_precedence`.
    """

    ui_color = "#d5f5e3"

    @property
    def api_precedence(self) -> Precedence:
        """``lead`` when another entity of the registry depends on this one, else ``yield`` (ADR 0019, decision 5).

        Loads running at once share the key's rate: the one the others' extracts wait for then ends first, and
        the key is never idle while either has calls to make.
        """
        return "lead" if any(self.entity in spec.depends_on for spec in registry()) else "yield"

    def run(self, context: Context) -> dict[str, Any]:
        """Apply the staged plan (unless dry run or empty); return the outcome counts."""
        from sage_sync.engine.pipeline import load
        from sage_sync.engine.pipeline.load_step import failures
        from sage_sync.operators.sides import sage_side, ssm_side

        settings = self.settings()
        ctx = self.step_context(context, settings)
        summary = load(
            ctx,
            sage_side(self.sage50_conn_id, settings),
            ssm_side(self.ssm_conn_id, settings, self.api_precedence),
            self.open_state(settings),
        )
        for line in failures(ctx) if summary.failed else []:
            log.warning("%s", line)
        log.info("load %s: %s", self.entity, summary.to_dict())
        return summary.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the entity's Sage tables in, its SSM endpoints out (and back for two-way entities)."""
        from airflow.providers.openlineage.extractors import OperatorLineage
        from airflow.sdk import BaseHook
        from openlineage.client.event_v2 import Dataset

        from sage_sync.lineage import load_lineage, sage_namespace, ssm_namespace

        sage = BaseHook.get_connection(self.sage50_conn_id)
        ssm = BaseHook.get_connection(self.ssm_conn_id)
        inputs, outputs = load_lineage(
            self.entity, sage_namespace(sage.host, sage.port, sage.schema), ssm_namespace(ssm.host or "")
        )
        return OperatorLineage(
            inputs=[Dataset(namespace=d.namespace, name=d.name) for d in inputs],
            outputs=[Dataset(namespace=d.namespace, name=d.name) for d in outputs],
        )


class SageSyncCommitOperator(EntityOperator):
    """Advance the state for confirmed records only (snapshot, bindings, watermark, quarantine, ledger; G5, G7).

    In a dry run nothing is recorded. The task's outlet is the entity's Asset, so downstream DAGs can be
    scheduled on "customers synced".
    """

    ui_color = "#abebc6"

    def run(self, context: Context) -> dict[str, Any]:
        """Record what the load confirmed; return the G7 counts."""
        from sage_sync.engine.pipeline import commit

        settings = self.settings()
        summary = commit(self.step_context(context, settings), self.open_state(settings))
        log.info("commit %s: %s", self.entity, summary.to_dict())
        return summary.to_dict()
