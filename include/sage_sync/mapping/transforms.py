"""Named value transforms between canonical (Sage-side) values and SSM values.

The YAML mappings name a transform per field; this module implements them, both directions where the field is
two-way. Transforms that need an SSM value list take a :class:`ValueLists`, fetched once per run.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CLIENT = "Client"
PROSPECT = "Prospect"
INVOICE = "Facture"
CREDIT_NOTE = "Avoir"


@dataclass
class ValueLists:
    """The SSM value lists the transforms need (ids by label), as plain serialisable data."""

    account_statuses: dict[str, int] = field(default_factory=dict)
    countries: list[dict[str, Any]] = field(default_factory=list)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    salesorder_statuses: dict[str, int] = field(default_factory=dict)
    product_families: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The lists as JSON-ready data."""
        out = asdict(self)
        out["users"] = {str(k): v for k, v in self.users.items()}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValueLists:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            account_statuses=dict(raw.get("account_statuses") or {}),
            countries=list(raw.get("countries") or []),
            users={int(k): v for k, v in (raw.get("users") or {}).items()},
            salesorder_statuses=dict(raw.get("salesorder_statuses") or {}),
            product_families=dict(raw.get("product_families") or {}),
        )


def fold(text: str) -> str:
    """Case- and accent-insensitive form of ``text`` (for matching labels such as country names)."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- accounts -------------------------------------------------------------------------------------------------


def status_to_ssm(is_prospect: int | None, lists: ValueLists) -> int | None:
    """``CT_Prospect`` (0 customer, 1 prospect) -> the ``statusId`` of "Client" / "Prospect"."""
    label = PROSPECT if is_prospect == 1 else CLIENT
    if label not in lists.account_statuses:
        raise KeyError(f"SSM value list accountStatuses has no {label!r} entry")
    return lists.account_statuses[label]


def status_from_ssm(status_id: int | None, lists: ValueLists) -> int | None:
    """SSM ``statusId`` -> ``CT_Prospect``: 0 for "Client", 1 for "Prospect", None for any other status (C4)."""
    if status_id is None:
        return None
    if status_id == lists.account_statuses.get(CLIENT):
        return 0
    if status_id == lists.account_statuses.get(PROSPECT):
        return 1
    return None


def country_to_ssm(name: str | None, lists: ValueLists) -> tuple[int | None, str | None]:
    """Country name -> ``countryId`` by ``descriptionFR`` (case/accent-insensitive).

    Returns ``(id, None)``, or ``(None, warning)`` for a name the list does not know: the field is then left unset
    and the record gets a quarantine warning (non-blocking, G3).
    """
    if name is None or not str(name).strip():
        return None, None
    wanted = fold(str(name))
    for c in lists.countries:
        if fold(str(c.get("descriptionFR") or "")) == wanted or fold(str(c.get("iso2") or "")) == wanted:
            return int(c["id"]), None
    return None, f"country {name!r} is not in the SSM countries list; countryId left unset"


def country_from_ssm(country_id: int | None, lists: ValueLists) -> str | None:
    """``countryId`` -> the French country name written to Sage."""
    if country_id is None:
        return None
    for c in lists.countries:
        if int(c["id"]) == int(country_id):
            return str(c.get("descriptionFR"))
    return None


def sales_rep_name(user_id: int | None, lists: ValueLists) -> str | None:
    """C6: the full name (``name`` + " " + ``lastName``) of SSM user ``user_id``, for Sage ``SALES_REP``."""
    if user_id is None or int(user_id) not in lists.users:
        return None
    user = lists.users[int(user_id)]
    return " ".join(p for p in (user.get("name"), user.get("lastName")) if p) or None


# --- contacts -------------------------------------------------------------------------------------------------


def gender_to_ssm(civility: int | None) -> int | None:
    """``CT_Civilite`` (0 M., 1 Mme) -> SSM ``gender`` (0 male, 1 female)."""
    return None if civility is None else (1 if int(civility) == 1 else 0)


def gender_from_ssm(gender: int | None) -> int | None:
    """SSM ``gender`` -> ``CT_Civilite``."""
    return None if gender is None else (1 if int(gender) == 1 else 0)


# --- products -------------------------------------------------------------------------------------------------


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def price_ht(price: float | None, includes_tax: int | None, vat_rate: float | None) -> float | None:
    """D6: the sales price excluding tax, rounded to 2 decimals (half up).

    Raises ``ValueError`` when the price includes tax and the VAT rate is unknown (the row is then quarantined).
    """
    if price is None:
        return None
    amount = Decimal(str(price))
    if includes_tax == 1:
        if vat_rate is None:
            raise ValueError("sales price includes tax but the article has no sales VAT rate")
        amount = amount / (Decimal(1) + Decimal(str(vat_rate)) / Decimal(100))
    return _money(amount)


def stock_to_ssm(stock_managed: int | None, stock_total: float | None) -> tuple[int | None, str]:
    """D2: (``stock``, ``Z_StockDisplay``): the total over depots, or ``(None, "-")`` without stock management."""
    if not stock_managed:
        return None, "-"
    # Quantized to 6 decimals (more than Sage keeps for a quantity): a float sum's noise never reaches SSM.
    total = Decimal(str(stock_total or 0)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    text = format(total.normalize(), "f") if total != total.to_integral() else str(int(total))
    return int(total.to_integral_value(rounding=ROUND_HALF_UP)), text


def flag_to_ssm(value: int | None) -> bool:
    """D5: ``AR_Sommeil`` 1 -> ``notAvailable: true``, else false."""
    return bool(value)


# --- invoices -------------------------------------------------------------------------------------------------


def invoice_kind(provenance: int | None, lists: ValueLists) -> tuple[int | None, str]:
    """I5: (``statusId``, ``Z_DocType``): credit notes (``DO_Provenance`` 2) are "Avoir", others "Facture"."""
    label = CREDIT_NOTE if provenance == 2 else INVOICE
    return lists.salesorder_statuses.get(label), label


def quantity_to_ssm(quantity: float | None) -> tuple[int | None, float | None]:
    """(``quantity``, ``Z_Quantity``): SSM's integer quantity (half up) and the exact Sage quantity."""
    if quantity is None:
        return None, None
    exact = Decimal(str(quantity))
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP)), float(exact)
