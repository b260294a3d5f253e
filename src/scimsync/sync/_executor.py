"""The executor: applies exactly the operations of a plan to a target, safely.

It is the thin asynchronous shell around :mod:`scimsync.sync._decisions`: it sends,
and asks those pure functions what every answer means. What it guarantees:

- **Exactly the plan.** Only the plan's operations are sent. Given the target as
  it is now (``current``), each one is first re-planned against it: what is done
  already is not sent, what changed meanwhile is computed again.
- **Order.** Up to ``concurrency`` operations at once, each after the creates whose
  ids it needs (placeholders resolved) and after the operation before it on the
  same resource. A failure never stops independent operations.
- **Duplicate-safe creates.** A create whose answer was lost, or that met a
  uniqueness conflict, is followed by a lookup of its identity before anything
  else: found, it is linked (or adopted, per the policy); not found, sent again.
- **412 and lost answers on updates**: the resource is read again, the change
  re-planned, and sent again a bounded number of times.
- **401/403 stop every write at once; so does quarantine** (too many failures).
- **Nothing trusted blindly.** What the target answers to a create or an update
  is compared with what was sent (:mod:`scimsync.sync._verify`); when it answers
  without the resource, or without part of what was sent, the resource read back
  is (an answer may be a summary: only what the target holds tells what it did not
  keep). What it did not keep is noted in the result and returned, for the state
  to learn.
- **Write-ahead journal.** The identities about to be created are journaled before
  any create is sent, and each write done after it is, so a killed process leaves
  what the next cycle needs to link what it created.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from ..engine import CONFIRMATIONS, Operation, Policy
from ..engine._changes import add_members_patch, remove_members_patch
from ..engine._values import is_placeholder
from ..errors import ConfigurationError, InvalidResponseError, NotFoundError, OutcomeUnknownError
from ..models import Group, PatchOperation, Resource, User
from ..patch import diff
from ._decisions import (
    CreateAction,
    CreateDecision,
    ErrorAction,
    another_identity,
    create_identity,
    decide_create,
    decide_error,
    dependencies,
    describe_error,
    holds_identity,
    matches_identity,
    quarantine_reason,
    rebase,
    redact,
    secrets_of,
    status_of,
    without_placeholders,
)
from ._report import OperationResult, Outcome
from ._state import JournalEntry
from ._verify import Observation, unkept_by_patch, unkept_by_resource

if TYPE_CHECKING:
    from datetime import datetime

    from ..engine import Plan, SyncState
    from ..models import TargetState
    from ..patch._scope import ElementScope
    from ..schema import SchemaTable
    from ..targets import GroupTarget, UserTarget
    from ._state import StateStore

__all__ = ["ApplyPolicy", "Execution", "Executor", "Journal"]

logger = logging.getLogger("scimsync.sync")


def _check_fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(
            f"{attribute.name}: expected a fraction from 0 to 1, got {value!r}"
        )


def _check_positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{attribute.name}: expected at least 1, got {value!r}")


def _check_not_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(f"{attribute.name}: expected 0 or more, got {value!r}")


@attrs.frozen(kw_only=True)
class ApplyPolicy:
    """How plans are applied (the engine's :class:`~scimsync.engine.Policy` says what).

    - ``concurrency``: operations in flight at once.
    - ``max_failure_rate`` / ``min_operations``: once ``min_operations`` writes have
      come back, a share of failures above ``max_failure_rate`` quarantines the
      cycle: no more writes, a report, and (under :meth:`Provisioner.run_forever`)
      a longer wait before the next cycle.
    - ``max_rereads``: how often one operation re-reads its resource and tries again
      after a 412 or a lost answer.
    - ``max_create_attempts``: how often one create is sent when each lookup after a
      lost answer finds nothing.
    - ``verify_writes``: compare what the target answers to each create and update
      with what was sent, reading the resource back when the answer does not hold it
      (a PATCH answered 204, a deactivation) or when the answer lacks some of what
      was sent: what it does not keep is learned, so it is not written again on
      every cycle. Costs one read per write answered without the resource, or
      without all that was sent.
    """

    concurrency: int = attrs.field(default=8, validator=_check_positive)
    max_failure_rate: float = attrs.field(default=0.2, validator=_check_fraction)
    min_operations: int = attrs.field(default=20, validator=_check_positive)
    max_rereads: int = attrs.field(default=3, validator=_check_not_negative)
    max_create_attempts: int = attrs.field(default=3, validator=_check_positive)
    verify_writes: bool = True


class Journal:
    """Write-ahead records of a cycle in progress, batched into a :class:`StateStore`.

    Intents are written at once (they must be durable before the creates they
    announce are sent); what was done is buffered and written every ``batch``
    entries or ``interval`` seconds, and at :meth:`flush`. A record lost to a crash
    in between is still covered by its intent.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        clock: Callable[[], datetime],
        timer: Callable[[], float],
        batch: int = 200,
        interval: float = 0.5,
    ) -> None:
        self.store = store
        self.clock = clock
        self.timer = timer
        self.batch = batch
        self.interval = interval
        self._buffer: list[JournalEntry] = []
        self._last = timer()

    def intend(self, entries: Sequence[JournalEntry]) -> None:
        """Write intents now."""
        self.store.append_journal(entries)

    def record(self, entry: JournalEntry) -> None:
        """Buffer one record of something done."""
        self._buffer.append(entry)
        if len(self._buffer) >= self.batch or self.timer() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        if self._buffer:
            entries, self._buffer = self._buffer, []
            self.store.append_journal(entries)
        self._last = self.timer()


