"""Dossier settings, the data folder and the shared location: one optional YAML file, defaults for everything.

Environment variables, all optional:

* ``SAGE_SYNC_HOME`` — the data folder, private to each Airflow component: the settings file, the SQLite state
  database (``state.db``, when no ``state_url`` is set) and the work folder of the Great Expectations Data Docs
  when the shared location is an object store. Default: ``~/.sage-sync``.
* ``SAGE_SYNC_SHARED_URL`` — the shared location, which every component (each worker, the API server, the
  scheduler's callbacks) must reach: the staging area of each run (``staging/<run>/<entity>/``), the run reports
  (``reports/``), the Great Expectations Data Docs (``data_docs/``), the deadline alerts (``alerts/``), the
  approval decisions (``approvals.json``) and the first-sync matching files (``matching/``). A URL opened as
  Airflow's ``ObjectStoragePath`` — ``file:///srv/sage-sync/shared`` (a folder every host mounts) or
  ``s3://bucket/prefix`` (with the provider of that store installed) — or a plain local folder. The Airflow
  connection of the store is given as ``s3://<conn_id>@bucket/prefix`` or by ``SAGE_SYNC_SHARED_CONN_ID``.
  Default: the data folder itself, which is enough when every task runs on one machine. With workers on several
  hosts it is required: a task must never depend on another task's local disk.
* ``SAGE_SYNC_SHARED_CONN_ID`` — the Airflow connection of the shared location's store (default: none, or the one
  the URL names).
* ``SAGE_SYNC_STATE_URL`` — the state store (a PostgreSQL URL, or ``sqlite:///...``); it takes precedence over
  the settings file's ``state_url``. Only for a deployment without dossiers file: with one, each dossier names its
  own ``state_url`` in that file, and the variable set there is a configuration error (one database would hold
  every dossier's state).
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
      match_auto_confidence: 0.95        # O1: first-sync matches at or above this confidence bind themselves
      resume_after_hours: 24             # M3: a run after this long without one takes Sage as master

A deployment with several dossiers describes them in a dossiers file instead (:mod:`sage_sync.dossiers`); each
dossier then gets its own settings, its own data folder ``$SAGE_SYNC_HOME/dossiers/<name>/`` and its own part of
the shared location, ``<shared>/dossiers/<name>/``.

Secrets never live here: they belong to the Airflow connections ``sage50_default`` and ``ssm_default``.
This module imports nothing heavy, so the DAG file may use it at parse time (it does not read the file then; the
shared location's ``ObjectStoragePath`` is imported when the location is first asked for).
``DAG_ID`` and ``SSM_POOL`` are defined here once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sage_sync.errors import ConfigurationError
from sage_sync.location import Location, as_location
from sage_sync.mapping.registry import entity_names

if TYPE_CHECKING:
    from sage_sync.engine.ownership import Ownership
    from sage_sync.engine.staging import Staging
    from sage_sync.quality.data_docs import DataDocsSite

HOME_ENV = "SAGE_SYNC_HOME"
CONFIG_ENV = "SAGE_SYNC_CONFIG"
SHARED_ENV = "SAGE_SYNC_SHARED_URL"
SHARED_CONN_ENV = "SAGE_SYNC_SHARED_CONN_ID"
STATE_ENV = "SAGE_SYNC_STATE_URL"
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
    "match_auto_confidence",
    "resume_after_hours",
}


def data_home() -> Path:
    """The data folder: ``$SAGE_SYNC_HOME`` or ``~/.sage-sync``."""
    raw = os.environ.get(HOME_ENV) or str(DEFAULT_HOME)
    return Path(raw).expanduser()


def shared_location(home: Path | None = None) -> Location:
    """The shared location: ``$SAGE_SYNC_SHARED_URL``, else the data folder ``home`` (default: ``$SAGE_SYNC_HOME``).

    Raises:
        ConfigurationError: the URL cannot name a location (a query or a fragment in it).
    """
    url = os.environ.get(SHARED_ENV, "").strip()
    if not url:
        return home if home is not None else data_home()
    try:
        return as_location(url, conn_id=os.environ.get(SHARED_CONN_ENV) or None)
    except ValueError as exc:
        raise ConfigurationError(f"{SHARED_ENV}: {exc}, or by {SHARED_CONN_ENV}") from None


@dataclass(frozen=True)
class DossierPlace:
    """Where one dossier of a dossiers file stands among the others (M2): its extId prefix and its branches.

    ``other_prefixes`` are the prefixes of the deployment's other dossiers (an empty prefix owns every extId
    they do not claim); ``claimed_branches`` every branch some dossier lists; ``default`` says whether this
    dossier takes the new companies of branches nobody lists.
    """

    name: str
    connection: str
    prefix: str = ""
    other_prefixes: tuple[str, ...] = ()
    branches: tuple[int, ...] = ()
    claimed_branches: tuple[int, ...] = ()
    default: bool = False
    several: bool = False


@dataclass(frozen=True)
class Settings:
    """The dossier settings plus where its files live: the private data folder and the shared location.

    ``shared_root`` is the dossier's part of the shared location (None: the data folder ``home`` itself).
    """

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
    #: O1: first-sync matches at or above this confidence are bound without a person confirming them.
    match_auto_confidence: float = 0.95
    #: M3: a run coming this many hours after the last one takes Sage as master (0: never by itself).
    resume_after_hours: float = 24.0
    #: The dossier of a deployment with a dossiers file (None: the single dossier of ``settings.yaml``).
    dossier: DossierPlace | None = None
    shared_root: Location | None = None

    @property
    def state_database_url(self) -> str:
        """The state store URL: ``state_url`` or a SQLite file in the data folder."""
        return self.state_url or f"sqlite:///{self.home / 'state.db'}"

    @property
    def shared(self) -> Location:
        """Where the files every task and the API server read live: ``shared_root``, else the data folder."""
        return self.shared_root if self.shared_root is not None else self.home

    def staging(self, run_id: str) -> Staging:
        """The staging area of one run: ``<shared>/staging/<run name>/`` (entity folders created on demand)."""
        from sage_sync.engine.staging import Staging, run_name

        return Staging(self.shared / "staging" / run_name(run_id))

    def approved_staging(self, run_id: str) -> Staging:
        """The staging area of a run's approved deletions pass (A1): ``<shared>/staging/<run name>__approved/``."""
        from sage_sync.engine.staging import Staging, run_name

        return Staging(self.shared / "staging" / f"{run_name(run_id)}__approved")

    @property
    def reports_dir(self) -> Location:
        """Where run reports are written: ``<shared>/reports``."""
        return self.shared / "reports"

    @property
    def data_docs(self) -> DataDocsSite:
        """Where the Great Expectations Data Docs are served from (``<shared>/data_docs``) and built.

        GX builds in a local folder: the served one when the shared location is on a local disk, else the private
        ``<home>/data_docs``, from which the pages are published to the shared location.
        """
        from sage_sync.quality.data_docs import DataDocsSite

        return DataDocsSite.for_location(self.shared / "data_docs", self.home / "data_docs")

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
            "shared": str(self.shared),
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
            "match_auto_confidence": self.match_auto_confidence,
            "resume_after_hours": self.resume_after_hours,
            **(
                {
                    "dossier": self.dossier.name,
                    "connection": self.dossier.connection,
                    "prefix": self.dossier.prefix,
                }
                if self.dossier is not None
                else {}
            ),
        }

    def ownership(self) -> Ownership:
        """Which SSM records belong to this dossier (M2): its extId codec and, with several dossiers, its branches."""
        from sage_sync.engine.ownership import ExtIdCodec, Ownership

        place = self.dossier
        if place is None:
            return Ownership()
        codec = ExtIdCodec(place.prefix, place.other_prefixes)
        if not place.several:
            return Ownership(codec)
        return Ownership(codec, frozenset(place.branches), frozenset(place.claimed_branches), place.default)

    @property
    def matching_dir(self) -> Location:
        """Where first-sync match proposals are written and a person's decisions are read (O1)."""
        return self.shared / "matching"


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


