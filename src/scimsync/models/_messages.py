"""SCIM protocol messages of RFC 7644: list, search, PATCH, bulk and error bodies."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import attrs

from ._base import (
    BULK_REQUEST_SCHEMA,
    BULK_RESPONSE_SCHEMA,
    ERROR_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    to_tuple_or_empty,
)

__all__ = [
    "BulkOperation",
    "BulkOperationResult",
    "BulkRequest",
    "BulkResponse",
    "Error",
    "ListResponse",
    "PatchOp",
    "PatchOperation",
    "SearchRequest",
]

T = TypeVar("T")

_PATCH_OPS = frozenset({"add", "remove", "replace"})


@attrs.frozen(kw_only=True)
class ListResponse(Generic[T]):
    """A page of a listing or search (RFC 7644 §3.4.2).

    Parameterise it to get typed resources: ``from_scim(data, ListResponse[User])``.
    """

    schema_urn: ClassVar[str] = LIST_RESPONSE_SCHEMA

    total_results: int
    items_per_page: int | None = None
    start_index: int | None = None
    resources: tuple[T, ...] = attrs.field(default=(), converter=to_tuple_or_empty)


@attrs.frozen(kw_only=True)
class SearchRequest:
    """The body of a POST ``/.search`` (RFC 7644 §3.4.3)."""

    schema_urn: ClassVar[str] = SEARCH_REQUEST_SCHEMA

    attributes: tuple[str, ...] | None = None
    excluded_attributes: tuple[str, ...] | None = None
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    start_index: int | None = None
    count: int | None = None


def _normalise_op(op: str) -> str:
    # Some providers send "Replace" or "ADD"; RFC 7644 §3.5.2 names them in lower case.
    lowered = op.lower()
    if lowered not in _PATCH_OPS:
        raise ValueError(f"PATCH op must be one of add, remove, replace; got {op!r}")
    return lowered


@attrs.frozen(kw_only=True)
class PatchOperation:
    """One operation of a PATCH request (RFC 7644 §3.5.2). ``op`` is stored lower-case."""

    op: str = attrs.field(converter=_normalise_op)
    path: str | None = None
    value: Any = None


@attrs.frozen(kw_only=True)
class PatchOp:
    """The body of a PATCH request: a list of :class:`PatchOperation`."""

    schema_urn: ClassVar[str] = PATCH_OP_SCHEMA

    operations: tuple[PatchOperation, ...] = attrs.field(converter=to_tuple_or_empty)


@attrs.frozen(kw_only=True)
class Error:
    """A SCIM error body (RFC 7644 §3.12). ``status`` is the HTTP status as an int."""

    schema_urn: ClassVar[str] = ERROR_SCHEMA

    status: int
    scim_type: str | None = None
    detail: str | None = None


@attrs.frozen(kw_only=True)
class BulkOperation:
    """One operation of a bulk request (RFC 7644 §3.7)."""

    method: str
    path: str
    bulk_id: str | None = None
    version: str | None = None
    data: Any = None


@attrs.frozen(kw_only=True)
class BulkRequest:
    """The body of a POST ``/Bulk`` (RFC 7644 §3.7)."""

    schema_urn: ClassVar[str] = BULK_REQUEST_SCHEMA

    operations: tuple[BulkOperation, ...] = attrs.field(converter=to_tuple_or_empty)
    fail_on_errors: int | None = None


@attrs.frozen(kw_only=True)
class BulkOperationResult:
    """The outcome of one bulk operation: ``status`` is the HTTP status as an int."""

    method: str
    status: int
    bulk_id: str | None = None
    version: str | None = None
    location: str | None = None
    response: Any = None


@attrs.frozen(kw_only=True)
class BulkResponse:
    """The answer to a bulk request."""

    schema_urn: ClassVar[str] = BULK_RESPONSE_SCHEMA

    operations: tuple[BulkOperationResult, ...] = attrs.field(converter=to_tuple_or_empty)
