"""Property: the fast snapshot diff agrees with the straightforward pandas merge-and-compare on random frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sage_sync.engine.diff import diff_snapshots
from sage_sync.engine.row_hash import snapshot_hashes
from tests.support.diff_reference import reference_diff

KEY = ["CT_Num", "CT_No"]
COLUMNS = ["CT_Nom", "CT_EMail", "CT_Civilite", "AR_PrixVen", "cbModification"]

keys = st.tuples(st.sampled_from(["DUPONT", "MARTIN", "ŒUF", "CAFÉ", "A"]), st.integers(0, 5))
values = st.fixed_dictionaries(
    {
        "CT_Nom": st.text(alphabet="abcÉéœŒ€ '-", max_size=6),
        "CT_EMail": st.none() | st.sampled_from(["", "a@x.fr", "b@x.fr"]),
        "CT_Civilite": st.none() | st.integers(0, 2),
        "AR_PrixVen": st.none() | st.sampled_from([0.0, -0.0, 0.1 + 0.2, 0.3, 1.1, 19.99, 1e9]),
        "cbModification": st.none()
        | st.datetimes(min_value=pd.Timestamp("2000-01-01"), max_value=pd.Timestamp("2030-01-01")),
    }
)
snapshot = st.dictionaries(keys, values, max_size=12)


def frame(rows: dict[tuple[str, int], dict[str, Any]], order: list[int]) -> pd.DataFrame:
    records = [{"CT_Num": k[0], "CT_No": k[1], **v} for k, v in rows.items()]
    records = [records[i] for i in order] if len(order) == len(records) else records
    out = pd.DataFrame(records, columns=[*KEY, *COLUMNS])
    return out.astype(
        {
            "CT_Num": "str",
            "CT_No": "int64",
            "CT_Nom": "str",
            "CT_EMail": "str",
            "CT_Civilite": "Int64",
            "AR_PrixVen": "float64",
            "cbModification": "datetime64[us]",
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(previous_rows=snapshot, current_rows=snapshot, data=st.data(), persisted=st.booleans())
def test_fast_diff_matches_the_pandas_merge_and_compare(
    previous_rows: dict, current_rows: dict, data: st.DataObject, persisted: bool
) -> None:
    # Current rows share keys with previous ones often enough to exercise updates and unchanged rows.
    for k, v in list(previous_rows.items())[: len(previous_rows) // 2]:
        current_rows.setdefault(k, v if data.draw(st.booleans()) else {**v, "CT_Nom": v["CT_Nom"] + "x"})
    previous = frame(previous_rows, data.draw(st.permutations(range(len(previous_rows)))))
    current = frame(current_rows, data.draw(st.permutations(range(len(current_rows)))))
    hashes = snapshot_hashes(previous, KEY, COLUMNS) if persisted else None

    ours = diff_snapshots(previous, current, KEY, previous_hashes=hashes)
    expected = reference_diff(previous, current, KEY)

    assert ours.counts() == expected.counts()
    assert ours.changed_fields() == expected.changed_fields()
    assert set(ours.created[KEY].itertuples(index=False, name=None)) == set(
        expected.created[KEY].itertuples(index=False, name=None)
    )
    assert set(ours.deleted[KEY].itertuples(index=False, name=None)) == set(
        expected.deleted[KEY].itertuples(index=False, name=None)
    )
    # Every key lands in exactly one class.
    assert sum(ours.counts().values()) == len(set(previous_rows) | set(current_rows))
    assert np.all(ours.changed.to_numpy().any(axis=1))
