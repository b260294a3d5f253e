"""Rules: how one value of a desired resource is computed from a source record.

A rule is called with a :class:`~scimsync.sources.Record` and returns a value, or None
for "no value": the attribute is then unset, and a value the target holds there is
cleared (unless the rule is :func:`keep_when_empty`). Empty strings count as no
value, as CSV writes a missing value. Rules say which source fields they read (for
the unread-field report and :meth:`Mapping.check`) and what kind of value they
produce (for the type check).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigurationError
from ..schema import split_urn
from ..sources._records import Record

__all__ = [
    "Rule",
    "RuleLike",
    "boolean",
    "coalesce",
    "const",
    "default",
    "field",
    "join",
    "keep_when_empty",
    "key",
    "lower",
    "multi_line",
    "ref",
    "split",
    "strip",
    "template",
    "upper",
    "to_rule",
]


class InvalidRecordValueError(Exception):
    """A value of a record that a rule cannot use (reported as ``INVALID_VALUE``)."""


class Rule:
    """Computes one value from a record. Build rules with the functions of this module."""

    __slots__ = ()

    #: The kind of value produced, for the type check: "string", "boolean",
    #: "number", "list" or "any" (unknown until run).
    produces: str = "any"

    def __call__(self, record: Record) -> Any:
        raise NotImplementedError

    @property
    def reads(self) -> frozenset[str]:
        """The source fields this rule reads (callables cannot tell: they read none here)."""
        return frozenset()

    @property
    def opaque(self) -> bool:
        """True when the rule runs a callable, whose reads and result are unknown."""
        return False

    @property
    def needs(self) -> tuple[frozenset[str], ...]:
        """The fields the rule reads, each as the names that would do (a dotted name can
        be a flat field or a path into a nested one)."""
        return ()

    @property
    def clears(self) -> bool:
        """True when no value means "clear what the target holds" (the attribute is
        managed); False for :func:`keep_when_empty` and for the constant None."""
        return True


RuleLike = Rule | str | Callable[[Record], Any] | bool | int | float | None
"""What a mapping entry may hold: a rule, a field name (a copy), a callable, a constant."""


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


# -- leaves -----------------------------------------------------------------------------


class _Field(Rule):
    __slots__ = ("element", "name", "steps")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a field name must be a non-empty string, got {name!r}")
        self.name = name
        self.element: _ElementLookup | None = None
        self.steps: tuple[str, ...] | None = None
        if "[" in name:
            self.element = _ElementLookup(name)
        else:
            self.steps = _field_steps(name)

    def __repr__(self) -> str:
        return f"field({self.name!r})"

    def __call__(self, record: Record) -> Any:
        attributes = record.attributes
        value = attributes.get(self.name)
        if value is None:
            if self.steps is not None:
                value = _walk(attributes, self.steps)
            elif self.element is not None:
                value = self.element(attributes)
        return None if value == "" else value

    @property
    def reads(self) -> frozenset[str]:
        # A flat field may hold dots or colons too: both readings count as read.
        if self.element is not None:
            return frozenset({self.name, self.element.top})
        return frozenset({self.name} if self.steps is None else {self.name, self.steps[0]})

    @property
    def needs(self) -> tuple[frozenset[str], ...]:
        return (self.reads,)


class _ElementLookup:
    """Reads ``emails[type eq "work"].value`` out of a record holding SCIM JSON."""

    __slots__ = ("attribute", "matches", "sub", "top", "urn")

    def __init__(self, name: str) -> None:
        from ..errors import InvalidPathError
        from ..patch import parse_path

        try:
            path = parse_path(name)
        except InvalidPathError as exc:
            raise ConfigurationError(f"field {name!r} is not an attribute path: {exc}") from None
        if path.value_filter is None or path.attribute.sub is not None:
            raise ConfigurationError(f"field {name!r} is not an attribute path")
        self.urn = path.attribute.urn
        self.attribute = path.attribute.name
        self.sub = path.sub_attribute
        self.top = self.urn if self.urn is not None else self.attribute
        self.matches = path.value_filter.matches

    def __call__(self, attributes: Any) -> Any:
        container = _walk(attributes, (self.urn,)) if self.urn is not None else attributes
        elements = _walk(container, (self.attribute,))
        if not isinstance(elements, list):
            return None
        found = [e for e in elements if isinstance(e, dict) and self.matches(e)]
        if not found:
            return None
        # Several elements match: the primary one speaks for them, else the first.
        chosen = next((e for e in found if e.get("primary") is True), found[0])
        return chosen if self.sub is None else _walk(chosen, (self.sub,))


def _field_steps(name: str) -> tuple[str, ...] | None:
    """Nested lookups for a dotted or URN-qualified name, for sources holding SCIM JSON."""
    urn, rest = split_urn(name)
    if urn is not None:
        return (urn, *rest.split(".")) if rest else None
    if "." in name:
        return tuple(name.split("."))
    return None


def _walk(attributes: Any, steps: tuple[str, ...]) -> Any:
    node = attributes
    for step in steps:
        if not isinstance(node, dict):
            return None
        found = node.get(step)
        if found is None:
            # SCIM names compare case-insensitively (RFC 7643 §2.1).
            folded = step.lower()
            found = next((v for k, v in node.items() if k.lower() == folded), None)
        node = found
    return node


class _Const(Rule):
    __slots__ = ("produces", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.produces = _kind_of(value)

    def __repr__(self) -> str:
        return f"const({self.value!r})"

    def __call__(self, record: Record) -> Any:
        return self.value

    @property
    def clears(self) -> bool:
        # `"externalId": None` says "leave it out", not "clear it".
        return self.value is not None


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    return "any"


class _Key(Rule):
    __slots__ = ()
    produces = "string"

    def __repr__(self) -> str:
        return "key()"

    def __call__(self, record: Record) -> Any:
        return record.key


class _Call(Rule):
    __slots__ = ("function",)

    def __init__(self, function: Callable[[Record], Any]) -> None:
        self.function = function

    def __repr__(self) -> str:
        return f"call({getattr(self.function, '__qualname__', self.function)!r})"

    def __call__(self, record: Record) -> Any:
        return self.function(record)

    @property
    def opaque(self) -> bool:
        return True


# -- transforms ---------------------------------------------------------------------------


class _Composite(Rule):
    __slots__ = ("parts",)

    parts: tuple[Rule, ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset().union(*(part.reads for part in self.parts))

    @property
    def opaque(self) -> bool:
        return any(part.opaque for part in self.parts)

    @property
    def needs(self) -> tuple[frozenset[str], ...]:
        return tuple(need for part in self.parts for need in part.needs)

    @property
    def clears(self) -> bool:
        return all(part.clears for part in self.parts)


class _Text(_Composite):
    """lower/upper/strip: a string method on a string, or on each string of a list."""

    __slots__ = ("method",)
    produces = "string"

    def __init__(self, method: str, part: Rule) -> None:
        self.method = method
        self.parts = (part,)

    def __repr__(self) -> str:
        return f"{self.method}({self.parts[0]!r})"

    def __call__(self, record: Record) -> Any:
        value = self.parts[0](record)
        if value is None:
            return None
        if isinstance(value, list):
            return [self._apply(item) for item in value]
        return self._apply(value)

    def _apply(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidRecordValueError(f"{self.method}() needs text, got {value!r}")
        result = getattr(value, self.method)()
        return None if result == "" else result


class _Join(_Composite):
    __slots__ = ("separator",)
    produces = "string"

    def __init__(self, separator: str, parts: tuple[Rule, ...]) -> None:
        self.separator = separator
        self.parts = parts

    def __repr__(self) -> str:
        return f"join({self.separator!r}, {', '.join(map(repr, self.parts))})"

    def __call__(self, record: Record) -> Any:
        pieces: list[str] = []
        for part in self.parts:
            value = part(record)
            pieces.extend(
                item if isinstance(item, str) else str(item)
                for item in (value if isinstance(value, list) else (value,))
                if not _is_empty(item)
            )
        return self.separator.join(pieces) if pieces else None


class _Split(_Composite):
    __slots__ = ("separator",)
    produces = "list"

    def __init__(self, part: Rule, separator: str) -> None:
        self.separator = separator
        self.parts = (part,)

    def __repr__(self) -> str:
        return f"split({self.parts[0]!r}, {self.separator!r})"

    def __call__(self, record: Record) -> Any:
        value = self.parts[0](record)
        if value is None:
            return None
        if isinstance(value, list):
            return value
        if not isinstance(value, str):
            raise InvalidRecordValueError(f"split() needs text, got {value!r}")
        return [p for p in (piece.strip() for piece in value.split(self.separator)) if p]


class _Coalesce(_Composite):
    __slots__ = ("label", "produces")

    def __init__(self, parts: tuple[Rule, ...], label: str = "coalesce") -> None:
        self.parts = parts
        self.label = label
        kinds = {part.produces for part in parts}
        self.produces = kinds.pop() if len(kinds) == 1 else "any"

    def __repr__(self) -> str:
        return f"{self.label}({', '.join(map(repr, self.parts))})"

    def __call__(self, record: Record) -> Any:
        for part in self.parts:
            value = part(record)
            if not _is_empty(value):
                return value
        return None


class _Template(_Composite):
    __slots__ = ("pieces", "text")
    produces = "string"

    def __init__(self, text: str) -> None:
        self.text = text
        pieces: list[tuple[str, _Field | None, str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigurationError(f"template {text!r}: {exc}") from exc
        for literal, name, spec, conversion in parsed:
            if name is not None and not name:
                raise ConfigurationError(f"template {text!r}: every {{}} needs a field name")
            if name is not None and conversion not in (None, "s", "r"):
                raise ConfigurationError(f"template {text!r}: unknown conversion !{conversion}")
            pieces.append((literal, _Field(name) if name else None, spec or "", conversion))
        self.pieces = tuple(pieces)
        self.parts = tuple(f for _, f, _, _ in pieces if f is not None)

    def __repr__(self) -> str:
        return f"template({self.text!r})"

    def __call__(self, record: Record) -> Any:
        out: list[str] = []
        for literal, part, spec, conversion in self.pieces:
            out.append(literal)
            if part is None:
                continue
            value = part(record)
            if _is_empty(value):
                return None
            if conversion == "r":
                value = repr(value)
            try:
                out.append(format(value, spec))
            except (ValueError, TypeError) as exc:
                raise InvalidRecordValueError(f"{self!r}: {exc}") from None
        return "".join(out)


_TRUE_WORDS = ("true", "yes", "1")
_FALSE_WORDS = ("false", "no", "0")


class _Boolean(_Composite):
    __slots__ = ("false", "true")
    produces = "boolean"

    def __init__(self, part: Rule, true: Iterable[str], false: Iterable[str]) -> None:
        self.parts = (part,)
        self.true = frozenset(word.strip().lower() for word in true)
        self.false = frozenset(word.strip().lower() for word in false)
        if self.true & self.false:
            raise ConfigurationError(f"boolean(): {sorted(self.true & self.false)} are both")

    def __repr__(self) -> str:
        return f"boolean({self.parts[0]!r}, true={sorted(self.true)}, false={sorted(self.false)})"

    def __call__(self, record: Record) -> Any:
        value = self.parts[0](record)
        if value is None or isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in self.true:
            return True
        if word in self.false:
            return False
        raise InvalidRecordValueError(
            f"{value!r} is neither true ({', '.join(sorted(self.true))}) "
            f"nor false ({', '.join(sorted(self.false))})"
        )


class _KeepWhenEmpty(_Composite):
    __slots__ = ("produces",)

    def __init__(self, part: Rule) -> None:
        self.parts = (part,)
        self.produces = part.produces

    def __repr__(self) -> str:
        return f"keep_when_empty({self.parts[0]!r})"

    def __call__(self, record: Record) -> Any:
        return self.parts[0](record)

    @property
    def clears(self) -> bool:
        return False


class _MultiLine(_Composite):
    """A rule whose text may hold tabs and line breaks: see :func:`multi_line`."""

    __slots__ = ("produces",)

    def __init__(self, part: Rule) -> None:
        self.parts = (part,)
        self.produces = part.produces

    def __repr__(self) -> str:
        return f"multi_line({self.parts[0]!r})"

    def __call__(self, record: Record) -> Any:
        return self.parts[0](record)


class _Reference(_Composite):
    """A rule whose value is the source key of another user: see :func:`ref`."""

    __slots__ = ()
    produces = "string"

    def __init__(self, part: Rule) -> None:
        self.parts = (part,)

    def __repr__(self) -> str:
        return f"ref({self.parts[0]!r})"

    def __call__(self, record: Record) -> Any:
        value = self.parts[0](record)
        if value is None:
            return None
        if isinstance(value, (list, dict, bool)):
            raise InvalidRecordValueError(f"ref() needs one source key, got {value!r}")
        text = str(value).strip()
        return text or None


def reference_of(rule: Rule) -> _Reference | None:
    """The :func:`ref` a mapping entry holds (maybe inside :func:`keep_when_empty`)."""
    if isinstance(rule, _KeepWhenEmpty):
        rule = rule.parts[0]
    return rule if isinstance(rule, _Reference) else None


def nested_reference(rule: Rule) -> bool:
    """True when a :func:`ref` sits inside another rule, where it would mean nothing."""
    top = reference_of(rule)
    pending = list(getattr(top if top is not None else rule, "parts", ()))
    while pending:
        part = pending.pop()
        if isinstance(part, _Reference):
            return True
        pending.extend(getattr(part, "parts", ()))
    return False


def allows_line_breaks(rule: Rule) -> bool:
    """True when the rule is :func:`multi_line` (maybe inside :func:`keep_when_empty`, or
    holding it)."""
    while isinstance(rule, (_KeepWhenEmpty, _MultiLine)):
        if isinstance(rule, _MultiLine):
            return True
        rule = rule.parts[0]
    return False


#: Control characters no value may hold: C0 (tab, line feed, carriage return
#: included), DEL and C1. NUL and the like are mistakes or attacks wherever they come
#: from, and a target stores or shows them as it pleases.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
#: The same, less tab, line feed and carriage return: for multi-line text.
CONTROL_CHARACTER_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# -- the public builders ------------------------------------------------------------------


def to_rule(value: RuleLike) -> Rule:
    """Turn what a mapping entry holds into a rule.

    A :class:`Rule` stays itself; a string is a copy of that source field; a callable
    is called with the record; anything else (``True``, ``42``, ``None``) is a constant.
    """
    if isinstance(value, Rule):
        return value
    if isinstance(value, str):
        return _Field(value)
    if callable(value):
        return _Call(value)
    return _Const(value)


def field(name: str) -> Rule:
    """Copy source field ``name``. A plain string in a mapping means the same.

    For sources that hold SCIM JSON (:class:`~scimsync.sources.ScimSource`), a name
    that is no field of the record is read as a path into it: ``"name.givenName"``,
    URN-qualified names, and filtered ones (``'emails[type eq "work"].value'``: when
    several elements match, the primary one, else the first).
    """
    return _Field(name)


def const(value: Any) -> Rule:
    """Always ``value``, whatever the record (also for strings, which would be field names)."""
    return _Const(value)


def key() -> Rule:
    """The record's source key."""
    return _Key()


