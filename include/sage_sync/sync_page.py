"""The operator's sync page: how the last runs went, from their JSON reports (no Airflow import here).

One server-rendered HTML page, self-contained (inline CSS and SVG, no script, no external asset), with relative
links only so it works behind a reverse proxy with a base path. It is served at ``<base>/sage-sync/sync`` by
:mod:`sage_sync.reports_app`; every link is relative to that address:

- ``reports/<run>.html`` and ``data-docs/<path>``: the plugin's own routes;
- ``../dags/<dag>/runs/<run>`` and ``.../tasks/<task>``: the run and its task logs in the Airflow UI.

Sections: the last runs (status, counts, a small chart of created/updated/failed), per-entity counts of the latest
run, the open quarantine (row, reason, first seen, runs since), conflicts (both values, the winner), deferred
records, and withheld deletions (G4) with the fingerprint an approval names.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sage_sync.engine.staging import run_name
from sage_sync.location import Location, newest_first, read_bytes_or_none, relative_name
from sage_sync.report import decision_sentence

#: How many runs the page shows by default.
DEFAULT_RUNS = 20
_COUNTS = ("created", "updated", "deleted", "deferred", "quarantined", "conflicts", "failed")
_CHART = (("created", "#2e7d32"), ("updated", "#1565c0"), ("failed", "#c62828"))
_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:90em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;vertical-align:top}th{background:#eee}td.n{text-align:right}"
    ".ok{color:#2e7d32}.attention,.failed{color:#c62828;font-weight:bold}.skipped{color:#777}"
    "p.empty{color:#777}code{font-size:.9em}"
)


def load_reports(folder: Location, limit: int = DEFAULT_RUNS) -> list[dict[str, Any]]:
    """The last ``limit`` run reports of ``folder`` (``<run>.json``), newest first; unreadable files are skipped.

    ``folder`` is a local folder or a place in an object store (:mod:`sage_sync.location`).
    """
    files = [p for p in newest_first(folder, "*.json") if p.name != "latest.json"]
    reports = []
    for path in files[:limit]:
        try:
            data = read_bytes_or_none(path)
            if data is not None:
                reports.append(json.loads(data))
        except (OSError, ValueError):
            continue
    return reports


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """A table of already-escaped cells, or a sentence when there is no row."""
    if not rows:
        return f"<p class='empty'>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _run_url(dag_id: str, run_id: str, ui_root: str) -> str:
    return f"{ui_root}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _chart(reports: list[dict[str, Any]]) -> str:
    """A small inline SVG: created, updated and failed per run, oldest on the left."""
    runs = list(reversed(reports))
    if not runs:
        return ""
    width, height, bar = 14, 80, 4
    top = max((int((r.get("totals") or {}).get(c, 0) or 0) for r in runs for c, _ in _CHART), default=0) or 1
    bars = []
    for i, report in enumerate(runs):
        for j, (column, colour) in enumerate(_CHART):
            value = int((report.get("totals") or {}).get(column, 0) or 0)
            h = round(value / top * (height - 10))
            x, y = i * width + j * bar, height - h
            bars.append(
                f"<rect x='{x}' y='{y}' width='{bar - 1}' height='{h}' fill='{colour}'>"
                f"<title>{_e(report.get('run_id'))}: {value} {column}</title></rect>"
            )
    legend = " ".join(f"<span style='color:{c}'>&#9632; {n}</span>" for n, c in _CHART)
    return (
        f"<svg role='img' aria-label='created, updated and failed per run' width='{len(runs) * width}' "
        f"height='{height}' style='border-bottom:1px solid #999'>{''.join(bars)}</svg><div>{legend} "
        f"(per run, oldest left; highest bar {top})</div>"
    )


def _runs_table(reports: list[dict[str, Any]], dag_id: str, ui_root: str) -> str:
    rows = []
    for r in reports:
        run_id = str(r.get("run_id"))
        totals = r.get("totals") or {}
        status = str(r.get("status"))
        mode = "dry run" if r.get("dry_run") else ("full reconcile" if r.get("full_reconcile") else "")
        rows.append(
            [
                f"<a href='{_run_url(dag_id, run_id, ui_root)}'>{_e(run_id)}</a>",
                _e(r.get("finished_at")),
                f"<span class='{_e(status)}'>{_e(status)}</span> {_e(mode)}",
                *[f"<span class='n'>{int(totals.get(c, 0) or 0)}</span>" for c in _COUNTS],
                f"<a href='reports/{quote(run_name(run_id))}.html'>report</a>",
            ]
        )
    return _table(["Run", "Finished", "Status", *_COUNTS, ""], rows, "No run report yet.")


def _entities_table(report: dict[str, Any], dag_id: str, home: Location | None, ui_root: str) -> str:
    run_id = str(report.get("run_id"))
    rows = []
    for entity, s in (report.get("entities") or {}).items():
        counts = s.get("counts") or {}
        logs = " ".join(
            f"<a href='{_run_url(dag_id, run_id, ui_root)}/tasks/{quote(str(task), safe='')}'>{_e(task)}</a>"
            for task in sorted(s.get("tasks") or {})
        )
        rows.append(
            [
                _e(entity),
                _e(s.get("status")),
                *[f"<span class='n'>{int(counts.get(c, 0) or 0)}</span>" for c in _COUNTS],
                _data_docs_link(s.get("data_docs"), home),
                logs or "",
            ]
        )
    return _table(["Entity", "Status", *_COUNTS, "Data Docs", "Task logs"], rows, "No entity in this run.")


def _data_docs_link(path: Any, home: Location | None) -> str:
    """A relative link to the entity's Data Docs page when it lies in the served Data Docs folder.

    The report records the page as a local path, or as the object store's URL of a published site.
    """
    if not path:
        return ""
    text = str(path)
    if home is not None and ("://" in text or Path(text).is_absolute()):
        relative = relative_name(text, home / "data_docs")
        if relative is None:
            return _e(path)
        return f"<a href='data-docs/{quote(relative)}'>Data Docs</a>"
    return f"<a href='data-docs/{quote(Path(text).as_posix().lstrip('/'))}'>Data Docs</a>"


def open_quarantine(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest run's quarantined rows, each with the run it was first seen in (of an unbroken streak).

    ``runs`` counts the consecutive runs, newest first, whose reports list the same entity, key and reason.
    Skipped runs (another run held the sync) and dry runs are passed over: they say nothing about the rows.
    """
    real = [r for r in reports if r.get("status") != "skipped" and not r.get("dry_run")]
    if not real:
        return []

    def keys(report: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {
            (entity, str(q.get("key")), str(q.get("reason")))
            for entity, s in (report.get("entities") or {}).items()
            for q in s.get("quarantined") or []
        }

    seen = [keys(r) for r in real]
    rows = []
    for entity, s in (real[0].get("entities") or {}).items():
        for q in s.get("quarantined") or []:
            key = (entity, str(q.get("key")), str(q.get("reason")))
            streak = 0
            while streak < len(seen) and key in seen[streak]:
                streak += 1
            first = real[streak - 1]
            rows.append(
                {
                    "entity": entity,
                    "key": q.get("key"),
                    "rule": q.get("rule"),
                    "reason": q.get("reason"),
                    "first_seen": first.get("started_at") or first.get("finished_at"),
                    "first_run": first.get("run_id"),
                    "runs": streak,
                }
            )
    return rows


def _latest_real(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in reports if r.get("status") != "skipped"), None)


