"""A transport in front of a SCIM server that never stores a home email."""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["DroppingHomeEmails"]


def _no_home(values: Any) -> Any:
    if not isinstance(values, list):
        return values
    return [v for v in values if not (isinstance(v, dict) and v.get("type") == "home")]


class DroppingHomeEmails(httpx.AsyncBaseTransport):
    """In front of ``inner``: writes to users are accepted, but any email of type
    ``home`` they carry is left out of what is stored (the work email is kept), as a
    target keeping one email per user does. A PATCH left with nothing to do is
    answered with the user as it is."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Take home emails out of user writes; pass everything to ``inner``."""
        if "/Users" not in request.url.path or request.method not in ("POST", "PUT", "PATCH"):
            return await self.inner.handle_async_request(request)
        body = json.loads(await request.aread())
        if request.method in ("POST", "PUT"):
            if "emails" in body:
                body["emails"] = _no_home(body["emails"])
        else:
            kept = []
            for sent in body.get("Operations", []):
                op = dict(sent)
                path = op.get("path") or ""
                if path.replace(" ", "").startswith('emails[type eq"home"]'.replace(" ", "")):
                    continue
                if path == "emails":
                    op["value"] = _no_home(op.get("value"))
                elif not path and isinstance(op.get("value"), dict) and "emails" in op["value"]:
                    op["value"] = {**op["value"], "emails": _no_home(op["value"]["emails"])}
                kept.append(op)
            if not kept:
                read = httpx.Request("GET", request.url, headers=request.headers)
                return await self.inner.handle_async_request(read)
            body["Operations"] = kept
        content = json.dumps(body).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        forwarded = httpx.Request(request.method, request.url, headers=headers, content=content)
        return await self.inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()
