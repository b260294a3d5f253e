"""The :class:`Provisioner`: source, mapping, target, engine and state, in cycles."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
import uuid
import weakref
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..engine import Change, Plan, Policy, SyncState
from ..engine import plan as make_plan
from ..engine._changes import add_members_patch
from ..errors import ConfigurationError, CycleInProgressError, ScimSyncError
from ..mapping import MappingResult
from ..models import DesiredState, Group, TargetState, User
from ..targets import read_target_state
from ._audit import AuditEvent, AuditSink, emit
from ._audit import logger as audit_logger
from ._decisions import describe_error, fingerprint, next_delay, recover
from ._executor import ApplyPolicy, Execution, Executor, Journal
from ._explain import Explanation, Step
from ._health import Health, health_from
from ._report import Alert, OperationResult, Progress, RequestStats, SyncReport
from ._state import (
    CycleRecord,
    JournalEntry,
    MemoryStateStore,
    PendingFailure,
    StateStore,
    StoredState,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
    from contextlib import AbstractContextManager

    from ..mapping import Mapping
    from ..sources import AsyncSource, Record, Source
    from ..targets import Target

__all__ = ["Provisioner"]

logger = logging.getLogger("scimsync.sync")

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _new_cycle_id() -> str:
    return uuid.uuid4().hex[:12]


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@attrs.define
class _Reading:
    """What one cycle read: the mapping's result, the target, the state, the policy."""

    mapped: MappingResult
    stored: StoredState
    state: SyncState
    policy: Policy
    actual: TargetState | None = None
    notes: list[str] = attrs.Factory(list)
    # Creates an interrupted cycle announced and nobody found yet: they may still land.
    earlier: list[JournalEntry] = attrs.Factory(list)


