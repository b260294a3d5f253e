"""The Observer interface: what a provisioner tells an instrumentation, and when."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import httpx
import pytest

from _sync_helpers import Clock, Timer, memory_target
from scimsync import Provisioner
from scimsync._context import current_cycle_id
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.errors import StateError
from scimsync.mapping import Mapping, lower
from scimsync.sources import MemorySource
from scimsync.sync import MemoryStateStore, Observer, observe
from scimsync.targets import ScimTarget

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scimsync.client import RequestDetails
    from scimsync.retry import RetryDetails
    from scimsync.sync import CycleKind, Phase, SyncReport

MAPPING = Mapping(users={"userName": lower("email"), "title": "title"})
PEOPLE = [
    {"id": "E1", "email": "ann@example.com", "title": "Lead"},
    {"id": "E2", "email": "bob@example.com", "title": "Dev"},
]


class Recorder(Observer):
    """Writes down every call, with the cycle id the context holds at the time."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.reports: list[SyncReport] = []
        self.requests: list[RequestDetails] = []

    @contextlib.contextmanager
    def cycle(self, cycle_id: str, kind: CycleKind) -> Iterator[None]:
        self.calls.append(("cycle", kind, cycle_id, str(current_cycle_id())))
        try:
            yield
        except Exception as exc:
            self.calls.append(("raised", type(exc).__name__))
            raise
        finally:
            self.calls.append(("end cycle", kind))

    @contextlib.contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        self.calls.append(("phase", name, str(current_cycle_id())))
        yield

    def report(self, report: SyncReport) -> None:
        self.calls.append(("report", report.outcome))
        self.reports.append(report)

    def on_request(self, details: RequestDetails) -> None:
        self.requests.append(details)


def provisioner(**kwargs: object) -> Provisioner:
    ids = iter(f"c{i}" for i in range(1, 100))
    return Provisioner(
        MemorySource(users=PEOPLE),
        MAPPING,
        memory_target(),
        Policy(),
        clock=Clock(),
        timer=Timer(),
        cycle_ids=lambda: next(ids),
        **kwargs,  # type: ignore[arg-type]
    )


def phases(calls: list[tuple[str, ...]]) -> list[str]:
    return sorted(call[1] for call in calls if call[0] == "phase")


def test_nobody_observes_by_default() -> None:
    """A provisioner is made with no observer: nothing is called, nothing costs."""
    assert None is provisioner().observer


def test_a_full_cycle_is_observed_around_its_phases_and_report() -> None:
    """run_once: the cycle wraps the four phases and the report, all under its id."""
    recorder = Recorder()
    with provisioner() as runner:
        observe(runner, recorder)
        report = runner.run_once()
    assert ("cycle", "run", "c1", "c1") == recorder.calls[0]
    assert ("end cycle", "run") == recorder.calls[-1]
    assert ("report", "ok") == recorder.calls[-2]
    assert ["apply", "list_target", "plan", "read_source"] == phases(recorder.calls)
    assert {"c1"} == {call[2] for call in recorder.calls if call[0] == "phase"}
    assert [report] == recorder.reports


def test_an_incremental_cycle_reads_only_the_source() -> None:
    """A cycle whose source did not change has one phase: reading the source."""
    recorder = Recorder()
    with provisioner() as runner:
        runner.run_once()
        observe(runner, recorder)
        report = runner.run_once()
    assert "incremental" == report.mode
    assert ["read_source"] == phases(recorder.calls)


def test_plan_apply_and_provision_one_are_cycles_of_their_kind() -> None:
    """plan() has no report; apply() re-lists the target; provision_one reads both sides."""
    recorder = Recorder()
    with provisioner() as runner:
        observe(runner, recorder)
        made = runner.plan()
        assert ["list_target", "plan", "read_source"] == phases(recorder.calls)
        assert [] == recorder.reports
        recorder.calls.clear()
        runner.apply(made)
        assert ["apply", "list_target"] == phases(recorder.calls)
        recorder.calls.clear()
        runner.provision_one("E1")
        assert ["apply", "list_target", "plan", "read_source"] == phases(recorder.calls)
    kinds = [call[1] for call in recorder.calls if call[0] == "cycle"]
    assert ["provision_one"] == kinds


