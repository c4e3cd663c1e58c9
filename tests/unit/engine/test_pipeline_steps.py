"""Step helpers of the pipeline: quarantine hand-off (G3/G5), stale-plan token, the to-Sage quality check (G3)."""

from __future__ import annotations

from pathlib import Path

from sage_sync.engine.bindings import Binding
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.pipeline.validate_step import hold_quarantined
from sage_sync.engine.state import StateStore
from sage_sync.mapping.transforms import ValueLists


def _input(entity: str = "accounts") -> PlanInput:
    return PlanInput(
        entity=entity,
        run_at="2026-11-29T07:00:00.000Z",
        lists=ValueLists(),
        sage={"C1": {"code": "C1", "name": "A"}, "C2": {"code": "C2", "name": "B"}, "C3": {"code": "C3"}},
        created=["C3"],
        updated={"C1": ["name"]},
        unchanged=1,
        ssm=[{"id": 11, "extId": "C1", "dateUpdated": "2026-11-29T06:59:00.000Z"}],
        ssm_by_ext={"C3": {"id": 13}},
        bindings={
            "C1": Binding(11, {"name": "A0"}, ssm_date_updated="x"),
            "C2": Binding(12, {"name": "B"}, ssm_date_updated="y"),
        },
    )


def test_g3_quarantined_rows_leave_the_plan_and_their_ssm_change_stays_pending() -> None:
    inp = _input()
    held = hold_quarantined(inp, {"C1", "C3"})
    assert set(inp.sage) == {"C2"}
    assert inp.created == [] and inp.updated == {} and inp.ssm_by_ext == {}
    # C1's SSM record was read this run: it must be fetched again once the watermark moves past it (G5).
    assert held == {"11": "G3: Sage row C1 is quarantined"}


def test_state_token_moves_when_another_run_commits(tmp_path: Path) -> None:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.migrate()
    before = state.token("accounts")
    assert state.token("accounts") == before
    state.commit_rows("accounts", {"C1": ("h", {"code": "C1"})})
    after_commit = state.token("accounts")
    assert after_commit != before
    state.set_watermark("accounts", "2026-11-29T07:00:00.000Z")
    assert state.token("accounts") != after_commit
    assert state.token("contacts") == "None|0|0"


def test_g3_ssm_company_failing_the_to_sage_suite_is_not_written_to_sage(tmp_path: Path) -> None:
    """C4 + G3: a company created in SSM whose name Sage cannot store (cp1252) is quarantined, not written."""
    from sage_sync.engine.pipeline import StepContext
    from sage_sync.engine.pipeline.plan_step import check_writes_to_sage
    from sage_sync.engine.plan import Commit, Op, Plan
    from sage_sync.engine.staging import Staging

    plan = Plan("accounts")
    for code, name, sid in (("C000101", "Cave Saint-Vincent", 101), ("C000102", "Vins 🍷 du Sud", 102)):
        plan.ops.append(
            Op(
                "sage_insert",
                "accounts",
                code,
                "C4",
                "new",
                fields={"code": code, "name": name, "is_prospect": 0},
            )
        )
        plan.ops.append(
            Op("ssm_update", "accounts", code, "C4", "extId back", ssm_id=sid, fields={"extId": code})
        )
        plan.commits.append(
            Commit("accounts", code, row={"code": code}, ssm_id=sid, binding="ok", ssm_ids=[sid])
        )
    check_writes_to_sage(plan, StepContext.of("manual__test", "accounts", Staging(tmp_path)))
    assert {op.key for op in plan.ops} == {"C000101"}
    assert [c.key for c in plan.commits] == ["C000101"]
    assert [n.key for n in plan.quarantined] == ["C000102"]
    assert "cp1252" in plan.quarantined[0].reason or "character" in plan.quarantined[0].reason
    assert 102 in plan.pending


