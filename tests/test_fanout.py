"""Fan-out: one source read per cycle into many targets, none holding another back."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

import scimsync
from _sync_helpers import Clock, ScriptedTarget, Timer, memory_target
from scimsync import FanOut, FanOutReport, Provisioner, SyncReport
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.errors import ConfigurationError, ServerError, StateError
from scimsync.mapping import Mapping
from scimsync.sources import ChangeRead, MemorySource, Record, SourceItem
from scimsync.sync import ApplyPolicy, MemoryStateStore, SqliteStateStore
from scimsync.targets import MemoryTarget, ScimTarget
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

MAPPING = Mapping(users={"userName": "email", "displayName": "name"})
WITH_TITLE = Mapping(users={"userName": "email", "displayName": "name", "title": "title"})


def people(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"e{i}", "email": f"user{i}@example.com", "name": f"User {i}", "title": "T"}
        for i in range(count)
    ]


class Counting:
    """A source that counts its reads, or fails them with ``error``."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.inner = MemorySource(users=records)
        self.reads = 0
        self.error: Exception | None = None

    def read(self) -> Iterator[SourceItem]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.inner.read()


def made(source: Any, target: Any = None, mapping: Mapping = MAPPING, **kwargs: Any) -> Provisioner:
    """A provisioner on ``source`` with a memory target and state, and test clocks."""
    return Provisioner(
        source,
        mapping,
        target if target is not None else memory_target(),
        state=kwargs.pop("state", MemoryStateStore()),
        clock=Clock(),
        timer=Timer(),
        **kwargs,
    )


def user_names(target: Any) -> list[str]:
    inner = target.inner if isinstance(target, (ScriptedTarget, Gated)) else target
    assert isinstance(inner, MemoryTarget)
    return sorted(u.user_name or "" for u in inner.state().users)


def test_the_source_is_read_once_per_cycle_for_every_target() -> None:
    """Three targets, two cycles: two reads of the source, and every target converged."""
    source = Counting(people(5))
    targets = {name: made(source) for name in ("a", "b", "c")}
    fan_out = FanOut(source, targets, clock=Clock(), timer=Timer())
    first = fan_out.run_once()
    second = fan_out.run_once()
    assert 2 == source.reads
    assert ({"ok": 3}, {"unchanged": 3}) == (first.outcomes(), second.outcomes())
    assert all(5 == len(user_names(p.target)) for p in targets.values())
    assert {"applied": 15, "failed": 0, "skipped": 0} == first.totals()


def test_each_target_plans_with_its_own_mapping_and_reports_by_name() -> None:
    """Per-target mappings: one writes ``title``, the other does not; a report each."""
    source = Counting(people(2))
    plain, titled = made(source), made(source, mapping=WITH_TITLE)
    report = FanOut(source, {"plain": plain, "titled": titled}).run_once()
    assert ("plain", "titled") == report.targets
    assert all(isinstance(r, SyncReport) and r.ok for r in report.reports.values())
    titles = {
        name: sorted(str(u.title) for u in p.target.state().users)  # type: ignore[attr-defined]
        for name, p in (("plain", plain), ("titled", titled))
    }
    assert {"plain": ["None", "None"], "titled": ["T", "T"]} == titles


def test_a_sequence_of_provisioners_is_named_in_order() -> None:
    """Without names, targets are ``target-1``, ``target-2``, ..."""
    source = Counting(people(1))
    fan_out = FanOut(source, [made(source), made(source)])
    assert ["target-1", "target-2"] == list(fan_out.targets)


def test_a_target_that_cannot_be_read_does_not_stop_the_others() -> None:
    """One target's listing fails: its report says error, the others converge."""
    source = Counting(people(3))
    broken = ScriptedTarget(memory_target())
    broken.fail("list_users", ServerError(503), times=None)
    fan_out = FanOut(source, {"broken": made(source, broken), "fine": made(source)})
    report = fan_out.run_once()
    assert ("error", "ok") == (report.reports["broken"].outcome, report.reports["fine"].outcome)
    assert 3 == len(user_names(fan_out.targets["fine"].target))
    assert (False, 1, False) == (report.ok, report.exit_code, report.troubled)


