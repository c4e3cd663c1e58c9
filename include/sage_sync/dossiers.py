"""Several Sage dossiers synced with one SSM tenant (M1, M2): the dossiers file.

Optional: without it the deployment has one dossier (connection ``sage50_default``, settings from
``settings.yaml``, DAG ``sage50_ssm_sync``). With it, every dossier gets its own DAG ``sage50_ssm_sync__<name>``,
its own data folder ``$SAGE_SYNC_HOME/dossiers/<name>/`` (SQLite state database, Data Docs work folder), its own
part of the shared location ``<shared>/dossiers/<name>/`` (staging, reports, Data Docs, alerts, approvals,
matching files: see :mod:`sage_sync.settings`) and its own settings; all DAGs share the ``ssm_api`` pool, so
together they stay under the tenant's rate limit. Each dossier names its own ``state_url`` here:
``$SAGE_SYNC_STATE_URL`` is refused with a dossiers file. The file is ``$SAGE_SYNC_DOSSIERS``, else
``$SAGE_SYNC_HOME/dossiers.yaml``::

    default_dossier: lyon            # takes new "Client" companies of branches no dossier lists (C4, M2)
    defaults:                        # settings every dossier starts from (keys of settings.yaml)
      admin_user_id: 1
    dossiers:
      lyon:
        connection: sage50_lyon      # the Airflow ODBC connection of this dossier
        prefix: "LY-"                # its SSM extIds: LY-<CT_Num>, LY-<AR_Ref>... (M2)
        branches: [1]                # SSM branches whose new companies belong to it
        media_folder: /srv/sage/lyon/media
        code_template: "L{ssm_id:06d}"
      paris:
        connection: sage50_paris
        prefix: "PA-"
        branches: [2, 3]
        enabled: false               # switched off: no DAG; its first run back takes Sage as master (M3)

Each entry is checked on its own: a bad entry (unknown key, bad value, a prefix, connection, branch or state
database another entry also claims) makes that dossier's DAG fail at its first task with every reason, and the
other dossiers run as usual. A file that is not YAML, or not this shape, is an error for the whole deployment.
This module reads only the YAML file, so the DAG file may use it at parse time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sage_sync.errors import ConfigurationError
from sage_sync.location import Location
from sage_sync.settings import (
    DAG_ID,
    STATE_ENV,
    DossierPlace,
    Settings,
    data_home,
    settings_values,
    shared_location,
)

DOSSIERS_ENV = "SAGE_SYNC_DOSSIERS"
#: Longest extId prefix: a product's extId (AR_Ref, up to 19 characters) must stay within the API's 30.
MAX_PREFIX = 10

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PREFIX = re.compile(r"^[A-Za-z0-9._:-]*$")
_CONNECTION = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_TOP_KEYS = ("dossiers", "defaults", "default_dossier")
_OWN_KEYS = ("connection", "prefix", "branches", "enabled")


def dossiers_file() -> Path:
    """Where the dossiers file is looked for: ``$SAGE_SYNC_DOSSIERS``, else ``$SAGE_SYNC_HOME/dossiers.yaml``."""
    named = os.environ.get(DOSSIERS_ENV)
    return Path(named).expanduser() if named else data_home() / "dossiers.yaml"


def dossier_dag_id(name: str) -> str:
    """The DAG of dossier ``name``: ``sage50_ssm_sync__<name>``."""
    return f"{DAG_ID}__{name}"


def dossier_home(name: str, home: Path | None = None) -> Path:
    """The data folder of dossier ``name``: ``<home>/dossiers/<name>`` (home: ``$SAGE_SYNC_HOME``)."""
    return (home or data_home()) / "dossiers" / name


def dossier_shared(name: str, shared: Location | None = None) -> Location:
    """The part of the shared location of dossier ``name``: ``<shared>/dossiers/<name>``.

    ``shared`` defaults to the deployment's shared location (``$SAGE_SYNC_SHARED_URL``, else ``$SAGE_SYNC_HOME``).
    """
    return (shared if shared is not None else shared_location()) / "dossiers" / name


@dataclass(frozen=True)
class Dossier:
    """One entry of the dossiers file, as written (checked or not: see :attr:`DossierSet.problems`)."""

    name: str
    connection: str
    prefix: str = ""
    branches: tuple[int, ...] = ()
    enabled: bool = True
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def dag_id(self) -> str:
        """The dossier's DAG id."""
        return dossier_dag_id(self.name)


