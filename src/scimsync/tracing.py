"""OpenTelemetry traces of provisioning cycles: a span per cycle, per phase, per HTTP request.

Uses the OpenTelemetry API only (the ``opentelemetry`` extra brings
``opentelemetry-api``); the application sets up the SDK and its exporter, as for
any library. Without OpenTelemetry installed, :func:`instrument_tracing` does
nothing and returns None::

    from scimsync.tracing import instrument_tracing

    instrument_tracing(provisioner)     # spans go to the global tracer provider

The spans, each a child of the one above it:

- ``scimsync.cycle``: one cycle (``run_once``, ``plan``, ``apply``,
  ``provision_one``), with ``scimsync.cycle.id``, ``scimsync.cycle.kind``
  (``run``, ``plan``, ``apply``, ``provision_one``) and ``scimsync.target``; once
  reported, ``scimsync.cycle.mode``, ``scimsync.cycle.outcome``, the operations
  planned, applied, failed, skipped and held (``scimsync.operations.*``), the
  requests and retries (``scimsync.http.*``) and the guards that tripped
  (``scimsync.guards``). A cycle whose outcome is ``failed``, ``quarantined``,
  ``stopped`` or ``error``, or that raised, has the status ERROR.
- ``scimsync.read_source``, ``scimsync.list_target``, ``scimsync.plan``,
  ``scimsync.apply``: the phases (reading the source and listing the target run
  side by side).
- one CLIENT span per HTTP attempt to the target, after the semantic conventions
  for HTTP clients: named ``GET /scim/v2/Users/{id}``, with
  ``http.request.method``, ``url.template``, ``url.scheme``, ``server.address``,
  ``server.port``, ``http.response.status_code``, ``http.request.resend_count``
  for retries, and ``error.type`` (the status, or the exception's class) when it
  failed. It is recorded when the attempt ends, from the client's
  ``on_request`` hook, with the attempt's start and end times.

No span carries an attribute value, a user's key, a secret or an error message:
``url.full`` is left out (a resource's id may be an e-mail address: the path
stands as ``url.template``, ids replaced by ``{id}``), and errors are named by
their class. The report and the audit log hold the details.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from .sync import Observer, observe
from .sync._observer import target_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .client import RequestDetails
    from .sync import CycleKind, Phase, Provisioner, SyncReport

__all__ = ["Tracing", "instrument_tracing"]

logger = logging.getLogger("scimsync.sync")

_FAILED_OUTCOMES = frozenset({"failed", "quarantined", "stopped", "error"})


class Tracing(Observer):
    """An :class:`~scimsync.sync.Observer` recording OpenTelemetry spans (see the module).

    Made by :func:`instrument_tracing`. ``tracer`` is an OpenTelemetry tracer;
    ``target`` the value of ``scimsync.target``; ``base_url`` the target's SCIM URL,
    from which the requests' ``url.template`` and ``server.*`` come.
    """

    def __init__(self, tracer: Tracer, *, target: str, base_url: Any = None) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._client_kind = SpanKind.CLIENT
        self._status = Status
        self._error = StatusCode.ERROR
        self.target = target
        self._spans: dict[str, Span] = {}
        self._base = ""
        self._server: dict[str, Any] = {}
        self._base_path = ""
        host = getattr(base_url, "host", None)
        if isinstance(host, str) and host:
            self._base = str(base_url).rstrip("/")
            self._base_path = str(getattr(base_url, "path", "")).rstrip("/")
            scheme = str(getattr(base_url, "scheme", ""))
            port = getattr(base_url, "port", None)
            self._server = {
                "server.address": host,
                "server.port": port if isinstance(port, int) else _DEFAULT_PORTS.get(scheme, 0),
                "url.scheme": scheme,
            }

    def __repr__(self) -> str:
        return f"Tracing(target={self.target!r})"

    @contextlib.contextmanager
    def cycle(self, cycle_id: str, kind: CycleKind) -> Iterator[None]:
        """The ``scimsync.cycle`` span, current while the cycle runs."""
        attributes = {
            "scimsync.cycle.id": cycle_id,
            "scimsync.cycle.kind": kind,
            "scimsync.target": self.target,
        }
        with self._span("scimsync.cycle", attributes) as span:
            self._spans[cycle_id] = span
            try:
                yield
            finally:
                self._spans.pop(cycle_id, None)

    @contextlib.contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        """The phase's span, a child of the cycle's."""
        with self._span(f"scimsync.{name}", {}):
            yield

    def report(self, report: SyncReport) -> None:
        """The report's figures on the cycle's span; ERROR when the cycle went wrong."""
        span = self._spans.get(report.cycle_id)
        if span is None:
            return
        totals = report.totals()
        planned = sum(n for kind, n in report.planned.items() if kind not in ("held", "conflicts"))
        span.set_attributes(
            {
                "scimsync.cycle.mode": report.mode,
                "scimsync.cycle.outcome": report.outcome,
                "scimsync.operations.planned": planned,
                "scimsync.operations.applied": totals["applied"],
                "scimsync.operations.failed": totals["failed"],
                "scimsync.operations.skipped": totals["skipped"],
                "scimsync.operations.held": report.held,
                "scimsync.http.requests": report.requests,
                "scimsync.http.retries": report.retries,
                "scimsync.guards": [trip.name for trip in report.guards if not trip.forced],
            }
        )
        if report.outcome in _FAILED_OUTCOMES:
            span.set_status(self._status(self._error, report.outcome))

    def on_request(self, details: RequestDetails) -> None:
        """A CLIENT span for the attempt, from its start to now."""
        end = time.time_ns()
        start = end - max(int(details.elapsed_seconds * 1e9), 0)
        template = self._template(details.url)
        attributes: dict[str, Any] = {"http.request.method": details.method, **self._server}
        if template is not None:
            attributes["url.template"] = template
        if details.attempt > 1:
            attributes["http.request.resend_count"] = details.attempt - 1
        error: str | None = details.error
        if details.status is not None:
            attributes["http.response.status_code"] = details.status
            if details.status >= 400:
                error = str(details.status)
        if error is not None:
            attributes["error.type"] = error
        name = f"{details.method} {template}" if template is not None else details.method
        span = self._tracer.start_span(
            name, kind=self._client_kind, attributes=attributes, start_time=start
        )
        if error is not None:
            span.set_status(self._status(self._error))
        span.end(end_time=end)

    @contextlib.contextmanager
    def _span(self, name: str, attributes: dict[str, Any]) -> Iterator[Span]:
        # Exceptions are named by class only: their messages may quote a target's
        # answer, and so someone's attribute values.
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(self._status(self._error, type(exc).__qualname__))
                raise

    def _template(self, url: str) -> str | None:
        """``/scim/v2/Users/{id}`` for ``https://host/scim/v2/Users/2819c223``."""
        if not self._base or not url.startswith(self._base):
            return None
        parts = url[len(self._base) :].strip("/").split("/")
        kept = [
            part if index == 0 or part.startswith(".") else "{id}"
            for index, part in enumerate(parts)
            if part
        ]
        return "/".join([self._base_path, *kept]) or "/"


_DEFAULT_PORTS = {"https": 443, "http": 80}


def instrument_tracing(
    provisioner: Provisioner,
    *,
    tracer_provider: TracerProvider | None = None,
    target: str | None = None,
) -> Tracing | None:
    """Have ``provisioner`` record spans (see the module) with ``tracer_provider``
    (default: OpenTelemetry's global one), and return the observer.

    ``target`` is the value of ``scimsync.target`` (default: the host, and port, of
    the target's SCIM URL, else the target's class name). Without OpenTelemetry
    installed, nothing is done and None is returned.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        logger.info("OpenTelemetry is not installed: no spans are recorded")
        return None
    from . import __version__

    tracer = trace.get_tracer("scimsync", __version__, tracer_provider=tracer_provider)
    client = getattr(provisioner.target, "client", None)
    observer = Tracing(
        tracer,
        target=target or target_name(provisioner.target),
        base_url=getattr(client, "base_url", None),
    )
    observe(provisioner, observer)
    return observer
