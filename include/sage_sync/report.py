"""The run report (G7, G8): per entity the counts, API calls, conflicts, quarantined and deferred rows, Data Docs.

Built from the files the steps left in the run's staging folder, written as ``<shared>/reports/<run>.json`` (and
``latest.json``), a readable ``<run>.md`` and a small self-contained ``<run>.html`` page, in the shared location
(:mod:`sage_sync.settings`) so the API server shows what any worker wrote. Nothing secret is in it: connections are
never read here, and error texts come from the hooks already scrubbed.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from sage_sync.engine.plan import staged_digest
from sage_sync.engine.staging import Staging
from sage_sync.location import Location, read_bytes_or_none, write_bytes_atomic
from sage_sync.mapping.registry import entity_names

COUNT_COLUMNS = (
    "created",
    "updated",
    "deleted",
    "unchanged",
    "deferred",
    "quarantined",
    "conflicts",
    "failed",
    "api_calls",
)
LIST_LIMIT = 200
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def entity_section(
    entity: str, staging: Staging, task_states: dict[str, str] | None = None
) -> dict[str, Any]:
    """One entity's part of the report, from its staging files (missing files: the step did not run)."""
    states = task_states or {}
    if not staging.folder(entity).exists():
        return {"entity": entity, "status": "not run", "tasks": states, "counts": {}}
    extracted = staging.read_json_or_none(entity, "extract.json") or {}
    quality = staging.read_json_or_none(entity, "quality.json") or {}
    plan = staged_digest(staging, entity) or {}
    applied = staging.read_json_or_none(entity, "apply.json") or {}
    committed = staging.read_json_or_none(entity, "commit.json") or {}
    counts = dict(committed.get("counts") or {})
    failed_ops = [o for o in applied.get("outcomes") or [] if not o.get("ok")]
    if not committed:
        status = "failed" if any(s == "failed" for s in states.values()) else "incomplete"
    elif quality.get("stop_load"):
        status = "load stopped"
    elif failed_ops:
        status = "partly failed"
    else:
        status = "ok"
    changes = extracted.get("changes") or {}
    section: dict[str, Any] = {
        "entity": entity,
        "status": status,
        "tasks": states,
        "counts": counts,
        "duration_s": round(float(committed.get("duration_s") or 0.0), 3),
        "sage_changes": {
            "created": int(changes.get("created") or 0),
            "updated": int(changes.get("updated") or 0),
            "deleted": int(changes.get("deleted") or 0),
        },
        "ssm_records_read": int(extracted.get("ssm_records_read") or 0),
        "guard": plan.get("guard"),
        "withheld_set": plan.get("withheld_set"),
        "approval": plan.get("approval"),
        "approval_decision": staging.read_json_or_none(entity, "approval.json"),
        "table_failures": quality.get("table_failures") or [],
        "quality": (quality.get("report") or {}).get("counts"),
        "data_docs": quality.get("data_docs_path"),
        "planned": (plan.get("ops_head") or [])[:LIST_LIMIT],
        "planned_total": int(plan.get("ops_total") or 0),
        "planned_by_kind": dict(plan.get("ops_by_kind") or {}),
        "conflicts": (plan.get("conflicts") or [])[:LIST_LIMIT],
        "quarantined": (plan.get("quarantined") or [])[:LIST_LIMIT],
        "deferred": (plan.get("deferred") or [])[:LIST_LIMIT],
        "warnings": (plan.get("warnings") or [])[:LIST_LIMIT],
        "skipped": (plan.get("skipped") or [])[:LIST_LIMIT],
        "failures": [
            {"kind": o.get("kind"), "key": o.get("key"), "error": o.get("error")}
            for o in failed_ops[:LIST_LIMIT]
        ],
    }
    return section


