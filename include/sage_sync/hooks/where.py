"""A safe builder for the SSM API ``where`` filter (contracts/SSM-API.md, "Lists").

The API's ``where`` is SQL-like text. Values are never pasted in as they come: every literal is rendered here
(strings quoted with ``''`` escaping, numbers checked finite, datetimes turned into UTC ISO text with ``Z``), and
field names must be plain identifiers, so a value such as ``O'Neil' OR '1'='1`` stays one harmless string.

Examples::

    where_eq("extId", "O'Neil")                      # extId = 'O''Neil'
    where_in("extId", ["C1", "C2"])                  # (extId = 'C1' OR extId = 'C2')
    where_in_batches("extId", many, max_url_chars=1800)
                                                     # ([...], "(extId = ... OR ...)") per URL-sized batch
    where_gt("dateUpdated", datetime(2026, 1, 1, tzinfo=UTC))
                                                     # dateUpdated > '2026-01-01T00:00:00.000Z'
    and_(where_eq("deleted", False), where_is_null("extId"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import quote

__all__ = [
    "Literal",
    "and_",
    "format_datetime",
    "format_literal",
    "or_",
    "quote_string",
    "where_compare",
    "where_eq",
    "where_ge",
    "where_gt",
    "where_in",
    "where_in_batches",
    "where_is_not_null",
    "where_is_null",
    "where_le",
    "where_like",
    "where_lt",
    "where_ne",
    "where_not_like",
]

Literal = str | int | float | Decimal | bool | datetime | date

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPERATORS = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})


def _field(name: str) -> str:
    """Return ``name`` if it is a plain identifier; anything else could change the expression's meaning."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"where: field name {name!r} is not an identifier (letters, digits, underscore)")
    return name


def quote_string(text: str) -> str:
    """Quote ``text`` as a ``where`` string literal, doubling embedded single quotes."""
    if "\x00" in text:
        raise ValueError("where: a string literal cannot contain a NUL character")
    return "'" + text.replace("'", "''") + "'"


def format_datetime(value: datetime) -> str:
    """Render an aware datetime as the API does: UTC, ISO-8601, milliseconds, ``Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"where: datetime {value.isoformat()} has no time zone; pass an aware (UTC) datetime"
        )
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_literal(value: Literal) -> str:
    """Render one literal value; ``None`` is refused (use :func:`where_is_null`)."""
    # bool before int: bool is an int subclass, and the API spells booleans true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"where: number {value!r} is not finite")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"where: number {value!r} is not finite")
        # Plain positional notation: the API's number grammar knows no exponent.
        return format(Decimal(str(value)), "f")
    if isinstance(value, datetime):
        return quote_string(format_datetime(value))
    if isinstance(value, date):
        return quote_string(value.isoformat())
    if isinstance(value, str):
        return quote_string(value)
    if value is None:
        raise ValueError("where: None is not a literal; use where_is_null()/where_is_not_null()")
    raise TypeError(f"where: unsupported literal type {type(value).__name__}")


def where_compare(field: str, op: str, value: Literal) -> str:
    """``field op literal`` for one of the API's comparison operators."""
    if op not in _OPERATORS:
        raise ValueError(f"where: operator {op!r} is not one of {', '.join(sorted(_OPERATORS))}")
    return f"{_field(field)} {op} {format_literal(value)}"


def where_eq(field: str, value: Literal) -> str:
    """``field = value``."""
    return where_compare(field, "=", value)


def where_ne(field: str, value: Literal) -> str:
    """``field <> value``."""
    return where_compare(field, "<>", value)


def where_gt(field: str, value: Literal) -> str:
    """``field > value``."""
    return where_compare(field, ">", value)


def where_ge(field: str, value: Literal) -> str:
    """``field >= value``."""
    return where_compare(field, ">=", value)


def where_lt(field: str, value: Literal) -> str:
    """``field < value``."""
    return where_compare(field, "<", value)


def where_le(field: str, value: Literal) -> str:
    """``field <= value``."""
    return where_compare(field, "<=", value)


def where_like(field: str, pattern: str) -> str:
    """``field LIKE 'pattern'`` (``%`` and ``_`` are the API's wildcards and pass through)."""
    if not isinstance(pattern, str):
        raise TypeError("where: a LIKE pattern must be a string")
    return f"{_field(field)} LIKE {quote_string(pattern)}"


def where_not_like(field: str, pattern: str) -> str:
    """``field NOT LIKE 'pattern'``."""
    if not isinstance(pattern, str):
        raise TypeError("where: a LIKE pattern must be a string")
    return f"{_field(field)} NOT LIKE {quote_string(pattern)}"


