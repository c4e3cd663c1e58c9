"""G5/G6 under random interleavings: both in-memory sides, random edits, random faults, then convergence.

A Hypothesis state machine creates, edits, deletes and converts accounts and contacts on both sides, and
creates, edits and deletes articles (price with or without tax, VAT rate, sleep flag, stock per depot, family,
picture) and invoices or credit notes with their lines (posting, line changes, deletion) in Sage. It runs the
sync with faults armed at random points (an item refused, an exception before or in the middle of a batch, a
lost response, a crash between two writes, a broken read, a Sage read that returns no rows, a failed picture
upload) while the load commits what it confirmed a few records at a time, then stops the faults and runs twice more: the second clean run must plan nothing (G6), and the end
state must be the one the rules define (C1, C2, C4, P1-P3, K1-K3, G2, D1-D6, I1-I6), with no duplicate on any
endpoint (G5).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from sage_sync.engine import commit_stream
from sage_sync.engine.codec import same, to_ssm
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.rules.accounts import account_specs
from sage_sync.engine.rules.contacts import contact_specs
from tests.support.memory import Fault, SimulatedCrash, SyncWorld, TransportError, account_row, contact_row

#: Examples per run, split between the two halves; raise it (e.g. 1000) to explore deeper on a quiet machine.
EXAMPLES = int(os.environ.get("SAGE_SYNC_HYPOTHESIS_EXAMPLES", "200"))
ENTITIES = ("accounts", "contacts", "products", "invoices")
ANCHOR = "ANCHOR"

names = st.sampled_from(["Alpha", "Beta", "Gamma", "Delta", "Émile & Fils", "Zoé", "Ωmega SARL", "x" * 80])
cities = st.sampled_from(["Lyon", "Paris", "Lille", None])
countries = st.sampled_from(["France", "FRANCE", "belgique", "Atlantis", None])
phones = st.sampled_from(["0102030405", "0607080910", None])

# Goods: the one-way side of the dossier. Two VAT rates, two families, prices with or without tax.
TAXES = {"T20": 20.0, "T55": 5.5}
FAMILIES = {"VIN": "Vins", "BIE": "Bières"}
prices = st.sampled_from([12.0, 9.99, 10.0, 0.0, 1234.5, None])
quantities = st.sampled_from([0.0, 2.5, 7.0, 12.25, -1.0])
designations = st.sampled_from(["Vin rouge", "Bière blonde", "Été 2026", "Port", None])
# Picture files by name; "missing": AR_Photo names a file that is not there.
PICTURES: dict[str, bytes | None] = {"red": b"red", "blue": b"blue", "empty": b"", "missing": None}
line_quantities = st.sampled_from([1.0, 2.5, 0.5, 3.0, 12.0])
unit_prices = st.sampled_from([40.0, 9.99, 0.0, 12.5])

FAULT_MODES = st.sampled_from(["refuse", "raise", "mid_batch", "lost", "crash", "empty"])
# Mostly "the k-th write of the run, on any endpoint"; sometimes a read or a list that breaks the extract, or
# a failed picture upload. An SSM endpoint (salesorders, salesordersLines) names the invoices entity on Sage.
FAULT_TARGETS = st.sampled_from(
    [("write", None)] * 6
    + [
        ("write", "accounts"),
        ("write", "contacts"),
        ("write", "products"),
        ("write", "salesorders"),
        ("write", "salesordersLines"),
        ("read", "accounts"),
        ("read", "contacts"),
        ("read", "products"),
        ("read", "salesorders"),
        ("upload", "products"),
    ]
)
SAGE_ENTITY = {"salesorders": "invoices", "salesordersLines": "invoices"}
ONE_WAY = ("products", "salesorders", "salesordersLines")


SAGE_ACTIONS = [
    "sage_create_account",
    "sage_edit_account",
    "sage_convert",
    "sage_delete_account",
    "sage_create_contact",
    "sage_edit_contact",
    "sage_delete_contact",
    "both_edit_prospect",
]
SSM_ACTIONS = [
    "ssm_create_account",
    "ssm_edit_account",
    "ssm_convert",
    "ssm_delete_account",
    "ssm_create_contact",
    "ssm_edit_contact",
    "ssm_delete_contact",
]
PRODUCT_ACTIONS = ["sage_create_article", "sage_edit_article", "sage_delete_article"]
INVOICE_ACTIONS = [
    "sage_create_invoice",
    "sage_create_invoice",
    "sage_edit_invoice",
    "sage_add_line",
    "sage_edit_line",
    "sage_remove_line",
    "sage_delete_invoice",
]


def sage_can_hold(text: str | None, length: int) -> bool:
    """Whether a Sage text column of ``length`` holds ``text`` (the contract: cp1252, no control character)."""
    if text is None:
        return True
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return len(text) <= length and not any(ord(c) < 32 and c not in "\t\n\r" for c in text)


def money(value: Decimal | float) -> float:
    """Rounded to the cent, half up (Sage's rounding of amounts)."""
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def half_up(value: float) -> int:
    """An integer, half up (SSM's integer quantities)."""
    return int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_UP))


