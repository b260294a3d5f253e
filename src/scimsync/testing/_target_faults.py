"""Faults injected into a target's HTTP traffic, for the conformance kit.

:class:`TargetFaults` hands out an httpx transport (:class:`FaultyTransport`) that a
target's client is built on; while a fault is on, requests answer 500, time out, or
lose the answer to a write that was applied.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Literal

import httpx

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FaultMode", "FaultyTransport", "TargetFaults"]

FaultMode = Literal["server_error", "timeout", "lost_answer"]
"""What :meth:`TargetFaults.injecting` makes the application do: answer 500
(``server_error``), not answer (``timeout``, an :class:`httpx.ReadTimeout`), or apply a
write and lose its answer (``lost_answer``: writes only, reads pass)."""


class TargetFaults:
    """Faults the kit injects into a target's HTTP traffic, while it checks it.

    Build the target's ``httpx.AsyncClient`` (or ``httpx.Client``) on
    ``faults.transport(inner)`` in the factory, and pass ``faults=faults`` to
    :func:`check_target`. Requests pass untouched unless a fault is on; ``requests``
    counts them. :meth:`injecting` switches one on, in your own tests too.
    """

    def __init__(self) -> None:
        self.requests = 0
        self._mode: FaultMode | None = None
        self._from = 0

    def transport(self, inner: httpx.AsyncBaseTransport | httpx.BaseTransport) -> FaultyTransport:
        """An httpx transport sending through ``inner``, faulty when a fault is on."""
        return FaultyTransport(self, inner)

    @contextlib.contextmanager
    def injecting(self, mode: FaultMode, *, after: int = 0) -> Iterator[None]:
        """Inject ``mode`` into every request but the next ``after`` ones, until the
        block ends."""
        self._mode, self._from = mode, self.requests + after
        try:
            yield
        finally:
            self._mode = None

    def _next(self, request: httpx.Request) -> FaultMode | None:
        """Count one request; the fault it gets, if any."""
        self.requests += 1
        if self._mode is None or self.requests <= self._from:
            return None
        if self._mode == "lost_answer" and request.method in ("GET", "HEAD"):
            return None
        return self._mode


class FaultyTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """The transport :meth:`TargetFaults.transport` gives: ``inner``, with faults."""

    def __init__(
        self, faults: TargetFaults, inner: httpx.AsyncBaseTransport | httpx.BaseTransport
    ) -> None:
        self._faults = faults
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the inner transport, or fail as the fault says."""
        if not isinstance(self._inner, httpx.AsyncBaseTransport):
            raise ConfigurationError("an httpx.AsyncClient needs an async inner transport")
        mode = self._faults._next(request)
        if mode == "server_error":
            return _server_error(request)
        if mode == "timeout":
            raise httpx.ReadTimeout("no answer (fault injected by check_target)", request=request)
        response = await self._inner.handle_async_request(request)
        if mode == "lost_answer":
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("answer lost (fault injected by check_target)", request=request)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the inner transport, or fail as the fault says."""
        if not isinstance(self._inner, httpx.BaseTransport):
            raise ConfigurationError("an httpx.Client needs a sync inner transport")
        mode = self._faults._next(request)
        if mode == "server_error":
            return _server_error(request)
        if mode == "timeout":
            raise httpx.ReadTimeout("no answer (fault injected by check_target)", request=request)
        response = self._inner.handle_request(request)
        if mode == "lost_answer":
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost (fault injected by check_target)", request=request)
        return response

    async def aclose(self) -> None:
        """Close the inner transport."""
        if isinstance(self._inner, httpx.AsyncBaseTransport):
            await self._inner.aclose()

    def close(self) -> None:
        """Close the inner transport."""
        if isinstance(self._inner, httpx.BaseTransport):
            self._inner.close()


def _server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500, json={"detail": "fault injected by check_target", "status": 500}, request=request
    )