@attrs.frozen(kw_only=True)
class Execution:
    """What applying a plan did.

    ``results`` has one :class:`OperationResult` per operation, in plan order;
    ``resolved`` maps the placeholders of created (or linked) resources to their ids;
    ``quarantine`` / ``stopped`` say why writing stopped early, if it did;
    ``requests`` counts the target calls made and ``retries`` the writes sent again;
    ``unkept`` holds what the target answered to writes without keeping it.
    """

    results: tuple[OperationResult, ...]
    resolved: Mapping[str, str]
    quarantine: str | None = None
    stopped: str | None = None
    requests: int = 0
    retries: int = 0
    unkept: tuple[Observation, ...] = ()

    def __repr__(self) -> str:
        # Short whatever the size of the plan; the results hold the rest.
        totals = {"applied": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            totals[result.outcome] += 1
        counts = " ".join(f"{outcome}={count}" for outcome, count in totals.items())
        halt = " quarantined" if self.quarantine else " stopped" if self.stopped else ""
        return f"<Execution {counts}{halt}, requests={self.requests} retries={self.retries}>"

    def not_applied(self, plan: Plan) -> list[Operation]:
        """The plan's operations that did not take effect (failed or skipped)."""
        return [
            op
            for op, result in zip(plan.operations, self.results, strict=True)
            if result.outcome != "applied"
        ]


@attrs.define
class _Run:
    """The bookkeeping of one operation while it runs."""

    index: int
    planned: Operation
    started: float
    target_id: str
    policy: Policy
    writes: int = 0
    reads: int = 0
    rereads: int = 0
    retries: int = 0
    replanned: bool = False
    adopted: bool = False
    notes: list[str] = attrs.Factory(list)
    # The user's active flag the write set, where the target did not keep it.
    active_not_kept: bool = False

    def result(
        self,
        outcome: Outcome,
        reason: str,
        ended: float,
        exc: BaseException | None = None,
    ) -> OperationResult:
        text = "; ".join([*self.notes, reason] if reason else self.notes)
        return OperationResult(
            index=self.index,
            kind=self.planned.kind,
            resource_type=self.planned.resource_type,
            source_key=self.planned.source_key,
            target_id=self.target_id,
            outcome=outcome,
            # The operation's sensitive values, masked wherever a message repeats them.
            reason=redact(text, secrets_of(self.planned, self.policy)) if text else "",
            error=type(exc).__name__ if exc is not None else None,
            status=status_of(exc) if exc is not None else None,
            writes=self.writes,
            reads=self.reads,
            replanned=self.replanned,
            adopted=self.adopted,
            changes=self.planned.changes,
            duration=max(ended - self.started, 0.0),
        )


class Executor:
    """Applies plans to one target (see the module documentation for the guarantees).

    ``state`` is what the plan was made with (ownership decides what a lookup may
    link); ``journal`` receives the write-ahead records (None: none kept);
    ``on_result`` is called with each result as it comes; ``stop_requested`` is
    asked before each operation starts. ``earlier_attempts`` names the creates
    (resource type, source key) an interrupted cycle may have sent: each is looked
    up before it is sent, and an account holding its whole identity is its own.
    """

    def __init__(
        self,
        target: UserTarget,
        *,
        policy: Policy,
        settings: ApplyPolicy | None = None,
        state: SyncState | None = None,
        journal: Journal | None = None,
        timer: Callable[[], float],
        clock: Callable[[], datetime],
        on_result: Callable[[OperationResult], object] | None = None,
        stop_requested: Callable[[], bool] | None = None,
        earlier_attempts: Collection[tuple[str, str | None]] = (),
        scopes: Mapping[str, Sequence[ElementScope]] | None = None,
    ) -> None:
        from ..engine import SyncState

        self.target = target
        self.policy = policy
        # The element scopes of what the mapping writes, per resource type: a value
        # they select that the target does not keep is learned as that value.
        self.scopes = dict(scopes or {})
        self.settings = settings or ApplyPolicy()
        self.state = state or SyncState()
        self.journal = journal
        self.timer = timer
        self.clock = clock
        self.on_result = on_result
        self.stop_requested = stop_requested or (lambda: False)
        self.earlier_attempts = frozenset(earlier_attempts)
        self.ids: dict[str, str] = {}
        self._current: dict[tuple[str, str], Resource] | None = None
        self._listed: dict[str, list[Resource]] = {}
        self._verify_creates = False
        self._identities: dict[str, dict[str, str]] = {}
        self._stop_reason: str | None = None
        self._quarantine: str | None = None
        self._finished = 0
        self._failed = 0
        self._requests = 0
        self._retries = 0
        self._unkept: list[Observation] = []
        # Observations made on read-backs this run, by how often.
        self._read_back: Counter[Observation] = Counter()

    # -- the whole plan ------------------------------------------------------------------

    async def execute(
        self,
        plan: Plan,
        *,
        current: TargetState | None = None,
        verify_creates: bool = False,
    ) -> Execution:
        """Apply ``plan.operations``; never raises for what the target answers.

        ``current``: the target as it is now, when the plan may be older than that:
        every operation is re-planned against it first. ``verify_creates``: look each
        identity up before creating it (when the listing the plan came from was
        incomplete, an account may exist that the plan could not see).
        """
        operations = plan.operations
        self._verify_creates = verify_creates
        if current is not None:
            self._current = {("User", u.id): u for u in current.users if u.id is not None}
            self._current.update((("Group", g.id), g) for g in current.groups if g.id is not None)
            self._listed = {"User": list(current.users), "Group": list(current.groups)}
        self._identities = {
            op.target_id: create_identity(op, self.policy)
            for op in operations
            if op.kind == "create"
        }
        if self.journal is not None and self._identities:
            self.journal.intend(
                [
                    JournalEntry(
                        event="intent",
                        resource_type=op.resource_type,
                        source_key=op.source_key,
                        target_id=op.target_id,
                        identity=self._identities[op.target_id],
                        at=plan.now,
                    )
                    for op in operations
                    if op.kind == "create"
                ]
            )
        results: list[OperationResult | None] = [None] * len(operations)
        deps = dependencies(operations)
        waiting = [len(d) for d in deps]
        dependents: list[list[int]] = [[] for _ in operations]
        for position, needs in enumerate(deps):
            for need in needs:
                dependents[need].append(position)
        ready = [position for position, count in enumerate(waiting) if count == 0]
        heapq.heapify(ready)
        condition = asyncio.Condition()
        done = 0
        raised: list[Exception] = []  # by on_result, or a bug: no more starts

        async def worker() -> None:
            nonlocal done
            while True:
                async with condition:
                    while not ready and done < len(operations) and not raised:
                        await condition.wait()
                    if not ready or raised:
                        return
                    position = heapq.heappop(ready)
                try:
                    result = await self._run_one(position, operations[position])
                    results[position] = result
                    if self.on_result is not None:
                        self.on_result(result)
                except Exception as exc:
                    # The other workers end what they are sending, start nothing more,
                    # and the error is raised once they have: no write left running.
                    raised.append(exc)
                    async with condition:
                        condition.notify_all()
                    return
                async with condition:
                    done += 1
                    for follower in dependents[position]:
                        waiting[follower] -= 1
                        if waiting[follower] == 0:
                            heapq.heappush(ready, follower)
                    condition.notify_all()

        if operations:
            workers = min(self.settings.concurrency, len(operations))
            await asyncio.gather(*(worker() for _ in range(workers)))
        if self.journal is not None:
            self.journal.flush()  # what was done is recorded, even when raising below
        if raised:
            raise raised[0]
        assert all(r is not None for r in results)
        return Execution(
            results=tuple(r for r in results if r is not None),
            resolved=dict(self.ids),
            quarantine=self._quarantine,
            stopped=self._stop_reason if self._quarantine is None else None,
            requests=self._requests,
            retries=self._retries,
            unkept=tuple(self._unkept),
        )

    # -- one operation ---------------------------------------------------------------------

    async def _run_one(self, position: int, planned: Operation) -> OperationResult:
        run = _Run(
            index=position,
            planned=planned,
            started=self.timer(),
            target_id=planned.target_id,
            policy=self.policy,
        )
        try:
            outcome, reason, error = await self._apply(run)
        except Exception as exc:  # a target that raised something unforeseen
            outcome, reason, error = "failed", describe_error(exc), exc
        result = run.result(outcome, reason, self.timer(), error)
        self._retries += run.retries
        if result.outcome != "skipped":
            self._count(result.outcome == "failed")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", result)
        return result

    def _count(self, failed: bool) -> None:
        self._finished += 1
        self._failed += failed
        if self._quarantine is None and self._stop_reason is None:
            reason = quarantine_reason(
                self._finished,
                self._failed,
                max_failure_rate=self.settings.max_failure_rate,
                min_operations=self.settings.min_operations,
            )
            if reason is not None:
                self._quarantine = reason
                self._stop_reason = reason
                logger.warning("quarantine: %s", reason)

    def _stopping(self) -> str | None:
        if self._stop_reason is None and self.stop_requested():
            self._stop_reason = "a stop was requested: the remaining operations were not started"
        return self._stop_reason

    async def _apply(self, run: _Run) -> tuple[Outcome, str, BaseException | None]:
        stop = self._stopping()
        if stop is not None:
            return "skipped", f"not started: {stop}", None
        op, note = self._resolved(run.planned)
        if op is None:
            return "skipped", note, None
        if note:
            run.notes.append(note)
        run.target_id = op.target_id
        if op.kind == "create":
            return await self._create(run, op)
        # A resource this apply created was not there when the target was re-read:
        # nothing can have changed it since the plan, so there is nothing to re-plan.
        if self._current is not None and not is_placeholder(run.planned.target_id):
            current = self._current.get((op.resource_type, op.target_id))
            rebased = rebase(op, current, self.policy, self.ids)
            if rebased.op is None:
                return ("applied" if rebased.done else "failed"), rebased.reason, None
            if rebased.replanned:
                run.replanned = True
                run.notes.append(rebased.reason)
            op = rebased.op
        return await self._write(run, op)

    def _resolved(self, planned: Operation) -> tuple[Operation | None, str]:
        """The operation with the ids created so far; placeholders left are dropped."""
        op = planned.resolve(self.ids)
        pending = op.placeholders
        if not pending:
            return op, ""
        if op.kind != "create" and is_placeholder(op.target_id):
            return None, "not started: the create of this resource did not succeed"
        if op.kind in ("add_members", "remove_members") and not op.body:
            keep = [m for m in op.members if not is_placeholder(m)]
            if keep:
                patch = (
                    add_members_patch(keep)
                    if op.kind == "add_members"
                    else remove_members_patch(keep)
                )
                op = attrs.evolve(op, members=keep, patch=patch)
        elif isinstance(op.body, Group) and op.body.members:
            kept = tuple(m for m in op.body.members if not is_placeholder(m.value or ""))
            op = attrs.evolve(op, body=attrs.evolve(op.body, members=kept))
        elif op.resource_type == "User":
            # References to users whose create failed (a manager): the rest goes on.
            op = without_placeholders(op)
            if not op.patch and op.body is None:
                return None, "not started: the users it refers to were not created"
            left_out = len(pending)
            return op, (
                f"{left_out} reference{'s' if left_out > 1 else ''} to users not created "
                "left out (the next cycle sets them)"
            )
        if op.placeholders:
            return None, "not started: the creates it depends on did not succeed"
        left_out = len(pending)
        return op, f"{left_out} member{'s' if left_out > 1 else ''} left out: not created"

    # -- creates -------------------------------------------------------------------------

    async def _create(self, run: _Run, op: Operation) -> tuple[Outcome, str, BaseException | None]:
        identity = self._identities.get(op.target_id) or create_identity(op, self.policy)
        ledger = self.state.ledger(op.resource_type)
        earlier = (op.resource_type, op.source_key) in self.earlier_attempts
        if self._current is not None or self._verify_creates or earlier:
            if self._current is not None:
                found = [
                    a
                    for a in self._listed.get(op.resource_type, ())
                    if holds_identity(op.resource_type, identity, a, self.policy)
                ]
            else:
                found = await self._find(run, op, identity)
            if found:
                existing = decide_create(
                    op, found, policy=self.policy, ledger=ledger, maybe_ours=earlier
                )
                return await self._settle(run, op, existing)
        maybe_ours = earlier
        attempts = 0
        while True:
            attempts += 1
            try:
                created = await self._post(run, op)
            except Exception as exc:
                decision = decide_error(op, exc, rereads=0, max_rereads=0)
                if decision.action is ErrorAction.STOP_WRITING:
                    self._stop_writing(op, decision.reason)
                    return "failed", decision.reason, exc
                if decision.action is not ErrorAction.LOOKUP:
                    return "failed", decision.reason, exc
                maybe_ours = maybe_ours or isinstance(
                    exc, (OutcomeUnknownError, InvalidResponseError)
                )
                try:
                    found = await self._find(run, op, identity)
                except Exception as lookup_error:
                    return (
                        "failed",
                        f"{decision.reason}; the lookup that follows failed: "
                        f"{describe_error(lookup_error)}",
                        lookup_error,
                    )
                settled = decide_create(
                    op, found, policy=self.policy, ledger=ledger, maybe_ours=maybe_ours
                )
                if settled.action is CreateAction.RETRY:
                    if not maybe_ours:
                        return (
                            "failed",
                            f"{decision.reason}; yet no account holds this identity "
                            f"({', '.join(identity)}): the clash is on another attribute",
                            exc,
                        )
                    if attempts >= self.settings.max_create_attempts:
                        return (
                            "failed",
                            f"{decision.reason}; not found after {attempts} attempts",
                            exc,
                        )
                    run.retries += 1
                    run.notes.append("answer lost and nothing found: sent again")
                    continue
                run.notes.append(decision.reason)
                return await self._settle(run, op, settled)
            new_id = created.id
            if not new_id or (
                other := another_identity(op.resource_type, identity, created, self.policy)
            ):
                answer = (
                    f"the target answered the create with account {new_id}, which holds "
                    f"another identity ({other})"
                    if new_id
                    else "the target answered the create without an id"
                )
                return await self._look_up_answer(run, op, identity, answer, maybe_ours=not new_id)
            self._link(op, new_id, adopted=False)
            run.target_id = new_id
            assert op.body is not None
            await self._verify_answer(run, op.resource_type, new_id, op.body, created)
            return "applied", "", None

    async def _look_up_answer(
        self,
        run: _Run,
        op: Operation,
        identity: Mapping[str, str],
        answer: str,
        *,
        maybe_ours: bool,
    ) -> tuple[Outcome, str, BaseException | None]:
        """End a create answered with success but not with its account: without an id,
        or with an account of another identity (a target answering a clash with the
        account it clashed with). Never linked, nor checked, blindly: the identity sent
        is looked up, and the create is not sent again.

        ``identity``: what the create sent to match by. ``maybe_ours``: the answer says
        the create was made (no id): an account holding every value sent is its own.
        """
        try:
            found = await self._find(run, op, identity)
        except Exception as exc:
            return "failed", f"{answer}; the lookup that follows failed: {describe_error(exc)}", exc
        ledger = self.state.ledger(op.resource_type)
        settled = decide_create(op, found, policy=self.policy, ledger=ledger, maybe_ours=maybe_ours)
        if settled.action is CreateAction.RETRY:
            return (
                "failed",
                f"{answer}; no account holds this identity: not sent again this cycle",
                None,
            )
        run.notes.append(answer)
        return await self._settle(run, op, settled)

    async def _settle(
        self, run: _Run, op: Operation, decision: CreateDecision
    ) -> tuple[Outcome, str, BaseException | None]:
        """End a create with what a lookup found: link (and update), ignore or fail."""
        if decision.action is CreateAction.IGNORE:
            return "skipped", decision.reason, None
        if decision.action is not CreateAction.LINK and decision.action is not CreateAction.ADOPT:
            return "failed", decision.reason, None
        account = decision.account
        assert account is not None
        assert account.id is not None
        adopted = decision.action is CreateAction.ADOPT
        self._link(op, account.id, adopted=adopted)
        run.target_id = account.id
        run.adopted = adopted
        change = self._catch_up(op, account)
        if change is None:
            return "applied", decision.reason, None
        try:
            await self._update(run, op.resource_type, account.id, change)
        except Exception as exc:
            return (
                "applied",
                f"{decision.reason}; its attributes could not be brought in line "
                f"(the next cycle retries): {describe_error(exc)}",
                exc,
            )
        return "applied", f"{decision.reason}; attributes brought in line", None

    def _catch_up(self, op: Operation, account: Resource) -> list[PatchOperation] | Resource | None:
        """What an existing account needs to hold what the create would have set."""
        assert op.body is not None
        body = op.body
        if isinstance(body, User) and body.password is not None:
            body = attrs.evolve(body, password=None)  # set on create only, never on a link
        ops = diff(account, body, schema=self.policy.schema)
        if not ops:
            return None
        return ops if self.policy.update_method == "patch" else body

    def _link(self, op: Operation, target_id: str, *, adopted: bool) -> None:
        self.ids[op.target_id] = target_id
        if self.journal is not None:
            self.journal.record(
                JournalEntry(
                    event="created",
                    resource_type=op.resource_type,
                    source_key=op.source_key,
                    target_id=target_id,
                    adopted=adopted,
                    at=self.clock(),
                )
            )

    # -- other writes --------------------------------------------------------------------

    async def _write(self, run: _Run, op: Operation) -> tuple[Outcome, str, BaseException | None]:
        while True:
            try:
                await self._send(run, op)
            except Exception as exc:
                decision = decide_error(
                    op, exc, rereads=run.rereads, max_rereads=self.settings.max_rereads
                )
                if decision.action is ErrorAction.STOP_WRITING:
                    self._stop_writing(op, decision.reason)
                    return "failed", decision.reason, exc
                if decision.action is ErrorAction.ALREADY_DONE:
                    self._done(op)
                    return "applied", decision.reason, None
                if decision.action is not ErrorAction.REREAD:
                    return "failed", decision.reason, exc
                run.rereads += 1
                try:
                    current = await self._get(run, op)
                except Exception as read_error:
                    return (
                        "failed",
                        f"{decision.reason}; reading it again failed: {describe_error(read_error)}",
                        read_error,
                    )
                rebased = rebase(op, current, self.policy, self.ids)
                if rebased.op is None:
                    if rebased.done:
                        self._done(op)
                        return "applied", f"{decision.reason}; {rebased.reason}", None
                    return "failed", f"{decision.reason}; {rebased.reason}", exc
                run.retries += 1
                run.replanned = run.replanned or rebased.replanned
                run.notes.append(f"{decision.reason}: read again and re-sent")
                op = rebased.op
                continue
            if run.active_not_kept:
                # A leaver still active (or a returner still locked out) is never
                # "applied", nor learned away: it fails, loudly, on every cycle.
                return "failed", _active_not_kept(op), None
            self._done(op)
            return "applied", "", None

    def _done(self, op: Operation) -> None:
        if self.journal is None or op.kind not in ("deactivate", "delete"):
            return
        self.journal.record(
            JournalEntry(
                event="deactivated" if op.kind == "deactivate" else "deleted",
                resource_type=op.resource_type,
                source_key=op.source_key,
                target_id=op.target_id,
                at=self.clock(),
            )
        )

    def _stop_writing(self, op: Operation, reason: str) -> None:
        # The reason quotes the target's answer, which may echo the op's password.
        reason = redact(reason, secrets_of(op, self.policy))
        if self._stop_reason is None:
            self._stop_reason = reason
            logger.error("writing stopped: %s", reason)

    # -- the calls ---------------------------------------------------------------------------

    @property
    def _groups(self) -> GroupTarget:
        # Only group operations get here, and the provisioner refuses those for a
        # target without the group methods (users-only targets are never asked).
        return cast("GroupTarget", self.target)

    async def _post(self, run: _Run, op: Operation) -> Resource:
        assert op.body is not None
        run.writes += 1
        self._requests += 1
        if isinstance(op.body, User):
            return await self.target.create_user(op.body)
        return await self._groups.create_group(op.body)

    async def _send(self, run: _Run, op: Operation) -> None:
        run.writes += 1
        self._requests += 1
        target = self.target
        group = op.resource_type == "Group"
        target_id = op.target_id
        if op.kind == "delete":
            await (self._groups.delete_group(target_id) if group else target.delete_user(target_id))
        elif op.kind == "add_members" and op.body is None:
            await self._groups.add_members(target_id, op.members)
        elif op.kind == "remove_members" and op.body is None:
            await self._groups.remove_members(target_id, op.members)
        elif op.kind == "deactivate" and op.body is None and _sets_only_active(op, False):
            await target.deactivate_user(target_id)
            await self._verify_answer(run, "User", target_id, list(op.patch), None)
        elif op.kind == "reactivate" and op.body is None and _sets_only_active(op, True):
            await target.reactivate_user(target_id)
            await self._verify_answer(run, "User", target_id, list(op.patch), None)
        else:
            change: Any = op.body if op.body is not None else list(op.patch)
            if op.body is not None:
                # A body only sets what it holds: a cleared attribute goes as a remove.
                as_patch = op.body_patch()
                if any(o.op == "remove" for o in as_patch):
                    change = list(as_patch)
            await self._update(run, op.resource_type, target_id, change, counted=True)

    async def _update(
        self, run: _Run, resource_type: str, target_id: str, change: Any, *, counted: bool = False
    ) -> None:
        if not counted:
            run.writes += 1
            self._requests += 1
        answered: Resource | None
        if resource_type == "Group":
            answered = await self._groups.update_group(target_id, change)
        else:
            answered = await self.target.update_user(target_id, change)
        await self._verify_answer(run, resource_type, target_id, change, answered)

    # -- what the target kept ------------------------------------------------------------

    async def _verify_answer(
        self,
        run: _Run,
        resource_type: str,
        target_id: str,
        sent: Sequence[PatchOperation] | Resource,
        answered: Resource | None,
    ) -> None:
        """Compare what a write sent with the answer; when there is none, or it lacks
        some of what was sent, with the resource read back.

        An answer may be short of what the target holds (a summary of the account):
        only a read-back, which the next listing will agree with, says that the
        target did not keep something.
        """
        if not self.settings.verify_writes:
            return
        answer = answered if answered is not None and answered.id in (None, target_id) else None
        if answer is not None:
            short = self._not_kept(resource_type, sent, answer)
            if not short:
                return
            if all(self._read_back[o] >= CONFIRMATIONS for o in short):
                # Read back often enough this cycle to know: the answer is the target.
                self._unkeep(run, short)
                return
        run.reads += 1
        self._requests += 1
        try:
            read = await (
                self._groups.get_group(target_id)
                if resource_type == "Group"
                else self.target.get_user(target_id)
            )
        except Exception as exc:
            run.notes.append(f"could not be read back to check it: {describe_error(exc)}")
            return
        found = self._not_kept(resource_type, sent, read)
        self._read_back.update(found)
        self._unkeep(run, found)

    def _unkeep(self, run: _Run, found: Sequence[Observation]) -> None:
        """Note what the target did not keep, for the result and for the state."""
        if not found:
            return
        # What identifies a resource cannot be left out of comparisons, nor whether a
        # user is active (deprovisioning is that): said, not learned.
        active = [o for o in found if o.resource_type == "User" and o.path == "active"]
        run.active_not_kept = run.active_not_kept or bool(active)
        self._unkept.extend(
            o for o in found if not _required(self.policy.schema, o) and o not in active
        )
        described = ", ".join(
            f"{o.path} ({'not cleared' if o.how == 'not_cleared' else o.how})" for o in found
        )
        run.notes.append(f"the target did not keep {described}")

    def _not_kept(
        self,
        resource_type: str,
        sent: Sequence[PatchOperation] | Resource,
        answered: Resource,
    ) -> list[Observation]:
        schema = self.policy.schema
        scopes = self.scopes.get(resource_type, ())
        if isinstance(sent, Resource):
            return unkept_by_resource(resource_type, sent, answered, schema, scopes)
        return unkept_by_patch(resource_type, list(sent), answered, schema, scopes)

    async def _get(self, run: _Run, op: Operation) -> Resource | None:
        run.reads += 1
        self._requests += 1
        try:
            if op.resource_type == "Group":
                return await self._groups.get_group(op.target_id)
            return await self.target.get_user(op.target_id)
        except NotFoundError:
            return None

    async def _find(self, run: _Run, op: Operation, identity: Mapping[str, str]) -> list[Resource]:
        """Accounts holding any value of ``identity``, key by key, as the engine matches.

        The first key that finds the account the create would have made ends the
        search: one request in the common case of a lost answer.
        """
        found: dict[str, Resource] = {}
        for path, value in identity.items():
            run.reads += 1
            self._requests += 1
            listed: Sequence[Resource]
            if op.resource_type == "Group":
                listed = await self._groups.find_groups(path, value)
            else:
                listed = await self.target.find_users(path, value)
            for account in listed:
                if account.id is not None and holds_identity(
                    op.resource_type, identity, account, self.policy
                ):
                    found.setdefault(account.id, account)
            if len(found) == 1 and all(
                matches_identity(op.resource_type, identity, a, self.policy) for a in found.values()
            ):
                break
        return list(found.values())


def _active_not_kept(op: Operation) -> str:
    if op.kind == "deactivate":
        return (
            "the account is still active: a target that does not keep 'active' cannot "
            "deactivate (policy.deprovision='delete' removes leavers instead)"
        )
    return "the account's 'active' is not as sent"


def _required(schema: SchemaTable, observation: Observation) -> bool:
    spec = schema.resolve(observation.resource_type, observation.path)
    return spec is not None and spec.required


def _sets_only_active(op: Operation, value: bool) -> bool:
    return len(op.patch) == 1 and (op.patch[0].op, op.patch[0].path, op.patch[0].value) == (
        "replace",
        "active",
        value,
    )
