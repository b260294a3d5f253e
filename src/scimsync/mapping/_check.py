"""Checking a mapping against what a target supports (its schema table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError
from ._rules import _Const

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..schema import AttributeSpec, SchemaTable
    from ._mapping import Entry, Mapping

__all__ = ["MappingCheck", "MappingProblem", "check_mapping"]

_NUMBER_TYPES = frozenset({"integer", "decimal"})
_TEXT_TYPES = frozenset({"string", "reference", "binary", "dateTime"})


@attrs.frozen(kw_only=True)
class MappingProblem:
    """One problem of a mapping, with the mapping line it comes from.

    ``entry`` is the line (``users['name.givenName']``), or the part of the mapping
    the problem is about (``users``, ``source fields``). A ``blocking`` problem means
    the mapping would lose or corrupt data: the runner refuses to write with it.
    """

    entry: str
    message: str
    blocking: bool = True

    def __str__(self) -> str:
        return f"{'error' if self.blocking else 'note'}: {self.entry}: {self.message}"


@attrs.frozen(kw_only=True)
class MappingCheck:
    """Everything :meth:`Mapping.check` found, blocking problems first."""

    problems: tuple[MappingProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem blocks writing with this mapping."""
        return not any(problem.blocking for problem in self.problems)

    @property
    def blocking(self) -> tuple[MappingProblem, ...]:
        """The problems that block writing."""
        return tuple(problem for problem in self.problems if problem.blocking)

    def raise_for_problems(self) -> None:
        """Raise :class:`~scimsync.errors.ConfigurationError` listing every blocking problem."""
        if not self.ok:
            listed = "\n".join(f"  {problem}" for problem in self.blocking)
            raise ConfigurationError(f"the mapping cannot be used with this target:\n{listed}")

    def __str__(self) -> str:
        if not self.problems:
            return "the mapping fits the target"
        return "\n".join(map(str, self.problems))


def check_mapping(
    mapping: Mapping, schema: SchemaTable, source: Any | None, fields: Iterable[str] | None
) -> MappingCheck:
    """Check ``mapping`` against ``schema`` (see :meth:`Mapping.check`)."""
    problems: list[MappingProblem] = []
    sections: list[tuple[str, tuple[Entry, ...], tuple[Entry, ...]]] = [
        ("User", mapping.user_entries, mapping.create_only_entries)
    ]
    if mapping.uses_groups:
        sections.append(("Group", mapping.group_entries, ()))
    for resource_type, managed, create_only in sections:
        if schema.resource_type(resource_type) is None:
            where = "groups" if resource_type == "Group" else "users"
            problems.append(
                MappingProblem(
                    entry=where, message=f"the target serves no {resource_type} resource type"
                )
            )
            continue
        for entry in (*managed, *create_only):
            problems.extend(_check_entry(schema, resource_type, entry))
        implied = ("displayname",) if resource_type == "Group" and mapping.groups is None else ()
        problems.extend(_check_required(schema, resource_type, (*managed, *create_only), implied))
    problems.extend(_check_fields(mapping, source, fields))
    problems.sort(key=lambda problem: not problem.blocking)
    return MappingCheck(problems=tuple(problems))


