"""The parser of RFC 7644 §3.4.2.2 filters and of §3.5.2 PATCH paths.

A small tokenizer and a recursive-descent parser with the RFC's precedence
(``not`` > ``and`` > ``or``). Operators, ``and``/``or``/``not`` and the literals
``true``/``false``/``null`` are read in any case. Whitespace may be any run of spaces,
tabs or line breaks, and may be left out next to ``( ) [ ]`` and quotes.

Whatever the input, the only exception that leaves :func:`parse_filter` is
:class:`~scimsync.errors.FilterSyntaxError`, with the offset where parsing failed and
what was expected there.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import NamedTuple

from ..errors import FilterSyntaxError
from ._nodes import (
    _ATTR_PATH_RE,
    _NAME_RE,
    _OPERATORS,
    And,
    AttrPath,
    Comparison,
    Filter,
    FilterValue,
    Not,
    Or,
    Present,
    ValuePath,
)

#: How deeply parentheses, ``not`` and brackets may nest.
MAX_DEPTH = 100

# One token after optional whitespace: punctuation, a string, a word, a lone quote (an
# unterminated string) or the end.
_TOKEN_RE = re.compile(
    r'[ \t\r\n]*(?:(?P<punct>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")'
    r'|(?P<word>[^ \t\r\n()\[\]"]+)|(?P<quote>")|\Z)',
    re.DOTALL,
)
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

#: Filters up to this length are parsed once and the result shared (filters are values).
_CACHED_LENGTH = 2048

_EXPECT_TERM = "an attribute path, '(' or 'not ('"
_EXPECT_OPERATOR = "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) or '['"
_EXPECT_VALUE = "a value (a JSON string, a number, true, false or null)"


class _Token(NamedTuple):
    kind: str  # "(", ")", "[", "]", "string", "word", "end"
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index, length = 0, len(text)
    match_token = _TOKEN_RE.match
    while True:
        match = match_token(text, index)
        assert match is not None  # every position starts one of the alternatives
        kind = match.lastgroup
        if kind is None:
            tokens.append(_Token("end", "", length))
            return tokens
        start = match.start(kind)
        if kind == "punct":
            tokens.append(_Token(match[kind], match[kind], start))
        elif kind == "quote":
            raise FilterSyntaxError(text, start, "a closing '\"' for this string")
        else:
            tokens.append(_Token(kind, match[kind], start))
        index = match.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # -- tokens -------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> _Token:
        tokens = self.tokens
        at = self.index + offset
        return tokens[at] if at < len(tokens) else tokens[-1]

    def take(self) -> _Token:
        token = self.peek()
        if token.kind != "end":
            self.index += 1
        return token

    def fail(self, token: _Token, expected: str) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, token.position, expected)

    def expect(self, kind: str, expected: str) -> _Token:
        token = self.take()
        if token.kind != kind:
            raise self.fail(token, expected)
        return token

    # -- grammar ------------------------------------------------------------------------------

    def filter(self, depth: int, in_brackets: bool) -> Filter:
        """``or`` has the lowest precedence: a filter is ``and``-terms joined by ``or``."""
        if depth > MAX_DEPTH:
            raise self.fail(self.peek(), f"at most {MAX_DEPTH} levels of nesting")
        terms = [self.conjunction(depth, in_brackets)]
        while self.is_keyword("or"):
            self.take()
            terms.append(self.conjunction(depth, in_brackets))
        return terms[0] if len(terms) == 1 else Or(terms)

    def conjunction(self, depth: int, in_brackets: bool) -> Filter:
        terms = [self.term(depth, in_brackets)]
        while self.is_keyword("and"):
            self.take()
            terms.append(self.term(depth, in_brackets))
        return terms[0] if len(terms) == 1 else And(terms)

    def is_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def term(self, depth: int, in_brackets: bool) -> Filter:
        token = self.peek()
        if token.kind == "(":
            self.take()
            inner = self.filter(depth + 1, in_brackets)
            self.expect(")", "')' or 'and'/'or'")
            return inner
        if token.kind == "word" and token.text.lower() == "not" and self.peek(1).kind == "(":
            self.take()
            self.take()
            inner = self.filter(depth + 1, in_brackets)
            self.expect(")", "')' or 'and'/'or'")
            return Not(inner)
        if token.kind != "word":
            raise self.fail(token, _EXPECT_TERM)
        path = self.attr_path()
        following = self.peek()
        if following.kind == "[":
            if in_brackets:
                raise self.fail(following, "an operator (value filters do not nest)")
            if path.sub is not None:
                raise self.fail(following, "an operator ('[' follows an attribute name)")
            self.take()
            inner = self.filter(depth + 1, in_brackets=True)
            self.expect("]", "']' or 'and'/'or'")
            return ValuePath(path, inner)
        operator = self.take()
        folded = operator.text.lower()
        if operator.kind != "word" or (folded != "pr" and folded not in _OPERATORS):
            raise self.fail(operator, _EXPECT_OPERATOR)
        if folded == "pr":
            return Present(path)
        return Comparison(path, folded, self.value())

    def attr_path(self) -> AttrPath:
        token = self.take()
        match = _ATTR_PATH_RE.fullmatch(token.text)
        if match is None:
            raise self.fail(token, "an attribute path ([urn:]name[.subAttribute])")
        return AttrPath(name=match["name"], sub=match["sub"], urn=match["urn"])

    def value(self) -> FilterValue:
        token = self.take()
        if token.kind == "string":
            try:
                decoded: str = json.loads(token.text)
            except ValueError as exc:
                where = token.position + getattr(exc, "pos", 0)
                raise FilterSyntaxError(
                    self.text, where, "a JSON string (valid escapes, no raw control characters)"
                ) from None
            return decoded
        if token.kind != "word":
            raise self.fail(token, _EXPECT_VALUE)
        folded = token.text.lower()
        if folded == "true":
            return True
        if folded == "false":
            return False
        if folded == "null":
            return None
        if _NUMBER_RE.fullmatch(token.text) is None:
            raise self.fail(token, _EXPECT_VALUE)
        try:
            if any(c in token.text for c in ".eE"):
                number = float(token.text)
                if not math.isfinite(number):
                    raise ValueError(token.text)
                return number
            return int(token.text)
        except ValueError:  # out of range for a float, or too many digits for an int
            raise self.fail(token, "a number in range") from None

    def end(self, expected: str) -> None:
        token = self.peek()
        if token.kind != "end":
            raise self.fail(token, expected)


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter (RFC 7644 §3.4.2.2) into a :class:`Filter`.

    Raises :class:`~scimsync.errors.FilterSyntaxError` (with ``position`` and
    ``expected``) for anything that is not a filter, and never any other exception.
    """
    if not isinstance(text, str):
        raise FilterSyntaxError(repr(text), 0, "a filter as a string")
    if len(text) <= _CACHED_LENGTH:
        return _parse_cached(text)
    return _parse(text)


