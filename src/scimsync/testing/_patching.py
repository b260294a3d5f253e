"""PATCH (RFC 7644 §3.5.2): every operation applied or none, the result checked like a PUT.

In order: the quirks that refuse PATCH outright (``_refusals``), the resource and
its version, the message, the quirks that refuse some operations, the cap on
members per operation (413), then the operations, applied with
:func:`scimsync.patch.apply_patch` on the stored resource (``schemas`` inside an
extension's value are dropped first: the URN says it). A failing operation is the
RFC error it raises; a result that is no valid resource is 400 ``invalidValue``. It
is saved as a PUT would be (:meth:`~._resources.Resources.save`).

With ``Quirks.duplicate_members_on_add``, an ``add`` of members a group holds
already appends them again, as some providers do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ..errors import PatchError
from ..models import PATCH_OP_SCHEMA, PatchOp
from ..patch import apply_patch, parse_path
from ._refusals import check_patch_allowed, check_patch_operations
from ._store import GROUP, member_ids
from ._validation import (
    extension_value,
    parse_json,
    read_message,
    read_resource,
    without_extension_schemas,
)
from ._wire import ScimRequestError

if TYPE_CHECKING:
    from ..models import PatchOperation
    from ..schema import SchemaTable
    from ._resources import Resources
    from ._routes import Context
    from ._validation import Kind
    from ._wire import WireResponse

__all__ = ["answer_patch"]

Resource = dict[str, Any]


def answer_patch(
    resources: Resources, kind: Kind, resource_id: str, context: Context
) -> WireResponse:
    """PATCH one resource of ``resources``."""
    quirks = context.quirks
    table = resources.table
    check_patch_allowed(quirks, kind.name)
    current = resources.existing(kind, resource_id)
    resources.check_version(current, context.request.headers.get("if-match"), quirks)
    patch: PatchOp = read_message(parse_json(context.request.body), PatchOp, PATCH_OP_SCHEMA)
    check_patch_operations(quirks, kind.name, patch.operations, table)
    cap = quirks.max_members_per_patch_operation
    if kind.name == GROUP and cap is not None:
        _check_member_cap(patch, cap)
    extensions = table.extension_urns(kind.name)
    operations = [_without_extension_schemas(op, extensions) for op in patch.operations]
    try:
        if kind.name == GROUP and quirks.duplicate_members_on_add:
            patched = _apply_appending_members(current, operations, table)
        else:
            patched = apply_patch(current, operations, schema=table, resource_type=kind.name)
    except PatchError as exc:
        raise ScimRequestError(exc.status, exc.detail, exc.scim_type) from None
    try:
        resource = read_resource(patched, kind, table)
    except ScimRequestError as problem:
        # The operations applied, but what they made is not a valid resource.
        raise ScimRequestError(
            400, f"the patched {kind.name} is invalid: {problem.detail}", "invalidValue"
        ) from None
    stored = resources.save(kind, current, resource, quirks)
    return resources.renderer.resource_response(200, kind, stored, context)


def _apply_appending_members(
    group: Resource, operations: list[PatchOperation], table: SchemaTable
) -> Resource:
    """Apply ``operations`` one by one, each ``add`` appending members already there."""
    patched = group
    for operation in operations:
        present = set(member_ids(patched))
        patched = apply_patch(patched, [operation], schema=table, resource_type=GROUP)
        if operation.op == "add":
            again = [m for m in _added_members(operation) if m.get("value") in present]
            if again:
                patched = {**patched, "members": [*patched.get("members", ()), *again]}
    return patched


def _without_extension_schemas(
    operation: PatchOperation, extensions: tuple[str, ...]
) -> PatchOperation:
    """The operation without ``schemas`` inside the extension objects of its value."""
    value = operation.value
    if not isinstance(value, dict):
        return operation
    if operation.path is None:
        return attrs.evolve(operation, value=without_extension_schemas(value, extensions))
    if operation.path.lower() in {urn.lower() for urn in extensions}:
        return attrs.evolve(operation, value=extension_value(value))
    return operation


def _members_in(operation: PatchOperation) -> int:
    """How many members a PATCH operation on a group carries."""
    value = operation.value
    if operation.path is None:
        members = value.get("members") if isinstance(value, dict) else None
        return len(members) if isinstance(members, list) else 0
    try:
        path = parse_path(operation.path)
    except PatchError:
        return 0  # apply_patch reports the bad path
    if path.attribute.name.lower() != "members":
        return 0
    if isinstance(value, list):
        return len(value)
    return 1


def _added_members(operation: PatchOperation) -> list[dict[str, Any]]:
    """The members an ``add`` operation on a group names (none for other paths)."""
    value = operation.value
    if operation.path is None:
        value = value.get("members") if isinstance(value, dict) else None
    elif operation.path.strip().lower().rsplit(":", 1)[-1] != "members":
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _check_member_cap(patch: PatchOp, cap: int) -> None:
    for index, operation in enumerate(patch.operations):
        count = _members_in(operation)
        if count > cap:
            raise ScimRequestError(
                413,
                f"Operations[{index}] carries {count} members; this service provider takes "
                f"at most {cap} per operation",
            )
