"""What a cycle did, as values: per-operation results, the :class:`SyncReport`, alerts.

Everything here is JSON-able (``to_dict``) and printable, and holds no secret:
attribute values come from the plan's review values, which mask sensitive ones,
and error messages have the operation's sensitive values masked out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from ..engine import Conflict, GuardTrip, PlannedChange, Protection, Skip, blocked_message
from ..engine._values import OPERATION_KINDS, Placeholder
from ..models._base import to_tuple_or_empty

T = TypeVar("T")

__all__ = [
    "Alert",
    "AlertKind",
    "OperationResult",
    "Outcome",
    "Progress",
    "RequestStats",
    "SyncReport",
]

Outcome = Literal["applied", "failed", "skipped"]
Outcome.__doc__ = (
    "What became of an operation: done on the target, failed (with the error), or not tried."
)

AlertKind = Literal["failures", "guard", "quarantine", "stopped", "error", "target"]
AlertKind.__doc__ = "Why an alert was raised."

_FORMAT = "scimsync-report/1"


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _name(source_key: str | None, target_id: str | None) -> str:
    parts = []
    if source_key is not None:
        parts.append(json.dumps(source_key, ensure_ascii=False))
    if target_id and Placeholder.parse(target_id) is None:
        parts.append(f"(id {target_id})")
    return " ".join(parts) or "(unknown)"


@attrs.frozen(kw_only=True)
class OperationResult:
    """What became of one operation of the plan.

    - ``index``: its position in ``plan.operations``; ``kind``, ``resource_type``,
      ``source_key`` as planned; ``target_id`` the real id once known (a create's
      new id), else as planned.
    - ``outcome``: ``"applied"`` (the target now holds what it asked for, whether a
      write was needed or not), ``"failed"`` or ``"skipped"``; ``reason`` says why
      it failed or was skipped, or notes how it was applied ("found by lookup after
      a lost answer", "already as planned").
    - ``error``: the error's class (``"ServerError"``) and ``status`` its HTTP status.
    - ``writes``: write requests sent for it; ``reads``: lookups and re-reads.
    - ``replanned``: what was sent differs from the plan because the target had
      changed; ``adopted``: a create ended by adopting an existing account.
    - ``changes``: attribute-level changes, sensitive values masked.
    - ``duration``: seconds from start to end.
    """

    index: int
    kind: str
    resource_type: str
    source_key: str | None
    target_id: str
    outcome: Outcome
    reason: str = ""
    error: str | None = None
    status: int | None = None
    writes: int = 0
    reads: int = 0
    replanned: bool = False
    adopted: bool = False
    changes: tuple[PlannedChange, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    duration: float = 0.0

    @property
    def changed_attributes(self) -> tuple[str, ...]:
        """The attribute paths the operation changes."""
        return tuple(change.path for change in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "index": self.index,
            "kind": self.kind,
            "resourceType": self.resource_type,
            "sourceKey": self.source_key,
            "targetId": self.target_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "error": self.error,
            "status": self.status,
            "writes": self.writes,
            "reads": self.reads,
            "replanned": self.replanned,
            "adopted": self.adopted,
            "changedAttributes": list(self.changed_attributes),
            "duration": round(self.duration, 6),
        }

    def __str__(self) -> str:
        name = _name(self.source_key, self.target_id)
        head = f"{self.outcome} {self.kind} {self.resource_type} {name}"
        return f"{head}: {self.reason}" if self.reason else head


@attrs.frozen(kw_only=True)
class Progress:
    """How far a cycle is: ``done`` of ``total`` operations finished, in ``phase``.

    ``phase`` is ``"reading"`` (source and target), ``"planning"`` or ``"applying"``.
    """

    cycle_id: str
    phase: str
    done: int
    total: int


@attrs.frozen(kw_only=True)
class Alert:
    """Something an operator should hear about: failures, a tripped guard, quarantine,
    writes stopped by the target, a cycle that could not run, or (``"target"``) a path
    the target was found not to keep.

    ``report`` is the cycle's report when there is one: a cycle that could not read
    its source or target has an ``"error"`` report; one stopped by another error (a
    configuration mistake, the state store) has none.
    """

    kind: AlertKind
    message: str
    cycle_id: str
    report: SyncReport | None = None


@attrs.frozen(kw_only=True)
class SyncReport:
    """What one cycle did: counts, results, guard and quarantine decisions, time and requests.

    ``ok`` is True when every planned operation was applied and nothing was held,
    quarantined or stopped; :attr:`exit_code` says the same in the command-line
    convention (0 all applied, 1 failures or a cycle that could not run, 2 blocked by
    a guard). ``str(report)`` is a summary for people; :meth:`to_dict` /
    :meth:`to_json` are for machines; ``repr(report)`` is one line, for logs. A
    blocked report says how to go past the guards once the held operations are
    reviewed (:attr:`force_hint`).

    - ``mode``: ``"full"`` (the whole target was read), ``"incremental"`` (the source
      had not changed since the last clean cycle: the target was not read),
      ``"apply"`` (a given plan, re-checked against the target) or ``"one"``
      (:meth:`~scimsync.Provisioner.provision_one`).
    - ``planned``: the plan's operations counted by kind; ``results``: one per
      operation, in plan order.
    - ``guards``, ``held``: the guards that tripped and how many operations they
      held; ``conflicts`` and ``skipped``: identities the plan left alone.
    - ``protected``: source identities whose records have an issue, and the accounts
      kept for them (not deprovisioned, not removed from groups), with the reason;
    - ``source_issues``: records the mapping could not use, as text;
      ``source_warnings``: records it used, leaving a part out (a group member or
      a manager whose key no user record has), as text;
      ``source_complete`` / ``target_complete``: whether the reads were whole;
      ``source_read``: ``"full"`` (every record read) or ``"delta"`` (a delta-reading
      source gave only the records changed since its last clean read, merged into
      the stored ones), ``""`` when the cycle did not read the source;
      ``target_problems``: why the target listing came out short, when it said.
    - ``quarantine``: why writing stopped because too many writes failed;
      ``stopped``: why writing stopped otherwise (401/403, a stop request).
    - ``requests``: HTTP requests on the wire when the provisioner has a
      :class:`RequestStats` wired to the client, else calls made to the target (a
      paged listing then counts once); ``retries``: writes the runner sent again
      (after a lost answer, a 412, a conflict), plus the client's own retries when
      counted by a :class:`RequestStats`.
    - ``target_warnings``: what the cycle learned the target does not keep (an
      attribute it drops, a sub-attribute, a value it changes or does not clear):
      said once, when learned; from then on those paths are neither compared nor
      written (:attr:`~scimsync.engine.Ledger.unkept`).
    - ``note``: anything else worth saying (why an incremental cycle did nothing).
    - ``error``: why the cycle could not run (reading the source or the target
      failed: nothing was planned or written); its outcome is then ``"error"``.
    """

    cycle_id: str
    mode: str
    started_at: datetime
    finished_at: datetime
    duration: float
    planned: Mapping[str, int] = attrs.field(factory=dict)
    results: tuple[OperationResult, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    guards: tuple[GuardTrip, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    held: int = 0
    conflicts: tuple[Conflict, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    skipped: tuple[Skip, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    protected: tuple[Protection, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    source_issues: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    source_warnings: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    source_complete: bool = True
    source_read: str = ""
    target_complete: bool = True
    target_problems: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    quarantine: str | None = None
    stopped: str | None = None
    requests: int = 0
    retries: int = 0
    target_warnings: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    note: str = ""
    error: str | None = None

    # -- verdicts ----------------------------------------------------------------------

    @property
    def failures(self) -> tuple[OperationResult, ...]:
        """The operations that failed."""
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def blocked(self) -> bool:
        """True when a guard held operations (and was not forced)."""
        return any(not trip.forced for trip in self.guards)

    @property
    def ok(self) -> bool:
        """True when everything planned was applied: no failure, skip, hold or stop."""
        return (
            all(r.outcome == "applied" for r in self.results)
            and not self.blocked
            and self.quarantine is None
            and self.stopped is None
            and self.error is None
        )

    @property
    def force_hint(self) -> str | None:
        """How to go past the guards that held operations, once they are reviewed (see
        :func:`~scimsync.engine.blocked_message`); None when nothing was held."""
        if self.mode == "apply":  # a saved plan: guards are forced when planning
            return blocked_message(self.guards, self.held, then=", then apply the new plan")
        return blocked_message(self.guards, self.held, again="run again")

    @property
    def exit_code(self) -> int:
        """0: everything applied; 1: failures (or writes stopped, or the cycle could not
        read its source or target); 2: blocked by a guard."""
        if (
            self.failures
            or self.quarantine is not None
            or self.stopped is not None
            or self.error is not None
        ):
            return 1
        if self.blocked:
            return 2
        return 0 if self.ok else 1

    @property
    def outcome(self) -> str:
        """One word for the history: ``ok``, ``unchanged``, ``failed``, ``blocked``,
        ``quarantined``, ``stopped`` or ``error`` (the cycle could not run)."""
        if self.error is not None:
            return "error"
        if self.quarantine is not None:
            return "quarantined"
        if self.stopped is not None:
            return "stopped"
        if self.failures or any(r.outcome != "applied" for r in self.results):
            return "failed"
        if self.blocked:
            return "blocked"
        return "unchanged" if self.mode == "incremental" and not self.results else "ok"

    def counts(self) -> dict[str, dict[str, int]]:
        """Results counted by kind, then outcome: ``{"create": {"applied": 3}}``."""
        out: dict[str, dict[str, int]] = {}
        for kind in OPERATION_KINDS:
            counted: dict[str, int] = {}
            for result in self.results:
                if result.kind == kind:
                    counted[result.outcome] = counted.get(result.outcome, 0) + 1
            if counted:
                out[kind] = dict(sorted(counted.items()))
        return out

    def totals(self) -> dict[str, int]:
        """Results counted by outcome: ``{"applied": 10, "failed": 1, "skipped": 0}``."""
        totals = {"applied": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            totals[result.outcome] += 1
        return totals

    # -- output ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        return {
            "format": _FORMAT,
            "cycleId": self.cycle_id,
            "mode": self.mode,
            "ok": self.ok,
            "outcome": self.outcome,
            "exitCode": self.exit_code,
            "startedAt": _time(self.started_at),
            "finishedAt": _time(self.finished_at),
            "duration": round(self.duration, 6),
            "planned": dict(self.planned),
            "counts": self.counts(),
            "totals": self.totals(),
            "requests": self.requests,
            "retries": self.retries,
            "guards": [g.to_dict() for g in self.guards],
            "held": self.held,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "skipped": [s.to_dict() for s in self.skipped],
            "protected": [p.to_dict() for p in self.protected],
            "sourceIssues": list(self.source_issues),
            "sourceWarnings": list(self.source_warnings),
            "sourceComplete": self.source_complete,
            "sourceRead": self.source_read,
            "targetComplete": self.target_complete,
            "targetProblems": list(self.target_problems),
            "quarantine": self.quarantine,
            "stopped": self.stopped,
            "targetWarnings": list(self.target_warnings),
            "note": self.note,
            "error": self.error,
            "forceHint": self.force_hint,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, sort_keys=True)

    def __repr__(self) -> str:
        # One line whatever the size of the cycle (it ends up in logs and debuggers);
        # str() and to_json() hold the whole report.
        totals = " ".join(f"{outcome}={count}" for outcome, count in self.totals().items())
        held = f" held={self.held}" if self.held else ""
        return f"<SyncReport {self.cycle_id!r} {self.mode} {self.outcome}: {totals}{held}>"

    def __str__(self) -> str:
        totals = self.totals()
        verdict = {
            "ok": "OK",
            "unchanged": "OK (nothing changed)",
            "failed": "FAILED",
            "blocked": "BLOCKED",
            "quarantined": "QUARANTINED",
            "stopped": "STOPPED",
            "error": "ERROR",
        }[self.outcome]
        mode = f"{self.mode}, delta source read" if self.source_read == "delta" else self.mode
        lines = [
            f"Sync {self.cycle_id} ({mode}): {verdict} in {self.duration:.2f}s, "
            f"{self.requests} requests, {self.retries} retries",
        ]
        if self.results:
            count = len(self.results)
            lines.append(
                f"  {count} operation{'' if count == 1 else 's'}: {totals['applied']} applied, "
                f"{totals['failed']} failed, {totals['skipped']} skipped"
            )
            for kind, counted in self.counts().items():
                detail = ", ".join(f"{n} {outcome}" for outcome, n in counted.items())
                lines.append(f"    {kind}: {detail}")
        elif self.error is not None:
            lines.append(f"  ! {self.error}: nothing was planned or written")
        elif self.held:
            lines.append(f"  nothing applied: {self.held} held")
        elif self.mode != "incremental":
            lines.append("  no changes")
        if self.note:
            lines.append(f"  {self.note}")
        lines.extend(f"  ! {warning}" for warning in self.target_warnings)
        for trip in self.guards:
            state = "forced past" if trip.forced else f"held {trip.held} operations"
            lines.append(f"  ! guard {trip.name} {state}: {trip.reason}")
        if self.quarantine:
            lines.append(f"  ! quarantined: {self.quarantine}")
        if self.stopped:
            lines.append(f"  ! stopped: {self.stopped}")
        if self.error is None and not self.source_complete:
            lines.append("  ! the source read was incomplete: nothing was deprovisioned")
        if self.error is None and not self.target_complete:
            why = "; ".join(self.target_problems)
            lines.append(
                "  ! the target listing was incomplete"
                + (f" ({why})" if why else "")
                + ": nothing was deprovisioned"
            )
        hint = self.force_hint
        if hint is not None:
            lines.append(f"  {hint}")
        failures = self.failures
        if failures:
            lines.append("  Failures:")
            lines.extend(_first(failures, 20, str))
        if self.conflicts:
            lines.append(f"  {len(self.conflicts)} conflicts (left alone):")
            lines.extend(_first(self.conflicts, 10, _conflict_line))
        if self.protected:
            lines.append(
                f"  {len(self.protected)} protected (source records with issues: "
                "not deprovisioned, groups kept):"
            )
            lines.extend(_first(self.protected, 10, _protection_line))
        for issues, heading in (
            (self.source_issues, "source records not used"),
            (self.source_warnings, "source records used with a part left out"),
        ):
            if issues:
                lines.append(f"  {len(issues)} {heading}:")
                lines.extend(_first(issues, 10, str))
        return "\n".join(lines)


def _first(items: Sequence[T], limit: int, describe: Callable[[T], str]) -> list[str]:
    """Report lines for at most ``limit`` of ``items``, then how many more there are."""
    lines = [f"    {describe(item)}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"    … and {len(items) - limit} more")
    return lines


def _protection_line(protection: Protection) -> str:
    key = json.dumps(protection.source_key, ensure_ascii=False)
    ids = f" (id {', '.join(protection.target_ids)})" if protection.target_ids else ""
    return f"{protection.resource_type} {key}{ids}: {protection.reason}"


def _conflict_line(conflict: Conflict) -> str:
    keys = ", ".join(json.dumps(k, ensure_ascii=False) for k in conflict.source_keys)
    return f"{conflict.kind} {conflict.resource_type} {keys}: {conflict.detail}"


class RequestStats:
    """Counts the HTTP requests and retries of a client, for the reports.

    Give its hooks to the client, and the counter to the provisioner, and each
    report counts requests on the wire (pages, retries and all) instead of calls
    to the target::

        stats = RequestStats()
        client = AsyncScimClient(url, auth=auth, on_request=[stats.on_request],
                                 on_retry=[stats.on_retry])
        provisioner = Provisioner(source, mapping, ScimTarget(client), request_stats=stats)

    Safe to call from any thread.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def __repr__(self) -> str:
        return f"RequestStats(requests={self.requests}, retries={self.retries})"

    def on_request(self, details: object) -> None:
        """An ``on_request`` hook: one more request sent."""
        with self._lock:
            self.requests += 1

    def on_retry(self, details: object) -> None:
        """An ``on_retry`` hook: one more retry."""
        with self._lock:
            self.retries += 1

    def snapshot(self) -> tuple[int, int]:
        """``(requests, retries)`` so far."""
        with self._lock:
            return self.requests, self.retries