def read_yaml_mapping(target: Path, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: empty mapping); a clear error names the file otherwise."""
    import yaml

    try:
        loaded = yaml.safe_load(target.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{target}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"{target}: cannot be read ({exc.strerror or exc})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigurationError(f"{target}: expected a mapping of {what}, got {type(loaded).__name__}")
    return loaded or {}


def settings_values(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the setting keys of ``raw`` and return them as :class:`Settings` arguments (``where`` names them).

    Raises:
        ConfigurationError: an unknown key or a bad value (the message names ``where``, the key and the limit).
    """
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
    values: dict[str, Any] = {}
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
    if "match_auto_confidence" in raw:
        values["match_auto_confidence"] = _number(raw, "match_auto_confidence", float, 0.0, 1.0, where)
    if "resume_after_hours" in raw:
        values["resume_after_hours"] = _number(raw, "resume_after_hours", float, 0.0, 24.0 * 365, where)
    if raw.get("state_url"):
        values["state_url"] = str(raw["state_url"])
    if conflict:
        values["conflict"] = {str(k): str(v) for k, v in conflict.items()}
    return values


def load_settings(path: str | Path | None = None, home: str | Path | None = None) -> Settings:
    """Read the settings file (``path``, else ``$SAGE_SYNC_CONFIG``, else ``$SAGE_SYNC_HOME/settings.yaml``).

    ``$SAGE_SYNC_STATE_URL`` replaces the file's ``state_url``; the shared location is ``$SAGE_SYNC_SHARED_URL``, else
    the data folder.

    Raises:
        ConfigurationError: the file named explicitly does not exist, is not YAML, has an unknown key or a bad
            value (the message names the file, the key and the limit).
    """
    folder = Path(home).expanduser() if home is not None else data_home()
    named = path or os.environ.get(CONFIG_ENV)
    target = Path(named).expanduser() if named else folder / "settings.yaml"
    raw: dict[str, Any] = {}
    if target.exists():
        raw = read_yaml_mapping(target, "settings")
    elif named:
        raise ConfigurationError(f"settings file {target} (from {CONFIG_ENV} or --config) does not exist")
    values = settings_values(raw, str(target))
    state_url = os.environ.get(STATE_ENV, "").strip()
    if state_url:
        values["state_url"] = state_url
    settings = Settings(
        home=folder,
        source=str(target) if target.exists() else None,
        shared_root=shared_location(folder),
        **values,
    )
    settings.sync_config()  # validates the code template now, with the engine's own message
    return settings