class Provisioner:
    """Keeps a target in line with a source: plan, apply, and run in cycles.

    ::

        from scimsync import Provisioner
        from scimsync.sync import SqliteStateStore

        store = SqliteStateStore("sync.db")
        provisioner = Provisioner(source, mapping, target, Policy(), state=store)
        plan = provisioner.plan()            # read both sides; nothing is sent
        print(plan.render())
        report = provisioner.apply(plan)     # exactly that plan, re-checked against the target
        report = provisioner.run_once()      # plan + apply in one cycle
        print(report)

    Every method has an async twin for applications with an event loop
    (``await provisioner.arun_once()``); the plain ones are for scripts and run
    their own loop, one for the life of the provisioner (so the target's
    connections are reused), and refuse to run inside a running loop.

    - ``source``: a :class:`~scimsync.sources.Source` or
      :class:`~scimsync.sources.AsyncSource`; ``mapping``: turns its records into
      desired users and groups (checked against ``policy.schema`` when the
      provisioner is made: a mapping with a blocking problem never writes);
      ``target``: a :class:`~scimsync.targets.Target`; ``policy``: the engine's
      :class:`~scimsync.engine.Policy` (safe defaults).
    - ``state``: a :class:`~scimsync.sync.StateStore`. The default keeps state in
      memory only; anything that runs more than once wants a
      :class:`~scimsync.sync.SqliteStateStore`.
    - ``apply_policy``: concurrency, quarantine threshold, retry bounds
      (:class:`~scimsync.sync.ApplyPolicy`).
    - ``audit``: a callable, or several, receiving an
      :class:`~scimsync.sync.AuditEvent` per operation (events also go to the
      ``scimsync.audit`` logger). ``on_alert`` receives an
      :class:`~scimsync.sync.Alert` on failures, a tripped guard, quarantine, writes
      stopped or a cycle that could not run; ``on_progress`` a
      :class:`~scimsync.sync.Progress` as reading, planning and applying advance;
      ``on_report`` every cycle's :class:`~scimsync.SyncReport` (what
      :meth:`run_forever` would otherwise only log). A hook that raises is logged,
      never allowed to break a cycle.
    - ``request_stats``: a :class:`~scimsync.sync.RequestStats` whose hooks the
      target's client calls, so reports count HTTP requests and retries.
    - ``full_cycle_every``: an incremental cycle whose source did not change since
      the last clean cycle ends without reading the target; every
      ``full_cycle_every`` (and whenever ``run_once(full=True)`` asks) a cycle reads
      the whole target anyway and corrects what changed there. None: always read it.
    - ``clock`` (aware datetimes), ``timer`` (monotonic seconds), ``cycle_ids``:
      injectable for tests.

    Cycles never overlap: a second one, in this process or (with a SQLite store)
    another, raises :class:`~scimsync.errors.CycleInProgressError`.
    """

    def __init__(
        self,
        source: Source | AsyncSource,
        mapping: Mapping,
        target: Target,
        policy: Policy | None = None,
        *,
        state: StateStore | None = None,
        apply_policy: ApplyPolicy | None = None,
        audit: AuditSink | Iterable[AuditSink] | None = None,
        on_alert: Callable[[Alert], object] | None = None,
        on_progress: Callable[[Progress], object] | None = None,
        on_report: Callable[[SyncReport], object] | None = None,
        request_stats: RequestStats | None = None,
        full_cycle_every: timedelta | None = timedelta(hours=24),
        check_mapping: bool = True,
        clock: Callable[[], datetime] = _utc_now,
        timer: Callable[[], float] = time.monotonic,
        cycle_ids: Callable[[], str] = _new_cycle_id,
    ) -> None:
        self.source = source
        self.mapping = mapping
        self.target = target
        self.policy = policy or Policy()
        self.state = state if state is not None else MemoryStateStore()
        self.apply_policy = apply_policy or ApplyPolicy()
        if audit is None:
            self.audit: tuple[AuditSink, ...] = ()
        elif callable(audit):
            self.audit = (audit,)
        else:
            self.audit = tuple(audit)
        self.on_alert = on_alert
        self.on_progress = on_progress
        self.on_report = on_report
        self.request_stats = request_stats
        self._stats_start = (0, 0)
        self._schema_checked = not check_mapping
        self.full_cycle_every = full_cycle_every
        self.clock = clock
        self.timer = timer
        self.cycle_ids = cycle_ids
        if check_mapping:
            mapping.check(self.policy.schema).raise_for_problems()
        self._loop_runner = _LoopRunner()
        # The plain methods' event loop is closed with the provisioner, if not before.
        weakref.finalize(self, self._loop_runner.close)
        self._cycle = threading.Lock()
        self._running = False
        # Scheduling: what run_forever waits on, set from any thread.
        self._signal_lock = threading.Lock()
        self._stop_requested = False
        self._full_requested = False
        self._triggered = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._next_run_at: datetime | None = None

    def __repr__(self) -> str:
        return f"Provisioner({self.source!r}, target={self.target!r}, state={self.state!r})"

    def close(self) -> None:
        """Close the event loop the plain methods ran on.

        Connections a target opened on that loop cannot outlive it: when the plain
        methods were used, the target's ``aclose()`` (or its ``client``'s, as a
        :class:`~scimsync.targets.ScimTarget` has) is awaited there first. With the
        async twins, closing the target stays the caller's business.
        """
        if self._loop_runner.used:
            closer = getattr(self.target, "aclose", None)
            if closer is None:
                closer = getattr(getattr(self.target, "client", None), "aclose", None)
            if callable(closer):
                try:
                    self._loop_runner.run(closer())
                except Exception as exc:
                    logger.warning("closing the target failed: %s", describe_error(exc))
        self._loop_runner.close()

    def __enter__(self) -> Provisioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plain twins ----------------------------------------------------------------------

    def _run(self, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop_runner.run(start())
        raise ConfigurationError(
            "the plain Provisioner methods cannot run inside a running event loop: "
            "await their async twins (arun_once, aplan, aapply, ...)"
        )

    def plan(self, *, force: Iterable[str] = ()) -> Plan:
        """Read the source and the whole target and return the plan; nothing is sent.

        ``force`` names guards to go past (see :data:`scimsync.engine.GUARDS`); the
        plan records that they were forced.
        """
        return self._run(lambda: self.aplan(force=force))

    def apply(self, plan: Plan) -> SyncReport:
        """Apply exactly ``plan``: each operation re-planned against the target as it is now."""
        return self._run(lambda: self.aapply(plan))

    def run_once(self, *, full: bool = False, force: Iterable[str] = ()) -> SyncReport:
        """One cycle: read, plan, apply, remember. ``full`` reads the target even when
        the source has not changed; ``force`` goes past the named guards."""
        return self._run(lambda: self.arun_once(full=full, force=force))

    def provision_one(self, key: str) -> Explanation:
        """Provision one identity now and explain each step (see :meth:`aprovision_one`)."""
        return self._run(lambda: self.aprovision_one(key))

    def run_forever(
        self,
        interval: float | timedelta,
        *,
        jitter: float = 0.1,
        max_backoff: float | timedelta | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: random.Random | None = None,
        max_cycles: int | None = None,
    ) -> None:
        """Run cycles until :meth:`stop` (see :meth:`arun_forever`), blocking."""
        self._run(
            lambda: self.arun_forever(
                interval,
                jitter=jitter,
                max_backoff=max_backoff,
                sleep=sleep,
                rng=rng,
                max_cycles=max_cycles,
            )
        )

    # -- planning -------------------------------------------------------------------------

    async def aplan(self, *, force: Iterable[str] = ()) -> Plan:
        """Read the source and the whole target and return the plan; nothing is sent."""
        cycle_id = self.cycle_ids()
        with self._lock_cycle():
            reading = await self._read(cycle_id, force=force, with_target=True)
            assert reading.actual is not None
            return self._make_plan(cycle_id, reading, reading.actual)

    async def _effective_policy(self, force: Iterable[str]) -> Policy:
        """The policy, fitted to what the target supports (PUT without PATCH, member caps)."""
        policy = self.policy
        if not self._schema_checked:
            # The mapping was checked against the policy's schema table when the
            # provisioner was made; the target's own /Schemas may say more.
            self.mapping.check(await self.target.schema()).raise_for_problems()
            self._schema_checked = True
        capabilities = await self.target.capabilities()
        changes: dict[str, Any] = {}
        if not capabilities.patch and policy.update_method == "patch":
            changes["update_method"] = "put"
        cap = capabilities.max_members_per_operation
        if cap is not None and cap < policy.max_members_per_operation:
            changes["max_members_per_operation"] = cap
        forced = frozenset(force)
        if forced - policy.force:
            changes["force"] = policy.force | forced
        return attrs.evolve(policy, **changes) if changes else policy

    def _lock_cycle(self) -> AbstractContextManager[None]:
        """Both cycle locks: this provisioner's and the state store's."""
        from contextlib import contextmanager

        @contextmanager
        def locked() -> Any:
            if not self._cycle.acquire(blocking=False):
                raise CycleInProgressError("a cycle of this provisioner is already running")
            try:
                with self.state.lock():
                    self._running = True
                    if self.request_stats is not None:
                        self._stats_start = self.request_stats.snapshot()
                    try:
                        yield
                    finally:
                        self._running = False
            finally:
                self._cycle.release()

        return locked()

    async def _read(
        self,
        cycle_id: str,
        *,
        force: Iterable[str],
        with_target: bool,
        stored: StoredState | None = None,
    ) -> _Reading:
        self._progress(cycle_id, "reading", 0, 2)
        policy = await self._effective_policy(force)
        stored = stored if stored is not None else self.state.load()
        if with_target:
            # Independent reads: the source is mapped while the target pages come in.
            mapped, actual = await asyncio.gather(
                self.mapping.amap(self.source), read_target_state(self.target)
            )
        else:
            mapped, actual = await self.mapping.amap(self.source), None
        reading = _Reading(mapped=mapped, stored=stored, state=stored.state, policy=policy)
        if actual is not None:
            self._take_target(reading, actual)
        self._progress(cycle_id, "reading", 2, 2)
        return reading

    async def _read_target(self, reading: _Reading) -> None:
        self._take_target(reading, await read_target_state(self.target))

    def _take_target(self, reading: _Reading, actual: TargetState) -> None:
        """Keep what the target listing said; repair what an interrupted cycle left."""
        reading.actual = actual
        stored = reading.stored
        if stored.journal:
            state, notes, unresolved = recover(stored.state, stored.journal, actual, reading.policy)
            for note in notes:
                logger.warning("recovered from an interrupted cycle: %s", note)
            reading.notes.extend(notes)
            reading.state = state
            reading.earlier = unresolved
            reading.stored = attrs.evolve(stored, state=state, journal=unresolved, clean=False)
            self.state.save(reading.stored)

    def _make_plan(self, cycle_id: str, reading: _Reading, actual: TargetState) -> Plan:
        self._progress(cycle_id, "planning", 0, 1)
        made = make_plan(
            reading.mapped.desired, actual, reading.policy, reading.state, now=self.clock()
        )
        self._progress(cycle_id, "planning", 1, 1)
        if reading.mapped.issues:
            made = attrs.evolve(made, source_issues=[str(i) for i in reading.mapped.issues])
        for trip in made.guards:
            if trip.forced:
                logger.warning("guard %s forced past: %s", trip.name, trip.reason)
            else:
                logger.warning("guard %s held %d operations: %s", trip.name, trip.held, trip.reason)
        return made

    # -- cycles ---------------------------------------------------------------------------

    async def arun_once(self, *, full: bool = False, force: Iterable[str] = ()) -> SyncReport:
        """One cycle: read the source; unless nothing changed there since the last clean
        cycle, read the target, plan, apply; remember what was done; report it.

        ``full`` reads the target whatever the source says (it also happens every
        ``full_cycle_every``); ``force`` goes past the named guards, and the report
        records it. Raises what made the cycle impossible (an unreadable source or
        target listing), after recording it in the history and alerting.
        """
        cycle_id = self.cycle_ids()
        with self._lock_cycle():
            started_at, started = self.clock(), self.timer()
            logger.info("cycle %s started%s", cycle_id, " (full)" if full else "")
            try:
                # When the target must be read whatever the source says, it is read
                # while the source is; otherwise only once the source has changed.
                stored = self.state.load()
                certain = self._full_cycle_reason(full, started_at, stored)
                reading = await self._read(
                    cycle_id, force=force, with_target=certain is not None, stored=stored
                )
                digests = await asyncio.to_thread(_fingerprints, reading.mapped.desired)
                settings = _policy_digest(reading.policy, reading.mapped.desired)
                why_not = certain or self._incremental_refusal(reading, digests, settings)
                if why_not is None:
                    report = self._report(
                        cycle_id,
                        "incremental",
                        started_at,
                        started,
                        reading,
                        note="incremental: nothing changed in the source since the last clean "
                        "cycle; the target was not read",
                    )
                    self.state.save(reading.stored, self._record(report))
                    self._finish(report)
                    return report
                logger.debug("cycle %s reads the target: %s", cycle_id, why_not)
                if reading.actual is None:
                    await self._read_target(reading)
                assert reading.actual is not None
                made = self._make_plan(cycle_id, reading, reading.actual)
                execution = await self._execute(cycle_id, made, reading, current=None)
            except Exception as exc:
                self._failed_cycle(cycle_id, started_at, exc)
                raise
            report = self._report(
                cycle_id,
                "full",
                started_at,
                started,
                reading,
                plan=made,
                execution=execution,
                requests=2 + execution.requests,
            )
            self._remember(reading, made, execution, report, digests=digests, settings=settings)
            self._finish(report)
            return report

    async def aapply(self, plan: Plan) -> SyncReport:
        """Apply exactly ``plan``, re-planning each operation against the target now.

        The target is read again first: an operation whose resource changed since the
        plan was made is computed again from what it holds now (what is done already
        is not sent, what changed meanwhile is kept), a create whose identity now
        exists is linked rather than sent. Operations the plan held are not applied.
        """
        cycle_id = self.cycle_ids()
        with self._lock_cycle():
            started_at, started = self.clock(), self.timer()
            logger.info("cycle %s applies a plan of %d operations", cycle_id, len(plan.operations))
            try:
                policy = await self._effective_policy(())
                stored = self.state.load()
                reading = _Reading(
                    mapped=_empty_mapping_result(), stored=stored, state=stored.state, policy=policy
                )
                await self._read_target(reading)
                assert reading.actual is not None
                execution = await self._execute(cycle_id, plan, reading, current=reading.actual)
            except Exception as exc:
                self._failed_cycle(cycle_id, started_at, exc)
                raise
            report = self._report(
                cycle_id,
                "apply",
                started_at,
                started,
                reading,
                plan=plan,
                execution=execution,
                requests=2 + execution.requests,
                source_known=False,
            )
            self._remember(reading, plan, execution, report, digests=None, settings=None)
            self._finish(report)
            return report

    async def _execute(
        self, cycle_id: str, plan: Plan, reading: _Reading, *, current: TargetState | None
    ) -> Execution:
        total = len(plan.operations)
        done = 0
        self._progress(cycle_id, "applying", 0, total)

        audited = bool(self.audit) or audit_logger.isEnabledFor(logging.INFO)

        def on_result(result: OperationResult) -> None:
            nonlocal done
            done += 1
            if audited:
                emit(AuditEvent.from_result(cycle_id, self.clock(), result), self.audit)
            self._progress(cycle_id, "applying", done, total)

        executor = Executor(
            self.target,
            policy=reading.policy,
            settings=self.apply_policy,
            state=reading.state,
            journal=Journal(self.state, clock=self.clock, timer=self.timer),
            timer=self.timer,
            clock=self.clock,
            on_result=on_result,
            stop_requested=self._stop_is_requested,
            earlier_attempts={(e.resource_type, e.source_key) for e in reading.earlier},
        )
        listing_complete = reading.actual is None or reading.actual.complete
        return await executor.execute(plan, current=current, verify_creates=not listing_complete)

    def _full_cycle_reason(self, full: bool, now: datetime, stored: StoredState) -> str | None:
        """Why this cycle must read the target whatever the source says, or None."""
        if full:
            return "a full cycle was asked for"
        if self.full_cycle_every is None:
            return "every cycle is a full one (full_cycle_every is None)"
        if stored.last_full_at is None or now - stored.last_full_at >= self.full_cycle_every:
            return "a full cycle is due"
        if not stored.clean or stored.journal or stored.failures:
            return "the last cycle left work"
        return None

    def _incremental_refusal(
        self, reading: _Reading, digests: dict[str, dict[str, str]], settings: str
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

    def _remember(
        self,
        reading: _Reading,
        plan: Plan,
        execution: Execution,
        report: SyncReport,
        *,
        digests: dict[str, dict[str, str]] | None,
        settings: str | None,
    ) -> None:
        """Save the state the cycle leaves, with its record in the history."""
        stored = reading.stored
        not_applied = execution.not_applied(plan)
        state = reading.state.after(plan, execution.resolved, failed=not_applied)
        # Creates of an interrupted cycle still unaccounted for stay journaled.
        leftover = [
            entry
            for entry in reading.earlier
            if entry.source_key not in state.ledger(entry.resource_type).links
        ]
        now = self.clock()
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
            and (actual is None or actual.complete)
            and not leftover
        )
        new = StoredState(
            state=state,
            fingerprints=fingerprints,
            failures=failures,
            journal=leftover,
            clean=clean,
            settings=settings if clean else None,
            last_full_at=now if read_all else stored.last_full_at,
        )
        self.state.save(new, self._record(report))

    # -- on demand ------------------------------------------------------------------------

    async def aprovision_one(self, key: str) -> Explanation:
        """Provision the identity with source key ``key`` now, and explain every step.

        The source is read (scope and duplicate keys are decided on all of it), but
        only this identity's accounts are read from the target: its linked account and
        those holding its match-key values, and the groups a user should be in (for a
        group: the users, to find its members). A user is created or updated and
        added to its groups; a group is created or updated and gets the members that
        exist already. Nothing is taken away on demand
        (no deprovisioning, no member removal): without the whole target that is left
        to the next cycle, and the explanation says when something waits for it.
        """
        cycle_id = self.cycle_ids()
        with self._lock_cycle():
            started_at, started = self.clock(), self.timer()
            policy = await self._effective_policy(())
            stored = self.state.load()
            records = await _read_records(self.source)
            mapped = self.mapping.map(records)
            reading = _Reading(mapped=mapped, stored=stored, state=stored.state, policy=policy)
            steps: list[Step] = []
            record = next(
                (
                    r
                    for r in records
                    if getattr(r, "key", None) == key and getattr(r, "kind", "") == "user"
                ),
                None,
            ) or next((r for r in records if getattr(r, "key", None) == key), None)
            desired = mapped.desired
            wanted_user = next((u for u in desired.users if u.key == key), None)
            wanted_group = next((g for g in desired.groups if g.key == key), None)
            steps.append(_source_step(record, key))
            steps.append(self._scope_step(record, mapped, key, wanted_user or wanted_group))
            if wanted_user is None and wanted_group is None:
                empty = Plan(now=self.clock())
                report = self._report(cycle_id, "one", started_at, started, reading, plan=empty)
                self.state.save(stored, self._record(report))
                self._finish(report)
                return Explanation(key=key, steps=steps, plan=empty, report=report)
            resource_type = "User" if wanted_user is not None else "Group"
            actual, reads = await self._read_for(key, resource_type, desired, reading.state, policy)
            reading.actual = actual
            whole = make_plan(desired, actual, policy, reading.state, now=self.clock())
            mine = _plan_for(whole, key, resource_type, policy)
            steps.append(_match_step(whole, key, resource_type, reading.state))
            steps.append(_changes_step(mine))
            steps.append(_operations_step(mine, whole, key, resource_type))
            execution = await self._execute(cycle_id, mine, reading, current=None)
            report = self._report(
                cycle_id,
                "one",
                started_at,
                started,
                reading,
                plan=mine,
                execution=execution,
                requests=reads + execution.requests,
            )
            steps.append(_result_step(report))
            state = reading.state.after(
                mine, execution.resolved, failed=execution.not_applied(mine)
            )
            fingerprints = {k: dict(v) for k, v in stored.fingerprints.items()}
            if report.ok:
                item = wanted_user if wanted_user is not None else wanted_group
                assert item is not None
                fingerprints.setdefault(resource_type, {})[key] = fingerprint(item)
            else:
                fingerprints.get(resource_type, {}).pop(key, None)
            new = attrs.evolve(
                stored,
                state=state,
                fingerprints=fingerprints,
                failures=_failures(
                    stored.failures, report.failures, self.clock(), keep_others=True
                ),
            )
            self.state.save(new, self._record(report))
            self._finish(report)
            return Explanation(key=key, steps=steps, plan=mine, report=report)

    def _scope_step(
        self, record: Any, mapped: MappingResult, key: str, desired: object | None
    ) -> Step:
        issues = [str(i) for i in mapped.issues if i.key == key]
        if desired is not None:
            return Step(name="scope", detail="in scope, mapped", lines=issues)
        if record is None:
            return Step(name="scope", detail="nothing to provision: the source does not hold it")
        scope = self.mapping.scope
        if scope is not None and not issues:
            try:
                in_scope = bool(scope(record))
            except Exception as exc:
                return Step(name="scope", detail=f"the scope rule failed: {describe_error(exc)}")
            if not in_scope:
                return Step(name="scope", detail="out of scope: the mapping's scope leaves it out")
        return Step(name="scope", detail="in scope, but it could not be mapped", lines=issues)

    async def _read_for(
        self,
        key: str,
        resource_type: str,
        desired: DesiredState,
        state: SyncState,
        policy: Policy,
    ) -> tuple[TargetState, int]:
        """The accounts one identity may concern: a user's own and its groups, or a
        group's own and the users (its members)."""
        from ..errors import NotFoundError

        target = self.target
        reads = 0
        users: dict[str, User] = {}
        groups: dict[str, Group] = {}

        async def lookups(kind: str, resource: Any, linked: str | None) -> None:
            nonlocal reads
            into: dict[str, Any] = users if kind == "User" else groups
            if linked is not None:
                reads += 1
                try:
                    found = await (
                        target.get_user(linked) if kind == "User" else target.get_group(linked)
                    )
                except NotFoundError:
                    pass
                else:
                    into[found.id or ""] = found
            paths = policy.match_keys if kind == "User" else policy.group_match_keys
            from ..codec import to_scim
            from ..engine._changes import value_at

            data = to_scim(resource)
            for path in paths:
                value = value_at(data, path, policy.schema.extension_urns(kind))
                if not isinstance(value, str):
                    continue
                reads += 1
                found_many = await (
                    target.find_users(path, value)
                    if kind == "User"
                    else target.find_groups(path, value)
                )
                for account in found_many:
                    if account.id is not None:
                        into.setdefault(account.id, account)

        if resource_type == "User":
            wanted = next(u for u in desired.users if u.key == key)
            await lookups("User", wanted.user, state.users.links.get(key))
            # The users it refers to (its manager), to write their ids.
            referred = {ref_key for _, ref_key in wanted.references if ref_key != key}
            for other in desired.users:
                if other.key in referred:
                    await lookups("User", other.user, state.users.links.get(other.key))
            for group in desired.groups:
                if key in group.member_keys:
                    await lookups("Group", group.group, state.groups.links.get(group.key))
        else:
            wanted_group = next(g for g in desired.groups if g.key == key)
            await lookups("Group", wanted_group.group, state.groups.links.get(key))
            # Its members may be anyone: the users are listed (once), not looked up one by one.
            reads += 1
            listed = await target.list_users()
            users.update((u.id, u) for u in listed.resources if u.id is not None)
        return TargetState(
            users=tuple(users.values()), groups=tuple(groups.values()), complete=False
        ), reads

    # -- scheduling -----------------------------------------------------------------------

    async def arun_forever(
        self,
        interval: float | timedelta,
        *,
        jitter: float = 0.1,
        max_backoff: float | timedelta | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: random.Random | None = None,
        max_cycles: int | None = None,
    ) -> None:
        """Run a cycle every ``interval`` until :meth:`stop` is called.

        Each wait is ``interval`` moved by up to ``jitter`` (a fraction) either way, so
        agents started together spread out. After a quarantined cycle, or one that
        could not run, the wait doubles each time, up to ``max_backoff`` (default: ten
        intervals). :meth:`trigger` runs a cycle at once; :meth:`stop` ends the loop:
        a running cycle starts no new operation, finishes those in flight, saves the
        state and reports, then this returns. A cycle another process is running is
        skipped (logged), not waited for.

        ``sleep`` (an async callable taking seconds), ``rng`` and ``max_cycles`` are
        for tests and embedding: nothing here reads the wall clock but ``clock``.
        """
        period = _seconds(interval)
        if period <= 0:
            raise ConfigurationError(f"interval must be positive, got {interval!r}")
        if not 0 <= jitter < 1:
            raise ConfigurationError(f"jitter must be a fraction from 0 to 1, got {jitter!r}")
        ceiling = _seconds(max_backoff) if max_backoff is not None else period * 10
        draw = rng or random.Random()  # noqa: S311 - spreading agents, not secrecy
        wait = sleep or asyncio.sleep
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        with self._signal_lock:
            if self._stop_requested:
                self._stop_requested = False
        backoff = 0
        cycles = 0
        try:
            while True:
                stop, full = self._take_signals()
                if stop:
                    break
                self._next_run_at = None
                try:
                    report = await self.arun_once(full=full)
                except CycleInProgressError as exc:
                    logger.info("cycle skipped: %s", exc)
                except Exception as exc:
                    backoff += 1
                    logger.error(
                        "cycle failed: %s",
                        describe_error(exc),
                        exc_info=not isinstance(exc, ScimSyncError),
                    )
                else:
                    backoff = backoff + 1 if report.quarantine is not None else 0
                cycles += 1
                if max_cycles is not None and cycles >= max_cycles:
                    break
                stop, triggered = self._signals()
                if stop:
                    break
                if triggered:
                    continue
                delay = next_delay(
                    period,
                    jitter=jitter,
                    draw=draw.random(),
                    backoff_level=backoff,
                    max_delay=ceiling,
                )
                self._next_run_at = self.clock() + timedelta(seconds=delay)
                await self._sleep_until_woken(wait, delay)
        finally:
            with self._signal_lock:
                self._stop_requested = False
            self._next_run_at = None
            self._loop = None
            self._wake = None

    async def _sleep_until_woken(
        self, wait: Callable[[float], Awaitable[object]], delay: float
    ) -> None:
        wake = self._wake
        assert wake is not None
        wake.clear()
        if any(self._signals()):
            return
        sleeper = asyncio.ensure_future(wait(delay))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                if not task.done():
                    task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _take_signals(self) -> tuple[bool, bool]:
        """(stop requested, full cycle requested), clearing the trigger."""
        with self._signal_lock:
            full, self._full_requested = self._full_requested, False
            self._triggered = False
            return self._stop_requested, full

    def _signals(self) -> tuple[bool, bool]:
        """(stop requested, cycle triggered)."""
        with self._signal_lock:
            return self._stop_requested, self._triggered

    def trigger(self, *, full: bool = False) -> None:
        """Ask :meth:`run_forever` for a cycle now (``full`` reads the whole target).

        Safe from any thread. While a cycle runs, triggers coalesce into one cycle
        right after it.
        """
        with self._signal_lock:
            self._triggered = True
            self._full_requested = self._full_requested or full
        self._wake_up()

    def stop(self) -> None:
        """Ask :meth:`run_forever` to stop, and a running cycle to start no new write.

        Safe from any thread and from signal handlers' callbacks. Operations in flight
        finish and the state is saved; the remaining ones are reported as skipped.
        """
        with self._signal_lock:
            self._stop_requested = True
        self._wake_up()

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                wake.set()
            else:
                loop.call_soon_threadsafe(wake.set)

    def _stop_is_requested(self) -> bool:
        with self._signal_lock:
            return self._stop_requested

    def health(self) -> Health:
        """Whether the agent is well: last cycles, failures in a row, quarantine, next run."""
        return health_from(
            self.state.history(50), running=self._running, next_run_at=self._next_run_at
        )

    # -- reports, history, hooks -----------------------------------------------------------

    def _report(
        self,
        cycle_id: str,
        mode: str,
        started_at: datetime,
        started: float,
        reading: _Reading,
        *,
        plan: Plan | None = None,
        execution: Execution | None = None,
        requests: int = 0,
        note: str = "",
        source_known: bool = True,
    ) -> SyncReport:
        mapped = reading.mapped
        actual = reading.actual
        notes = [*reading.notes, note] if note else list(reading.notes)
        retries = execution.retries if execution is not None else 0
        if self.request_stats is not None:
            now_requests, now_retries = self.request_stats.snapshot()
            requests = now_requests - self._stats_start[0]
            retries += now_retries - self._stats_start[1]
        return SyncReport(
            cycle_id=cycle_id,
            mode=mode,
            started_at=started_at,
            finished_at=self.clock(),
            duration=max(self.timer() - started, 0.0),
            planned=plan.summary() if plan is not None else {},
            results=execution.results if execution is not None else (),
            guards=plan.guards if plan is not None else (),
            held=len(plan.held) if plan is not None else 0,
            conflicts=plan.conflicts if plan is not None else (),
            skipped=plan.skipped if plan is not None else (),
            source_issues=[str(i) for i in mapped.issues if i.code.loses_identity]
            if source_known
            else (),
            source_warnings=[str(i) for i in mapped.issues if not i.code.loses_identity]
            if source_known
            else (),
            source_complete=mapped.desired.complete,
            target_complete=actual is None or actual.complete,
            quarantine=execution.quarantine if execution is not None else None,
            stopped=execution.stopped if execution is not None else None,
            requests=requests,
            retries=retries,
            note="; ".join(notes),
        )

    def _record(self, report: SyncReport) -> CycleRecord:
        return CycleRecord(
            cycle_id=report.cycle_id,
            started_at=report.started_at,
            finished_at=report.finished_at,
            mode=report.mode,
            outcome=report.outcome,
            summary=report.totals(),
            detail=str(report).splitlines()[0],
        )

    def _finish(self, report: SyncReport) -> None:
        logger.info("%s", str(report).splitlines()[0])
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception as exc:
                logger.warning("the report hook failed: %s", describe_error(exc))
        if self.on_alert is None:
            return
        alerts: list[tuple[str, str]] = []
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
        for kind, message in alerts:
            self._alert(Alert(kind=kind, message=message, cycle_id=report.cycle_id, report=report))  # type: ignore[arg-type]

    def _failed_cycle(self, cycle_id: str, started_at: datetime, exc: BaseException) -> None:
        message = describe_error(exc)
        logger.error("cycle %s could not run: %s", cycle_id, message)
        try:
            self.state.save(
                self.state.load(),
                CycleRecord(
                    cycle_id=cycle_id,
                    started_at=started_at,
                    finished_at=self.clock(),
                    mode="full",
                    outcome="error",
                    detail=message,
                ),
            )
        except ScimSyncError as store_error:
            logger.error("the cycle could not be recorded: %s", describe_error(store_error))
        self._alert(Alert(kind="error", message=message, cycle_id=cycle_id))

    def _alert(self, alert: Alert) -> None:
        if self.on_alert is None:
            return
        try:
            self.on_alert(alert)
        except Exception as exc:
            logger.warning("the alert hook failed: %s", describe_error(exc))

    def _progress(self, cycle_id: str, phase: str, done: int, total: int) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(Progress(cycle_id=cycle_id, phase=phase, done=done, total=total))
        except Exception as exc:
            logger.warning("the progress hook failed: %s", describe_error(exc))


# -- helpers -------------------------------------------------------------------------------


class _LoopRunner:
    """The event loop the plain methods run on: one for the provisioner's life, so the
    target's connections outlive a call. Calls from several threads take turns."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def used(self) -> bool:
        """True when a loop is open."""
        return self._loop is not None and not self._loop.is_closed()

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no other loop running here: finish async generators first
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _empty_mapping_result() -> MappingResult:
    return MappingResult(desired=DesiredState())


async def _read_records(source: Any) -> list[Any]:
    items = source.read()
    if hasattr(items, "__anext__"):
        return [item async for item in items]
    return await asyncio.to_thread(list, items)


def _fingerprints(desired: DesiredState) -> dict[str, dict[str, str]]:
    found = {
        "User": {u.key: fingerprint(u) for u in desired.users},
        "Group": {g.key: fingerprint(g) for g in desired.groups},
    }
    return {kind: values for kind, values in found.items() if values}


def _policy_digest(policy: Policy, desired: DesiredState) -> str:
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


def _plan_for(whole: Plan, key: str, resource_type: str, policy: Policy) -> Plan:
    """The operations of ``whole`` for one identity; group changes narrowed to it."""
    links = [
        link
        for link in whole.links
        if link.resource_type == resource_type and link.source_key == key
    ]
    operations = []
    if resource_type == "Group":
        operations = [
            op for op in whole.operations if op.resource_type == "Group" and op.source_key == key
        ]
        return attrs.evolve(whole, operations=operations, held=(), links=links, source_counts={})
    ref = next((link.target_id for link in links), None)
    user_ops = [
        op for op in whole.operations if op.resource_type == "User" and op.source_key == key
    ]
    if ref is None:
        ref = next((op.target_id for op in user_ops), None)
    group_creates: dict[str, Any] = {}
    member_ops = []
    if ref is not None and policy.update_method == "patch":
        member_ops = [
            attrs.evolve(
                op,
                members=(ref,),
                patch=add_members_patch([ref]),
                reason="1 member to add",
                changes=(Change(path="members", new=[key]),),
            )
            for op in whole.operations
            if op.kind == "add_members" and ref in op.members
        ]
        wanted_groups = {op.target_id for op in member_ops}
        for op in whole.operations:
            if (
                op.resource_type == "Group"
                and op.kind == "create"
                and op.target_id in wanted_groups
            ):
                group_creates[op.target_id] = op
        links.extend(
            link
            for link in whole.links
            if link.resource_type == "Group" and link.target_id in group_creates
        )
    operations = [*user_ops, *group_creates.values(), *member_ops]
    return attrs.evolve(whole, operations=operations, held=(), links=links, source_counts={})


def _source_step(record: Record | None, key: str) -> Step:
    if record is None:
        return Step(name="source", detail=f"the source holds no record with key {key!r}")
    return Step(name="source", detail=f"found: {record.where()}")


def _match_step(whole: Plan, key: str, resource_type: str, state: SyncState) -> Step:
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


def _keyed(value: Any, key: str | None) -> str:
    """A value, and the source key of the user it names (a manager's id) if known."""
    text = json.dumps(value, ensure_ascii=False)
    return text if key is None else f"{text} ({key})"


def _changes_step(mine: Plan) -> Step:
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


def _operations_step(mine: Plan, whole: Plan, key: str, resource_type: str) -> Step:
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


def _result_step(report: SyncReport) -> Step:
    if not report.results:
        return Step(name="result", detail="nothing was sent")
    totals = report.totals()
    return Step(
        name="result",
        detail=", ".join(f"{count} {outcome}" for outcome, count in totals.items()),
        lines=[str(result) for result in report.results],
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