def lower(value: RuleLike) -> Rule:
    """Lower-case text (each item of a list)."""
    return _Text("lower", to_rule(value))


def upper(value: RuleLike) -> Rule:
    """Upper-case text (each item of a list)."""
    return _Text("upper", to_rule(value))


def strip(value: RuleLike) -> Rule:
    """Text without surrounding whitespace (each item of a list); blank becomes no value."""
    return _Text("strip", to_rule(value))


def join(separator: str, *values: RuleLike) -> Rule:
    """The non-empty values (and items of list values) joined by ``separator``."""
    if not values:
        raise ConfigurationError("join() needs at least one value")
    return _Join(separator, tuple(map(to_rule, values)))


def split(value: RuleLike, separator: str = ",") -> Rule:
    """Text split at ``separator`` into a list, items stripped and blanks dropped."""
    if not separator:
        raise ConfigurationError("split() needs a separator")
    return _Split(to_rule(value), separator)


def coalesce(*values: RuleLike) -> Rule:
    """The first of ``values`` that is not empty."""
    if not values:
        raise ConfigurationError("coalesce() needs at least one value")
    return _Coalesce(tuple(map(to_rule, values)))


def default(value: RuleLike, fallback: Any) -> Rule:
    """``value``, or the constant ``fallback`` when it is empty."""
    fallback_rule = fallback if isinstance(fallback, Rule) else _Const(fallback)
    return _Coalesce((to_rule(value), fallback_rule), label="default")


