"""A :class:`~scimsync.mapping.Mapping` written in TOML, or named as a Python object.

In a ``[mapping.users]`` table each key is a target path and each value a rule:

- a string copies that source field: ``title = "job_title"``;
- ``true``, ``false`` and numbers are constants: ``active = true``;
- a table with one operator builds a rule; operands are rules again (a string is a
  field, a table nests):

  ============================================  ==========================================
  ``{ field = "email" }``                       copy a field (the same as ``"email"``)
  ``{ const = "Staff" }``                       a constant (strings, numbers, arrays too)
  ``{ key = true }``                            the record's key
  ``{ omit = true }``                           no value (``externalId`` left out)
  ``{ lower = "email" }``                       also ``upper``, ``strip``
  ``{ template = "{first} {last}" }``           fields put into text
  ``{ join = ["first", "last"], sep = " " }``   non-empty values joined
  ``{ split = "groups", sep = ";" }``           text split into a list
  ``{ coalesce = ["nickname", "first"] }``      the first non-empty value
  ``{ default = "title", fallback = "Staff" }`` a field, or a constant when empty
  ``{ boolean = "status", true = ["active"],    words read as booleans
  false = ["left"] }``
  ``{ ref = "manager_id" }``                    another user's source key, written as
                                                that user's target id (the manager)
  ``{ keep_when_empty = "nickname" }``          when empty, keep what the target holds
                                                instead of removing it
  ``{ multi_line = "notes" }``                  text that may hold tabs and line breaks
  ============================================  ==========================================

Every mapped attribute is managed: when the source has no value for it, the target's
value is removed, unless the rule is wrapped in ``keep_when_empty``.

TOML reads an unquoted dotted key as nested tables: ``name.givenName = "first"`` is
read back as the path ``name.givenName``. Paths with brackets, spaces or URNs must be
quoted: ``'emails[type eq "work"].value' = { lower = "email" }``.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..mapping import (
    Mapping,
    Rule,
    RuleLike,
    boolean,
    coalesce,
    const,
    default,
    field,
    join,
    keep_when_empty,
    key,
    lower,
    multi_line,
    ref,
    split,
    strip,
    template,
    upper,
)
from ._table import Table, type_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sources import Record

__all__ = ["OPERATORS", "ScopeRule", "import_mapping", "mapping_from_table"]

#: Each operator and the options it takes besides itself.
OPERATORS: dict[str, tuple[str, ...]] = {
    "field": (),
    "const": (),
    "key": (),
    "omit": (),
    "lower": (),
    "upper": (),
    "strip": (),
    "template": (),
    "join": ("sep",),
    "split": ("sep",),
    "coalesce": (),
    "default": ("fallback",),
    "boolean": ("true", "false"),
    "ref": (),
    "keep_when_empty": (),
    "multi_line": (),
}


# A table holding any of these is a rule (maybe a wrong one), not a level of a dotted path.
_RULE_WORDS = frozenset(OPERATORS) | {
    option for options in OPERATORS.values() for option in options
}


def import_mapping(reference: str, table: Table, key: str) -> Mapping:
    """The :class:`Mapping` named ``"package.module:NAME"``.

    The configuration file's folder is searched first, so a ``my_mapping.py`` next
    to it can be named without installing it.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        table.fail(key, f"expected 'package.module:NAME' or a table, got {reference!r}")
    folder = str(table.file.parent)
    sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        table.fail(key, f"cannot import {module_name!r}: {exc}")
    except Exception as exc:
        table.fail(key, f"importing {module_name!r} failed: {type(exc).__name__}: {exc}")
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            table.fail(key, f"{module_name!r} has no {attribute!r}")
        found = getattr(found, part)
    if not isinstance(found, Mapping):
        table.fail(key, f"{reference} is {type_name(found)}, not a scimsync.mapping.Mapping")
    return found


def mapping_from_table(table: Table) -> Mapping:
    """Build the :class:`Mapping` a ``[mapping]`` table describes."""
    users = _rules(table.table("users", required=True))
    groups_table = table.table("groups")
    groups = _rules(groups_table) if groups_table is not None else None
    create_only_table = table.table("create_only")
    create_only = _rules(create_only_table) if create_only_table is not None else None
    member_of: RuleLike = None
    if "member_of" in table:
        member_of = rule_from(table.raw("member_of"), table, "member_of")
    scope_table = table.table("scope")
    scope = _scope(scope_table) if scope_table is not None else None
    table.finish()
    try:
        return Mapping(
            users, groups=groups, create_only=create_only, member_of=member_of, scope=scope
        )
    except ConfigurationError as exc:
        table.wrap(None, exc)


def _rules(table: Table | None) -> dict[str, RuleLike]:
    assert table is not None
    rules: dict[str, RuleLike] = {}
    for path, value in _flatten(table.data, ""):
        rules[path] = rule_from(value, table, path)
    for name in list(table.data):
        table.raw(name)  # every key is a path: none is unknown
    return rules


