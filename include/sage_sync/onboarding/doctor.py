"""Preflight checks (O2): is this dossier ready to sync? One table, one line per check, blocking or not.

The same checks run as ``sage-sync doctor`` and as the first task of every DAG run (which then fails fast with the
table in its log):

* the dossiers file and this dossier's entry (M1, M2);
* the deployment: the shared location is writable, and under a distributed executor the step files and the state
  store are shared (:mod:`sage_sync.onboarding.deployment_checks`);
* the Sage side: the Airflow connection exists, its ODBC driver is installed, the dossier answers, every table
  and column the mappings name is there with a compatible type (each one missing is listed), and the media folder
  is readable when articles name pictures (D3);
* the SSM side: the connection exists and logs in, the value lists hold what the rules need (Client, Prospect,
  Facture, Avoir, the admin user, the branches) and the tenant declares every ``Z_`` field the mappings write.

A check that cannot run because an earlier one failed says so instead of failing again. Nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sage_sync.mapping.model import EntityMapping, FieldMap
from sage_sync.mapping.registry import registry

if TYPE_CHECKING:
    from sage_sync.adapters.ssm_api import SsmApiSide
    from sage_sync.hooks.sage50 import Sage50Hook
    from sage_sync.hooks.ssm import SalesManagementHook
    from sage_sync.mapping.transforms import ValueLists
    from sage_sync.settings import Settings

Status = Literal["ok", "warning", "blocking"]

#: ODBC SQL type codes (SQLColumns ``DATA_TYPE``) each mapping dtype accepts, and type-name words as a fallback.
_TYPES: dict[str, tuple[frozenset[int], tuple[str, ...]]] = {
    "string": (frozenset({1, 12, -1, -8, -9, -10}), ("char", "text", "string", "clob")),
    "int": (frozenset({4, 5, -5, -6, -7, 2, 3}), ("int", "bit", "bool", "numeric", "decimal")),
    "decimal": (
        frozenset({2, 3, 4, 5, -5, -6, 6, 7, 8}),
        ("num", "dec", "float", "real", "double", "money", "int"),
    ),
    "date": (frozenset({9, 91, 11, 93}), ("date", "time")),
    "datetime": (frozenset({9, 91, 11, 93}), ("date", "time")),
}


@dataclass(frozen=True)
class Check:
    """One line of the preflight table."""

    area: str
    target: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return asdict(self)


def blocking(checks: Iterable[Check]) -> list[Check]:
    """The checks that stop the sync."""
    return [c for c in checks if c.status == "blocking"]


def render(checks: list[Check], title: str = "Preflight") -> str:
    """The checks as a fixed-width table with a one-line verdict."""
    head = ("check", "target", "status", "detail")
    rows = [(c.area, c.target, c.status.upper() if c.status != "ok" else "ok", c.detail) for c in checks]
    widths = [min(48, max(len(str(r[i])) for r in [head, *rows])) for i in range(3)]
    lines = [f"{title}:"]
    for r in [head, *rows]:
        lines.append(
            "  ".join(str(v).ljust(w) for v, w in zip(r[:3], widths, strict=True)) + "  " + str(r[3])
        )
    stop = blocking(checks)
    warned = [c for c in checks if c.status == "warning"]
    verdict = (
        f"{len(stop)} blocking problem(s): nothing is synced until they are fixed"
        if stop
        else "ready to sync" + (f" ({len(warned)} warning(s))" if warned else "")
    )
    lines.append(f"=> {verdict}")
    return "\n".join(lines)


def _guard(area: str, target: str, run: Callable[[], list[Check]]) -> list[Check]:
    """Run one group of checks; an unexpected error is a blocking line, not a crash of the whole table."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - every failure must end up in the table, with its reason
        return [Check(area, target, "blocking", f"{type(exc).__name__}: {exc}")]


# --- Sage ------------------------------------------------------------------------------------------------------


def _sage_hook(conn_id: str) -> tuple[Sage50Hook | None, list[Check]]:
    """The hook of the Sage connection, with the checks of the connection itself and of its ODBC driver."""
    import pyodbc

    from sage_sync.hooks.sage50 import Sage50Hook

    try:
        from airflow.sdk.bases.hook import BaseHook

        BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, or no metadata database to look in
        why = "is not defined" if "isn't defined" in str(exc) else f"cannot be read ({exc})"
        return None, [
            Check(
                "Sage connection",
                conn_id,
                "blocking",
                f"the Airflow connection {conn_id!r} {why} (type odbc)",
            )
        ]
    hook = Sage50Hook(sage50_conn_id=conn_id)
    checks = [Check("Sage connection", conn_id, "ok", "defined")]
    driver = hook.driver
    installed = pyodbc.drivers()
    if not driver:
        checks.append(
            Check(
                "ODBC driver",
                conn_id,
                "blocking",
                "no driver named: set extra.driver and AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True",
            )
        )
        return None, checks
    if driver not in installed:
        checks.append(
            Check(
                "ODBC driver",
                driver,
                "blocking",
                f"ODBC driver {driver!r} is not installed (unixODBC knows: {', '.join(installed) or 'none'})",
            )
        )
        return None, checks
    checks.append(Check("ODBC driver", driver, "ok", "installed"))
    ok, message = hook.test_connection()
    checks.append(Check("Sage dossier", hook.database or conn_id, "ok" if ok else "blocking", message))
    return (hook if ok else None), checks


