"""Targets that do not keep, or cannot filter on, attributes they publish in ``/Schemas``.

Two quirks name attributes: ``Quirks.dropped_attributes`` (accepted, never stored) and
``Quirks.unfilterable_attributes`` (a filter naming one is refused or ignored). Both
take *quirk paths*, attribute paths as filters and PATCH write them, with the
resource type in front when it is not User:

- ``"title"``, ``"name.middleName"``, ``"emails.type"``: User attributes;
- ``"Group:externalId"``: a Group attribute (``User:title`` says User explicitly);
- ``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"``: the
  resource type that carries the URN's schema (the core Group URN means Group).

Names are case-insensitive. A path resolves once, through the server's schema table,
to an :class:`AttributeRef` holding the names as the schema spells them, which is
how the store keeps resources.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import attrs

from ..filter import And, AttrPath, Comparison, Not, Or, Present, ValuePath
from ..schema import split_urn
from ._discovery import schema_table

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..filter import Filter
    from ..schema import AttributeSpec, SchemaTable

__all__ = [
    "AttributeRef",
    "drop_attributes",
    "dropped_refs",
    "names_any",
    "resolve_quirk_path",
    "resource_type_names",
    "unfilterable_refs",
]

Resource = dict[str, Any]


@attrs.frozen
class AttributeRef:
    """One attribute (or sub-attribute) of one resource type, as the schema spells it.

    ``urn`` is the extension schema holding the attribute, None for core and common
    attributes; ``sub`` the sub-attribute, None for the whole attribute.
    """

    resource_type: str
    urn: str | None
    name: str
    sub: str | None = None

    def covers(self, other: AttributeRef) -> bool:
        """True when ``other`` is this attribute or lies under it."""
        return (self.resource_type, self.urn, self.name) == (
            other.resource_type,
            other.urn,
            other.name,
        ) and self.sub in (None, other.sub)


def resource_type_names(table: SchemaTable | None = None) -> dict[str, str]:
    """The resource types the server serves, by folded name (``"user"`` -> ``"User"``)."""
    table = table or schema_table()
    return {folded: spec.name for folded, spec in table.resource_types.items()}


def resolve_quirk_path(text: str, table: SchemaTable | None = None) -> AttributeRef:
    """The attribute a quirk path names; :class:`ValueError` when it names none."""
    return _resolve(text, table or schema_table())[0]


def _resolve(text: str, table: SchemaTable) -> tuple[AttributeRef, AttributeSpec]:
    path = text.strip()
    if path[:4].lower() == "urn:":
        for spec in table.resource_types.values():
            urns = (spec.schema, *spec.extensions)
            urn, _ = split_urn(path, urns)
            if urn is not None and urn.lower() in {u.lower() for u in urns}:
                return _resolve_in(spec.name, path, text, table)
        raise ValueError(f"{text!r} names a schema no resource type of this server has")
    head, colon, rest = path.partition(":")
    if colon:
        resource_type = resource_type_names(table).get(head.lower())
        if resource_type is None:
            known = ", ".join(sorted(resource_type_names(table).values()))
            raise ValueError(f"{text!r}: no resource type {head!r} (known: {known})")
        return _resolve_in(resource_type, rest.strip(), text, table)
    return _resolve_in("User", path, text, table)


def _resolve_in(
    resource_type: str, path: str, text: str, table: SchemaTable
) -> tuple[AttributeRef, AttributeSpec]:
    found = _lookup(resource_type, path, table)
    if found is None:
        raise ValueError(f"{text!r} names no attribute of {resource_type} in /Schemas")
    return found


def _lookup(
    resource_type: str, path: str, table: SchemaTable
) -> tuple[AttributeRef, AttributeSpec] | None:
    """The attribute ``path`` names on ``resource_type`` and its spec, or None."""
    rtype = table.resource_type(resource_type)
    if rtype is None:
        return None
    urn, rest = split_urn(path, (*rtype.extensions, rtype.schema))
    extension: str | None = None
    if urn is not None and urn.lower() != rtype.schema.lower():
        extension = next((u for u in rtype.extensions if u.lower() == urn.lower()), None)
        schema = table.schema(extension) if extension is not None else None
        if schema is None:
            return None
        head, _, sub = rest.partition(".")
        spec = schema.attribute(head)
    else:
        head, _, sub = rest.partition(".")
        spec = table.resolve(resource_type, head) if head else None
    if spec is None:
        return None
    if not sub:
        return AttributeRef(resource_type, extension, spec.name), spec
    sub_spec = spec.sub(sub)
    if sub_spec is None:
        return None
    return AttributeRef(resource_type, extension, spec.name, sub_spec.name), sub_spec


# -- dropped attributes --------------------------------------------------------------------


@functools.cache
def dropped_refs(paths: tuple[str, ...]) -> dict[str, tuple[AttributeRef, ...]]:
    """``Quirks.dropped_attributes`` resolved, by resource type; :class:`ValueError` for
    a path that names nothing or an attribute a target cannot drop while accepting the
    write (readOnly, immutable or required: ``userName``, a member's ``value``)."""
    table = schema_table()
    out: dict[str, list[AttributeRef]] = {}
    for text in paths:
        ref, spec = _resolve(text, table)
        if spec.mutability not in ("readWrite", "writeOnly") or spec.required:
            raise ValueError(
                f"{text!r} cannot be dropped: it is {spec.mutability}"
                + (" and required" if spec.required else "")
            )
        out.setdefault(ref.resource_type, []).append(ref)
    return {resource_type: tuple(refs) for resource_type, refs in out.items()}


def drop_attributes(resource: Resource, refs: tuple[AttributeRef, ...]) -> Resource:
    """``resource`` (as the store keeps it) without the attributes ``refs`` name.

    A complex value, a value of a multi-valued attribute, or an extension object left
    empty goes too (an empty value is the same as none, RFC 7643 §2.5), and so does the
    URN of an extension left empty from ``schemas``.
    """
    out = dict(resource)
    for ref in refs:
        if ref.urn is None:
            _drop_from(out, ref)
            continue
        key = _key(out, ref.urn)
        if key is None or not isinstance(out[key], dict):
            continue
        extension = dict(out[key])
        _drop_from(extension, ref)
        if extension:
            out[key] = extension
            continue
        del out[key]
        if isinstance(out.get("schemas"), list):
            out["schemas"] = [s for s in out["schemas"] if s.lower() != ref.urn.lower()]
    return out


def _drop_from(box: dict[str, Any], ref: AttributeRef) -> None:
    key = _key(box, ref.name)
    if key is None:
        return
    if ref.sub is None:
        del box[key]
        return
    value = box[key]
    if isinstance(value, list):
        kept = [_without(item, ref.sub) for item in value]
        value = [item for item in kept if item != {}]
    else:
        value = _without(value, ref.sub)
    if value in ({}, []):
        del box[key]
    else:
        box[key] = value


def _without(value: Any, sub: str) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if k.lower() != sub.lower()}