def test_a_quarantined_target_does_not_stop_the_others() -> None:
    """Every create of one target fails: it is quarantined, the others apply everything."""
    source = Counting(people(4))
    failing = ScriptedTarget(memory_target())
    failing.fail("create_user", ServerError(503), times=None)
    fan_out = FanOut(
        source,
        {
            "failing": made(source, failing, apply_policy=ApplyPolicy(min_operations=1)),
            "one": made(source),
            "two": made(source),
        },
    )
    report = fan_out.run_once()
    assert {"quarantined": 1, "ok": 2} == report.outcomes()
    assert [4, 4] == [len(user_names(fan_out.targets[n].target)) for n in ("one", "two")]
    assert [] == user_names(failing)


def test_a_target_whose_cycle_raises_is_listed_and_the_others_run() -> None:
    """A failing state store raises in that target's cycle only: listed in ``errors``."""

    class BrokenStore(MemoryStateStore):
        def load(self) -> Any:
            raise StateError("the state database is gone")

    source = Counting(people(2))
    fan_out = FanOut(source, {"broken": made(source, state=BrokenStore()), "fine": made(source)})
    report = fan_out.run_once()
    assert ({"fine"}, {"broken": "StateError: the state database is gone"}) == (
        set(report.reports),
        dict(report.errors),
    )
    assert {"ok": 1, "raised": 1} == report.outcomes()
    assert 2 == len(user_names(fan_out.targets["fine"].target))


class Gated:
    """A memory target whose listing waits until ``release`` is set: a slow target."""

    def __init__(self) -> None:
        self.inner = memory_target()
        self.release = asyncio.Event()
        self.waiting = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list_users(self, *args: Any, **kwargs: Any) -> Any:
        self.waiting = True
        await self.release.wait()
        return await self.inner.list_users(*args, **kwargs)


async def test_a_slow_target_does_not_hold_the_others_back() -> None:
    """While one target's listing hangs, every other target's cycle ends and reports."""
    source = Counting(people(3))
    slow = Gated()
    done: list[str] = []
    targets = {
        "slow": made(source, slow, on_report=lambda r: done.append("slow")),
        **{n: made(source, on_report=lambda r, n=n: done.append(n)) for n in ("a", "b", "c")},
    }
    cycle = asyncio.ensure_future(FanOut(source, targets).arun_once())
    while len(done) < 3:
        await asyncio.sleep(0)
    assert (["a", "b", "c"], True, False) == (sorted(done), slow.waiting, cycle.done())
    slow.release.set()
    report = await cycle
    assert {"ok": 4} == report.outcomes()


def test_a_slow_target_over_http_reports_last(tmp_path: Path) -> None:
    """Over HTTP: a server answering every request late (latency faults) finishes after
    the two that answer at once, and all three converge."""
    source = Counting(people(10))
    finished: list[str] = []
    with (
        ScimTestServer(token="t") as slow,
        ScimTestServer(token="t") as fast1,
        ScimTestServer(token="t") as fast2,
    ):
        slow.faults = Faults(kinds=["latency"], latency=0.5)
        servers = {"slow": slow, "fast1": fast1, "fast2": fast2}
        targets = {
            name: made(
                source,
                ScimTarget(AsyncScimClient(server.url, auth=BearerToken("t"))),
                state=SqliteStateStore(tmp_path / f"{name}.db"),
                on_report=lambda r, name=name: finished.append(name),
            )
            for name, server in servers.items()
        }
        with FanOut(source, targets) as fan_out:
            report = fan_out.run_once()
        assert ("slow", {"ok": 3}) == (finished[-1], report.outcomes())
        assert [10, 10, 10] == [len(s.users()) for s in servers.values()]
        assert 1 == source.reads