def _compatible(f: FieldMap, column: Any) -> bool:
    codes, words = _TYPES[f.dtype]
    name = str(getattr(column, "type_name", "") or "").lower()
    return int(getattr(column, "data_type", 0) or 0) in codes or any(w in name for w in words)


def _columns(cursor: Any, table: str) -> dict[str, Any]:
    """The columns of ``table`` by lower-case name (PostgreSQL folds unquoted names to lower case)."""
    for name in dict.fromkeys((table, table.lower(), table.upper())):
        found = {str(c.column_name).lower(): c for c in cursor.columns(table=name)}
        if found:
            return found
    return {}


def _source_checks(mapping: EntityMapping, cursor: Any) -> list[Check]:
    checks: list[Check] = []
    for source in mapping.sources.values():
        columns = _columns(cursor, source.table)
        if not columns:
            checks.append(
                Check("Sage tables", source.table, "blocking", f"table missing (read for {mapping.entity})")
            )
            continue
        missing, wrong, short = [], [], []
        for f in source.fields:
            if not f.sage:
                continue
            column = columns.get(f.sage.lower())
            if column is None:
                missing.append(f.sage)
            elif not _compatible(f, column):
                wrong.append(f"{f.sage} is {column.type_name}, expected {f.dtype}")
            elif (
                f.dtype == "string"
                and f.length
                and (column.column_size or 0)
                and column.column_size < f.length
            ):
                short.append(f"{f.sage} holds {column.column_size} characters, the mapping {f.length}")
        if missing:
            checks.append(Check("Sage columns", source.table, "blocking", f"missing: {', '.join(missing)}"))
        if wrong:
            checks.append(
                Check("Sage columns", source.table, "blocking", f"incompatible type: {'; '.join(wrong)}")
            )
        if short:
            checks.append(Check("Sage columns", source.table, "warning", f"shorter: {'; '.join(short)}"))
        if not (missing or wrong or short):
            checks.append(
                Check("Sage columns", source.table, "ok", f"{len(source.sage_columns)} column(s) as mapped")
            )
    return checks


def _media_checks(hook: Sage50Hook, media_folder: Path | None) -> list[Check]:
    """D3: articles that name a picture need a readable media folder holding it."""
    from sage_sync.adapters.sage_odbc import default_media_folder
    from sage_sync.mapping.sage_snapshot import media_path

    spec = registry()["products"]
    picture = next((f for f in spec.mapping.main.fields if f.transform == "picture"), None)
    if picture is None:
        return []
    frame = hook.read_source(spec.mapping, spec.mapping.main.name, columns=[picture.name])
    named = [str(p).strip() for p in frame[picture.name].dropna().tolist() if str(p).strip()]
    folder = media_folder or default_media_folder(hook.database)
    target = str(folder) if folder else "(not set)"
    if not named:
        return [Check("media folder", target, "ok", f"no article names a picture ({picture.sage})")]
    if folder is None:
        return [
            Check(
                "media folder",
                target,
                "blocking",
                f"{len(named)} article(s) name a picture ({picture.sage}) but no media folder is set: set media_folder",
            )
        ]
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        return [
            Check(
                "media folder",
                target,
                "blocking",
                f"not a readable folder; {len(named)} article(s) name a picture",
            )
        ]
    absent = [p for p in named if (path := media_path(folder, p)) is None or not path.is_file()]
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        return [
            Check(
                "media folder",
                target,
                "warning",
                f"{len(absent)} of {len(named)} picture(s) missing: {shown}",
            )
        ]
    return [Check("media folder", target, "ok", f"{len(named)} picture(s) found")]


def sage_checks(conn_id: str, media_folder: Path | None) -> list[Check]:
    """The Sage side: connection, driver, dossier, tables and columns, media folder."""
    from contextlib import closing

    hook, checks = _sage_hook(conn_id)
    if hook is None:
        checks.append(Check("Sage tables", conn_id, "blocking", "not checked: the dossier cannot be reached"))
        return checks

    def tables() -> list[Check]:
        out: list[Check] = []
        with closing(hook.get_conn()) as conn:
            cursor = conn.cursor()
            for spec in registry():
                out += _source_checks(spec.mapping, cursor)
        return out

    checks += _guard("Sage tables", conn_id, tables)
    articles = registry()["products"].mapping.main.table
    if not blocking(c for c in checks if c.area.startswith("Sage") and c.target == articles):
        checks += _guard("media folder", str(media_folder or ""), lambda: _media_checks(hook, media_folder))
    return checks


# --- SSM -------------------------------------------------------------------------------------------------------