@dataclass(frozen=True)
class DossierSet:
    """Every entry of a dossiers file, and what is wrong with each (an entry without problems may sync)."""

    path: Path
    entries: tuple[Dossier, ...]
    problems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: str | None = None

    def __iter__(self) -> Iterator[Dossier]:
        return iter(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        """Every entry's name, in file order."""
        return tuple(d.name for d in self.entries)

    def get(self, name: str) -> Dossier:
        """The entry called ``name``.

        Raises:
            ConfigurationError: the file has no such dossier.
        """
        for dossier in self.entries:
            if dossier.name == name:
                return dossier
        raise ConfigurationError(
            f"{self.path}: no dossier {name!r}; the file lists {', '.join(self.names) or 'none'}"
        )

    def check(self, name: str) -> Dossier:
        """The entry ``name`` when it has no problem.

        Raises:
            ConfigurationError: every problem of the entry, naming it (nothing may be synced for it).
        """
        dossier = self.get(name)
        found = self.problems.get(name)
        if found:
            listed = "\n".join(f"  - {p}" for p in found)
            raise ConfigurationError(
                f"{self.path}: dossier {name!r} is not valid, nothing is synced for it until it is fixed:\n{listed}"
            )
        return dossier

    def place(self, name: str) -> DossierPlace:
        """Where dossier ``name`` stands among the others (its prefix, branches, the other prefixes)."""
        dossier = self.get(name)
        others = tuple(d.prefix for d in self.entries if d.name != name)
        claimed = tuple(sorted({b for d in self.entries for b in d.branches}))
        return DossierPlace(
            name=dossier.name,
            connection=dossier.connection,
            prefix=dossier.prefix,
            other_prefixes=others,
            branches=dossier.branches,
            claimed_branches=claimed,
            default=self.default == name,
            several=len(self.entries) > 1,
        )

    def settings(self, name: str, home: Path | None = None) -> Settings:
        """The settings of dossier ``name`` (checked first: see :meth:`check`), with its own folders.

        Its data folder is ``<home>/dossiers/<name>``, its part of the shared location ``<shared>/dossiers/<name>``.

        Raises:
            ConfigurationError: the entry has problems, or ``$SAGE_SYNC_STATE_URL`` is set (each dossier names its
                own ``state_url`` in the dossiers file: one URL for every dossier would mix their states).
        """
        dossier = self.check(name)
        if os.environ.get(STATE_ENV, "").strip():
            raise ConfigurationError(
                f"{STATE_ENV} is set, but the dossiers file {self.path} is in use: each dossier names its own "
                f"state database (`state_url` in its entry); unset {STATE_ENV}"
            )
        values = dict(dossier.values)
        if "branch_id" not in values and dossier.branches:
            values["branch_id"] = dossier.branches[
                0
            ]  # accounts the sync creates land in the dossier's branch
        return Settings(
            home=dossier_home(name, home),
            source=str(self.path),
            dossier=self.place(name),
            shared_root=dossier_shared(name, shared_location(home)),
            **values,
        )


class _UniqueKeyLoader:
    """A YAML safe loader that refuses a key written twice in one mapping (a dossier listed twice)."""

    @staticmethod
    def load(text: str) -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{key!r} is written twice", key_node.start_mark
                    )
                seen.add(key)
            return loader.construct_mapping(node, deep)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = _UniqueKeyLoader.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"dossiers file {path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"dossiers file {path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(
            f"dossiers file {path}: expected a mapping with `dossiers:` (one entry per dossier), "
            f"got {type(loaded).__name__}"
        )
    unknown = sorted(str(k) for k in loaded if k not in _TOP_KEYS)
    if unknown:
        raise ConfigurationError(
            f"dossiers file {path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_TOP_KEYS)}"
        )
    if not isinstance(loaded.get("dossiers"), dict) or not loaded["dossiers"]:
        raise ConfigurationError(
            f"dossiers file {path}: `dossiers:` must map each dossier's name to its settings "
            "(connection, prefix, branches...)"
        )
    if not isinstance(loaded.get("defaults") or {}, dict):
        raise ConfigurationError(f"dossiers file {path}: `defaults:` must be a mapping of settings")
    return loaded


def _entry(name: Any, raw: Any, defaults: dict[str, Any]) -> tuple[Dossier, list[str]]:
    """One entry and its own problems (the checks between entries come after)."""
    problems: list[str] = []
    label = str(name)
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(
            f"the name {label!r} must be 1-40 lower-case letters, digits or _ starting with a letter "
            f"(it names the DAG {DAG_ID}__<name> and the data folder dossiers/<name>)"
        )
        label = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")[:40] or "unnamed"
        if not label[0].isalpha():
            label = f"d_{label}"[:40]
    if not isinstance(raw, dict):
        problems.append(f"expected a mapping (connection, prefix, branches...), got {type(raw).__name__}")
        return Dossier(label, ""), problems
    connection = raw.get("connection")
    if not isinstance(connection, str) or not _CONNECTION.match(connection):
        problems.append(
            "`connection` must name the dossier's Airflow ODBC connection (letters, digits, _ . -), "
            f"got {connection!r}"
        )
        connection = ""
    prefix = raw.get("prefix", "")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix) or len(prefix) > MAX_PREFIX:
        problems.append(
            f"`prefix` must be text of at most {MAX_PREFIX} letters, digits or . _ : - (it starts every SSM "
            f"extId of the dossier), got {prefix!r}"
        )
        prefix = str(prefix)[:MAX_PREFIX] if isinstance(prefix, str) else ""
    branches_raw = raw.get("branches") or []
    branches: list[int] = []
    if not isinstance(branches_raw, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in branches_raw
    ):
        problems.append(
            f"`branches` must be a list of SSM branch ids (positive integers), got {branches_raw!r}"
        )
    else:
        branches = [int(b) for b in branches_raw]
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"`enabled` must be true or false, got {enabled!r}")
        enabled = False
    settings_part = {**defaults, **{k: v for k, v in raw.items() if k not in _OWN_KEYS}}
    values: dict[str, Any] = {}
    try:
        values = settings_values(settings_part, "settings")
        Settings(home=Path("."), **values).sync_config()  # the code template, with the engine's message
    except ConfigurationError as exc:
        problems.append(str(exc))
    dossier = Dossier(label, connection, prefix, tuple(branches), enabled, values)
    return dossier, problems


