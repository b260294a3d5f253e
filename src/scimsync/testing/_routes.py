"""Where a request goes (:func:`route_of`), and what it carries on its way (:class:`Context`).

Routing is by the path relative to the base path only: the endpoint, the resource
type, the item and the methods allowed there, plus whether a request is a listing
or a write (what faults are drawn for). A :class:`Context` is made once a request
is routed and checked, and holds what answering it needs besides the store: the
query parameters, the quirks it is answered with (read once, under the service
lock, so a request never sees two), and the fault drawn for it.
"""

from __future__ import annotations

import attrs

from ._faults import FaultInjector, FaultKind
from ._quirks import Quirks
from ._validation import KINDS, Kind
from ._wire import WireRequest

__all__ = ["DISCOVERY", "Context", "Route", "route_of"]

#: The discovery endpoints (RFC 7644 §4).
DISCOVERY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


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
        if head in DISCOVERY:
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


@attrs.frozen(kw_only=True)
class Context:
    """One routed request: its query parameters (names lower-cased), the quirks it is
    answered with, and the fault drawn for it.

    ``applied`` collects the drawn fault once it took effect (a short page cannot be
    shorter on the last page); ``injector`` is the draw's random state, for faults
    that pick (which resource drifts). A bulk operation gets a context of its own,
    without a fault.
    """

    request: WireRequest
    params: dict[str, str]
    quirks: Quirks
    fault: FaultKind | None = None
    applied: list[FaultKind] = attrs.field(factory=list)
    injector: FaultInjector | None = None
