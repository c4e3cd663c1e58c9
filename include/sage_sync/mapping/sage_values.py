"""What a Sage 50 FR column can store: the one rule the planner, the ODBC write path and the quality suites share.

Sage keeps text in single-byte Windows-1252 columns of a fixed length and integers in smallint or int columns.
A value outside that is refused before anything is written (G3: quarantined with its reason, never truncated or
mangled). Control characters are refused too although cp1252 can encode them: NUL cuts the text in the drivers
and in Sage's own screens, and BEL, ESC and the like have no place in a name or an address (tab, line feed and
carriage return are allowed: Sage's comment fields hold several lines).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pandas as pd

from sage_sync.mapping.model import FieldMap

SAGE_CODEC = "cp1252"
"""The code page of Sage's text columns: the only characters a dossier can store."""

#: Bounds of the SQL integer types Sage 50 FR columns use (``bits`` in the mapping).
SMALLINT_RANGE = (-32768, 32767)
INTEGER_RANGE = (-(2**31), 2**31 - 1)

_CP1252_CHARS = bytes(range(256)).decode(SAGE_CODEC, errors="ignore")  # 251 characters; 5 bytes are undefined
_CONTROL = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_STORABLE = "".join(c for c in _CP1252_CHARS if c not in _CONTROL)
#: One character Sage cannot store (outside cp1252, or a control character).
UNSTORABLE = re.compile("[^" + "".join(re.escape(c) for c in _STORABLE) + "]")


def first_unstorable(text: str) -> str | None:
    """The first character of ``text`` a Sage text column cannot store, or None."""
    match = UNSTORABLE.search(text)
    return match.group(0) if match else None


def why_unstorable(char: str) -> str:
    """Why Sage cannot store ``char``: a sentence naming it with its code point."""
    shown = f"{char!r} (U+{ord(char):04X})"
    if char in _CONTROL:
        return f"contains the control character {shown}, which Sage must not store"
    return f"contains {shown}, which Sage cannot store (cp1252)"


def integer_range(f: FieldMap) -> tuple[int, int]:
    """The values the Sage integer column of ``f`` accepts (its ``bits`` in the mapping: smallint or int)."""
    return SMALLINT_RANGE if f.bits == 16 else INTEGER_RANGE


def text_problem(f: FieldMap, text: str) -> str | None:
    """Why a Sage text column cannot store ``text`` (characters, length), or None."""
    bad = first_unstorable(text)
    if bad is not None:
        return why_unstorable(bad)
    if f.length is not None and len(text) > f.length:
        return f"is {len(text)} characters, the Sage column holds {f.length}"
    return None


def integer_problem(f: FieldMap, number: Decimal) -> str | None:
    """Why a Sage integer column cannot store ``number`` (a finite integral value), or None."""
    low, high = integer_range(f)
    if not low <= number <= high:
        # Refused here: drivers would overflow it (an error mid-batch) or, worse, wrap it silently.
        return f"is {int(number)}, outside the column's range {low}..{high}"
    return None


def value_problem(f: FieldMap, value: Any) -> str | None:
    """Why Sage cannot store ``value`` in the column of ``f`` (required, characters, length, range), or None.

    The sentence starts with a verb ("is required", "contains ...", "is 80 characters, ..."): callers put the
    field's name (canonical or Sage column) in front of it.
    """
    if value is None:
        return "is required" if f.required else None
    if isinstance(value, str):
        return text_problem(f, value)
    if f.dtype == "int" and isinstance(value, int) and not isinstance(value, bool):
        return integer_problem(f, Decimal(value))
    return None


def storable(values: pd.Series) -> pd.Series:
    """Per value: whether Sage can store its characters (``<NA>`` for nulls); the vectorised :func:`first_unstorable`."""
    text = values.astype("string")
    return (~text.str.contains(UNSTORABLE.pattern, regex=True)).astype("boolean")