def _flatten(data: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """Paths and values; a table without an operator is a dotted path's next level."""
    out: list[tuple[str, Any]] = []
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value and not set(value) & _RULE_WORDS:
            out.extend(_flatten(value, f"{path}."))
        else:
            out.append((path, value))
    return out


def rule_from(value: Any, table: Table, where: str) -> RuleLike:
    """The rule a TOML value describes (see the module docstring)."""
    if isinstance(value, str):
        if not value.strip():
            table.fail(_quoted(where), "an empty string names no field")
        return value
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list):
        table.fail(
            _quoted(where),
            "an array is not a rule: write { const = [...] } for a constant list, or "
            "{ coalesce = [...] } for the first non-empty of several",
        )
    if not isinstance(value, dict):
        table.fail(_quoted(where), f"{type_name(value)} is not a rule")
    operators = [name for name in value if name in OPERATORS]
    if len(operators) != 1:
        found = f"found {', '.join(operators)}" if operators else "found none"
        table.fail(
            _quoted(where),
            f"a rule table has exactly one operator ({found}); operators: {', '.join(OPERATORS)}",
        )
    operator = operators[0]
    allowed = OPERATORS[operator]
    extra = [name for name in value if name != operator and name not in allowed]
    if extra:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no option"
        table.fail(_quoted(where), f"{operator} {takes}; unknown: {', '.join(extra)}")
    try:
        return _build(operator, value, table, where)
    except ConfigurationError as exc:
        table.wrap(_quoted(where), exc)


def _build(operator: str, value: dict[str, Any], table: Table, where: str) -> RuleLike:
    operand = value[operator]
    here = _quoted(where)

    def text(name: str, given: Any) -> str:
        if not isinstance(given, str):
            table.fail(here, f"{name} expects a string, got {type_name(given)}")
        return given

    def words(name: str) -> tuple[str, ...] | None:
        if name not in value:
            return None
        given = value[name]
        if isinstance(given, str):
            return (given,)
        if not isinstance(given, list) or not all(isinstance(w, str) for w in given):
            table.fail(here, f"{name} expects an array of strings, got {type_name(given)}")
        return tuple(given)

    def operands() -> list[RuleLike]:
        if not isinstance(operand, list) or not operand:
            table.fail(here, f"{operator} expects a non-empty array of rules")
        return [
            rule_from(item, table, f"{where}.{operator}[{i}]") for i, item in enumerate(operand)
        ]

    def flag() -> None:
        if operand is not True:
            table.fail(here, f"write {{ {operator} = true }}")

    if operator == "field":
        return field(text("field", operand))
    if operator == "const":
        return const(operand)
    if operator == "key":
        flag()
        return key()
    if operator == "omit":
        flag()
        return None
    if operator == "template":
        return template(text("template", operand))
    if operator in ("lower", "upper", "strip"):
        inner = rule_from(operand, table, f"{where}.{operator}")
        builder: Callable[[RuleLike], Rule] = {"lower": lower, "upper": upper, "strip": strip}[
            operator
        ]
        return builder(inner)
    if operator == "join":
        return join(text("sep", value.get("sep", " ")), *operands())
    if operator == "split":
        return split(
            rule_from(operand, table, f"{where}.split"), text("sep", value.get("sep", ","))
        )
    if operator == "coalesce":
        return coalesce(*operands())
    if operator == "ref":
        return ref(rule_from(operand, table, f"{where}.ref"))
    if operator == "keep_when_empty":
        return keep_when_empty(rule_from(operand, table, f"{where}.keep_when_empty"))
    if operator == "multi_line":
        return multi_line(rule_from(operand, table, f"{where}.multi_line"))
    if operator == "default":
        if "fallback" not in value:
            table.fail(here, "default needs a fallback = <constant>")
        return default(rule_from(operand, table, f"{where}.default"), value["fallback"])
    assert operator == "boolean"
    true, false = words("true"), words("false")
    options: dict[str, tuple[str, ...]] = {}
    if true is not None:
        options["true"] = true
    if false is not None:
        options["false"] = false
    return boolean(rule_from(operand, table, f"{where}.boolean"), **options)


def _quoted(path: str) -> str:
    return path if path.replace("_", "").isalnum() else repr(path)


class ScopeRule:
    """Keeps the records whose ``field`` is (``keep=True``) or is not among ``values``.

    Values compare without surrounding spaces and case; a list field is in scope when
    any of its items is.
    """

    def __init__(self, field_name: str, values: tuple[str, ...], *, keep: bool) -> None:
        self.field = field_name
        self.values = frozenset(v.strip().casefold() for v in values)
        self.keep = keep

    def __repr__(self) -> str:
        word = "in" if self.keep else "not_in"
        return f"scope({self.field!r} {word} {sorted(self.values)})"

    def __call__(self, record: Record) -> bool:
        value = record.get(self.field)
        items = value if isinstance(value, list) else [value]
        found = any(
            isinstance(item, str) and item.strip().casefold() in self.values for item in items
        )
        return found if self.keep else not found


def _scope(table: Table) -> Callable[[Record], object]:
    name = table.string("field")
    has_in, has_not_in = "in" in table, "not_in" in table
    if has_in == has_not_in:
        table.fail(None, "give exactly one of in = [...] or not_in = [...]")
    keep = has_in
    values = table.strings("in" if keep else "not_in")
    table.finish()
    return ScopeRule(name, values, keep=keep)
