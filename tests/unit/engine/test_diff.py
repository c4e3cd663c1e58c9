"""Snapshot diff: classification by natural key, changed fields, nulls, numbers, duplicates, edge runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sage_sync.engine.diff import DuplicateKeyError, NullKeyError, diff_snapshots
from sage_sync.engine.row_hash import snapshot_hashes
from sage_sync.errors import ConfigurationError, FatalSyncError

INVOICE_KEY = ["DO_Domaine", "DO_Piece"]


def invoices(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["DO_Domaine", "DO_Piece", "DO_Type", "DO_Tiers", "DO_TotalTTC", "DO_MontantRegle"]
    )


def test_i1_posting_an_invoice_is_an_update_of_do_type_not_a_delete_and_create() -> None:
    """I1: DO_Type 6 -> 7 on the same (DO_Domaine, DO_Piece) is an update whose only changed field is DO_Type."""
    previous = invoices([(0, "FA00001", 6, "DUPONT", 120.0, 0.0), (0, "FA00002", 7, "MARTIN", 60.0, 60.0)])
    current = invoices([(0, "FA00001", 7, "DUPONT", 120.0, 0.0), (0, "FA00002", 7, "MARTIN", 60.0, 60.0)])

    diff = diff_snapshots(previous, current, INVOICE_KEY)

    assert diff.counts() == {"created": 0, "updated": 1, "deleted": 0, "unchanged": 1}
    assert diff.changed_fields() == {(0, "FA00001"): ["DO_Type"]}
    assert diff.updated["DO_Type"].tolist() == [7]
    assert diff.updated_previous["DO_Type"].tolist() == [6]
    assert diff.created.empty and diff.deleted.empty


def test_same_piece_in_two_domains_are_two_keys() -> None:
    previous = invoices([(0, "F1", 6, "A", 1.0, 0.0), (1, "F1", 6, "B", 2.0, 0.0)])
    current = invoices([(1, "F1", 6, "B", 2.5, 0.0)])

    diff = diff_snapshots(previous, current, INVOICE_KEY)

    assert diff.deleted[INVOICE_KEY].to_records(index=False).tolist() == [(0, "F1")]
    assert diff.changed_fields() == {(1, "F1"): ["DO_TotalTTC"]}


def test_contacts_composite_key_created_updated_deleted_unchanged() -> None:
    key = ["CT_Num", "CT_No"]
    previous = pd.DataFrame(
        {
            "CT_Num": ["DUPONT", "DUPONT", "MARTIN", "MARTIN"],
            "CT_No": [1, 2, 1, 2],
            "CT_Nom": ["Dupont", "Durand", "Martin", "Moreau"],
            "CT_EMail": ["a@x.fr", None, "m@x.fr", "mo@x.fr"],
        }
    )
    current = pd.DataFrame(
        {
            "CT_Num": ["MARTIN", "DUPONT", "DUPONT", "LEFEVRE"],
            "CT_No": [2, 1, 2, 1],
            "CT_Nom": ["Moreau", "Dupont", "Durand-Petit", "Lefèvre"],
            "CT_EMail": ["mo@x.fr", "a@x.fr", "d@x.fr", None],
        }
    )

    diff = diff_snapshots(previous, current, key)

    assert diff.counts() == {"created": 1, "updated": 1, "deleted": 1, "unchanged": 2}
    assert diff.created[key].to_records(index=False).tolist() == [("LEFEVRE", 1)]
    assert diff.deleted[key].to_records(index=False).tolist() == [("MARTIN", 1)]
    assert diff.changed_fields() == {("DUPONT", 2): ["CT_Nom", "CT_EMail"]}
    # The changed flags are aligned with the updated rows, which keep the current frame's index labels.
    assert diff.changed.index.tolist() == diff.updated.index.tolist() == [2]
    assert diff.changed.loc[2].to_dict() == {"CT_Nom": True, "CT_EMail": True}


@pytest.mark.parametrize("key_name", ["CT_Num", "AR_Ref"])
def test_single_column_keys(key_name: str) -> None:
    previous = pd.DataFrame({key_name: ["A1", "B2", "C3"], "label": ["x", "y", "z"], "qty": [1, 2, 3]})
    current = pd.DataFrame({key_name: ["C3", "A1", "D4"], "label": ["z", "x", "w"], "qty": [4, 1, 0]})

    diff = diff_snapshots(previous, current, [key_name])

    assert diff.changed_fields() == {"C3": ["qty"]}
    assert diff.created[key_name].tolist() == ["D4"]
    assert diff.deleted[key_name].tolist() == ["B2"]
    assert diff.unchanged_count == 1


def test_columns_argument_limits_what_is_compared() -> None:
    previous = pd.DataFrame(
        {"CT_Num": ["A"], "CT_Intitule": ["Alpha"], "cbModification": [pd.Timestamp("2024-01-01")]}
    )
    current = pd.DataFrame(
        {"CT_Num": ["A"], "CT_Intitule": ["Alpha"], "cbModification": [pd.Timestamp("2024-06-01")]}
    )

    assert diff_snapshots(previous, current, ["CT_Num"], columns=["CT_Intitule"]).counts()["unchanged"] == 1
    assert diff_snapshots(previous, current, ["CT_Num"]).changed_fields() == {"A": ["cbModification"]}


def test_nulls_equal_nulls_whatever_their_spelling() -> None:
    previous = pd.DataFrame(
        {
            "CT_Num": ["A", "B", "C", "D", "E"],
            "CT_EMail": pd.Series([None, None, "x@y.fr", None, ""], dtype=object),
            "CT_Prospect": pd.array([pd.NA, 1, pd.NA, 0, 0], dtype="Int64"),
        }
    )
    current = pd.DataFrame(
        {
            "CT_Num": ["A", "B", "C", "D", "E"],
            "CT_EMail": pd.Series([np.nan, None, None, "", ""], dtype="str"),
            "CT_Prospect": [np.nan, 1.0, np.nan, 0.0, np.nan],
        }
    )

    diff = diff_snapshots(previous, current, ["CT_Num"])

    # A: null == NaN; B: 1 == 1.0; C: text became null; D: null became "" (not the same); E: 0 became null.
    assert diff.changed_fields() == {"C": ["CT_EMail"], "D": ["CT_EMail"], "E": ["CT_Prospect"]}
    assert diff.unchanged_count == 2


def test_decimals_and_floats_do_not_change_by_representation() -> None:
    decimals = pa.array(
        [Decimal("1.10"), Decimal("0.30"), Decimal("12.345678"), Decimal("0")], pa.decimal128(24, 6)
    )
    previous = pd.DataFrame(
        {
            "AR_Ref": ["A", "B", "C", "D"],
            "AR_PrixVen": pd.Series(pd.array(decimals, dtype=pd.ArrowDtype(decimals.type))),
        }
    )
    current_floats = pd.DataFrame(
        {"AR_Ref": ["A", "B", "C", "D"], "AR_PrixVen": [1.1, 0.1 + 0.2, 12.3456780000001, -0.0]}
    )
    current_objects = pd.DataFrame(
        {
            "AR_Ref": ["A", "B", "C", "D"],
            "AR_PrixVen": [Decimal("1.1"), Decimal("0.3000"), Decimal("12.345678"), 0],
        }
    )

    for current in (current_floats, current_objects):
        assert diff_snapshots(previous, current, ["AR_Ref"]).counts()["unchanged"] == 4

    changed = current_floats.assign(AR_PrixVen=[1.1, 0.3, 12.345679, 0.0])
    assert diff_snapshots(previous, changed, ["AR_Ref"]).changed_fields() == {"C": ["AR_PrixVen"]}


def test_decimals_argument_sets_the_compared_precision() -> None:
    previous = pd.DataFrame({"AR_Ref": ["A"], "AR_PrixVen": [10.004]})
    current = pd.DataFrame({"AR_Ref": ["A"], "AR_PrixVen": [10.001]})

    assert diff_snapshots(previous, current, ["AR_Ref"], decimals=2).unchanged_count == 1
    assert diff_snapshots(previous, current, ["AR_Ref"]).changed_fields() == {"A": ["AR_PrixVen"]}


def test_dates_compare_by_instant_whatever_their_type() -> None:
    previous = pd.DataFrame(
        {
            "DO_Piece": ["F1", "F2", "F3"],
            "DO_Date": [dt.date(2024, 3, 1), dt.date(2024, 3, 2), None],
            "cbModification": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 11:00", None]),
        }
    )
    current = pd.DataFrame(
        {
            "DO_Piece": ["F1", "F2", "F3"],
            "DO_Date": pd.Series(pd.to_datetime(["2024-03-01", "2024-03-03", None]).astype("datetime64[s]")),
            "cbModification": pd.to_datetime(
                ["2024-03-01 10:00", "2024-03-02 11:00", None], utc=True
            ).tz_convert("Europe/Paris"),
        }
    )

    diff = diff_snapshots(previous, current, ["DO_Piece"])

    assert diff.changed_fields() == {"F2": ["DO_Date"]}


def test_unicode_text_is_compared_byte_for_byte() -> None:
    previous = pd.DataFrame(
        {"CT_Num": ["OEUF", "EURO", "SAME"], "CT_Intitule": ["Œuf €", "Prix 10 €", "Crème brûlée"]}
    )
    current = pd.DataFrame(
        {"CT_Num": ["OEUF", "EURO", "SAME"], "CT_Intitule": ["Oeuf €", "Prix 10 € ", "Crème brûlée"]}
    )

    diff = diff_snapshots(previous, current, ["CT_Num"])

    assert diff.changed_fields() == {"OEUF": ["CT_Intitule"], "EURO": ["CT_Intitule"]}
    assert diff.updated_previous["CT_Intitule"].tolist() == ["Œuf €", "Prix 10 €"]


def test_duplicate_keys_in_previous_are_refused_and_named() -> None:
    previous = invoices(
        [(0, "FA1", 6, "A", 1.0, 0.0), (0, "FA1", 7, "A", 1.0, 0.0), (0, "FA2", 6, "B", 1.0, 0.0)]
    )
    current = invoices([(0, "FA1", 7, "A", 1.0, 0.0)])

    with pytest.raises(
        DuplicateKeyError, match=r"previous snapshot: 1 natural key\(s\).*\(0, 'FA1'\)"
    ) as caught:
        diff_snapshots(previous, current, INVOICE_KEY)
    assert isinstance(caught.value, FatalSyncError)
    assert caught.value.duplicates == [(0, "FA1")]


@pytest.mark.parametrize(
    "current_pieces",
    [["FA1", "FA1"], ["NEW", "NEW"], ["FA1", "NEW", "NEW", "FA1"]],
    ids=["known-key-twice", "new-key-twice", "both"],
)
def test_duplicate_keys_in_current_are_refused(current_pieces: list[str]) -> None:
    previous = invoices([(0, "FA1", 6, "A", 1.0, 0.0)])
    current = invoices([(0, p, 6, "A", 1.0, 0.0) for p in current_pieces])

    with pytest.raises(DuplicateKeyError, match="current snapshot") as caught:
        diff_snapshots(previous, current, INVOICE_KEY)
    assert set(caught.value.duplicates) == {(0, p) for p in current_pieces}


def test_missing_key_value_is_refused_with_its_row() -> None:
    previous = pd.DataFrame({"CT_Num": ["A"], "CT_Intitule": ["x"]})
    current = pd.DataFrame({"CT_Num": ["A", None], "CT_Intitule": ["x", "y"]})

    with pytest.raises(NullKeyError, match=r"current snapshot: 1 row\(s\).*CT_Num.*\[1\]"):
        diff_snapshots(previous, current, ["CT_Num"])


def test_first_run_with_empty_previous_creates_everything() -> None:
    current = invoices([(0, "FA1", 6, "A", 1.0, 0.0), (0, "FA2", 7, "B", 2.0, 2.0)])
    previous = current.iloc[:0]

    diff = diff_snapshots(previous, current, INVOICE_KEY)

    assert diff.counts() == {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0}
    pd.testing.assert_frame_equal(diff.created, current)


def test_empty_current_deletes_everything() -> None:
    """The diff reports every row deleted; withholding mass deletions (G4) is the plan's job, not the diff's."""
    previous = invoices([(0, "FA1", 6, "A", 1.0, 0.0), (0, "FA2", 7, "B", 2.0, 2.0)])
    current = pd.DataFrame({name: pd.Series([], dtype=object) for name in previous.columns})

    diff = diff_snapshots(previous, current, INVOICE_KEY)

    assert diff.counts() == {"created": 0, "updated": 0, "deleted": 2, "unchanged": 0}
    pd.testing.assert_frame_equal(diff.deleted, previous)


def test_both_empty() -> None:
    empty = invoices([])
    assert diff_snapshots(empty, empty, INVOICE_KEY).counts() == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
    }


def test_persisted_previous_hashes_are_reused_and_current_hashes_returned() -> None:
    previous = invoices([(0, "FA1", 6, "A", 1.0, 0.0), (0, "FA2", 7, "B", 2.0, 2.0)])
    current = invoices([(0, "FA1", 7, "A", 1.0, 0.0), (0, "FA2", 7, "B", 2.0, 2.0)])
    columns = ["DO_Type", "DO_Tiers", "DO_TotalTTC", "DO_MontantRegle"]
    persisted = snapshot_hashes(previous, INVOICE_KEY, columns)

    diff = diff_snapshots(previous, current, INVOICE_KEY, previous_hashes=persisted)

    assert diff.previous_hashes_reused
    assert diff.changed_fields() == {(0, "FA1"): ["DO_Type"]}
    # What the caller persists now is exactly what hashing the current extract gives.
    expected = snapshot_hashes(current, INVOICE_KEY, columns)
    np.testing.assert_array_equal(diff.current_hashes.row_hashes, expected.row_hashes)
    np.testing.assert_array_equal(diff.current_hashes.key_hashes, expected.key_hashes)
    # Next run: the committed current snapshot with its hashes, nothing changed.
    again = diff_snapshots(current, current, INVOICE_KEY, previous_hashes=diff.current_hashes)
    assert again.previous_hashes_reused and again.counts()["unchanged"] == 2


def test_hashes_of_another_scheme_are_recomputed_not_trusted() -> None:
    previous = invoices([(0, "FA1", 6, "A", 1.0, 0.0)])
    current = invoices([(0, "FA1", 7, "A", 1.0, 0.0)])
    other_columns = snapshot_hashes(previous, INVOICE_KEY, ["DO_Tiers"])

    diff = diff_snapshots(previous, current, INVOICE_KEY, previous_hashes=other_columns)

    assert not diff.previous_hashes_reused
    assert diff.changed_fields() == {(0, "FA1"): ["DO_Type"]}


def test_stale_row_hash_without_a_real_change_is_unchanged() -> None:
    previous = invoices([(0, "FA1", 6, "A", 1.0, 0.0), (0, "FA2", 6, "B", 1.0, 0.0)])
    columns = ["DO_Type", "DO_Tiers", "DO_TotalTTC", "DO_MontantRegle"]
    # Hashes made before FA2's row was last corrected: its row hash differs, its values do not.
    stale = snapshot_hashes(previous.assign(DO_Tiers=["A", "OLD"]), INVOICE_KEY, columns)

    diff = diff_snapshots(previous, previous.copy(), INVOICE_KEY, previous_hashes=stale)

    assert diff.counts() == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 2}


def test_key_hash_collision_is_caught_by_comparing_key_values() -> None:
    """Two distinct keys sharing a key hash are a delete plus a create, never an update."""
    previous = pd.DataFrame({"CT_Num": ["OLD"], "CT_Intitule": ["Ancien"]})
    current = pd.DataFrame({"CT_Num": ["NEW"], "CT_Intitule": ["Nouveau"]})
    real = snapshot_hashes(previous, ["CT_Num"], ["CT_Intitule"])
    colliding = type(real)(
        key=real.key,
        columns=real.columns,
        decimals=real.decimals,
        key_hashes=snapshot_hashes(current, ["CT_Num"], ["CT_Intitule"]).key_hashes,
        row_hashes=real.row_hashes,
    )

    diff = diff_snapshots(previous, current, ["CT_Num"], previous_hashes=colliding)

    assert diff.created["CT_Num"].tolist() == ["NEW"]
    assert diff.deleted["CT_Num"].tolist() == ["OLD"]
    assert diff.counts()["updated"] == 0


def test_repeated_key_hash_without_duplicate_keys_falls_back_to_exact_matching() -> None:
    previous = pd.DataFrame({"CT_Num": ["A", "B"], "CT_Intitule": ["a", "b"]})
    current = pd.DataFrame({"CT_Num": ["B", "A", "C"], "CT_Intitule": ["b", "a2", "c"]})
    real = snapshot_hashes(previous, ["CT_Num"], ["CT_Intitule"])
    colliding = type(real)(
        key=real.key,
        columns=real.columns,
        decimals=real.decimals,
        key_hashes=np.zeros(2, dtype=np.uint64),
        row_hashes=real.row_hashes,
    )

    diff = diff_snapshots(previous, current, ["CT_Num"], previous_hashes=colliding)

    assert diff.changed_fields() == {"A": ["CT_Intitule"]}
    assert diff.created["CT_Num"].tolist() == ["C"]
    assert diff.counts()["unchanged"] == 1


def test_previous_hashes_of_another_length_are_refused() -> None:
    previous = pd.DataFrame({"CT_Num": ["A", "B"], "CT_Intitule": ["a", "b"]})
    one_row = snapshot_hashes(previous.iloc[:1], ["CT_Num"], ["CT_Intitule"])

    with pytest.raises(ConfigurationError, match="1 entries but the previous snapshot has 2 rows"):
        diff_snapshots(previous, previous, ["CT_Num"], previous_hashes=one_row)


def test_missing_columns_and_bad_arguments_are_configuration_errors() -> None:
    previous = pd.DataFrame({"CT_Num": ["A"], "CT_Intitule": ["a"]})
    current = pd.DataFrame({"CT_Num": ["A"], "CT_Intitule": ["a"], "CT_Ville": ["Lyon"]})

    with pytest.raises(ConfigurationError, match=r"previous snapshot lacks column\(s\) \['CT_Ville'\]"):
        diff_snapshots(previous, current, ["CT_Num"])
    with pytest.raises(ConfigurationError, match="part of the natural key"):
        diff_snapshots(previous, previous, ["CT_Num"], columns=["CT_Num", "CT_Intitule"])
    with pytest.raises(ConfigurationError, match="at least one natural-key column"):
        diff_snapshots(previous, previous, [])


def test_uncomparable_column_type_is_named() -> None:
    previous = pd.DataFrame({"CT_Num": ["A"], "delay": pd.to_timedelta([1], unit="D")})
    mixed = pd.DataFrame({"CT_Num": ["A"], "CT_Intitule": pd.Series([("tuple",)], dtype=object)})

    with pytest.raises(ConfigurationError, match="column 'delay'"):
        diff_snapshots(previous, previous, ["CT_Num"])
    with pytest.raises(ConfigurationError, match="column 'CT_Intitule'"):
        diff_snapshots(mixed, mixed, ["CT_Num"])


def _large_pair(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    previous = pd.DataFrame(
        {
            "CT_Num": [f"C{i:07d}" for i in range(rows)],
            "CT_No": rng.integers(0, 3, rows),
            "CT_Nom": np.array(["Dupont", "Lefèvre", "Œuf", None], dtype=object)[rng.integers(0, 4, rows)],
            "AR_PrixVen": rng.integers(0, 10_000, rows) / 100,
        }
    )
    current = previous.drop(index=range(0, rows, 97)).copy()
    current.loc[current.index[::101], "AR_PrixVen"] += 1
    created = pd.DataFrame(
        {"CT_Num": ["NEW1", "NEW2"], "CT_No": [0, 1], "CT_Nom": ["Neuf", None], "AR_PrixVen": [1.0, 2.0]}
    )
    return previous, pd.concat([created, current.sample(frac=1, random_state=3)], ignore_index=True)


def test_large_snapshots_bucketed_alignment_matches_the_reference() -> None:
    """Past 131,072 rows keys are aligned bucket by bucket; the outcome must not change."""
    from tests.support.diff_reference import reference_diff

    previous, current = _large_pair(140_000)
    key = ["CT_Num", "CT_No"]

    ours = diff_snapshots(previous, current, key)
    expected = reference_diff(previous, current, key)

    assert ours.counts() == expected.counts()
    assert ours.counts()["deleted"] == len(range(0, 140_000, 97)) and ours.counts()["created"] == 2
    assert ours.changed_fields() == expected.changed_fields()


def test_large_snapshots_duplicates_are_still_refused() -> None:
    previous, current = _large_pair(140_000)
    doubled = pd.concat([current, current.iloc[[5]]], ignore_index=True)
    key = ["CT_Num", "CT_No"]
    name = (current.iloc[5]["CT_Num"], current.iloc[5]["CT_No"])

    with pytest.raises(DuplicateKeyError, match="current snapshot") as caught:
        diff_snapshots(previous, doubled, key)
    assert caught.value.duplicates == [name]
    with pytest.raises(DuplicateKeyError, match="previous snapshot"):
        diff_snapshots(pd.concat([previous, previous.iloc[[9]]], ignore_index=True), current, key)
