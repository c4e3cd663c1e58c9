"""Row and key hashes of the snapshot diff: stable across processes, blind to representation, not to content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from sage_sync.engine.row_hash import row_hashes, snapshot_hashes

TEXT = ["Œuf €", None, "", "Crème brûlée", "Œuf €", "a" * 300]


def test_hashes_are_stable_across_processes_and_hash_seeds() -> None:
    """Persisted hashes are compared in a later run, so they must not depend on Python's per-process hash seed."""
    script = (
        "import json, pandas as pd; from sage_sync.engine.row_hash import snapshot_hashes;"
        "f = pd.DataFrame({'CT_Num': ['A', 'B'], 'CT_Intitule': ['Œuf €', None], 'CT_Sommeil': [0, 1]});"
        "h = snapshot_hashes(f, ['CT_Num'], ['CT_Intitule', 'CT_Sommeil']);"
        "print(json.dumps([h.key_hashes.tolist(), h.row_hashes.tolist()]))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    output = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
    ).stdout
    frame = pd.DataFrame({"CT_Num": ["A", "B"], "CT_Intitule": ["Œuf €", None], "CT_Sommeil": [0, 1]})
    here = snapshot_hashes(frame, ["CT_Num"], ["CT_Intitule", "CT_Sommeil"])
    assert json.loads(output) == [here.key_hashes.tolist(), here.row_hashes.tolist()]


def test_text_hash_ignores_the_pandas_representation() -> None:
    chunked = pa.chunked_array([pa.array(TEXT[:2]), pa.array(TEXT[2:5]), pa.array(TEXT[5:])])
    representations = {
        "object": pd.Series(TEXT, dtype=object),
        "str": pd.Series(TEXT, dtype="str"),
        "python string": pd.Series(TEXT, dtype=pd.StringDtype("python")),
        "arrow large_string": pd.Series(
            pd.array(pa.array(TEXT, pa.large_string()), dtype=pd.ArrowDtype(pa.large_string()))
        ),
        "arrow chunked": pd.Series(pd.array(chunked, dtype=pd.ArrowDtype(pa.string()))),
        "arrow sliced": pd.Series(pd.array(pa.array(["x", *TEXT])[1:], dtype=pd.ArrowDtype(pa.string()))),
        "categorical": pd.Series(TEXT, dtype="category"),
    }
    hashes = {
        name: snapshot_hashes(pd.DataFrame({"k": range(6), "t": values}), ["k"], ["t"]).row_hashes
        for name, values in representations.items()
    }
    first = hashes.pop("object")
    for name, other in hashes.items():
        np.testing.assert_array_equal(other, first, err_msg=name)
    # Equal text hashes equal, different text (and null versus empty) does not.
    assert first[0] == first[4]
    assert len({first[0], first[1], first[2], first[3], first[5]}) == 5


def test_number_hash_ignores_representation_but_not_value() -> None:
    variants = [
        pd.Series([1.1, 7.0, None, 0.0]),
        pd.Series([Decimal("1.10"), 7, None, Decimal("-0")], dtype=object),
        pd.array(
            [Decimal("1.1"), Decimal("7"), None, Decimal("0")], dtype=pd.ArrowDtype(pa.decimal128(10, 2))
        ),
        pd.Series([1.1000000000000001, 7, None, -0.0], dtype="Float64"),
    ]
    hashes = [
        snapshot_hashes(pd.DataFrame({"k": range(4), "n": pd.Series(v)}), ["k"], ["n"]).row_hashes
        for v in variants
    ]
    for other in hashes[1:]:
        np.testing.assert_array_equal(other, hashes[0])
    changed = snapshot_hashes(
        pd.DataFrame({"k": range(4), "n": [1.11, 7.0, 0.0, 0.0]}), ["k"], ["n"]
    ).row_hashes
    assert (changed != hashes[0]).tolist() == [True, False, True, False]


def test_row_hash_ignores_column_order_but_sees_values_moving_between_columns() -> None:
    frame = pd.DataFrame({"k": ["A"], "CT_Adresse": ["1 rue de la Paix"], "CT_Complement": ["Bât. B"]})
    reordered = frame[["CT_Complement", "k", "CT_Adresse"]]
    swapped = frame.assign(CT_Adresse=["Bât. B"], CT_Complement=["1 rue de la Paix"])
    columns = ["CT_Adresse", "CT_Complement"]

    base = snapshot_hashes(frame, ["k"], columns).row_hashes
    assert snapshot_hashes(reordered, ["k"], list(reversed(columns))).row_hashes == base
    assert snapshot_hashes(swapped, ["k"], columns).row_hashes != base


def test_key_and_row_hashes_are_independent() -> None:
    frame = pd.DataFrame({"AR_Ref": ["X"], "AR_Design": ["X"]})
    hashes = snapshot_hashes(frame, ["AR_Ref"], ["AR_Design"])
    assert hashes.key_hashes[0] != hashes.row_hashes[0]


def test_row_hashes_series_is_indexed_by_the_natural_key() -> None:
    frame = pd.DataFrame({"CT_Num": ["A", "A"], "CT_No": [1, 2], "CT_Nom": ["Dupont", "Durand"]})
    series = row_hashes(frame, ["CT_Num", "CT_No"], ["CT_Nom"])
    assert series.dtype == np.uint64
    assert series.index.tolist() == [("A", 1), ("A", 2)]
    assert series.loc[("A", 1)] != series.loc[("A", 2)]


def test_text_hashing_spans_many_buffer_chunks() -> None:
    """Long columns are hashed chunk by chunk; a value's hash must not depend on where a chunk starts."""
    values = [f"ligne {i} é" * (1 + i % 7) for i in range(60_000)]
    frame = pd.DataFrame({"k": range(60_000), "t": values})
    whole = snapshot_hashes(frame, ["k"], ["t"]).row_hashes
    tail = snapshot_hashes(frame.iloc[30_001:].reset_index(drop=True), ["k"], ["t"]).row_hashes
    np.testing.assert_array_equal(whole[30_001:], tail)