class SyncMachine(RuleBasedStateMachine):
    """Random life on both sides, with the sync running in between."""

    @initialize()
    def setup(self) -> None:
        self.world = SyncWorld(config=SyncConfig(code_template="SSM{seq:05d}", admin_user_id=1))
        self.sage, self.ssm = self.world.sage, self.world.ssm
        # An account and a contact that always exist keep the G4 "empty snapshot" guard out of the picture.
        self.sage.put("accounts", account_row(ANCHOR, "Anchor"))
        self.sage.put("contacts", contact_row(ANCHOR, 1, "Anchor"))
        self.counter = 0
        self.line_counter = 0
        for code, rate in TAXES.items():
            self.sage.put("products", {"tax_code": code, "tax_rate": rate}, source="taxes")
        for code, name in FAMILIES.items():
            self.sage.put("products", {"family_code": code, "family_name": name}, source="families")
        # An article and an invoice that are never deleted do the same for products and invoices.
        self.put_article(ANCHOR, family_code="VIN", tax_code="T20")
        self.put_invoice("FA0000", ANCHOR, credit_note=False, lines=[(None, 1.0, 10.0)])

    # --- Sage side -------------------------------------------------------------------------------------------

    def sage_codes(self) -> list[str]:
        return sorted(k[0] for k in self.sage.rows("accounts"))

    def sage_create_account(self, data: st.DataObject) -> None:
        prospect = data.draw(st.booleans())
        name = data.draw(names)
        city = data.draw(cities)
        country = data.draw(countries)
        self.counter += 1
        row = account_row(f"S{self.counter:04d}", name[:69], prospect=prospect, city=city, country=country)
        self.sage.put("accounts", row)

    def sage_edit_account(self, data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(["name", "city", "country", "phone"]))
        code = data.draw(st.sampled_from(self.sage_codes()))
        value = data.draw({"name": names, "city": cities, "country": countries, "phone": phones}[field])
        if field == "name":
            value = (value or "Nameless")[:69]
        self.sage.edit("accounts", (code,), **{field: value})

    def sage_convert(self, data: st.DataObject) -> None:
        prospects = [k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 1]
        if prospects:
            self.sage.edit("accounts", (data.draw(st.sampled_from(prospects)),), is_prospect=0)

    def sage_delete_account(self, data: st.DataObject) -> None:
        # Sage refuses to delete a customer that has documents.
        billed = {r["customer_code"] for r in self.sage.rows("invoices").values()}
        codes = [c for c in self.sage_codes() if c != ANCHOR and c not in billed]
        if codes:
            code = data.draw(st.sampled_from(codes))
            self.sage.delete("accounts", (code,))
            for key in [k for k in self.sage.rows("contacts") if k[0] == code]:
                self.sage.delete("contacts", key)  # Sage removes an account's people with it

    def sage_create_contact(self, data: st.DataObject) -> None:
        last = data.draw(st.sampled_from(["Durand", "Petit", "Moreau", "N" * 40]))
        code = data.draw(st.sampled_from(self.sage_codes()))
        number = 1 + max([k[1] for k in self.sage.rows("contacts") if k[0] == code], default=0)
        self.sage.put("contacts", contact_row(code, number, last[:35], phone=data.draw(phones)))

    def sage_edit_contact(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(["Anne", "Paul", "Zoë", None]))
        keys = sorted(self.sage.rows("contacts"))
        self.sage.edit("contacts", data.draw(st.sampled_from(keys)), first_name=first)

    def sage_delete_contact(self, data: st.DataObject) -> None:
        keys = [k for k in sorted(self.sage.rows("contacts")) if k[0] != ANCHOR]
        if keys:
            self.sage.delete("contacts", data.draw(st.sampled_from(keys)))

    def both_edit_prospect(self, data: st.DataObject) -> None:
        """The same field of a two-way record edited on both sides between two runs (G2)."""
        live = {
            r["extId"]: r["id"] for r in self.ssm.live("accounts") if r.get("extId") and not r["readOnly"]
        }
        codes = [
            k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 1 and k[0] in live
        ]
        if codes:
            code = data.draw(st.sampled_from(codes))
            self.sage.edit("accounts", (code,), city=data.draw(cities))
            self.ssm.user_update(
                "accounts", live[code], {"city": data.draw(st.sampled_from(["Brest", "Nice"]))}
            )

    # --- Sage side, goods: articles (D1-D6) and invoices with their lines (I1-I6), one way ------------------

    def put_article(
        self,
        ref: str,
        *,
        family_code: str,
        tax_code: str | None,
        price: float | None = 12.0,
        includes_tax: int = 0,
        stock_managed: int = 0,
        asleep: int = 0,
        depots: dict[int, float] | None = None,
        picture: str = "none",
        designation: str | None = "Article",
    ) -> None:
        """An article with its sales accounting row (the VAT rate), its stock per depot and its picture."""
        row = {
            "ref": ref,
            "designation": designation,
            "family_code": family_code,
            "purchase_price": 4.0,
            "sales_price": price,
            "price_includes_tax": includes_tax,
            "stock_managed": stock_managed,
            "asleep": asleep,
        }
        self.sage.put("products", row)
        self.set_tax(ref, tax_code)
        for depot, quantity in (depots or {}).items():
            self.sage.put("products", {"ref": ref, "depot": depot, "quantity": quantity}, source="stock")
        self.set_picture(ref, picture)

    def set_tax(self, ref: str, tax_code: str | None) -> None:
        """The article's sales VAT code (F_ARTCOMPTA); None removes the row, so the rate is unknown."""
        key = (ref, 0, 1)
        if tax_code is None:
            self.sage.delete("products", key, source="accounting")
        else:
            row = {"ref": ref, "accounting_type": 0, "accounting_field": 1, "tax_code": tax_code}
            self.sage.put("products", row, source="accounting")

    def set_picture(self, ref: str, choice: str) -> None:
        """``none``: no picture; ``missing``: a path without a file; else the name of the bytes in PICTURES."""
        path = f"media/{ref}.jpg"
        if choice == "none":
            self.sage.edit("products", (ref,), picture=None)
            return
        self.sage.edit("products", (ref,), picture=path)
        content = PICTURES[choice]
        if content is None:
            self.sage.pictures.pop(path, None)
        else:
            self.sage.pictures[path] = content

    def article_refs(self) -> list[str]:
        return sorted(k[0] for k in self.sage.rows("products"))

    def sage_create_article(self, data: st.DataObject) -> None:
        self.counter += 1
        depots = data.draw(st.dictionaries(st.sampled_from([1, 2]), quantities, max_size=2))
        self.put_article(
            f"P{self.counter:04d}",
            family_code=data.draw(st.sampled_from(sorted(FAMILIES))),
            tax_code=data.draw(st.sampled_from(["T20", "T55", None])),
            price=data.draw(prices),
            includes_tax=data.draw(st.sampled_from([0, 1])),
            stock_managed=data.draw(st.sampled_from([0, 1, 2])),
            asleep=data.draw(st.sampled_from([0, 1])),
            depots=depots,
            picture=data.draw(st.sampled_from(["none", *PICTURES])),
            designation=data.draw(designations),
        )

    def sage_edit_article(self, data: st.DataObject) -> None:
        ref = data.draw(st.sampled_from(self.article_refs()))
        what = data.draw(
            st.sampled_from(
                ["price", "includes_tax", "tax", "stock_managed", "depot", "drop_depot", "asleep", "family"]
                + ["picture", "designation"]
            )
        )
        if what == "price":
            self.sage.edit("products", (ref,), sales_price=data.draw(prices))
        elif what == "includes_tax":
            self.sage.edit("products", (ref,), price_includes_tax=data.draw(st.sampled_from([0, 1])))
        elif what == "tax":
            self.set_tax(ref, data.draw(st.sampled_from(["T20", "T55", None])))
        elif what == "stock_managed":
            self.sage.edit("products", (ref,), stock_managed=data.draw(st.sampled_from([0, 1, 2])))
        elif what == "depot":
            row = {"ref": ref, "depot": data.draw(st.sampled_from([1, 2])), "quantity": data.draw(quantities)}
            self.sage.put("products", row, source="stock")
        elif what == "drop_depot":
            self.sage.delete("products", (ref, data.draw(st.sampled_from([1, 2]))), source="stock")
        elif what == "asleep":
            self.sage.edit("products", (ref,), asleep=data.draw(st.sampled_from([0, 1])))
        elif what == "family":
            self.sage.edit("products", (ref,), family_code=data.draw(st.sampled_from(sorted(FAMILIES))))
        elif what == "picture":
            self.set_picture(ref, data.draw(st.sampled_from(["none", *PICTURES])))
        else:
            self.sage.edit("products", (ref,), designation=data.draw(designations))

    def sage_delete_article(self, data: st.DataObject) -> None:
        # Sage refuses to delete an article used on a document line.
        used = {r.get("article_ref") for r in self.sage.rows("invoices", "lines").values()}
        refs = [r for r in self.article_refs() if r != ANCHOR and r not in used]
        if refs:
            ref = data.draw(st.sampled_from(refs))
            self.sage.delete("products", (ref,))
            self.set_tax(ref, None)
            for depot in (1, 2):
                self.sage.delete("products", (ref, depot), source="stock")

    def put_invoice(
        self, piece: str, customer: str, *, credit_note: bool, lines: list[tuple[str | None, float, float]]
    ) -> None:
        """An invoice (or credit note) header and its lines; totals are computed from the lines, as Sage does."""
        header = {
            "domain": 0,
            "doc_type": 6,
            "piece": piece,
            "date": "2026-03-01",
            "customer_code": customer,
            "customer_ref": None,
            "provenance": 2 if credit_note else 0,
        }
        self.sage.put("invoices", header)
        for article_ref, quantity, price in lines:
            self.put_line(piece, article_ref, quantity, price)
        self.recompute_totals(piece)

    def put_line(self, piece: str, article_ref: str | None, quantity: float, price: float) -> None:
        header = self.sage.rows("invoices")[(0, piece)]
        self.line_counter += 1
        row = {
            "line_id": self.line_counter,
            "domain": 0,
            "doc_type": header["doc_type"],
            "piece": piece,
            "customer_code": header["customer_code"],
            "position": self.line_counter,
            "article_ref": article_ref,
            "designation": "Port" if article_ref is None else f"Article {article_ref}",
            "quantity": quantity,
            "unit_price": price,
            "vat_rate": 20.0,
        }
        self.sage.put("invoices", row, source="lines")
        self.recompute_line(self.line_counter)

    def recompute_line(self, line_id: int) -> None:
        row = self.sage.rows("invoices", "lines")[(line_id,)]
        amount = money(Decimal(str(row["quantity"])) * Decimal(str(row["unit_price"])))
        self.sage.edit(
            "invoices", (line_id,), source="lines", amount_ht=amount, amount_ttc=money(amount * 1.2)
        )

    def recompute_totals(self, piece: str) -> None:
        lines = [r for r in self.sage.rows("invoices", "lines").values() if r["piece"] == piece]
        total = money(sum(Decimal(str(r["amount_ht"])) for r in lines))
        self.sage.edit("invoices", (0, piece), total_ht=total, total_ttc=money(total * 1.2))

    def pieces(self, *, deletable: bool = False) -> list[str]:
        return sorted(k[1] for k in self.sage.rows("invoices") if not deletable or k[1] != "FA0000")

    def line_ids(self) -> list[int]:
        return sorted(k[0] for k in self.sage.rows("invoices", "lines"))

    def draw_line(self, data: st.DataObject) -> tuple[str | None, float, float]:
        # The newest article is the likeliest: it is sold before (or while) its product reaches SSM.
        newest = max(self.sage.rows("products"), key=lambda k: (k[0] != ANCHOR, k[0]))[0]
        article = data.draw(st.sampled_from([None, newest, newest, *self.article_refs()]))
        return article, data.draw(line_quantities), data.draw(unit_prices)

    def sage_create_invoice(self, data: st.DataObject) -> None:
        """Any account: a customer already in SSM, one not synced yet, a prospect (I6 deferral)."""
        credit_note = data.draw(st.booleans())
        self.counter += 1
        piece = f"{'AV' if credit_note else 'FA'}{self.counter:04d}"
        lines = [self.draw_line(data) for _ in range(data.draw(st.integers(0, 3)))]
        customer = data.draw(st.sampled_from(self.sage_codes()))
        self.put_invoice(piece, customer, credit_note=credit_note, lines=lines)

    def sage_edit_invoice(self, data: st.DataObject) -> None:
        piece = data.draw(st.sampled_from(self.pieces()))
        what = data.draw(st.sampled_from(["post", "customer_ref", "date"]))
        if what == "post":  # I1: DO_Type 6 -> 7 on the header and its lines, same piece
            self.sage.edit("invoices", (0, piece), doc_type=7)
            for key, row in self.sage.rows("invoices", "lines").items():
                if row["piece"] == piece:
                    self.sage.edit("invoices", key, source="lines", doc_type=7)
        elif what == "customer_ref":
            ref = data.draw(st.sampled_from(["CMD-1", "CMD-2", None]))
            self.sage.edit("invoices", (0, piece), customer_ref=ref)
        else:
            self.sage.edit(
                "invoices", (0, piece), date=data.draw(st.sampled_from(["2026-03-02", "2026-04-30"]))
            )

    def sage_add_line(self, data: st.DataObject) -> None:
        piece = data.draw(st.sampled_from(self.pieces()))
        self.put_line(piece, *self.draw_line(data))
        self.recompute_totals(piece)

    def sage_edit_line(self, data: st.DataObject) -> None:
        ids = self.line_ids()
        if not ids:
            return
        line_id = data.draw(st.sampled_from(ids))
        what = data.draw(st.sampled_from(["quantity", "unit_price", "designation"]))
        if what == "designation":
            self.sage.edit("invoices", (line_id,), source="lines", designation=data.draw(designations))
            return
        value = data.draw(line_quantities if what == "quantity" else unit_prices)
        self.sage.edit("invoices", (line_id,), source="lines", **{what: value})
        self.recompute_line(line_id)
        self.recompute_totals(self.sage.rows("invoices", "lines")[(line_id,)]["piece"])

    def sage_remove_line(self, data: st.DataObject) -> None:
        ids = self.line_ids()
        if ids:
            line_id = data.draw(st.sampled_from(ids))
            piece = self.sage.rows("invoices", "lines")[(line_id,)]["piece"]
            self.sage.delete("invoices", (line_id,), source="lines")
            self.recompute_totals(piece)

    def sage_delete_invoice(self, data: st.DataObject) -> None:
        """I2: the header and its lines go together."""
        pieces = self.pieces(deletable=True)
        if pieces:
            piece = data.draw(st.sampled_from(pieces))
            self.sage.delete("invoices", (0, piece))
            for key in [k for k, r in self.sage.rows("invoices", "lines").items() if r["piece"] == piece]:
                self.sage.delete("invoices", key, source="lines")

    # --- SSM side (users of the app: read-only records refuse their edits) -----------------------------------

    def ssm_ids(self, endpoint: str) -> list[int]:
        return sorted(r["id"] for r in self.ssm.live(endpoint))

    def ssm_create_account(self, data: st.DataObject) -> None:
        status = data.draw(st.sampled_from([1, 1, 2, 3]))
        name = data.draw(names)
        rep = data.draw(st.sampled_from([None, 7]))
        payload = {"name": name, "statusId": status, "branchId": 1, "salesRepId1": rep or 1, "city": "Nantes"}
        self.ssm.user_create("accounts", payload)

    def ssm_edit_account(self, data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(["name", "city", "phone", "countryId"]))
        ident = data.draw(st.sampled_from(self.ssm_ids("accounts")))
        value = data.draw(
            {
                "name": names,
                "city": st.sampled_from(["Brest", "Nice", "Lille 🚲", None]),
                "phone": phones,
                "countryId": st.sampled_from([73, 21, 58, None]),
            }[field]
        )
        self.ssm.user_update("accounts", ident, {field: value})

    def ssm_convert(self, data: st.DataObject) -> None:
        status = data.draw(st.sampled_from([1, 3]))
        self.ssm.user_update(
            "accounts", data.draw(st.sampled_from(self.ssm_ids("accounts"))), {"statusId": status}
        )

    def ssm_delete_account(self, data: st.DataObject) -> None:
        self.ssm.user_delete("accounts", data.draw(st.sampled_from(self.ssm_ids("accounts"))))

    def ssm_create_contact(self, data: st.DataObject) -> None:
        last = data.draw(st.sampled_from(["Bernard", "Roux", "Fournier"]))
        account = data.draw(st.sampled_from(self.ssm_ids("accounts")))
        self.ssm.user_create(
            "contacts", {"accountId": account, "lastName": last, "firstName": "Léa", "salesRepId": 1}
        )

    def ssm_edit_contact(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(["Marc", "Inès", None]))
        self.ssm.user_update(
            "contacts", data.draw(st.sampled_from(self.ssm_ids("contacts"))), {"firstName": first}
        )

    def ssm_delete_contact(self, data: st.DataObject) -> None:
        self.ssm.user_delete("contacts", data.draw(st.sampled_from(self.ssm_ids("contacts"))))

    # --- the rules: a change on one side, a change on the other, a sync, a sync that meets a fault -------------

    @rule(data=st.data(), action=st.sampled_from(SAGE_ACTIONS))
    def sage_action(self, data: st.DataObject, action: str) -> None:
        getattr(self, action)(data)

    @rule(data=st.data(), action=st.sampled_from(PRODUCT_ACTIONS))
    def product_action(self, data: st.DataObject, action: str) -> None:
        getattr(self, action)(data)

    @rule(data=st.data(), action=st.sampled_from(INVOICE_ACTIONS))
    def invoice_action(self, data: st.DataObject, action: str) -> None:
        getattr(self, action)(data)

    @rule(data=st.data(), action=st.sampled_from(SSM_ACTIONS))
    def ssm_action(self, data: st.DataObject, action: str) -> None:
        needs = (
            "accounts"
            if action.endswith("account") or action in ("ssm_convert", "ssm_create_contact")
            else "contacts"
        )
        if action == "ssm_create_account" or self.ssm.live(needs):
            getattr(self, action)(data)

    # --- the sync, with faults -------------------------------------------------------------------------------

    # One rule for both kinds of sync: a run costs far more than an edit, so syncs stay a fifth of the steps.
    @rule(
        fault=st.none()
        | st.tuples(st.booleans(), FAULT_TARGETS, FAULT_MODES, st.integers(0, 2), st.integers(0, 2))
    )
    def sync(self, fault: tuple[bool, tuple[str, str | None], str, int, int] | None) -> None:
        """A sync, half of the time with one fault armed: (on Sage?, (method, endpoint), mode, calls let through, item)."""
        if fault is not None:
            on_sage, (what, where), mode, calls_left, item = fault
            if where in ONE_WAY or what == "upload":
                on_sage = (
                    what == "read"
                )  # one way: read from Sage, written (and pictures uploaded) to SSM only
            side = self.sage if on_sage else self.ssm
            method = {"read": "read" if on_sage else "list"}.get(what, what)
            target = SAGE_ENTITY.get(where, where) if on_sage and where else where
            side.faults.armed.append(Fault(mode, method, target, calls_left, item))
        self.run_sync()

    def run_sync(self) -> None:
        # A run that dies (crash, broken read) leaves the state as it was; the next one must pick up from there.
        with contextlib.suppress(SimulatedCrash, TransportError):
            self.world.run(entities=ENTITIES)
        self.sage.faults.armed.clear()
        self.ssm.faults.armed.clear()

    def teardown(self) -> None:
        if not hasattr(self, "world"):
            return
        self.sage.faults = type(self.sage.faults)()
        self.ssm.faults = type(self.ssm.faults)()
        first = self.world.run(entities=ENTITIES)
        second = self.world.run(entities=ENTITIES)
        assert second.planned_ops == 0, second.render()  # G6: the second clean run has nothing left to do
        # G4: deletions here are few, so the guard never withholds one and every deletion must have happened.
        assert not first.guards and not second.guards, (first.guards, second.guards)
        self.check_accounts()
        self.check_contacts()
        self.check_products()
        self.check_invoices({n.key for n in second.plans["invoices"].deferred if n.rule == "I6"})

    # --- what the rules define -------------------------------------------------------------------------------

    def check_accounts(self) -> None:
        state, lists = self.world.state, self.ssm.lists
        bindings = state.bindings("accounts")
        quarantined = state.quarantined("accounts")
        live = self.ssm.live("accounts")
        ext_ids = [r["extId"] for r in live if r.get("extId")]
        assert len(ext_ids) == len(set(ext_ids)), (
            f"C1: duplicate extId among live SSM accounts: {sorted(ext_ids)}"
        )
        by_ext = {r["extId"]: r for r in live if r.get("extId")}
        specs = account_specs()
        for (code,), row in self.sage.rows("accounts").items():
            rec = by_ext.get(code)
            customer = row.get("is_prospect") == 0
            if not sage_can_hold(row.get("name"), 69):
                # G3: a name CT_Intitule cannot hold (too long, outside cp1252) comes from a damaged dossier: the row
                # is quarantined and its SSM account (if any) keeps the last valid values.
                assert code in quarantined, (
                    f"G3: Sage account {code} named {row.get('name')!r} not quarantined"
                )
                continue
            if rec is None:
                b = bindings.get(code)
                assert not customer, f"C1: live Sage customer {code} has no live SSM account"
                assert b is not None and b.status == "ssm_deleted", (
                    f"P1: prospect {code} missing in SSM ({b})"
                )
                continue
            assert rec["readOnly"] is customer, f"C2: readOnly of {code} is {rec['readOnly']}"
            if code in quarantined:
                continue
            for spec in specs:
                if spec.name == "is_prospect" and rec.get("statusId") not in (1, 2):
                    continue  # C4: another status stays in SSM only
                if spec.name == "country" and to_ssm(spec, row.get("country"), lists)[1]:
                    continue  # G3 warning: a country SSM does not know leaves the SSM field as it was
                assert same(spec, row.get(spec.name), rec.get(spec.ssm), lists), (
                    f"{code}.{spec.name}: Sage {row.get(spec.name)!r} vs SSM {rec.get(spec.ssm)!r}"
                )
        # C4: every company created in SSM as Client/Prospect got exactly one Sage row, with its code as extId.
        sage_codes = {k[0] for k in self.sage.rows("accounts")}
        reserved = state.reserved("accounts")
        codes = list(reserved.values())
        assert len(codes) == len(set(codes)), "C4: one code reserved for two SSM companies"
        ssm_made = [c for c in sage_codes if c.startswith("SSM")]
        assert len(ssm_made) == len(set(ssm_made))
        for code in ssm_made:
            owners = [i for i, c in reserved.items() if c == code]
            assert len(owners) == 1, f"C4: Sage customer {code} has no single SSM company behind it"
        for rec in live:
            if (
                rec.get("extId") is None
                and rec.get("statusId") in (1, 2)
                and f"ssm:{rec['id']}" not in quarantined
            ):
                assert rec["id"] in reserved and reserved[rec["id"]] in quarantined, (
                    f"C4: SSM company {rec['id']} never reached Sage"
                )

    def check_contacts(self) -> None:
        state, lists = self.world.state, self.ssm.lists
        accounts = state.bindings("accounts")
        bindings = state.bindings("contacts")
        quarantined = state.quarantined("contacts")
        live = self.ssm.live("contacts")
        ext_ids = [r["extId"] for r in live if r.get("extId")]
        assert len(ext_ids) == len(set(ext_ids)), (
            f"K1: duplicate extId among live SSM contacts: {sorted(ext_ids)}"
        )
        by_ext = {r["extId"]: r for r in live if r.get("extId")}
        customers = {k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 0}
        specs = contact_specs()
        for (code, number), row in self.sage.rows("contacts").items():
            key = f"{code}/{number}"
            rec = by_ext.get(key)
            if code not in customers:
                assert rec is None, f"P5: contact {key} of a prospect reached SSM"
                continue
            if code not in accounts or accounts[code].ssm_id is None:
                assert rec is None, f"K1: contact {key} reached SSM before its account"
                continue  # its account is quarantined (G3) and never reached SSM: the contact waits (K1)
            if rec is None:
                b = bindings.get(key)
                assert b is not None and b.status == "ssm_deleted", (
                    f"K1: contact {key} of customer missing in SSM"
                )
                continue
            assert rec["accountId"] == accounts[code].ssm_id
            if key in quarantined:
                continue
            for spec in specs:
                assert same(spec, row.get(spec.name), rec.get(spec.ssm), lists), (
                    f"{key}.{spec.name}: Sage {row.get(spec.name)!r} vs SSM {rec.get(spec.ssm)!r}"
                )
        bound_customers = {
            b.ssm_id: c
            for c, b in accounts.items()
            if c in customers and b.status == "ok" and b.ssm_id is not None
        }
        sage_keys = {f"{c}/{n}" for c, n in self.sage.rows("contacts")}
        for rec in live:
            code = bound_customers.get(rec["accountId"])
            if code is None:
                continue
            if rec.get("extId") is None:
                assert f"ssm:{rec['id']}" in quarantined or any(
                    k in quarantined for k in state.reserved("contacts").values()
                ), f"K1: SSM contact {rec['id']} on customer {code} never reached Sage"
            else:
                assert rec["extId"] in sage_keys or rec["extId"] in quarantined, (
                    f"K1: {rec['extId']} not in Sage"
                )

    def check_products(self) -> None:
        """D1-D6 and G5 for every article, from the Sage rows alone (not from the engine's own functions)."""
        quarantined = self.world.state.quarantined("products")
        live = self.ssm.live("products")
        ext_ids = [r["extId"] for r in live]
        assert len(ext_ids) == len(set(ext_ids)), (
            f"D1/G5: duplicate extId among live products: {sorted(ext_ids)}"
        )
        by_ext = {r["extId"]: r for r in live}
        articles = self.sage.rows("products")
        taxes = {k[0]: r["tax_rate"] for k, r in self.sage.rows("products", "taxes").items()}
        accounting = {k[0]: r["tax_code"] for k, r in self.sage.rows("products", "accounting").items()}
        stock: dict[str, Decimal] = {}
        for (ref, _), r in self.sage.rows("products", "stock").items():
            stock[ref] = stock.get(ref, Decimal(0)) + Decimal(str(r["quantity"]))
        for (ref,), row in articles.items():
            rate = taxes.get(accounting.get(ref, ""))
            price = row["sales_price"]
            no_rate = row["price_includes_tax"] == 1 and rate is None and price is not None
            # G3: AR_Design and AR_PrixVen are required (designation_present, sales_price_present); D6: a TTC
            # price needs the article's VAT rate.
            blocked = no_rate or row["designation"] is None or price is None
            assert (ref in quarantined) == blocked, (
                f"G3/D6: article {ref} quarantined={ref in quarantined}: designation {row['designation']!r}, "
                f"price {price!r}, TTC={row['price_includes_tax']}, rate {rate}"
            )
            if blocked:
                continue  # quarantined: its product (if it had one) keeps the last values that were valid
            rec = by_ext.get(ref)
            assert rec is not None, f"D1: article {ref} has no live SSM product"
            assert rec["readOnly"] is True, f"D1: product {ref} is not read-only"
            if price is not None and row["price_includes_tax"] == 1:
                price = money(Decimal(str(price)) / (1 + Decimal(str(rate)) / 100))
            assert rec.get("price") == price, (
                f"D6: product {ref} price {rec.get('price')!r}, expected {price!r}"
            )
            expected: tuple[int | None, str]
            if row["stock_managed"]:
                total = stock.get(ref, Decimal(0))
                text = (
                    str(int(total)) if total == total.to_integral_value() else format(total.normalize(), "f")
                )
                expected = (half_up(float(total)), text)
            else:
                expected = (None, "-")
            assert (rec.get("stock"), rec.get("Z_StockDisplay")) == expected, (
                f"D2: product {ref} stock {(rec.get('stock'), rec.get('Z_StockDisplay'))}, expected {expected}"
            )
            assert rec["notAvailable"] is bool(row["asleep"]), (
                f"D5: product {ref} notAvailable {rec['notAvailable']}"
            )
            family = self.ssm.lists.product_families.get(FAMILIES[row["family_code"]])
            assert rec.get("familyId") == family, (
                f"D1: product {ref} family {rec.get('familyId')}, expected {family}"
            )
            assert rec.get("model") == row["designation"], f"D1: product {ref} model {rec.get('model')!r}"
            content = self.sage.pictures.get(row["picture"] or "")
            if row["picture"] and content is not None:
                docs = self.ssm.documents.get(rec["id"], [])
                sha = hashlib.sha256(content).hexdigest()
                assert [(d["isCarrousel"], d["sha256"]) for d in docs] == [(True, sha)], (
                    f"D3: product {ref} documents {docs}, expected the picture {sha[:8]}"
                )
        gone = sorted(set(by_ext) - {k[0] for k in articles})
        assert not gone, f"D4: articles deleted in Sage still live in SSM: {gone}"

    def check_invoices(self, deferred: set[str]) -> None:
        """I1-I6 and G5 for every invoice and line; ``deferred`` are the pieces the last clean run deferred (I6)."""
        accounts = {r["extId"]: r["id"] for r in self.ssm.live("accounts") if r.get("extId")}
        products = {r["extId"]: r["id"] for r in self.ssm.live("products")}
        orders = self.ssm.live("salesorders")
        lines = self.ssm.live("salesordersLines")
        for endpoint, recs in (("salesorders", orders), ("salesordersLines", lines)):
            ext_ids = [r.get("extId") for r in recs]
            assert len(ext_ids) == len(set(ext_ids)), (
                f"G5: duplicate extId on {endpoint}: {sorted(map(str, ext_ids))}"
            )
        by_ext = {r["extId"]: r for r in orders}
        headers = {k[1]: r for k, r in self.sage.rows("invoices").items()}
        sage_lines: dict[str, dict[str, dict[str, Any]]] = {}
        for (line_id,), r in self.sage.rows("invoices", "lines").items():
            sage_lines.setdefault(r["piece"], {})[str(line_id)] = r
        lines_of: dict[int, dict[str, dict[str, Any]]] = {}
        for r in lines:
            lines_of.setdefault(r["salesOrderId"], {})[r["extId"]] = r
        for piece, row in headers.items():
            rec = by_ext.get(piece)
            account = accounts.get(row["customer_code"])
            if account is None:
                assert rec is not None or piece in deferred, (
                    f"I6: invoice {piece} of {row['customer_code']} (not in SSM) neither synced nor deferred"
                )
                continue
            assert rec is not None, (
                f"I1/I6: invoice {piece} of {row['customer_code']} (in SSM) has no sales order"
            )
            kind = "Avoir" if row["provenance"] == 2 else "Facture"
            expected = {
                "accountId": account,
                "readOnly": True,
                "Z_Sage50InvoiceId": piece,
                "reference": piece,
                "Z_DocType": kind,
                "statusId": self.ssm.lists.salesorder_statuses[kind],
                "Z_Synced": True,
                "Z_TotalHT": row["total_ht"],
                "total": row["total_ttc"],
                "Z_TotalTTC": row["total_ttc"],
                "Z_InvoiceDate": row["date"],
                "comment": row["customer_ref"],
            }
            got = {k: rec.get(k) for k in expected}
            assert got == expected, f"I1/I3-I5: sales order {piece}: {got} != {expected}"
            assert rec.get("Z_SyncedAt"), f"I3: sales order {piece} has no Z_SyncedAt"
            want = sage_lines.get(piece, {})
            have = lines_of.get(rec["id"], {})
            assert sorted(have) == sorted(want), (
                f"I1: lines of {piece} in SSM {sorted(have)} != Sage {sorted(want)}"
            )
            for line_id, line in want.items():
                expected_line = {
                    "quantity": half_up(line["quantity"]),
                    "Z_Quantity": line["quantity"],
                    "price": line["unit_price"],
                    "total": line["amount_ht"],
                    "description": line["designation"],
                    "order": line["position"],
                    "productId": products.get(line["article_ref"]) if line["article_ref"] else None,
                }
                got_line = {k: have[line_id].get(k) for k in expected_line}
                assert got_line == expected_line, (
                    f"I1: line {line_id} of {piece}: {got_line} != {expected_line}"
                )
        gone = sorted(set(by_ext) - set(headers))
        assert not gone, f"I2: invoices deleted in Sage still live in SSM: {gone}"
        live_ids = {r["id"] for r in orders}
        orphans = sorted(r["extId"] for r in lines if r["salesOrderId"] not in live_ids)
        assert not orphans, f"I2: live lines under a deleted (or no) sales order: {orphans}"


