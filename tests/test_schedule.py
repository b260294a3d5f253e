"""Scheduling: run_forever's waits, back-off, trigger, stop and health — without sleeping."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from _sync_helpers import Clock, ScriptedTarget, Timer, memory_target
from scimsync import Provisioner
from scimsync.engine import Policy
from scimsync.errors import (
    ConfigurationError,
    CycleInProgressError,
    ServerError,
    TransportError,
)
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, MemoryStateStore, Progress, SyncReport
from scimsync.sync._decisions import next_delay

MAPPING = Mapping(users={"userName": "email"})


def people(count: int) -> list[dict[str, Any]]:
    return [{"id": f"e{i}", "email": f"user{i}@example.com"} for i in range(count)]


class Sleeps:
    """An async sleep that records what it was asked and returns at once, or runs ``during``."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.during: Any = None

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.during is not None:
            await self.during(seconds)


def provisioner(
    records: list[dict[str, Any]],
    target: Any = None,
    *,
    reports: list[SyncReport] | None = None,
    **kwargs: Any,
) -> tuple[Provisioner, Clock]:
    clock = Clock()
    made = Provisioner(
        MemorySource(users=records),
        MAPPING,
        target if target is not None else memory_target(),
        Policy(),
        state=kwargs.pop("state", MemoryStateStore()),
        clock=clock,
        timer=Timer(),
        on_report=reports.append if reports is not None else None,
        **kwargs,
    )
    return made, clock


def test_cycles_run_at_the_interval_with_jitter() -> None:
    """Each wait is the interval moved by the seeded jitter draw; no real sleeping."""
    reports: list[SyncReport] = []
    made, _ = provisioner(people(2), reports=reports)
    sleeps = Sleeps()
    made.run_forever(60, jitter=0.2, sleep=sleeps, rng=random.Random(7), max_cycles=3)
    draws = random.Random(7)
    expected = [next_delay(60, jitter=0.2, draw=draws.random()) for _ in range(2)]
    assert expected == sleeps.asked
    assert all(48 <= s <= 72 for s in sleeps.asked)
    assert ["full", "incremental", "incremental"] == [r.mode for r in reports]


def test_quarantined_cycles_back_off_and_a_good_one_resets() -> None:
    """Each quarantined cycle in a row doubles the wait (capped); a good cycle resets it."""
    target = ScriptedTarget(memory_target())
    target.fail("create_user", ServerError(503), times=None)
    made, _ = provisioner(people(3), target.as_target(), apply_policy=ApplyPolicy(min_operations=1))
    sleeps = Sleeps()

    async def heal(seconds: float) -> None:
        if len(sleeps.asked) == 3:
            target.faults.clear()

    sleeps.during = heal
    made.run_forever(10, jitter=0, max_backoff=35, sleep=sleeps, max_cycles=5)
    assert [20.0, 35.0, 35.0, 10.0] == sleeps.asked
    assert made.health().healthy


def test_cycles_that_cannot_run_back_off_too() -> None:
    """A target that cannot be read: the loop goes on, waiting longer each time."""
    target = ScriptedTarget(memory_target())
    target.fail("list_users", TransportError("refused"), times=None)
    made, _ = provisioner(people(1), target.as_target())
    sleeps = Sleeps()
    made.run_forever(5, jitter=0, sleep=sleeps, max_cycles=3)
    assert [10.0, 20.0] == sleeps.asked
    health = made.health()
    assert (False, 3, "error") == (health.healthy, health.consecutive_failures, health.last_outcome)


def test_trigger_wakes_the_loop_and_can_ask_for_a_full_cycle() -> None:
    """A trigger during the wait runs the next cycle at once, full if asked."""
    reports: list[SyncReport] = []
    made, _ = provisioner(people(1), reports=reports)
    sleeps = Sleeps()

    async def forever(seconds: float) -> None:
        made.trigger(full=True)
        await asyncio.Event().wait()  # a wait that only a wake-up ends

    sleeps.during = forever
    made.run_forever(3600, sleep=sleeps, max_cycles=2)
    assert ["full", "full"] == [r.mode for r in reports]
    assert 1 == len(sleeps.asked)


def test_stop_ends_the_wait_at_once() -> None:
    """A stop during the wait ends the loop without another cycle."""
    reports: list[SyncReport] = []
    made, _ = provisioner(people(1), reports=reports)
    sleeps = Sleeps()

    async def stopped(seconds: float) -> None:
        made.stop()
        await asyncio.Event().wait()

    sleeps.during = stopped
    made.run_forever(3600, sleep=sleeps)
    assert (1, 1) == (len(reports), len(sleeps.asked))


