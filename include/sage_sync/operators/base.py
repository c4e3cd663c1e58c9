"""What every sync operator shares: keyword-only settings, the data folder, the error mapping at the boundary.

The project's exception tree meets Airflow here (ARCHITECTURE habit 10): ``ConfigurationError`` and
``FatalSyncError`` fail the task at once (``AirflowFailException``, no retry: retrying does not fix bad data or a
bad setting); ``RetriableSyncError`` (network, timeout, 429, 5xx) propagates unchanged so the task's retries
with exponential backoff apply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from sage_sync.errors import ConfigurationError, FatalSyncError, RetriableSyncError
from sage_sync.mapping.registry import registry

if TYPE_CHECKING:
    from sage_sync.engine.pipeline import RunFlags, StepContext
    from sage_sync.engine.state import StateStore
    from sage_sync.settings import Settings

log = logging.getLogger(__name__)

#: The run-wide staging file of the preflight task: whether this run resumes a dossier switched off (M3), and why.
RESUME_FILE = "resume.json"


class SageSyncBaseOperator(BaseOperator):
    """Base of the sync operators: stores and validates keyword-only arguments; ``execute`` maps errors.

    Args:
        sage50_conn_id: the Sage 50 FR ODBC connection.
        ssm_conn_id: the Sage Sales Management HTTP connection.
        config_path: the dossier settings file (default: ``$SAGE_SYNC_CONFIG``, see :mod:`sage_sync.settings`).
        dossier: the dossier of the deployment's dossiers file this task syncs (None: the single dossier of
            ``settings.yaml``); its settings and data folder then come from that file (:mod:`sage_sync.dossiers`).
    """

    template_fields: Sequence[str] = ("sage50_conn_id", "ssm_conn_id", "config_path")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        sage50_conn_id: str = "sage50_default",
        ssm_conn_id: str = "ssm_default",
        config_path: str | None = None,
        dossier: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sage50_conn_id = sage50_conn_id
        self.ssm_conn_id = ssm_conn_id
        self.config_path = config_path
        self.dossier = dossier

    # --- helpers for subclasses --------------------------------------------------------------------------

    def settings(self) -> Settings:
        """The dossier settings (read at run time, never at parse time): its dossiers-file entry, or settings.yaml."""
        if self.dossier is not None:
            from sage_sync.dossiers import dossier_settings

            return dossier_settings(self.dossier)
        from sage_sync.settings import load_settings

        return load_settings(self.config_path)

    @staticmethod
    def open_state(settings: Settings) -> StateStore:
        """The state store, migrated (safe on every start)."""
        from sage_sync.engine.state import StateStore

        settings.home.mkdir(parents=True, exist_ok=True)
        state = StateStore(settings.state_database_url)
        state.migrate()
        return state

    # --- the boundary ------------------------------------------------------------------------------------

    @staticmethod
    def flags(context: Context, settings: Settings | None = None) -> RunFlags:
        """The run's ``dry_run`` (G8), ``full_reconcile`` and ``resume`` params, and the preflight's M3 verdict.

        The preflight task stages ``resume.json`` when it finds the dossier back from being switched off (M3), so
        every task of the run sees the same flags.
        """
        from sage_sync.engine.pipeline import RunFlags

        flags = RunFlags.from_params(dict(context.get("params") or {}))
        if settings is None:
            return flags
        staged = settings.staging(str(context["run_id"])).read_json_or_none(None, RESUME_FILE) or {}
        return flags.resumed(bool(staged.get("resume")))

    def execute(self, context: Context) -> Any:
        """Run :meth:`run` and map the project's errors to Airflow's failure modes."""
        try:
            return self.run(context)
        except (ConfigurationError, FatalSyncError) as exc:
            # Retrying will not help: fail now, with the precise reason in the task log.
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        except RetriableSyncError as exc:
            log.warning("transient failure, Airflow will retry this task: %s", exc)
            raise
        finally:
            from sage_sync.engine.heap import return_freed_memory

            return_freed_memory()  # the next task may run in this process (``airflow dags test``)

    def run(self, context: Context) -> Any:
        """The task's work (subclasses)."""
        raise NotImplementedError


class EntityOperator(SageSyncBaseOperator):
    """A step of one entity's task group: builds the step's context, then calls the engine's step function.

    Args:
        entity: an entity of the registry (``accounts``, ``contacts``, ``products``, ``invoices``).
    """

    def __init__(self, *, entity: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if entity not in registry():
            raise ValueError(f"entity is {entity!r}; expected one of {', '.join(registry().names)}")
        self.entity = entity

    def step_context(self, context: Context, settings: Settings) -> StepContext:
        """The step's context: this run, this entity, the run's staging area, the settings, the run's flags."""
        from sage_sync.engine.pipeline import StepContext

        return StepContext(
            run_id=str(context["run_id"]),
            entity=registry()[self.entity],
            staging=settings.staging(str(context["run_id"])),
            config=settings.sync_config(),
            flags=self.flags(context, settings),
            data_docs=settings.data_docs,
        )
