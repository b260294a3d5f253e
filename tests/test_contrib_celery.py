"""Celery integration: the tasks, the beat schedule, and many targets on real workers.

The end-to-end test runs a real ``redis-server`` (the broker and result backend), a
real PostgreSQL (the state of every target), ten ScimTestServers over HTTP (the
targets) and two Celery worker processes. One worker kills itself mid-apply; it is
restarted, and every target converges with nothing created twice. The size is
``SCIMSYNC_TEST_CELERY_USERS`` users per target (400 by default, so the suite stays
fast; the issue's size is 2000).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import Provisioner
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import MemoryStateStore
from scimsync.targets import MemoryTarget
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _postgres import Postgres

celery = pytest.importorskip("celery", reason="celery (the celery extra) is not installed")

from scimsync.contrib.celery import beat_schedule, register_tasks  # noqa: E402

TESTS = Path(__file__).parent
TARGETS = 10
USERS = int(os.environ.get("SCIMSYNC_TEST_CELERY_USERS", "400"))
#: Bounds every wait: a stuck worker fails the test instead of hanging it.
WAIT = float(os.environ.get("SCIMSYNC_TEST_CELERY_WAIT", "900"))


# -- the tasks, in-process (eager) ------------------------------------------------------------


def eager_app() -> Any:
    app = celery.Celery("eager", broker="memory://", backend="cache+memory://")
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    return app


def provisioner_factory(
    target: MemoryTarget, state: MemoryStateStore
) -> tuple[Any, list[Provisioner]]:
    made: list[Provisioner] = []

    def factory(name: str) -> Provisioner:
        provisioner = Provisioner(
            MemorySource(users=[{"id": "E1", "email": f"ann@{name}.example.com"}]),
            Mapping(users={"userName": "email"}),
            target,
            state=state,
        )
        made.append(provisioner)
        return provisioner

    return factory, made


def test_run_cycle_runs_one_cycle_of_the_named_target() -> None:
    """``run_cycle`` builds the target's provisioner, runs a cycle and returns its outcome
    and counts as JSON data; a second run finds nothing to do."""
    target, state = MemoryTarget(), MemoryStateStore()
    factory, made = provisioner_factory(target, state)
    tasks = register_tasks(eager_app(), factory)
    first = tasks.run_cycle.delay("hr").get(timeout=30)
    second = tasks.run_cycle.delay("hr").get(timeout=30)
    assert ("hr", "ok", {"create": {"applied": 1}}) == (
        first["target"],
        first["outcome"],
        first["counts"],
    )
    assert ("unchanged", ["ann@hr.example.com"], 2) == (
        second["outcome"],
        [u.user_name for u in target.state().users],
        len(made),
    )
    json.dumps(first)  # plain JSON data, for any result backend


def test_a_task_for_a_target_already_running_is_skipped_not_queued() -> None:
    """While a cycle of the target holds its lock, ``run_cycle`` and ``provision_one``
    return ``"skipped"`` at once and write nothing; nothing is retried by Celery."""
    target, state = MemoryTarget(), MemoryStateStore()
    factory, _ = provisioner_factory(target, state)
    tasks = register_tasks(eager_app(), factory)
    with state.lock():
        cycle = tasks.run_cycle.delay("hr").get(timeout=30)
        one = tasks.provision_one.delay("hr", "E1").get(timeout=30)
    assert ("skipped", "skipped", ()) == (cycle["outcome"], one["outcome"], target.state().users)


def test_provision_one_provisions_one_identity_on_demand() -> None:
    """``provision_one(target, key)`` is the webhook path: that identity now."""
    target, state = MemoryTarget(), MemoryStateStore()
    factory, _ = provisioner_factory(target, state)
    tasks = register_tasks(eager_app(), factory, prefix="idm")
    result = tasks.provision_one.delay("hr", "E1").get(timeout=30)
    assert ("idm.provision_one", True, "ok", ["ann@hr.example.com"]) == (
        tasks.provision_one.name,
        result["ok"],
        result["outcome"],
        [u.user_name for u in target.state().users],
    )


def test_the_tasks_are_acked_late_and_never_retried_by_celery() -> None:
    """A lost worker gives its task back (safe: cycles are idempotent); Celery's own retry
    is never layered on scimsync's."""
    tasks = register_tasks(eager_app(), lambda name: None)  # type: ignore[arg-type,return-value]
    assert [(True, True, 0)] * 2 == [
        (task.acks_late, task.reject_on_worker_lost, task.max_retries)
        for task in (tasks.run_cycle, tasks.provision_one)
    ]


def test_each_app_runs_its_own_factory() -> None:
    """Tasks are registered on the app given only: a second app in the process, with
    another factory, runs its own (and Celery warns of no duplicate name)."""
    first_target, second_target = MemoryTarget(), MemoryTarget()
    first = register_tasks(eager_app(), provisioner_factory(first_target, MemoryStateStore())[0])
    second = register_tasks(eager_app(), provisioner_factory(second_target, MemoryStateStore())[0])
    second.run_cycle.delay("crm").get(timeout=30)
    assert ((), 1) == (first_target.state().users, len(second_target.state().users))
    assert first.run_cycle.app is not second.run_cycle.app


