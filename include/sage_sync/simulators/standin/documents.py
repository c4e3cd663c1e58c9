"""Sales documents of the stand-in dossier: ``F_DOCENTETE`` headers and ``F_DOCLIGNE`` lines.

Amounts are computed in integer cents so that every total is exact:
line HT = round(qty × unit price HT × (1 − discount)), line VAT = round(HT × rate), line TTC = HT + VAT
(rounded half up, per line), header totals = sums of the lines, and ``DO_NetAPayer`` = ``DO_TotalTTC``.
Credit notes (``DO_Provenance = 2``) carry negative quantities and amounts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sage_sync.simulators.standin import french_data as fr
from sage_sync.simulators.standin.accounts import Accounts
from sage_sync.simulators.standin.catalogue import Catalogue
from sage_sync.simulators.standin.tables import (
    REFERENCE_DATE,
    TableData,
    cents_to_amounts,
    days_to_dates,
    minutes_to_timestamps,
    obj,
    pick,
    round_half_up,
)

QUOTE, ORDER, DELIVERY_NOTE, INVOICE, POSTED_INVOICE = 0, 1, 3, 6, 7
CREDIT_NOTE_PROVENANCE = 2
INVOICES_PER_CUSTOMER = 2.55
EXTRA_LINES_PER_DOCUMENT = 3.6  # lines per document = 1 + Poisson(3.6)
CREDIT_NOTE_SHARE = 0.04
COMMENT_SHARE = 0.06
_FIRST_DAY = int(np.datetime64("2023-01-02", "D").astype(np.int64))
_LAST_DAY = int(REFERENCE_DATE.astype(np.int64))
_PREFIX = {QUOTE: "DE", ORDER: "BC", DELIVERY_NOTE: "BL"}


def generate_documents(seed: int, accounts: Accounts, catalogue: Catalogue) -> tuple[TableData, TableData]:
    """Generate invoices (open and posted), credit notes, and quotes, orders and delivery notes with their lines."""
    rng = np.random.default_rng([seed, 3])
    n = len(accounts.codes)
    customers = np.flatnonzero(accounts.is_customer)
    prospects = np.flatnonzero(accounts.is_prospect)

    # Invoices, numbered in date order like a real dossier (FA… for invoices, AV… for credit notes).
    per_customer = rng.poisson(INVOICES_PER_CUSTOMER, len(customers))
    per_customer[:1] = np.maximum(per_customer[:1], 3)
    inv_tiers = np.repeat(customers, per_customer)
    inv_days = np.sort(rng.integers(_FIRST_DAY, _LAST_DAY + 1, len(inv_tiers)))
    inv_tiers = inv_tiers[rng.permutation(len(inv_tiers))]
    n_inv = len(inv_tiers)
    credit = pick(rng, n_inv, CREDIT_NOTE_SHARE)
    old_enough = inv_days <= _LAST_DAY - 45
    posted = old_enough & (rng.random(n_inv) < 0.8)
    posted[np.flatnonzero(credit & old_enough)[:1]] = True  # at least one posted credit note
    inv_type = np.where(posted, POSTED_INVOICE, INVOICE)
    pieces: list[str] = [""] * n_inv
    width = max(8, len(str(n_inv)))
    for prefix, mask in (("FA", ~credit), ("AV", credit)):
        for seq, i in enumerate(np.flatnonzero(mask).tolist(), start=1):
            pieces[i] = f"{prefix}{seq:0{width}d}"

    # Documents the sync must ignore: quotes (also to prospects), orders and delivery notes.
    other_types, other_tiers = [], []
    for kind, share, pool in (
        (QUOTE, 0.15, np.concatenate([customers, prospects])),
        (ORDER, 0.08, customers),
        (DELIVERY_NOTE, 0.06, customers),
    ):
        k = max(1, round(share * n)) if len(pool) else 0
        other_types.append(np.full(k, kind))
        other_tiers.append(pool[rng.integers(0, len(pool), k)])
    o_type = np.concatenate(other_types)
    o_tiers = np.concatenate(other_tiers)
    o_days = _LAST_DAY - rng.integers(0, 180, len(o_type))
    other_pieces = [""] * len(o_type)
    for kind, prefix in _PREFIX.items():
        for seq, i in enumerate(np.flatnonzero(o_type == kind).tolist(), start=1):
            other_pieces[i] = f"{prefix}{seq:0{width}d}"
    pieces.extend(other_pieces)

    doc_type = np.concatenate([inv_type, o_type]).astype(np.int64)
    doc_tiers = np.concatenate([inv_tiers, o_tiers])
    doc_days = np.concatenate([inv_days, o_days])
    doc_credit = np.concatenate([credit, np.zeros(len(o_type), dtype=bool)])
    piece = obj(pieces)
    lines, totals = _lines(rng, catalogue, accounts.codes[doc_tiers], piece, doc_type, doc_credit)
    ht, ttc = totals
    d = len(doc_type)

    paid = np.zeros(d, dtype=np.int64)
    u = rng.random(d)
    is_posted = doc_type == POSTED_INVOICE
    is_open = doc_type == INVOICE
    full = (is_posted & (u < 0.85)) | (is_open & (u < 0.2))
    partial = ((is_posted & (u >= 0.85) & (u < 0.95)) | (is_open & (u >= 0.2) & (u < 0.3))) & ~doc_credit
    paid[full] = ttc[full]
    paid[partial] = round_half_up(np.abs(ttc[partial]) * 3, 10) * np.sign(ttc[partial])
    paid[doc_credit & ~is_posted] = 0

    has_ref = rng.random(d) < 0.4
    ref_number = rng.integers(1, 100_000, d).tolist()
    ref_style = rng.integers(0, 3, d).tolist()
    refs = [
        (
            f"CDE-{ref_number[i]:05d}",
            f"BC {2023 + ref_number[i] % 4}/{ref_number[i] % 1000}",
            f"Réf. {ref_number[i]}",
        )[ref_style[i]]
        if has_ref[i]
        else None
        for i in range(d)
    ]
    modified_minutes = (
        (doc_days * 1440)
        + rng.integers(8 * 60, 19 * 60, d)
        + np.where(is_posted, 1440 * rng.integers(1, 40, d), 0)
    )
    modified_minutes = np.minimum(modified_minutes, _LAST_DAY * 1440 + 18 * 60)
    header = TableData(
        "F_DOCENTETE",
        {
            "DO_Domaine": np.zeros(d, dtype=np.int64),
            "DO_Type": doc_type,
            "DO_Piece": piece,
            "DO_Date": days_to_dates(doc_days),
            "DO_Ref": obj(refs),
            "DO_Tiers": accounts.codes[doc_tiers],
            "DO_Provenance": np.where(doc_credit, CREDIT_NOTE_PROVENANCE, 0).astype(np.int64),
            "DO_TotalHT": cents_to_amounts(ht),
            "DO_TotalTTC": cents_to_amounts(ttc),
            "DO_NetAPayer": cents_to_amounts(ttc),
            "DO_MontantRegle": cents_to_amounts(paid),
            "cbModification": minutes_to_timestamps(modified_minutes),
        },
    )
    return header, lines


def _lines(
    rng: np.random.Generator,
    catalogue: Catalogue,
    tiers_codes: npt.NDArray[np.object_],
    piece: npt.NDArray[np.object_],
    doc_type: npt.NDArray[np.int64],
    doc_credit: npt.NDArray[np.bool_],
) -> tuple[TableData, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    d = len(piece)
    article_lines = 1 + rng.poisson(EXTRA_LINES_PER_DOCUMENT, d)
    has_comment = pick(rng, d, COMMENT_SHARE)
    per_doc = article_lines + has_comment
    starts = np.cumsum(per_doc) - per_doc
    doc = np.repeat(np.arange(d), per_doc)
    total = len(doc)
    position = np.arange(total) - starts[doc]
    comment = has_comment[doc] & (position == per_doc[doc] - 1)  # the comment closes the document

    active = np.flatnonzero(~catalogue.asleep)
    art = active[rng.integers(0, len(active), total)]
    rate = np.where(comment, 0, catalogue.rate_tenths[art])
    price = catalogue.price_cents[art]
    unit = np.where(catalogue.price_includes_tax[art], round_half_up(price * 1000, 1000 + rate), price)
    qty = np.where(
        catalogue.fractional[art],
        rng.integers(2, 80, total) * 25,  # 0.50 to 19.75 kg, litres or hours
        np.minimum(rng.geometric(0.35, total), 48) * 100,
    )
    discount = rng.choice(np.array([0, 25, 50, 100, 150]), total, p=[0.72, 0.05, 0.1, 0.08, 0.05])
    qty[comment] = 0
    unit[comment] = 0
    discount[comment] = 0
    ht = round_half_up(qty * unit * (1000 - discount), 100 * 1000)
    vat = round_half_up(ht * rate, 1000)
    sign = np.where(doc_credit[doc], -1, 1)
    qty, ht, vat = qty * sign, ht * sign, vat * sign
    ttc = ht + vat

    ar_ref = catalogue.refs[art]
    ar_ref[comment] = None
    design = catalogue.designs[art]
    comment_idx = np.flatnonzero(comment)
    design[comment_idx] = obj(list(fr.DOCUMENT_COMMENTS))[
        rng.integers(0, len(fr.DOCUMENT_COMMENTS), len(comment_idx))
    ]
    lines = TableData(
        "F_DOCLIGNE",
        {
            "DL_No": np.arange(1, total + 1),
            "DO_Domaine": np.zeros(total, dtype=np.int64),
            "DO_Type": doc_type[doc],
            "DO_Piece": piece[doc],
            "CT_Num": tiers_codes[doc],
            "DL_Ligne": (position + 1) * 1000,  # Sage numbers line positions in steps of 1000
            "AR_Ref": ar_ref,
            "DL_Design": design,
            "DL_Qte": qty / 100,
            "DL_PrixUnitaire": cents_to_amounts(unit),
            "DL_Taxe1": rate / 10,
            "DL_Remise01REM_Valeur": discount / 10,
            "DL_MontantHT": cents_to_amounts(ht),
            "DL_MontantTTC": cents_to_amounts(ttc),
        },
    )
    return lines, (np.add.reduceat(ht, starts), np.add.reduceat(ttc, starts))