def _check_entry(schema: SchemaTable, resource_type: str, entry: Entry) -> list[MappingProblem]:
    path = entry.path

    def problem(message: str, blocking: bool = True) -> list[MappingProblem]:
        return [MappingProblem(entry=entry.label, message=message, blocking=blocking)]

    if path.urn is not None:
        known = [urn.lower() for urn in schema.extension_urns(resource_type)]
        if path.urn.lower() not in known:
            if schema.schema(path.urn) is None:
                return problem(
                    f"the target has no schema {path.urn}: values mapped here would be lost"
                )
            return problem(f"{path.urn} is not an extension of {resource_type} on the target")
        if not path.attribute:
            return []
    top_path = path.attribute if path.urn is None else f"{path.urn}:{path.attribute}"
    top = schema.resolve(resource_type, top_path)
    if top is None:
        return problem(
            f"the target's {resource_type} has no attribute {top_path!r}: values mapped to it"
            " would be lost"
        )
    spec = top
    if path.sub is not None:
        sub = top.sub(path.sub)
        if sub is None:
            return problem(
                f"the target's {top.name!r} has no sub-attribute {path.sub!r}: values mapped"
                " to it would be lost"
            )
        spec = sub
    found: list[MappingProblem] = []
    if path.conditions is not None:
        if not top.multi_valued:
            return problem(f"{top.name!r} is single-valued: a filter cannot select an element")
        for name, value in path.conditions:
            condition = top.sub(name)
            if condition is None:
                found += problem(f"{top.name!r} has no sub-attribute {name!r} to filter on")
            elif condition.canonical_values and value not in condition.canonical_values:
                found += problem(
                    f"{name} {value!r} is not among the target's values"
                    f" {list(condition.canonical_values)}",
                    blocking=False,
                )
    found.extend(_check_mutability(entry, top, spec))
    found.extend(_check_type(entry, top, spec))
    return found


def _check_mutability(
    entry: Entry, top: AttributeSpec, spec: AttributeSpec
) -> list[MappingProblem]:
    label = entry.label
    for attribute in (top, spec):
        if attribute.read_only:
            return [
                MappingProblem(
                    entry=label,
                    message=f"{attribute.name!r} is readOnly on the target: it would never be"
                    " written",
                )
            ]
    create_only = entry.section == "create_only"
    for attribute in (top, spec):
        if attribute.mutability == "immutable" and not create_only:
            return [
                MappingProblem(
                    entry=label,
                    message=f"{attribute.name!r} is immutable: it can be set only when the"
                    " resource is created; map it under create_only",
                )
            ]
    if spec.write_only and not create_only:
        return [
            MappingProblem(
                entry=label,
                message=f"{spec.name!r} is never returned by the target, so it cannot be"
                " compared: it is sent on create only (map it under create_only to say so)",
                blocking=False,
            )
        ]
    return []


def _check_type(entry: Entry, top: AttributeSpec, spec: AttributeSpec) -> list[MappingProblem]:
    path, rule = entry.path, entry.rule
    produces = rule.produces
    # The slot the value lands in: a whole (maybe multi-valued) attribute, or one value.
    whole_attribute = path.sub is None and path.conditions is None
    many = whole_attribute and spec.multi_valued
    if whole_attribute and spec.multi_valued and spec.complex:
        spec = spec.sub("value") or spec
        if spec.complex:
            return []  # a list of objects, built by a callable: checked per record

    def problem(message: str, blocking: bool = True) -> list[MappingProblem]:
        return [MappingProblem(entry=entry.label, message=message, blocking=blocking)]

    if produces == "any":
        return []
    if produces == "list":
        if not many:
            return problem(f"{rule!r} gives a list, and {spec.name!r} holds one value")
        return []
    if spec.complex:
        return problem(f"{rule!r} gives a {produces}, and {spec.name!r} is complex (an object)")
    if produces == "boolean" and spec.type != "boolean":
        return problem(f"{rule!r} gives a boolean, and {spec.name!r} is a {spec.type}")
    if produces == "number" and spec.type in ("boolean", "dateTime", "binary", "reference"):
        return problem(f"{rule!r} gives a number, and {spec.name!r} is a {spec.type}")
    if produces == "string" and spec.type == "boolean":
        if isinstance(rule, _Const):
            if str(rule.value).strip().lower() not in ("true", "false"):
                return problem(f"{rule.value!r} is not a boolean for {spec.name!r}")
            return []
        return problem(
            f"{rule!r} gives text, and {spec.name!r} is a boolean: only 'true' and 'false'"
            " will read; use boolean() to say which words mean what",
            blocking=False,
        )
    if produces == "string" and spec.type in _NUMBER_TYPES:
        return problem(
            f"{rule!r} gives text, and {spec.name!r} is a {spec.type}: the target may refuse it",
            blocking=False,
        )
    if (
        isinstance(rule, _Const)
        and spec.canonical_values
        and spec.type in _TEXT_TYPES
        and rule.value not in spec.canonical_values
    ):
        return problem(
            f"{rule.value!r} is not among the target's values {list(spec.canonical_values)}",
            blocking=False,
        )
    return []


