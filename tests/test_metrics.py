"""Prometheus metrics: what a faulty cycle on ScimTestServer counts, and what labels never hold."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from _sync_helpers import Clock, Timer, memory_target
from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.errors import ConfigurationError, StateError
from scimsync.mapping import Mapping
from scimsync.metrics import Metrics, instrument, serve_metrics
from scimsync.retry import RetryPolicy, no_waits
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, MemoryStateStore
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "metrics-secret-token"
PASSWORD = "Initial-Passw0rd!"
MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    create_only={"password": lambda record: PASSWORD},
)
#: The only label names the metrics may have: each value comes from a short fixed list.
LABELS = {"target", "mode", "outcome", "resource_type", "kind", "guard", "method", "status_class"}


def people(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"e{i}", "email": f"person{i}@example.com", "name": f"Person {i}", "title": "T"}
        for i in range(count)
    ]


def personal_values(records: list[dict[str, Any]]) -> set[str]:
    """Every attribute value of the source, and the secrets: none may be a label value."""
    values = {str(value) for record in records for value in record.values()}
    return values | {TOKEN, PASSWORD, f"Bearer {TOKEN}"}


def samples(registry: CollectorRegistry) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in registry.collect():
        for sample in family.samples:
            yield sample.name, dict(sample.labels), sample.value


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        v
        for sample, have, v in samples(registry)
        if sample == name and labels.items() <= have.items()
    )


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN, max_page_size=100) as test_server:
        yield test_server


@pytest.mark.integration
async def test_a_cycle_with_429s_counts_what_the_server_logged(server: ScimTestServer) -> None:
    """20 % of requests answered 429: the 429 counter, the retries and the requests by
    status class are those of the server's own request log, and the cycle, its
    operations and the last success are counted."""
    records = people(120)
    registry = CollectorRegistry()
    server.faults = Faults(rate=0.2, seed=16, kinds=["429"], retry_after=1)
    async with AsyncScimClient(
        server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(max_attempts=10)
    ) as client:
        provisioner = Provisioner(MemorySource(users=records), MAPPING, ScimTarget(client))
        instrument(provisioner, registry=registry, target="acme")
        with no_waits():
            report = await provisioner.arun_once()
    assert report.ok
    logged = Counter(entry.status for entry in server.requests)
    throttled = logged[429]
    assert throttled >= 10  # the faults did happen
    assert throttled == value(registry, "scimsync_http_rate_limited_total", target="acme")
    assert throttled == value(registry, "scimsync_http_retries_total", target="acme")
    assert throttled == report.retries
    assert len(server.requests) == value(registry, "scimsync_http_requests_total")
    assert throttled == value(registry, "scimsync_http_requests_total", status_class="4xx")
    assert len(server.requests) - throttled == value(
        registry, "scimsync_http_requests_total", status_class="2xx"
    )
    assert logged[201] == value(
        registry, "scimsync_http_requests_total", method="POST", status_class="2xx"
    )
    assert len(server.requests) == value(registry, "scimsync_http_request_duration_seconds_count")
    assert 1 == value(registry, "scimsync_cycles_total", mode="full", outcome="ok")
    assert 120 == value(
        registry,
        "scimsync_operations_total",
        kind="create",
        outcome="applied",
        resource_type="User",
    )
    assert 120 == value(registry, "scimsync_plan_operations_sum")
    assert report.finished_at.timestamp() == value(
        registry, "scimsync_last_success_timestamp_seconds"
    )
    assert 0 == value(registry, "scimsync_quarantined")
    label_values = {v for _, labels, _ in samples(registry) for v in labels.values()}
    label_names = {n for _, labels, _ in samples(registry) for n in labels}
    assert set() == label_values & personal_values(records)
    assert label_names <= LABELS | {"le"}


@pytest.mark.integration
async def test_failing_writes_quarantine_and_the_gauge_says_so(server: ScimTestServer) -> None:
    """Every create answered 500: the cycle is quarantined, the gauge is 1, the failed
    operations and the 5xx answers are counted, and no success is recorded."""
    registry = CollectorRegistry()
    server.faults = Faults(kinds=["500"], methods=["POST"])
    async with AsyncScimClient(server.url, auth=BearerToken(TOKEN)) as client:
        provisioner = Provisioner(
            MemorySource(users=people(30)),
            MAPPING,
            ScimTarget(client),
            apply_policy=ApplyPolicy(min_operations=5, concurrency=1),
        )
        instrument(provisioner, registry=registry)
        report = await provisioner.arun_once()
    assert "quarantined" == report.outcome
    target = f"127.0.0.1:{httpx.URL(server.url).port}"
    assert 1 == value(registry, "scimsync_quarantined", target=target)
    assert 1 == value(registry, "scimsync_cycles_total", outcome="quarantined", target=target)
    assert report.totals()["failed"] == value(
        registry, "scimsync_operations_total", outcome="failed"
    )
    assert server.requests.count("POST") == value(
        registry, "scimsync_http_requests_total", method="POST", status_class="5xx"
    )
    assert 0 == value(registry, "scimsync_last_success_timestamp_seconds")


def memory_provisioner(records: list[dict[str, Any]], **kwargs: Any) -> Provisioner:
    return Provisioner(
        MemorySource(users=records),
        MAPPING,
        kwargs.pop("target", None) or memory_target(),
        kwargs.pop("policy", None) or Policy(),
        clock=Clock(),
        timer=Timer(),
        **kwargs,
    )


def test_a_guard_trip_is_counted_and_the_held_operations_shown() -> None:
    """A source shrunk to a third trips source_shrink: one trip, its held operations in
    the gauge; the next clean cycle sets the gauge back to 0."""
    registry = CollectorRegistry()
    target = memory_target()
    with memory_provisioner(people(30), target=target) as first:
        first.run_once()
        state = first.state
    policy = Policy(max_deprovisions_percent=None)
    with memory_provisioner(people(10), target=target, state=state, policy=policy) as shrunk:
        instrument(shrunk, registry=registry, target="t")
        report = shrunk.run_once()
        assert "blocked" == report.outcome
        assert 1 == value(registry, "scimsync_guard_trips_total", guard="source_shrink")
        assert report.held == value(registry, "scimsync_held_operations")
        assert 20 == report.held
        shrunk.run_once(force=["source_shrink"])
    assert 1 == value(registry, "scimsync_guard_trips_total")  # a forced guard holds nothing
    assert 0 == value(registry, "scimsync_held_operations")


def test_records_not_used_and_a_cycle_that_raised() -> None:
    """A record without its userName is not used (gauge 1); a cycle stopped by a failing
    state store, with no report, counts as an error cycle."""

    class BrokenStore(MemoryStateStore):
        broken = False

        def load(self) -> Any:
            if self.broken:
                raise StateError("the disk is gone")
            return super().load()

    registry = CollectorRegistry()
    store = BrokenStore()
    records = [*people(3), {"id": "e9", "email": "", "name": "No Mail", "title": "T"}]
    with memory_provisioner(records, state=store) as provisioner:
        instrument(provisioner, registry=registry, target="t")
        provisioner.run_once()
        assert 1 == value(registry, "scimsync_source_records_not_used")
        store.broken = True
        with pytest.raises(StateError):
            provisioner.run_once()
    assert 1 == value(registry, "scimsync_cycles_total", mode="full", outcome="error")
    assert 2 == value(registry, "scimsync_cycles_total")


def test_provisioners_share_a_registry_under_their_own_target_labels() -> None:
    """Two provisioners on one registry: one set of metrics, two label values; one
    instrumented twice is counted once; a registry holding one of the names already
    is a configuration error."""
    registry = CollectorRegistry()
    with (
        memory_provisioner(people(2)) as one,
        memory_provisioner(people(3)) as two,
    ):
        instrument(one, registry=registry, target="one")
        instrument(one, registry=registry, target="one")  # again: counted once all the same
        instrument(two, registry=registry, target="two")
        one.run_once()
        two.run_once()
    assert Metrics.on(registry) is Metrics.on(registry)
    assert 2 == value(registry, "scimsync_operations_total", target="one")
    assert 3 == value(registry, "scimsync_operations_total", target="two")
    taken = CollectorRegistry()
    PromCounter("scimsync_cycles", "someone else's", registry=taken)
    with pytest.raises(ConfigurationError, match="scimsync_cycles"):
        Metrics.on(taken)
    with pytest.raises(ConfigurationError, match="label"):
        Metrics.on(registry).for_target("")


def test_serve_metrics_serves_the_registry_for_prometheus() -> None:
    """serve_metrics on port 0 answers GET /metrics with the registry's text format."""
    registry = CollectorRegistry()
    with memory_provisioner(people(1)) as provisioner:
        instrument(provisioner, registry=registry, target="t")
        provisioner.run_once()
    with serve_metrics(0, address="127.0.0.1", registry=registry) as metrics_server:
        assert f"http://127.0.0.1:{metrics_server.port}/metrics" == metrics_server.url
        answer = httpx.get(metrics_server.url)
    assert 200 == answer.status_code
    assert 'scimsync_cycles_total{mode="full",outcome="ok",target="t"} 1.0' in answer.text


def test_serve_metrics_on_a_taken_port_is_a_configuration_error() -> None:
    """A port already in use is said plainly."""
    registry = CollectorRegistry()
    with (
        serve_metrics(0, address="127.0.0.1", registry=registry) as taken,
        pytest.raises(ConfigurationError, match="cannot serve metrics"),
    ):
        serve_metrics(taken.port, address="127.0.0.1", registry=registry)


def test_importing_the_metrics_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without prometheus-client, importing scimsync.metrics names the extra to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "scimsync.metrics", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'scimsync\[prometheus\]'"):
        importlib.import_module("scimsync.metrics")
