"""Everything :class:`ScimClient` and :class:`AsyncScimClient` share: no I/O here.

Each operation is prepared as a :class:`PreparedCall` (method, URL, body, how to read
the answer) by a pure ``_prepare_*`` method; the I/O classes only send it, with
retries, and hand the response back to :meth:`PreparedCall.result`, which checks the
status and turns the body into models or errors. Rules kept here:

- resources go out with :func:`scimsync.to_scim` (``request=True``) and come back
  with :func:`scimsync.from_scim`; other resource types are plain ``dict`` objects
  with an explicit endpoint;
- an answer that is not JSON, or JSON of the wrong shape, is an
  :class:`~scimsync.errors.InvalidResponseError`, never "empty";
- a POST or PATCH that may have taken effect but did not say so (a 5xx, a timeout
  after sending) is an :class:`~scimsync.errors.OutcomeUnknownError`;
- URLs, logs and hook details carry no header and no body, so never a token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import attrs
import httpx

from .._urls import require_safe_url
from ..codec import from_scim, to_scim
from ..errors import (
    ConfigurationError,
    InvalidResponseError,
    OutcomeUnknownError,
    ResourceValidationError,
    ScimSyncError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    error_for_status,
    excerpt,
)
from ..filter import AttrPath, Filter, FilterValue, attr, parse_filter
from ..models import (
    BULK_REQUEST_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    BulkOperation,
    BulkResponse,
    ListResponse,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    Schema,
    ServiceProviderConfig,
)
from ..retry import RetryPolicy, parse_retry_after
from ._capabilities import Capabilities

if TYPE_CHECKING:
    from ..retry import RetryDetails
    from ._ratelimit import RateLimiter

__all__ = ["BaseScimClient", "PreparedCall", "RequestDetails"]

logger = logging.getLogger("scimsync.client")

R = TypeVar("R", bound=Resource)
T = TypeVar("T")

#: Default timeouts: generous for a slow target, short to notice a dead one.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

#: Page size of listings when the caller does not choose one.
DEFAULT_PAGE_SIZE = 100

_ACCEPT = "application/scim+json, application/json;q=0.9"
_CONTENT_TYPE = "application/scim+json"

# Failures that happen before a byte of the request leaves: retrying cannot duplicate.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)

# 5xx answers that say the request was refused as a whole, so nothing was applied:
# 501 Not Implemented (a target without PATCH), 505 HTTP Version Not Supported.
_REFUSED_5XX = frozenset({501, 505})

_REDACTED = "**********"


@attrs.frozen(kw_only=True)
class RequestDetails:
    """What an ``on_request`` hook receives after each attempt: no headers, no body.

    ``url`` has no query string. ``status`` is set when an answer came back;
    ``error`` names the exception (``"ConnectError"``) when none did.
    """

    method: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    elapsed_seconds: float


def _json_bytes(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _is_password(name: object) -> bool:
    # "password", "urn:...:User:password" (a PATCH path): the attribute, however named.
    return isinstance(name, str) and name.lower().rsplit(":", 1)[-1] == "password"


def _without_secrets(payload: object) -> object:
    """``payload`` with every password replaced, at any depth and in PATCH operations.

    Kept on OutcomeUnknownError for the caller's lookup: a password need not be.
    """
    if isinstance(payload, Mapping):
        if _is_password(payload.get("path")) and "value" in payload:
            return {**payload, "value": _REDACTED}
        return {
            key: _REDACTED if _is_password(key) else _without_secrets(value)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [_without_secrets(item) for item in payload]
    return payload


@attrs.frozen(kw_only=True)
class PreparedCall(Generic[T]):
    """One SCIM operation ready to send: a pure value, sent once per attempt.

    ``reader`` turns the decoded JSON body into the result; with ``empty_ok`` an
    empty body (``204 No Content``) gives ``reader(None)``. ``idempotent`` is False
    for POST and PATCH: their lost answers are outcome-unknown, never retried.
    """

    method: str
    url: str
    reader: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    payload: Any = None
    body: bytes | None = None
    if_match: str | None = None
    idempotent: bool = True
    empty_ok: bool = False
    ignore_body: bool = False

    def result(self, response: httpx.Response) -> T:
        """Check ``response`` and read it; raise the matching project error otherwise."""
        status = response.status_code
        if not 200 <= status < 300:
            raise self.error(response)
        content = response.content
        if self.ignore_body:
            return self.reader(None)
        if not content.strip():
            if self.empty_ok:
                return self.reader(None)
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with an empty body"
            )
        try:
            data = json.loads(content)
        except ValueError:
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with a body that is not JSON"
                f" ({response.headers.get('Content-Type', 'no content type')})",
                body_excerpt=excerpt(content),
            ) from None
        try:
            return self.reader(data)
        except ResourceValidationError as exc:
            raise InvalidResponseError(
                f"{self.method} {self.url} answered {status} with an invalid body: {exc}"
            ) from exc

    def error(self, response: httpx.Response) -> ScimSyncError:
        """The error for a non-2xx ``response`` (see the module docstring)."""
        status = response.status_code
        content = response.content
        scim_type = detail = None
        try:
            data = json.loads(content) if content.strip() else None
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            raw_type = data.get("scimType")
            raw_detail = data.get("detail")
            scim_type = raw_type if isinstance(raw_type, str) else None
            detail = raw_detail if isinstance(raw_detail, str) else None
        error = error_for_status(status)(
            status,
            scim_type=scim_type,
            detail=detail,
            method=self.method,
            url=self.url,
            body_excerpt="" if detail else excerpt(content),
        )
        if isinstance(error, (TooManyRequestsError, ServerError)):
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if isinstance(error, ServerError) and not self.idempotent and status not in _REFUSED_5XX:
            return self.outcome_unknown(f"answered {status}", cause=error)
        return error

    def outcome_unknown(self, what: str, *, cause: BaseException) -> OutcomeUnknownError:
        """The error for a write that may or may not have happened."""
        unknown = OutcomeUnknownError(
            f"{self.method} {self.url} {what}: it may or may not have taken effect; "
            "look the resource up before trying again",
            method=self.method,
            url=self.url,
            payload=_without_secrets(self.payload),
        )
        unknown.__cause__ = cause
        return unknown


# -- readers: decoded JSON -> result ---------------------------------------------------------


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResourceValidationError(
            "invalid resource", [f"$: expected an object, got {data!r:.60}"]
        )
    return data


def _model_reader(cls: type[R]) -> Callable[[Any], R]:
    def read(data: Any) -> R:
        return from_scim(_object(data), cls)

    return read


def _optional(reader: Callable[[Any], T]) -> Callable[[Any], T | None]:
    def read(data: Any) -> T | None:
        return None if data is None else reader(data)

    return read


def _ignore(_: Any) -> None:
    return None


def _page_reader(item: Any) -> Callable[[Any], ListResponse[Any]]:
    def read(data: Any) -> ListResponse[Any]:
        page = from_scim(_object(data), ListResponse[item])
        if page.total_results > 0 and not any(
            isinstance(key, str) and key.lower() == "resources" for key in data
        ):
            raise ResourceValidationError(
                "invalid ListResponse",
                [f"$.Resources: missing while totalResults is {page.total_results}"],
            )
        return page

    return read


def _listed_reader(cls: type[T]) -> Callable[[Any], tuple[T, ...]]:
    # Discovery endpoints answer a ListResponse, or (some targets) a bare JSON list.
    def read(data: Any) -> tuple[T, ...]:
        if isinstance(data, list):
            return tuple(from_scim(_object(item), cls) for item in data)
        return tuple(_page_reader(cls)(data).resources)

    return read


# -- the base ----------------------------------------------------------------------------------


def _attribute_list(names: Sequence[str] | None) -> str | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    return ",".join(names)


def _version_of(resource: object) -> str | None:
    if isinstance(resource, Resource):
        return resource.meta.version if resource.meta is not None else None
    if isinstance(resource, Mapping):
        meta = resource.get("meta")
        version = meta.get("version") if isinstance(meta, Mapping) else None
        return version if isinstance(version, str) else None
    return None


def _filter_text(filter: Filter | str | None) -> str | None:
    # Text from the caller is checked here, so a typo fails before any request leaves.
    if filter is None or isinstance(filter, Filter):
        return None if filter is None else str(filter)
    parse_filter(filter)
    return filter


def equality_filter(attribute: str, value: FilterValue) -> Filter:
    """``attribute eq value``, built with the filter builder (never by joining strings)."""
    return attr(attribute).eq(value)


class BaseScimClient:
    """Configuration and request preparation shared by the sync and async clients."""

    def __init__(
        self,
        *,
        base_url: str | httpx.URL,
        auth: httpx.Auth | None,
        retry: RetryPolicy,
        rate_limiter: RateLimiter | None,
        follow_redirects: bool,
        allow_insecure_http: bool,
        etags: bool | None,
        capabilities: Capabilities | None,
        max_members_per_operation: int | None,
        on_request: Iterable[Callable[[RequestDetails], None]],
        on_retry: Iterable[Callable[[RetryDetails], None]],
        clock: Callable[[], float],
    ) -> None:
        url = require_safe_url(
            base_url, what="the SCIM base URL", allow_insecure_http=allow_insecure_http
        )
        if url.query or url.fragment:
            raise ConfigurationError("the SCIM base URL must not have a query or a fragment")
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a RetryPolicy")
        if max_members_per_operation is not None and not (
            isinstance(max_members_per_operation, int) and max_members_per_operation >= 1
        ):
            raise ConfigurationError("max_members_per_operation must be an integer, 1 or more")
        self.base_url = url
        self._base = str(url).rstrip("/")
        self._auth = auth
        self.retry = retry
        self._rate_limiter = rate_limiter
        self._follow_redirects = follow_redirects
        self._etags = etags
        self._capabilities = capabilities
        self._max_members_per_operation = max_members_per_operation
        self._on_request = tuple(on_request)
        self._on_retry = tuple(on_retry)
        self._clock = clock
        self._service_provider_config: ServiceProviderConfig | None = None
        self._schemas: tuple[Schema, ...] | None = None
        self._resource_types: tuple[ResourceType, ...] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r}, auth={self._auth!r})"

    # -- URLs ----------------------------------------------------------------------------------

    @staticmethod
    def _endpoint_of(kind: type[Resource] | str) -> str:
        if isinstance(kind, str):
            endpoint = kind
        elif isinstance(kind, type) and issubclass(kind, Resource) and kind.endpoint:
            endpoint = kind.endpoint
        else:
            raise ConfigurationError(
                f"{kind!r} is neither a resource class nor an endpoint such as '/Devices'"
            )
        if (
            not endpoint.startswith("/")
            or any(char in endpoint for char in "?#\\")
            or "://" in endpoint
            or ".." in endpoint.split("/")
        ):
            raise ConfigurationError(f"{endpoint!r} is not an endpoint path such as '/Devices'")
        return endpoint.rstrip("/")

    def _url(self, endpoint: str, id: str | None = None) -> str:
        if id is None:
            return self._base + endpoint
        if not isinstance(id, str) or not id:
            raise ResourceValidationError("a resource id is required", [f"$.id: got {id!r}"])
        return f"{self._base}{endpoint}/{quote(id, safe='')}"

    @staticmethod
    def _reader_for(kind: type[Resource] | str) -> Callable[[Any], Any]:
        return _object if isinstance(kind, str) else _model_reader(kind)

    # -- preparation -----------------------------------------------------------------------------

    def _prepare_create(
        self, resource: Resource | Mapping[str, Any], endpoint: str | None
    ) -> PreparedCall[Any]:
        if isinstance(resource, Resource):
            kind: type[Resource] | str = endpoint or type(resource)
            payload = to_scim(resource, request=True)
        elif isinstance(resource, Mapping):
            if endpoint is None:
                raise ConfigurationError("a resource given as a dict needs an endpoint")
            kind = endpoint
            payload = {k: v for k, v in resource.items() if k not in ("id", "meta")}
        else:
            raise ConfigurationError(f"cannot create {type(resource).__name__}")
        reader = (
            self._reader_for(kind)
            if isinstance(resource, Mapping)
            else _model_reader(type(resource))
        )
        return PreparedCall(
            method="POST",
            url=self._url(self._endpoint_of(kind)),
            reader=reader,
            payload=payload,
            body=_json_bytes(payload),
            idempotent=False,
        )

    def _prepare_get(
        self,
        kind: type[Resource] | str,
        id: str,
        attributes: Sequence[str] | None,
        excluded_attributes: Sequence[str] | None,
    ) -> PreparedCall[Any]:
        return PreparedCall(
            method="GET",
            url=self._url(self._endpoint_of(kind), id),
            reader=self._reader_for(kind),
            params=self._projection(attributes, excluded_attributes),
        )

    @staticmethod
    def _projection(
        attributes: Sequence[str] | None, excluded_attributes: Sequence[str] | None
    ) -> dict[str, str] | None:
        params: dict[str, str] = {}
        included = _attribute_list(attributes)
        excluded = _attribute_list(excluded_attributes)
        if included:
            params["attributes"] = included
        if excluded:
            params["excludedAttributes"] = excluded
        return params or None

    def _prepare_replace(
        self, resource: Resource | Mapping[str, Any], endpoint: str | None, if_match: str | None
    ) -> PreparedCall[Any]:
        if isinstance(resource, Resource):
            kind: type[Resource] | str = endpoint or type(resource)
            id = resource.id
            payload = to_scim(resource, request=True)
            reader: Callable[[Any], Any] = _model_reader(type(resource))
        elif isinstance(resource, Mapping):
            if endpoint is None:
                raise ConfigurationError("a resource given as a dict needs an endpoint")
            kind, id = endpoint, resource.get("id")
            payload = {k: v for k, v in resource.items() if k not in ("id", "meta")}
            reader = _object
        else:
            raise ConfigurationError(f"cannot replace {type(resource).__name__}")
        if not isinstance(id, str) or not id:
            raise ResourceValidationError(
                "cannot replace a resource without an id", [f"$.id: got {id!r}"]
            )
        return PreparedCall(
            method="PUT",
            url=self._url(self._endpoint_of(kind), id),
            reader=reader,
            payload=payload,
            body=_json_bytes(payload),
            if_match=if_match,
        )

    def _prepare_patch(
        self,
        kind: type[Resource] | str,
        id: str,
        operations: PatchOp | Iterable[PatchOperation],
        if_match: str | None,
        attributes: Sequence[str] | None,
    ) -> PreparedCall[Any]:
        ops = operations.operations if isinstance(operations, PatchOp) else tuple(operations)
        if not ops:
            raise ConfigurationError("a PATCH needs at least one operation")
        if not all(isinstance(op, PatchOperation) for op in ops):
            raise ConfigurationError("PATCH operations must be PatchOperation values")
        payload = {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [to_scim(op) for op in ops],
        }
        return PreparedCall(
            method="PATCH",
            url=self._url(self._endpoint_of(kind), id),
            reader=_optional(self._reader_for(kind)),
            params=self._projection(attributes, None),
            payload=payload,
            body=_json_bytes(payload),
            if_match=if_match,
            idempotent=False,
            empty_ok=True,
        )

    def _prepare_delete(
        self, kind: type[Resource] | str, id: str, if_match: str | None
    ) -> PreparedCall[None]:
        return PreparedCall(
            method="DELETE",
            url=self._url(self._endpoint_of(kind), id),
            reader=_ignore,
            if_match=if_match,
            ignore_body=True,
        )

    def _prepare_page(
        self,
        kind: type[Resource] | str,
        query: ListQuery,
        start_index: int,
        count: int,
    ) -> PreparedCall[ListResponse[Any]]:
        item: Any = dict[str, Any] if isinstance(kind, str) else kind
        endpoint = self._endpoint_of(kind)
        if query.use_search:
            payload: dict[str, Any] = {"schemas": [SEARCH_REQUEST_SCHEMA]}
            payload.update(query.search_fields())
            payload.update(startIndex=start_index, count=count)
            return PreparedCall(
                method="POST",
                url=self._url(endpoint + "/.search"),
                reader=_page_reader(item),
                payload=payload,
                body=_json_bytes(payload),
                # A search reads; sending it twice changes nothing.
                idempotent=True,
            )
        params = query.query_params()
        params.update(startIndex=str(start_index), count=str(count))
        return PreparedCall(
            method="GET",
            url=self._url(endpoint),
            reader=_page_reader(item),
            params=params,
        )

    def _prepare_bulk(
        self, operations: Iterable[BulkOperation], fail_on_errors: int | None
    ) -> PreparedCall[BulkResponse]:
        wire = []
        for op in operations:
            if not isinstance(op, BulkOperation):
                raise ConfigurationError("bulk operations must be BulkOperation values")
            data = to_scim(op.data, request=True) if isinstance(op.data, Resource) else op.data
            wire.append(to_scim(attrs.evolve(op, data=data)))
        if not wire:
            raise ConfigurationError("a bulk request needs at least one operation")
        payload: dict[str, Any] = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": wire}
        if fail_on_errors is not None:
            payload["failOnErrors"] = fail_on_errors
        return PreparedCall(
            method="POST",
            url=self._url("/Bulk"),
            reader=lambda data: from_scim(_object(data), BulkResponse),
            payload=payload,
            body=_json_bytes(payload),
            idempotent=False,
        )

    def _prepare_service_provider_config(self) -> PreparedCall[ServiceProviderConfig]:
        return PreparedCall(
            method="GET",
            url=self._url("/ServiceProviderConfig"),
            reader=lambda data: from_scim(_object(data), ServiceProviderConfig),
        )

    def _prepare_schemas(self) -> PreparedCall[tuple[Schema, ...]]:
        return PreparedCall(method="GET", url=self._url("/Schemas"), reader=_listed_reader(Schema))

    def _prepare_resource_types(self) -> PreparedCall[tuple[ResourceType, ...]]:
        return PreparedCall(
            method="GET", url=self._url("/ResourceTypes"), reader=_listed_reader(ResourceType)
        )

    def _capabilities_from(self, config: ServiceProviderConfig | None) -> Capabilities:
        # A target without a ServiceProviderConfig is read as supporting nothing.
        if config is None:
            return Capabilities(max_members_per_operation=self._max_members_per_operation)
        return Capabilities.from_config(
            config, max_members_per_operation=self._max_members_per_operation
        )

    # -- sending: pieces the I/O classes share -----------------------------------------------------

    def _build_request(
        self, http: httpx.Client | httpx.AsyncClient, call: PreparedCall[Any]
    ) -> httpx.Request:
        headers = {"Accept": _ACCEPT}
        if call.body is not None:
            headers["Content-Type"] = _CONTENT_TYPE
        if call.if_match is not None:
            headers["If-Match"] = call.if_match
        return http.build_request(
            call.method, call.url, params=call.params, content=call.body, headers=headers
        )

    def _send_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"follow_redirects": self._follow_redirects}
        if self._auth is not None:
            arguments["auth"] = self._auth
        return arguments

    @staticmethod
    def _transport_error(
        call: PreparedCall[Any], exc: httpx.RequestError, request: httpx.Request
    ) -> ScimSyncError:
        if isinstance(exc, httpx.DecodingError):
            return InvalidResponseError(f"{call.method} {call.url}: undecodable answer ({exc})")
        failed_request: httpx.Request | None
        try:
            failed_request = exc.request
        except RuntimeError:  # pragma: no cover - httpx always sets it when sending
            failed_request = None
        # A failure on another request (the token endpoint's) never reached the target.
        sent = failed_request is request and not isinstance(exc, _NOT_SENT)
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if sent and not call.idempotent:
            return call.outcome_unknown(f"failed after sending ({what})", cause=exc)
        return TransportError(f"{call.method} {call.url} failed: {what}")

    def _report(
        self,
        call: PreparedCall[Any],
        attempt: int,
        started: float,
        *,
        status: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        elapsed = self._clock() - started
        error_name = type(error).__name__ if error is not None else None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                call.method,
                call.url,
                status if status is not None else error_name,
                elapsed * 1000,
                attempt,
            )
        if self._on_request:
            details = RequestDetails(
                method=call.method,
                url=call.url,
                attempt=attempt,
                status=status,
                error=error_name,
                elapsed_seconds=elapsed,
            )
            for hook in self._on_request:
                hook(details)


@attrs.frozen(kw_only=True)
class ListQuery:
    """The parameters of a listing other than paging (RFC 7644 §3.4.2)."""

    filter: str | None = None
    attributes: str | None = None
    excluded_attributes: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    use_search: bool = False

    @classmethod
    def build(
        cls,
        *,
        filter: Filter | str | None,
        attributes: Sequence[str] | None,
        excluded_attributes: Sequence[str] | None,
        sort_by: str | None,
        sort_order: str | None,
        use_search: bool,
    ) -> ListQuery:
        """Check and normalise the caller's parameters."""
        if sort_order is not None and sort_order not in ("ascending", "descending"):
            raise ConfigurationError("sort_order is 'ascending' or 'descending'")
        return cls(
            filter=_filter_text(filter),
            attributes=_attribute_list(attributes),
            excluded_attributes=_attribute_list(excluded_attributes),
            sort_by=None if sort_by is None else str(AttrPath.parse(sort_by)),
            sort_order=sort_order,
            use_search=use_search,
        )

    def query_params(self) -> dict[str, str]:
        """The query string of a GET listing."""
        params = {
            "filter": self.filter,
            "attributes": self.attributes,
            "excludedAttributes": self.excluded_attributes,
            "sortBy": self.sort_by,
            "sortOrder": self.sort_order,
        }
        return {key: value for key, value in params.items() if value}

    def search_fields(self) -> dict[str, Any]:
        """The body fields of a POST ``/.search`` (RFC 7644 §3.4.3)."""
        fields: dict[str, Any] = {
            "filter": self.filter,
            "attributes": self.attributes.split(",") if self.attributes else None,
            "excludedAttributes": (
                self.excluded_attributes.split(",") if self.excluded_attributes else None
            ),
            "sortBy": self.sort_by,
            "sortOrder": self.sort_order,
        }
        return {key: value for key, value in fields.items() if value}
