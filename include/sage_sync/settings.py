"""Dossier settings and the data folder: one optional YAML file, defaults for everything.

Two environment variables, both optional:

* ``SAGE_SYNC_HOME`` — the data folder: the state database (``state.db``), the staging area of each run
  (``staging/<run>/<entity>/``), the run reports (``reports/``) and the Great Expectations Data Docs
  (``data_docs/``). Default: ``~/.sage-sync``.
* ``SAGE_SYNC_CONFIG`` — the dossier settings file (YAML). Default: ``$SAGE_SYNC_HOME/settings.yaml`` when it
  exists, otherwise built-in defaults. Example::

      media_folder: /srv/sage/media      # where AR_Photo paths are resolved (D3)
      code_template: "C{ssm_id:06d}"     # Sage code of a company created in SSM (C4): {ssm_id} or {seq}
      admin_user_id: 1                   # salesRepId1 of accounts the sync creates (C5)
      branch_id: 1                       # branchId of accounts the sync creates
      conflict: {accounts: sage, contacts: sage}   # who wins a G2 conflict, per entity (sage | ssm)
      guard_ratio: 0.5                   # G4: largest share of a snapshot one run may delete
      guard_minimum: 10                  # G4: deletions always allowed (small dossiers)
      approval_timeout_minutes: 10       # G4: how long a run waits for a person to approve withheld
                                         # deletions (0: never ask; approve by the run's conf only)
      overlap_seconds: 120               # SSM incremental reads start this much before the watermark
      max_quantity: 1000000              # invoice lines above these are reported as warnings (G3)
      max_unit_price: 10000000
      state_url: sqlite:////srv/sage-sync/state.db   # or a PostgreSQL URL

Secrets never live here: they belong to the Airflow connections ``sage50_default`` and ``ssm_default``.
This module imports nothing heavy, so the DAG file may use it at parse time (it does not read the file then).
``DAG_ID`` and ``SSM_POOL`` are defined here once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.registry import entity_names

if TYPE_CHECKING:
    from sage_sync.engine.staging import Staging

HOME_ENV = "SAGE_SYNC_HOME"
CONFIG_ENV = "SAGE_SYNC_CONFIG"
DEFAULT_HOME = Path("~/.sage-sync")

#: The DAG of a deployment, and the pool that holds every task calling the SSM API (the tenant's rate limit).
DAG_ID = "sage50_ssm_sync"
SSM_POOL = "ssm_api"

_KNOWN_KEYS = {
    "media_folder",
    "code_template",
    "admin_user_id",
    "branch_id",
    "conflict",
    "guard_ratio",
    "guard_minimum",
    "approval_timeout_minutes",
    "overlap_seconds",
    "state_url",
    "max_quantity",
    "max_unit_price",
}


def data_home() -> Path:
    """The data folder: ``$SAGE_SYNC_HOME`` or ``~/.sage-sync``."""
    raw = os.environ.get(HOME_ENV) or str(DEFAULT_HOME)
    return Path(raw).expanduser()


@dataclass(frozen=True)
class Settings:
    """The dossier settings plus the data folder layout."""

    home: Path
    media_folder: Path | None = None
    code_template: str = "C{ssm_id:06d}"
    admin_user_id: int = 1
    branch_id: int = 1
    conflict: dict[str, str] = field(default_factory=dict)
    guard_ratio: float = 0.5
    guard_minimum: int = 10
    approval_timeout_minutes: float = 10.0
    overlap_seconds: int = 120
    state_url: str | None = None
    max_quantity: float = 1_000_000.0
    max_unit_price: float = 10_000_000.0
    source: str | None = None

    @property
    def state_database_url(self) -> str:
        """The state store URL: ``state_url`` or a SQLite file in the data folder."""
        return self.state_url or f"sqlite:///{self.home / 'state.db'}"

    def staging(self, run_id: str) -> Staging:
        """The staging area of one run: ``<home>/staging/<run name>/`` (entity folders created on demand)."""
        from sage_sync.engine.staging import Staging, run_name

        return Staging(self.home / "staging" / run_name(run_id))

    @property
    def reports_dir(self) -> Path:
        """Where run reports are written."""
        return self.home / "reports"

    @property
    def data_docs_dir(self) -> Path:
        """Where the Great Expectations Data Docs are built."""
        return self.home / "data_docs"

    def sync_config(self) -> Any:
        """The engine's :class:`~sage_sync.engine.config.SyncConfig` built from these settings."""
        from sage_sync.engine.config import Guard, SyncConfig

        base = SyncConfig.from_mappings()
        guards = {e: Guard(ratio=self.guard_ratio, minimum=self.guard_minimum) for e in entity_names()}
        conflict = {**base.conflict, **self.conflict}
        return SyncConfig(
            admin_user_id=self.admin_user_id,
            default_branch_id=self.branch_id,
            code_template=self.code_template,
            conflict=conflict,  # type: ignore[arg-type]  # validated by SyncConfig itself
            guards=guards,
            overlap_seconds=self.overlap_seconds,
            max_quantity=self.max_quantity,
            max_unit_price=self.max_unit_price,
        )

    def to_public_dict(self) -> dict[str, Any]:
        """The settings as shown in a run report (nothing secret lives here; the state URL password is hidden)."""
        url = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.state_database_url)
        return {
            "home": str(self.home),
            "source": self.source,
            "media_folder": str(self.media_folder) if self.media_folder else None,
            "code_template": self.code_template,
            "admin_user_id": self.admin_user_id,
            "branch_id": self.branch_id,
            "conflict": dict(self.conflict),
            "guard_ratio": self.guard_ratio,
            "guard_minimum": self.guard_minimum,
            "approval_timeout_minutes": self.approval_timeout_minutes,
            "overlap_seconds": self.overlap_seconds,
            "max_quantity": self.max_quantity,
            "max_unit_price": self.max_unit_price,
            "state_url": url,
        }


