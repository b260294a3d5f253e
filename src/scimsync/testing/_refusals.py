"""Writes a quirky target refuses although it announces them: PATCH refusals, locked writes.

Each check raises the :class:`~._wire.ScimRequestError` the target answers with, before
anything is applied, or returns. The locked-write draw keeps its own seeded random
state (:class:`LockedWrites`), restarted whenever the server's quirks are assigned, so
the same seed and the same writes in the same order lock the same writes.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..errors import PatchError
from ..patch import parse_path
from ._wire import ScimRequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..models import PatchOperation
    from ..schema import SchemaTable
    from ._quirks import Quirks

__all__ = ["LockedWrites", "check_patch_allowed", "check_patch_operations"]

# What the seen provider answers for a PATCH add it did not implement: no schemas, no
# scimType, an empty detail and the status as a number.
_ADD_REFUSED_BODY: dict[str, Any] = {"detail": "", "status": 501}
_LOCKED_BODY: dict[str, Any] = {"detail": "database is locked"}


def check_patch_allowed(quirks: Quirks, resource_type: str) -> None:
    """Refuse every PATCH of ``resource_type`` when the quirks say so (501)."""
    if not quirks.patch_supported:
        raise ScimRequestError(501, "PATCH is not supported by this service provider")
    if resource_type in quirks.patch_refused_for:
        raise ScimRequestError(501, f"PATCH is not supported for {resource_type} resources")


def check_patch_operations(
    quirks: Quirks,
    resource_type: str,
    operations: Sequence[PatchOperation],
    table: SchemaTable,
) -> None:
    """Refuse the whole request when one operation is an ``add`` or ``replace`` the
    quirks refuse for ``resource_type``; nothing is applied then."""
    refuse_add = resource_type in quirks.patch_add_refused_for
    refuse_replace = resource_type in quirks.patch_replace_refused_for
    for operation in operations:
        if operation.op == "replace" and refuse_replace:
            status = quirks.patch_replace_refused_status
            raise ScimRequestError(
                status, f'PATCH "replace" is not supported for {resource_type}; use "add"'
            )
        if operation.op == "add" and refuse_add and _sets_singular(operation, resource_type, table):
            raise ScimRequestError(501, "", body=_ADD_REFUSED_BODY)


def _sets_singular(operation: PatchOperation, resource_type: str, table: SchemaTable) -> bool:
    """True unless the ``add`` only adds values to multi-valued attributes.

    It does when its path names a multi-valued attribute itself (``emails``,
    ``members``: no value filter, no sub-attribute), or when it has no path and every
    attribute of its value is multi-valued. Paths and attributes the schema does not
    declare set nothing here: the RFC error for them comes later.
    """
    if operation.path is None:
        value = operation.value
        if not isinstance(value, dict):
            return False
        specs = [table.resolve(resource_type, key) for key in value]
        return any(spec is not None and not spec.multi_valued for spec in specs)
    try:
        path = parse_path(operation.path)
    except PatchError:
        return False
    spec = table.resolve(resource_type, str(path.attribute))
    if spec is None:
        return False
    whole = path.value_filter is None and path.attribute.sub is None
    return not (whole and spec.multi_valued)


class LockedWrites:
    """The seeded draw behind ``Quirks.locked_writes_rate`` (call under the service lock)."""

    def __init__(self, quirks: Quirks) -> None:
        self.rate = quirks.locked_writes_rate
        self._random = random.Random(quirks.locked_writes_seed)  # noqa: S311 - reproducible

    def check(self) -> None:
        """Raise the target's 500 "database is locked" for a write that draws it."""
        if self.rate and self._random.random() < self.rate:
            raise ScimRequestError(500, _LOCKED_BODY["detail"], body=_LOCKED_BODY)
