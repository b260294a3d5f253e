"""Provisioning cycles as Celery tasks: many targets, many workers, one PostgreSQL.

Celery is the task queue the Python web applications that embed scimsync already
run. :func:`register_tasks` adds two tasks to the application's Celery app, and
:func:`beat_schedule` gives the beat entries that run each target's cycle::

    from celery import Celery
    from scimsync.contrib.celery import beat_schedule, register_tasks

    app = Celery("idm", broker="redis://127.0.0.1:6379/0")
    tasks = register_tasks(app, make_provisioner)   # make_provisioner(target) -> Provisioner
    app.conf.beat_schedule = beat_schedule(["hr-app", "crm"], every=300)

    tasks.provision_one.delay("hr-app", "E1042")    # the webhook path

Rules this module keeps:

- **One target, one cycle at a time, everywhere.** The cycle lock is the state
  store's: with :class:`~scimsync.sync.PostgresStateStore` an advisory lock per
  target, so two workers on two hosts never run cycles of one target at once. A task
  that finds its target's cycle running is **skipped**, not queued, as every cycle
  is (:class:`~scimsync.errors.CycleInProgressError`, see "Schedule cycles"): its
  result says ``"skipped"``, and the next beat tick runs the target again.
- **Retries and quarantine stay scimsync's.** The tasks never ask Celery to retry:
  a failed request is retried inside the cycle by the target's retry policy, an
  operation that still fails is kept in the state and retried by the next cycle,
  and too many failures quarantine the cycle. A task ends with its cycle's outcome.
- **Safe to run twice.** A cycle is idempotent: it plans from what the target holds
  and what the state remembers, and sends only the difference; the write-ahead
  journal links what a killed cycle created. So the tasks are acknowledged late
  (``acks_late``) and given back to the queue when their worker is lost
  (``reject_on_worker_lost``): a cycle cut short runs again, and never duplicates.
- **Small results.** A task returns plain JSON data (outcome and counts, not every
  operation's result): the full report goes to the audit log and the state history.

The factory is called in the worker, once per task, with the target's name: it
builds the :class:`~scimsync.Provisioner` (source, mapping, target, policy, and a
state store of that target). The task closes it, and its state store, when done.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import CycleInProgressError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..sync import Provisioner, SyncReport

__all__ = ["CeleryTasks", "beat_schedule", "register_tasks"]

logger = logging.getLogger("scimsync.contrib.celery")


@attrs.frozen
class CeleryTasks:
    """The tasks :func:`register_tasks` added: ``run_cycle(target, full=False)`` and
    ``provision_one(target, key)``, Celery task objects (``.delay``, ``.apply_async``,
    ``.s`` for canvas)."""

    run_cycle: Any
    provision_one: Any


def register_tasks(
    app: Any, factory: Callable[[str], Provisioner], *, prefix: str = "scimsync"
) -> CeleryTasks:
    """Add the tasks ``<prefix>.run_cycle`` and ``<prefix>.provision_one`` to the Celery
    ``app``, building each task's :class:`~scimsync.Provisioner` with ``factory(target)``.

    ``run_cycle(target, full=False)`` runs one cycle of ``target``
    (:meth:`Provisioner.run_once <scimsync.Provisioner.run_once>`) and returns
    ``{"target", "outcome", "cycleId", "totals", "counts", "error"}``: ``outcome`` is
    the report's (``"ok"``, ``"unchanged"``, ``"failed"``, ``"quarantined"``...), or
    ``"skipped"`` when a cycle of ``target`` was running already.

    ``provision_one(target, key)`` provisions the identity with source key ``key`` now
    (:meth:`Provisioner.provision_one <scimsync.Provisioner.provision_one>`, the webhook
    path) and returns ``{"target", "key", "ok", "outcome", "problem"}``; ``"skipped"``
    when a cycle of ``target`` was running: that cycle, or the next, provisions it.

    Both are acknowledged late and given back to the queue when their worker is lost,
    and never retried by Celery (see the module's rules).
    """
    options: dict[str, Any] = {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (),
        "max_retries": 0,
        # This app's tasks only: Celery's default (shared) would add them to every
        # app made afterwards in the process, each with this factory.
        "shared": False,
    }

    @app.task(name=f"{prefix}.run_cycle", **options)  # type: ignore[untyped-decorator]
    def run_cycle(target: str, full: bool = False) -> dict[str, Any]:
        return _run_cycle(factory, target, full=full)

    @app.task(name=f"{prefix}.provision_one", **options)  # type: ignore[untyped-decorator]
    def provision_one(target: str, key: str) -> dict[str, Any]:
        return _provision_one(factory, target, key)

    return CeleryTasks(run_cycle=run_cycle, provision_one=provision_one)


def beat_schedule(
    targets: Iterable[str],
    *,
    every: float | timedelta,
    full_every: float | timedelta | None = None,
    prefix: str = "scimsync",
) -> dict[str, dict[str, Any]]:
    """Celery beat entries running each target's cycle ``every`` seconds (and, with
    ``full_every``, a cycle that reads the whole target even when the source did not
    change), for ``app.conf.beat_schedule``.

    Each message expires after one interval: a tick that no worker took before the
    next one is dropped rather than piled up behind it, as cycles never queue.

    >>> sorted(beat_schedule(["hr"], every=300, full_every=86400))
    ['scimsync.full.hr', 'scimsync.run_cycle.hr']
    >>> beat_schedule(["hr"], every=300)["scimsync.run_cycle.hr"]["args"]
    ('hr',)
    """
    entries: dict[str, dict[str, Any]] = {}
    for target in targets:
        entries[f"{prefix}.run_cycle.{target}"] = _entry(prefix, target, every, full=False)
        if full_every is not None:
            entries[f"{prefix}.full.{target}"] = _entry(prefix, target, full_every, full=True)
    return entries


def _entry(prefix: str, target: str, every: float | timedelta, *, full: bool) -> dict[str, Any]:
    seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    if seconds <= 0:
        raise ValueError(f"a beat interval must be positive, got {every!r}")
    return {
        "task": f"{prefix}.run_cycle",
        "schedule": seconds,
        "args": (target,),
        "kwargs": {"full": True} if full else {},
        "options": {"expires": seconds},
    }


def _run_cycle(factory: Callable[[str], Provisioner], target: str, *, full: bool) -> dict[str, Any]:
    provisioner = factory(target)
    try:
        report = provisioner.run_once(full=full)
    except CycleInProgressError as exc:
        logger.info("cycle of %s skipped: %s", target, exc)
        return {"target": target, "outcome": "skipped", "detail": str(exc)}
    finally:
        _close(provisioner)
    return {"target": target, **_summary(report)}


def _provision_one(factory: Callable[[str], Provisioner], target: str, key: str) -> dict[str, Any]:
    provisioner = factory(target)
    try:
        explanation = provisioner.provision_one(key)
    except CycleInProgressError as exc:
        logger.info("provisioning %s in %s skipped: %s", key, target, exc)
        return {"target": target, "key": key, "outcome": "skipped", "detail": str(exc)}
    finally:
        _close(provisioner)
    return {
        "target": target,
        "key": key,
        "ok": explanation.ok,
        "outcome": explanation.report.outcome,
        "problem": explanation.problem,
        "totals": explanation.report.totals(),
    }


def _summary(report: SyncReport) -> dict[str, Any]:
    return {
        "outcome": report.outcome,
        "cycleId": report.cycle_id,
        "totals": report.totals(),
        "counts": report.counts(),
        "error": report.error,
    }


def _close(provisioner: Provisioner) -> None:
    """Close the provisioner's loop (and target), then its state store."""
    try:
        provisioner.close()
    finally:
        provisioner.state.close()