def test_g7_the_plan_digest_keeps_what_the_report_and_approvals_read(tmp_path: Path) -> None:
    """The report and the G4 approval read the plan's digest, not the plan of every record to write."""
    from sage_sync.engine.plan import DIGEST_OPS, Note, Op, Plan, digest, staged_digest
    from sage_sync.engine.staging import Staging

    ops = [Op("ssm_create", "accounts", f"C{i:04d}", "C1", "new") for i in range(DIGEST_OPS + 50)]
    ops.append(Op("ssm_update", "accounts", "C9999", "C2", "edited", ssm_id=7))
    plan = Plan("accounts", ops=ops, deferred=[Note("accounts", "C1", "G4", "withheld")], withheld_set="f00d")
    staging = Staging(tmp_path / "run")
    staging.write_plan("accounts", plan)
    # A staging area without a digest (a run of an earlier version): made from the staged plan.
    made = staged_digest(staging, "accounts")
    assert made is not None and made["ops_total"] == DIGEST_OPS + 51
    assert made["ops_by_kind"] == {"ssm_create": DIGEST_OPS + 50, "ssm_update": 1}
    assert len(made["ops_head"]) == DIGEST_OPS and made["ops_head"][0]["key"] == "C0000"
    assert made["withheld_set"] == "f00d" and made["deferred"][0]["rule"] == "G4"
    assert "ops" not in made and "commits" not in made
    # The staged digest is read when present (the plan file itself is not needed).
    staging.write_json("accounts", "plan_digest.json", digest(plan))
    staging.path("accounts", "plan.jsonl").unlink()
    assert staged_digest(staging, "accounts") == made
    assert staged_digest(staging, "contacts") is None


def test_g5_the_staged_plan_is_read_back_whole_or_not_at_all(tmp_path: Path) -> None:
    """The plan the load and the commit apply is the plan the plan step made; a damaged file is a clear error."""
    import pytest

    from sage_sync.engine.plan import Commit, Conflict, Note, Op, Plan
    from sage_sync.engine.staging import Staging
    from sage_sync.errors import FatalSyncError

    ops = [
        Op(
            "ssm_create",
            "invoices",
            f"F{i}",
            "I1",
            "new invoice",
            fields={"number": f"F{i}", "total": 1.5 * i},
        )
        for i in range(2500)
    ]
    ops.append(Op("ssm_create", "invoices", "F1/1", "I1", "new line", refs={"productId": ["products", "P1"]}))
    commits = [Commit("invoices", f"F{i}", row={"piece": f"F{i}"}, binding="live") for i in range(2500)]
    commits.append(Commit("invoices", "F1/1", depends=[["invoices", "F1"]], ssm_ids=[7]))
    plan = Plan(
        "invoices",
        ops=ops,
        commits=commits,
        deferred=[Note("invoices", "F9", "K1", "its account waits")],
        conflicts=[Conflict("invoices", "F2", "total", 1, 2, "sage")],
        pending={7: "deferred"},
        guard="none",
        unchanged=3,
    )
    staging = Staging(tmp_path / "run")
    staging.write_plan("invoices", plan)
    assert staging.read_plan("invoices").to_dict() == plan.to_dict()
    without = staging.read_plan("invoices", commits=False)  # what the load reads
    assert without.commits == [] and without.ops == plan.ops and without.pending == {7: "deferred"}

    target = staging.path("invoices", "plan.jsonl")
    lines = target.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + 2501 + 2501
    target.write_bytes(b"".join(lines[:-10]))  # a file cut short (e.g. copied while being written)
    with pytest.raises(FatalSyncError, match=r"plan\.jsonl is damaged.*plan again"):
        staging.read_plan("invoices")
    with pytest.raises(FatalSyncError, match="upstream step did not complete"):
        staging.read_plan("contacts")
    with staging.staged_ops("invoices") as staged:  # the load reads the ops only: they are whole
        assert [op for _, op in staged.select("ssm_create", "invoices")] == plan.ops
    for cut in (b"".join(lines[:1000]), b"".join(lines[:2502])[:-40]):  # within the ops; within the last op
        target.write_bytes(cut)
        with pytest.raises(FatalSyncError, match=r"plan\.jsonl is damaged"), staging.staged_ops("invoices"):
            pass