def test_stop_during_a_cycle_finishes_it_cleanly() -> None:
    """Stopped mid-cycle: operations in flight finish, the rest are skipped and reported,
    the state is saved, and the loop ends."""
    progress: list[Progress] = []
    reports: list[SyncReport] = []
    store = MemoryStateStore()
    holder: list[Provisioner] = []

    def on_progress(step: Progress) -> None:
        progress.append(step)
        if step.phase == "applying" and step.done == 2:
            holder[0].stop()

    made, _ = provisioner(
        people(6),
        reports=reports,
        state=store,
        on_progress=on_progress,
        apply_policy=ApplyPolicy(concurrency=1),
    )
    holder.append(made)
    made.run_forever(60, sleep=Sleeps())
    (report,) = reports
    assert ({"applied": 2, "failed": 0, "skipped": 4}, "stopped") == (
        report.totals(),
        report.outcome,
    )
    assert 2 == len(store.load().state.users.links)


def test_stop_from_another_thread_ends_the_blocking_loop() -> None:
    """``stop()`` is safe from another thread; ``run_forever`` then returns."""
    made, _ = provisioner(people(1))
    started = threading.Event()

    async def wait(seconds: float) -> None:
        started.set()
        await asyncio.Event().wait()

    runner = threading.Thread(target=made.run_forever, args=(60,), kwargs={"sleep": wait})
    runner.start()
    assert started.wait(10)
    made.stop()
    runner.join(10)
    assert not runner.is_alive()


def test_a_cycle_held_elsewhere_is_skipped_not_waited_for() -> None:
    """When another holds the cycle lock, the loop skips that cycle and goes on."""
    store = MemoryStateStore()
    made, _ = provisioner(people(1), state=store)
    sleeps = Sleeps()
    with store.lock():
        made.run_forever(30, jitter=0, sleep=sleeps, max_cycles=2)
    assert ([30.0], ()) == (sleeps.asked, store.history())


def test_health_shows_the_next_run_while_waiting() -> None:
    """While the loop waits, health says when the next cycle starts."""
    made, clock = provisioner(people(1))
    seen: list[Any] = []

    async def look(seconds: float) -> None:
        seen.append(made.health())

    sleeps = Sleeps()
    sleeps.during = look
    made.run_forever(90, jitter=0, sleep=sleeps, max_cycles=2)
    assert [clock.now + timedelta(seconds=90)] == [h.next_run_at for h in seen]
    assert made.health().next_run_at is None


@pytest.mark.parametrize(
    ("interval", "jitter"),
    [(0, 0.1), (-5, 0.1), (10, 1.0), (10, -0.1)],
)
def test_settings_that_cannot_work_are_refused(interval: float, jitter: float) -> None:
    """A non-positive interval or a jitter outside [0, 1) is a configuration error."""
    made, _ = provisioner(people(1))
    with pytest.raises(ConfigurationError):
        made.run_forever(interval, jitter=jitter, sleep=Sleeps(), max_cycles=1)


# -- embedding in a threaded application ---------------------------------------------------


class Gate:
    """A target whose user listing waits, in a worker thread, until ``release`` is set:
    a cycle in progress for as long as a test needs one."""

    def __init__(self) -> None:
        self.inner = memory_target()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list_users(self) -> Any:
        if self.hold:
            self.entered.set()
            await asyncio.to_thread(self.release.wait, 10)
        return await self.inner.list_users()


def test_a_threaded_app_never_waits_behind_the_scheduler() -> None:
    """run_forever in one thread (as a Flask app runs it), calls from another: during a
    cycle, provision_one, plan and run_once raise CycleInProgressError at once; between
    cycles provision_one runs; trigger asks for a cycle; stop ends the loop. Nothing
    hangs: every wait here is bounded."""
    gate = Gate()
    reports: list[SyncReport] = []
    cycle_done = threading.Event()
    made, _ = provisioner(people(2), target=gate, reports=reports)

    def reported(report: SyncReport) -> None:
        reports.append(report)
        cycle_done.set()

    made.on_report = reported

    async def idle(seconds: float) -> None:
        await asyncio.Event().wait()  # until trigger() or stop()

    calls = ThreadPoolExecutor(max_workers=1)
    runner = threading.Thread(target=made.run_forever, args=(60,), kwargs={"sleep": idle})
    gate.hold = True
    runner.start()
    try:
        assert gate.entered.wait(10), "the first cycle never started"
        for call in (lambda: made.provision_one("e0"), made.plan, made.run_once):
            with pytest.raises(CycleInProgressError):
                calls.submit(call).result(timeout=10)
        gate.hold = False
        gate.release.set()
        assert cycle_done.wait(10)
        explanation = calls.submit(made.provision_one, "e1").result(timeout=10)
        assert explanation.ok, str(explanation)
        cycle_done.clear()
        made.trigger()
        assert cycle_done.wait(10)
    finally:
        made.stop()
        runner.join(10)
        calls.shutdown()
    assert not runner.is_alive()
    assert ["full", "one", "incremental"] == [r.mode for r in reports]
