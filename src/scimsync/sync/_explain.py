"""The step-by-step explanation provisioning one identity on demand returns, and its steps.

:class:`Explanation` and :class:`Step` are the values; the ``*_step`` functions say
what each step found, from what was read, planned and done (plain values in, a
:class:`Step` out: no I/O). Deciding what to read and what to send for the identity
is ``_on_demand``'s job.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from ..engine import Plan
from ..models._base import to_tuple_or_empty
from ._decisions import describe_error
from ._report import SyncReport

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine import SyncState
    from ..mapping import MappingResult
    from ..sources import Record

__all__ = [
    "Explanation",
    "Step",
    "changes_step",
    "match_step",
    "operations_step",
    "result_step",
    "scope_step",
    "source_step",
]


@attrs.frozen(kw_only=True)
class Step:
    """One step of an explanation: ``name`` (``"source"``, ``"scope"``, ``"match"``,
    ``"changes"``, ``"operations"``, ``"result"``) and what was found or done."""

    name: str
    detail: str
    lines: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)

    def __str__(self) -> str:
        head = f"{self.name}: {self.detail}"
        return "\n".join([head, *(f"    {line}" for line in self.lines)])


@attrs.frozen(kw_only=True)
class Explanation:
    """What :meth:`~scimsync.Provisioner.provision_one` decided and did, step by step.

    ``steps`` go in order: where the source holds the identity, whether it is in
    scope, which target account it matches, what differs, the operations, and how
    each went. ``plan`` holds the operations for this identity only, ``report`` is
    the report of applying them. ``problem`` says why the identity could not be
    provisioned at all (the source holds no such key, or leaves it out of scope, or
    cannot map its record); then ``ok`` is False.
    """

    key: str
    steps: tuple[Step, ...] = attrs.field(converter=to_tuple_or_empty)
    plan: Plan
    report: SyncReport
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the identity is in the source, in scope, and everything planned for
        it was applied."""
        return self.problem is None and self.report.ok

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "key": self.key,
            "ok": self.ok,
            "problem": self.problem,
            "steps": [
                {"name": step.name, "detail": step.detail, "lines": list(step.lines)}
                for step in self.steps
            ],
            "report": self.report.to_dict(),
        }

    def __repr__(self) -> str:
        # Short: str() holds the steps, the report and the plan their own short reprs.
        steps = f"{len(self.steps)} step{'' if len(self.steps) == 1 else 's'}"
        return f"<Explanation {self.key!r}: {steps}, {self.report.outcome}>"

    def __str__(self) -> str:
        lines = [f"Provisioning {json.dumps(self.key, ensure_ascii=False)} on demand:"]
        if self.problem is not None:
            lines[0] += f" not done: {self.problem}"
        for number, step in enumerate(self.steps, 1):
            text = str(step).splitlines()
            lines.append(f"  {number}. {text[0]}")
            lines.extend(f"  {line}" for line in text[1:])
        return "\n".join(lines)


# -- the steps, in the order an explanation gives them ---------------------------------------


def source_step(record: Record | None, key: str) -> Step:
    """Where the source holds the identity, if it does."""
    if record is None:
        return Step(name="source", detail=f"the source holds no record with key {key!r}")
    return Step(name="source", detail=f"found: {record.where()}")


def scope_step(
    record: Any,
    mapped: MappingResult,
    key: str,
    desired: object | None,
    scope: Callable[[Any], object] | None,
) -> Step:
    """Whether the identity is in scope and mapped (``scope``: the mapping's rule)."""
    issues = [str(i) for i in mapped.issues if i.key == key]
    if desired is not None:
        return Step(name="scope", detail="in scope, mapped", lines=issues)
    if record is None:
        return Step(name="scope", detail="nothing to provision: the source does not hold it")
    if scope is not None and not issues:
        try:
            in_scope = bool(scope(record))
        except Exception as exc:
            return Step(name="scope", detail=f"the scope rule failed: {describe_error(exc)}")
        if not in_scope:
            return Step(name="scope", detail="out of scope: the mapping's scope leaves it out")
    return Step(name="scope", detail="in scope, but it could not be mapped", lines=issues)


def match_step(whole: Plan, key: str, resource_type: str, state: SyncState) -> Step:
    """Which target account the identity matches, and how (or the conflict)."""
    for conflict in whole.conflicts:
        if conflict.resource_type == resource_type and key in conflict.source_keys:
            ids = ", ".join(conflict.target_ids)
            return Step(
                name="match",
                detail=f"conflict ({conflict.kind}): {conflict.detail}"
                + (f" [{ids}]" if ids else ""),
            )
    for skip in whole.skipped:
        if skip.resource_type == resource_type and skip.source_key == key and skip.target_id:
            return Step(name="match", detail=f"left alone: {skip.reason}")
    for link in whole.links:
        if link.resource_type == resource_type and link.source_key == key:
            if link.matched_by == "create":
                return Step(name="match", detail="no account holds this identity: to be created")
            adopted = ", adopted" if link.adopted else ""
            return Step(
                name="match",
                detail=f"account {link.target_id}, matched by {link.matched_by}{adopted}",
            )
    linked = state.ledger(resource_type).links.get(key)
    if linked is not None:
        return Step(name="match", detail=f"account {linked}, linked by an earlier cycle")
    return Step(name="match", detail="no account found")


def changes_step(mine: Plan) -> Step:
    """What differs: each attribute change of the identity's own plan."""
    lines = []
    for op in mine.operations:
        for change in op.changes:
            if change.sensitive:
                lines.append(f"{op.resource_type} {change.path} = (sensitive)")
            elif op.kind == "create":
                lines.append(f"{op.resource_type} {change.path} = {_json(change.new)}")
            elif change.path == "members":
                lines.append(f"{op.resource_type} {op.target_id} members + {_json(change.new)}")
            else:
                old = _keyed(change.old, change.old_key)
                new = _keyed(change.new, change.new_key)
                lines.append(f"{op.resource_type} {change.path}: {old} → {new}")
    if not lines:
        return Step(name="changes", detail="none: the target holds what the source wants")
    return Step(name="changes", detail=f"{len(lines)} attribute changes", lines=lines)


def operations_step(mine: Plan, whole: Plan, key: str, resource_type: str) -> Step:
    """The operations to send, and those left for the next full cycle."""
    lines = [f"{op.kind} {op.resource_type} ({op.reason})" for op in mine.operations]
    waiting = [
        op for op in whole.held if (op.resource_type == resource_type and op.source_key == key)
    ]
    lines.extend(
        f"left for the next full cycle: {op.kind} {op.resource_type} ({op.reason})"
        for op in waiting
    )
    if not mine.operations:
        return Step(name="operations", detail="nothing to send", lines=lines)
    return Step(name="operations", detail=f"{len(mine.operations)} to send", lines=lines)


def result_step(report: SyncReport) -> Step:
    """How each operation went."""
    if not report.results:
        return Step(name="result", detail="nothing was sent")
    totals = report.totals()
    return Step(
        name="result",
        detail=", ".join(f"{count} {outcome}" for outcome, count in totals.items()),
        lines=[str(result) for result in report.results],
    )


def _keyed(value: Any, key: str | None) -> str:
    """A value, and the source key of the user it names (a manager's id) if known."""
    text = json.dumps(value, ensure_ascii=False)
    return text if key is None else f"{text} ({key})"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