def test_g5_staged_ops_commits_and_outcomes_hold_the_values_a_dict_of_their_fields_holds(
    tmp_path: Path,
) -> None:
    """The plan and the load's outcomes are staged from their dataclasses: same values as from a dict of fields.

    NumPy numbers, dates and keys that are not text (as a Sage frame gives them) are written as the step files
    write them everywhere (numbers, ``str``, text keys; nested keys sorted), and the commit step reads back the
    outcomes the load recorded, in order.
    """
    from datetime import date, datetime

    import numpy as np
    import orjson

    from sage_sync.engine.apply import ApplyResult, OpOutcome
    from sage_sync.engine.plan import Commit, Op, Plan
    from sage_sync.engine.staging import Staging, dumps

    row = {"piece": "F1", "total": np.float64(12.5), "lines": np.int64(3), "date": date(2026, 12, 5), 7: "x"}
    op = Op(
        "ssm_create",
        "invoices",
        "F1",
        "I1",
        "new invoice",
        fields={"z": datetime(2026, 12, 5, 7, 30), "a": np.float32(0.5), "total": np.float64(12.5)},
        refs={"accountId": ("accounts", "C1")},
    )
    commit = Commit("invoices", "F1", row=row, synced={"b": 1, "a": None}, depends=[("invoices", "F0")])
    staging = Staging(tmp_path / "run")
    staging.write_plan("invoices", Plan("invoices", ops=[op], commits=[commit]))
    _, op_line, commit_line = staging.path("invoices", "plan.jsonl").read_bytes().splitlines()
    assert orjson.loads(op_line) == orjson.loads(dumps(op.to_dict()))
    assert orjson.loads(commit_line) == orjson.loads(dumps(commit.to_dict()))
    assert orjson.loads(commit_line)["row"] == {
        "7": "x",
        "date": "2026-12-05",
        "lines": 3,
        "piece": "F1",
        "total": 12.5,
    }
    assert b'"synced":{"a":null,"b":1}' in commit_line  # nested keys sorted, as in every step file
    staged = staging.read_plan("invoices")
    assert staged.ops[0].fields == {"a": 0.5, "total": 12.5, "z": "2026-12-05 07:30:00"}
    assert staged.commits[0].depends == [["invoices", "F0"]]

    outcomes = [
        OpOutcome("ssm_create", "invoices", "F1", True, 41, "2026-12-05T07:30:00.000Z"),
        OpOutcome("ssm_create", "invoices", "F2", False, None, None, "HTTPError: 500"),
    ]
    staging.write_json("invoices", "apply.json", ApplyResult("invoices", outcomes, api_calls=2).to_dict())
    back = ApplyResult.from_dict(staging.read_json("invoices", "apply.json"))
    assert back.outcomes == outcomes and back.api_calls == 2


