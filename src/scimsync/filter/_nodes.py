"""The filter AST: immutable nodes, their canonical text, and the builder.

Every node is a frozen attrs class compared by value; ``str(node)`` is canonical SCIM
text that :func:`~scimsync.filter.parse_filter` reads back to an equal node. String
values are written as JSON string literals, so no value can change the structure of
the filter that carries it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeAlias

import attrs

from ..errors import FilterSyntaxError
from ..schema import CORE_SCHEMAS, SchemaTable
from . import _eval

__all__ = [
    "And",
    "AttrPath",
    "AttrRef",
    "COMPARISON_OPERATORS",
    "Comparison",
    "Filter",
    "FilterValue",
    "Not",
    "Or",
    "Present",
    "ValuePath",
    "and_",
    "attr",
    "format_value",
    "not_",
    "or_",
]

#: The comparison operators of RFC 7644 §3.4.2.2 (``pr`` is :class:`Present`).
COMPARISON_OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
_OPERATORS = frozenset(COMPARISON_OPERATORS)

#: A value a comparison can carry: a JSON string, number, boolean or null.
FilterValue: TypeAlias = str | int | float | bool | None

_NAME = r"\$?[A-Za-z][A-Za-z0-9_-]*"
_NAME_RE = re.compile(_NAME)
# RFC 8141 NSS characters, without those that mean something in a filter.
_URN_RE = re.compile(r"[uU][rR][nN](?::[A-Za-z0-9._%+~=-]+)+")
_ATTR_PATH_RE = re.compile(
    rf"(?:(?P<urn>[uU][rR][nN](?::[A-Za-z0-9._%+~=-]+)+):)?(?P<name>{_NAME})(?:\.(?P<sub>{_NAME}))?"
)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _typed(value: object) -> tuple[type, object]:
    # True == 1 in Python; a filter comparing with true is not one comparing with 1.
    return (type(value), value)


def format_value(value: FilterValue) -> str:
    """Write a comparison value as SCIM filter text: a JSON literal.

    Strings become JSON string literals: quotes, backslashes and control characters are
    escaped (and lone surrogates, which no transport can encode), so whatever a string
    holds it stays one value.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        text = json.dumps(value, ensure_ascii=False)
        if _SURROGATE_RE.search(text):
            text = _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
        return text
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return repr(value)
    raise TypeError(f"not a filter value: {value!r}")  # pragma: no cover - checked on creation


def _check_value(value: object) -> FilterValue:
    if value is None or type(value) in (str, bool, int):
        return value  # type: ignore[return-value]
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError(f"a filter value must be a finite number, got {value!r}")
        return value
    if isinstance(value, datetime):
        return _format_datetime(value)
    if isinstance(value, (str, int, float)):  # subclasses (str enums, ...) as their base value
        base = str if isinstance(value, str) else (int if isinstance(value, int) else float)
        return _check_value(base(value))
    raise TypeError(
        f"a filter value is a str, int, float, bool, datetime or None, got {type(value).__name__}"
    )


def _lower(text: str) -> str:
    return text.lower()


def _format_datetime(value: datetime) -> str:
    if value.tzinfo is not None and value.utcoffset() == timezone.utc.utcoffset(None):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


# -- attribute paths --------------------------------------------------------------------------


def _check_name(text: str, what: str) -> None:
    if not isinstance(text, str) or _NAME_RE.fullmatch(text) is None:
        shown = text if isinstance(text, str) else repr(text)
        raise FilterSyntaxError(shown, 0, what)


def _check_urn(text: str | None) -> None:
    if text is not None and (not isinstance(text, str) or _URN_RE.fullmatch(text) is None):
        raise FilterSyntaxError(str(text), 0, "a schema URN (urn:...)")


@attrs.frozen(cache_hash=True, repr=False)
class AttrPath:
    """An attribute path (RFC 7644 §3.4.2.2 ``attrPath``): ``[urn:]name[.sub]``.

    ``urn`` is the schema URN prefix when the path is qualified
    (``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value``), ``name``
    the attribute and ``sub`` the sub-attribute. Names are kept as written; SCIM compares
    them case-insensitively.
    """

    name: str
    sub: str | None = None
    urn: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_name(self.name, "an attribute name")
        if self.sub is not None:
            _check_name(self.sub, "a sub-attribute name")
        _check_urn(self.urn)

    @classmethod
    def parse(cls, text: str) -> AttrPath:
        """Read ``text`` as an attribute path; raises :class:`FilterSyntaxError`."""
        match = _ATTR_PATH_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise FilterSyntaxError(str(text), 0, "an attribute path ([urn:]name[.subAttribute])")
        return cls(name=match["name"], sub=match["sub"], urn=match["urn"])

    def __str__(self) -> str:
        text = f"{self.urn}:{self.name}" if self.urn else self.name
        return f"{text}.{self.sub}" if self.sub else text

    def __repr__(self) -> str:
        return f"AttrPath({str(self)!r})"


