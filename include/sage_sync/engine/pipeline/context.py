"""What every step of an entity's pipeline is given: the run, the entity, the staging area, the settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.staging import Staging, run_name
from sage_sync.errors import ConfigurationError
from sage_sync.mapping.registry import EntitySpec, registry

if TYPE_CHECKING:
    from sage_sync.quality.data_docs import DataDocsSite

__all__ = ["RunFlags", "StepContext", "param_flag", "run_name"]


@dataclass(frozen=True)
class RunFlags:
    """How a run was started.

    ``dry_run`` plans and writes nothing (G8); ``full_reconcile`` compares both live sides instead of the changes
    since the last run (drift repair, ADR 0010); ``sage_master`` is the first run back of a dossier that was
    switched off (M3): a full reconcile in which Sage's values win every synced field.
    """

    dry_run: bool = False
    full_reconcile: bool = False
    #: A1: entity -> the approved deletion count (or set fingerprint) of deletions the G4 guard withholds.
    approve_deletions: dict[str, str] = field(default_factory=dict)
    sage_master: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> RunFlags:
        """The flags from a run's parameters (booleans, or text such as "true" from a form).

        Raises:
            ConfigurationError: ``approve_deletions`` is not a mapping of known entities to a count or a set.
        """
        params = params or {}
        return cls(
            param_flag(params.get("dry_run")),
            param_flag(params.get("full_reconcile")),
            _approvals(params.get("approve_deletions")),
        ).resumed(param_flag(params.get("resume")))

    def resumed(self, resume: bool = True) -> RunFlags:
        """These flags for a resume run (M3: full reconcile, Sage master) when ``resume``, else unchanged."""
        return replace(self, full_reconcile=True, sage_master=True) if resume else self


def _approvals(raw: Any) -> dict[str, str]:
    if raw in (None, "", {}):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigurationError(
                f"approve_deletions is {raw!r}; expected a mapping entity -> count"
            ) from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"approve_deletions is {raw!r}; expected a mapping entity -> count")
    out: dict[str, str] = {}
    for entity, approval in raw.items():
        if entity not in registry() or isinstance(approval, bool) or not str(approval).strip():
            raise ConfigurationError(
                f"approve_deletions.{entity} = {approval!r}: expected an entity of {registry().names} and the "
                "count (or set fingerprint) of deletions the report says are withheld"
            )
        out[str(entity)] = str(approval).strip()
    return out


def param_flag(value: Any) -> bool:
    """A run parameter as a boolean: booleans as they are, text such as "true" or "on" from a form."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class StepContext:
    """One entity's step in one run.

    ``run_id`` is the run's own id (Airflow's run id, or one :func:`~.run.run_once` makes); the ledger, the staging
    folder and the report use its :func:`run_name`. ``data_docs`` is where Great Expectations builds its Data Docs
    and where they are served (None: not built).
    """

    run_id: str
    entity: EntitySpec
    staging: Staging
    config: SyncConfig = field(default_factory=SyncConfig.from_mappings)
    flags: RunFlags = RunFlags()
    data_docs: DataDocsSite | None = None

    @property
    def name(self) -> str:
        """The entity's name."""
        return self.entity.name

    @property
    def run_name(self) -> str:
        """The run's file-safe name."""
        return run_name(self.run_id)

    @classmethod
    def of(cls, run_id: str, entity: str, staging: Staging, **kwargs: Any) -> StepContext:
        """The context of ``entity`` (a name of the entity registry)."""
        return cls(run_id, registry()[entity], staging, **kwargs)