def build_report(
    run_id: str,
    staging: Staging,
    *,
    dry_run: bool,
    full_reconcile: bool = False,
    started_at: str | None = None,
    task_states: dict[str, dict[str, str]] | None = None,
    settings: dict[str, Any] | None = None,
    deadline_alert: dict[str, Any] | None = None,
    skipped: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of one run from its staging area ``staging`` (one folder per entity).

    ``deadline_alert`` is the run's deadline alert file (G1) when the alert fired: the report then says
    "deadline missed". ``skipped`` is the run's start when another run held the lease: the report says so.
    """
    sections = {e: entity_section(e, staging, (task_states or {}).get(e)) for e in entity_names()}
    totals = {c: sum(int(s["counts"].get(c, 0) or 0) for s in sections.values()) for c in COUNT_COLUMNS}
    writes = totals["created"] + totals["updated"] + totals["deleted"]
    return {
        "run_id": run_id,
        "dry_run": dry_run,
        "full_reconcile": full_reconcile,
        **onboarding_fields(staging),
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "status": "skipped"
        if skipped
        else "ok"
        if all(s["status"] == "ok" for s in sections.values())
        else "attention",
        "skipped": (
            f"another run ({skipped.get('holder')}) held the sync when this one started: it did nothing"
            if skipped
            else None
        ),
        "totals": totals,
        "writes": 0 if dry_run else writes,
        "planned_writes": writes if dry_run else None,
        "entities": sections,
        "settings": settings or {},
        **deadline_fields(deadline_alert),
    }


def onboarding_fields(staging: Staging) -> dict[str, Any]:
    """The run's opening tasks in the report: the preflight table (O2), the run mode (M3), the matching (O1)."""
    preflight = staging.read_json_or_none(None, "preflight.json") or {}
    mode = staging.read_json_or_none(None, "resume.json") or {}
    matched = staging.read_json_or_none(None, "match.json")
    matching = None
    if matched:
        rows = matched.get("rows") or []
        waiting = [r for r in rows if r.get("status") in ("open", "ambiguous")]
        matching = {
            **(matched.get("summary") or {}),
            "dry_run": bool(matched.get("dry_run")),
            "held": matched.get("held") or {},
            "rows": sorted(
                rows,
                key=lambda r: (
                    r.get("status") not in ("open", "ambiguous"),
                    r.get("entity"),
                    r.get("sage_key"),
                ),
            )[:LIST_LIMIT],
            "rows_total": len(rows),
            "waiting": len(waiting),
        }
    return {
        "preflight": preflight.get("checks") or [],
        "resume": {"reason": mode.get("reason")} if mode.get("resume") else None,
        "matching": matching,
    }


def _matching_markdown(report: dict[str, Any]) -> list[str]:
    """The report's first-sync matching section (O1): the sentence, then the pairs, those waiting first."""
    m = report.get("matching")
    if not m or not m.get("rows"):
        return []
    counts = ", ".join(f"{n} {s}" for s, n in sorted((m.get("counts") or {}).items()) if n)
    lines = [
        "",
        "## First-sync matching (O1)",
        "",
        f"{m.get('reason')}. Pairs: {counts or 'none'}; automatic binding at confidence >= {m.get('threshold')}. "
        f"{m.get('waiting', 0)} pair(s) wait for a person: decide in `matching/decisions.csv` "
        "(`bind`, `reject` or `ssm_only`).",
        "",
        "| entity | Sage | SSM id | status | confidence | evidence | Sage record | SSM record |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for r in m["rows"][:50]:
        lines.append(
            f"| {r['entity']} | {_cell(r['sage_key'])} | {r['ssm_id']} | {r['status']} | "
            f"{float(r['confidence']):.2f} | {_cell(r['evidence'])} | {_cell(r.get('sage_label'))} | "
            f"{_cell(r.get('ssm_label'))} |"
        )
    if m.get("rows_total", 0) > 50:
        lines.append(
            f"| … | {m['rows_total'] - 50} more in the JSON report and `proposals.csv` | | | | | | |"
        )
    lines += [f"- {_cell(p)}" for p in m.get("problems") or []]
    return lines


def deadline_fields(alert: dict[str, Any] | None) -> dict[str, Any]:
    """The report's G1 fields: ``deadline_missed`` and, when missed, the alert (minutes, when it fired, why)."""
    if not alert:
        return {"deadline_missed": False, "deadline": None}
    keys = ("deadline_minutes", "deadline", "queued_at", "deadline_time", "fired_at", "message", "path")
    return {"deadline_missed": True, "deadline": {k: alert.get(k) for k in keys}}


def deadline_sentence(report: dict[str, Any]) -> str | None:
    """The report's sentence about a missed deadline (G1), or ``None`` when the run met it."""
    alert = report.get("deadline") or {}
    if not report.get("deadline_missed"):
        return None
    within = alert.get("deadline") or f"{alert.get('deadline_minutes')} minutes"
    return (
        f"**Deadline missed** (G1): the run was not done {within} after it was queued; the alert fired at "
        f"{alert.get('fired_at') or '?'} ({alert.get('path') or 'no alert file'})."
    )


def summary_table(report: dict[str, Any]) -> str:
    """The fixed-width table the task log prints: one line per entity, then the totals."""
    head = ("entity", "status", *COUNT_COLUMNS)
    rows = [
        (e, s["status"], *(str(s["counts"].get(c, "")) for c in COUNT_COLUMNS)) for e, s in _sections(report)
    ]
    rows.append(("total", report["status"], *(str(report["totals"][c]) for c in COUNT_COLUMNS)))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _sections(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The entity sections in dependency order (a report read back from JSON has its keys sorted)."""
    found = report["entities"]
    names = entity_names()
    return [(e, found[e]) for e in names if e in found] + [(e, s) for e, s in found.items() if e not in names]


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def decision_sentence(decision: dict[str, Any]) -> str:
    """What a person decided about withheld deletions (G4), and what the approved pass did."""
    who = f" by {decision['by']}" if decision.get("by") else ""
    text = f"{decision.get('count')} withheld deletion(s) (set {decision.get('set')}) {decision.get('decision')}{who}"
    text += f" at {decision.get('at')}" if decision.get("at") else ""
    if decision.get("applied") is True:
        text += f"; {decision.get('deleted')} deleted in SSM after checking Sage again"
    elif decision.get("note"):
        text += f"; {decision['note']}"
    return text


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the summary table, then per entity what needs attention."""
    mode = "dry run (nothing written)" if report["dry_run"] else "sync"
    lines = [
        f"# Sync report — {report['run_id']}",
        "",
        f"Mode: {mode}{' with full reconcile' if report.get('full_reconcile') else ''}. "
        f"Status: **{report['status']}**. Finished {report['finished_at']}.",
        "",
    ]
    if report.get("resume"):
        lines += [f"**Resume run** (M3): {report['resume']['reason']}.", ""]
    flagged = [c for c in report.get("preflight") or [] if c.get("status") != "ok"]
    lines += [f"- Preflight {c['status']}: {c['area']} {c['target']}: {_cell(c['detail'])}" for c in flagged]
    lines += [""] if flagged else []
    sentence = deadline_sentence(report)
    if sentence:
        lines += [sentence, ""]
    if report.get("skipped"):
        lines += [f"**Skipped:** {report['skipped']}.", ""]
    lines += [
        "| entity | status | " + " | ".join(COUNT_COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COUNT_COLUMNS),
    ]
    for e, s in _sections(report):
        lines.append(
            f"| {e} | {s['status']} | "
            + " | ".join(_cell(s["counts"].get(c, "")) for c in COUNT_COLUMNS)
            + " |"
        )
    lines.append("| **total** | | " + " | ".join(str(report["totals"][c]) for c in COUNT_COLUMNS) + " |")
    for e, s in _sections(report):
        parts: list[str] = []
        if s.get("guard"):
            parts.append(f"- Guard: {s['guard']}")
        if s.get("approval_decision"):
            parts.append(f"- Approval: {decision_sentence(s['approval_decision'])}")
        for f in s.get("table_failures") or []:
            parts.append(f"- Load stopped (`{f['expectation']}`): {f['reason']}")
        if s.get("data_docs"):
            parts.append(f"- Data Docs: {s['data_docs']}")
        tables = (
            (
                "Planned writes" if report["dry_run"] else "Writes",
                s.get("planned") if report["dry_run"] else [],
            ),
            ("Conflicts (G2)", s.get("conflicts")),
            ("Quarantined (G3)", s.get("quarantined")),
            ("Deferred", s.get("deferred")),
            ("Warnings (G3, synced)", s.get("warnings")),
            ("Left alone", s.get("skipped")),
            ("Failed writes", s.get("failures")),
        )
        for title, items in tables:
            if not items:
                continue
            parts += ["", f"**{title}** ({len(items)}):", ""]
            for item in items[:20]:
                if "field" in item:
                    parts.append(
                        f"- {item['key']} `{item['field']}`: Sage {item['sage_value']!r} / SSM "
                        f"{item['ssm_value']!r} → {item['winner']} wins"
                    )
                elif "error" in item:
                    parts.append(f"- {item['kind']} {item['key']}: {_cell(item['error'])}")
                elif "kind" in item:
                    parts.append(f"- {item['kind']} {item['key']} ({item['rule']}): {_cell(item['reason'])}")
                else:
                    parts.append(f"- {item['key']} ({item['rule']}): {_cell(item['reason'])}")
            if len(items) > 20:
                parts.append(f"- … {len(items) - 20} more in the JSON report")
        if parts:
            lines += ["", f"## {e}", "", *parts]
    lines += _matching_markdown(report)
    return "\n".join(lines) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """A small self-contained HTML page of the Markdown report (no external asset); each table stays in place."""
    body: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table.clear()

    for line in render_markdown(report).splitlines():
        text = html.escape(line)
        if line.startswith("|"):
            if not line.startswith("|---"):
                cells = [c.strip() for c in line.strip("|").split(" | ")]
                table.append(
                    "<tr>" + "".join(f"<td>{html.escape(c.strip('* '))}</td>" for c in cells) + "</tr>"
                )
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            # The one bold phrase the report uses (a status, "Deadline missed") keeps its emphasis.
            body.append("<p>" + _BOLD.sub(r"<strong>\1</strong>", text) + "</p>")
    flush()
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
        "td{border:1px solid #ccc;padding:.2em .6em}tr:first-child td{font-weight:bold;background:#eee}"
    )
    title = html.escape(str(report["run_id"]))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sync report {title}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _read_json(path: Location) -> dict[str, Any] | None:
    """A report file as written, or None when there is none."""
    data = read_bytes_or_none(path)
    return json.loads(data) if data is not None else None


def amend_report_with_deadline(reports_dir: Location, name: str, alert: dict[str, Any]) -> bool:
    """Add a deadline alert that fired after the run's report was written; ``False`` if there is no report yet.

    ``latest.json`` is rewritten only while it is still this run's report (a later run must not be replaced).
    """
    report = _read_json(reports_dir / f"{name}.json")
    if report is None:
        return False
    report.update(deadline_fields(alert))
    latest = _read_json(reports_dir / "latest.json") or {}
    write_report(report, reports_dir, name, latest=latest.get("run_id") == report.get("run_id"))
    return True


def write_report(
    report: dict[str, Any], reports_dir: Location, name: str, *, latest: bool = True
) -> dict[str, Location]:
    """Write ``<name>.json``, ``<name>.md``, ``<name>.html`` and refresh ``latest.json`` / ``latest.md``.

    Each file is written whole (atomically on a local disk): a reader never sees half a report.
    """
    text = json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True, default=str).encode("utf-8")
    paths = {
        "json": reports_dir / f"{name}.json",
        "markdown": reports_dir / f"{name}.md",
        "html": reports_dir / f"{name}.html",
        "latest": reports_dir / "latest.json",
    }
    markdown = render_markdown(report).encode("utf-8")
    write_bytes_atomic(paths["json"], text)
    write_bytes_atomic(paths["markdown"], markdown)
    write_bytes_atomic(paths["html"], render_html(report).encode("utf-8"))
    if latest:
        write_bytes_atomic(paths["latest"], text)
        write_bytes_atomic(reports_dir / "latest.md", markdown)
    return paths
