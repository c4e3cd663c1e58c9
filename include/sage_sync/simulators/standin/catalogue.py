"""The article catalogue of the stand-in dossier: families, VAT codes, depots, articles, their VAT and stock."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sage_sync.simulators.standin import french_data as fr
from sage_sync.simulators.standin.identifiers import digits_to_strings, ean13_check_digits
from sage_sync.simulators.standin.tables import TableData, cents_to_amounts, minutes_to_timestamps, obj, pick

ASLEEP_SHARE = 0.04
PICTURE_SHARE = 0.35
TTC_SHARE = 0.15
_TTC_FAMILIES = frozenset({"BOULANG", "RESTAU", "PRESSE"})
_RATE_TENTHS = {code: round(rate * 10) for code, _, rate in fr.TAXES}
_MODIFIED_START = int(np.datetime64("2022-01-01T00:00", "m").astype(np.int64))
_NOW = int(np.datetime64("2026-06-30T18:00", "m").astype(np.int64))


@dataclass
class Catalogue:
    """The catalogue tables, plus per-article arrays the invoice lines are computed from."""

    tables: list[TableData]
    refs: npt.NDArray[np.object_]
    designs: npt.NDArray[np.object_]
    price_cents: npt.NDArray[np.int64]
    """AR_PrixVen in cents, HT or TTC according to ``price_includes_tax``."""
    price_includes_tax: npt.NDArray[np.bool_]
    rate_tenths: npt.NDArray[np.int64]
    """Sales VAT rate in tenths of a percent (200 = 20 %, 55 = 5.5 %)."""
    fractional: npt.NDArray[np.bool_]
    asleep: npt.NDArray[np.bool_]
    pictures: list[tuple[str, int]]
    """(AR_Photo path relative to the media folder, picture seed) for the articles that have a picture."""


def article_count(accounts: int) -> int:
    """Size the catalogue from the number of accounts: 150 at least, one article per 8 accounts, 20,000 at most."""
    return int(min(20_000, max(150, accounts // 8)))


def generate_catalogue(seed: int, accounts: int) -> Catalogue:
    """Generate families, VAT codes, depots and the articles with their sales/purchase VAT rows and stock."""
    rng = np.random.default_rng([seed, 2])
    products = [(family, product) for family, items in fr.FAMILIES for product in items]
    m = article_count(accounts)
    base = rng.integers(0, len(products), m)
    base[: len(products)] = np.arange(min(m, len(products)))  # every base product exists at least once
    variant = rng.integers(0, len(fr.GOODS_VARIANTS), m)
    width = max(5, len(str(m)))

    refs, designs, families, units, taxes, kinds = [], [], [], [], [], []
    low, high = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
    for i, (b, v) in enumerate(zip(base.tolist(), variant.tolist(), strict=True)):
        family, product = products[b]
        refs.append(f"{family.prefix}{i + 1:0{width}d}")
        suffix = fr.GOODS_VARIANTS[v] if product.kind == "goods" else ""
        designs.append(product.design + suffix)
        families.append(family.code)
        units.append(product.unit)
        taxes.append(product.tax)
        kinds.append(product.kind)
        low[i], high[i] = product.price_min, product.price_max
    kind = np.array(kinds)
    price = low + (rng.random(m) * (high - low + 1)).astype(np.int64)
    price = np.where(price >= 1000, (price // 10) * 10, price)  # shop prices end in 0 above 10 euros

    goods = np.flatnonzero(kind == "goods")
    ttc = np.zeros(m, dtype=bool)
    retail = np.array([f in _TTC_FAMILIES for f in families])
    ttc[retail & (rng.random(m) < 0.7)] = True
    ttc[goods[pick(rng, len(goods), TTC_SHARE)]] = True
    services = kind == "service"
    ttc[services] = False
    nonstock_goods = np.zeros(m, dtype=bool)
    nonstock_goods[goods[pick(rng, len(goods), 0.05)]] = True
    stock_mode = np.where((kind != "goods") | nonstock_goods, 0, np.where(rng.random(m) < 0.85, 2, 3))
    asleep = pick(rng, m, ASLEEP_SHARE)
    purchase = np.where(services, 0, (price * (0.45 + 0.3 * rng.random(m))).astype(np.int64))
    with_picture = np.zeros(m, dtype=bool)
    with_picture[goods[pick(rng, len(goods), PICTURE_SHARE)]] = True
    picture_seed = rng.integers(0, 2**31, m)
    photos = obj([f"{refs[i]}.png" if with_picture[i] else None for i in range(m)])
    ean_body = rng.integers(0, 10, (m, 12))
    ean_body[:, 0] = 3  # French GS1 prefixes start with 30-37
    ean = digits_to_strings(np.hstack([ean_body, ean13_check_digits(ean_body)[:, None]]))
    modified = rng.integers(_MODIFIED_START, _NOW, m)

    article = TableData(
        "F_ARTICLE",
        {
            "AR_Ref": obj(refs),
            "AR_Design": obj(designs),
            "FA_CodeFamille": obj(families),
            "AR_PrixAch": obj([None if services[i] else float(purchase[i]) / 100 for i in range(m)]),
            "AR_PrixVen": cents_to_amounts(price),
            "AR_PrixTTC": ttc.astype(np.int64),
            "AR_SuiviStock": stock_mode.astype(np.int64),
            "AR_UniteVen": obj(units),
            "AR_CodeBarre": obj([ean[i] if kind[i] == "goods" else None for i in range(m)]),
            "AR_Photo": photos,
            "AR_Sommeil": asleep.astype(np.int64),
            "cbModification": minutes_to_timestamps(modified),
        },
    )
    # Sales row (ACP_Type 0) for every article, purchase row (ACP_Type 1) for goods; both in France (ACP_Champ 1).
    purchase_rows = np.flatnonzero(kind == "goods")
    compta_refs = np.concatenate([np.arange(m), purchase_rows])
    compta = TableData(
        "F_ARTCOMPTA",
        {
            "AR_Ref": obj(refs)[compta_refs],
            "ACP_Type": np.concatenate(
                [np.zeros(m, dtype=np.int64), np.ones(len(purchase_rows), dtype=np.int64)]
            ),
            "ACP_Champ": np.ones(len(compta_refs), dtype=np.int64),
            "ACP_ComptaCPT_Taxe1": obj(taxes)[compta_refs],
        },
    )
    stock = _stock(rng, obj(refs), stock_mode, np.array([u in fr.FRACTIONAL_UNITS for u in units]))
    tables = [
        TableData(
            "F_FAMILLE",
            {
                "FA_CodeFamille": obj([f.code for f, _ in fr.FAMILIES]),
                "FA_Intitule": obj([f.label for f, _ in fr.FAMILIES]),
            },
        ),
        TableData(
            "F_TAXE",
            {
                "TA_Code": obj([c for c, _, _ in fr.TAXES]),
                "TA_Intitule": obj([label for _, label, _ in fr.TAXES]),
                "TA_Taux": np.array([rate for _, _, rate in fr.TAXES]),
            },
        ),
        TableData(
            "F_DEPOT", {"DE_No": np.arange(1, len(fr.DEPOTS) + 1), "DE_Intitule": obj(list(fr.DEPOTS))}
        ),
        article,
        compta,
        stock,
    ]
    return Catalogue(
        tables=tables,
        refs=obj(refs),
        designs=obj(designs),
        price_cents=price,
        price_includes_tax=ttc,
        rate_tenths=np.array([_RATE_TENTHS[t] for t in taxes], dtype=np.int64),
        fractional=np.array([u in fr.FRACTIONAL_UNITS for u in units]),
        asleep=asleep,
        pictures=[(f"{refs[i]}.png", int(picture_seed[i])) for i in np.flatnonzero(with_picture).tolist()],
    )


def _stock(
    rng: np.random.Generator,
    refs: npt.NDArray[np.object_],
    stock_mode: npt.NDArray[np.int64],
    fractional: npt.NDArray[np.bool_],
) -> TableData:
    """Stock rows for stock-managed articles: always the main depot, other depots for some articles."""
    depots = len(fr.DEPOTS)
    managed = np.flatnonzero(stock_mode > 0)
    presence = rng.random((len(managed), depots)) < np.array([1.0, 0.5, 0.25, 0.1])[:depots]
    article_idx, depot_idx = np.nonzero(presence)
    owners = managed[article_idx]
    count = len(owners)
    hundredths = rng.integers(0, 500, count) * 100
    hundredths = np.where(fractional[owners], rng.integers(0, 50_000, count), hundredths)
    hundredths[rng.random(count) < 0.08] = 0  # out of stock
    return TableData(
        "F_ARTSTOCK",
        {"AR_Ref": refs[owners], "DE_No": depot_idx.astype(np.int64) + 1, "AS_QteSto": hundredths / 100},
    )