def _as_path(path: AttrPath | str) -> AttrPath:
    return path if isinstance(path, AttrPath) else AttrPath.parse(path)


# -- filters ----------------------------------------------------------------------------------

Predicate: TypeAlias = Callable[[Any], bool]


@attrs.frozen(cache_hash=True, repr=False)
class Filter:
    """A SCIM filter (RFC 7644 §3.4.2.2): the base class of every node.

    ``str(f)`` is canonical SCIM text and ``parse_filter(str(f)) == f``. Combine filters
    with ``f & g``, ``f | g`` and ``~f`` (or :func:`and_`, :func:`or_`, :func:`not_`).
    """

    _precedence: ClassVar[int] = 3  # 1 or, 2 and, 3 everything that needs no parentheses

    def matches(
        self,
        resource: Any,
        *,
        schema: SchemaTable = CORE_SCHEMAS,
        resource_type: str | None = None,
    ) -> bool:
        """True when ``resource`` satisfies this filter.

        ``resource`` is a scimsync model (``User``, ``Group``) or a SCIM JSON object (a
        ``dict`` as :func:`scimsync.to_scim` makes it; keys in any case). The resource
        type comes from the model class, or from the object's ``schemas`` (or
        ``meta.resourceType``); pass ``resource_type`` to say it. String comparisons
        honour ``caseExact`` from ``schema``; dateTime, number and boolean attributes
        compare as such; a multi-valued attribute matches when any of its values does.

        The filter is compiled once per ``(filter, resource_type, schema)`` and cached.
        """
        if resource_type is None:
            resource_type = _eval.resource_type_of(resource, schema)
        return _compiled(self, resource_type, schema)(resource)

    def compile(
        self, *, schema: SchemaTable = CORE_SCHEMAS, resource_type: str | None = None
    ) -> Callable[[Any], bool]:
        """Return a predicate testing resources of ``resource_type`` against this filter.

        The fastest way to test many resources of one type. With ``resource_type`` left
        out, attributes have no schema characteristics (strings compare
        case-insensitively, types follow the filter's values).
        """
        return _compiled(self, resource_type, schema)

    def attribute_paths(self) -> tuple[AttrPath, ...]:
        """Every attribute path this filter reads, once each, in the order written.

        Paths inside a value filter come as sub-attributes of its attribute:
        ``emails[type eq "work"] and userName pr`` reads ``emails.type`` and
        ``userName``. Inside a filter that is itself a value filter (the
        ``type eq "work"`` of a PATCH path), they are the sub-attributes' names.
        """
        return tuple(dict.fromkeys(self._paths()))

    def _paths(self) -> Iterable[AttrPath]:
        raise NotImplementedError  # pragma: no cover - every node overrides it

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        raise NotImplementedError  # pragma: no cover - every node overrides it

    def __and__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        return and_(self, other)

    def __or__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        return or_(self, other)

    def __invert__(self) -> Filter:
        return Not(self)

    def __repr__(self) -> str:
        return f"parse_filter({str(self)!r})"


@functools.lru_cache(maxsize=1024)
def _compiled(node: Filter, resource_type: str | None, schema: SchemaTable) -> Predicate:
    return node._predicate(_eval.Context.root(schema, resource_type))


@functools.lru_cache(maxsize=1024)
def compile_value_filter(
    node: Filter, path: AttrPath, resource_type: str | None, schema: SchemaTable
) -> Predicate:
    """The predicate testing one value of the attribute ``path`` against ``node``.

    What ``path[node]`` applies to each value; PATCH uses it to pick the values a
    value filter selects.
    """
    return node._predicate(_eval.Context.root(schema, resource_type).within(path))


