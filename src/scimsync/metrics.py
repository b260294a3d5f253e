"""Prometheus metrics of provisioning cycles and of their HTTP requests.

Needs the ``prometheus`` extra (``pip install 'scimsync[prometheus]'``, which brings
``prometheus-client``); nothing else in scimsync imports it. One call registers the
metrics and has a provisioner feed them::

    from scimsync.metrics import instrument, serve_metrics

    instrument(provisioner, target="acme")   # prometheus_client's default registry
    serve_metrics(9100)                      # for a script: http://host:9100/metrics

An application that serves its own ``/metrics`` passes its registry
(``instrument(provisioner, registry=registry)``); several provisioners (one per
target) share the registry's metrics, each under its own ``target`` label.

Every metric has the label ``target``: the name given to :func:`instrument`, by
default the host of the target's SCIM URL. No label ever holds a user's key or an
attribute value: each one's values come from a short fixed list.

===================================================  =========  =============================
metric                                               type       labels (besides ``target``)
===================================================  =========  =============================
``scimsync_cycles_total``                            counter    ``mode``, ``outcome``
``scimsync_cycle_duration_seconds``                  histogram  ``mode``
``scimsync_operations_total``                        counter    ``resource_type``, ``kind``,
                                                                ``outcome``
``scimsync_plan_operations``                         histogram
``scimsync_guard_trips_total``                       counter    ``guard``
``scimsync_held_operations``                         gauge
``scimsync_quarantined``                             gauge
``scimsync_source_records_not_used``                 gauge
``scimsync_last_success_timestamp_seconds``          gauge
``scimsync_http_requests_total``                     counter    ``method``, ``status_class``
``scimsync_http_request_duration_seconds``           histogram  ``method``
``scimsync_http_retries_total``                      counter
``scimsync_http_rate_limited_total``                 counter
===================================================  =========  =============================

- cycles: ``mode`` is the report's (``full``, ``incremental``, ``apply``, ``one``
  for :meth:`~scimsync.Provisioner.provision_one`), ``outcome`` the report's
  (``ok``, ``unchanged``, ``failed``, ``blocked``, ``quarantined``, ``stopped``,
  ``error``); a cycle stopped by an exception, with no report, counts as
  ``error``. A plan made without applying it is no cycle.
- operations: one per operation of a cycle's plan that was applied, failed or
  skipped; ``scimsync_plan_operations`` is the number planned per cycle that read
  the target (held ones left out).
- guards: ``scimsync_guard_trips_total`` counts the trips that held operations
  (``guard`` is one of :data:`scimsync.engine.GUARDS`); ``scimsync_held_operations``
  is how many the last cycle held.
- ``scimsync_quarantined`` is 1 while the last cycle was quarantined (too many
  writes failed), ``scimsync_source_records_not_used`` how many source records the
  last cycle's mapping could not use, and
  ``scimsync_last_success_timestamp_seconds`` when the last cycle ending ``ok`` or
  ``unchanged`` finished (Unix time). These follow cycles, not
  :meth:`~scimsync.Provisioner.provision_one`.
- HTTP: one request per attempt on the wire, retries included; ``status_class``
  is ``1xx`` to ``5xx``, or ``error`` when no answer came (a dropped connection, a
  timeout); ``scimsync_http_rate_limited_total`` counts the 429 answers and
  ``scimsync_http_retries_total`` the requests sent again.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, ClassVar

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:
    raise ModuleNotFoundError(
        "scimsync.metrics needs prometheus-client: pip install 'scimsync[prometheus]'",
        name=exc.name,
    ) from exc

from .errors import ConfigurationError
from .sync import Observer, observe
from .sync._observer import target_name

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType
    from wsgiref.simple_server import WSGIServer

    from .client import RequestDetails
    from .retry import RetryDetails
    from .sync import CycleKind, Provisioner, SyncReport

__all__ = ["Metrics", "MetricsServer", "TargetMetrics", "instrument", "serve_metrics"]

_CYCLE_SECONDS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_PLAN_SIZES = (0, 1, 10, 100, 1_000, 10_000, 100_000)
# Counts in a plan's summary that are no operations to apply.
_NOT_OPERATIONS = frozenset({"held", "conflicts"})
_SUCCESS = frozenset({"ok", "unchanged"})
# What a cycle that raised (no report) counts as, by what it was asked to do.
_MODE_OF_KIND = {"run": "full", "apply": "apply", "provision_one": "one"}


class Metrics:
    """The scimsync metrics registered on one Prometheus registry.

    Made once per registry (:meth:`on` returns the one already made), since a
    registry takes each metric name once; :meth:`for_target` gives the observer
    that feeds them for one target. The metric objects are attributes
    (``cycles``, ``http_requests``...), for tests and custom dashboards.
    """

    _made: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, Metrics]] = (
        weakref.WeakKeyDictionary()
    )
    _making: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, ("target", *labels), registry=registry)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ("target",), registry=registry)

        self.registry = registry
        self._targets: dict[str, TargetMetrics] = {}
        try:
            self.cycles = counter(
                "scimsync_cycles", "Provisioning cycles, by mode and outcome.", "mode", "outcome"
            )
            self.cycle_duration = Histogram(
                "scimsync_cycle_duration_seconds",
                "How long cycles took, in seconds.",
                ("target", "mode"),
                buckets=_CYCLE_SECONDS,
                registry=registry,
            )
            self.operations = counter(
                "scimsync_operations",
                "Operations of cycles' plans, by resource type, kind and outcome.",
                "resource_type",
                "kind",
                "outcome",
            )
            self.plan_operations = Histogram(
                "scimsync_plan_operations",
                "Operations planned per cycle that read the target (held ones left out).",
                ("target",),
                buckets=_PLAN_SIZES,
                registry=registry,
            )
            self.guard_trips = counter(
                "scimsync_guard_trips", "Safety guards that held operations, by guard.", "guard"
            )
            self.held_operations = gauge(
                "scimsync_held_operations", "Operations the last cycle's guards held."
            )
            self.quarantined = gauge(
                "scimsync_quarantined",
                "1 while the last cycle was quarantined (too many writes failed), else 0.",
            )
            self.records_not_used = gauge(
                "scimsync_source_records_not_used",
                "Source records the last cycle's mapping could not use.",
            )
            self.last_success = gauge(
                "scimsync_last_success_timestamp_seconds",
                "When the last successful cycle finished, in Unix time.",
            )
            self.http_requests = counter(
                "scimsync_http_requests",
                "HTTP requests to the target (each attempt), by method and status class.",
                "method",
                "status_class",
            )
            self.http_duration = Histogram(
                "scimsync_http_request_duration_seconds",
                "How long HTTP requests to the target took, in seconds.",
                ("target", "method"),
                registry=registry,
            )
            self.http_retries = counter(
                "scimsync_http_retries", "HTTP requests to the target sent again."
            )
            self.http_rate_limited = counter(
                "scimsync_http_rate_limited", "429 Too Many Requests answers from the target."
            )
        except ValueError as exc:  # a name the registry holds already
            raise ConfigurationError(
                f"the scimsync metrics cannot be registered on this registry: {exc}"
            ) from None

    @classmethod
    def on(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """The metrics on ``registry`` (default: ``prometheus_client.REGISTRY``), made
        and registered on first use."""
        registry = registry if registry is not None else prometheus_client.REGISTRY
        with cls._making:
            made = cls._made.get(registry)
            if made is None:
                made = cls._made[registry] = cls(registry)
            return made

    def for_target(self, target: str) -> TargetMetrics:
        """The observer feeding these metrics under the label ``target=target`` (the
        same one for the same name)."""
        with self._making:
            made = self._targets.get(target)
            if made is None:
                made = self._targets[target] = TargetMetrics(self, target)
            return made


class TargetMetrics(Observer):
    """An :class:`~scimsync.sync.Observer` that feeds :class:`Metrics` for one target.

    Made by :func:`instrument` (or :meth:`Metrics.for_target`); ``target`` is its
    label value.
    """

    def __init__(self, metrics: Metrics, target: str) -> None:
        if not isinstance(target, str) or not target:
            raise ConfigurationError("the metrics' target label must be a non-empty string")
        self.metrics = metrics
        self.target = target
        # Cycles reported and not yet over: one that raises after its report is no error.
        self._reported: set[str] = set()
        # Label children resolved once: an HTTP request costs two dict look-ups.
        self._requests: dict[tuple[str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._retries = metrics.http_retries.labels(target)
        self._rate_limited = metrics.http_rate_limited.labels(target)

    def __repr__(self) -> str:
        return f"TargetMetrics(target={self.target!r})"

    # -- cycles --------------------------------------------------------------------------

    def cycle(self, cycle_id: str, kind: CycleKind) -> AbstractContextManager[object]:
        """Counts a cycle that raised, leaving no report, as an ``error`` one."""
        return _CycleWatch(self, cycle_id, kind)

    def report(self, report: SyncReport) -> None:
        """Count the cycle and its operations; set the last cycle's gauges."""
        metrics, target = self.metrics, self.target
        self._reported.add(report.cycle_id)
        metrics.cycles.labels(target, report.mode, report.outcome).inc()
        metrics.cycle_duration.labels(target, report.mode).observe(report.duration)
        counted: dict[tuple[str, str, str], int] = {}
        for result in report.results:
            key = (result.resource_type, result.kind, result.outcome)
            counted[key] = counted.get(key, 0) + 1
        for (resource_type, kind, outcome), count in counted.items():
            metrics.operations.labels(target, resource_type, kind, outcome).inc(count)
        for trip in report.guards:
            if not trip.forced:
                metrics.guard_trips.labels(target, trip.name).inc()
        if report.error is None and report.mode in ("full", "apply"):
            planned = sum(n for kind, n in report.planned.items() if kind not in _NOT_OPERATIONS)
            metrics.plan_operations.labels(target).observe(planned)
        if report.mode == "one":
            return
        metrics.held_operations.labels(target).set(report.held)
        metrics.quarantined.labels(target).set(1 if report.quarantine is not None else 0)
        metrics.records_not_used.labels(target).set(len(report.source_issues))
        if report.outcome in _SUCCESS:
            metrics.last_success.labels(target).set(report.finished_at.timestamp())

    def _ended(self, cycle_id: str, kind: CycleKind, raised: bool) -> None:
        reported = cycle_id in self._reported
        self._reported.discard(cycle_id)
        mode = _MODE_OF_KIND.get(kind)
        if raised and mode is not None and not reported:
            self.metrics.cycles.labels(self.target, mode, "error").inc()

    # -- requests ------------------------------------------------------------------------

    def on_request(self, details: RequestDetails) -> None:
        """Count the attempt by method and status class; time it; count a 429."""
        status = details.status
        status_class = f"{status // 100}xx" if status is not None else "error"
        key = (details.method, status_class)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.metrics.http_requests.labels(self.target, *key)
        counter.inc()
        duration = self._durations.get(details.method)
        if duration is None:
            duration = self._durations[details.method] = self.metrics.http_duration.labels(
                self.target, details.method
            )
        duration.observe(details.elapsed_seconds)
        if status == 429:
            self._rate_limited.inc()

    def on_retry(self, details: RetryDetails) -> None:
        """Count a retry."""
        self._retries.inc()