#: The seed of a CI build: a build is judged on the code it builds, so it replays the same examples every time
#: (a red build always means a change broke something; it never waits on a rare example found by chance).
CI_SEED = 11

#: Outside CI each run explores new examples from its own seed (printed when a run fails); set
#: SAGE_SYNC_HYPOTHESIS_SEED to replay one.
RUN_SEED = int(
    os.environ.get("SAGE_SYNC_HYPOTHESIS_SEED")
    or (CI_SEED if os.environ.get("CI") else random.SystemRandom().getrandbits(128))
)

#: Fixed seeds replayed on every run besides the random ones: a red build on them always means a change broke
#: something (a gap a random seed finds gets its own example test, e.g. test_orphans_and_twins.py for G5/D4).
REGRESSION_SEEDS = (27563478921127489084734569205378844377,)

#: The load commits its confirmed records this many at a time (G5): several chunks in a run, a fault between two.
STREAM_CHUNK = 3

SETTINGS = settings(
    # The examples are split between two halves of the machine, each in its own module so that two test workers
    # share them (tests/unit/engine/test_stateful_sync_second_half.py).
    max_examples=(EXAMPLES + 1) // 2,
    stateful_step_count=15,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run_with_seed(
    machine: type[SyncMachine], seed: int, config: settings = SETTINGS, replay: str | None = None
) -> None:
    """Run ``machine`` from ``seed``; a failure says how to replay it (``replay``: the command, when not the seed)."""
    machine._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]  # read by Hypothesis' stateful runner
    try:
        run_state_machine_as_test(machine, settings=config)
    except BaseException as exc:
        command = replay or f"SAGE_SYNC_HYPOTHESIS_SEED={seed} pytest {__file__}"
        exc.add_note(f"Hypothesis seed {seed}: replay with {command}")
        raise


class FirstHalf(SyncMachine):
    """The machine under its own name: its examples differ from the second half's."""


@pytest.mark.timeout(2400)  # 60 examples of up to 15 steps: minutes, more on a busy machine
def test_stateful_sync_first_half(monkeypatch: pytest.MonkeyPatch) -> None:
    """G5, G6 and every entity's rules under random interleavings and faults (half of the examples)."""
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", STREAM_CHUNK)
    run_with_seed(FirstHalf, RUN_SEED)
