"""Does any account on the target hold what the mapping writes? (``scimsync check``)

``check`` reads a sample of the target's users and groups (the first page of each)
and looks, for each attribute the mapping writes, for one account that holds it. A
mapped attribute that none of them holds is a sign that the target drops it (it
publishes ``title`` and never stores it) — or that nobody has set it there yet;
``check --probe`` tells the two apart by writing a throwaway user. Filtered paths
are looked at part by part: for ``emails[type eq "work"].value``, an email at all,
then any ``type``, then one of type ``"work"``, then its ``value``.

Pure: the sample is read by the caller, as SCIM JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..sources import Record

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..mapping import Entry
    from ..mapping import Mapping as ResourceMapping
    from ..schema import SchemaTable

__all__ = ["Absent", "absent_attributes", "compared_entries", "get_folded"]


@attrs.frozen
class Absent:
    """A mapped attribute no sampled resource holds: ``what`` names the part missing."""

    resource_type: str
    path: str
    what: str


def compared_entries(
    mapping: ResourceMapping, resource_type: str, schema: SchemaTable
) -> list[Entry]:
    """The entries of ``mapping`` for ``resource_type`` whose values a target returns:
    not write-only or returned only on request, not a whole extension object, not
    left out (``externalId = { omit = true }``)."""
    entries = (
        [*mapping.user_entries, *mapping.create_only_entries]
        if resource_type == "User"
        else list(mapping.group_entries)
    )
    out = []
    for entry in entries:
        if not entry.path.attribute or omitted(entry):
            continue
        spec = schema.resolve(resource_type, entry.path.schema_path)
        if spec is not None and (spec.write_only or spec.read_only or spec.returned == "request"):
            continue
        out.append(entry)
    return out


def omitted(entry: Entry) -> bool:
    """True for an entry that never gives a value (``{ omit = true }``, ``None``)."""
    rule = entry.rule
    return not rule.reads and not rule.opaque and rule(Record(key="k")) is None


def absent_attributes(
    entries: Sequence[Entry], resource_type: str, sample: Sequence[Mapping[str, Any]]
) -> list[Absent]:
    """The entries no resource of ``sample`` (SCIM JSON) holds a value for, in order."""
    out = []
    for entry in entries:
        what = _missing(entry, sample)
        if what is not None:
            out.append(Absent(resource_type, entry.path.text, what))
    return out


def _missing(entry: Entry, sample: Sequence[Mapping[str, Any]]) -> str | None:
    """What no resource holds of ``entry``'s path, in words; None when one holds it."""
    path = entry.path
    name = path.attribute if path.urn is None else f"{path.urn}:{path.attribute}"
    values = []
    for data in sample:
        container = data if path.urn is None else get_folded(data, path.urn)
        value = get_folded(container, path.attribute) if isinstance(container, Mapping) else None
        if not _empty(value):
            values.append(value)
    if not values:
        return name
    elements = [
        element
        for value in values
        for element in (value if isinstance(value, list) else [value])
        if isinstance(element, Mapping)
    ]
    if path.conditions is not None:
        for sub, _ in path.conditions:
            if all(_empty(get_folded(e, sub)) for e in elements):
                return f"{name}.{sub}"
        elements = [e for e in elements if _selected(e, path.conditions)]
        if not elements:
            wanted = " and ".join(f"{sub} {_shown(value)}" for sub, value in path.conditions)
            return f"{name} with {wanted}"
    if path.sub is not None and all(_empty(get_folded(e, path.sub)) for e in elements):
        return f"{name}.{path.sub}"
    return None


def _selected(element: Mapping[str, Any], conditions: tuple[tuple[str, Any], ...]) -> bool:
    return all(_same(get_folded(element, sub), value) for sub, value in conditions)


def _same(held: Any, wanted: Any) -> bool:
    if isinstance(held, str) and isinstance(wanted, str):
        return held.casefold() == wanted.casefold()
    return bool(held == wanted)


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower()


def _empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def get_folded(data: Mapping[str, Any], name: str) -> Any:
    """``data[name]``, the name compared ignoring case (SCIM attribute names are)."""
    if name in data:
        return data[name]
    folded = name.casefold()
    return next((v for k, v in data.items() if k.casefold() == folded), None)
