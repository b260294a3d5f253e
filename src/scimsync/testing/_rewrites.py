"""Answers a fault or a quirk puts in place of the real one, or makes of it.

Three moments, in the order the service meets them:

- :func:`infrastructure_answer`: before anything is read (not even the token), an
  infrastructure fault answers instead (429 and 503 with ``Retry-After``, 500, a
  proxy's HTML 502, a dropped connection, a timeout); nothing is processed.
- :func:`quirky_answer`: the quirks that rewrite whole answers (no ``Location`` on
  201, booleans as ``"True"``/``"False"`` strings), applied once on the way out, so
  a bulk response holds its operations' answers as they were.
- :func:`late_answer`: the faults that alter a processed answer: commit-then-fail
  (the write is applied, the client gets ``Faults.after_commit``), malformed JSON
  (the body cut short), latency (a ``delay`` the front end carries out).

Connection faults are only described here (``WireResponse.disconnect``, ``delay``);
the front ends carry them out. No clock but the one given.
"""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import attrs

from ._faults import FaultKind, Faults
from ._wire import WireResponse, dump_json, error_body, json_response

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ._quirks import Quirks
    from ._routes import Context

__all__ = ["infrastructure_answer", "late_answer", "quirky_answer"]

_BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
_GATEWAY_TIMEOUT_HTML = (
    b"<html><head><title>504 Gateway Time-out</title></head><body>"
    b"<center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>\n"
)


def infrastructure_answer(
    fault: FaultKind | None, faults: Faults | None, clock: Callable[[], datetime]
) -> WireResponse | None:
    """The answer an infrastructure fault gives instead of processing, or None."""
    if fault is FaultKind.TOO_MANY_REQUESTS:
        return json_response(
            429,
            error_body(429, "too many requests; slow down", "tooMany"),
            (("Retry-After", _retry_after(faults, clock)),),
        )
    if fault is FaultKind.SERVICE_UNAVAILABLE:
        return json_response(
            503,
            error_body(503, "the service is unavailable; try again later"),
            (("Retry-After", _retry_after(faults, clock)),),
        )
    if fault is FaultKind.INTERNAL_ERROR:
        return json_response(500, error_body(500, "internal server error (injected)"))
    if fault is FaultKind.BAD_GATEWAY:
        return _html(502, _BAD_GATEWAY_HTML)
    if fault is FaultKind.CONNECTION_RESET:
        return WireResponse(status=0, disconnect="reset")
    if fault is FaultKind.TIMEOUT:
        return WireResponse(status=0, disconnect="timeout")
    return None


def quirky_answer(quirks: Quirks, response: WireResponse) -> WireResponse:
    """The answer as the quirks that rewrite whole answers leave it."""
    if not quirks.location_header and response.status == 201:
        headers = tuple(h for h in response.headers if h[0].lower() != "location")
        response = attrs.evolve(response, headers=headers)
    if quirks.string_booleans and 200 <= response.status < 300 and response.body:
        body = _booleans_as_strings(json.loads(response.body))
        response = attrs.evolve(response, body=dump_json(body))
    return response


def late_answer(context: Context, response: WireResponse, faults: Faults | None) -> WireResponse:
    """The answer as a fault that alters a processed one leaves it (noted in
    ``context.applied`` when it took effect)."""
    fault = context.fault
    faults = faults or Faults()
    if fault is FaultKind.COMMIT_THEN_FAIL and 200 <= response.status < 300:
        context.applied.append(fault)
        after = faults.after_commit
        if after in ("reset", "timeout"):
            return WireResponse(status=0, disconnect="reset" if after == "reset" else "timeout")
        status = int(after)
        if status == 502:
            return _html(502, _BAD_GATEWAY_HTML)
        if status == 504:
            return _html(504, _GATEWAY_TIMEOUT_HTML)
        return json_response(status, error_body(status, "internal server error (injected)"))
    if fault is FaultKind.MALFORMED_JSON and response.body:
        context.applied.append(fault)
        cut = response.body[: max(1, len(response.body) // 2)]
        return attrs.evolve(response, body=cut)
    if fault is FaultKind.LATENCY:
        context.applied.append(fault)
        return attrs.evolve(response, delay=faults.latency)
    return response


def _retry_after(faults: Faults | None, clock: Callable[[], datetime]) -> str:
    faults = faults or Faults()
    if faults.retry_after_http_date:
        moment = clock() + timedelta(seconds=faults.retry_after)
        return formatdate(moment.timestamp(), usegmt=True)
    seconds = faults.retry_after
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _html(status: int, body: bytes) -> WireResponse:
    return WireResponse(
        status=status, headers=(("Content-Type", "text/html; charset=utf-8"),), body=body
    )


def _booleans_as_strings(value: Any) -> Any:
    """``value`` with every boolean written as ``"True"`` or ``"False"``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return {key: _booleans_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_booleans_as_strings(item) for item in value]
    return value
