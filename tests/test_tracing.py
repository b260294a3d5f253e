"""OpenTelemetry spans: one per cycle, per phase, per HTTP attempt; no value, key or secret."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from _sync_helpers import memory_target
from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.errors import StateError
from scimsync.mapping import Mapping
from scimsync.retry import RetryPolicy, no_waits
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, MemoryStateStore
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer
from scimsync.tracing import instrument_tracing

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "tracing-secret-token"
PASSWORD = "Initial-Passw0rd!"
MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    create_only={"password": lambda record: PASSWORD},
)
PHASES = {"scimsync.read_source", "scimsync.list_target", "scimsync.plan", "scimsync.apply"}


def people(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"e{i}", "email": f"person{i}@example.com", "name": f"Person {i}", "title": "T"}
        for i in range(count)
    ]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def every_value(span: ReadableSpan) -> list[str]:
    """Every attribute value of the span and of its events, as text."""
    values: list[Any] = list((span.attributes or {}).values())
    for event in span.events:
        values.extend((event.attributes or {}).values())
    flat: list[str] = []
    for item in values:
        if isinstance(item, (list, tuple)):
            flat.extend(str(v) for v in item)
        else:
            flat.append(str(item))
    return flat


@pytest.mark.integration
async def test_a_faulty_cycle_is_traced_with_the_http_client_conventions(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A cycle against ScimTestServer with 429s and 500s: one cycle span, its four
    phases under it, one CLIENT span per request the server logged, retries counted,
    failed ones marked; no attribute value, key, token or password in any span."""
    provider, exporter = spans
    records = people(40)
    with ScimTestServer(token=TOKEN) as server:
        server.faults = Faults(rate=0.2, seed=3, kinds=["429", "500"], methods=["POST"])
        async with AsyncScimClient(
            server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(max_attempts=2)
        ) as client:
            provisioner = Provisioner(
                MemorySource(users=records),
                MAPPING,
                ScimTarget(client),
                apply_policy=ApplyPolicy(max_failure_rate=1.0),
            )
            instrument_tracing(provisioner, tracer_provider=provider, target="acme")
            with no_waits():
                report = await provisioner.arun_once()
        logged = list(server.requests)
    finished = exporter.get_finished_spans()
    [cycle] = [s for s in finished if s.name == "scimsync.cycle"]
    phases = [s for s in finished if s.name in PHASES]
    requests = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert PHASES == {s.name for s in phases}
    assert all(s.parent is not None and s.parent.span_id == cycle.context.span_id for s in phases)
    assert cycle.attributes is not None
    assert report.cycle_id == cycle.attributes["scimsync.cycle.id"]
    assert "run" == cycle.attributes["scimsync.cycle.kind"]
    assert "acme" == cycle.attributes["scimsync.target"]
    assert report.outcome == cycle.attributes["scimsync.cycle.outcome"]
    assert 40 == cycle.attributes["scimsync.operations.planned"]
    assert report.totals()["failed"] == cycle.attributes["scimsync.operations.failed"]
    expected = StatusCode.ERROR if report.outcome == "failed" else StatusCode.UNSET
    assert expected == cycle.status.status_code
    # One CLIENT span per request the server saw, with its status.
    assert sorted((e.method, e.status) for e in logged) == sorted(
        (s.attributes["http.request.method"], s.attributes["http.response.status_code"])
        for s in requests
        if s.attributes is not None
    )
    span_ids = {s.context.span_id for s in [cycle, *phases]}
    assert all(s.parent is not None and s.parent.span_id in span_ids for s in requests)
    creates = [s for s in requests if s.name == "POST /scim/v2/Users"]
    assert len(creates) == sum(1 for e in logged if e.method == "POST")
    retried = [s for s in requests if s.attributes and "http.request.resend_count" in s.attributes]
    # Each first attempt answered 429 is sent once more (max_attempts=2); a resent one
    # answered 429 is not: which requests the faults hit depends on their order.
    first_429 = [
        s
        for s in requests
        if s.attributes
        and s.attributes["http.response.status_code"] == 429
        and "http.request.resend_count" not in s.attributes
    ]
    assert len(first_429) == len(retried)
    assert sum(1 for e in logged if e.status == 429) == len(first_429) + sum(
        1 for s in retried if s.attributes and s.attributes["http.response.status_code"] == 429
    )
    failed = [s for s in requests if s.status.status_code == StatusCode.ERROR]
    assert {"429", "500"} == {s.attributes["error.type"] for s in failed if s.attributes}
    assert all(s.attributes and s.attributes["server.address"] == "127.0.0.1" for s in requests)
    # Nothing personal, nothing secret.
    forbidden = {str(v) for record in records for v in record.values()} | {TOKEN, PASSWORD}
    ids = {user.id for user in server.users() if user.id}
    seen = {value for span in finished for value in every_value(span)}
    assert set() == seen & (forbidden | ids)
    long_enough = {v for v in forbidden | ids if len(v) >= 5}  # "T" is in "GET"
    assert [] == [s.name for s in finished for v in long_enough if v in s.name]


def test_a_cycle_that_raises_is_an_error_span_naming_only_the_class(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A failing state store: the cycle span is ERROR with error.type, and no message."""
    provider, exporter = spans

    class BrokenStore(MemoryStateStore):
        def load(self) -> Any:
            raise StateError("person0@example.com broke the disk")

    provisioner = Provisioner(
        MemorySource(users=people(1)), MAPPING, memory_target(), state=BrokenStore()
    )
    instrument_tracing(provisioner, tracer_provider=provider)
    with provisioner, pytest.raises(StateError):
        provisioner.run_once()
    [cycle] = exporter.get_finished_spans()
    assert cycle.attributes is not None
    assert "StateError" == cycle.attributes["error.type"]
    assert "MemoryTarget" == cycle.attributes["scimsync.target"]
    assert StatusCode.ERROR == cycle.status.status_code
    assert "person0@example.com" not in " ".join(every_value(cycle))
    assert [] == list(cycle.events)


def test_a_plan_is_a_cycle_span_without_a_report(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """plan(): the cycle span (kind plan) and its three phases; nothing applied."""
    provider, exporter = spans
    provisioner = Provisioner(MemorySource(users=people(2)), MAPPING, memory_target())
    instrument_tracing(provisioner, tracer_provider=provider)
    with provisioner:
        provisioner.plan()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert ["scimsync.cycle", "scimsync.list_target", "scimsync.plan", "scimsync.read_source"] == (
        names
    )
    [cycle] = [s for s in exporter.get_finished_spans() if s.name == "scimsync.cycle"]
    assert cycle.attributes is not None
    assert "plan" == cycle.attributes["scimsync.cycle.kind"]
    assert "scimsync.cycle.outcome" not in cycle.attributes
    assert StatusCode.UNSET == cycle.status.status_code


def test_without_opentelemetry_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenTelemetry absent: instrument_tracing returns None and observes nothing."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    provisioner = Provisioner(MemorySource(users=people(1)), MAPPING, memory_target())
    with provisioner:
        assert None is instrument_tracing(provisioner)
        assert None is provisioner.observer
        assert provisioner.run_once().ok