def _number(raw: dict[str, Any], name: str, kind: type, low: float, high: float | None, where: str) -> Any:
    value = raw[name]
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: {name} is {value!r}; expected a {kind.__name__}") from None
    if number < low or (high is not None and number > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{where}: {name} is {number}; expected {limit}")
    return number


def load_settings(path: str | Path | None = None, home: str | Path | None = None) -> Settings:
    """Read the settings file (``path``, else ``$SAGE_SYNC_CONFIG``, else ``$SAGE_SYNC_HOME/settings.yaml``).

    Raises:
        ConfigurationError: the file named explicitly does not exist, is not YAML, has an unknown key or a bad
            value (the message names the file, the key and the limit).
    """
    folder = Path(home).expanduser() if home is not None else data_home()
    named = path or os.environ.get(CONFIG_ENV)
    target = Path(named).expanduser() if named else folder / "settings.yaml"
    raw: dict[str, Any] = {}
    if target.exists():
        import yaml

        try:
            loaded = yaml.safe_load(target.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{target}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigurationError(f"{target}: expected a mapping of settings, got {type(loaded).__name__}")
        raw = loaded or {}
    elif named:
        raise ConfigurationError(f"settings file {target} (from {CONFIG_ENV} or --config) does not exist")
    where = str(target)
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {sorted(_KNOWN_KEYS)}"
        )
    conflict = raw.get("conflict") or {}
    if not isinstance(conflict, dict):
        raise ConfigurationError(f"{where}: conflict must map entity -> sage|ssm, got {conflict!r}")
    for entity, winner in conflict.items():
        if entity not in entity_names() or winner not in ("sage", "ssm"):
            raise ConfigurationError(
                f"{where}: conflict.{entity} = {winner!r}; expected an entity of {entity_names()} -> sage or ssm"
            )
    values: dict[str, Any] = {"home": folder, "source": where if target.exists() else None}
    if raw.get("media_folder"):
        values["media_folder"] = Path(str(raw["media_folder"])).expanduser()
    if "code_template" in raw:
        values["code_template"] = str(raw["code_template"])
    if "admin_user_id" in raw:
        values["admin_user_id"] = _number(raw, "admin_user_id", int, 1, None, where)
    if "branch_id" in raw:
        values["branch_id"] = _number(raw, "branch_id", int, 1, None, where)
    if "guard_ratio" in raw:
        values["guard_ratio"] = _number(raw, "guard_ratio", float, 0.0, 1.0, where)
    if "guard_minimum" in raw:
        values["guard_minimum"] = _number(raw, "guard_minimum", int, 0, None, where)
    if "approval_timeout_minutes" in raw:
        values["approval_timeout_minutes"] = _number(raw, "approval_timeout_minutes", float, 0.0, 14.0, where)
    if "overlap_seconds" in raw:
        values["overlap_seconds"] = _number(raw, "overlap_seconds", int, 0, 86400, where)
    for limit in ("max_quantity", "max_unit_price"):
        if limit in raw:
            values[limit] = _number(raw, limit, float, 0.0, None, where)
    if raw.get("state_url"):
        values["state_url"] = str(raw["state_url"])
    values["conflict"] = {str(k): str(v) for k, v in conflict.items()}
    settings = Settings(**values)
    settings.sync_config()  # validates the code template now, with the engine's own message
    return settings
