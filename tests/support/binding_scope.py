"""One scenario of the state's selection of candidate bindings (ADR 0018), for every supported state database."""

from __future__ import annotations

from sage_sync.engine.bindings import BindingScope
from sage_sync.engine.state import StateStore, bindings, now_iso, snapshot_rows

#: Stored values as the standard library wrote them before the state wrote orjson: ``NaN`` is not JSON to SQL.
LEGACY_NAN = '{"piece": "F4", "productId": 501, "total": NaN}'


def _legacy_rows(s: StateStore) -> None:
    """A binding and a committed row whose stored values the database cannot read (written by an earlier version)."""
    with s.engine.begin() as conn:
        conn.execute(
            bindings.insert().values(
                entity="invoice_lines",
                key="8",
                ssm_id=18,
                synced_json=LEGACY_NAN,
                status="ok",
                attempts=0,
                updated_at=now_iso(),
            )
        )
        conn.execute(
            snapshot_rows.insert().values(
                entity="scoped", key="K1", row_hash="h", values_json='{"is_prospect": 1, "ratio": NaN}'
            )
        )


def check_binding_scope(s: StateStore) -> None:
    """I1/G5: the state selects the line bindings of the invoices in scope, the lines named, and the lines whose
    product is empty or no live product's (and any whose values it cannot read: ``NaN`` is not JSON); a test
    among them keeps fewer; no scope reads them all."""
    s.bind("products", "ART1", 501, {"name": "Live"})
    s.bind("products", "ART2", 502, {"name": "Gone"}, status="deleted")
    s.bind("invoice_lines", "1", 11, {"piece": "F1", "productId": 501})  # its invoice is in scope
    s.bind("invoice_lines", "2", 12, {"piece": "F2", "productId": 501})  # named
    s.bind("invoice_lines", "3", 13, {"piece": "F3", "productId": None})  # no product yet
    s.bind("invoice_lines", "4", 14, {"piece": "F3", "productId": 502})  # its product is gone
    s.bind("invoice_lines", "5", 15, {"piece": "F4", "productId": 501})  # nothing to do: not selected
    s.bind("invoice_lines", "6", 16, {"piece": "F5"})  # no productId at all
    s.bind("invoice_lines", "7", None, None, status="failed")  # never written: no values
    _legacy_rows(s)  # binding "8" and committed row "K1": not JSON to SQL
    scope = BindingScope(
        keys=frozenset({"2"}), values=(("piece", frozenset({"F1"})),), links=(("productId", "products"),)
    )
    assert set(s.bindings("invoice_lines", scope=scope)) == {"1", "2", "3", "4", "6", "7", "8"}
    kept = s.bindings("invoice_lines", lambda key, synced: key not in ("3", "8"), scope)
    assert set(kept) == {"1", "2", "4", "6", "7"}
    assert kept["4"].synced == {"piece": "F3", "productId": 502}
    assert set(s.bindings("invoice_lines")) == {"1", "2", "3", "4", "5", "6", "7", "8"}
    assert set(s.bindings("invoice_lines", scope=BindingScope(keys=frozenset({"5"})))) == {"5", "8"}
    # G5: the failed creates (no SSM id) are selected with the keys named, not the other failed bindings.
    s.bind("invoice_lines", "9", 19, {"piece": "F4", "productId": 501}, status="failed")
    orphans = BindingScope(keys=frozenset({"5"}), failed_creates=True)
    assert set(s.bindings("invoice_lines", scope=orphans)) == {"5", "7", "8"}
    # A committed row the database cannot read as JSON is read here: its field is not lost.
    s.commit_rows("scoped", {"K2": ("h", {"is_prospect": 0})})
    assert s.snapshot_field("scoped", "is_prospect") == {"K1": 1, "K2": 0}
    assert s.bindings("invoice_lines")["8"].synced["piece"] == "F4"
    # What the state writes now is JSON the database reads: a float that is not finite is stored as null.
    s.bind("invoice_lines", "8", 18, {"piece": "F4", "productId": 501, "total": float("nan")})
    s.commit_rows("scoped", {"K1": ("h", {"is_prospect": 1, "ratio": float("inf")})})
    assert set(s.bindings("invoice_lines", scope=BindingScope(keys=frozenset({"5"})))) == {"5"}
    assert s.bindings("invoice_lines")["8"].synced == {"piece": "F4", "productId": 501, "total": None}
    assert s.snapshot_field("scoped", "is_prospect") == {"K1": 1, "K2": 0}