def test_a_source_that_cannot_be_read_is_an_error_for_every_target() -> None:
    """The source raises an OSError: one read, every target reports error, nothing written."""
    source = Counting(people(2))
    source.error = OSError("the export is not there")
    fan_out = FanOut(source, {"a": made(source), "b": made(source)})
    report = fan_out.run_once()
    assert (1, {"error": 2}, "OSError: the export is not there") == (
        source.reads,
        report.outcomes(),
        report.source_error,
    )
    assert ([], [], True) == (
        user_names(fan_out.targets["a"].target),
        user_names(fan_out.targets["b"].target),
        report.troubled,
    )


def test_the_report_renders_a_summary_and_every_target_as_json() -> None:
    """str() is a summary and a line per target; to_json holds each target's whole report."""
    source = Counting(people(2))
    broken = ScriptedTarget(memory_target())
    broken.fail("list_users", ServerError(503), times=None)
    report = FanOut(source, {"broken": made(source, broken), "fine": made(source)}).run_once()
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("Fan-out: 2 targets in ")
    assert lines[0].endswith(": 1 error, 1 ok")
    assert "source read once: 2 records" in lines[1]
    assert [True, True] == [
        any(line.strip().startswith(name) for line in lines) for name in ("broken", "fine")
    ]
    data = json.loads(report.to_json())
    assert (
        "scimsync-fanout-report/1",
        ["broken", "fine"],
        "error",
        {"applied": 2, "failed": 0, "skipped": 0},
        {"error": 1, "ok": 1},
    ) == (
        data["format"],
        sorted(data["targets"]),
        data["targets"]["broken"]["outcome"],
        data["totals"],
        data["outcomes"],
    )
    assert repr(report) == "<FanOutReport 2 targets: error=1 ok=1>"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("none", "at least one target"),
        ("other source", "not the fan-out's source"),
        ("same provisioner", "share one provisioner"),
        ("same target", "share one target"),
        ("same store", "share one state store"),
        ("same file", "share one state store"),
        ("not a provisioner", "expected a Provisioner"),
    ],
)
def test_configurations_that_cannot_work_are_refused(
    case: str, message: str, tmp_path: Path
) -> None:
    """Refused before any I/O: nothing to run, another source, anything one target owns."""
    source = Counting(people(1))
    targets: Any
    if case == "none":
        targets = {}
    elif case == "other source":
        targets = {"a": made(source), "b": made(Counting(people(1)))}
    elif case == "same provisioner":
        one = made(source)
        targets = {"a": one, "b": one}
    elif case == "same target":
        target = memory_target()
        targets = {"a": made(source, target), "b": made(source, target)}
    elif case == "same store":
        store = MemoryStateStore()
        targets = {"a": made(source, state=store), "b": made(source, state=store)}
    elif case == "same file":
        first = SqliteStateStore(tmp_path / "s.db")
        second = SqliteStateStore(tmp_path / ".." / tmp_path.name / "s.db")
        targets = {"a": made(source, state=first), "b": made(source, state=second)}
    else:
        targets = {"a": object()}
    with pytest.raises(ConfigurationError, match=message):
        FanOut(source, targets)


class Delta:
    """A delta source: counts whole reads and delta reads."""

    source_id = "delta"

    def __init__(self) -> None:
        self.since: list[str | None] = []

    def read(self) -> Iterator[SourceItem]:
        return iter(self.read_changes(None))

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        self.since.append(since)

        def produce(read: ChangeRead) -> Iterator[SourceItem]:
            yield Record(key="e1", attributes={"email": "one@example.com", "name": "One"})
            read.watermark = "w1"

        return ChangeRead(produce, since=since)


def test_a_delta_source_is_read_whole_in_a_fan_out() -> None:
    """A delta source with stores that keep snapshots: still one whole read a cycle."""
    source = Delta()
    fan_out = FanOut(source, {"a": made(source), "b": made(source)})
    reports = [fan_out.run_once(), fan_out.run_once()]
    assert ([None, None], ["ok", "unchanged"]) == (
        source.since,
        [r.reports["a"].outcome for r in reports],
    )