def test_beat_schedule_runs_each_target_and_never_piles_ticks_up() -> None:
    """One entry per target (and one full cycle each with ``full_every``); each tick
    expires after its interval, so ticks nobody took are dropped, not queued."""
    from datetime import timedelta

    schedule = beat_schedule(["hr", "crm"], every=timedelta(minutes=5), full_every=86400)
    assert {
        "task": "scimsync.run_cycle",
        "schedule": 300.0,
        "args": ("crm",),
        "kwargs": {},
        "options": {"expires": 300.0},
    } == schedule["scimsync.run_cycle.crm"]
    assert ({"full": True}, 4) == (schedule["scimsync.full.hr"]["kwargs"], len(schedule))
    with pytest.raises(ValueError, match="positive"):
        beat_schedule(["hr"], every=0)


# -- many targets, two real workers, a real broker -------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (skips, saying why, where there is none)."""
    pytest.importorskip("redis", reason="redis-py (the celery extra) is not installed")
    from _redis import running_redis

    try:
        with running_redis() as url:
            yield url
    except LookupError as exc:
        pytest.skip(str(exc))


class Worker:
    """A ``celery worker`` subprocess of ``tests/_celery_app.py`` (solo pool: the worker
    process runs the task itself, so killing the task kills the worker)."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "_celery_app", "worker",
                "--pool=solo", "--concurrency=1", f"--hostname={name}@127.0.0.1",
                "--without-gossip", "--without-mingle", "--loglevel=WARNING",
            ],
            cwd=TESTS,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: the running task finishes); killed if it outstays."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._out.close()


def collect(results: list[Any], deadline: float) -> list[dict[str, Any]]:
    return [r.get(timeout=max(deadline - time.monotonic(), 1)) for r in results]


@pytest.mark.database
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_two_workers_converge_many_targets_through_a_killed_worker(
    redis_url: str, postgres: Postgres, tmp_path: Path
) -> None:
    """10 targets × USERS users, two workers, one killed mid-apply and restarted: every
    target ends equal to its source, each account created exactly once, and a last round
    finds nothing to do; the webhook task works on the same workers."""
    import _celery_app

    names = [f"t{n}" for n in range(TARGETS)]
    servers = {name: ScimTestServer().start() for name in names}
    workers: list[Worker] = []
    try:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
            "SCIMSYNC_TEST_BROKER": redis_url,
            "SCIMSYNC_TEST_TARGETS": json.dumps({n: s.url for n, s in servers.items()}),
            "SCIMSYNC_TEST_CELERY_USERS": str(USERS),
            "SCIMSYNC_TEST_PG": postgres.conninfo,
            "SCIMSYNC_TEST_SCHEMA": f"celery_{uuid.uuid4().hex[:8]}",
        }
        app = celery.Celery("client", broker=redis_url, backend=redis_url)
        run_cycle = app.signature("scimsync.run_cycle")
        deadline = time.monotonic() + WAIT
        # Worker "a" dies right after its (USERS // 3)th create, in whatever cycle it has.
        workers.append(
            Worker("a", {**env, "SCIMSYNC_TEST_DIE_AFTER": str(USERS // 3)}, tmp_path / "a.log")
        )
        workers.append(Worker("b", env, tmp_path / "b.log"))
        for name in names:
            run_cycle.clone(args=(name,)).apply_async()
        killed = workers[0].wait(timeout=WAIT)
        assert -signal.SIGKILL == killed, workers[0].log.read_text(errors="replace")[-3000:]
        workers[0].stop()
        workers.append(Worker("a2", env, tmp_path / "a2.log"))  # "a", restarted

        # Rounds as beat would send them, until a whole round finds nothing to do.
        rounds: list[list[dict[str, Any]]] = []
        while time.monotonic() < deadline:
            results = [run_cycle.clone(args=(name,)).apply_async() for name in names]
            rounds.append(collect(results, deadline))
            if all(
                r["outcome"] == "unchanged"
                or (r["outcome"] == "ok" and r["totals"]["applied"] == 0)
                for r in rounds[-1]
            ):
                break
        else:  # pragma: no cover - the bound, reported
            pytest.fail(f"no convergence within {WAIT} s: {rounds[-1:]}")

        webhook = app.signature("scimsync.provision_one", args=("t0", "e1")).apply_async()
        on_demand = webhook.get(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for worker in workers:
            worker.stop()
        for server in servers.values():
            server.stop()

    for name, server in servers.items():
        expected = sorted(r["email"] for r in _celery_app.records(name))
        names_held = Counter(str(u.user_name) for u in server.users())
        created = [e for e in server.requests.entries("POST", "/Users") if e.status == 201]
        assert (expected, [], USERS) == (
            sorted(names_held),
            [n for n, count in names_held.items() if count > 1],
            len(created),
        ), name
    # Already provisioned: the webhook task finds the account as it should be.
    assert (True, "ok", 0) == (
        on_demand["ok"],
        on_demand["outcome"],
        on_demand["totals"]["applied"],
    ), on_demand
    print(f"celery: {TARGETS} targets x {USERS} users, {len(rounds)} round(s) after the kill")
