"""What a cycle tells: its :class:`~._report.SyncReport`, its line in the history, the hooks.

Rules this module keeps:

- **Reports are made of plain values.** :func:`cycle_report` and
  :func:`read_error_report` take what a cycle read and did, and when (the times
  given); nothing here reads a clock or sends a request.
- **Requests are counted on the wire when something counts them.** ``wire`` is what
  the ``request_stats`` (or the target's own ``requests_sent`` / ``retries_sent``)
  counted during the cycle: it replaces the count of target calls, and its retries
  add to those the executor made. Without it, reports count target calls.
- **Every report is told.** Its first line is logged, it goes to ``on_report``, and
  what needs a person (an error, failures, a guard that held, quarantine, writes
  stopped, what the target does not keep) goes to ``on_alert``, one alert each.
- **Hooks never break a cycle.** A report, alert or progress hook that raises is
  logged; so is a history that cannot take the record of a cycle that failed (the
  cycle's own error is what the caller gets).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ScimSyncError
from ._decisions import describe_error
from ._report import Alert, Progress, SyncReport
from ._state import CycleRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from ..engine import Plan
    from ._executor import Execution
    from ._reading import Reading
    from ._state import StateStore

__all__ = [
    "alert",
    "cycle_report",
    "failure_record",
    "progress",
    "read_error_report",
    "record_failure",
    "record_of",
    "tell",
]

logger = logging.getLogger("scimsync.sync")


def cycle_report(
    cycle_id: str,
    mode: str,
    reading: Reading,
    *,
    started_at: datetime,
    finished_at: datetime,
    duration: float,
    wire: tuple[int, int] | None,
    plan: Plan | None = None,
    execution: Execution | None = None,
    requests: int = 0,
    note: str = "",
    source_known: bool = True,
    target_warnings: Sequence[str] = (),
) -> SyncReport:
    """The report of a cycle that ran: what it read, planned and did.

    ``requests`` counts the target calls made, unless ``wire`` (requests and retries
    sent during the cycle) says what went on the wire. ``source_known=False`` (a
    plan applied without reading the source) reports no source issues.
    """
    mapped = reading.mapped
    actual = reading.actual
    notes = [*reading.notes, note] if note else list(reading.notes)
    retries = execution.retries if execution is not None else 0
    if wire is not None:
        requests = wire[0]
        retries += wire[1]
    return SyncReport(
        cycle_id=cycle_id,
        mode=mode,
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        planned=plan.summary() if plan is not None else {},
        results=execution.results if execution is not None else (),
        guards=plan.guards if plan is not None else (),
        held=len(plan.held) if plan is not None else 0,
        conflicts=plan.conflicts if plan is not None else (),
        skipped=plan.skipped if plan is not None else (),
        protected=plan.protected if plan is not None else (),
        source_issues=[str(i) for i in mapped.issues if i.code.loses_identity]
        if source_known
        else (),
        source_warnings=[str(i) for i in mapped.issues if not i.code.loses_identity]
        if source_known
        else (),
        source_complete=mapped.desired.complete,
        source_read=reading.source_read if source_known else "",
        target_complete=actual is None or actual.complete,
        target_problems=actual.problems if actual is not None else (),
        quarantine=execution.quarantine if execution is not None else None,
        stopped=execution.stopped if execution is not None else None,
        requests=requests,
        retries=retries,
        target_warnings=target_warnings,
        note="; ".join(notes),
    )


def read_error_report(
    cycle_id: str,
    mode: str,
    side: str | None,
    exc: Exception,
    *,
    started_at: datetime,
    finished_at: datetime,
    duration: float,
    wire: tuple[int, int] | None,
) -> SyncReport:
    """The report of a cycle that could not read its ``side`` (``"source"`` or
    ``"target"``): nothing planned or written, the outcome ``"error"``."""
    requests, retries = wire if wire is not None else (0, 0)
    return SyncReport(
        cycle_id=cycle_id,
        mode=mode,
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        source_complete=side != "source",
        target_complete=side != "target",
        requests=requests,
        retries=retries,
        error=f"could not read the {side}: {describe_error(exc)}",
    )


def record_of(report: SyncReport) -> CycleRecord:
    """The cycle's line in the history."""
    return CycleRecord(
        cycle_id=report.cycle_id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        mode=report.mode,
        outcome=report.outcome,
        summary=report.totals(),
        detail=report.error if report.error is not None else str(report).splitlines()[0],
    )


def failure_record(
    cycle_id: str, started_at: datetime, finished_at: datetime, message: str
) -> CycleRecord:
    """The history's line for a cycle that raised instead of reporting."""
    return CycleRecord(
        cycle_id=cycle_id,
        started_at=started_at,
        finished_at=finished_at,
        mode="full",
        outcome="error",
        detail=message,
    )


def record_failure(state: StateStore, record: CycleRecord) -> None:
    """Add the record of a cycle that went wrong to the history, the state as it was;
    a store that refuses is logged, not raised, so the cycle's own error stays the one
    the caller sees."""
    try:
        state.save(state.load(), record)
    except ScimSyncError as store_error:
        logger.error("the cycle could not be recorded: %s", describe_error(store_error))


def tell(
    report: SyncReport,
    *,
    on_report: Callable[[SyncReport], object] | None,
    on_alert: Callable[[Alert], object] | None,
) -> None:
    """Log the report's first line, give it to ``on_report``, and alert what needs it."""
    logger.info("%s", str(report).splitlines()[0])
    if on_report is not None:
        try:
            on_report(report)
        except Exception as exc:
            logger.warning("the report hook failed: %s", describe_error(exc))
    if on_alert is None:
        return
    alerts: list[tuple[str, str]] = []
    if report.error is not None:
        alerts.append(("error", report.error))
    if report.failures:
        alerts.append(("failures", f"{len(report.failures)} operations failed"))
    alerts.extend(
        ("guard", f"guard {trip.name} held {trip.held} operations: {trip.reason}")
        for trip in report.guards
        if not trip.forced
    )
    if report.quarantine is not None:
        alerts.append(("quarantine", report.quarantine))
    if report.stopped is not None:
        alerts.append(("stopped", report.stopped))
    alerts.extend(("target", warning) for warning in report.target_warnings)
    for kind, message in alerts:
        alert(on_alert, Alert(kind=kind, message=message, cycle_id=report.cycle_id, report=report))  # type: ignore[arg-type]


def alert(on_alert: Callable[[Alert], object] | None, sent: Alert) -> None:
    """Give ``sent`` to the alert hook, if any; a hook that raises is logged."""
    if on_alert is None:
        return
    try:
        on_alert(sent)
    except Exception as exc:
        logger.warning("the alert hook failed: %s", describe_error(exc))


def progress(
    on_progress: Callable[[Progress], object] | None,
    cycle_id: str,
    phase: str,
    done: int,
    total: int,
) -> None:
    """Tell the progress hook, if any, how far ``phase`` is; a hook that raises is logged."""
    if on_progress is None:
        return
    try:
        on_progress(Progress(cycle_id=cycle_id, phase=phase, done=done, total=total))
    except Exception as exc:
        logger.warning("the progress hook failed: %s", describe_error(exc))
