"""What one fan-out cycle did: :class:`FanOutReport`, one :class:`~scimsync.SyncReport`
per target and a summary over them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._report import SyncReport

__all__ = ["FanOutReport"]

_FORMAT = "scimsync-fanout-report/1"

# The order a summary lists outcomes in: the troubles first.
_OUTCOMES = ("error", "quarantined", "stopped", "failed", "blocked", "ok", "unchanged")


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@attrs.frozen(kw_only=True)
class FanOutReport:
    """One fan-out cycle: the source read once, a :class:`~scimsync.SyncReport` per target.

    - ``reports``: each target's report, by the name the fan-out gave it (a target
      whose cycle could not read its side reports too, with outcome ``"error"``).
    - ``running``: targets without a report from this cycle because their cycle was
      still running: started by an earlier cycle of
      :meth:`~scimsync.sync.FanOut.run_forever` and not over yet, or not over when
      this cycle stopped waiting for it. Their report comes when they finish, to
      their provisioner's ``on_report``.
    - ``errors``: targets whose cycle raised instead of reporting (a configuration
      mistake, a failing state store, a programming error), with the message. The
      other targets ran all the same.
    - ``source_records``: how many items (records and issues) the one read of the
      source gave; ``source_error``: why the source could not be read (then every
      target that ran reports outcome ``"error"``, and nothing is written).
    - ``source_duration``: the seconds the source read took; ``duration``: the
      whole cycle's.

    ``str(report)`` is a summary line and a line per target; :meth:`to_json` holds
    every target's whole report.
    """

    started_at: datetime
    finished_at: datetime
    duration: float
    source_duration: float = 0.0
    source_records: int = 0
    source_error: str | None = None
    reports: Mapping[str, SyncReport] = attrs.field(factory=dict)
    running: tuple[str, ...] = ()
    errors: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target's name, sorted: reported, still running or raised."""
        return tuple(sorted({*self.reports, *self.running, *self.errors}))

    def outcomes(self) -> dict[str, int]:
        """Targets counted by outcome (each report's :attr:`~scimsync.SyncReport.outcome`,
        ``"running"`` and ``"raised"``), troubles first: ``{"quarantined": 1, "ok": 19}``."""
        counted: dict[str, int] = {}
        for report in self.reports.values():
            counted[report.outcome] = counted.get(report.outcome, 0) + 1
        ordered = {name: counted[name] for name in _OUTCOMES if name in counted}
        if self.errors:
            ordered["raised"] = len(self.errors)
        if self.running:
            ordered["running"] = len(self.running)
        return ordered

    def totals(self) -> dict[str, int]:
        """Operations over every target, by outcome (``applied``, ``failed``, ``skipped``)."""
        totals = {"applied": 0, "failed": 0, "skipped": 0}
        for report in self.reports.values():
            for outcome, count in report.totals().items():
                totals[outcome] += count
        return totals

    @property
    def requests(self) -> int:
        """Requests sent to every target together."""
        return sum(report.requests for report in self.reports.values())

    @property
    def ok(self) -> bool:
        """True when every target reported, and every report is
        :attr:`~scimsync.SyncReport.ok`."""
        return (
            self.source_error is None
            and not self.running
            and not self.errors
            and all(report.ok for report in self.reports.values())
        )

    @property
    def exit_code(self) -> int:
        """The worst of the targets' :attr:`~scimsync.SyncReport.exit_code`: 0 all
        applied, 2 blocked by a guard, 1 anything else wrong (a target that raised or
        is still running included)."""
        codes = [report.exit_code for report in self.reports.values()]
        if self.source_error is not None or self.errors or self.running or 1 in codes:
            return 1
        return 2 if 2 in codes else 0

    @property
    def troubled(self) -> bool:
        """True when the source could not be read, or when every target's cycle was
        troubled (quarantined, could not run, or raised): what makes
        :meth:`~scimsync.sync.FanOut.run_forever` back off. One troubled target among
        well ones does not slow the others down."""
        if self.source_error is not None:
            return True
        finished = [*self.reports.values()]
        if not finished and not self.errors:
            return False
        return all(r.quarantine is not None or r.error is not None for r in finished)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data: the summary, then each target's whole report."""
        return {
            "format": _FORMAT,
            "ok": self.ok,
            "exitCode": self.exit_code,
            "startedAt": _time(self.started_at),
            "finishedAt": _time(self.finished_at),
            "duration": round(self.duration, 6),
            "source": {
                "records": self.source_records,
                "duration": round(self.source_duration, 6),
                "error": self.source_error,
            },
            "outcomes": self.outcomes(),
            "totals": self.totals(),
            "requests": self.requests,
            "running": list(self.running),
            "errors": dict(sorted(self.errors.items())),
            "targets": {name: self.reports[name].to_dict() for name in sorted(self.reports)},
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, sort_keys=True)

    def __repr__(self) -> str:
        outcomes = " ".join(f"{name}={count}" for name, count in self.outcomes().items())
        return f"<FanOutReport {len(self.targets)} targets: {outcomes}>"

    def __str__(self) -> str:
        count = len(self.targets)
        outcomes = ", ".join(f"{n} {name}" for name, n in self.outcomes().items())
        totals = self.totals()
        lines = [
            f"Fan-out: {count} target{'' if count == 1 else 's'} in {self.duration:.2f}s: "
            f"{outcomes or 'nothing ran'}",
        ]
        if self.source_error is not None:
            lines.append(f"  ! the source could not be read: {self.source_error}")
        else:
            lines.append(
                f"  source read once: {self.source_records} records in {self.source_duration:.2f}s"
            )
        lines.append(
            f"  operations: {totals['applied']} applied, {totals['failed']} failed, "
            f"{totals['skipped']} skipped; {self.requests} requests"
        )
        width = max(len(name) for name in self.targets) if self.targets else 0
        for name in self.targets:
            if name in self.reports:
                report = self.reports[name]
                done = report.totals()
                line = (
                    f"  {name:<{width}}  {report.outcome:<11} {report.mode:<11} "
                    f"{done['applied']} applied, {done['failed']} failed, "
                    f"{done['skipped']} skipped, {report.requests} requests, "
                    f"{report.duration:.2f}s"
                )
                why = report.error or report.quarantine or report.stopped
                if why:
                    line += f": {why}"
            elif name in self.errors:
                line = f"  {name:<{width}}  raised      {self.errors[name]}"
            else:
                line = f"  {name:<{width}}  running     its cycle was not over"
            lines.append(line)
        return "\n".join(lines)
