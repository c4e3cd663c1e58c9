"""The ``where`` filter language of list calls: tokenizer, recursive-descent parser and evaluator.

Grammar (contracts/SSM-API.md, "Lists")::

    expr       := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := primary ("AND" primary)*
    primary    := "(" expr ")" | comparison
    comparison := FIELD op literal | FIELD ["NOT"] "LIKE" STRING | FIELD "IS" ["NOT"] "NULL"
    op         := "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
    literal    := STRING | NUMBER | "true" | "false"

The text is parsed into an AST and evaluated in Python against the in-memory records, so a filter can never
reach SQL: an injection attempt is either a syntax error (code 901) or a harmless comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sage_sync.simulators.ssm.entities import EntityDef, FieldType


class WhereError(ValueError):
    """A ``where`` that does not parse or names an unknown field (API code 901)."""


# --------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    """One lexical token with its position (for error messages)."""

    kind: str  # IDENT, STRING, NUMBER, OP, LPAREN, RPAREN, KEYWORD, EOF
    value: str
    pos: int


KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IS", "NULL", "TRUE", "FALSE"}
_OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# ASCII only: field names and numbers never use other scripts' letters or digits.
_DIGITS = frozenset("0123456789")
#: Deepest parenthesis nesting accepted: far beyond any real filter, far below Python's recursion limit
#: (the parser is recursive descent, so unbounded nesting would crash the request instead of answering 901).
MAX_NESTING = 50
#: Longest number literal accepted, in characters: more than any stored number needs, and far below Python's
#: int-from-string limit (4,300 digits), which would otherwise raise a ValueError deep inside the parser.
MAX_NUMBER_LENGTH = 100
_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def tokenize(text: str) -> list[Token]:
    """Split a ``where`` string into tokens; raise WhereError on any character the grammar does not know."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(Token("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("RPAREN", ch, i))
            i += 1
        elif ch == "'":
            start, i, parts = i, i + 1, []
            while True:
                if i >= n:
                    raise WhereError(f"unterminated string starting at position {start}")
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":  # '' is an escaped quote
                        parts.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                parts.append(text[i])
                i += 1
            tokens.append(Token("STRING", "".join(parts), start))
        elif ch in _DIGITS or (ch == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            assert m is not None  # guarded by the digit test above
            if len(m.group(0)) > MAX_NUMBER_LENGTH:
                raise WhereError(
                    f"number at position {i} is {len(m.group(0))} characters long; "
                    f"the limit is {MAX_NUMBER_LENGTH}"
                )
            tokens.append(Token("NUMBER", m.group(0), i))
            i = m.end()
        elif ch in _IDENT_START:
            m = _IDENT.match(text, i)
            assert m is not None
            word = m.group(0)
            kind = "KEYWORD" if word.upper() in KEYWORDS else "IDENT"
            tokens.append(Token(kind, word.upper() if kind == "KEYWORD" else word, i))
            i = m.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("OP", op, i))
                    i += len(op)
                    break
            else:
                raise WhereError(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("EOF", "", n))
    return tokens


# --------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Comparison:
    """``field op literal`` (op also LIKE / NOT LIKE / IS NULL / IS NOT NULL, literal None for the last two)."""

    field: str
    op: str
    literal: str | int | float | bool | None
    literal_kind: str  # STRING, NUMBER, BOOL, NULL


@dataclass(frozen=True)
class BoolOp:
    """``AND`` / ``OR`` over two or more operands."""

    op: str
    operands: tuple[Node, ...]


