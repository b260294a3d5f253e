"""What a cycle leaves for the next: state, fingerprints, failures, and what the target taught.

Rules this module keeps:

- **Plain values in, a value out.** Each function takes what a cycle read and did and
  returns the :class:`~._state.StoredState` to save (or says why); the provisioner
  saves it, with the cycle's record, under its cycle lock. Nothing here sends a
  request or touches the store; the time is the ``now`` (or ``clock``) given.
- **Clean means the next cycle may skip the target.** A cycle is clean when it read
  the whole source and target, applied everything it planned (nothing failed, held,
  in conflict, protected or left journaled), and its policy digest is recorded. An
  incremental cycle then reads only the source: when its fingerprints and the
  policy digest are what the clean cycle left, the target is not read at all. Every
  ``full_cycle_every``, or when anything was left, it is.
- **Trouble is forgotten, never fingerprinted.** An identity whose operation failed,
  was held or is in conflict keeps no fingerprint, so the next cycle looks at it
  again; failures count their attempts from the first.
- **Learn once, warn once.** What the target does not keep (a path dropped, changed,
  or not cleared) is counted into the state; the warning is said when it is
  confirmed, once, with what it costs and how to ask again
  (``scimsync learned --forget``). What the target was found to accept (PATCH
  styles, PUT) is kept as its facts and restored before each cycle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
from typing import TYPE_CHECKING, Any

import attrs

from ..engine import Policy
from ..targets._facts import TargetFacts
from ._decisions import fingerprint
from ._state import PendingFailure, StoredState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import datetime, timedelta

    from ..engine import Plan
    from ..models import DesiredGroup, DesiredState, DesiredUser
    from ._executor import Execution
    from ._reading import Reading
    from ._report import OperationResult, SyncReport

__all__ = [
    "facts_of",
    "fingerprints",
    "forgotten",
    "full_cycle_reason",
    "incremental_refusal",
    "learn",
    "learned_lines",
    "policy_digest",
    "remembered",
    "remembered_one",
]

logger = logging.getLogger("scimsync.sync")


# -- whether a cycle may skip the target ----------------------------------------------------


def fingerprints(desired: DesiredState) -> dict[str, dict[str, str]]:
    """Source key → fingerprint of every desired identity, by resource type."""
    found = {
        "User": {u.key: fingerprint(u) for u in desired.users},
        "Group": {g.key: fingerprint(g) for g in desired.groups},
    }
    return {kind: values for kind, values in found.items() if values}


def policy_digest(policy: Policy, desired: DesiredState) -> str:
    """What a clean cycle was planned with: the policy, and the managed attributes (a
    newly managed attribute may have values to clear while no identity changed)."""
    data = {
        field.name: sorted(value) if isinstance(value, frozenset) else value
        for field in attrs.fields(Policy)
        if field.name != "schema"
        for value in [getattr(policy, field.name)]
    }
    if desired.managed_user_attributes is not None:
        data["managedUserAttributes"] = list(desired.managed_user_attributes)
    if desired.managed_group_attributes is not None:
        data["managedGroupAttributes"] = list(desired.managed_group_attributes)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def full_cycle_reason(
    full: bool, now: datetime, stored: StoredState, every: timedelta | None
) -> str | None:
    """Why this cycle must read the target whatever the source says, or None."""
    if full:
        return "a full cycle was asked for"
    if every is None:
        return "every cycle is a full one (full_cycle_every is None)"
    if stored.last_full_at is None or now - stored.last_full_at >= every:
        return "a full cycle is due"
    if not stored.clean or stored.journal or stored.failures:
        return "the last cycle left work"
    return None


def incremental_refusal(
    reading: Reading, digests: dict[str, dict[str, str]], settings: str
) -> str | None:
    """Why this cycle must read the target after all, or None when it need not."""
    stored = reading.stored
    if not stored.clean:
        return "the last cycle left work (failures, held operations, conflicts)"
    if stored.journal:
        return "an interrupted cycle left a journal"
    if stored.failures:
        return "failed operations wait for a retry"
    if stored.settings != settings:
        return "the policy changed"
    if not reading.mapped.desired.complete:
        return "the source read was incomplete"
    if {k: dict(v) for k, v in stored.fingerprints.items() if v} != digests:
        return "identities changed in the source"
    return None


# -- what a cycle leaves ----------------------------------------------------------------------


def remembered(
    reading: Reading,
    plan: Plan,
    execution: Execution,
    report: SyncReport,
    *,
    digests: dict[str, dict[str, str]] | None,
    settings: str | None,
    now: datetime,
) -> StoredState:
    """The state a cycle leaves. ``digests`` and ``settings`` are None for a cycle that
    did not read the source (applying a plan): the fingerprints stay as they were."""
    stored = reading.stored
    not_applied = execution.not_applied(plan)
    state = reading.state.after(plan, execution.resolved, failed=not_applied)
    # Creates of an interrupted cycle still unaccounted for stay journaled.
    leftover = [
        entry
        for entry in reading.earlier
        if entry.source_key not in state.ledger(entry.resource_type).links
    ]
    failures = _failures(stored.failures, report.failures, now)
    if digests is not None:
        troubled = _troubled_keys(plan, not_applied)
        fingerprints = {
            kind: {k: v for k, v in values.items() if (kind, k) not in troubled}
            for kind, values in digests.items()
        }
    else:
        fingerprints = {k: dict(v) for k, v in stored.fingerprints.items()}
    actual = reading.actual
    read_all = digests is not None and actual is not None and actual.complete
    clean = (
        digests is not None
        and report.ok
        and not plan.conflicts
        and not plan.held
        and reading.mapped.desired.complete
        # A protected record's key may leave the source with no identity changing:
        # the next cycle must read the target to deprovision it then.
        and not plan.protected
        and (actual is None or actual.complete)
        and not leftover
    )
    return StoredState(
        state=state,
        fingerprints=fingerprints,
        failures=failures,
        journal=leftover,
        clean=clean,
        settings=settings if clean else None,
        last_full_at=now if read_all else stored.last_full_at,
        target_facts=stored.target_facts,
    )


def remembered_one(
    reading: Reading,
    plan: Plan,
    execution: Execution,
    report: SyncReport,
    *,
    resource_type: str,
    wanted: DesiredUser | DesiredGroup,
    now: datetime,
) -> StoredState:
    """The state provisioning one identity leaves: its fingerprint when all went well
    (forgotten otherwise), its failures; every other identity's as it was."""
    stored = reading.stored
    state = reading.state.after(plan, execution.resolved, failed=execution.not_applied(plan))
    fingerprints = {k: dict(v) for k, v in stored.fingerprints.items()}
    if report.ok:
        fingerprints.setdefault(resource_type, {})[wanted.key] = fingerprint(wanted)
    else:
        fingerprints.get(resource_type, {}).pop(wanted.key, None)
    return attrs.evolve(
        stored,
        state=state,
        fingerprints=fingerprints,
        failures=_failures(stored.failures, report.failures, now, keep_others=True),
    )


