"""Audit events: one per operation, to the ``logging`` module and to any callable.

An event says who (cycle, source key, target id), what (kind, changed attributes
with old and new values, sensitive ones masked), how it went (outcome, error,
duration). It is built from an :class:`OperationResult`, whose values come from the
plan's review values and masked error messages: no secret can reach it.

Records go to the ``scimsync.audit`` logger, INFO for applied and skipped
operations, WARNING for failed ones, with the event as plain data in the record's
``scimsync_audit`` attribute, for structured log handlers.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..engine import PlannedChange
from ..models._base import to_tuple_or_empty
from ._report import OperationResult, Outcome, _name, _time

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["AUDIT_LOGGER", "AuditEvent", "AuditSink", "emit"]

#: The logger audit records go to.
AUDIT_LOGGER = "scimsync.audit"

logger = logging.getLogger(AUDIT_LOGGER)
_sync_logger = logging.getLogger("scimsync.sync")

_VALUE_LIMIT = 200


@attrs.frozen(kw_only=True)
class AuditEvent:
    """What happened to one identity in one cycle, for the audit trail.

    ``changes`` holds each changed attribute with its old and new value; sensitive
    attributes (passwords, anything writeOnly or named in the policy) have both
    values ``None`` and ``sensitive`` set. ``error`` is the error class and
    ``reason`` the message, with sensitive values masked.
    """

    cycle_id: str
    at: datetime
    kind: str
    resource_type: str
    source_key: str | None
    target_id: str
    outcome: Outcome
    changes: tuple[PlannedChange, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    reason: str = ""
    error: str | None = None
    status: int | None = None
    duration: float = 0.0
    writes: int = 0
    replanned: bool = False
    adopted: bool = False

    @classmethod
    def from_result(cls, cycle_id: str, at: datetime, result: OperationResult) -> AuditEvent:
        """The event for ``result``, one operation of cycle ``cycle_id``."""
        return cls(
            cycle_id=cycle_id,
            at=at,
            kind=result.kind,
            resource_type=result.resource_type,
            source_key=result.source_key,
            target_id=result.target_id,
            outcome=result.outcome,
            changes=result.changes,
            reason=result.reason,
            error=result.error,
            status=result.status,
            duration=result.duration,
            writes=result.writes,
            replanned=result.replanned,
            adopted=result.adopted,
        )

    @property
    def changed_attributes(self) -> tuple[str, ...]:
        """The names of the changed attributes."""
        return tuple(change.path for change in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "cycleId": self.cycle_id,
            "at": _time(self.at),
            "kind": self.kind,
            "resourceType": self.resource_type,
            "sourceKey": self.source_key,
            "targetId": self.target_id,
            "outcome": self.outcome,
            "changes": [c.to_dict() for c in self.changes],
            "reason": self.reason,
            "error": self.error,
            "status": self.status,
            "duration": round(self.duration, 6),
            "writes": self.writes,
            "replanned": self.replanned,
            "adopted": self.adopted,
        }

    def message(self, *, values: bool = True) -> str:
        """One line for a log: ``applied update User "ann" (id 7): title "A" → "B"``;
        with ``values=False`` the attributes are named without their values
        (``applied update User "ann" (id 7): title``)."""
        head = (
            f"{self.outcome} {self.kind} {self.resource_type} "
            f"{_name(self.source_key, self.target_id)}"
        )
        details = [_describe(c, self.kind) if values else c.path for c in self.changes[:5]]
        if len(self.changes) > 5:
            details.append(f"and {len(self.changes) - 5} more")
        text = head + (": " + "; ".join(details) if details else "")
        return f"{text} ({self.reason})" if self.reason else text


def _describe(change: PlannedChange, kind: str) -> str:
    if change.sensitive:
        return f"{change.path} (sensitive)"
    if kind == "create":
        return f"{change.path} = {_short(change.new)}"
    if kind == "add_members":
        return f"{change.path} + {_short(change.new)}"
    if kind == "remove_members":
        return f"{change.path} - {_short(change.old)}"
    return f"{change.path} {_short(change.old)} → {_short(change.new)}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


class AuditSink(Protocol):
    """A callable receiving each :class:`AuditEvent` (a list's ``append`` will do)."""

    def __call__(self, event: AuditEvent, /) -> object:
        """Take one event."""
        ...


def emit(event: AuditEvent, sinks: Iterable[AuditSink]) -> None:
    """Log ``event`` and hand it to every sink; a failing sink is logged, never raised."""
    level = logging.WARNING if event.outcome == "failed" else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "%s",
            event.message(),
            extra={"scimsync_audit": event.to_dict(), "scimsync_event": event},
        )
    for sink in sinks:
        try:
            sink(event)
        except Exception as exc:
            _sync_logger.warning("an audit sink failed: %s: %s", type(exc).__name__, exc)
