"""A scriptable SCIM target behind ``httpx.MockTransport``, for the clients' unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["BASE", "MockTarget", "json_response", "scim_error"]

BASE = "https://scim.example.com/v2"

Handler = Callable[[httpx.Request], httpx.Response]
Answer = Handler | httpx.Response | type[httpx.RequestError]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A SCIM JSON answer."""
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/scim+json", **(headers or {})},
    )


def scim_error(status: int, scim_type: str | None = None, detail: str = "nope") -> httpx.Response:
    """A SCIM error body (RFC 7644 §3.12)."""
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    if scim_type:
        body["scimType"] = scim_type
    return json_response(status, body)


class MockTarget:
    """Routes ``(method, path)`` to handlers; a handler may be a list answered in turn.

    ``requests`` keeps every request received. Unrouted requests answer 404.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer ``method path`` (as sent, percent-escapes included) with ``answers`` in turn.

        The last answer repeats.
        An answer is a response, a handler, or an httpx exception class to raise (as
        the transport would, with the request attached).
        """
        self.routes[(method, path)] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.raw_path.decode().split("?")[0]
        answers = self.routes.get((request.method, path))
        if not answers:
            return scim_error(404, detail=f"no route for {request.method} {path}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, type):
            raise answer(f"simulated {answer.__name__}", request=request)
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def transport(self) -> httpx.MockTransport:
        """The transport to give an ``httpx.Client``."""
        return httpx.MockTransport(self)

    def async_transport(self) -> httpx.MockTransport:
        """The same, for an ``httpx.AsyncClient``."""
        return httpx.MockTransport(self)

    def sent(self, method: str) -> list[httpx.Request]:
        """The requests received with ``method``."""
        return [r for r in self.requests if r.method == method]