def _parse(text: str) -> Filter:
    try:
        parser = _Parser(text)
        result = parser.filter(0, in_brackets=False)
        parser.end("'and', 'or' or the end of the filter")
    except (RecursionError, MemoryError):  # pragma: no cover - guarded by MAX_DEPTH
        raise FilterSyntaxError(text, 0, "a smaller filter") from None
    return result


# Servers see the same few filters again and again; a parsed filter is an immutable value.
_parse_cached = functools.lru_cache(maxsize=1024)(_parse)


def parse_path_parts(text: str) -> tuple[AttrPath, Filter | None, str | None]:
    """Parse a PATCH path (RFC 7644 §3.5.2 ``PATH``) into its three parts.

    ``attrPath``, ``valuePath`` or ``valuePath "." subAttr``: returns the attribute
    path, the value filter (or None) and the sub-attribute after the filter (or None).
    Raises :class:`~scimsync.errors.FilterSyntaxError`.
    """
    if not isinstance(text, str):
        raise FilterSyntaxError(repr(text), 0, "a path as a string")
    parser = _Parser(text)
    if parser.peek().kind != "word":
        raise parser.fail(parser.peek(), "an attribute path")
    path = parser.attr_path()
    if parser.peek().kind != "[":
        parser.end("'[' or the end of the path")
        return path, None, None
    bracket = parser.take()
    if path.sub is not None:
        raise parser.fail(bracket, "the end of the path ('[' follows an attribute name)")
    value_filter = parser.filter(1, in_brackets=True)
    parser.expect("]", "']' or 'and'/'or'")
    sub: str | None = None
    token = parser.peek()
    if token.kind == "word":
        if not token.text.startswith(".") or _NAME_RE.fullmatch(token.text[1:]) is None:
            raise parser.fail(token, "'.' and a sub-attribute name, or the end of the path")
        sub = token.text[1:]
        parser.take()
    parser.end("the end of the path")
    return path, value_filter, sub
