"""Entity snapshots assembled from the frames read from Sage (no Airflow imports).

The hook reads each mapped source as its own typed frame (one ``SELECT`` per table, no engine-specific SQL);
the joins and derived fields of SPEC rules D2, D3 and D6 and K4 are computed here in pandas, so they are the
same on every engine and can be tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from sage_sync.mapping.model import EntityMapping

NO_STOCK_DISPLAY = "-"
"""What SSM shows as stock for articles without stock management (D2)."""


def rows_within(rows: pd.DataFrame, column: str, owners: pd.Series) -> pd.DataFrame:
    """The rows whose ``column`` names one of ``owners`` (K4: people of customers and prospects, not suppliers)."""
    keep = rows[column].isin(set(owners.dropna()))
    return rows.loc[keep].reset_index(drop=True)


#: More decimals than Sage 50 keeps for a quantity: sums are rounded to this to drop binary floating-point noise.
QUANTITY_DECIMALS = 6


def stock_text(total: float | None) -> str:
    """D2 ``Z_StockDisplay``: the quantity as plain text ("12", "2.5"), without exponent, trailing zeros or float noise."""
    if total is None or pd.isna(total):
        return NO_STOCK_DISPLAY
    value = Decimal(repr(float(total))).quantize(
        Decimal(1).scaleb(-QUANTITY_DECIMALS), rounding=ROUND_HALF_UP
    )
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def media_path(media_folder: Path | None, relative: str | None) -> Path | None:
    """The picture file ``relative`` under ``media_folder`` (D3), or None when absent.

    Paths escaping the media folder (absolute, or with ``..``) are treated as missing: the dossier's data must
    never make the sync read arbitrary files.
    """
    if media_folder is None or relative is None or pd.isna(relative) or not str(relative).strip():
        return None
    root = media_folder.resolve()
    path = (root / str(relative).replace("\\", "/")).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def assemble_products(
    frames: Mapping[str, pd.DataFrame],
    mapping: EntityMapping,
    picture_hash: Callable[[str], str | None] | None = None,
) -> pd.DataFrame:
    """Join the product sources into one row per article with the derived fields of the mapping.

    ``frames`` holds one frame per source of the products mapping (``articles``, ``stock``, ``accounting``,
    ``taxes``, ``families``), read with the mapping's filters (so ``accounting`` only has the sales / France
    rows). Derived fields:

    * ``stock_total`` (D2): sum of ``quantity`` over depots; 0 for a stock-managed article without stock rows;
      null when ``stock_managed`` is 0;
    * ``stock_display`` (D2): ``stock_total`` as text, "-" when not stock-managed;
    * ``vat_rate`` (D6): the ``tax_rate`` of the article's sales accounting row;
    * ``family_name``: the family's label;
    * ``picture_sha256`` (D3): ``picture_hash(AR_Photo)`` (null when absent or when no ``picture_hash`` is given).
    """
    articles = frames["articles"].reset_index(drop=True)
    stock = frames["stock"]
    totals = (
        stock.groupby("ref", sort=False)["quantity"].sum(min_count=1)
        if len(stock)
        else pd.Series(dtype="Float64")
    )
    managed = articles["stock_managed"].fillna(0) != 0
    # Rounded to QUANTITY_DECIMALS: a float sum of 372.91 + 85.27 + 9.85 is 468.03000000000003, not 468.03 (D2).
    stock_total = articles["ref"].map(totals).astype("Float64").round(QUANTITY_DECIMALS).fillna(0.0)
    stock_total = stock_total.where(managed, pd.NA).astype("Float64")

    accounting = frames["accounting"].drop_duplicates("ref")
    rates = accounting.merge(frames["taxes"][["tax_code", "tax_rate"]], on="tax_code", how="left")
    vat_rate = articles["ref"].map(rates.set_index("ref")["tax_rate"]).astype("Float64")

    families = frames["families"].drop_duplicates("family_code").set_index("family_code")["family_name"]
    family_name = articles["family_code"].map(families).astype("string")

    out = articles.copy()
    derived = {
        "stock_total": stock_total,
        "stock_display": pd.array(
            [stock_text(v) for v in stock_total.to_numpy(na_value=None)], dtype="string"
        ),
        "vat_rate": vat_rate,
        "family_name": family_name,
        "picture_sha256": pd.array(
            [
                picture_hash(str(p))
                if picture_hash is not None and p is not None and str(p).strip()
                else None
                for p in articles["picture"].to_numpy(na_value=None)
            ],
            dtype="string",
        ),
    }
    for f in mapping.derived:
        out[f.name] = pd.Series(derived[f.name], index=out.index).astype(f.pandas_dtype)
    return out