Node = Comparison | BoolOp


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_keyword(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "KEYWORD" or tok.value != word:
            raise WhereError(f"expected {word} at position {tok.pos}, found {tok.value or 'end of text'!r}")

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "EOF":
            raise WhereError(f"unexpected {tok.value!r} at position {tok.pos}")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.peek().kind == "KEYWORD" and self.peek().value == "OR":
            self.take()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.primary()]
        while self.peek().kind == "KEYWORD" and self.peek().value == "AND":
            self.take()
            operands.append(self.primary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "LPAREN":
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise WhereError(f"parentheses nested deeper than {MAX_NESTING} levels at position {tok.pos}")
            node = self.or_expr()
            self.depth -= 1
            close = self.take()
            if close.kind != "RPAREN":
                raise WhereError(f"expected ')' at position {close.pos}")
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        tok = self.take()
        if tok.kind != "IDENT":
            raise WhereError(
                f"expected a field name at position {tok.pos}, found {tok.value or 'end of text'!r}"
            )
        name = tok.value
        nxt = self.take()
        if nxt.kind == "OP":
            op = "<>" if nxt.value == "!=" else nxt.value
            kind, value = self.literal()
            return Comparison(name, op, value, kind)
        if nxt.kind == "KEYWORD" and nxt.value in ("LIKE", "NOT"):
            op = "LIKE"
            if nxt.value == "NOT":
                self.expect_keyword("LIKE")
                op = "NOT LIKE"
            lit = self.take()
            if lit.kind != "STRING":
                raise WhereError(f"{op} needs a quoted pattern at position {lit.pos}")
            return Comparison(name, op, lit.value, "STRING")
        if nxt.kind == "KEYWORD" and nxt.value == "IS":
            op = "IS NULL"
            if self.peek().kind == "KEYWORD" and self.peek().value == "NOT":
                self.take()
                op = "IS NOT NULL"
            self.expect_keyword("NULL")
            return Comparison(name, op, None, "NULL")
        raise WhereError(f"expected an operator after {name!r} at position {nxt.pos}")

    def literal(self) -> tuple[str, str | int | float | bool]:
        tok = self.take()
        if tok.kind == "STRING":
            return "STRING", tok.value
        if tok.kind == "NUMBER":
            return "NUMBER", float(tok.value) if "." in tok.value else int(tok.value)
        if tok.kind == "KEYWORD" and tok.value in ("TRUE", "FALSE"):
            return "BOOL", tok.value == "TRUE"
        raise WhereError(f"expected a literal at position {tok.pos}, found {tok.value or 'end of text'!r}")


def parse(text: str) -> Node:
    """Parse a ``where`` string into an AST (raises WhereError)."""
    if not text.strip():
        raise WhereError("empty where")
    return _Parser(tokenize(text)).parse()


# --------------------------------------------------------------------------------------------- evaluation

Predicate = Callable[[dict[str, Any]], bool]


def format_datetime(dt: datetime) -> str:
    """Render a datetime the way the API does: ISO-8601 UTC, milliseconds, ``Z``."""
    dt = dt.astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    """Parse an ISO date or datetime (``Z`` or offset; naive means UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    dt = datetime.fromisoformat(raw.replace(" ", "T", 1) if len(raw) > 10 else raw)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def normalise_datetime(text: str) -> str:
    """Canonical stored form of a datetime; equal instants give equal, lexically ordered strings."""
    return format_datetime(parse_datetime(text))


def normalise_date(text: str) -> str:
    """Canonical stored form of a date (``YYYY-MM-DD``); a datetime keeps its UTC date."""
    raw = text.strip()
    if len(raw) == 10:
        return date.fromisoformat(raw).isoformat()
    return parse_datetime(raw).date().isoformat()


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    # SQL Server's default collation is case-insensitive for LIKE.
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _coerce(entity: EntityDef, cmp: Comparison) -> Any:
    """Turn the literal into the stored representation of the field, or raise WhereError."""
    f = entity.fields[cmp.field]
    lit, kind = cmp.literal, cmp.literal_kind
    t = f.type
    try:
        if t in (FieldType.TEXT,):
            return str(lit) if kind != "BOOL" else str(lit).lower()
        if t in (FieldType.INT, FieldType.DECIMAL, FieldType.REF, FieldType.GENDER):
            if kind == "NUMBER":
                return lit
            if kind == "STRING":
                assert isinstance(lit, str)
                return float(lit) if "." in lit else int(lit)
            raise WhereError(f"field {cmp.field!r} is numeric; {lit!r} is not a number")
        if t == FieldType.BOOL:
            if kind == "BOOL":
                return lit
            if kind == "NUMBER" and lit in (0, 1):
                return bool(lit)
            if kind == "STRING" and str(lit).lower() in ("true", "false", "0", "1"):
                return str(lit).lower() in ("true", "1")
            raise WhereError(f"field {cmp.field!r} is boolean; {lit!r} is not true/false")
        if t == FieldType.DATETIME:
            if kind != "STRING":
                raise WhereError(f"field {cmp.field!r} is a date-time; write it as quoted ISO text")
            assert isinstance(lit, str)
            return normalise_datetime(lit)
        if t == FieldType.DATE:
            if kind != "STRING":
                raise WhereError(f"field {cmp.field!r} is a date; write it as quoted ISO text")
            assert isinstance(lit, str)
            return normalise_date(lit)
    except ValueError as exc:
        if isinstance(exc, WhereError):
            raise
        raise WhereError(f"field {cmp.field!r}: {lit!r} is not a valid {t.value}") from exc
    raise WhereError(f"field {cmp.field!r} cannot be compared")  # pragma: no cover


def _compile_comparison(entity: EntityDef, cmp: Comparison) -> Predicate:
    if cmp.field not in entity.fields:
        raise WhereError(f"unknown field {cmp.field!r} for {entity.name}")
    name = cmp.field
    op = cmp.op
    if op == "IS NULL":
        return lambda r: r.get(name) is None
    if op == "IS NOT NULL":
        return lambda r: r.get(name) is not None
    if op in ("LIKE", "NOT LIKE"):
        rx = _like_regex(str(cmp.literal))
        positive = op == "LIKE"

        def like(r: dict[str, Any]) -> bool:
            v = r.get(name)
            if v is None:
                return False  # SQL: NULL LIKE x is unknown, so the row is not returned
            return bool(rx.fullmatch(_as_text(v))) is positive

        return like
    value = _coerce(entity, cmp)
    if isinstance(value, bool) and entity.fields[name].type != FieldType.BOOL:
        value = str(value).lower()

    def compare(r: dict[str, Any]) -> bool:
        v = r.get(name)
        if v is None:
            return False  # SQL three-valued logic: comparisons with NULL never match
        try:
            if op == "=":
                return bool(v == value)
            if op == "<>":
                return bool(v != value)
            if op == "<":
                return bool(v < value)
            if op == "<=":
                return bool(v <= value)
            if op == ">":
                return bool(v > value)
            return bool(v >= value)
        except TypeError:
            return False

    return compare


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def compile_where(entity: EntityDef, text: str) -> Predicate:
    """Parse ``text`` and return a predicate over stored records of ``entity`` (raises WhereError)."""
    return _compile_node(entity, parse(text))


def _compile_node(entity: EntityDef, node: Node) -> Predicate:
    if isinstance(node, Comparison):
        return _compile_comparison(entity, node)
    if node.op == "AND":
        parts = [_compile_node(entity, n) for n in node.operands]
        return lambda r: all(p(r) for p in parts)
    # ``f = a OR f = b OR ...`` (how clients look records up by a batch of extIds) becomes one set lookup,
    # so a 100-value batch costs one probe per record instead of 100 comparisons.
    equalities: dict[str, set[Any]] = {}
    others: list[Node] = []
    for operand in node.operands:
        if isinstance(operand, Comparison) and operand.op == "=":
            _compile_comparison(entity, operand)  # validates the field and the literal
            equalities.setdefault(operand.field, set()).add(_coerce(entity, operand))
        else:
            others.append(operand)
    parts = [_compile_node(entity, n) for n in others]
    for name, values in equalities.items():
        parts.append(_membership(name, frozenset(values)))
    return lambda r: any(p(r) for p in parts)


def _membership(name: str, values: frozenset[Any]) -> Predicate:
    def member(r: dict[str, Any]) -> bool:
        v = r.get(name)
        return v is not None and v in values

    return member
