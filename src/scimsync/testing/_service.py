"""The SCIM service provider itself: one request value in, one response value out.

Rules of this module: no sockets, no threads of its own, no real clock and no
sleeping. Time comes from the ``clock`` it is given; connection faults (latency,
reset, timeout) are *described* in the :class:`~._wire.WireResponse` and carried out
by the front end. One lock makes each request atomic, so a write is applied whole
or not at all and concurrent clients see a consistent store.

Request processing, in order: route; draw a fault (infrastructure faults answer
before anything is read); check the body size and the bearer token; dispatch to the
endpoint; apply the quirks that rewrite an answer (no ``Location``, string booleans);
apply the faults that alter a processed answer (commit-then-fail, malformed JSON,
latency); log.
"""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs

from ..errors import FilterSyntaxError, PatchError
from ..filter import parse_filter
from ..models import (
    BULK_REQUEST_SCHEMA,
    BULK_RESPONSE_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    BulkOperation,
    BulkRequest,
    PatchOp,
    PatchOperation,
    SearchRequest,
)
from ..patch import apply_patch, parse_path
from ._discovery import (
    filter_table,
    resource_type_documents,
    schema_documents,
    schema_table,
    service_provider_config,
)
from ._faults import FaultInjector, FaultKind, Faults
from ._listing import Paging, Selection, parse_selection, project, sort_resources
from ._log import LoggedRequest, RequestLog
from ._store import GROUP, USER, Store, member_ids
from ._validation import (
    KIND_BY_NAME,
    KINDS,
    Kind,
    extension_value,
    parse_json,
    read_message,
    read_resource,
    without_extension_schemas,
)
from ._wire import (
    ScimRequestError,
    WireRequest,
    WireResponse,
    dump_json,
    error_body,
    error_response,
    json_response,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._quirks import Quirks

__all__ = ["Route", "ScimService", "route_of"]

Resource = dict[str, Any]

_BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
_GATEWAY_TIMEOUT_HTML = (
    b"<html><head><title>504 Gateway Time-out</title></head><body>"
    b"<center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>\n"
)
_DISCOVERY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


@attrs.frozen(kw_only=True)
class Route:
    """Where a request goes. ``template`` names it in the request log (``/Users/{id}``)."""

    endpoint: str | None
    template: str
    kind: Kind | None = None
    item: str | None = None
    allowed: tuple[str, ...] = ()

    def is_listing(self, method: str) -> bool:
        """True for requests answered with a ListResponse of resources."""
        if self.endpoint == ".search":
            return method == "POST"
        return method == "GET" and self.kind is not None and self.item is None

    def is_write(self, method: str) -> bool:
        """True for requests that change resources."""
        if self.endpoint == "Bulk":
            return method == "POST"
        if self.kind is None or self.endpoint == ".search":
            return False
        return method == "POST" if self.item is None else method in ("PUT", "PATCH", "DELETE")


def route_of(relative: str) -> Route:
    """The route of a path relative to the base path (``/Users/42``)."""
    parts = [p for p in relative.split("/") if p]
    if not parts:
        return Route(endpoint=None, template=relative or "/")
    head = parts[0]
    if len(parts) == 1:
        if head in KINDS:
            return Route(
                endpoint=head, template=f"/{head}", kind=KINDS[head], allowed=("GET", "POST")
            )
        if head in _DISCOVERY:
            return Route(endpoint=head, template=f"/{head}", allowed=("GET",))
        if head == ".search":
            return Route(endpoint=".search", template="/.search", allowed=("POST",))
        if head == "Bulk":
            return Route(endpoint="Bulk", template="/Bulk", allowed=("POST",))
        if head == "Me":
            return Route(endpoint="Me", template="/Me")
    if len(parts) == 2:
        item = parts[1]
        if head in KINDS and item == ".search":
            return Route(
                endpoint=".search", template=f"/{head}/.search", kind=KINDS[head], allowed=("POST",)
            )
        if head in KINDS:
            return Route(
                endpoint=head,
                template=f"/{head}/{{id}}",
                kind=KINDS[head],
                item=item,
                allowed=("GET", "PUT", "PATCH", "DELETE"),
            )
        if head in ("ResourceTypes", "Schemas"):
            return Route(endpoint=head, template=f"/{head}/{{id}}", item=item, allowed=("GET",))
    return Route(endpoint=None, template=relative)


def _now_text(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def _entity_tag(version: str) -> str:
    return version.removeprefix("W/")


class ScimService:
    """An in-memory SCIM 2.0 service provider (RFC 7643 / RFC 7644), without I/O.

    Call :meth:`handle` from any thread. The settings are plain attributes the
    server facade reads and writes; :attr:`faults` takes effect from the next
    request.
    """

    def __init__(
        self,
        *,
        token: str | None,
        base_path: str,
        quirks: Quirks,
        faults: Faults | None,
        default_page_size: int,
        max_page_size: int,
        max_body_bytes: int,
        max_bulk_operations: int,
        clock: Callable[[], datetime],
        log: RequestLog,
    ) -> None:
        self.token = token
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.quirks = quirks
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.max_body_bytes = max_body_bytes
        self.max_bulk_operations = max_bulk_operations
        self.clock = clock
        self.log = log
        self.store = Store()
        self.lock = threading.Lock()
        self._injector: FaultInjector | None = None
        self.faults = faults
        self._table = schema_table()
        self._never_returned = {
            kind.name: tuple(
                spec.name
                for urn, spec in self._table.attributes(kind.name)
                if urn is None and spec.returned == "never"
            )
            for kind in KINDS.values()
        }

    # -- settings ---------------------------------------------------------------------

    @property
    def faults(self) -> Faults | None:
        """The faults injected from now on (None: none). Setting it restarts the draw."""
        return self._injector.faults if self._injector is not None else None

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        with self.lock:
            self._injector = FaultInjector(faults) if faults is not None else None

    def authorization(self) -> dict[str, str]:
        """The header a client needs (empty when no token is required)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    # -- the request/response function -----------------------------------------------

    def handle(self, request: WireRequest) -> WireResponse:
        """Answer one request; log it. Never raises for anything a client can send."""
        method = request.method.upper()
        relative = self._relative(request.path)
        route = route_of(relative) if relative is not None else Route(endpoint=None, template="")
        with self.lock:
            drawn: FaultKind | None = None
            if self._injector is not None and relative is not None:
                drawn = self._injector.draw(
                    method, relative, listing=route.is_listing(method), write=route.is_write(method)
                )
            applied: list[FaultKind] = []
            try:
                response = self._answer(
                    request,
                    method=method,
                    relative=relative,
                    route=route,
                    fault=drawn,
                    applied=applied,
                )
            except ScimRequestError as problem:
                response = error_response(problem)
            except Exception as exc:  # a bug here must not kill the connection's thread
                response = error_response(
                    ScimRequestError(500, f"internal error: {type(exc).__name__}: {exc}")
                )
            # A drawn fault that could not apply (a short last page) is not one.
            fault = applied[0] if applied else None
            if fault is not None and self._injector is not None:
                self._injector.injected += 1
            self.log.append(
                LoggedRequest(
                    method=method,
                    path=relative if relative is not None else request.path,
                    route=route.template,
                    query=request.query,
                    status=None if response.disconnect else response.status,
                    fault=fault,
                    body=request.body,
                )
            )
            return response

    def _relative(self, path: str) -> str | None:
        if not self.base_path:
            return path or "/"
        if path == self.base_path:
            return "/"
        if path.startswith(self.base_path + "/"):
            return path[len(self.base_path) :]
        return None

    def _answer(
        self,
        request: WireRequest,
        *,
        method: str,
        relative: str | None,
        route: Route,
        fault: FaultKind | None,
        applied: list[FaultKind],
    ) -> WireResponse:
        early = self._infrastructure_fault(fault) if fault is not None else None
        if early is not None and fault is not None:
            applied.append(fault)
            return early
        if len(request.body) > self.max_body_bytes:
            raise ScimRequestError(
                413,
                f"the body has {len(request.body)} bytes; this server accepts at most "
                f"{self.max_body_bytes}",
            )
        self._authenticate(request)
        if relative is None or route.endpoint is None:
            raise ScimRequestError(404, f"no SCIM endpoint at {request.path}")
        if route.endpoint == "Me":
            raise ScimRequestError(501, "/Me is not supported by this service provider")
        if method not in route.allowed:
            raise ScimRequestError(
                405,
                f"{method} is not allowed on {route.template}",
                headers=(("Allow", ", ".join(route.allowed)),),
            )
        context = _Context(
            request=request,
            params={k.lower(): v for k, v in parse_qsl(request.query, keep_blank_values=True)},
            fault=fault,
            applied=applied,
        )
        response = self._dispatch(method, route, context)
        return self._late_fault(context, self._quirky_answer(response))

    def _quirky_answer(self, response: WireResponse) -> WireResponse:
        """The answer as the quirks that rewrite whole answers leave it.

        Applied once, on the way out: bulk reads its operations' answers before this.
        """
        quirks = self.quirks
        if not quirks.location_header and response.status == 201:
            headers = tuple(h for h in response.headers if h[0].lower() != "location")
            response = attrs.evolve(response, headers=headers)
        if quirks.string_booleans and 200 <= response.status < 300 and response.body:
            body = _booleans_as_strings(json.loads(response.body))
            response = attrs.evolve(response, body=dump_json(body))
        return response

    # -- faults -------------------------------------------------------------------------

    def _retry_after(self) -> str:
        faults = self.faults or Faults()
        if faults.retry_after_http_date:
            moment = self.clock() + timedelta(seconds=faults.retry_after)
            return formatdate(moment.timestamp(), usegmt=True)
        seconds = faults.retry_after
        return str(int(seconds)) if float(seconds).is_integer() else str(seconds)

    def _infrastructure_fault(self, fault: FaultKind | None) -> WireResponse | None:
        if fault is FaultKind.TOO_MANY_REQUESTS:
            return json_response(
                429,
                error_body(429, "too many requests; slow down", "tooMany"),
                (("Retry-After", self._retry_after()),),
            )
        if fault is FaultKind.SERVICE_UNAVAILABLE:
            return json_response(
                503,
                error_body(503, "the service is unavailable; try again later"),
                (("Retry-After", self._retry_after()),),
            )
        if fault is FaultKind.INTERNAL_ERROR:
            return json_response(500, error_body(500, "internal server error (injected)"))
        if fault is FaultKind.BAD_GATEWAY:
            return _html(502, _BAD_GATEWAY_HTML)
        if fault is FaultKind.CONNECTION_RESET:
            return WireResponse(status=0, disconnect="reset")
        if fault is FaultKind.TIMEOUT:
            return WireResponse(status=0, disconnect="timeout")
        return None

    def _late_fault(self, context: _Context, response: WireResponse) -> WireResponse:
        fault = context.fault
        faults = self.faults or Faults()
        if fault is FaultKind.COMMIT_THEN_FAIL and 200 <= response.status < 300:
            context.applied.append(fault)
            after = faults.after_commit
            if after in ("reset", "timeout"):
                return WireResponse(status=0, disconnect="reset" if after == "reset" else "timeout")
            status = int(after)
            if status == 502:
                return _html(502, _BAD_GATEWAY_HTML)
            if status == 504:
                return _html(504, _GATEWAY_TIMEOUT_HTML)
            return json_response(status, error_body(status, "internal server error (injected)"))
        if fault is FaultKind.MALFORMED_JSON and response.body:
            context.applied.append(fault)
            cut = response.body[: max(1, len(response.body) // 2)]
            return attrs.evolve(response, body=cut)
        if fault is FaultKind.LATENCY:
            context.applied.append(fault)
            return attrs.evolve(response, delay=faults.latency)
        return response

    # -- auth ---------------------------------------------------------------------------

    def _authenticate(self, request: WireRequest) -> None:
        if self.token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token.encode()
        ):
            return
        detail = (
            "the bearer token was refused"
            if scheme
            else "authentication required: send Authorization: Bearer <token>"
        )
        raise ScimRequestError(
            401, detail, headers=(("WWW-Authenticate", 'Bearer realm="scimsync"'),)
        )

    # -- dispatch -----------------------------------------------------------------------

    def _dispatch(self, method: str, route: Route, context: _Context) -> WireResponse:
        endpoint = route.endpoint
        if endpoint in _DISCOVERY:
            return self._discovery(route, context)
        if endpoint == "Bulk":
            return self._bulk(context)
        if endpoint == ".search":
            kinds = [route.kind] if route.kind is not None else list(KINDS.values())
            return self._search(kinds, context)
        kind = route.kind
        assert kind is not None
        if route.item is None:
            if method == "GET":
                return self._list([kind], self._query_listing(context), context)
            return self._create(kind, context)
        if method == "GET":
            return self._get(kind, route.item, context)
        if method == "PUT":
            return self._replace(kind, route.item, context)
        if method == "PATCH":
            return self._patch(kind, route.item, context)
        return self._delete(kind, route.item, context)

    # -- discovery ----------------------------------------------------------------------

    def _discovery(self, route: Route, context: _Context) -> WireResponse:
        base = context.request.origin + self.base_path
        if route.endpoint == "ServiceProviderConfig":
            document = service_provider_config(
                self.quirks,
                max_results=self.max_page_size,
                max_operations=self.max_bulk_operations,
                max_payload_size=self.max_body_bytes,
            )
            document["meta"] = {**document["meta"], "location": f"{base}/ServiceProviderConfig"}
            return json_response(200, document)
        if "filter" in context.params:
            # RFC 7644 §4: a filter here would be ignored, so refuse it rather than mislead.
            raise ScimRequestError(403, f"filtering is not supported on /{route.endpoint}")
        if route.endpoint == "ResourceTypes":
            documents = resource_type_documents()
        else:
            documents = schema_documents()
        located = [
            {**d, "meta": {**d.get("meta", {}), "location": f"{base}/{route.endpoint}/{d['id']}"}}
            for d in documents
        ]
        if route.item is not None:
            for document in located:
                if document["id"].lower() == route.item.lower():
                    return json_response(200, document)
            raise ScimRequestError(404, f"no {route.endpoint} entry {route.item!r}")
        return json_response(
            200,
            {
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": len(located),
                "itemsPerPage": len(located),
                "startIndex": 1,
                "Resources": located,
            },
        )

    # -- rendering ----------------------------------------------------------------------

    def location(self, origin: str, kind_name: str, resource_id: str) -> str:
        """The absolute URL of a resource."""
        return f"{origin}{self.base_path}{KIND_BY_NAME[kind_name].endpoint}/{resource_id}"

    def render(
        self,
        kind_name: str,
        resource: Resource,
        origin: str,
        include: Selection | None = None,
        exclude: Selection | None = None,
        *,
        quirks: bool = True,
    ) -> Resource:
        """The representation of a stored resource: computed attributes added, projected.

        ``quirks=False`` shows the resource as it is, whatever a quirk hides from clients.
        """
        out = dict(resource)
        for name in self._never_returned[kind_name]:
            out.pop(name, None)
        resource_id = resource["id"]
        omit_members = kind_name == GROUP and quirks and self.quirks.omit_group_members
        if kind_name == USER:
            groups = self._memberships(resource_id)
            if groups:
                out["groups"] = [self._membership(origin, *group) for group in groups]
        elif "members" in out and not (
            omit_members and not (include is not None and "members" in include)
        ):
            out["members"] = [
                {**m, "$ref": self.location(origin, m.get("type", USER), m["value"])}
                for m in out["members"]
            ]
        meta = {**out.pop("meta"), "location": self.location(origin, kind_name, resource_id)}
        if quirks and not self.quirks.etag_supported:
            del meta["version"]
        out["meta"] = meta
        return project(
            out,
            include=include,
            exclude=exclude,
            on_request_only=("members",) if omit_members else (),
        )

    def _memberships(self, user_id: str) -> list[tuple[str, str]]:
        """``(group id, "direct" or "indirect")`` of every group the user is in: its own
        groups, then the groups holding those, and so on (RFC 7643 §4.1.2), each once."""
        direct = self.store.groups_of(user_id)
        out = [(group_id, "direct") for group_id in direct]
        seen = set(direct)
        for group_id, _ in out:  # breadth first: `out` grows as parents are found
            for parent in self.store.groups_of(group_id):
                if parent not in seen:
                    seen.add(parent)
                    out.append((parent, "indirect"))
        return out

    def _membership(self, origin: str, group_id: str, kind: str) -> dict[str, Any]:
        group = self.store.get(GROUP, group_id)
        entry = {
            "value": group_id,
            "$ref": self.location(origin, GROUP, group_id),
            "type": kind,
        }
        if group is not None and "displayName" in group:
            entry["display"] = group["displayName"]
        return entry

    def _selections(
        self, kind_name: str, context: _Context, attributes: Any = None, excluded: Any = None
    ) -> tuple[Selection | None, Selection | None]:
        attributes = attributes if attributes is not None else context.params.get("attributes")
        excluded = excluded if excluded is not None else context.params.get("excludedattributes")
        if attributes and excluded:
            raise ScimRequestError(
                400, "attributes and excludedAttributes cannot be used together", "invalidValue"
            )
        include = (
            parse_selection(_split_paths(attributes), kind_name, self._table)
            if attributes
            else None
        )
        exclude = (
            parse_selection(_split_paths(excluded), kind_name, self._table) if excluded else None
        )
        return include, exclude

    def _resource_response(
        self,
        status: int,
        kind: Kind,
        resource: Resource,
        context: _Context,
        *,
        location: bool = False,
    ) -> WireResponse:
        include, exclude = self._selections(kind.name, context)
        origin = context.request.origin
        body = self.render(kind.name, resource, origin, include, exclude)
        headers: list[tuple[str, str]] = []
        if self.quirks.etag_supported:
            headers.append(("ETag", resource["meta"]["version"]))
        if location:
            headers.append(("Location", self.location(origin, kind.name, resource["id"])))
        return json_response(status, body, tuple(headers))

    # -- reading ------------------------------------------------------------------------

    def _existing(self, kind: Kind, resource_id: str) -> Resource:
        resource = self.store.get(kind.name, resource_id)
        if resource is None:
            raise ScimRequestError(404, f"{kind.name} {resource_id!r} not found")
        return resource

    def _get(self, kind: Kind, resource_id: str, context: _Context) -> WireResponse:
        resource = self._existing(kind, resource_id)
        version = resource["meta"]["version"]
        if_none_match = context.request.headers.get("if-none-match")
        if (
            if_none_match
            and self.quirks.etag_supported
            and _entity_tag(version) in _etags(if_none_match)
        ):
            return WireResponse(status=304, headers=(("ETag", version),))
        return self._resource_response(200, kind, resource, context)

    def _query_listing(self, context: _Context) -> _Listing:
        params = context.params
        return _Listing(
            filter=params.get("filter"),
            sort_by=params.get("sortby"),
            sort_order=params.get("sortorder"),
            start_index=params.get("startindex"),
            count=params.get("count"),
            attributes=params.get("attributes"),
            excluded=params.get("excludedattributes"),
        )

    def _search(self, kinds: list[Kind], context: _Context) -> WireResponse:
        data = parse_json(context.request.body)
        search: SearchRequest = read_message(data, SearchRequest, SEARCH_REQUEST_SCHEMA)
        listing = _Listing(
            filter=search.filter,
            sort_by=search.sort_by,
            sort_order=search.sort_order,
            start_index=search.start_index,
            count=search.count,
            attributes=",".join(search.attributes) if search.attributes is not None else None,
            excluded=",".join(search.excluded_attributes)
            if search.excluded_attributes is not None
            else None,
        )
        return self._list(kinds, listing, context)

    def _list(self, kinds: list[Kind], listing: _Listing, context: _Context) -> WireResponse:
        quirks = self.quirks
        paging = Paging.parse(
            listing.start_index,
            listing.count,
            default_count=self.default_page_size,
            max_count=min(self.max_page_size, quirks.page_size_cap or self.max_page_size),
        )
        sort_order = (listing.sort_order or "ascending").lower()
        if sort_order not in ("ascending", "descending"):
            raise ScimRequestError(
                400,
                f"sortOrder must be ascending or descending, got {listing.sort_order!r}",
                "invalidValue",
            )
        selections = {
            kind.name: self._selections(
                kind.name, context, listing.attributes or "", listing.excluded or ""
            )
            for kind in kinds
        }
        if context.fault is FaultKind.PAGE_DRIFT and paging.start_index > 1:
            context.applied.append(context.fault)
            self._drift(kinds[0])
        candidates = [(kind.name, r) for kind in kinds for r in self.store.all(kind.name)]
        if listing.filter is not None and listing.filter.strip():
            candidates = self._filtered(candidates, listing.filter)
        if listing.sort_by:
            candidates = sort_resources(
                candidates,
                listing.sort_by,
                descending=sort_order == "descending",
                table=self._table,
            )
        total = len(candidates)
        first = paging.start_index - 1
        if quirks.start_index_past_end_restarts and first >= total:
            first = 0
        page = candidates[first : first + paging.count]
        if context.fault is FaultKind.SHORT_PAGE and first + len(page) < total:
            context.applied.append(context.fault)
            page = page[: len(page) // 2]
        origin = context.request.origin
        resources = [
            self.render(kind_name, resource, origin, *selections[kind_name])
            for kind_name, resource in page
        ]
        items_per_page = paging.asked if quirks.items_per_page_echoes_count else len(resources)
        return json_response(
            200,
            {
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": total,
                "itemsPerPage": items_per_page,
                "startIndex": paging.start_index,
                "Resources": resources,
            },
        )

    def _filtered(
        self, candidates: list[tuple[str, Resource]], text: str
    ) -> list[tuple[str, Resource]]:
        """The candidates ``text`` matches (RFC 7644 §3.4.2.2), or 400 ``invalidFilter``."""
        try:
            parsed = parse_filter(text)
        except FilterSyntaxError as exc:
            raise ScimRequestError(400, str(exc), "invalidFilter") from None
        table = filter_table(self.quirks)
        predicates = {
            kind_name: parsed.compile(schema=table, resource_type=kind_name)
            for kind_name in {kind_name for kind_name, _ in candidates}
        }
        # User.groups is computed, not stored: add it only when the filter can name it.
        with_groups = "groups" in text.lower()
        return [
            (kind_name, resource)
            for kind_name, resource in candidates
            if predicates[kind_name](
                self._with_groups(resource) if with_groups and kind_name == USER else resource
            )
        ]

    def _with_groups(self, user: Resource) -> Resource:
        groups = self._memberships(user["id"])
        if not groups:
            return user
        return {**user, "groups": [self._membership("", *group) for group in groups]}

    def _drift(self, kind: Kind) -> None:
        """Change the listing under a paging client: remove the first resource or add one."""
        assert self._injector is not None
        existing = self.store.all(kind.name)
        if existing and self._injector.pick(2) == 0:
            self._remove(kind, existing[0]["id"])
            return
        name = f"drift-{uuid.uuid4().hex[:12]}"
        data = {"schemas": [kind.schema], "userName" if kind.name == USER else "displayName": name}
        resource = self._stored(kind, read_resource(data, kind, self._table), str(uuid.uuid4()))
        self.store.put_first(kind.name, resource)

    # -- writing ------------------------------------------------------------------------

    def _stored(
        self, kind: Kind, resource: Resource, resource_id: str, created: str | None = None
    ) -> Resource:
        now = _now_text(self.clock())
        schemas = resource.pop("schemas", [kind.schema])
        meta = {
            "resourceType": kind.name,
            "created": created or now,
            "lastModified": now,
            "version": self.store.next_version(),
        }
        return {"schemas": schemas, "id": resource_id, **resource, "meta": meta}

    def _check_unique(self, kind: Kind, resource: Resource, own_id: str | None) -> None:
        attribute = "userName" if kind.name == USER else "displayName"
        value = resource.get(attribute)
        if not isinstance(value, str):
            return
        owner = self.store.owner_of_name(kind.name, value)
        if owner is not None and owner != own_id:
            raise ScimRequestError(
                409, f"{attribute} {value!r} is already taken by {kind.name} {owner}", "uniqueness"
            )

    def _check_members(self, resource: Resource, group_id: str | None) -> None:
        members = resource.get("members")
        if members is None:
            return
        checked: list[dict[str, Any]] = []
        seen: set[str] = set()
        for member in members:
            value = member.get("value")
            if not value:
                raise ScimRequestError(
                    400, "every member needs a 'value' (the member's id)", "invalidValue"
                )
            actual = self.store.type_of(value)
            if actual is None:
                raise ScimRequestError(400, f"member {value!r} does not exist", "invalidValue")
            if value == group_id:
                raise ScimRequestError(400, "a group cannot be a member of itself", "invalidValue")
            declared = member.get("type")
            if isinstance(declared, str) and declared.lower() != actual.lower():
                raise ScimRequestError(
                    400, f"member {value!r} is a {actual}, not a {declared}", "invalidValue"
                )
            if value not in seen or self.quirks.duplicate_members_on_add:
                seen.add(value)
                entry = {k: v for k, v in member.items() if k != "$ref"}
                entry["type"] = actual
                checked.append(entry)
        if checked:
            resource["members"] = checked
        else:
            del resource["members"]  # RFC 7643 §2.5: an empty list is the same as unassigned

    def _admit(self, kind: Kind, resource: Resource, own_id: str | None) -> None:
        self._check_unique(kind, resource, own_id)
        if kind.name == GROUP:
            self._check_members(resource, own_id)

    def _create(self, kind: Kind, context: _Context) -> WireResponse:
        resource = self.create(kind.name, parse_json(context.request.body))
        return self._resource_response(201, kind, resource, context, location=True)

    def create(self, kind_name: str, data: Any, resource_id: str | None = None) -> Resource:
        """Validate and store a new resource (the caller holds the lock)."""
        kind = KIND_BY_NAME[kind_name]
        resource = read_resource(data, kind, self._table)
        if resource_id is not None and self.store.type_of(resource_id) is not None:
            raise ScimRequestError(409, f"id {resource_id!r} is already taken", "uniqueness")
        self._admit(kind, resource, resource_id)
        stored = self._stored(kind, resource, resource_id or str(uuid.uuid4()))
        self.store.put(kind.name, stored)
        return stored

    def _check_version(self, resource: Resource, if_match: str | None) -> None:
        if if_match is None or not self.quirks.etag_supported:
            return
        tags = _etags(if_match)
        version = resource["meta"]["version"]
        if "*" in tags or _entity_tag(version) in tags:
            return
        raise ScimRequestError(
            412, f"If-Match {if_match} does not match the current version {version}"
        )

    def _replace(self, kind: Kind, resource_id: str, context: _Context) -> WireResponse:
        current = self._existing(kind, resource_id)
        self._check_version(current, context.request.headers.get("if-match"))
        data = parse_json(context.request.body)
        resource = read_resource(data, kind, self._table)
        for name in self._never_returned[kind.name]:
            # A client cannot read a writeOnly value back, so a PUT that leaves it out
            # keeps it rather than wiping it (RFC 7644 §3.5.1 allows either).
            if name not in resource and name in current:
                resource[name] = current[name]
        stored = self._save(kind, current, resource)
        return self._resource_response(200, kind, stored, context)

    def _save(self, kind: Kind, current: Resource, resource: Resource) -> Resource:
        """Store ``resource`` as the new state of ``current``; unchanged keeps its version."""
        resource_id = current["id"]
        self._admit(kind, resource, resource_id)
        unchanged = {k: v for k, v in current.items() if k not in ("id", "meta")}
        if {"schemas": resource.get("schemas", current["schemas"]), **resource} == unchanged:
            return current
        stored = self._stored(kind, resource, resource_id, created=current["meta"]["created"])
        self.store.put(kind.name, stored)
        return stored

    def _patch(self, kind: Kind, resource_id: str, context: _Context) -> WireResponse:
        """RFC 7644 §3.5.2: apply every operation or none, then check the result like a PUT."""
        if not self.quirks.patch_supported:
            raise ScimRequestError(501, "PATCH is not supported by this service provider")
        current = self._existing(kind, resource_id)
        self._check_version(current, context.request.headers.get("if-match"))
        patch: PatchOp = read_message(parse_json(context.request.body), PatchOp, PATCH_OP_SCHEMA)
        cap = self.quirks.max_members_per_patch_operation
        if kind.name == GROUP and cap is not None:
            _check_member_cap(patch, cap)
        extensions = self._table.extension_urns(kind.name)
        operations = [_without_extension_schemas(op, extensions) for op in patch.operations]
        try:
            if kind.name == GROUP and self.quirks.duplicate_members_on_add:
                patched = self._apply_appending_members(current, operations)
            else:
                patched = apply_patch(
                    current, operations, schema=self._table, resource_type=kind.name
                )
        except PatchError as exc:
            raise ScimRequestError(exc.status, exc.detail, exc.scim_type) from None
        try:
            resource = read_resource(patched, kind, self._table)
        except ScimRequestError as problem:
            # The operations applied, but what they made is not a valid resource.
            raise ScimRequestError(
                400, f"the patched {kind.name} is invalid: {problem.detail}", "invalidValue"
            ) from None
        stored = self._save(kind, current, resource)
        return self._resource_response(200, kind, stored, context)

    def _apply_appending_members(
        self, group: Resource, operations: list[PatchOperation]
    ) -> Resource:
        """Apply ``operations`` one by one, each ``add`` appending members already there."""
        patched = group
        for operation in operations:
            present = set(member_ids(patched))
            patched = apply_patch(patched, [operation], schema=self._table, resource_type=GROUP)
            if operation.op == "add":
                again = [m for m in _added_members(operation) if m.get("value") in present]
                if again:
                    patched = {**patched, "members": [*patched.get("members", ()), *again]}
        return patched

    def _delete(self, kind: Kind, resource_id: str, context: _Context) -> WireResponse:
        current = self._existing(kind, resource_id)
        self._check_version(current, context.request.headers.get("if-match"))
        self._remove(kind, resource_id)
        return WireResponse(status=204)

    def _remove(self, kind: Kind, resource_id: str) -> None:
        """Delete a resource and take it out of every group it was a member of."""
        for group_id in self.store.groups_of(resource_id):
            group = self.store.get(GROUP, group_id)
            if group is None:
                continue
            kept = [m for m in group.get("members", ()) if m.get("value") != resource_id]
            changed = {k: v for k, v in group.items() if k not in ("id", "meta", "members")}
            if kept:
                changed["members"] = kept
            stored = self._stored(
                KIND_BY_NAME[GROUP], changed, group_id, created=group["meta"]["created"]
            )
            self.store.put(GROUP, stored)
        self.store.delete(kind.name, resource_id)

    # -- bulk ---------------------------------------------------------------------------

    def _bulk(self, context: _Context) -> WireResponse:
        """RFC 7644 §3.7: run each operation as its own request, resolving ``bulkId:``."""
        bulk: BulkRequest = read_message(
            parse_json(context.request.body), BulkRequest, BULK_REQUEST_SCHEMA
        )
        operations = bulk.operations
        if len(operations) > self.max_bulk_operations:
            raise ScimRequestError(
                413,
                f"the bulk request has {len(operations)} operations; this server accepts at "
                f"most {self.max_bulk_operations}",
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
                result = self._bulk_operation(operation, created, context.request.origin)
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
        self, operation: BulkOperation, created: dict[str, str], origin: str
    ) -> dict[str, Any]:
        method = operation.method.upper()
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
                path=self.base_path + path,
                headers=headers,
                body=body,
                origin=origin,
            )
            response = self._dispatch(method, route, _Context(request=request, params={}))
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
            location = f"{origin}{self.base_path}{path}"
        if location:
            result["location"] = location
        if version:
            result["version"] = version
        return result


def _html(status: int, body: bytes) -> WireResponse:
    return WireResponse(
        status=status, headers=(("Content-Type", "text/html; charset=utf-8"),), body=body
    )


def _booleans_as_strings(value: Any) -> Any:
    """``value`` with every boolean written as ``"True"`` or ``"False"``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return {key: _booleans_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_booleans_as_strings(item) for item in value]
    return value


def _split_paths(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [p for p in (part.strip() for part in value.split(",")) if p]
    return [str(v) for v in value]


@attrs.frozen(kw_only=True)
class _Context:
    request: WireRequest
    params: dict[str, str]
    fault: FaultKind | None = None
    applied: list[FaultKind] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class _Listing:
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    start_index: object = None
    count: object = None
    attributes: str | None = None
    excluded: str | None = None


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


def _bulk_result(operation: BulkOperation, problem: ScimRequestError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "method": operation.method.upper(),
        "status": str(problem.status),
        "response": error_body(problem.status, problem.detail, problem.scim_type),
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