def test_forget_is_no_cycle() -> None:
    """forget() takes the cycle lock but is not observed as a cycle."""
    recorder = Recorder()
    with provisioner() as runner:
        observe(runner, recorder)
        runner.forget()
    assert [] == recorder.calls


def test_a_cycle_that_raises_goes_through_the_observer() -> None:
    """A failing state store raises out of the cycle: the observer's cycle sees it."""

    class BrokenStore(MemoryStateStore):
        def load(self) -> object:  # type: ignore[override]
            raise StateError("the disk is gone")

    recorder = Recorder()
    runner = provisioner(state=BrokenStore())
    observe(runner, recorder)
    with runner, pytest.raises(StateError):
        runner.run_once()
    assert ("raised", "StateError") in recorder.calls
    assert ("end cycle", "run") == recorder.calls[-1]


def test_a_failing_observer_never_breaks_a_cycle(caplog: pytest.LogCaptureFixture) -> None:
    """Every observer method raising: the cycle still applies, and the failures are logged."""

    class Broken(Observer):
        def cycle(self, cycle_id: str, kind: CycleKind) -> contextlib.nullcontext[None]:
            raise RuntimeError("cycle")

        @contextlib.contextmanager
        def phase(self, name: Phase) -> Iterator[None]:
            yield
            raise RuntimeError("phase")

        def report(self, report: SyncReport) -> None:
            raise RuntimeError("report")

    with provisioner() as runner, caplog.at_level(logging.WARNING, "scimsync.sync"):
        observe(runner, Broken())
        report = runner.run_once()
    assert report.ok
    failures = [r.getMessage() for r in caplog.records if "the observer failed" in r.getMessage()]
    assert 6 == len(failures)  # the cycle, four phases, the report


def test_observers_add_up() -> None:
    """Two observers watch one provisioner, each told everything, in order."""
    first, second = Recorder(), Recorder()
    with provisioner() as runner:
        observe(runner, first)
        observe(runner, second)
        runner.run_once()
    assert first.calls == second.calls
    assert 1 == len(first.reports)


def test_the_cycle_id_is_in_the_context_only_during_a_cycle() -> None:
    """Outside a cycle the context holds no cycle id."""
    with provisioner() as runner:
        runner.run_once()
    assert None is current_cycle_id()


async def test_observe_joins_the_target_clients_hooks() -> None:
    """A ScimTarget's client reports its requests and retries to the observer."""
    answers = iter([httpx.Response(503, headers={"Retry-After": "0"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(404, json={"status": "404"}))

    class Counting(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.retries: list[RetryDetails] = []

        def on_retry(self, details: RetryDetails) -> None:
            self.retries.append(details)

    recorder = Counting()
    async with AsyncScimClient(
        "https://scim.example.com/v2",
        auth=BearerToken("t"),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as client:
        runner = Provisioner(MemorySource(users=PEOPLE), MAPPING, ScimTarget(client))
        observe(runner, recorder)
        await client.capabilities()
    assert [(503, 1), (404, 2)] == [(d.status, d.attempt) for d in recorder.requests]
    assert [1] == [d.attempt for d in recorder.retries]


async def test_a_raising_request_hook_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The observer's request hook failing does not fail the request."""

    class Broken(Observer):
        def on_request(self, details: RequestDetails) -> None:
            raise RuntimeError("boom")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"status": "404"})

    async with AsyncScimClient(
        "https://scim.example.com/v2",
        auth=BearerToken("t"),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as client:
        runner = Provisioner(MemorySource(users=PEOPLE), MAPPING, ScimTarget(client))
        observe(runner, Broken())
        with caplog.at_level(logging.WARNING, "scimsync.sync"):
            capabilities = await client.capabilities()
    assert not capabilities.patch
    assert ["the observer failed on a request: RuntimeError: boom"] == [
        r.getMessage() for r in caplog.records if r.name == "scimsync.sync"
    ]
