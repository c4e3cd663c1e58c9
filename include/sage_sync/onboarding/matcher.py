"""First-sync matching (O1): which SSM record without ``extId`` is which Sage record, with evidence and confidence.

* **Accounts** by SIRET, then VAT number, then normalised name + postcode (:mod:`.normalise`). A Sage account is
  matched at the first of these that finds a candidate; the other signals then raise or lower the confidence
  ("SIRET equal; VAT equal; name equal once normalised"; a SIRET that differs on both sides costs 0.3).
* **Contacts** by email, within a pair of matched companies (the person's names corroborate).
* **Products** by reference: the SSM product's ``model`` (or ``description``) is the article reference, or starts
  with it ("REF123 - Chaise"); the barcode and the designation corroborate.

Nothing is guessed: two SSM records for one Sage record, or one SSM record for two Sage records, are proposed as
**ambiguous** (every candidate listed) and bound only by a person. Functions here are pure: rows in, proposals out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sage_sync.engine.ownership import lookup_id
from sage_sync.onboarding import normalise as nz

MatchStatus = Literal["proposed", "ambiguous"]

#: Confidence of the signal a match was found by, before corroboration.
TIER_CONFIDENCE = {
    "SIRET": 0.98,
    "SIRET (check digit wrong)": 0.9,
    "VAT number": 0.96,
    "name + postcode": 0.85,
    "email": 0.95,
    "reference": 0.97,
    "reference at the start of the name": 0.92,
}
CEILING = 0.99


@dataclass(frozen=True)
class Proposal:
    """One proposed pair: a Sage key and an SSM id, why they are thought the same, and how sure that is.

    ``parent`` is the matched company pair a contact proposal depends on (``"<Sage code>|<SSM id>"``).
    """

    entity: str
    sage_key: str
    ssm_id: int
    confidence: float
    evidence: str
    status: MatchStatus
    sage_label: str = ""
    ssm_label: str = ""
    parent: str | None = None

    @property
    def pair(self) -> tuple[str, str, int]:
        """(entity, Sage key, SSM id)."""
        return (self.entity, self.sage_key, self.ssm_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Proposal:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**{**raw, "ssm_id": int(raw["ssm_id"]), "confidence": float(raw["confidence"])})


@dataclass
class _Found:
    """A candidate SSM record of one Sage record, with the evidence gathered so far."""

    ssm_id: int
    tier: str
    confidence: float
    evidence: list[str]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _adjust(
    found: _Found, label: str, left: str | None, right: str | None, *, plus: float, minus: float
) -> None:
    """Raise the confidence when a further signal agrees, lower it when both sides have it and it differs."""
    if not left or not right or label == found.tier:
        return
    if left == right:
        found.confidence = min(CEILING, found.confidence + plus)
        found.evidence.append(f"{label} equal")
    else:
        found.confidence = max(0.0, found.confidence - minus)
        found.evidence.append(f"{label} differs ({left} / {right})")


def _resolve(
    entity: str,
    candidates: dict[str, list[_Found]],
    sage_label: Callable[[str], str],
    ssm_label: Callable[[int], str],
    parent: Callable[[str, int], str | None] = lambda key, sid: None,
) -> list[Proposal]:
    """Proposals from the candidates of each Sage key: one clear pair, or every competing pair as ambiguous."""
    claims: dict[int, list[str]] = {}
    for key, found in candidates.items():
        for f in found:
            claims.setdefault(f.ssm_id, []).append(key)
    out: list[Proposal] = []
    for key in sorted(candidates):
        found = candidates[key]
        for f in sorted(found, key=lambda c: (-c.confidence, c.ssm_id)):
            rivals = [k for k in claims[f.ssm_id] if k != key]
            evidence = list(f.evidence)
            status: MatchStatus = "proposed"
            if len(found) > 1:
                others = ", ".join(str(o.ssm_id) for o in found if o.ssm_id != f.ssm_id)
                evidence.append(f"ambiguous: SSM record(s) {others} match Sage {key} too")
                status = "ambiguous"
            if rivals:
                evidence.append(f"ambiguous: Sage {', '.join(rivals)} match SSM record {f.ssm_id} too")
                status = "ambiguous"
            out.append(
                Proposal(
                    entity,
                    key,
                    f.ssm_id,
                    round(f.confidence, 3),
                    "; ".join(evidence),
                    status,
                    sage_label(key),
                    ssm_label(f.ssm_id),
                    parent(key, f.ssm_id),
                )
            )
    return out


def _index(
    records: Iterable[dict[str, Any]], value: Callable[[dict[str, Any]], str | None]
) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rec in records:
        found = value(rec)
        if found:
            out.setdefault(found, []).append(int(rec["id"]))
    return out


# --- accounts -------------------------------------------------------------------------------------------------


def _ssm_name_postcode(rec: dict[str, Any]) -> str | None:
    name, code = nz.company_name(rec.get("name")), nz.postcode(rec.get("postcode"))
    return f"{name}|{code}" if name and code else None


def match_accounts(
    sage_rows: Iterable[dict[str, Any]], ssm_records: Iterable[dict[str, Any]]
) -> list[Proposal]:
    """Pair Sage accounts (canonical rows) with SSM companies without ``extId`` (API records)."""
    sage = {str(r["code"]): r for r in sage_rows}
    ssm = {int(r["id"]): r for r in ssm_records}
    by_siret = _index(ssm.values(), lambda r: nz.siret(r.get("Z_Siret")))
    by_vat = _index(ssm.values(), lambda r: nz.vat_number(r.get("vatNumber")))
    by_name = _index(ssm.values(), _ssm_name_postcode)
    candidates: dict[str, list[_Found]] = {}
    for code, row in sage.items():
        siret, vat = nz.siret(row.get("siret")), nz.vat_number(row.get("vat_number"))
        name, code_postal = nz.company_name(row.get("name")), nz.postcode(row.get("postcode"))
        if siret and siret in by_siret:
            tier = "SIRET" if nz.siret_valid(siret) else "SIRET (check digit wrong)"
            ids, evidence = by_siret[siret], f"SIRET {siret} equal"
        elif vat and vat in by_vat:
            tier, ids, evidence = "VAT number", by_vat[vat], f"VAT number {vat} equal"
        elif name and code_postal and f"{name}|{code_postal}" in by_name:
            tier, ids = "name + postcode", by_name[f"{name}|{code_postal}"]
            evidence = f"name equal once normalised ({name!r}) and postcode {code_postal} equal"
        else:
            continue
        found = []
        for sid in ids:
            rec = ssm[sid]
            f = _Found(sid, tier, TIER_CONFIDENCE[tier], [evidence])
            if not tier.startswith("SIRET"):
                _adjust(f, "SIRET", siret, nz.siret(rec.get("Z_Siret")), plus=0.01, minus=0.3)
            if tier != "VAT number":
                _adjust(f, "VAT number", vat, nz.vat_number(rec.get("vatNumber")), plus=0.01, minus=0.2)
            if tier != "name + postcode":
                _adjust(f, "name", name, nz.company_name(rec.get("name")), plus=0.005, minus=0.05)
                _adjust(f, "postcode", code_postal, nz.postcode(rec.get("postcode")), plus=0.005, minus=0.05)
            found.append(f)
        candidates[code] = found
    return _resolve(
        "accounts",
        candidates,
        lambda k: f"{_text(sage[k].get('name'))} ({_text(sage[k].get('postcode'))})",
        lambda i: f"{_text(ssm[i].get('name'))} ({_text(ssm[i].get('postcode'))})",
    )


# --- contacts -------------------------------------------------------------------------------------------------


def match_contacts(
    sage_rows: Iterable[dict[str, Any]],
    ssm_records: Iterable[dict[str, Any]],
    companies: dict[str, int],
) -> list[Proposal]:
    """Pair Sage contacts with SSM contacts without ``extId`` by email, within matched companies.

    ``companies`` maps a Sage account code to the SSM company it is matched (or bound) to.
    """
    by_company: dict[int, list[dict[str, Any]]] = {}
    ssm: dict[int, dict[str, Any]] = {}
    for rec in ssm_records:
        account = lookup_id(rec.get("accountId"))
        if account is not None:
            by_company.setdefault(account, []).append(rec)
            ssm[int(rec["id"])] = rec
    sage: dict[str, dict[str, Any]] = {}
    candidates: dict[str, list[_Found]] = {}
    for row in sage_rows:
        code = str(row["account_code"])
        key = f"{code}/{int(row['number'])}"
        sage[key] = row
        mail, company = nz.email(row.get("email")), companies.get(code)
        if mail is None or company is None:
            continue
        found = []
        for rec in by_company.get(company, []):
            if nz.email(rec.get("email")) != mail:
                continue
            f = _Found(
                int(rec["id"]), "email", TIER_CONFIDENCE["email"], [f"email {mail} equal in company {code}"]
            )
            _adjust(
                f,
                "last name",
                nz.person_name(row.get("last_name")),
                nz.person_name(rec.get("lastName")),
                plus=0.03,
                minus=0.1,
            )
            _adjust(
                f,
                "first name",
                nz.person_name(row.get("first_name")),
                nz.person_name(rec.get("firstName")),
                plus=0.01,
                minus=0.05,
            )
            found.append(f)
        if found:
            candidates[key] = found

    def label(rec: dict[str, Any], first: str, last: str, mail: str) -> str:
        return f"{_text(rec.get(first))} {_text(rec.get(last))} <{_text(rec.get(mail))}>".strip()

    return _resolve(
        "contacts",
        candidates,
        lambda k: label(sage[k], "first_name", "last_name", "email"),
        lambda i: label(ssm[i], "firstName", "lastName", "email"),
        lambda k, sid: f"{k.rpartition('/')[0]}|{lookup_id(ssm[sid].get('accountId'))}",
    )


# --- products -------------------------------------------------------------------------------------------------


def _leading_reference(text: Any) -> str:
    """The first word of a product name, as a reference ("REF123 - Chaise" -> "REF123")."""
    words = str(text or "").strip().split()
    return nz.reference(words[0].rstrip(":-–")) if words else ""


def match_products(
    sage_rows: Iterable[dict[str, Any]], ssm_records: Iterable[dict[str, Any]]
) -> list[Proposal]:
    """Pair Sage articles with SSM products without ``extId`` by reference."""
    sage = {str(r["ref"]): r for r in sage_rows}
    ssm = {int(r["id"]): r for r in ssm_records}
    exact: dict[str, list[int]] = {}
    leading: dict[str, list[int]] = {}
    for sid, rec in ssm.items():
        for name in ("model", "description"):
            whole = nz.reference(rec.get(name))
            if whole:
                exact.setdefault(whole, []).append(sid)
            first = _leading_reference(rec.get(name))
            if first and first != whole:
                leading.setdefault(first, []).append(sid)
    candidates: dict[str, list[_Found]] = {}
    for ref, row in sage.items():
        wanted = nz.reference(ref)
        if wanted in exact:
            tier, ids = "reference", exact[wanted]
        elif wanted in leading:
            tier, ids = "reference at the start of the name", leading[wanted]
        else:
            continue
        found = []
        for sid in sorted(set(ids)):
            rec = ssm[sid]
            said = (
                f"SSM product name is reference {ref}"
                if tier == "reference"
                else f"SSM product name starts with {ref}"
            )
            f = _Found(sid, tier, TIER_CONFIDENCE[tier], [said])
            _adjust(
                f,
                "barcode",
                nz.reference(row.get("barcode")) or None,
                nz.reference(rec.get("Z_Barcode")) or None,
                plus=0.02,
                minus=0.2,
            )
            found.append(f)
        candidates[ref] = found
    return _resolve(
        "products",
        candidates,
        lambda k: _text(sage[k].get("designation")),
        lambda i: _text(ssm[i].get("model")),
    )
