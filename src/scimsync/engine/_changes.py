"""What changed between what a target holds and what the source wants, as writes.

Attribute changes come from :func:`scimsync.patch.diff` (minimal PATCH operations);
this module turns them into the attribute-level :class:`PlannedChange` values people review,
builds full bodies for targets without PATCH, and writes group member changes as
explicit, chunked add/remove operations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..codec import to_scim
from ..filter import AttrPath, attr
from ..filter._eval import lookup
from ..models import Group, PatchOperation, Resource, scim_name
from ..patch import AttributeChange, Path
from ..patch._diff import (
    _json,
    attribute_changes,
    cleared_values,
    operations,
    primary_of,
    walk,
)
from ..patch._identity import identity, identity_fields
from ..patch._scope import scope_key
from ..schema import CORE_SCHEMAS, split_urn
from ._values import PlannedChange

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..patch._managed import Clearing
    from ..patch._scope import ElementScope
    from ..schema import AttributeSpec, SchemaTable
    from ._policy import Policy
    from ._values import Operation

R = TypeVar("R", bound=Resource)


def attribute_patch(
    actual: Resource,
    desired: Resource,
    resource_type: str,
    policy: Policy,
    clearing: Clearing | None = None,
    *,
    scopes: tuple[ElementScope, ...] = (),
    fast: bool = True,
) -> tuple[list[PatchOperation], tuple[PlannedChange, ...], tuple[str, ...]]:
    """The PATCH operations turning ``actual`` into ``desired``, the changes to review,
    and the paths cleared (managed attributes ``desired`` leaves unset).

    What ``desired`` sets is compared (:func:`scimsync.patch.diff`), a scoped
    multi-valued attribute only on the values its scope selects (``scopes``); with
    ``clearing`` (the compiled managed attributes), a managed value ``actual`` holds
    and ``desired`` leaves unset is removed, after the other operations. One rule is
    the engine's own: a value of a case-insensitive attribute (``caseExact: false``,
    ``userName`` say) that differs only in case is no change. Targets that store such
    values folded would otherwise be updated on every cycle, forever. ``fast=False``
    compares attribute by attribute without the shortcuts (the answer is the same).
    """
    schema = policy.schema
    walked = walk(actual, desired, schema, scopes, fast=fast)
    ops = operations(walked)
    removals = cleared_values(clearing, actual, desired, fast=fast)
    if not ops and not removals:
        return ops, (), ()
    changed = attribute_changes(walked)
    case_only = {
        change.path
        for change in changed
        if type(change.old) is str
        and type(change.new) is str
        and change.old.casefold() == change.new.casefold()
        and not schema.case_exact(resource_type, attribute_path(change.path))
    }
    if case_only:
        ops = [op for op in ops if op.path not in case_only]
        changed = [change for change in changed if change.path not in case_only]
    ops.extend(PatchOperation(op="remove", path=removal.path) for removal in removals)
    changed.extend(AttributeChange(removal.path, removal.old, None) for removal in removals)
    changes = tuple(
        PlannedChange(path=change.path, sensitive=True)
        if is_sensitive(change.path, resource_type, policy)
        else PlannedChange(path=change.path, old=change.old, new=change.new)
        for change in changed
    )
    return ops, changes, tuple(removal.path for removal in removals)


def overlay(
    actual: R,
    desired: Resource,
    scopes: tuple[ElementScope, ...] = (),
    schema: SchemaTable | None = None,
) -> R:
    """``actual`` with every attribute ``desired`` sets written over it.

    Singular complex attributes (``name``, the enterprise extension, ``manager``) merge
    sub-attribute by sub-attribute, extensions URN by URN, so what the mapping does not
    manage survives a PUT. Multi-valued attributes are replaced whole, unless
    ``scopes`` give them an element scope: then only the values it selects are
    replaced (see :func:`merge_values`), and the others stay.
    """
    by_key = {scope.key: scope for scope in scopes}
    resource_type = actual.resource_type_name
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
                    merged[key] = _merge_object(
                        before,
                        value,
                        key,
                        scopes=by_key,
                        resource_type=resource_type,
                        schema=schema,
                    )
                elif attrs.has(type(before)) and type(before) is type(value):
                    merged[key] = _merge_complex(before, value)
                else:
                    merged[key] = value
            changes[name] = merged
        elif old is not None and attrs.has(type(new)) and type(old) is type(new):
            changes[name] = _merge_complex(old, new)
        else:
            scope = by_key.get(scope_key(None, scim_name(name))) if by_key else None
            if scope is not None and isinstance(old, tuple) and isinstance(new, tuple):
                spec = _spec(schema, resource_type, scim_name(name))
                changes[name] = tuple(merge_values(old, new, scope.selects, spec))
            else:
                changes[name] = new
    return attrs.evolve(actual, **changes) if changes else actual


def _spec(schema: SchemaTable | None, resource_type: str, path: str) -> AttributeSpec | None:
    return (schema or CORE_SCHEMAS).resolve(resource_type, path)


def _merge_object(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    urn: str,
    *,
    scopes: Mapping[tuple[str, str], ElementScope],
    resource_type: str,
    schema: SchemaTable | None,
) -> dict[str, Any]:
    """An extension held as JSON: ``new`` over ``old``, scoped lists merged by value."""
    out = {**old, **new}
    if not scopes:
        return out
    for key, value in new.items():
        scope = scopes.get(scope_key(urn, key))
        before = lookup(old, key, key.lower())
        if scope is not None and isinstance(before, list) and isinstance(value, list):
            spec = _spec(schema, resource_type, f"{urn}:{key}")
            out[key] = merge_values(before, value, scope.selects, spec)
    return out


def merge_values(
    old: Sequence[Any],
    new: Sequence[Any],
    selects: Callable[[Any], bool],
    spec: AttributeSpec | None,
) -> list[Any]:
    """The values of a scoped multi-valued attribute a PUT sends: ``old`` with the ones
    the scope selects replaced by ``new``.

    A value of ``new`` that ``old`` holds (same identity) is merged into it, so the
    parts the source does not set (``display``) stay; values the scope selects and
    ``new`` no longer lists go; the others stay as they are. When a value of ``new``
    is primary, the others that were primary stop being so: what a PATCH setting it
    makes the target do (RFC 7644 §3.5.2), so both ways end in the same state.
    """
    fields = identity_fields(spec) if spec is not None else ()

    def key(value: Any) -> tuple[Any, ...] | None:
        return identity(fields, _json(value)) if fields else None

    wanted: dict[tuple[Any, ...], Any] = {}
    for value in new:
        found = key(value)
        if found is not None:
            wanted.setdefault(found, value)
    out: list[tuple[Any, bool]] = []  # (value, primary because the source says so)
    placed: set[tuple[Any, ...]] = set()
    for before in old:
        found = key(before)
        if found is not None and found in wanted:
            if found not in placed:  # a value held twice is kept once
                placed.add(found)
                value = wanted[found]
                out.append((_merge_value(before, value), primary_of(value) is True))
        elif not selects(before) and before not in new:
            out.append((before, False))
    for value in new:
        found = key(value)
        if found is None or found not in placed:
            if found is not None:
                placed.add(found)
            out.append((value, primary_of(value) is True))
    if any(source_primary for _, source_primary in out):
        return [
            _not_primary(value) if not source_primary and primary_of(value) is True else value
            for value, source_primary in out
        ]
    return [value for value, _ in out]


def _merge_value(old: Any, new: Any) -> Any:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return {**old, **{k: v for k, v in new.items() if v is not None}}
    if attrs.has(type(old)) and type(old) is type(new):
        return _merge_complex(old, new)
    return new


def _not_primary(value: Any) -> Any:
    if isinstance(value, Mapping):
        key = next((k for k in value if k.lower() == "primary"), "primary")
        return {**value, key: False}
    return attrs.evolve(value, primary=False)


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


def describe_resource(
    resource: Resource, resource_type: str, policy: Policy
) -> tuple[PlannedChange, ...]:
    """Every attribute a new resource sets, as changes from nothing (sensitive ones masked)."""
    data = to_scim(resource, request=True)
    return tuple(
        PlannedChange(path=path, sensitive=True)
        if is_sensitive(path, resource_type, policy)
        else PlannedChange(path=path, new=value)
        for path, value in data.items()
        if path != "schemas"
    )


def attribute_path(path: str) -> str:
    """A PATCH path without its value filter: ``emails[type eq "work"].value`` is
    ``emails.value``, what the schema table resolves."""
    bracket = path.find("[")
    if bracket == -1:
        return path
    close = path.rfind("]")
    return path[:bracket] + (path[close + 1 :] if close != -1 else "")


def missing_required(resource: Resource, resource_type: str, schema: SchemaTable) -> list[str]:
    """The required attributes (per the schema) that ``resource`` leaves unset."""
    data = _folded(to_scim(resource, request=True))
    missing = []
    for urn, spec in schema.attributes(resource_type):
        if spec.required and not spec.read_only:
            container = data if urn is None else _folded(data.get(urn.lower()))
            if container.get(spec.name.lower()) in (None, "", [], {}):
                missing.append(spec.name if urn is None else f"{urn}:{spec.name}")
    return missing


def _folded(data: object) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        return {}
    return {str(key).lower(): value for key, value in data.items()}


def value_at(data: Mapping[str, Any], path: str, urns: Sequence[str]) -> Any:
    """The value at attribute ``path`` of a SCIM JSON object, or None.

    ``path`` is dotted and may be URN-qualified (one of ``urns`` alone names a whole
    extension); names compare case-insensitively, as RFC 7643 §2.1 says.
    """
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


def is_sensitive(path: str, resource_type: str, policy: Policy) -> bool:
    """True when values at ``path`` must not be shown (writeOnly, never returned, or named).

    A value filter counts as its attribute: ``emails[type eq "work"].value`` is
    ``emails.value``.
    """
    path = attribute_path(path)
    folded = path.lower()
    if any(
        folded == p.lower() or folded.startswith(p.lower() + ".") for p in policy.sensitive_paths
    ):
        return True
    spec = policy.schema.resolve(resource_type, path)
    return spec is not None and spec.write_only


def summarise(changes: Sequence[PlannedChange], cleared: Collection[str] = ()) -> str:
    """``"title changed"``, ``"title and emails changed"``, ``"a, b and 3 more changed"``;
    the changes whose path is in ``cleared`` as ``"title cleared in source"``."""
    if cleared:
        kept = [change for change in changes if change.path not in cleared]
        gone = [change for change in changes if change.path in cleared]
        parts = [_names(kept, "changed")] if kept else []
        parts.append(_names(gone, "cleared in source"))
        return "; ".join(parts)
    return _names(changes, "changed")


def _names(changes: Sequence[PlannedChange], verb: str) -> str:
    names = list(dict.fromkeys(_short(change.path) for change in changes))
    if not names:
        return "no attribute changed"
    if len(names) == 1:
        return f"{names[0]} {verb}"
    if len(names) <= 3:
        return f"{', '.join(names[:-1])} and {names[-1]} {verb}"
    return f"{names[0]}, {names[1]} and {len(names) - 2} more {verb}"


def _short(path: str) -> str:
    # In a sentence, 'emails[type eq "work"].value' is "emails" and
    # "urn:...:enterprise:2.0:User:department" is "department".
    head = path.split("[", 1)[0]
    if head[:4].lower() == "urn:":
        head = head.rpartition(":")[2]
    return head


# -- group members ------------------------------------------------------------------------


def member_filter_path(member_id: str) -> str:
    """The PATCH path removing one member: ``members[value eq "<id>"]``, built safely."""
    return str(Path(AttrPath("members"), attr("value").eq(member_id)))


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


# -- whole bodies as PATCH ----------------------------------------------------------------


def body_patch(op: Operation) -> tuple[PatchOperation, ...]:
    """See :meth:`Operation.body_patch`."""
    if op.body is None or op.kind == "create":
        return ()
    data = to_scim(op.body)
    urns = data.get("schemas", ())
    out: dict[str, PatchOperation] = {}
    for change in op.changes:
        path = change.path
        bracket = path.find("[")
        if bracket != -1:
            top = path[:bracket]
            value = value_at(data, top, urns)
            if value is None:
                out.setdefault(path, PatchOperation(op="remove", path=path))
            else:
                out[top] = PatchOperation(op="replace", path=top, value=value)
            continue
        value = value_at(data, path, urns)
        if value is None:
            out[path] = PatchOperation(op="remove", path=path)
        else:
            out[path] = PatchOperation(op="replace", path=path, value=value)
    return tuple(out.values())
