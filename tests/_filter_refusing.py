"""A transport in front of a SCIM server that refuses PATCH paths with a value filter."""

from __future__ import annotations

import json

import httpx

__all__ = ["RefusingFilteredPaths"]


class RefusingFilteredPaths(httpx.AsyncBaseTransport):
    """In front of ``inner``: a PATCH with a value-filter path in any operation answers
    400 ``invalidPath`` and applies nothing, as several real targets do."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse a filtered PATCH; pass everything else to ``inner``."""
        if request.method == "PATCH":
            operations = json.loads(await request.aread()).get("Operations", [])
            if any("[" in (op.get("path") or "") for op in operations):
                return httpx.Response(
                    400,
                    json={
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "400",
                        "scimType": "invalidPath",
                        "detail": "filters are not supported in PATCH paths",
                    },
                )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()
