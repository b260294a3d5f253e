"""How an embedding application learns whether the agent is well: :class:`Health`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._report import _time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._state import CycleRecord

__all__ = ["Health", "health_from"]


@attrs.frozen(kw_only=True)
class Health:
    """Whether the agent is well, for a health check or a status page.

    - ``healthy``: the last cycle succeeded (``ok``, or ``unchanged``) and the agent
      is not quarantined;
    - ``running``: a cycle is running now;
    - ``last_cycle_at`` / ``last_success_at``: when the last cycle, and the last
      successful one, finished; ``last_outcome``: how the last one ended;
    - ``consecutive_failures``: cycles in a row that did not succeed;
    - ``quarantined``: the last cycle stopped writing because too many writes
      failed (the next one waits longer);
    - ``next_run_at``: when :meth:`~scimsync.Provisioner.run_forever` runs the next
      cycle (None when it is not running);
    - ``detail``: the last cycle's summary or error, in words.
    """

    healthy: bool
    running: bool = False
    last_cycle_at: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None
    consecutive_failures: int = 0
    quarantined: bool = False
    next_run_at: datetime | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "healthy": self.healthy,
            "running": self.running,
            "lastCycleAt": _time(self.last_cycle_at),
            "lastSuccessAt": _time(self.last_success_at),
            "lastOutcome": self.last_outcome,
            "consecutiveFailures": self.consecutive_failures,
            "quarantined": self.quarantined,
            "nextRunAt": _time(self.next_run_at),
            "detail": self.detail,
        }


def health_from(
    history: Sequence[CycleRecord], *, running: bool, next_run_at: datetime | None
) -> Health:
    """Health from the cycle history (newest first) and what the scheduler knows.

    On-demand provisioning of one identity (mode ``"one"``) is no cycle: left out.
    """
    history = [record for record in history if record.mode != "one"]
    if not history:
        return Health(
            healthy=False,
            running=running,
            next_run_at=next_run_at,
            detail="no cycle has run yet",
        )
    last = history[0]
    failures = 0
    for record in history:
        if record.succeeded:
            break
        failures += 1
    success = next((r for r in history if r.succeeded), None)
    quarantined = last.outcome == "quarantined"
    return Health(
        healthy=last.succeeded and not quarantined,
        running=running,
        last_cycle_at=last.finished_at,
        last_success_at=success.finished_at if success is not None else None,
        last_outcome=last.outcome,
        consecutive_failures=failures,
        quarantined=quarantined,
        next_run_at=next_run_at,
        detail=last.detail,
    )
