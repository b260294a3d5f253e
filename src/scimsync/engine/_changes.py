"""What changed between what a target holds and what the source wants, as writes.

Attribute changes come from :func:`scimsync.patch.diff` (minimal PATCH operations);
this module turns them into the attribute-level :class:`Change` values people review,
builds full bodies for targets without PATCH, and writes group member changes as
explicit, chunked add/remove operations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..codec import to_scim
from ..models import Group, PatchOperation, Resource
from ..schema import split_urn
from ._values import Change, jsonable

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._policy import Policy

R = TypeVar("R", bound=Resource)

# Never compared: set by the service provider, or handled apart (members, passwords).
_NOT_COMPARED = frozenset({"id", "meta", "groups", "members", "password", "extra", "extensions"})


def attribute_patch(
    actual: Resource, desired: Resource, resource_type: str, policy: Policy
) -> list[PatchOperation]:
    """The PATCH operations turning ``actual`` into ``desired`` on what ``desired`` sets."""
    # Interim until scimsync.patch.diff lands: one replace per differing attribute.
    ops: list[PatchOperation] = []
    schema = policy.schema
    for field in attrs.fields(type(desired)):
        name = field.name
        if name in _NOT_COMPARED:
            continue
        new = getattr(desired, name)
        if new is None:
            continue
        old = getattr(actual, name)
        if old == new:
            continue
        path = to_scim_name(name)
        if (
            isinstance(old, str)
            and isinstance(new, str)
            and not schema.case_exact(resource_type, path)
            and old.casefold() == new.casefold()
        ):
            continue
        ops.append(PatchOperation(op="replace", path=path, value=jsonable(new)))
    return ops


def to_scim_name(field_name: str) -> str:
    """The SCIM attribute name of a model field, URN-qualified for the enterprise one."""
    from ..models import ENTERPRISE_USER_SCHEMA, scim_name

    return ENTERPRISE_USER_SCHEMA if field_name == "enterprise" else scim_name(field_name)


def overlay(actual: R, desired: Resource) -> R:
    """``actual`` with every attribute ``desired`` sets written over it.

    Singular complex attributes (``name``, the enterprise extension, ``manager``) merge
    sub-attribute by sub-attribute, extensions URN by URN, so what the mapping does not
    manage survives a PUT. Multi-valued attributes are replaced whole.
    """
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(desired)):
        name = field.name
        if name in ("id", "meta"):
            continue
        new = getattr(desired, name)
        if new is None or (name in ("extensions", "extra") and not new):
            continue
        old = getattr(actual, name, None)
        if name in ("extensions", "extra"):
            merged = dict(old or {})
            for key, value in new.items():
                before = merged.get(key)
                if isinstance(before, Mapping) and isinstance(value, Mapping):
                    merged[key] = {**before, **value}
                elif attrs.has(type(before)) and type(before) is type(value):
                    merged[key] = _merge_complex(before, value)
                else:
                    merged[key] = value
            changes[name] = merged
        elif old is not None and attrs.has(type(new)) and type(old) is type(new):
            changes[name] = _merge_complex(old, new)
        else:
            changes[name] = new
    return attrs.evolve(actual, **changes) if changes else actual


def _merge_complex(old: Any, new: Any) -> Any:
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(new)):
        value = getattr(new, field.name)
        if value is None or (field.name == "extra" and not value):
            continue
        before = getattr(old, field.name)
        if field.name == "extra":
            changes["extra"] = {**before, **value}
        elif before is not None and attrs.has(type(value)) and type(before) is type(value):
            changes[field.name] = _merge_complex(before, value)
        else:
            changes[field.name] = value
    return attrs.evolve(old, **changes) if changes else old


def describe_changes(
    actual: Resource | None,
    after: Resource,
    ops: Iterable[PatchOperation],
    resource_type: str,
    policy: Policy,
) -> tuple[Change, ...]:
    """Attribute-level ``old → new`` of ``ops``, read from the resource before and after.

    Paths are the attributes the operations touch, without value filters
    (``emails[type eq "work"].value`` shows as ``emails``). Sensitive values are masked.
    """
    paths: list[str] = []
    seen: set[str] = set()
    for op in ops:
        for path in _touched_paths(op):
            if path.lower() not in seen:
                seen.add(path.lower())
                paths.append(path)
    return _changes_for(paths, actual, after, resource_type, policy)


def describe_resource(resource: Resource, resource_type: str, policy: Policy) -> tuple[Change, ...]:
    """Every attribute a new resource sets, as changes from nothing."""
    data = to_scim(resource, request=True)
    paths = [key for key in data if key != "schemas"]
    return _changes_for(paths, None, resource, resource_type, policy)


def _changes_for(
    paths: Sequence[str],
    actual: Resource | None,
    after: Resource,
    resource_type: str,
    policy: Policy,
) -> tuple[Change, ...]:
    before_data = to_scim(actual) if actual is not None else {}
    after_data = to_scim(after)
    urns = policy.schema.extension_urns(resource_type)
    out = []
    for path in paths:
        if is_sensitive(path, resource_type, policy):
            out.append(Change(path=path, sensitive=True))
            continue
        out.append(
            Change(
                path=path,
                old=_lookup(before_data, path, urns),
                new=_lookup(after_data, path, urns),
            )
        )
    return tuple(out)


def is_sensitive(path: str, resource_type: str, policy: Policy) -> bool:
    """True when values at ``path`` must not be shown (writeOnly, never returned, or named)."""
    folded = path.lower()
    if any(
        folded == p.lower() or folded.startswith(p.lower() + ".") for p in policy.sensitive_paths
    ):
        return True
    spec = policy.schema.resolve(resource_type, path)
    return spec is not None and spec.write_only


def _touched_paths(op: PatchOperation) -> list[str]:
    if op.path is None:
        value = op.value if isinstance(op.value, Mapping) else {}
        return [str(key) for key in value if key != "schemas"]
    path = op.path
    bracket = path.find("[")
    if bracket != -1:
        close = path.rfind("]")
        path = path[:bracket] + path[close + 1 :] if close != -1 else path[:bracket]
        # A filtered multi-valued attribute changes as a whole, for review purposes.
        urn, rest = split_urn(path)
        head = rest.split(".", 1)[0]
        path = f"{urn}:{head}" if urn else head
    return [path]


def _lookup(data: Mapping[str, Any], path: str, urns: Sequence[str]) -> Any:
    urn, rest = split_urn(path, urns)
    node: Any = data
    if urn is not None:
        node = _get_folded(node, urn)
        if not rest:
            return node
    for part in rest.split("."):
        if not isinstance(node, Mapping):
            return None
        node = _get_folded(node, part)
    return node


def _get_folded(data: Mapping[str, Any], key: str) -> Any:
    if key in data:
        return data[key]
    folded = key.lower()
    for name, value in data.items():
        if name.lower() == folded:
            return value
    return None


def summarise(changes: Sequence[Change]) -> str:
    """``"title changed"``, ``"title and emails changed"``, ``"a, b and 3 more changed"``."""
    names = [_short(change.path) for change in changes]
    if not names:
        return "no attribute changed"
    if len(names) == 1:
        return f"{names[0]} changed"
    if len(names) == 2:
        return f"{names[0]} and {names[1]} changed"
    return f"{names[0]}, {names[1]} and {len(names) - 2} more changed"


def _short(path: str) -> str:
    # "urn:...:enterprise:2.0:User:department" reads as "department" in a sentence.
    return path.rpartition(":")[2] if path[:4].lower() == "urn:" else path


# -- group members ------------------------------------------------------------------------


def member_filter_path(member_id: str) -> str:
    """The PATCH path removing one member: ``members[value eq "<id>"]``."""
    # Interim until the filter builder lands: the value as a JSON string literal.
    return f"members[value eq {json.dumps(member_id, ensure_ascii=False)}]"


def chunks(values: Sequence[str], size: int) -> list[Sequence[str]]:
    """``values`` in consecutive slices of at most ``size``."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def add_members_patch(member_ids: Sequence[str]) -> list[PatchOperation]:
    """One ``add`` of several members (RFC 7644 §3.5.2.1)."""
    return [PatchOperation(op="add", path="members", value=[{"value": mid} for mid in member_ids])]


def remove_members_patch(member_ids: Sequence[str]) -> list[PatchOperation]:
    """One ``remove`` per member, each with a value filter (RFC 7644 §3.5.2.2)."""
    return [PatchOperation(op="remove", path=member_filter_path(mid)) for mid in member_ids]


def without_members(group: Group) -> Group:
    """``group`` with ``members`` unset, to compare its other attributes."""
    return attrs.evolve(group, members=None) if group.members is not None else group
