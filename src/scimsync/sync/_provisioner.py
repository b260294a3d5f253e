"""The :class:`Provisioner`: source, mapping, target, engine and state, in cycles.

This module holds the cycles themselves (read, plan, apply, report: ``arun_once``,
``aplan``, ``aapply``, ``aprovision_one``) and every public method of the
Provisioner, documented where users read them. The rest is composed from modules of
one job each, which the methods here delegate to:

- ``_loop``: the event loop, in a thread of its own, the plain methods run on;
- ``_schedule``: ``run_forever``'s loop, and the ``trigger``/``stop`` signals;
- ``_reading`` and ``_remember``: what a cycle read, and what it leaves for the
  next (state, fingerprints, failures, what the target taught);
- ``_on_demand`` and ``_explain``: what provisioning one identity reads and sends,
  and how each step is explained;
- ``_tell``: what a cycle tells: its report, its line in the history, the hooks.

Rules this module keeps:

- **Cycles never overlap, and never wait for each other.** Both cycle locks (this
  provisioner's and the state store's) are tried, never waited for: a cycle that
  finds another running raises :class:`~scimsync.errors.CycleInProgressError` at
  once, so holding them for a whole cycle blocks nobody.
- **A cycle that cannot read reports.** A failure reading the source or the target
  is a report whose outcome is ``"error"``, recorded and alerted; configuration
  mistakes, a failing state store and programming errors are raised.
- **Hooks never break a cycle.** A report, alert or progress hook that raises is
  logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import weakref
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs

from ..engine import Plan, Policy
from ..engine import plan as make_plan
from ..errors import ConfigurationError, CycleInProgressError
from ..targets import read_target_state, target_schema
from ..targets._facts import TargetFacts
from ..targets._protocol import MAPPING_MAKES_GROUPS, methods_problem
from ._audit import AuditEvent, AuditSink, emit
from ._audit import logger as audit_logger
from ._decisions import describe_error, recover
from ._delta import how_read, source_for_cycle
from ._executor import ApplyPolicy, Execution, Executor, Journal
from ._explain import (
    Explanation,
    Step,
    changes_step,
    match_step,
    operations_step,
    result_step,
    scope_step,
    source_step,
)
from ._health import Health, health_from
from ._loop import LoopRunner
from ._observer import CycleKind, Observer, cycle_scope, in_phase, notify_report, phase_scope
from ._on_demand import find_record, plan_for, read_for
from ._reading import Reading, empty_mapping_result, read_failure, read_records
from ._remember import (
    facts_of,
    fingerprints,
    forgotten,
    full_cycle_reason,
    incremental_refusal,
    learn,
    learned_lines,
    policy_digest,
    remembered,
    remembered_one,
)
from ._report import Alert, OperationResult, Progress, RequestStats, SyncReport
from ._schedule import Scheduler
from ._state import MemoryStateStore, StateStore, StoredState
from ._tell import (
    alert,
    cycle_report,
    failure_record,
    progress,
    read_error_report,
    record_failure,
    record_of,
    tell,
)
from ._verify import scopes_of

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Iterable, Iterator
    from contextlib import AbstractContextManager

    from ..mapping import Mapping
    from ..models import TargetState
    from ..patch._scope import ElementScope
    from ..sources import AsyncSource, Source
    from ..targets import UserTarget

__all__ = ["Provisioner"]

logger = logging.getLogger("scimsync.sync")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _new_cycle_id() -> str:
    return uuid.uuid4().hex[:12]


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
    (``await provisioner.arun_once()``); the plain ones are for scripts and threaded
    applications: they run on the provisioner's own event loop, in a thread of its
    own for the life of the provisioner (so the target's connections are reused),
    may be called from any thread at any time (a webhook while ``run_forever`` runs
    in another thread), and refuse to run inside a running loop.

    - ``source``: a :class:`~scimsync.sources.Source` or
      :class:`~scimsync.sources.AsyncSource`; ``mapping``: turns its records into
      desired users and groups (checked against ``policy.schema`` when the
      provisioner is made: a mapping with a blocking problem never writes);
      ``target``: a :class:`~scimsync.targets.UserTarget`, with the
      :class:`~scimsync.targets.GroupTarget` methods when the mapping makes groups
      (checked when the provisioner is made, before any I/O: what is missing raises
      :class:`~scimsync.errors.ConfigurationError` naming the methods; a users-only
      target is never asked about groups); ``policy``: the engine's
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
    - ``observer``: an :class:`~scimsync.sync.Observer` told about cycles, phases
      and reports, for metrics and traces; None until :func:`~scimsync.sync.observe`
      (or :func:`scimsync.metrics.instrument`) sets one.
    - ``request_stats``: a :class:`~scimsync.sync.RequestStats` whose hooks the
      target's client calls, so reports count HTTP requests and retries. Without
      it, reports count what the target says it sent (its ``requests_sent`` and
      ``retries_sent``: a :class:`~scimsync.targets.ScimTarget` counts its client's
      requests; give a custom target these two integer attributes to have its own
      counted), else the target calls made.
    - ``full_cycle_every``: an incremental cycle whose source did not change since
      the last clean cycle ends without reading the target; every
      ``full_cycle_every`` (and whenever ``run_once(full=True)`` asks) a cycle reads
      the whole target anyway and corrects what changed there. None: always read it.
    - ``clock`` (aware datetimes), ``timer`` (monotonic seconds), ``cycle_ids``:
      injectable for tests.

    Cycles never overlap, and never wait for each other: :meth:`run_once`,
    :meth:`plan`, :meth:`apply`, :meth:`provision_one` and :meth:`forget` (and their
    twins) started while a cycle of this provisioner runs, or (with a
    :class:`~scimsync.sync.SqliteStateStore`) one of another process, raise
    :class:`~scimsync.errors.CycleInProgressError` at once; :meth:`run_forever`
    skips such a cycle (logged) and tries again at its next interval, and
    :meth:`trigger` during a cycle asks for one more right after it. A cycle that
    cannot read its source or the target returns a report whose outcome is
    ``"error"`` (see :meth:`arun_once`), so a scheduler always gets a report.
    """

    def __init__(
        self,
        source: Source | AsyncSource,
        mapping: Mapping,
        target: UserTarget,
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
        _check_target_methods(target, mapping)
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
        self.observer: Observer | None = None
        self._stats_start = (0, 0)
        self._schema_checked = not check_mapping
        self.full_cycle_every = full_cycle_every
        self.clock = clock
        self.timer = timer
        self.cycle_ids = cycle_ids
        if check_mapping:
            mapping.check(self.policy.schema).raise_for_problems()
        self._loop_runner = LoopRunner()
        # The plain methods' event loop is closed with the provisioner, if not before.
        weakref.finalize(self, self._loop_runner.close)
        self._cycle = threading.Lock()
        self._running = False
        # Which side a failed read of the running cycle was reading: "source" or "target".
        self._failed_read: str | None = None
        # What run_forever waits on, and the signals that steer it, set from any thread.
        self._schedule = Scheduler()

    def __repr__(self) -> str:
        return f"Provisioner({self.source!r}, target={self.target!r}, state={self.state!r})"

    def close(self) -> None:
        """Close the event loop the plain methods ran on.

        Connections a target opened on that loop cannot outlive it: when the plain
        methods were used, the target's ``aclose()`` (or its ``client``'s, as a
        :class:`~scimsync.targets.ScimTarget` has) is awaited there first. With the
        async twins, closing the target stays the caller's business.
        """
        self._loop_runner.close_with(self.target)

    def __enter__(self) -> Provisioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plain twins (on the provisioner's own loop, see _loop) ----------------------------

    def plan(self, *, force: Iterable[str] = ()) -> Plan:
        """Read the source and the whole target and return the plan; nothing is sent.

        ``force`` names guards to go past (see :data:`scimsync.engine.GUARDS`); the
        plan records that they were forced.
        """
        return self._loop_runner.call(lambda: self.aplan(force=force))

    def apply(self, plan: Plan) -> SyncReport:
        """Apply exactly ``plan``: each operation re-planned against the target as it is now."""
        return self._loop_runner.call(lambda: self.aapply(plan))

    def run_once(self, *, full: bool = False, force: Iterable[str] = ()) -> SyncReport:
        """One cycle: read, plan, apply, remember (see :meth:`arun_once`). ``full`` reads
        the target even when the source has not changed; ``force`` goes past the named
        guards."""
        return self._loop_runner.call(lambda: self.arun_once(full=full, force=force))

    def provision_one(self, key: str) -> Explanation:
        """Provision one identity now and explain each step (see :meth:`aprovision_one`)."""
        return self._loop_runner.call(lambda: self.aprovision_one(key))

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
        self._loop_runner.call(
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
        with self._lock_cycle(cycle_id, "plan"):
            reading = await self._read(cycle_id, force=force, with_target=True)
            assert reading.actual is not None
            return self._make_plan(cycle_id, reading, reading.actual)

    async def _effective_policy(self, force: Iterable[str], stored: StoredState) -> Policy:
        """The policy, fitted to what the target supports (PUT without PATCH, member caps);
        the target reminded of what earlier cycles found it accepts."""
        facts = facts_of(self.target)
        if facts is not None and stored.target_facts:
            facts.merge(TargetFacts.from_dict(stored.target_facts))
        policy = self.policy
        if not self._schema_checked:
            # The mapping was checked against the policy's schema table when the
            # provisioner was made; the target's own /Schemas may say more.
            self.mapping.check(await target_schema(self.target)).raise_for_problems()
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

    def _wire_counts(self) -> tuple[int, int] | None:
        """(requests, retries) on the wire so far: the ``request_stats``' if given, else
        the target's own (``requests_sent`` / ``retries_sent``, as ScimTarget keeps
        them); None when neither counts, and reports count target calls instead."""
        if self.request_stats is not None:
            return self.request_stats.snapshot()
        sent = getattr(self.target, "requests_sent", None)
        if isinstance(sent, int):
            retried = getattr(self.target, "retries_sent", 0)
            return sent, retried if isinstance(retried, int) else 0
        return None

    def _lock_cycle(
        self, cycle_id: str | None = None, kind: CycleKind = "run"
    ) -> AbstractContextManager[None]:
        """Both cycle locks: this provisioner's and the state store's; then the cycle
        ``cycle_id`` is observed (None: no cycle, only the locks)."""
        from contextlib import contextmanager

        @contextmanager
        def locked() -> Any:
            if not self._cycle.acquire(blocking=False):
                raise CycleInProgressError("a cycle of this provisioner is already running")
            try:
                with self.state.lock(), cycle_scope(self.observer, cycle_id, kind):
                    self._running = True
                    self._failed_read = None
                    self._stats_start = self._wire_counts() or (0, 0)
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
        source: Source | AsyncSource | None = None,
    ) -> Reading:
        self._progress(cycle_id, "reading", 0, 2)
        stored = stored if stored is not None else self.state.load()
        with self._reading("target"):  # its capabilities and schema
            policy = await self._effective_policy(force, stored)
        actual: TargetState | None = None
        # Delta reads: a cycle that need not read the target reads only the source's changes.
        source = source_for_cycle(
            self.source if source is None else source,
            self.state,
            full=with_target,
            clock=self.clock,
        )
        if with_target:
            # Independent reads: the source is mapped while the target pages come in;
            # both are waited for, so a failed one leaves nothing running behind.
            source_read, target_read = await asyncio.gather(
                in_phase(self.observer, "read_source", self.mapping.amap(source)),
                in_phase(self.observer, "list_target", read_target_state(self.target)),
                return_exceptions=True,
            )
            if isinstance(source_read, BaseException):
                self._failed_read = "source"
                raise source_read
            if isinstance(target_read, BaseException):
                self._failed_read = "target"
                raise target_read
            mapped, actual = source_read, target_read
        else:
            with self._reading("source"):
                mapped = await in_phase(self.observer, "read_source", self.mapping.amap(source))
        reading = Reading(
            mapped=mapped,
            stored=stored,
            state=stored.state,
            policy=policy,
            source_read=how_read(source),
        )
        if actual is not None:
            self._take_target(reading, actual)
        self._progress(cycle_id, "reading", 2, 2)
        return reading

    async def _read_target(self, reading: Reading) -> None:
        with self._reading("target"):
            actual = await in_phase(self.observer, "list_target", read_target_state(self.target))
        self._take_target(reading, actual)

    @contextlib.contextmanager
    def _reading(self, side: str) -> Iterator[None]:
        """Note that a failure in this block is one reading ``side``, for the report."""
        try:
            yield
        except Exception:
            self._failed_read = side
            raise

    def _take_target(self, reading: Reading, actual: TargetState) -> None:
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

    def _make_plan(self, cycle_id: str, reading: Reading, actual: TargetState) -> Plan:
        self._progress(cycle_id, "planning", 0, 1)
        with phase_scope(self.observer, "plan"):
            made = make_plan(
                reading.mapped.desired, actual, reading.policy, reading.state, now=self.clock()
            )
        self._progress(cycle_id, "planning", 1, 1)
        if reading.mapped.issues:
            made = attrs.evolve(made, source_issues=[str(i) for i in reading.mapped.issues])
        facts = facts_of(self.target)
        if facts is not None and facts.describe():
            made = attrs.evolve(made, target_notes=facts.describe())
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
        records it.

        A cycle that cannot read its source or the target (the first page of the
        listing fails, the source raises a :class:`~scimsync.errors.ScimSyncError` or an
        ``OSError``) plans and writes nothing, and returns a report whose outcome is
        ``"error"``, recorded in the history and alerted like any other. Configuration
        mistakes, :class:`~scimsync.errors.CycleInProgressError`, a failing state store
        and programming errors are raised (recorded and alerted first, where possible).
        """
        return await self._arun_once(full=full, force=force, source=self.source)

    async def _arun_once(
        self, *, full: bool, force: Iterable[str], source: Source | AsyncSource
    ) -> SyncReport:
        """:meth:`arun_once`, reading ``source`` (a fan-out hands every target the one
        read it made of the shared source)."""
        cycle_id = self.cycle_ids()
        with self._lock_cycle(cycle_id, "run"):
            started_at, started = self.clock(), self.timer()
            logger.info("cycle %s started%s", cycle_id, " (full)" if full else "")
            mode = "full"
            try:
                # When the target must be read whatever the source says, it is read
                # while the source is; otherwise only once the source has changed.
                stored = self.state.load()
                certain = full_cycle_reason(full, started_at, stored, self.full_cycle_every)
                mode = "full" if certain is not None else "incremental"
                reading = await self._read(
                    cycle_id,
                    force=force,
                    with_target=certain is not None,
                    stored=stored,
                    source=source,
                )
                digests = await asyncio.to_thread(fingerprints, reading.mapped.desired)
                settings = policy_digest(reading.policy, reading.mapped.desired)
                why_not = certain or incremental_refusal(reading, digests, settings)
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
                    self.state.save(reading.stored, record_of(report))
                    self._finish(report)
                    return report
                logger.debug("cycle %s reads the target: %s", cycle_id, why_not)
                mode = "full"
                if reading.actual is None:
                    await self._read_target(reading)
                assert reading.actual is not None
                made = self._make_plan(cycle_id, reading, reading.actual)
                execution = await self._execute(cycle_id, made, reading, current=None)
            except Exception as exc:
                if self._failed_read is not None and read_failure(exc):
                    return self._cycle_error(cycle_id, mode, started_at, started, exc)
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
                target_warnings=learn(reading, execution, facts_of(self.target), self.clock),
            )
            new = remembered(
                reading,
                made,
                execution,
                report,
                digests=digests,
                settings=settings,
                now=self.clock(),
            )
            self.state.save(new, record_of(report))
            self._finish(report)
            return report

    async def aapply(self, plan: Plan) -> SyncReport:
        """Apply exactly ``plan``, re-planning each operation against the target now.

        The target is read again first: an operation whose resource changed since the
        plan was made is computed again from what it holds now (what is done already
        is not sent, what changed meanwhile is kept), a create whose identity now
        exists is linked rather than sent. Operations the plan held are not applied.

        A target that cannot be read gives a report whose outcome is ``"error"`` (as
        :meth:`arun_once`): nothing is written. A plan with group operations for a
        target without the group methods raises
        :class:`~scimsync.errors.ConfigurationError`, naming them, before any I/O.
        """
        if any(op.resource_type == "Group" for op in plan.operations):
            _check_target_methods(self.target, None, groups=True)
        cycle_id = self.cycle_ids()
        with self._lock_cycle(cycle_id, "apply"):
            started_at, started = self.clock(), self.timer()
            logger.info("cycle %s applies a plan of %d operations", cycle_id, len(plan.operations))
            try:
                stored = self.state.load()
                with self._reading("target"):
                    policy = await self._effective_policy((), stored)
                reading = Reading(
                    mapped=empty_mapping_result(), stored=stored, state=stored.state, policy=policy
                )
                await self._read_target(reading)
                assert reading.actual is not None
                execution = await self._execute(cycle_id, plan, reading, current=reading.actual)
            except Exception as exc:
                if self._failed_read is not None and read_failure(exc):
                    return self._cycle_error(cycle_id, "apply", started_at, started, exc)
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
                target_warnings=learn(reading, execution, facts_of(self.target), self.clock),
            )
            new = remembered(
                reading, plan, execution, report, digests=None, settings=None, now=self.clock()
            )
            self.state.save(new, record_of(report))
            self._finish(report)
            return report

    async def _execute(
        self, cycle_id: str, plan: Plan, reading: Reading, *, current: TargetState | None
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
            stop_requested=self._schedule.stop_is_requested,
            earlier_attempts={(e.resource_type, e.source_key) for e in reading.earlier},
            scopes=self._element_scopes(reading.policy),
        )
        listing_complete = reading.actual is None or reading.actual.complete
        execution = executor.execute(plan, current=current, verify_creates=not listing_complete)
        return await in_phase(self.observer, "apply", execution)

    def _element_scopes(self, policy: Policy) -> dict[str, tuple[ElementScope, ...]]:
        """The element scopes of what the mapping writes, per resource type."""
        mapping = self.mapping
        return {
            "User": scopes_of(
                "User",
                (*mapping.managed_user_attributes, *mapping.kept_user_attributes),
                policy.schema,
            ),
            "Group": scopes_of(
                "Group",
                (*mapping.managed_group_attributes, *mapping.kept_group_attributes),
                policy.schema,
            ),
        }

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
        with self._lock_cycle(cycle_id, "provision_one"):
            started_at, started = self.clock(), self.timer()
            stored = self.state.load()
            policy = await self._effective_policy((), stored)
            records = await in_phase(self.observer, "read_source", read_records(self.source))
            mapped = self.mapping.map(records)
            reading = Reading(mapped=mapped, stored=stored, state=stored.state, policy=policy)
            steps: list[Step] = []
            record = find_record(records, key)
            desired = mapped.desired
            wanted_user = next((u for u in desired.users if u.key == key), None)
            wanted_group = next((g for g in desired.groups if g.key == key), None)
            wanted = wanted_user or wanted_group
            steps.append(source_step(record, key))
            scope = scope_step(record, mapped, key, wanted, self.mapping.scope)
            steps.append(scope)
            if wanted is None:
                empty = Plan(now=self.clock())
                report = self._report(cycle_id, "one", started_at, started, reading, plan=empty)
                self.state.save(stored, record_of(report))
                self._finish(report)
                problem = steps[0].detail if record is None else scope.detail
                return Explanation(key=key, steps=steps, plan=empty, report=report, problem=problem)
            resource_type = "User" if wanted_user is not None else "Group"
            actual, reads = await in_phase(
                self.observer,
                "list_target",
                read_for(
                    self.target,
                    key,
                    resource_type,
                    desired=desired,
                    state=reading.state,
                    policy=policy,
                ),
            )
            reading.actual = actual
            with phase_scope(self.observer, "plan"):
                whole = make_plan(desired, actual, policy, reading.state, now=self.clock())
            mine = plan_for(whole, key, resource_type, policy)
            steps.append(match_step(whole, key, resource_type, reading.state))
            steps.append(changes_step(mine))
            steps.append(operations_step(mine, whole, key, resource_type))
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
                target_warnings=learn(reading, execution, facts_of(self.target), self.clock),
            )
            steps.append(result_step(report))
            new = remembered_one(
                reading,
                mine,
                execution,
                report,
                resource_type=resource_type,
                wanted=wanted,
                now=self.clock(),
            )
            self.state.save(new, record_of(report))
            self._finish(report)
            return Explanation(key=key, steps=steps, plan=mine, report=report)

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
        state and reports, then this returns. A cycle that finds another running
        (a :meth:`run_once` or :meth:`provision_one` of this provisioner, another
        process on the same state file) is skipped (logged), never waited for: the
        next one comes at the next interval.

        ``sleep`` (an async callable taking seconds), ``rng`` and ``max_cycles`` are
        for tests and embedding: nothing here reads the wall clock but ``clock``.
        """
        await self._schedule.run_forever(
            lambda full: self.arun_once(full=full),
            interval,
            jitter=jitter,
            max_backoff=max_backoff,
            sleep=sleep,
            rng=rng,
            max_cycles=max_cycles,
            clock=self.clock,
        )

    def trigger(self, *, full: bool = False) -> None:
        """Ask :meth:`run_forever` for a cycle now (``full`` reads the whole target).

        Safe from any thread. While a cycle runs, triggers coalesce into one cycle
        right after it.
        """
        self._schedule.trigger(full=full)

    def stop(self) -> None:
        """Ask :meth:`run_forever` to stop, and a running cycle to start no new write.

        Safe from any thread and from signal handlers' callbacks. Operations in flight
        finish and the state is saved; the remaining ones are reported as skipped.
        """
        self._schedule.stop()

    # -- what was learned of the target ---------------------------------------------------

    def learned(self) -> tuple[str, ...]:
        """What earlier cycles learned of the target, one line each: the paths it does
        not keep (left out of comparisons, or never cleared) and what it refuses or does
        against the RFC (PATCH styles, PUT for a resource type, filters), as stored."""
        return learned_lines(self.state.load())

    def forget(
        self, paths: Iterable[str] | None = None, *, resource_type: str | None = None
    ) -> None:
        """Forget what was learned, so the next cycle compares and writes it again.

        ``paths`` (``"title"``, ``"emails.type"``) of ``resource_type`` (``"User"``,
        ``"Group"``; None: both); with no ``paths``, every path of that type; with
        neither, everything: the paths, and what the target was found to refuse. Takes
        the cycle lock: raises :class:`~scimsync.errors.CycleInProgressError` while a
        cycle runs.
        """
        with self._lock_cycle():
            new, everything = forgotten(self.state.load(), paths, resource_type)
            self.state.save(new)
            facts = facts_of(self.target)
            if everything and facts is not None:
                facts.forget()

    def health(self) -> Health:
        """Whether the agent is well: last cycles, failures in a row, quarantine, next run."""
        return health_from(
            self.state.history(50), running=self._running, next_run_at=self._schedule.next_run_at
        )

    # -- telling (see _tell) --------------------------------------------------------------

    def _report(
        self,
        cycle_id: str,
        mode: str,
        started_at: datetime,
        started: float,
        reading: Reading,
        **details: Any,
    ) -> SyncReport:
        """The cycle's report, timed and counted now (``details``: see ``cycle_report``)."""
        return cycle_report(
            cycle_id,
            mode,
            reading,
            started_at=started_at,
            finished_at=self.clock(),
            duration=max(self.timer() - started, 0.0),
            wire=self._wire_since_start(),
            **details,
        )

    def _wire_since_start(self) -> tuple[int, int] | None:
        """(requests, retries) on the wire since this cycle started, when counted."""
        counted = self._wire_counts()
        if counted is None:
            return None
        return counted[0] - self._stats_start[0], counted[1] - self._stats_start[1]

    def _finish(self, report: SyncReport) -> None:
        notify_report(self.observer, report)
        tell(report, on_report=self.on_report, on_alert=self.on_alert)

    def _cycle_error(
        self, cycle_id: str, mode: str, started_at: datetime, started: float, exc: Exception
    ) -> SyncReport:
        """The report of a cycle that could not read its source or target: recorded in
        the history, alerted, returned."""
        report = read_error_report(
            cycle_id,
            mode,
            self._failed_read,
            exc,
            started_at=started_at,
            finished_at=self.clock(),
            duration=max(self.timer() - started, 0.0),
            wire=self._wire_since_start(),
        )
        logger.error("cycle %s could not run: %s", cycle_id, report.error)
        record_failure(self.state, record_of(report))
        self._finish(report)
        return report

    def _failed_cycle(self, cycle_id: str, started_at: datetime, exc: BaseException) -> None:
        """Record and alert a cycle that raises instead of reporting."""
        message = describe_error(exc)
        logger.error("cycle %s could not run: %s", cycle_id, message)
        record_failure(self.state, failure_record(cycle_id, started_at, self.clock(), message))
        alert(self.on_alert, Alert(kind="error", message=message, cycle_id=cycle_id))

    def _progress(self, cycle_id: str, phase: str, done: int, total: int) -> None:
        progress(self.on_progress, cycle_id, phase, done, total)


# -- helpers -------------------------------------------------------------------------------


def _check_target_methods(target: object, mapping: Mapping | None, *, groups: bool = False) -> None:
    """Refuse, by name and before any I/O, a target without the methods it will be asked
    for: the user methods always, the group methods for a mapping that makes groups
    (or a plan with group operations)."""
    problem = methods_problem(
        target,
        groups=groups or (mapping is not None and mapping.uses_groups),
        why_groups=MAPPING_MAKES_GROUPS if mapping is not None else "the plan has group operations",
    )
    if problem is not None:
        raise ConfigurationError(problem)