def _troubled_keys(plan: Plan, not_applied: Sequence[Any]) -> set[tuple[str, str]]:
    troubled = {(op.resource_type, op.source_key) for op in not_applied if op.source_key}
    troubled.update((op.resource_type, op.source_key) for op in plan.held if op.source_key)
    for conflict in plan.conflicts:
        troubled.update((conflict.resource_type, key) for key in conflict.source_keys)
    return troubled


def _failures(
    previous: Sequence[PendingFailure],
    failed: Sequence[OperationResult],
    now: datetime,
    *,
    keep_others: bool = False,
) -> list[PendingFailure]:
    before = {f.identity: f for f in previous}
    out: dict[tuple[str, str, str], PendingFailure] = dict(before) if keep_others else {}
    for result in failed:
        failure = PendingFailure(
            resource_type=result.resource_type,
            kind=result.kind,
            source_key=result.source_key,
            target_id=result.target_id,
            error=result.reason,
            first_failed_at=now,
            last_failed_at=now,
        )
        earlier = before.get(failure.identity)
        if earlier is not None:
            failure = attrs.evolve(
                failure,
                attempts=earlier.attempts + 1,
                first_failed_at=earlier.first_failed_at or now,
            )
        out[failure.identity] = failure
    return [out[k] for k in sorted(out)]