def _key(box: dict[str, Any], name: str) -> str | None:
    if name in box:
        return name
    folded = name.lower()
    return next((k for k in box if k.lower() == folded), None)


# -- unfilterable attributes ---------------------------------------------------------------


@functools.cache
def unfilterable_refs(paths: tuple[str, ...]) -> dict[str, tuple[AttributeRef, ...]]:
    """``Quirks.unfilterable_attributes`` resolved, by resource type."""
    out: dict[str, list[AttributeRef]] = {}
    for text in paths:
        ref = resolve_quirk_path(text)
        out.setdefault(ref.resource_type, []).append(ref)
    return {resource_type: tuple(refs) for resource_type, refs in out.items()}


def names_any(
    node: Filter, resource_type: str, refs: tuple[AttributeRef, ...], table: SchemaTable
) -> bool:
    """True when some attribute path of the filter is one of ``refs`` or lies under one.

    Paths the schema does not declare name nothing (the filter matches no value there).
    """
    if not refs:
        return False
    for path in _paths(node):
        found = _lookup(resource_type, path, table)
        if found is not None and any(ref.covers(found[0]) for ref in refs):
            return True
    return False


def _paths(node: Filter) -> Iterator[str]:
    """Every attribute path ``node`` compares, as text; a value filter's paths joined to
    the attribute they filter (``emails[type eq "work"]`` gives ``emails`` and
    ``emails.type``)."""
    if isinstance(node, (Comparison, Present)):
        yield str(node.path)
    elif isinstance(node, ValuePath):
        yield str(node.path)
        for inner in _paths(node.filter):
            yield f"{node.path}.{AttrPath.parse(inner).name}"
    elif isinstance(node, Not):
        yield from _paths(node.filter)
    elif isinstance(node, (And, Or)):
        for child in node.filters:
            yield from _paths(child)