def template(text: str) -> Rule:
    """Text with ``{field}`` replaced by source fields (``str.format`` syntax).

    ``template("{first} {last}")``. When any field it names is empty the result is
    empty too (wrap it in :func:`coalesce` to fall back on something else).
    """
    return _Template(text)


def boolean(
    value: RuleLike, *, true: Iterable[str] = _TRUE_WORDS, false: Iterable[str] = _FALSE_WORDS
) -> Rule:
    """A boolean from text: ``boolean("status", true={"active"}, false={"left", "leave"})``.

    Words compare case-insensitively. A word in neither set is an ``INVALID_VALUE``
    issue for the record, never a guess.
    """
    return _Boolean(to_rule(value), true, false)


def ref(value: RuleLike) -> Rule:
    """The *source key* of another user, whose target id the attribute holds.

    ``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value":
    ref("manager_id")``: HR names a manager by employee key, the target by its own
    id. The engine writes the id of the account that key is linked to, or, when the
    same sync creates the manager, a placeholder resolved once it exists (the
    manager is created first). A key that is no user of the source is an
    ``UNKNOWN_REFERENCE`` issue, and the target's value is left as it is; an empty
    key clears it.
    """
    return _Reference(to_rule(value))


def multi_line(value: RuleLike) -> Rule:
    """``value``, allowed to hold tabs, line feeds and carriage returns.

    A value holding a control character is an ``INVALID_VALUE`` issue for its record,
    which is then not written: a NUL byte or an escape sequence in an HR export is
    never sent. Tab, line feed and carriage return are allowed only in multi-line
    text: ``addresses.formatted`` (RFC 7643 §4.1.2), and the attributes whose rule
    is wrapped in ``multi_line`` (a free-text note in a custom extension, say).
    Other control characters are refused everywhere.
    """
    return _MultiLine(to_rule(value))


def keep_when_empty(value: RuleLike) -> Rule:
    """``value``; but when it is empty, what the target holds stays.

    Every mapped attribute is *managed*: when the source has no value for it, the
    target's value is removed (HR cleared a title). Wrap the rules of attributes the
    target fills in itself (a ``displayName`` it composes from the name, say), so a
    sync never fights the target over them.
    """
    return _KeepWhenEmpty(to_rule(value))