# -- what the target taught -------------------------------------------------------------------


def facts_of(target: object) -> TargetFacts | None:
    """What a target learns of itself (a :class:`~scimsync.targets.ScimTarget`'s facts)."""
    facts = getattr(target, "facts", None)
    return facts if isinstance(facts, TargetFacts) else None


def learn(
    reading: Reading,
    execution: Execution,
    facts: TargetFacts | None,
    clock: Callable[[], datetime],
) -> list[str]:
    """Count what the target did not keep into the reading's state, keep what it was
    found to accept (``facts``) in its stored state; say what is newly known."""
    warnings: list[str] = []
    if facts is not None:
        learned = facts.to_dict()
        if learned != dict(reading.stored.target_facts):
            said = TargetFacts.from_dict(reading.stored.target_facts).describe()
            warnings.extend(line for line in facts.describe() if line not in said)
            reading.stored = attrs.evolve(reading.stored, target_facts=learned)
    if not execution.unkept:
        return warnings
    before = reading.state
    after = before.learn(((o.resource_type, o.path, o.how) for o in execution.unkept), clock())
    reading.state = after
    for resource_type in ("User", "Group"):
        known = before.ledger(resource_type).unkept
        for path, fact in sorted(after.ledger(resource_type).unkept.items()):
            earlier = known.get(path)
            if not fact.confirmed or (earlier is not None and earlier.confirmed):
                continue
            warning = _unkept_warning(resource_type, path, fact.how, fact.seen)
            logger.warning("%s", warning)
            warnings.append(warning)
    return warnings


def learned_lines(stored: StoredState) -> tuple[str, ...]:
    """What earlier cycles learned of the target, one line each (``Provisioner.learned``)."""
    lines = [
        f"{resource_type} {path}: {_HOW_SEEN[fact.how]} (seen {_times(fact.seen)}"
        + (", not yet acted on)" if not fact.confirmed else ")")
        for resource_type in ("User", "Group")
        for path, fact in sorted(stored.state.ledger(resource_type).unkept.items())
    ]
    lines.extend(TargetFacts.from_dict(stored.target_facts).describe())
    return tuple(lines)


def forgotten(
    stored: StoredState, paths: Iterable[str] | None, resource_type: str | None
) -> tuple[StoredState, bool]:
    """The stored state with what was learned forgotten (``Provisioner.forget``), and
    whether that was everything (then the target's own facts go too)."""
    listed = None if paths is None else tuple(paths)
    everything = listed is None and resource_type is None
    new = attrs.evolve(
        stored,
        state=stored.state.forget(resource_type, listed),
        target_facts={} if everything else stored.target_facts,
        clean=False,
    )
    return new, everything


_HOW_SEEN = {
    "dropped": "the target drops it",
    "changed": "the target changes it",
    "not_cleared": "the target does not clear it",
}

_UNKEPT_CONSEQUENCE = {
    "dropped": "drops it: it is no longer compared nor written",
    "changed": "changes what it is sent: it is no longer compared, and sent on creates only",
    "not_cleared": "does not clear it: it is no longer cleared",
}

#: What leaving these paths out costs, beyond the attribute itself.
_HEAVY = {
    "active": "leavers can no longer be deactivated (deprovision='delete' deletes them)",
    "externalid": "accounts are matched by the next match key, and owned through the state",
}


def _unkept_warning(resource_type: str, path: str, how: str, seen: int) -> str:
    """The warning said once when a path the target does not keep is confirmed."""
    heavy = _HEAVY.get(path.lower()) if resource_type == "User" else None
    return (
        f"the target does not keep {resource_type} {path} (seen {_times(seen)}): it "
        f"{_UNKEPT_CONSEQUENCE[how]}{f'; {heavy}' if heavy and how != 'not_cleared' else ''}"
        f"; `scimsync learned --forget {shlex.quote(path)}` asks again"
    )


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"
