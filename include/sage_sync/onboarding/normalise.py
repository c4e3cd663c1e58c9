"""How two spellings of the same company, person or article are brought to one comparable form (O1).

A sales team types companies its own way: capitals, no accents, a typographic apostrophe, the legal form before or
after the name, "&" for "et", spaces inside a SIRET. These functions fold such differences away; what is left is
compared for equality only (no fuzzy score), so a match is always explainable in one sentence.
"""

from __future__ import annotations

import re
import unicodedata

from sage_sync.simulators.standin.identifiers import luhn_valid

#: Words that say what kind of company it is, not which one: legal forms, "établissements", "& Cie"...
LEGAL_WORDS = frozenset(
    {
        "sa", "sas", "sasu", "sarl", "eurl", "sci", "snc", "scop", "scp", "sca", "selarl", "selas", "eirl", "ei",
        "gie", "ets", "etablissement", "etablissements", "ste", "societe", "cie", "compagnie",
    }
)  # fmt: skip
#: Articles and linking words, dropped so that "L'Atelier du Pain" and "ATELIER PAIN" agree.
SMALL_WORDS = frozenset({"l", "d", "le", "la", "les", "de", "du", "des", "et", "a", "au", "aux", "en"})

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_NON_WORD = re.compile(r"[^0-9a-z]+")
_DOTTED = re.compile(r"\b(?:[A-Za-z]\.){2,}")


def fold_text(text: str | None) -> str:
    """Lower case, without accents or ligatures; every run of punctuation (apostrophes of any kind) is a space."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text).translate(_LIGATURES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NON_WORD.sub(" ", plain.replace("&", " et ")).strip()


def company_name(text: str | None) -> str:
    """A company name without case, accents, punctuation, legal forms or small words ("" when nothing is left).

    Dotted abbreviations are read as one word first ("S.A.R.L." is "SARL").
    """
    undotted = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), str(text or ""))
    words = [w for w in fold_text(undotted).split() if w not in LEGAL_WORDS and w not in SMALL_WORDS]
    return " ".join(words)


def person_name(text: str | None) -> str:
    """A person's name folded for comparison."""
    return fold_text(text)


def digits(text: str | None) -> str:
    """The digits of ``text``."""
    return "".join(c for c in str(text or "") if c.isdigit())


def siret(text: str | None) -> str | None:
    """A SIRET as its 14 digits (spaces and dots removed), or None when it is not 14 digits."""
    found = digits(text)
    return found if len(found) == 14 else None


def siret_valid(value: str) -> bool:
    """Whether a 14-digit SIRET passes its Luhn check (La Poste's establishments aside, as INSEE documents)."""
    return luhn_valid(value) or (value.startswith("356000000") and sum(int(c) for c in value) % 5 == 0)


def vat_number(text: str | None) -> str | None:
    """An intra-community VAT number upper case without separators, or None when too short to mean anything."""
    found = re.sub(r"[^0-9A-Z]", "", str(text or "").upper())
    return found if len(found) >= 8 else None


def postcode(text: str | None) -> str | None:
    """A postcode without spaces, upper case (a CEDEX code keeps its five digits)."""
    found = re.sub(r"\s+", "", str(text or "")).upper()
    return found[:5] if found[:5].isdigit() else (found or None)


def email(text: str | None) -> str | None:
    """An email address trimmed and case-folded, or None when it has no ``@``."""
    found = str(text or "").strip().casefold()
    return found if "@" in found else None


def reference(text: str | None) -> str:
    """An article reference upper case without spaces."""
    return re.sub(r"\s+", "", str(text or "")).upper()