def test_g5_a_plan_input_is_staged_in_parts_and_read_back_whole(tmp_path: Path) -> None:
    """A plan input's large mappings and lists are staged a part per line (ADR 0018, decision 40), read back as
    they were; a file cut short is a clear error, never a smaller input."""
    import pytest

    from sage_sync.engine.staging import INPUT_PART, Staging
    from sage_sync.errors import FatalSyncError

    size = 2 * INPUT_PART + 7
    inp = PlanInput(
        entity="invoices",
        run_at="2026-12-05T12:00:00Z",
        lists=ValueLists(),
        sage={
            f"FA{n:06d}": {"piece": f"FA{n:06d}", "lines": [{"line_id": n, "quantity": 1.5}]}
            for n in range(size)
        },
        created=[f"FA{n:06d}" for n in range(size)],
        bindings={
            f"FA{n:06d}": Binding(ssm_id=n + 1, synced={"piece": f"FA{n:06d}"}) for n in range(0, size, 2)
        },
        reserved={"17": "C017"},
        creators={12: 3},
        unchanged=4,
    )
    staging = Staging(tmp_path / "run")
    staging.write_input("invoices", "input.jsonl", inp)
    lines = staging.path("invoices", "input.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + 3 + 3 + 2  # the head, then sage, created and bindings in parts
    again = staging.read_input("invoices", "input.jsonl")
    assert again == inp and list(again.sage) == sorted(inp.sage) and again.creators == {12: 3}

    staging.path("invoices", "input.jsonl").write_bytes(b"".join(lines[:-1]))
    with pytest.raises(FatalSyncError, match=r"input\.jsonl is damaged"):
        staging.read_input("invoices", "input.jsonl")


def test_g3_the_validation_restages_the_extracted_records_less_the_quarantined_ones(tmp_path: Path) -> None:
    """The extract stages each invoice with its lines, made records a part at a time (ADR 0018, decision 42); the
    validation reads the input without the records and stages them again less the quarantined invoices, the
    parts without one byte for byte; a cut extract is a clear error."""
    import copy

    import pandas as pd
    import pytest

    from sage_sync.engine.snapshot import group_lines
    from sage_sync.engine.staging import EXTRACTED_INPUT, INPUT_PART, PLAN_INPUT, Staging
    from sage_sync.errors import FatalSyncError

    size = 2 * INPUT_PART + 7
    pieces = [f"FA{n:06d}" for n in range(size)]
    headers = pd.DataFrame({"piece": pieces, "total": [float(n) for n in range(size)]})
    lines_frame = pd.DataFrame(
        {
            "piece": [p for n, p in enumerate(pieces) for _ in range(n % 3)],
            "line_id": pd.array([10 * n + k for n in range(size) for k in range(n % 3)], dtype="Int64"),
            "position": [k for n in range(size) for k in range(n % 3)],
            "quantity": [1.5] * sum(n % 3 for n in range(size)),
        }
    )
    _, lines = group_lines(headers, lines_frame, {}, "piece")
    records = {p: {"piece": p, "total": float(n)} for n, p in enumerate(pieces)}
    inp = PlanInput(
        entity="invoices",
        run_at="2026-12-05T12:00:00Z",
        lists=ValueLists(),
        sage=records,
        created=list(pieces),
        bindings={p: Binding(ssm_id=n + 1, synced={"piece": p}) for n, p in enumerate(pieces) if n % 2},
    )
    assert lines.line_ids(records, ["FA000002", "FA000001", "FA000000"]) == ["20", "21", "10"]
    whole = copy.deepcopy(inp)
    lines.attach(whole.sage)  # every invoice with its lines at once: what the extract staged before
    staging = Staging(tmp_path / "run")
    staging.write_input("invoices", EXTRACTED_INPUT, inp, lines)
    assert all("lines" not in r for r in inp.sage.values())  # the lines were given back after their part
    assert staging.read_input("invoices", EXTRACTED_INPUT) == whole
    assert whole.sage["FA000005"]["lines"] == [
        {"line_id": 50, "piece": "FA000005", "position": 0, "quantity": 1.5},
        {"line_id": 51, "piece": "FA000005", "position": 1, "quantity": 1.5},
    ]

    head = staging.read_input("invoices", EXTRACTED_INPUT, records=False)
    assert head.sage == {} and head.sage_size == size and head.created == pieces
    drop = {"FA000003", "FA010004"}  # in the first and the third part of the records
    held = hold_quarantined(head, drop)
    staging.restage_input("invoices", EXTRACTED_INPUT, PLAN_INPUT, head, drop)
    planned = staging.read_input("invoices", PLAN_INPUT)
    assert set(planned.sage) == set(pieces) - drop
    assert planned.sage == {k: v for k, v in whole.sage.items() if k not in drop}
    assert planned.created == [p for p in pieces if p not in drop] and held == {}
    assert planned.bindings == whole.bindings and planned.sage_size == size
    extracted = staging.path("invoices", EXTRACTED_INPUT).read_bytes().splitlines(keepends=True)
    restaged = staging.path("invoices", PLAN_INPUT).read_bytes().splitlines(keepends=True)
    records_of = [line for line in extracted if line.startswith(b'{"field":"sage"')]
    records_to = [line for line in restaged if line.startswith(b'{"field":"sage"')]
    assert len(records_of) == len(records_to) == 3
    assert (
        records_to[1] == records_of[1] and records_to[0] != records_of[0] and records_to[2] != records_of[2]
    )

    # Cut within a part without a dropped key (else copied as it is), or a part holding one garbled: clear errors.
    garbled = [*extracted[:3], extracted[3].replace(b'"total"', b'"total', 1), *extracted[4:]]
    for damaged, error in ((extracted[:2] + [extracted[2][:-10]], "is cut short"), (garbled, "is damaged")):
        staging.path("invoices", EXTRACTED_INPUT).write_bytes(b"".join(damaged))
        with pytest.raises(FatalSyncError, match=rf"extract_input\.jsonl {error}"):
            staging.restage_input("invoices", EXTRACTED_INPUT, PLAN_INPUT, head, drop)
    assert staging.read_input("invoices", PLAN_INPUT) == planned  # the earlier file is left whole
