"""Bulk (RFC 7644 §3.7): each operation run as a request of its own, ``bulkId:`` resolved.

Rules:

- At most ``max_operations`` operations (413 otherwise); each must POST to
  ``/Users`` or ``/Groups`` (with a ``bulkId``), or PUT, PATCH or DELETE one of them.
- An operation naming a ``bulkId:`` not created yet waits for the operation that
  creates it, wherever it is in the request; references that never resolve
  (unknown, failed or circular) are 409 each.
- Each operation is dispatched like a request of its own, without drawing a fault;
  its answer becomes its result (status, ``location``, ``version``, or the error).
- ``failOnErrors`` stops at that many errors; the rest are left out of the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA, BulkOperation, BulkRequest
from ._routes import Context, route_of
from ._validation import parse_json, read_message
from ._wire import ScimRequestError, WireRequest, dump_json, json_response, problem_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._routes import Route
    from ._wire import WireResponse

__all__ = ["answer_bulk"]


def answer_bulk(
    context: Context,
    *,
    dispatch: Callable[[str, Route, Context], WireResponse],
    base_path: str,
    max_operations: int,
) -> WireResponse:
    """Answer a ``POST /Bulk``, each operation answered by ``dispatch``."""
    bulk: BulkRequest = read_message(
        parse_json(context.request.body), BulkRequest, BULK_REQUEST_SCHEMA
    )
    operations = bulk.operations
    if len(operations) > max_operations:
        raise ScimRequestError(
            413,
            f"the bulk request has {len(operations)} operations; this server accepts at "
            f"most {max_operations}",
        )
    created: dict[str, str] = {}
    results: list[dict[str, Any] | None] = [None] * len(operations)
    errors = 0
    pending = list(range(len(operations)))
    while pending:
        deferred = []
        for index in pending:
            operation = operations[index]
            if any(ref not in created for ref in _bulk_references(operation)):
                deferred.append(index)  # its bulkId may be created later in the request
                continue
            result = _bulk_operation(
                operation, created, context, dispatch=dispatch, base_path=base_path
            )
            results[index] = result
            if int(result["status"]) >= 400:
                errors += 1
                if bulk.fail_on_errors is not None and errors >= bulk.fail_on_errors:
                    deferred = []
                    break
        if len(deferred) == len(pending):
            for index in deferred:
                unknown = sorted(set(_bulk_references(operations[index])) - set(created))
                problem = ScimRequestError(
                    409,
                    f"bulkId {', '.join(unknown)} is not created by any operation that "
                    "succeeded (or the references are circular)",
                )
                results[index] = _bulk_result(operations[index], problem)
            break
        pending = deferred
    return json_response(
        200,
        {
            "schemas": [BULK_RESPONSE_SCHEMA],
            "Operations": [result for result in results if result is not None],
        },
    )


def _bulk_operation(
    operation: BulkOperation,
    created: dict[str, str],
    context: Context,
    *,
    dispatch: Callable[[str, Route, Context], WireResponse],
    base_path: str,
) -> dict[str, Any]:
    method = operation.method.upper()
    origin = context.request.origin
    try:
        path = _resolve_bulk_ids(operation.path, created)
        route = route_of(path)
        if route.kind is None or route.endpoint == ".search" or method == "GET":
            raise ScimRequestError(
                400,
                f"a bulk operation must POST to /Users or /Groups, or PUT, PATCH or DELETE "
                f"one of them; got {method} {operation.path}",
                "invalidValue",
            )
        if method not in route.allowed:
            raise ScimRequestError(405, f"{method} is not allowed on {route.template}")
        if method == "POST" and not operation.bulk_id:
            raise ScimRequestError(400, "a bulk POST needs a bulkId", "invalidValue")
        body = b""
        if method != "DELETE":
            body = dump_json(_resolve_bulk_ids(operation.data, created))
        headers = {"if-match": operation.version} if operation.version else {}
        request = WireRequest(
            method=method,
            path=base_path + path,
            headers=headers,
            body=body,
            origin=origin,
        )
        response = dispatch(
            method, route, Context(request=request, params={}, quirks=context.quirks)
        )
    except ScimRequestError as problem:
        return _bulk_result(operation, problem)
    result: dict[str, Any] = {"method": method, "status": str(response.status)}
    if operation.bulk_id:
        result["bulkId"] = operation.bulk_id
    location = response.header("Location")
    version = response.header("ETag")
    if method == "POST" and location and operation.bulk_id:
        created[operation.bulk_id] = location.rsplit("/", 1)[-1]
    if location is None and route.item is not None and method != "DELETE":
        location = f"{origin}{base_path}{path}"
    if location:
        result["location"] = location
    if version:
        result["version"] = version
    return result


def _bulk_result(operation: BulkOperation, problem: ScimRequestError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "method": operation.method.upper(),
        "status": str(problem.status),
        "response": problem_body(problem),
    }
    if operation.bulk_id:
        result["bulkId"] = operation.bulk_id
    return result


_BULK_PREFIX = "bulkid:"


def _bulk_references(operation: BulkOperation) -> list[str]:
    """The ``bulkId:`` references in an operation's path and data."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.extend(
                part[len(_BULK_PREFIX) :]
                for part in value.split("/")
                if part[: len(_BULK_PREFIX)].lower() == _BULK_PREFIX
            )
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(operation.path)
    walk(operation.data)
    return found


def _resolve_bulk_ids(value: Any, created: dict[str, str]) -> Any:
    """``value`` with each ``bulkId:x`` replaced by the id the operation with bulkId x got."""
    if isinstance(value, str):
        if _BULK_PREFIX not in value.lower():
            return value
        parts = value.split("/")
        return "/".join(
            created.get(p[len(_BULK_PREFIX) :], p)
            if p[: len(_BULK_PREFIX)].lower() == _BULK_PREFIX
            else p
            for p in parts
        )
    if isinstance(value, dict):
        return {k: _resolve_bulk_ids(v, created) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_bulk_ids(v, created) for v in value]
    return value