@attrs.frozen(cache_hash=True, repr=False)
class Comparison(Filter):
    """``path op value``: one of the operators of :data:`COMPARISON_OPERATORS`."""

    path: AttrPath
    op: str = attrs.field(converter=_lower)
    value: FilterValue = attrs.field(converter=_check_value, eq=_typed)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.path, AttrPath):
            raise TypeError(f"path must be an AttrPath, got {type(self.path).__name__}")
        if self.op not in _OPERATORS:
            raise ValueError(f"unknown comparison operator {self.op!r}")

    def __str__(self) -> str:
        return f"{self.path} {self.op} {format_value(self.value)}"

    def _paths(self) -> Iterable[AttrPath]:
        return (self.path,)

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        return _eval.comparison(ctx, self.path, self.op, self.value)


@attrs.frozen(cache_hash=True, repr=False)
class Present(Filter):
    """``path pr``: the attribute has a non-empty value."""

    path: AttrPath

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.path, AttrPath):
            raise TypeError(f"path must be an AttrPath, got {type(self.path).__name__}")

    def __str__(self) -> str:
        return f"{self.path} pr"

    def _paths(self) -> Iterable[AttrPath]:
        return (self.path,)

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        return _eval.present(ctx, self.path)


def _contains_value_path(node: Filter) -> bool:
    if isinstance(node, ValuePath):
        return True
    if isinstance(node, Not):
        return _contains_value_path(node.filter)
    if isinstance(node, (And, Or)):
        return any(_contains_value_path(child) for child in node.filters)
    return False


@attrs.frozen(cache_hash=True, repr=False)
class ValuePath(Filter):
    """``path[filter]``: some value of a multi-valued attribute satisfies ``filter``.

    Paths inside ``filter`` name sub-attributes of ``path`` (``emails[type eq "work"]``);
    value filters do not nest.
    """

    path: AttrPath
    filter: Filter

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.path, AttrPath):
            raise TypeError(f"path must be an AttrPath, got {type(self.path).__name__}")
        if not isinstance(self.filter, Filter):
            raise TypeError(f"filter must be a Filter, got {type(self.filter).__name__}")
        if self.path.sub is not None:
            raise ValueError(f"a value filter applies to an attribute, not {self.path}")
        if _contains_value_path(self.filter):
            raise ValueError("value filters do not nest")

    def __str__(self) -> str:
        return f"{self.path}[{self.filter}]"

    def _paths(self) -> Iterable[AttrPath]:
        outer = self.path
        return (AttrPath(outer.name, sub=p.name, urn=outer.urn) for p in self.filter._paths())

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        inner = self.filter._predicate(ctx.within(self.path))
        return _eval.value_path(ctx, self.path, inner)


@attrs.frozen(cache_hash=True, repr=False)
class Not(Filter):
    """``not (filter)``."""

    filter: Filter

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.filter, Filter):
            raise TypeError(f"filter must be a Filter, got {type(self.filter).__name__}")

    def __str__(self) -> str:
        return f"not ({self.filter})"

    def _paths(self) -> Iterable[AttrPath]:
        return self.filter._paths()

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        inner = self.filter._predicate(ctx)
        return lambda resource: not inner(resource)


def _flatten(kind: type[And | Or], filters: Iterable[Filter]) -> tuple[Filter, ...]:
    out: list[Filter] = []
    for child in filters:
        if not isinstance(child, Filter):
            raise TypeError(f"expected a Filter, got {type(child).__name__}")
        if type(child) is kind:
            out.extend(child.filters)
        else:
            out.append(child)
    return tuple(out)


def _flatten_and(filters: Iterable[Filter]) -> tuple[Filter, ...]:
    return _flatten(And, filters)


def _flatten_or(filters: Iterable[Filter]) -> tuple[Filter, ...]:
    return _flatten(Or, filters)


def _at_least_two(instance: object, attribute: attrs.Attribute[Any], value: tuple[Any]) -> None:
    if len(value) < 2:
        raise ValueError(f"{type(instance).__name__} needs at least two filters")


@attrs.frozen(cache_hash=True, repr=False)
class And(Filter):
    """``a and b and ...``; nested ``And`` nodes are flattened (``and`` is associative)."""

    _precedence: ClassVar[int] = 2

    filters: tuple[Filter, ...] = attrs.field(converter=_flatten_and, validator=_at_least_two)

    def __str__(self) -> str:
        return " and ".join(_wrap(child, 2) for child in self.filters)

    def _paths(self) -> Iterable[AttrPath]:
        return (path for child in self.filters for path in child._paths())

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        return _eval.all_of([child._predicate(ctx) for child in self.filters])