class _CycleWatch:
    __slots__ = ("_cycle_id", "_kind", "_observer")

    def __init__(self, observer: TargetMetrics, cycle_id: str, kind: CycleKind) -> None:
        self._observer, self._cycle_id, self._kind = observer, cycle_id, kind

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._observer._ended(self._cycle_id, self._kind, raised=value is not None)


def instrument(
    provisioner: Provisioner,
    *,
    registry: CollectorRegistry | None = None,
    target: str | None = None,
) -> TargetMetrics:
    """Register the scimsync metrics on ``registry`` (default:
    ``prometheus_client.REGISTRY``) and have ``provisioner`` feed them.

    ``target`` is the value of the ``target`` label (default: the host, and port, of
    the target's SCIM URL, else the target's class name): give each provisioner of
    a process its own. Cycles, reports and the target's HTTP requests are counted
    from then on (see :func:`scimsync.sync.observe`); instrumenting a provisioner
    again under the same name changes nothing. Returns the observer.
    """
    observer = Metrics.on(registry).for_target(target or target_name(provisioner.target))
    observe(provisioner, observer)
    return observer


class MetricsServer:
    """The HTTP server :func:`serve_metrics` started, in a daemon thread.

    ``url`` is where Prometheus scrapes (``http://host:port/metrics``; from this host
    when it listens on every interface); ``address`` and ``port`` are what it listens
    on (the port drawn for port 0). :meth:`close` (or leaving a ``with`` block) stops
    it.
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, address: str) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port
        self.address: str = address
        host = "127.0.0.1" if self.every_interface else address
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{self.port}/metrics"

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r})"

    @property
    def every_interface(self) -> bool:
        """True when it listens on every interface (``0.0.0.0``, ``::`` or ``""``)."""
        return self.address in ("", "0.0.0.0", "::")  # noqa: S104

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_metrics(
    port: int,
    *,
    address: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes from another host
    registry: CollectorRegistry | None = None,
) -> MetricsServer:
    """Serve ``registry`` (default: ``prometheus_client.REGISTRY``) for Prometheus at
    ``http://address:port/metrics``, in a daemon thread, and return the server.

    For scripts and the command line; an application with a web server exposes the
    registry there instead (``prometheus_client.make_asgi_app`` or
    ``make_wsgi_app``). Port 0 draws a free port (:attr:`MetricsServer.port`). The
    metrics hold no secret and no personal data; the default address listens on
    every interface, as Prometheus exporters do: give ``address="127.0.0.1"`` to
    keep it local.
    """
    try:
        server, thread = prometheus_client.start_http_server(
            port,
            addr=address,
            registry=registry if registry is not None else prometheus_client.REGISTRY,
        )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}"
        ) from None
    return MetricsServer(server, thread, address)