def _labels_check(area: str, have: Iterable[str], needed: Iterable[str], why: str) -> Check:
    missing = [n for n in needed if n not in set(have)]
    if missing:
        return Check(
            "SSM value lists", area, "blocking", f"missing {', '.join(repr(m) for m in missing)} ({why})"
        )
    return Check("SSM value lists", area, "ok", ", ".join(repr(n) for n in needed))


def _value_list_checks(lists: ValueLists, branches: list[dict[str, Any]], settings: Settings) -> list[Check]:
    checks = [
        _labels_check("accountStatuses", lists.account_statuses, ("Client", "Prospect"), "C2, P1"),
        _labels_check("salesorderStatuses", lists.salesorder_statuses, ("Facture", "Avoir"), "I5"),
    ]
    if lists.countries:
        checks.append(Check("SSM value lists", "countries", "ok", f"{len(lists.countries)} countries"))
    else:
        checks.append(
            Check("SSM value lists", "countries", "blocking", "empty: no account can carry a country")
        )
    if settings.admin_user_id in lists.users:
        checks.append(
            Check("SSM value lists", "users", "ok", f"admin user {settings.admin_user_id} exists (C5)")
        )
    else:
        checks.append(
            Check(
                "SSM value lists",
                "users",
                "blocking",
                f"admin_user_id {settings.admin_user_id} is not a user (C5)",
            )
        )
    live = {int(b["id"]) for b in branches if not b.get("deleted")}
    wanted = sorted({settings.branch_id, *(settings.dossier.branches if settings.dossier else ())})
    unknown = [b for b in wanted if b not in live]
    checks.append(
        Check("SSM value lists", "branches", "blocking", f"branch(es) {unknown} do not exist (M2, C5)")
        if unknown
        else Check("SSM value lists", "branches", "ok", f"branch(es) {wanted} exist")
    )
    return checks


def _custom_field_targets() -> list[tuple[str, str, list[FieldMap]]]:
    """(SSM endpoint, ``zapier_schema`` table, mapped fields) of every entity and of invoice lines."""
    out: list[tuple[str, str, list[FieldMap]]] = []
    for spec in registry():
        m = spec.mapping
        out.append((spec.endpoint, m.ssm.zapier_entity, [*m.main.fields, *m.derived]))
        if spec.lines is not None and spec.lines.source is not None:
            out.append(
                (spec.lines.endpoint, spec.lines.zapier_entity, list(m.sources[spec.lines.source].fields))
            )
    return out


def custom_field_checks(hook: SalesManagementHook) -> list[Check]:
    """Every ``Z_`` field the mappings write is declared by the tenant (a write with another one is refused)."""
    checks: list[Check] = []
    for endpoint, table, fields in _custom_field_targets():
        needed = sorted({n for f in fields for n in f.ssm if n.startswith("Z_")})
        if not needed:
            continue
        declared = {str(i.get("Key")) for i in hook.custom_fields(table)}
        missing = [n for n in needed if n not in declared]
        target = f"{endpoint} ({table})"
        if missing:
            checks.append(
                Check("SSM custom fields", target, "blocking", f"not declared: {', '.join(missing)}")
            )
        else:
            checks.append(Check("SSM custom fields", target, "ok", ", ".join(needed)))
    return checks


def ssm_checks(conn_id: str, settings: Settings) -> tuple[list[Check], SsmApiSide | None]:
    """The SSM side: connection, login, value lists, custom fields; returns the side when it answered."""
    from sage_sync.adapters.ssm_api import SsmApiSide
    from sage_sync.hooks.ssm import SalesManagementHook

    try:
        from airflow.sdk.bases.hook import BaseHook

        BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - see _sage_hook
        why = "is not defined" if "isn't defined" in str(exc) else f"cannot be read ({exc})"
        return [
            Check(
                "SSM connection", conn_id, "blocking", f"the Airflow connection {conn_id!r} {why} (type http)"
            )
        ], None
    hook = SalesManagementHook(ssm_conn_id=conn_id)
    ok, message = hook.test_connection()
    checks = [Check("SSM connection", conn_id, "ok" if ok else "blocking", message)]
    if not ok:
        checks.append(Check("SSM value lists", conn_id, "blocking", "not checked: the API cannot be reached"))
        return checks, None
    side = SsmApiSide(hook)
    checks += _guard(
        "SSM value lists",
        conn_id,
        lambda: _value_list_checks(side.value_lists(), hook.value_list("branches"), settings),
    )
    checks += _guard("SSM custom fields", conn_id, lambda: custom_field_checks(hook))
    return checks, side


def run_checks(
    settings: Settings, sage_conn_id: str, ssm_conn_id: str
) -> tuple[list[Check], SsmApiSide | None]:
    """Every check of one dossier (see the module docstring); returns the SSM side when the API answered."""
    checks: list[Check] = []
    if settings.dossier is not None:
        checks.append(Check("dossiers file", settings.dossier.name, "ok", f"entry valid ({settings.source})"))
    from sage_sync.onboarding.deployment_checks import deployment_checks

    checks += deployment_checks(settings)
    checks += sage_checks(sage_conn_id, settings.media_folder)
    found, side = ssm_checks(ssm_conn_id, settings)
    return checks + found, side
