"""A transport in front of a SCIM server whose group listings never show members."""

from __future__ import annotations

import json

import httpx

__all__ = ["UnlistedMembers"]


class UnlistedMembers(httpx.AsyncBaseTransport):
    """In front of ``inner``: every ListResponse of groups leaves ``members`` out, even
    when ``attributes=members`` asks for them; a group read by id shows them, as some
    real targets do."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Pass the request to ``inner``; strip members from a listing of groups."""
        response = await self.inner.handle_async_request(request)
        if request.url.path.rstrip("/").split("/")[-1] not in ("Groups", ".search"):
            return response
        body = json.loads(await response.aread())
        if not isinstance(body, dict) or "Resources" not in body:
            return response
        for resource in body["Resources"]:
            resource.pop("members", None)
        return httpx.Response(
            response.status_code, headers={"Content-Type": "application/scim+json"}, json=body
        )

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()