def render_sync_page(
    reports: list[dict[str, Any]],
    *,
    dag_id: str,
    home: Location | None = None,
    user: str | None = None,
    ui_root: str = "../",
) -> str:
    """The whole page for ``reports`` (newest first); ``home`` is the DAG's shared folder (its ``data_docs``).

    Every link is relative: ``reports/...`` and ``data-docs/...`` to the page's own folder, Airflow's pages through
    ``ui_root`` (the way up from the page to the UI's base URL: ``../`` for ``sage-sync/sync``).
    """
    latest = _latest_real(reports)
    parts = ["<h1>Sage 50 &harr; Sales Management sync</h1>"]
    if user:
        parts.append(f"<p>Signed in as <strong>{_e(user)}</strong>. DAG <code>{_e(dag_id)}</code>.</p>")
    parts.append(f"<h2>Last {len(reports)} runs</h2>")
    parts.append(_chart(reports))
    parts.append(_runs_table(reports, dag_id, ui_root))
    if latest is None:
        parts.append("<p class='empty'>The sync has not run yet: nothing else to show.</p>")
        return _page(parts)
    entities = latest.get("entities") or {}
    run_id = str(latest.get("run_id"))
    parts.append(
        f"<h2>Latest run per entity: <a href='{_run_url(dag_id, run_id, ui_root)}'>{_e(run_id)}</a></h2>"
    )
    parts.append(_entities_table(latest, dag_id, home, ui_root))

    quarantine = open_quarantine(reports)
    parts.append(f"<h2>Open quarantine ({len(quarantine)})</h2>")
    parts.append(
        _table(
            ["Entity", "Row", "Rule", "Reason", "First seen", "Runs since"],
            [
                [
                    _e(q["entity"]),
                    f"<code>{_e(q['key'])}</code>",
                    _e(q["rule"]),
                    _e(q["reason"]),
                    f"{_e(q['first_seen'])}<br><small>{_e(q['first_run'])}</small>",
                    f"<span class='n'>{q['runs']}</span>",
                ]
                for q in quarantine
            ],
            "No row is quarantined.",
        )
    )

    conflicts = [(e, c) for e, s in entities.items() for c in s.get("conflicts") or []]
    parts.append(f"<h2>Conflicts in the latest run ({len(conflicts)})</h2>")
    parts.append(
        _table(
            ["Entity", "Row", "Field", "Sage value", "SSM value", "Winner"],
            [
                [
                    _e(e),
                    f"<code>{_e(c.get('key'))}</code>",
                    _e(c.get("field")),
                    _e(c.get("sage_value")),
                    _e(c.get("ssm_value")),
                    f"<strong>{_e(c.get('winner'))}</strong>",
                ]
                for e, c in conflicts
            ],
            "No field changed on both sides.",
        )
    )

    deferred = [(e, d) for e, s in entities.items() for d in s.get("deferred") or [] if d.get("rule") != "G4"]
    parts.append(f"<h2>Deferred records ({len(deferred)})</h2>")
    parts.append(
        _table(
            ["Entity", "Row", "Rule", "Reason"],
            [
                [_e(e), f"<code>{_e(d.get('key'))}</code>", _e(d.get("rule")), _e(d.get("reason"))]
                for e, d in deferred
            ],
            "Nothing deferred to the next run.",
        )
    )

    withheld = [(e, s) for e, s in entities.items() if s.get("withheld_set")]
    parts.append(f"<h2>Withheld deletions ({len(withheld)} entities)</h2>")
    rows = []
    for entity, s in withheld:
        keys = [str(d.get("key")) for d in s.get("deferred") or [] if d.get("rule") == "G4"]
        sample = ", ".join(keys[:10]) + (" ..." if len(keys) > 10 else "")
        rows.append(
            [
                _e(entity),
                f"<span class='n'>{len(keys)}</span>",
                f"<code>{_e(s.get('withheld_set'))}</code>",
                f"<code>{_e(sample)}</code>",
                _e(s.get("guard")),
                _e(decision_sentence(s["approval_decision"])) if s.get("approval_decision") else "not asked",
            ]
        )
    parts.append(
        _table(
            ["Entity", "Deletions", "Set", "Sample", "Why", "Decision"],
            rows,
            "No deletion is withheld by the mass-deletion guard.",
        )
    )
    if withheld:
        conf = {e: s.get("withheld_set") for e, s in withheld}
        parts.append(
            f"<p>A run asks for approval in <a href='{ui_root}required_actions'>Required actions</a>. To apply exactly "
            "these deletions without asking, trigger the DAG with the conf "
            f"<code>{_e(json.dumps({'approve_deletions': conf}))}</code>; a changed set asks again.</p>"
        )
    return _page(parts)


def _page(parts: list[str]) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sage sync</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}"
        "<p><a href='reports'>All run reports</a></p></body></html>\n"
    )
