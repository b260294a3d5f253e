"""The asynchronous SCIM client: :class:`AsyncScimClient`, the twin of ``ScimClient``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx

from ..errors import (
    ConfigurationError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
    ScimHTTPError,
    TransportError,
    UnauthorizedError,
)
from ..models import Resource
from ..retry import RetryPolicy, is_testing
from ._base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT,
    BaseScimClient,
    ListQuery,
    _version_of,
    equality_filter,
)

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Iterable,
        Mapping,
        Sequence,
    )
    from types import TracebackType

    from typing_extensions import Self

    from ..filter import Filter, FilterValue
    from ..models import (
        BulkOperation,
        BulkResponse,
        PatchOp,
        PatchOperation,
        ResourceType,
        Schema,
        ServiceProviderConfig,
    )
    from ..retry import RetryDetails
    from ._base import Answer, Deadline, PreparedCall, RequestDetails
    from ._capabilities import ServiceCapabilities
    from ._pagination import PagedListing
    from ._ratelimit import RateLimiter

__all__ = ["AsyncScimClient"]

R = TypeVar("R", bound=Resource)
T = TypeVar("T")


class AsyncScimClient(BaseScimClient):
    """An asynchronous client for one SCIM service provider: ``ScimClient``'s twin.

    Give it the base URL (``https://example.com/scim/v2``) and an ``auth``
    (:class:`~scimsync.auth.BearerToken`, :class:`~scimsync.auth.OAuth2ClientCredentials`
    or any :class:`httpx.Auth`), or an ``http`` client you configured yourself
    (proxies, certificates, HTTP/2, timeouts); ``timeout`` applies only to the
    client built here, and the client closes only what it created.

    Resources are scimsync models (``User``, ``Group``); other resource types are
    plain ``dict`` objects with their endpoint (``"/Devices"``). Plain ``http://`` is
    refused unless the host is loopback or ``allow_insecure_http`` is given.
    Redirects are not followed unless ``follow_redirects`` (and ``Authorization``
    never goes to another host).

    ``retry`` says when to try again; POST and PATCH whose outcome is unknown raise
    :class:`~scimsync.errors.OutcomeUnknownError` instead. ``rate_limiter`` is
    shared between clients if you pass the same one. ``on_request`` hooks receive a
    :class:`RequestDetails` after every attempt, ``on_retry`` hooks a
    :class:`~scimsync.retry.RetryDetails` before every wait. ``etags`` sends
    ``If-Match`` with known versions: always (True), never (False), or when the
    target announces ETag support (None). Answers are read as a stream: a success body
    over ``max_response_bytes`` (default :data:`DEFAULT_MAX_RESPONSE_BYTES`, 32 MiB)
    raises :class:`~scimsync.errors.InvalidResponseError` without the rest being read,
    and an error body is read only as far as its excerpt needs.

    ``max_listing_pages`` and ``max_listing_resources`` bound every listing, against a
    target that makes up pages forever: by default twice what the first
    ``totalResults`` needs, plus some, and never above
    :data:`~scimsync.client.MAX_LISTED_PAGES` and
    :data:`~scimsync.client.MAX_LISTED_RESOURCES`. A listing stopped at a limit is
    incomplete, and its ``problem`` names the limit to raise.

    ``request_deadline`` bounds each attempt as a whole, from sending the request to
    the last byte of the answer (default: the HTTP client's read timeout, so
    ``timeout=5`` means five seconds per attempt; :data:`DEFAULT_REQUEST_DEADLINE`
    if it has none), and no attempt gets more than what is left of
    ``retry.max_total_seconds``: a target dripping its answer cannot hold a request
    open. A passed deadline is a :class:`~scimsync.errors.TransportError` (for a POST
    or PATCH already sent, :class:`~scimsync.errors.OutcomeUnknownError`). ``max_concurrency``
    caps the requests in flight at once across all tasks using this client. ``sleep``
    and ``clock`` are for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        auth: httpx.Auth | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        follow_redirects: bool = False,
        allow_insecure_http: bool = False,
        etags: bool | None = None,
        capabilities: ServiceCapabilities | None = None,
        max_members_per_operation: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        request_deadline: float | None = None,
        max_listing_pages: int | None = None,
        max_listing_resources: int | None = None,
        on_request: Iterable[Callable[[RequestDetails], None]] = (),
        on_retry: Iterable[Callable[[RetryDetails], None]] = (),
        max_concurrency: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrency is not None and not (
            isinstance(max_concurrency, int) and max_concurrency >= 1
        ):
            raise ConfigurationError("max_concurrency must be an integer, 1 or more")
        if base_url is None:
            if http is None or not str(http.base_url):
                raise ConfigurationError(
                    "AsyncScimClient needs a base_url (or an http client with one)"
                )
            base_url = str(http.base_url)
        super().__init__(
            base_url=base_url,
            auth=auth,
            retry=retry if retry is not None else RetryPolicy(),
            rate_limiter=rate_limiter,
            follow_redirects=follow_redirects,
            allow_insecure_http=allow_insecure_http,
            etags=etags,
            capabilities=capabilities,
            max_members_per_operation=max_members_per_operation,
            max_response_bytes=max_response_bytes,
            request_deadline=request_deadline,
            max_listing_pages=max_listing_pages,
            max_listing_resources=max_listing_resources,
            on_request=on_request,
            on_retry=on_retry,
            clock=clock,
        )
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._settle_deadline(self._http.timeout)
        self._sleep = sleep
        self._concurrency = (
            asyncio.Semaphore(max_concurrency) if max_concurrency is not None else None
        )

    async def aclose(self) -> None:
        """Close the HTTP client, if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- resources -----------------------------------------------------------------------------

    @overload
    async def create(self, resource: R, *, endpoint: str | None = None) -> R: ...
    @overload
    async def create(self, resource: Mapping[str, Any], *, endpoint: str) -> dict[str, Any]: ...
    async def create(
        self, resource: Resource | Mapping[str, Any], *, endpoint: str | None = None
    ) -> Any:
        """POST a new resource; return it as the target stored it (with its ``id``).

        Raises :class:`~scimsync.errors.OutcomeUnknownError` when the answer was lost:
        look the resource up (:meth:`find_by`) before creating it again.
        """
        return await self._send(self._prepare_create(resource, endpoint))

    @overload
    async def get(
        self,
        resource_type: type[R],
        id: str,
        *,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
    ) -> R: ...
    @overload
    async def get(
        self,
        resource_type: str,
        id: str,
        *,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
    ) -> dict[str, Any]: ...
    async def get(
        self,
        resource_type: type[Resource] | str,
        id: str,
        *,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
    ) -> Any:
        """GET one resource by ``id``; :class:`~scimsync.errors.NotFoundError` if absent.

        An answer naming another ``id`` raises
        :class:`~scimsync.errors.InvalidResponseError` (one naming none is taken as
        the resource asked for).
        """
        return await self._send(
            self._prepare_get(resource_type, id, attributes, excluded_attributes)
        )

    @overload
    async def replace(
        self, resource: R, *, endpoint: str | None = None, version: str | None = None
    ) -> R: ...
    @overload
    async def replace(
        self, resource: Mapping[str, Any], *, endpoint: str, version: str | None = None
    ) -> dict[str, Any]: ...
    async def replace(
        self,
        resource: Resource | Mapping[str, Any],
        *,
        endpoint: str | None = None,
        version: str | None = None,
    ) -> Any:
        """PUT ``resource`` over the stored one with the same ``id``; return the result.

        ``version`` (default: the resource's ``meta.version``) guards the write with
        ``If-Match`` (see ``etags``): a resource changed meanwhile raises
        :class:`~scimsync.errors.PreconditionFailedError`.
        """
        if_match = await self._if_match(version if version is not None else _version_of(resource))
        return await self._send(self._prepare_replace(resource, endpoint, if_match))

    @overload
    async def patch(
        self,
        resource_type: type[R],
        id: str,
        operations: PatchOp | Iterable[PatchOperation],
        *,
        version: str | None = None,
        attributes: Sequence[str] | None = None,
    ) -> R | None: ...
    @overload
    async def patch(
        self,
        resource_type: str,
        id: str,
        operations: PatchOp | Iterable[PatchOperation],
        *,
        version: str | None = None,
        attributes: Sequence[str] | None = None,
    ) -> dict[str, Any] | None: ...
    async def patch(
        self,
        resource_type: type[Resource] | str,
        id: str,
        operations: PatchOp | Iterable[PatchOperation],
        *,
        version: str | None = None,
        attributes: Sequence[str] | None = None,
    ) -> Any:
        """PATCH a resource; return it, or None when the target answered 204 No Content.

        ``attributes`` asks the target to answer with the resource (some targets answer
        204 otherwise). Raises :class:`~scimsync.errors.OutcomeUnknownError` when
        the answer was lost.
        """
        if_match = await self._if_match(version)
        return await self._send(
            self._prepare_patch(resource_type, id, operations, if_match, attributes)
        )

    async def delete(
        self, resource_type: type[Resource] | str, id: str, *, version: str | None = None
    ) -> None:
        """DELETE a resource; :class:`~scimsync.errors.NotFoundError` if it is already gone."""
        await self._send(self._prepare_delete(resource_type, id, await self._if_match(version)))

    # -- listing -------------------------------------------------------------------------------

    @overload
    def iter_all(
        self,
        resource_type: type[R],
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> AsyncIterator[R]: ...
    @overload
    def iter_all(
        self,
        resource_type: str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> AsyncIterator[dict[str, Any]]: ...
    async def iter_all(
        self,
        resource_type: type[Resource] | str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> AsyncIterator[Any]:
        """Yield every resource of a type (matching ``filter``), page by page.

        Each resource is yielded once, even when pages overlap. When the target stops
        short of the ``totalResults`` it announced, the iteration ends with
        :class:`~scimsync.errors.IncompleteListingError` after the last resource:
        what was yielded is not everything. ``use_search`` sends POST ``/.search``
        instead of GET (filters stay out of URLs and logs).
        """
        query = ListQuery.build(
            filter=filter,
            attributes=attributes,
            excluded_attributes=excluded_attributes,
            sort_by=sort_by,
            sort_order=sort_order,
            use_search=use_search,
        )
        pager = self._paginator(page_size, query)
        while not pager.done:
            call = self._prepare_page(resource_type, query, pager.start_index, pager.count)
            page = await self._send(call)
            for resource in pager.feed(page.response, total_announced=page.total_announced):
                yield resource
        if not pager.complete:
            raise pager.incomplete_error()

    @overload
    async def list_all(
        self,
        resource_type: type[R],
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> PagedListing[R]: ...
    @overload
    async def list_all(
        self,
        resource_type: str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> PagedListing[dict[str, Any]]: ...
    async def list_all(
        self,
        resource_type: type[Resource] | str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        use_search: bool = False,
    ) -> PagedListing[Any]:
        """List every resource of a type into a :class:`PagedListing` that says if it is whole.

        Never raises for a short listing: check ``listing.complete`` before reading an
        absence as a deletion (or call ``listing.require_complete()``). A page after the
        first that cannot be read, its retries spent, ends the listing there: incomplete,
        with what was read and why. A first page that cannot be read raises.
        """
        query = ListQuery.build(
            filter=filter,
            attributes=attributes,
            excluded_attributes=excluded_attributes,
            sort_by=sort_by,
            sort_order=sort_order,
            use_search=use_search,
        )
        pager = self._paginator(page_size, query)
        resources: list[Any] = []
        while not pager.done:
            call = self._prepare_page(resource_type, query, pager.start_index, pager.count)
            try:
                page = await self._send(call)
            except (TransportError, ScimHTTPError, InvalidResponseError) as exc:
                if not pager.pages or isinstance(exc, (UnauthorizedError, ForbiddenError)):
                    raise
                pager.fail(exc)  # what was read is kept; the listing says it is short
                break
            resources.extend(pager.feed(page.response, total_announced=page.total_announced))
        return pager.listing(resources)

    @overload
    async def find(
        self,
        resource_type: type[R],
        filter: Filter | str,
        *,
        attributes: Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[R]: ...
    @overload
    async def find(
        self,
        resource_type: str,
        filter: Filter | str,
        *,
        attributes: Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[dict[str, Any]]: ...
    async def find(
        self,
        resource_type: type[Resource] | str,
        filter: Filter | str,
        *,
        attributes: Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[Any]:
        """The resources matching ``filter`` (every page), as a :class:`PagedListing`."""
        return await self.list_all(
            resource_type, filter=filter, attributes=attributes, page_size=page_size
        )

    @overload
    async def find_by(
        self, resource_type: type[R], attribute: str, value: FilterValue
    ) -> tuple[R, ...]: ...
    @overload
    async def find_by(
        self, resource_type: str, attribute: str, value: FilterValue
    ) -> tuple[dict[str, Any], ...]: ...
    async def find_by(
        self, resource_type: type[Resource] | str, attribute: str, value: FilterValue
    ) -> tuple[Any, ...]:
        """The resources whose ``attribute`` equals ``value`` (``"externalId"``, ``"userName"``).

        The lookup to make after :class:`~scimsync.errors.OutcomeUnknownError`, before
        creating again. The filter is built with :func:`scimsync.filter.attr`, so any
        value is safe. Raises :class:`~scimsync.errors.IncompleteListingError` rather
        than answer from a partial listing.
        """
        listing = await self.find(resource_type, equality_filter(attribute, value))
        return listing.require_complete().resources

    @overload
    async def search(
        self,
        resource_type: type[R],
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[R]: ...
    @overload
    async def search(
        self,
        resource_type: str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[dict[str, Any]]: ...
    async def search(
        self,
        resource_type: type[Resource] | str,
        *,
        filter: Filter | str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> PagedListing[Any]:
        """Like :meth:`list_all`, with POST ``{endpoint}/.search`` (RFC 7644 §3.4.3)."""
        return await self.list_all(
            resource_type,
            filter=filter,
            attributes=attributes,
            excluded_attributes=excluded_attributes,
            sort_by=sort_by,
            sort_order=sort_order,
            page_size=page_size,
            use_search=True,
        )

    async def bulk(
        self, operations: Iterable[BulkOperation], *, fail_on_errors: int | None = None
    ) -> BulkResponse:
        """POST ``/Bulk`` (RFC 7644 §3.7); each operation's status is in the answer.

        Keep to ``capabilities().bulk_max_operations`` per request.
        """
        return await self._send(self._prepare_bulk(operations, fail_on_errors))

    # -- discovery -------------------------------------------------------------------------------

    async def service_provider_config(self) -> ServiceProviderConfig:
        """GET ``/ServiceProviderConfig`` (cached after the first call)."""
        if self._service_provider_config is None:
            self._service_provider_config = await self._send(
                self._prepare_service_provider_config()
            )
        return self._service_provider_config

    async def schemas(self) -> tuple[Schema, ...]:
        """GET ``/Schemas`` (cached after the first call)."""
        if self._schemas is None:
            self._schemas = await self._send(self._prepare_schemas())
        return self._schemas

    async def resource_types(self) -> tuple[ResourceType, ...]:
        """GET ``/ResourceTypes`` (cached after the first call)."""
        if self._resource_types is None:
            self._resource_types = await self._send(self._prepare_resource_types())
        return self._resource_types

    async def capabilities(self) -> ServiceCapabilities:
        """What the target supports: PATCH, bulk and its limits, filters, sort, ETags.

        Read from the ServiceProviderConfig (once); a target that has none supports
        nothing. The ``capabilities`` given to the constructor win.
        """
        if self._capabilities is None:
            try:
                config: ServiceProviderConfig | None = await self.service_provider_config()
            except NotFoundError:
                config = None
            self._capabilities = self._capabilities_from(config)
        return self._capabilities

    # -- sending -----------------------------------------------------------------------------------

    async def _if_match(self, version: str | None) -> str | None:
        if version is None or self._etags is False:
            return None
        if self._etags or (await self.capabilities()).etag:
            return version
        return None

    async def _send(self, call: PreparedCall[T]) -> T:
        first_started = self._clock()
        retrying = self.retry.async_retrying(
            method=call.method,
            url=call.url,
            clock=self._clock,
            sleep=self._sleep,
            on_retry=self._on_retry,
            read=call.read,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(call, attempt.retry_state.attempt_number, first_started)
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    async def _attempt(self, call: PreparedCall[T], number: int, first_started: float) -> T:
        if self._rate_limiter is not None:
            delay = self._rate_limiter.reserve(self._clock())
            if delay > 0 and not is_testing():
                await self._sleep(delay)
        if self._concurrency is None:
            return await self._attempt_now(call, number, first_started)
        # The deadline starts once a slot is held: waiting for one is queueing.
        async with self._concurrency:
            return await self._attempt_now(call, number, first_started)

    async def _attempt_now(self, call: PreparedCall[T], number: int, first_started: float) -> T:
        deadline = self._deadline(call, first_started)
        request = self._build_request(self._http, call, deadline)
        started = self._clock()
        try:
            try:
                answer = await asyncio.wait_for(self._exchange(request, deadline), deadline.seconds)
            except asyncio.TimeoutError:
                raise deadline.exceeded(request) from None
        except httpx.RequestError as exc:
            self._report(call, number, started, error=exc)
            raise self._transport_error(call, exc, request) from exc
        self._report(call, number, started, status=answer.status)
        return call.result(answer, self._redactor(request))

    async def _exchange(self, request: httpx.Request, deadline: Deadline) -> Answer:
        # Streamed, so a huge or endless body is never read past the limit.
        response = await self._http.send(request, **self._send_arguments())
        try:
            body = self._body_buffer(response)
            if body.wants_more:
                async for chunk in response.aiter_bytes():
                    self._check_deadline(request, deadline)
                    if not body.add(chunk):
                        break
            return body.answer()
        finally:
            await response.aclose()
