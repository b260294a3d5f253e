"""Listing rules of RFC 7644 §3.4: projection, sorting and paging, as pure functions.

Attribute paths are resolved through the schema table, so ``NAME.givenname`` and
``urn:ietf:params:scim:schemas:core:2.0:User:name.givenName`` name the same thing,
and string comparisons follow each attribute's ``caseExact``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..schema import AttributeSpec, SchemaTable, split_urn
from ._wire import ScimRequestError

__all__ = ["Paging", "Selection", "parse_selection", "project", "sort_resources"]

# Top-level key (an attribute name or an extension URN) -> None for all of it, or the
# names of the sub-attributes wanted.
Selection = dict[str, "set[str] | None"]

# Returned whatever is asked (RFC 7643 §7 "always", and the structural "schemas").
_ALWAYS = ("schemas", "id")


@attrs.frozen(kw_only=True)
class Paging:
    """``startIndex`` (1-based) and ``count`` after the server's limits are applied.

    ``asked`` is the ``count`` asked for (the default when none was), before any cap.
    """

    start_index: int
    count: int
    asked: int

    @classmethod
    def parse(
        cls, start_index: object, count: object, *, default_count: int, max_count: int
    ) -> Paging:
        """Read the two parameters (strings from a query, ints from a search body).

        A ``startIndex`` below 1 is read as 1 and a negative ``count`` as 0 (RFC 7644
        §3.4.2.4); ``count`` is capped at ``max_count``; anything not an integer is a
        400 ``invalidValue``.
        """
        start = _integer("startIndex", start_index, 1)
        wanted = max(_integer("count", count, default_count), 0)
        return cls(start_index=max(start, 1), count=min(wanted, max_count), asked=wanted)


def _integer(name: str, value: object, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ScimRequestError(400, f"{name} must be an integer, got {value!r}", "invalidValue")


def _extension(table: SchemaTable, resource_type: str, urn: str) -> str | None:
    for known in table.extension_urns(resource_type):
        if known.lower() == urn.lower():
            return known
    return None


def _core_schema(table: SchemaTable, resource_type: str) -> str:
    spec = table.resource_type(resource_type)
    return spec.schema if spec is not None else ""


def parse_selection(paths: Iterable[str], resource_type: str, table: SchemaTable) -> Selection:
    """Read ``attributes`` / ``excludedAttributes`` paths into a :data:`Selection`.

    Paths no schema of ``resource_type`` declares are left out: they select nothing.
    """
    selection: Selection = {}
    extensions = table.extension_urns(resource_type)
    core = _core_schema(table, resource_type).lower()
    for raw in paths:
        path = raw.strip()
        if not path:
            continue
        urn, rest = split_urn(path, (*extensions, core))
        if urn is not None and urn.lower() != core:
            extension = _extension(table, resource_type, urn)
            schema = table.schema(extension) if extension else None
            if extension is None or schema is None:
                continue
            if not rest:
                selection[extension] = None
                continue
            spec = schema.attribute(rest.partition(".")[0])
            if spec is not None:
                _add(selection, extension, spec.name)
            continue
        head, _, sub = rest.partition(".")
        if not head:
            continue
        spec = table.resolve(resource_type, head)
        if spec is None:
            continue
        if not sub:
            selection[spec.name] = None
            continue
        sub_spec = spec.sub(sub)
        if sub_spec is not None:
            _add(selection, spec.name, sub_spec.name)
    return selection


def _add(selection: Selection, key: str, sub: str) -> None:
    if key in selection and selection[key] is None:
        return
    subs = selection.get(key)
    if subs is None:
        subs = selection[key] = set()
    subs.add(sub)


def project(
    resource: dict[str, Any],
    *,
    include: Selection | None = None,
    exclude: Selection | None = None,
    on_request_only: Iterable[str] = (),
) -> dict[str, Any]:
    """The representation of ``resource`` asked for (RFC 7644 §3.4.2.5).

    ``include`` keeps only what it selects (plus ``schemas`` and ``id``); otherwise
    ``exclude`` drops what it selects. Attributes in ``on_request_only`` are
    returned only when ``include`` selects them.
    """
    if include is not None:
        out = {key: resource[key] for key in _ALWAYS if key in resource}
        for key, subs in include.items():
            if key in resource:
                out[key] = resource[key] if subs is None else _pick(resource[key], subs, keep=True)
        return out
    out = dict(resource)
    for key in on_request_only:
        out.pop(key, None)
    if exclude:
        for key, subs in exclude.items():
            if key in _ALWAYS or key not in out:
                continue
            if subs is None:
                del out[key]
            else:
                out[key] = _pick(out[key], subs, keep=False)
    return out


def _pick(value: Any, subs: set[str], *, keep: bool) -> Any:
    if isinstance(value, list):
        return [_pick(item, subs, keep=keep) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if (k in subs) == keep}
    return value


# -- sorting ------------------------------------------------------------------------------


def _lookup(resource: Mapping[str, Any], name: str) -> Any:
    value = resource.get(name)
    if value is not None:
        return value
    folded = name.lower()
    for key, found in resource.items():
        if key.lower() == folded:
            return found
    return None


def sort_value(
    resource: Mapping[str, Any], resource_type: str, path: str, table: SchemaTable
) -> Any:
    """The key ``resource`` sorts by for ``sortBy=path``, or None (RFC 7644 §3.4.2.3).

    A multi-valued attribute sorts by its primary value, else its first; a complex
    one named without a sub-attribute by its ``value``; strings fold unless the
    attribute is ``caseExact``.
    """
    spec = table.resolve(resource_type, path)
    if spec is None:
        return None
    core = _core_schema(table, resource_type)
    urn, rest = split_urn(path, (*table.extension_urns(resource_type), core))
    node: Any = resource
    if urn is not None and urn.lower() != core.lower():
        extension = _extension(table, resource_type, urn)
        node = _lookup(resource, extension) if extension and rest else None
        if not isinstance(node, Mapping):
            return None
    head, _, sub = rest.partition(".")
    value = _lookup(node, head)
    if isinstance(value, list):
        primary = [v for v in value if isinstance(v, Mapping) and v.get("primary") is True]
        value = primary[0] if primary else (value[0] if value else None)
    if isinstance(value, Mapping):
        value = _lookup(value, sub or "value")
        spec = spec if sub else (spec.sub("value") or spec)
    return _comparable(value, spec)


def _comparable(value: Any, spec: AttributeSpec) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, str):
        return (1, value if spec.case_exact else value.casefold())
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def sort_resources(
    items: list[tuple[str, dict[str, Any]]],
    sort_by: str,
    *,
    descending: bool,
    table: SchemaTable,
) -> list[tuple[str, dict[str, Any]]]:
    """Sort ``(resource type, resource)`` pairs by ``sort_by``; ties keep their order.

    Resources without a value come last when ascending and first when descending.
    """
    keyed = [
        (sort_value(resource, rtype, sort_by, table), (rtype, resource))
        for rtype, resource in items
    ]
    present = [(key, item) for key, item in keyed if key is not None]
    missing = [item for key, item in keyed if key is None]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    ordered = [item for _, item in present]
    return missing + ordered if descending else ordered + missing
