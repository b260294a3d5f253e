"""``ScimTestServer``: the in-memory SCIM service provider, with its ways to run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..codec import from_scim, to_scim
from ..errors import ConfigurationError, ResourceValidationError
from ..models import Group, User
from ._http import HttpFrontend
from ._log import RequestLog
from ._quirks import Quirks
from ._service import ScimService
from ._store import GROUP, USER
from ._transport import AsyncInProcessTransport, InProcessTransport
from ._wire import ScimRequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from ._faults import Faults

__all__ = ["ScimTestServer"]

R = TypeVar("R", User, Group)

#: The host in-process clients address; the transport never resolves it.
# Loopback, so a ScimClient accepts it without an insecure-http opt-in; no socket opens.
IN_PROCESS_ORIGIN = "http://localhost"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ScimTestServer:
    """A SCIM 2.0 service provider held in memory, for trying a sync safely.

    It serves ``/Users``, ``/Groups``, ``/Bulk``, ``/.search`` and the discovery
    endpoints as RFC 7644 says: filters, sorting, paging, projection, ETags and
    ``If-Match``, uniqueness, referential integrity of group members, a computed
    ``User.groups``, bearer-token auth, SCIM errors for everything a client can
    get wrong. :class:`Faults` inject what goes wrong in production; :class:`Quirks`
    reproduce what real providers do differently.

    Run it in-process (no sockets)::

        server = ScimTestServer(token="t0k3n")
        with server.client() as http:          # an httpx.Client, auth header set
            http.post("/Users", json={...})

    or over HTTP on a free loopback port::

        with ScimTestServer() as server:
            httpx.get(server.url + "/Users")

    ``sleep`` replaces real waiting for latency faults (tests pass a recorder);
    ``clock`` gives ``meta.created``/``lastModified`` and ``Retry-After`` dates.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        users: Iterable[User | Mapping[str, Any]] = (),
        groups: Iterable[Group | Mapping[str, Any]] = (),
        faults: Faults | None = None,
        quirks: Quirks | None = None,
        base_path: str = "/scim/v2",
        host: str = "127.0.0.1",
        port: int = 0,
        default_page_size: int = 100,
        max_page_size: int = 1000,
        max_body_bytes: int = 1_048_576,
        max_bulk_operations: int = 1000,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 1 <= default_page_size <= max_page_size:
            raise ConfigurationError(
                "need 1 <= default_page_size <= max_page_size, got "
                f"{default_page_size} and {max_page_size}"
            )
        self.requests = RequestLog()
        """Every request received, with counts by method and path."""
        self._service = ScimService(
            token=token,
            base_path=base_path,
            quirks=quirks or Quirks(),
            faults=None,
            default_page_size=default_page_size,
            max_page_size=max_page_size,
            max_body_bytes=max_body_bytes,
            max_bulk_operations=max_bulk_operations,
            clock=clock,
            log=self.requests,
        )
        self._host = host
        self._port = port
        self._sleep = sleep
        self._http: HttpFrontend | None = None
        self.seed(users=users, groups=groups)
        self.faults = faults

    # -- settings ---------------------------------------------------------------------

    @property
    def faults(self) -> Faults | None:
        """The faults injected from the next request on; None turns them off.

        Assigning restarts the seeded draw, so seed data fault-free, then turn faults on.
        """
        return self._service.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self._service.faults = faults

    @property
    def quirks(self) -> Quirks:
        """The quirks this server has (settable at run time)."""
        return self._service.quirks

    @quirks.setter
    def quirks(self, quirks: Quirks) -> None:
        with self._service.lock:
            self._service.quirks = quirks

    @property
    def base_path(self) -> str:
        """The path every endpoint is under (``/scim/v2``)."""
        return self._service.base_path

    @property
    def token(self) -> str | None:
        """The bearer token clients must send, or None when none is required."""
        return self._service.token

    @property
    def headers(self) -> dict[str, str]:
        """The headers a client needs: ``Authorization`` when a token is set."""
        return self._service.authorization()

    # -- running over HTTP -------------------------------------------------------------

    def start(self) -> ScimTestServer:
        """Serve over HTTP on the loopback port (a free one unless ``port`` was given)."""
        if self._http is None:
            self._http = HttpFrontend(
                self._service, host=self._host, port=self._port, sleep=self._sleep
            )
        return self

    def stop(self) -> None:
        """Stop serving over HTTP; the data stays (``start()`` serves it again)."""
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> ScimTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL over HTTP, ``http://127.0.0.1:<port>/scim/v2`` (needs :meth:`start`)."""
        if self._http is None:
            raise ConfigurationError(
                "the server is not serving HTTP: call start() or use it as a context manager"
            )
        return f"http://{self._http.host}:{self._http.port}{self.base_path}"

    def __repr__(self) -> str:
        where = self.url if self._http is not None else "in-process"
        with self._service.lock:
            users = len(self._service.store.resources[USER])
            groups = len(self._service.store.resources[GROUP])
        return f"<ScimTestServer {where}: {users} users, {groups} groups>"

    # -- running in-process ------------------------------------------------------------

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport that answers from this server, without sockets."""
        return InProcessTransport(self._service, self._sleep)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An httpx async transport that answers from this server, without sockets."""
        return AsyncInProcessTransport(self._service, self._sleep)

    @property
    def in_process_url(self) -> str:
        """The base URL in-process clients use (any host works; this one reads well)."""
        return IN_PROCESS_ORIGIN + self.base_path

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` wired in-process, with the base URL and auth header set."""
        kwargs.setdefault("base_url", self.in_process_url)
        kwargs["headers"] = {**self.headers, **kwargs.get("headers", {})}
        return httpx.Client(transport=self.transport(), **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired in-process, with the base URL and auth header set."""
        kwargs.setdefault("base_url", self.in_process_url)
        kwargs["headers"] = {**self.headers, **kwargs.get("headers", {})}
        return httpx.AsyncClient(transport=self.async_transport(), **kwargs)

    # -- seed data and inspection -------------------------------------------------------

    def seed(
        self,
        *,
        users: Iterable[User | Mapping[str, Any]] = (),
        groups: Iterable[Group | Mapping[str, Any]] = (),
    ) -> tuple[list[User], list[Group]]:
        """Store users, then groups, as a client's POSTs would, but without faults or log.

        An ``id`` given in seed data is kept, so groups can name their members by it.
        Raises :class:`~scimsync.errors.ResourceValidationError` for data the server
        would refuse (an invalid resource, a taken userName, a missing member).
        """
        created_users = [self.add_user(user) for user in users]
        created_groups = [self.add_group(group) for group in groups]
        return created_users, created_groups

    def add_user(self, user: User | Mapping[str, Any]) -> User:
        """Store one user (see :meth:`seed`) and return it as the server holds it."""
        return self._add(USER, User, user)

    def add_group(self, group: Group | Mapping[str, Any]) -> Group:
        """Store one group (see :meth:`seed`) and return it as the server holds it."""
        return self._add(GROUP, Group, group)

    def _add(self, kind_name: str, cls: type[R], resource: R | Mapping[str, Any]) -> R:
        data = to_scim(resource) if isinstance(resource, (User, Group)) else dict(resource)
        resource_id = data.get("id")
        with self._service.lock:
            try:
                stored = self._service.create(
                    kind_name, data, resource_id if isinstance(resource_id, str) else None
                )
            except ScimRequestError as problem:
                raise ResourceValidationError(
                    f"the server refuses this {kind_name}", [problem.detail]
                ) from None
            rendered = self._service.render(kind_name, stored, self._origin(), quirks=False)
        return from_scim(rendered, cls)

    def _origin(self) -> str:
        if self._http is not None:
            return f"http://{self._http.host}:{self._http.port}"
        return IN_PROCESS_ORIGIN

    def users(self) -> list[User]:
        """Every user, oldest first, as a GET would return them (``groups`` filled in)."""
        return self._all(USER, User)

    def groups(self) -> list[Group]:
        """Every group, oldest first, with all members (whatever the quirks)."""
        return self._all(GROUP, Group)

    def user(self, user_id: str) -> User | None:
        """The user ``user_id``, or None."""
        return self._one(USER, User, user_id)

    def group(self, group_id: str) -> Group | None:
        """The group ``group_id``, or None."""
        return self._one(GROUP, Group, group_id)

    def _all(self, kind_name: str, cls: type[R]) -> list[R]:
        with self._service.lock:
            rendered = [
                self._service.render(kind_name, r, self._origin(), quirks=False)
                for r in self._service.store.all(kind_name)
            ]
        return [from_scim(r, cls) for r in rendered]

    def _one(self, kind_name: str, cls: type[R], resource_id: str) -> R | None:
        with self._service.lock:
            stored = self._service.store.get(kind_name, resource_id)
            if stored is None:
                return None
            rendered = self._service.render(kind_name, stored, self._origin(), quirks=False)
        return from_scim(rendered, cls)

    def reset(self) -> None:
        """Forget every resource and every logged request (settings stay)."""
        with self._service.lock:
            self._service.store.clear()
        self.requests.clear()
