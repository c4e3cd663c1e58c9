"""First-sync matching rules (O1): which SSM record without extId is which Sage record, and how sure."""

from __future__ import annotations

from typing import Any

from sage_sync.onboarding import normalise as nz
from sage_sync.onboarding.matcher import match_accounts, match_contacts, match_products

# A SIRET that passes its Luhn check, and one that does not.
SIRET = "73282932000074"
SIRET_2 = "55210055400013"


def _sage(code: str, name: str, postcode: str = "69002", **kw: Any) -> dict[str, Any]:
    return {"code": code, "name": name, "postcode": postcode, "is_prospect": 0, **kw}


def _ssm(ident: int, name: str, postcode: str = "69002", **kw: Any) -> dict[str, Any]:
    return {"id": ident, "name": name, "postcode": postcode, "extId": None, **kw}


def _by_key(proposals: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in proposals:
        out.setdefault(p.sage_key, []).append(p)
    return out


def test_o1_name_folding_removes_case_accents_apostrophes_and_legal_forms() -> None:
    assert nz.company_name("L’Atelier du Pain SARL") == nz.company_name("ATELIER DU PAIN")
    assert nz.company_name("Boulangerie Élise & Fils") == nz.company_name("BOULANGERIE ELISE ET FILS")
    assert nz.company_name("Œuvres d'Art S.A.S.") == nz.company_name("oeuvres d art")
    assert nz.siret("732 829 320 00074") == SIRET and nz.siret("123") is None
    assert nz.vat_number("fr 12 732829320") == "FR12732829320"
    assert nz.postcode("69 002 CEDEX") == "69002"


def test_o1_accounts_by_siret_then_vat_then_name_and_postcode_with_evidence() -> None:
    sage = [
        _sage("C1", "Dupont SA", siret=SIRET, vat_number="FR12732829320"),
        _sage("C2", "Martin", vat_number="FR40552100554"),
        _sage("C3", "L’Épicerie Générale", postcode="75011"),
        _sage("C4", "Nobody here"),
    ]
    ssm = [
        _ssm(
            10, "DUPONT", Z_Siret="732 829 320 00074", postcode="13001"
        ),  # SIRET wins over a differing postcode
        _ssm(11, "Ets Martin", vatNumber="FR 40 552100554"),
        _ssm(12, "L'EPICERIE GENERALE", postcode="75011"),
        _ssm(13, "Unrelated", postcode="75011"),
    ]
    found = _by_key(match_accounts(sage, ssm))
    assert set(found) == {"C1", "C2", "C3"}  # C4 has no candidate: nothing is guessed
    c1, c2, c3 = found["C1"][0], found["C2"][0], found["C3"][0]
    assert (c1.ssm_id, c1.status) == (10, "proposed") and "SIRET 73282932000074 equal" in c1.evidence
    assert "postcode differs" in c1.evidence and c1.confidence >= 0.9
    assert (c2.ssm_id, c2.status) == (11, "proposed") and "VAT number FR40552100554 equal" in c2.evidence
    assert (c3.ssm_id, c3.status) == (12, "proposed") and "name equal once normalised" in c3.evidence
    # Confidence follows the strength of the signal: VAT (all else agreeing) > name + postcode.
    assert c2.confidence > c3.confidence


def test_o1_two_ssm_companies_for_one_sage_code_are_ambiguous_not_guessed() -> None:
    sage = [_sage("C1", "Garage Central", siret=SIRET), _sage("C2", "Bar", vat_number="FR40552100554")]
    ssm = [
        _ssm(20, "Garage Central", Z_Siret=SIRET),
        _ssm(21, "GARAGE CENTRAL (doublon)", Z_Siret=SIRET),
        _ssm(22, "Bar", vatNumber="FR40552100554"),
    ]
    found = _by_key(match_accounts(sage, ssm))
    assert {p.ssm_id for p in found["C1"]} == {20, 21}
    assert all(p.status == "ambiguous" for p in found["C1"])
    assert all("ambiguous" in p.evidence for p in found["C1"])
    assert found["C2"][0].status == "proposed"


def test_o1_one_ssm_company_claimed_by_two_sage_codes_is_ambiguous() -> None:
    sage = [_sage("C1", "Café du Port", postcode="33000"), _sage("C2", "CAFE DU PORT", postcode="33000")]
    ssm = [_ssm(30, "Café du port", postcode="33000")]
    proposals = match_accounts(sage, ssm)
    assert {(p.sage_key, p.status) for p in proposals} == {("C1", "ambiguous"), ("C2", "ambiguous")}


def test_o1_a_differing_siret_lowers_a_name_match_below_automatic_binding() -> None:
    sage = [_sage("C1", "Durand", siret=SIRET)]
    ssm = [_ssm(40, "DURAND", Z_Siret=SIRET_2)]
    (p,) = match_accounts(sage, ssm)
    assert "SIRET differs" in p.evidence and p.confidence < 0.6


def test_o1_contacts_by_email_only_within_the_matched_company() -> None:
    sage = [
        {"account_code": "C1", "number": 1, "email": "Anne.Petit@Example.fr", "first_name": "Anne",
         "last_name": "Petit"},
        {"account_code": "C2", "number": 1, "email": "paul@example.fr", "first_name": "Paul", "last_name": "Roy"},
    ]  # fmt: skip
    ssm = [
        {"id": 50, "accountId": {"id": 10}, "email": "anne.petit@example.fr", "firstName": "Anne",
         "lastName": "PETIT"},
        {"id": 51, "accountId": {"id": 99}, "email": "paul@example.fr", "firstName": "Paul", "lastName": "Roy"},
    ]  # fmt: skip
    proposals = match_contacts(sage, ssm, {"C1": 10, "C2": 11})
    assert [(p.sage_key, p.ssm_id, p.parent) for p in proposals] == [("C1/1", 50, "C1|10")]
    assert "last name equal" in proposals[0].evidence


def test_o1_products_by_reference_exact_or_at_the_start_of_the_name() -> None:
    sage = [
        {"ref": "CHAISE01", "designation": "Chaise", "barcode": "3012345678901"},
        {"ref": "TABLE02", "designation": "Table"},
        {"ref": "LAMPE03", "designation": "Lampe"},
    ]
    ssm = [
        {"id": 60, "model": "chaise01", "Z_Barcode": "3012345678901"},
        {"id": 61, "model": "TABLE02 - Table chêne"},
        {"id": 62, "model": "Lampe de bureau"},
    ]
    found = _by_key(match_products(sage, ssm))
    assert set(found) == {"CHAISE01", "TABLE02"}
    assert found["CHAISE01"][0].ssm_id == 60 and "barcode equal" in found["CHAISE01"][0].evidence
    assert (
        found["TABLE02"][0].ssm_id == 61 and found["TABLE02"][0].confidence < found["CHAISE01"][0].confidence
    )