def test_forever_leaves_a_running_target_alone_and_runs_the_others() -> None:
    """A cycle waits one interval at most: a target still running after that is left
    alone by the next cycles (listed as running) while the others run every cycle."""
    source = Counting(people(2))
    slow = Gated()
    slow_reports: list[SyncReport] = []
    fan_reports: list[FanOutReport] = []
    asked: list[float] = []
    fan_out = FanOut(
        source,
        {"slow": made(source, slow, on_report=slow_reports.append), "fast": made(source)},
        on_report=fan_reports.append,
    )

    async def sleep(seconds: float) -> None:
        # Returns once every target but the slow one is over: no real time passes.
        # After the second cycle the slow target is let go, and waited for, so that
        # the third cycle finds it over (not racing its end) and runs it again.
        asked.append(seconds)
        while set(fan_out._cycles) - {"slow"}:
            await asyncio.sleep(0)
        if len(fan_reports) == 2:
            slow.release.set()
            while "slow" in fan_out._cycles:
                await asyncio.sleep(0)

    fan_out.run_forever(30, jitter=0, sleep=sleep, max_cycles=3)
    assert [("slow",), ("slow",)] == [r.running for r in fan_reports[:2]]
    assert [{"ok": 1, "running": 1}, {"unchanged": 1, "running": 1}] == [
        r.outcomes() for r in fan_reports[:2]
    ]
    assert ((), ["fast", "slow"], 2) == (
        fan_reports[2].running,
        sorted(fan_reports[2].reports),
        len(slow_reports),
    )
    assert (2, 3) == (len(user_names(slow.inner)), source.reads)
    assert all(s == 30 for s in asked)


def test_forever_backs_off_only_when_every_target_is_troubled() -> None:
    """A quarantined target among well ones keeps the interval; a source that cannot be
    read (every target troubled) doubles it."""
    source = Counting(people(2))
    failing = ScriptedTarget(memory_target())
    failing.fail("create_user", ServerError(503), times=None)
    fan_out = FanOut(
        source,
        {
            "failing": made(source, failing, apply_policy=ApplyPolicy(min_operations=1)),
            "fine": made(source),
        },
    )
    intervals: list[float] = []

    async def sleep(seconds: float) -> None:
        while fan_out._cycles:  # a cycle's wait: over once its targets are
            await asyncio.sleep(0)
        intervals.append(seconds)

    fan_out.run_forever(10, jitter=0, sleep=sleep, max_cycles=2)
    one_troubled = intervals[1::2]
    source.error = OSError("gone")
    intervals.clear()
    fan_out.run_forever(10, jitter=0, sleep=sleep, max_cycles=3)
    assert ([10.0], [20.0, 40.0]) == (one_troubled, intervals[1::2])


def test_stop_ends_the_loop_and_the_targets_write_again_afterwards() -> None:
    """stop() from a report hook ends run_forever; the next run_once writes as usual."""
    records = people(1)
    source = Counting(records)
    target = memory_target()
    fan_out: FanOut

    def stop_now(report: FanOutReport) -> None:
        fan_out.stop()

    fan_out = FanOut(source, {"a": made(source, target)}, on_report=stop_now)

    async def sleep(seconds: float) -> None:
        while fan_out._cycles:
            await asyncio.sleep(0)

    fan_out.run_forever(5, sleep=sleep)
    source.inner.users.append({"id": "e9", "email": "late@example.com", "name": "Late"})
    fan_out.on_report = None
    report = fan_out.run_once()
    assert ({"ok": 1}, 2) == (report.outcomes(), len(target.state().users))


def test_the_top_level_names_are_the_runners() -> None:
    """``scimsync.FanOut`` and ``scimsync.FanOutReport`` are the classes of scimsync.sync."""
    from scimsync import sync

    assert (sync.FanOut, sync.FanOutReport) == (scimsync.FanOut, scimsync.FanOutReport)
    assert {"FanOut", "FanOutReport"} <= set(scimsync.__all__) & set(sync.__all__)