def _shared(values: dict[str, Any], what: str) -> dict[str, list[str]]:
    """Problems of entries sharing a value that must be their own (``values``: entry name -> its value)."""
    by_value: dict[Any, list[str]] = {}
    for name, value in values.items():
        if value is not None and value != "":
            by_value.setdefault(value, []).append(name)
    out: dict[str, list[str]] = {}
    for value, names in by_value.items():
        if len(names) > 1:
            for name in names:
                others = ", ".join(repr(n) for n in names if n != name)
                out.setdefault(name, []).append(f"{what} {value!r} is also used by dossier {others}")
    return out


def _between(entries: list[Dossier]) -> dict[str, list[str]]:
    """What two entries may not share: a prefix (M2), a connection, a branch (C4), a state database."""
    out: dict[str, list[str]] = {}

    def add(found: dict[str, list[str]]) -> None:
        for name, items in found.items():
            out.setdefault(name, []).extend(items)

    several = len(entries) > 1
    add(_shared({d.name: d.prefix for d in entries}, "prefix"))
    for d in entries:
        for other in entries:
            distinct = d.name != other.name and d.prefix and other.prefix and d.prefix != other.prefix
            if distinct and other.prefix.startswith(d.prefix):
                out.setdefault(d.name, []).append(
                    f"prefix {d.prefix!r} starts the prefix {other.prefix!r} of dossier {other.name!r}: "
                    "their extIds could not be told apart (M2)"
                )
                out.setdefault(other.name, []).append(
                    f"prefix {other.prefix!r} starts with the prefix {d.prefix!r} of dossier {d.name!r}: "
                    "their extIds could not be told apart (M2)"
                )
    empty = [d.name for d in entries if not d.prefix]
    if several and len(empty) > 1:
        for name in empty:
            others = ", ".join(repr(n) for n in empty if n != name)
            out.setdefault(name, []).append(
                f"no prefix, like dossier {others}: with several dossiers at most one may keep bare Sage keys "
                "as extIds (M2)"
            )
    add(_shared({d.name: d.connection for d in entries}, "connection"))
    add(_shared({d.name: d.values.get("state_url") for d in entries}, "state_url"))
    owners: dict[int, list[str]] = {}
    for d in entries:
        for branch in set(d.branches):
            owners.setdefault(branch, []).append(d.name)
    for branch, names in owners.items():
        if len(names) > 1:
            for name in names:
                others = ", ".join(repr(n) for n in names if n != name)
                out.setdefault(name, []).append(
                    f"branch {branch} is also listed by dossier {others}: a company created in SSM must go "
                    "to one dossier only (M2)"
                )
    return out