def where_is_null(field: str) -> str:
    """``field IS NULL``."""
    return f"{_field(field)} IS NULL"


def where_is_not_null(field: str) -> str:
    """``field IS NOT NULL``."""
    return f"{_field(field)} IS NOT NULL"


def where_in(field: str, values: Iterable[Literal]) -> str:
    """``(field = v1 OR field = v2 ...)``: the API has no ``IN``, so membership is an OR chain."""
    items = list(values)
    if not items:
        raise ValueError(f"where: where_in({field!r}) needs at least one value")
    return or_(*(where_eq(field, v) for v in items))


# URL-encoded sizes of the glue where_in puts around and between its clauses.
_OPEN_CLOSE_CHARS = len(quote("(", safe="")) + len(quote(")", safe=""))
_OR_CHARS = len(quote(" OR ", safe=""))


def where_in_batches(
    field: str, values: Iterable[Literal], max_url_chars: int
) -> Iterator[tuple[list[Literal], str]]:
    """Split ``values`` into membership filters that each fit ``max_url_chars`` once URL-encoded.

    Yields ``(batch, where)`` pairs in order, where ``where == where_in(field, batch)``; the batches put end to
    end give back ``values``. Each batch is as long as the limit allows, so a lookup costs as few calls as
    possible. The filter is a flat OR chain inside one pair of parentheses, so it stays far from the API's
    nesting limit however many values a batch holds; only its length bounds it.

    Linear in the number of values: each value's clause is rendered and URL-encoded once, and the batch's
    encoded length is a running sum. That is exact because percent-encoding works character by character, so
    the encoding of joined texts is the join of their encodings.

    Args:
        field: the field compared, e.g. ``extId`` or ``id``.
        values: the values to look up (duplicates are kept; remove them first if they matter).
        max_url_chars: the longest ``where`` allowed, measured as ``len(quote(where, safe=""))``.

    Raises:
        ValueError: a value whose filter alone is longer than ``max_url_chars``; no batch can carry it.
    """
    batch: list[Literal] = []
    clauses: list[str] = []
    encoded = 0  # sum of the URL-encoded lengths of the clauses in the batch
    for value in values:
        clause = where_eq(field, value)
        size = len(quote(clause, safe=""))
        if size > max_url_chars:
            raise ValueError(
                f"where: the filter on {field!r} for one value is {size} URL-encoded characters long; "
                f"the limit is {max_url_chars}"
            )
        # With the new clause the batch holds len(batch) + 1 clauses: parentheses and len(batch) ORs.
        if batch and encoded + size + _OPEN_CLOSE_CHARS + len(batch) * _OR_CHARS > max_url_chars:
            yield batch, _or_chain(clauses)
            batch, clauses, encoded = [], [], 0
        batch.append(value)
        clauses.append(clause)
        encoded += size
    if batch:
        yield batch, _or_chain(clauses)


def _or_chain(clauses: list[str]) -> str:
    """The text ``where_in`` builds from comparison clauses (none has a top-level AND/OR to parenthesise)."""
    return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"


def _join(keyword: str, clauses: tuple[str, ...]) -> str:
    parts = [c for c in clauses if c]
    if not parts:
        raise ValueError(f"where: {keyword} needs at least one clause")
    if len(parts) == 1:
        return parts[0]
    # The result is parenthesised, and so is any operand with a top-level AND/OR, so mixing AND and OR
    # never depends on operator precedence.
    return "(" + f" {keyword} ".join(f"({p})" if _has_top_level_bool(p) else p for p in parts) + ")"


_BOOL_WORD = re.compile(r"\b(AND|OR)\b", re.IGNORECASE)


def _has_top_level_bool(clause: str) -> bool:
    """Whether ``clause`` has an AND/OR outside parentheses and string literals."""
    depth, in_string, outside = 0, False, []
    for ch in clause:
        if ch == "'":
            in_string = not in_string  # '' toggles twice, so escaped quotes keep the state
            outside.append(" ")
        elif in_string:
            outside.append(" ")
        elif ch == "(":
            depth += 1
            outside.append(" ")
        elif ch == ")":
            depth -= 1
            outside.append(" ")
        else:
            outside.append(ch if depth == 0 else " ")
    return bool(_BOOL_WORD.search("".join(outside)))


def and_(*clauses: str) -> str:
    """Join clauses built by this module with ``AND``."""
    return _join("AND", clauses)


def or_(*clauses: str) -> str:
    """Join clauses built by this module with ``OR``."""
    return _join("OR", clauses)
