"""The SCIM service provider itself: one request value in, one response value out.

Rules of this module: no sockets, no threads of its own, no real clock and no
sleeping. Time comes from the ``clock`` it is given; connection faults (latency,
reset, timeout) are *described* in the :class:`~._wire.WireResponse` and carried out
by the front end. One lock makes each request atomic, so a write is applied whole
or not at all and concurrent clients see a consistent store.

Request processing, in order: route (``_routes``); draw a fault (infrastructure
faults answer before anything is read, ``_rewrites``); check the body size and the
bearer token; dispatch to the endpoint (a write that draws a locked database answers
there, before it is read); apply the quirks that rewrite an answer (no ``Location``,
string booleans); apply the faults that alter a processed answer (commit-then-fail,
malformed JSON, latency); log.

Each endpoint answers from a module of its own, all working on one store under the
lock taken here:

- ``_discovery``: ``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``;
- ``_resources``: GET, POST, PUT and DELETE of one resource, and the rules every
  write keeps (unique names, real members, versions);
- ``_patching``: PATCH, ending in the same save as a PUT;
- ``_queries``: listings and ``.search`` (filter, sort, page);
- ``_bulk``: ``/Bulk``, each operation dispatched back here as a request of its own;
- ``_render``: how a stored resource is shown (computed ``groups``, ``$ref``,
  projection), for all of them.

Quirks that refuse writes live in ``_refusals``, those that lose attributes or
filters in ``_lossy``: the endpoint modules call them where the behaviour happens.
"""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._bulk import answer_bulk
from ._discovery import answer_discovery, schema_table
from ._faults import FaultInjector, FaultKind, Faults
from ._log import LoggedRequest, RequestLog
from ._patching import answer_patch
from ._queries import Queries
from ._refusals import LockedWrites
from ._render import Renderer
from ._resources import Resources
from ._rewrites import infrastructure_answer, late_answer, quirky_answer
from ._routes import DISCOVERY, Context, Route, route_of
from ._store import Store
from ._validation import KINDS
from ._wire import ScimRequestError, WireRequest, WireResponse, error_response

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ._listing import Selection
    from ._quirks import Quirks

__all__ = ["ScimService"]

Resource = dict[str, Any]


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
        self._quirks = quirks
        self._locked_writes = LockedWrites(quirks)
        self.max_page_size = max_page_size
        self.max_body_bytes = max_body_bytes
        self.max_bulk_operations = max_bulk_operations
        self.clock = clock
        self.log = log
        self.store = Store()
        self.lock = threading.Lock()
        self._injector: FaultInjector | None = None
        self.faults = faults
        table = schema_table()
        self._renderer = Renderer(self.store, table, self.base_path)
        self._resources = Resources(self.store, table, self._renderer, clock)
        self._queries = Queries(
            self._resources, default_page_size=default_page_size, max_page_size=max_page_size
        )

    # -- settings ---------------------------------------------------------------------

    @property
    def quirks(self) -> Quirks:
        """The quirks from the next request on. Setting it restarts the locked-write draw."""
        return self._quirks

    @quirks.setter
    def quirks(self, quirks: Quirks) -> None:
        self._quirks = quirks
        self._locked_writes = LockedWrites(quirks)

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
        early = infrastructure_answer(fault, self.faults, self.clock) if fault is not None else None
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
        context = Context(
            request=request,
            params={k.lower(): v for k, v in parse_qsl(request.query, keep_blank_values=True)},
            quirks=self.quirks,
            fault=fault,
            applied=applied,
            injector=self._injector,
        )
        response = self._dispatch(method, route, context)
        # The whole-answer quirks once, on the way out: bulk reads its operations'
        # answers before this.
        return late_answer(context, quirky_answer(context.quirks, response), self.faults)

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

    def _dispatch(self, method: str, route: Route, context: Context) -> WireResponse:
        endpoint = route.endpoint
        if endpoint in DISCOVERY:
            return answer_discovery(
                route,
                context,
                base_path=self.base_path,
                max_results=self.max_page_size,
                max_operations=self.max_bulk_operations,
                max_payload_size=self.max_body_bytes,
            )
        if endpoint == "Bulk":
            return answer_bulk(
                context,
                dispatch=self._dispatch,
                base_path=self.base_path,
                max_operations=self.max_bulk_operations,
            )
        if endpoint == ".search":
            kinds = [route.kind] if route.kind is not None else list(KINDS.values())
            return self._queries.answer_search(kinds, context)
        kind = route.kind
        assert kind is not None
        if method != "GET":
            self._locked_writes.check()  # before anything is read: nothing is applied
        if route.item is None:
            if method == "GET":
                return self._queries.answer_query(kind, context)
            return self._resources.post(kind, context)
        if method == "GET":
            return self._resources.get(kind, route.item, context)
        if method == "PUT":
            return self._resources.put(kind, route.item, context)
        if method == "PATCH":
            return answer_patch(self._resources, kind, route.item, context)
        return self._resources.delete(kind, route.item, context)

    # -- the resources, for the server facade (the caller holds the lock) -------------

    def create(self, kind_name: str, data: Any, resource_id: str | None = None) -> Resource:
        """Validate and store a new resource, as a POST would."""
        return self._resources.create(kind_name, data, resource_id, quirks=self.quirks)

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
        return self._renderer.render(
            kind_name, resource, origin, include, exclude, quirks=self.quirks if quirks else None
        )