def _check_required(
    schema: SchemaTable, resource_type: str, entries: tuple[Entry, ...], implied: tuple[str, ...]
) -> list[MappingProblem]:
    """Required attributes nothing maps; ``implied`` ones are written without a rule."""
    problems: list[MappingProblem] = []
    written = {(e.path.urn or "").lower(): set[str]() for e in entries}
    written.setdefault("", set()).update(implied)
    for entry in entries:
        written[(entry.path.urn or "").lower()].add(entry.path.attribute.lower())
    section = "groups" if resource_type == "Group" else "users"
    for urn, spec in schema.attributes(resource_type):
        if not spec.required or spec.read_only:
            continue
        if urn is not None and urn.lower() not in written:
            continue  # an extension the mapping does not use
        attributes = written.get((urn or "").lower(), set())
        if spec.name.lower() not in attributes and "" not in attributes:
            if resource_type == "Group" and spec.name.lower() == "members":
                continue  # members come from the records' members and member_of
            problems.append(
                MappingProblem(
                    entry=section,
                    message=f"{spec.name!r} is required by the target and nothing maps it",
                )
            )
    # Required sub-attributes, per element (or per single-valued complex attribute).
    places: dict[tuple[str, str, str], tuple[Entry, set[str]]] = {}
    for entry in entries:
        path = entry.path
        if not path.attribute or (path.sub is None and path.conditions is None):
            continue
        conditions = repr(sorted((n.lower(), repr(v)) for n, v in path.conditions or ()))
        place = ((path.urn or "").lower(), path.attribute.lower(), conditions)
        _, subs = places.setdefault(place, (entry, set()))
        subs.update(name.lower() for name, _ in path.conditions or ())
        if path.sub is not None:
            subs.add(path.sub.lower())
    for (urn, attribute, _), (entry, subs) in places.items():
        top = schema.resolve(resource_type, attribute if not urn else f"{urn}:{attribute}")
        if top is None:
            continue
        problems.extend(
            MappingProblem(
                entry=entry.label,
                message=f"{top.name}.{sub.name} is required by the target and nothing maps it",
            )
            for sub in top.sub_attributes.values()
            if sub.required and not sub.read_only and sub.name.lower() not in subs
        )
    return problems


def _check_fields(
    mapping: Mapping, source: Any | None, fields: Iterable[str] | None
) -> list[MappingProblem]:
    excluded: set[str] = set()
    if fields is None and source is not None:
        read_fields = getattr(source, "fields", None)
        if not callable(read_fields):
            raise ConfigurationError(f"{source!r} cannot list its fields: pass fields= instead")
        fields = read_fields()
    if source is not None:
        excluded.update(
            value
            for value in (getattr(source, n, None) for n in ("key", "group_key", "members"))
            if isinstance(value, str)
        )
    if fields is None:
        return []
    available = set(fields)
    problems: list[MappingProblem] = []
    rules = [(e.label, e.rule) for e in mapping.entries]
    if mapping.member_of is not None:
        rules.append(("member_of", mapping.member_of))
    problems.extend(
        MappingProblem(entry=label, message=f"reads source field {name!r}, which the source lacks")
        for label, rule in rules
        for name in sorted({max(need, key=len) for need in rule.needs if not need & available})
    )
    unread = sorted(available - mapping.reads - excluded)
    if unread:
        opaque = any(rule.opaque for _, rule in rules) or mapping.scope is not None
        maybe = " (callables may read them)" if opaque else ""
        problems.append(
            MappingProblem(
                entry="source fields",
                message=f"no rule reads {', '.join(map(repr, unread))}{maybe}",
                blocking=False,
            )
        )
    return problems