def parse_dossiers(path: Path) -> DossierSet:
    """Read and check the dossiers file ``path`` (see the module docstring for its shape).

    Raises:
        ConfigurationError: the file cannot be read, is not YAML, or is not the expected shape.
    """
    raw = _read(path)
    where = f"dossiers file {path}"
    defaults = dict(raw.get("defaults") or {})
    entries: list[Dossier] = []
    problems: dict[str, list[str]] = {}
    for name, body in raw["dossiers"].items():
        dossier, found = _entry(name, body, defaults)
        while dossier.name in {d.name for d in entries}:  # two names that fold to the same DAG id
            dossier = Dossier(f"{dossier.name[:37]}_{len(entries)}", dossier.connection, dossier.prefix)
            found.append("its name folds to the name of another entry")
        entries.append(dossier)
        if found:
            problems[dossier.name] = found
    for name, found in _between(entries).items():
        problems.setdefault(name, []).extend(found)
    default = raw.get("default_dossier")
    if default is not None and default not in {d.name for d in entries}:
        raise ConfigurationError(
            f"{where}: default_dossier {default!r} is not one of the dossiers ({', '.join(d.name for d in entries)})"
        )
    return DossierSet(path, tuple(entries), {k: tuple(v) for k, v in problems.items()}, default)


def load_dossiers(path: str | Path | None = None) -> DossierSet | None:
    """The deployment's dossiers file (``path``, ``$SAGE_SYNC_DOSSIERS`` or ``$SAGE_SYNC_HOME/dossiers.yaml``).

    Returns None when no file was named and the default one does not exist (a single-dossier deployment).

    Raises:
        ConfigurationError: a file named explicitly does not exist, or the file is unusable as a whole.
    """
    named = path or os.environ.get(DOSSIERS_ENV)
    target = Path(named).expanduser() if named else data_home() / "dossiers.yaml"
    if not target.exists():
        if named:
            raise ConfigurationError(
                f"dossiers file {target} (from {DOSSIERS_ENV} or --dossiers) does not exist"
            )
        return None
    return parse_dossiers(target)


def dossier_settings(name: str, path: str | Path | None = None, home: Path | None = None) -> Settings:
    """The settings of dossier ``name`` of the deployment's dossiers file.

    Raises:
        ConfigurationError: there is no dossiers file, no such dossier, or the entry has problems (all listed).
    """
    found = load_dossiers(path)
    if found is None:
        raise ConfigurationError(
            f"dossier {name!r} is asked for, but there is no dossiers file ({dossiers_file()} or ${DOSSIERS_ENV})"
        )
    return found.settings(name, home)
