"""Product snapshot assembly (D2, D3, D6) and contact filtering (K4), on frames built in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sage_sync.hooks.sage50_frames import arrow_to_frame, empty_frame, rows_to_frame
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.sage_snapshot import assemble_products, media_path, rows_within, stock_text

PRODUCTS = load_mapping("products")


def _frame(source: str, rows: Sequence[tuple[object, ...]]) -> pd.DataFrame:
    fields = [f for f in PRODUCTS.sources[source].fields if f.sage]
    return rows_to_frame(rows, fields)


def _frames() -> dict[str, pd.DataFrame]:
    articles = [
        # ref, design, family, buy, sell, ttc, stock_managed, unit, barcode, photo, asleep, modified
        ("A1", "Stocké", "F1", 1.0, 12.0, 1, 2, "Pièce", None, "img/a1.png", 0, None),
        ("A2", "Service", "F2", None, 50.0, 0, 0, None, None, None, 0, None),
        ("A3", "Stocké sans stock", None, None, 5.0, 0, 2, None, None, "../escape.png", 1, None),
    ]
    return {
        "articles": _frame("articles", articles),
        "stock": _frame("stock", [("A1", 1, 10.5), ("A1", 2, 2.0), ("A2", 1, 99.0)]),
        "accounting": _frame("accounting", [("A1", 0, 1, "T20"), ("A2", 0, 1, "T55")]),
        "taxes": _frame("taxes", [("T20", 20.0), ("T55", 5.5), ("T10", 10.0)]),
        "families": _frame("families", [("F1", "Épicerie"), ("F2", "Prestations")]),
    }


def test_products_derived_fields(tmp_path: Path) -> None:
    """D2 stock total over depots / dash without stock management, D6 VAT rate, D3 picture hash."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a1.png").write_bytes(b"\x89PNG fake")
    (tmp_path.parent / "escape.png").write_bytes(b"outside")

    def picture_sha256(rel: str) -> str | None:
        path = media_path(tmp_path, rel)
        return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None

    products = assemble_products(_frames(), PRODUCTS, picture_sha256).set_index("ref")
    assert products.loc["A1", "stock_total"] == 12.5
    assert products.loc["A1", "stock_display"] == "12.5"
    assert pd.isna(products.loc["A2", "stock_total"])  # service: no stock management, even with a stock row
    assert products.loc["A2", "stock_display"] == "-"
    assert products.loc["A3", "stock_total"] == 0.0
    assert products.loc["A3", "stock_display"] == "0"
    assert products.loc["A1", "vat_rate"] == 20.0
    assert products.loc["A2", "vat_rate"] == 5.5
    assert pd.isna(products.loc["A3", "vat_rate"])
    assert products.loc["A1", "family_name"] == "Épicerie"
    assert pd.isna(products.loc["A3", "family_name"])
    assert products.loc["A1", "picture_sha256"] == hashlib.sha256(b"\x89PNG fake").hexdigest()
    assert pd.isna(products.loc["A2", "picture_sha256"])
    assert pd.isna(products.loc["A3", "picture_sha256"])  # outside the media folder: never read
    assert products.loc["A1", "price_includes_tax"] == 1
    for f in PRODUCTS.derived:
        assert str(products[f.name].dtype) == f.pandas_dtype


def test_without_media_folder_no_picture_is_hashed() -> None:
    assert assemble_products(_frames(), PRODUCTS)["picture_sha256"].isna().all()
    assert media_path(None, "a.png") is None


def test_stock_text() -> None:
    assert stock_text(12.0) == "12"
    assert stock_text(2.5) == "2.5"
    assert stock_text(0.1 + 0.2) == "0.3"  # D2: binary floating-point noise never reaches SSM
    assert stock_text(372.91 + 85.27 + 9.85) == "468.03"
    assert stock_text(0.000125) == "0.000125"
    assert stock_text(None) == "-"


def test_contacts_of_suppliers_are_dropped() -> None:
    """K4 / SPEC section 1: only people of customer or prospect accounts are contacts."""
    contacts = pd.DataFrame({"account_code": ["C1", "S1", "C2"], "number": [1, 1, 1]})
    kept = rows_within(contacts, "account_code", pd.Series(["C1", "C2"]))
    assert kept["account_code"].tolist() == ["C1", "C2"]


def test_frames_have_mapping_dtypes_from_both_fetch_shapes() -> None:
    """pyodbc rows (Decimal, date) and Arrow batches give identical typed frames."""
    from datetime import date, datetime
    from decimal import Decimal

    fields = [f for f in load_mapping("invoices").sources["headers"].fields if f.sage]
    row = (0, 7, "FA1", date(2024, 1, 2), None, "C1", 2, Decimal("10.5"), Decimal("12.6"), Decimal("12.6"),
           Decimal("0"), datetime(2024, 1, 3, 4, 5))  # fmt: skip
    from_rows = rows_to_frame([row], fields)
    batch = pa.record_batch(
        [pa.array([v]) if v is not None else pa.array([None], pa.string()) for v in row],
        names=[f.sage for f in fields],  # type: ignore[misc]
    )
    from_arrow = arrow_to_frame(batch, fields)
    pd.testing.assert_frame_equal(from_rows, from_arrow)
    assert [str(t) for t in from_rows.dtypes] == [f.pandas_dtype for f in fields]
    assert from_rows.loc[0, "date"] == pd.Timestamp("2024-01-02")
    assert list(empty_frame(fields).dtypes.astype(str)) == [f.pandas_dtype for f in fields]
