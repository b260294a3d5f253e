"""What the front ends hand the service and get back: plain request and response values.

The service never touches a socket; the in-process transports and the HTTP front end
turn these values into httpx responses or bytes on a connection, and carry out the
connection faults a response asks for (``delay``, ``disconnect``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import attrs

from ..models import ERROR_SCHEMA

SCIM_JSON = "application/scim+json"

Disconnect = Literal["reset", "timeout"]


@attrs.frozen(kw_only=True)
class WireRequest:
    """One HTTP request as the service sees it.

    ``path`` is percent-decoded and without the query; ``headers`` has lower-cased
    names; ``origin`` is ``scheme://host[:port]`` as the client addressed the server,
    used to build absolute ``Location`` and ``$ref`` URLs.
    """

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    origin: str = "http://localhost"


@attrs.frozen(kw_only=True)
class WireResponse:
    """The service's answer, and what the front end must do to the connection.

    ``delay`` is the latency to add before answering, in seconds. ``disconnect`` asks
    the front end to drop the connection instead of answering (``"reset"``) or to
    leave the client waiting until it gives up (``"timeout"``).
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    disconnect: Disconnect | None = None

    def header(self, name: str) -> str | None:
        """Return the value of header ``name`` (case-insensitive), or None."""
        folded = name.lower()
        for key, value in self.headers:
            if key.lower() == folded:
                return value
        return None


class ScimRequestError(Exception):
    """Raised inside the service to answer with a SCIM error (RFC 7644 §3.12).

    ``body`` replaces the SCIM error object, for quirks that answer as some providers
    do (``{"detail": "database is locked"}``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers
        self.body = body
        super().__init__(f"{status} {scim_type or ''}: {detail}")


def dump_json(data: Any) -> bytes:
    """Serialise ``data`` compactly as UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(
    status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()
) -> WireResponse:
    """A SCIM JSON answer."""
    return WireResponse(
        status=status, headers=(("Content-Type", SCIM_JSON), *headers), body=dump_json(data)
    )


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    """The SCIM error object; ``status`` is written as a string, as RFC 7644 §3.12 shows."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def error_response(problem: ScimRequestError) -> WireResponse:
    """The answer for a :class:`ScimRequestError`."""
    return json_response(problem.status, problem_body(problem), problem.headers)


def problem_body(problem: ScimRequestError) -> dict[str, Any]:
    """The body answering ``problem``: its own, else the SCIM error object."""
    if problem.body is not None:
        return problem.body
    return error_body(problem.status, problem.detail, problem.scim_type)