@attrs.frozen(cache_hash=True, repr=False)
class Or(Filter):
    """``a or b or ...``; nested ``Or`` nodes are flattened."""

    _precedence: ClassVar[int] = 1

    filters: tuple[Filter, ...] = attrs.field(converter=_flatten_or, validator=_at_least_two)

    def __str__(self) -> str:
        return " or ".join(_wrap(child, 1) for child in self.filters)

    def _paths(self) -> Iterable[AttrPath]:
        return (path for child in self.filters for path in child._paths())

    def _predicate(self, ctx: _eval.Context) -> Predicate:
        return _eval.any_of([child._predicate(ctx) for child in self.filters])


def _wrap(child: Filter, precedence: int) -> str:
    text = str(child)
    return f"({text})" if child._precedence < precedence else text


# -- the builder ------------------------------------------------------------------------------


def and_(*filters: Filter) -> Filter:
    """All of ``filters``: ``and_(a, b)`` is ``a and b``; one filter is returned as is."""
    if not filters:
        raise ValueError("and_() needs at least one filter")
    return filters[0] if len(filters) == 1 and isinstance(filters[0], Filter) else And(filters)


def or_(*filters: Filter) -> Filter:
    """Any of ``filters``: ``or_(a, b)`` is ``a or b``; one filter is returned as is."""
    if not filters:
        raise ValueError("or_() needs at least one filter")
    return filters[0] if len(filters) == 1 and isinstance(filters[0], Filter) else Or(filters)


def not_(f: Filter) -> Filter:
    """The negation of ``f``: ``not (f)``."""
    return Not(f)


@attrs.frozen
class AttrRef:
    """An attribute to build filters on; made by :func:`attr`.

    Each method returns a :class:`Filter`. Values are written as JSON literals, so
    ``attr("userName").eq(untrusted)`` is one comparison whatever ``untrusted`` holds.
    """

    path: AttrPath

    def eq(self, value: FilterValue | datetime) -> Comparison:
        """``path eq value``: equal (strings per the attribute's ``caseExact``)."""
        return Comparison(self.path, "eq", value)

    def ne(self, value: FilterValue | datetime) -> Comparison:
        """``path ne value``: not equal (true when the attribute has no value)."""
        return Comparison(self.path, "ne", value)

    def co(self, value: FilterValue | datetime) -> Comparison:
        """``path co value``: the string contains ``value``."""
        return Comparison(self.path, "co", value)

    def sw(self, value: FilterValue | datetime) -> Comparison:
        """``path sw value``: the string starts with ``value``."""
        return Comparison(self.path, "sw", value)

    def ew(self, value: FilterValue | datetime) -> Comparison:
        """``path ew value``: the string ends with ``value``."""
        return Comparison(self.path, "ew", value)

    def gt(self, value: FilterValue | datetime) -> Comparison:
        """``path gt value``: greater than (strings, numbers, dateTimes)."""
        return Comparison(self.path, "gt", value)

    def ge(self, value: FilterValue | datetime) -> Comparison:
        """``path ge value``: greater than or equal."""
        return Comparison(self.path, "ge", value)

    def lt(self, value: FilterValue | datetime) -> Comparison:
        """``path lt value``: less than."""
        return Comparison(self.path, "lt", value)

    def le(self, value: FilterValue | datetime) -> Comparison:
        """``path le value``: less than or equal."""
        return Comparison(self.path, "le", value)

    def pr(self) -> Present:
        """``path pr``: the attribute has a non-empty value."""
        return Present(self.path)

    def where(self, value_filter: Filter) -> ValuePath:
        """``path[value_filter]``: some value of this multi-valued attribute matches.

        ``attr("emails").where(attr("type").eq("work"))`` is ``emails[type eq "work"]``.
        """
        return ValuePath(self.path, value_filter)

    def one_of(self, values: Iterable[FilterValue | datetime]) -> Filter:
        """``path eq v1 or path eq v2 ...``: equal to any of ``values`` (at least one)."""
        comparisons = [self.eq(value) for value in values]
        if not comparisons:
            raise ValueError("one_of() needs at least one value")
        return or_(*comparisons)

    def __str__(self) -> str:
        return str(self.path)


def attr(path: str | AttrPath) -> AttrRef:
    """Start a filter on the attribute ``path``: ``attr("userName").eq("bjensen")``.

    ``path`` is ``name``, ``name.subAttribute`` or URN-qualified
    (``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"``).
    Raises :class:`~scimsync.errors.FilterSyntaxError` for anything else.
    """
    return AttrRef(_as_path(path))
