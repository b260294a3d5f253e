"""The in-process front end: httpx transports that call the service directly, no sockets.

Connection faults become the exceptions httpx raises for the real thing: a dropped
connection is :class:`httpx.ReadError`, a timeout :class:`httpx.ReadTimeout`.
Latency goes through the server's sleep function, so tests need not wait.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING

import httpx

from ._wire import WireRequest, WireResponse

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._service import ScimService

__all__ = ["AsyncInProcessTransport", "InProcessTransport"]


def _wire_request(request: httpx.Request, body: bytes) -> WireRequest:
    url = request.url
    origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    return WireRequest(
        method=request.method,
        path=url.path,
        query=url.query.decode("ascii", errors="replace"),
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw},
        body=body,
        origin=origin,
    )


def _http_response(request: httpx.Request, response: WireResponse) -> httpx.Response:
    if response.disconnect == "reset":
        raise httpx.ReadError("connection reset by peer (injected fault)", request=request)
    if response.disconnect == "timeout":
        raise httpx.ReadTimeout(
            "timed out waiting for the answer (injected fault)", request=request
        )
    return httpx.Response(
        response.status, headers=list(response.headers), content=response.body, request=request
    )


class InProcessTransport(httpx.BaseTransport):
    """Send ``httpx.Client`` requests straight to a service in this process."""

    def __init__(self, service: ScimService, sleep: Callable[[float], object] | None) -> None:
        self._service = service
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the service."""
        response = self._service.handle(_wire_request(request, request.read()))
        if response.delay:
            (self._sleep or time.sleep)(response.delay)
        return _http_response(request, response)


class AsyncInProcessTransport(httpx.AsyncBaseTransport):
    """Send ``httpx.AsyncClient`` requests straight to a service in this process.

    The service answers without awaiting anything, so concurrent tasks interleave
    between requests, never inside one.
    """

    def __init__(self, service: ScimService, sleep: Callable[[float], object] | None) -> None:
        self._service = service
        self._sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the service."""
        response = self._service.handle(_wire_request(request, await request.aread()))
        if response.delay:
            if self._sleep is None:
                await asyncio.sleep(response.delay)
            else:
                outcome = self._sleep(response.delay)
                if inspect.isawaitable(outcome):
                    await outcome
        return _http_response(request, response)
