"""Fan-out in one process: one source, read once per cycle, into many targets.

:class:`FanOut` runs a cycle of several :class:`~scimsync.Provisioner` objects that
share one source: the source is read once, and every target's cycle (its mapping,
policy, state store, client and rate limit) runs on that read, concurrently, on one
event loop.

Rules this module keeps:

- **One read per cycle.** The source's ``read()`` is called once a cycle; every
  target maps what it gave. A source that cannot be read is one failure told to
  every target: each reports outcome ``"error"`` and writes nothing.
- **Delta sources are read whole.** A :class:`~scimsync.sources.DeltaSource`'s
  snapshot lives in one state store, and a fan-out has one per target: the shared
  read is a whole read (each target's incremental cycles still skip the target when
  nothing changed for its mapping).
- **No target holds another back.** Each target's cycle is its own task: a failing,
  quarantined or raising one is reported, and the others run to the end.
  :meth:`FanOut.arun_forever` waits for a cycle's targets one interval at most; one
  still running after that carries on, and later cycles leave it alone (listed as
  ``running``) until it is over.
- **Nothing shared that one target owns.** Two targets on one provisioner, one
  target object or one state store are refused when the fan-out is made.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping as AbcMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, CycleInProgressError, ScimSyncError
from ._decisions import describe_error
from ._fanout_report import FanOutReport
from ._loop import LoopRunner
from ._provisioner import Provisioner
from ._reading import read_failure, read_records
from ._schedule import Scheduler, _seconds

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
    from datetime import timedelta

    from ..sources import AsyncSource, Source, SourceItem
    from ._report import SyncReport

__all__ = ["FanOut"]

logger = logging.getLogger("scimsync.sync")

# What a target's mapping may ask of the source it reads (see Mapping.amap, Mapping.check).
_FORWARDED = frozenset({"fields", "key", "group_key", "members", "sources"})


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class FanOut:
    """One source, read once per cycle, provisioned into many targets at once.

    ::

        from scimsync.sync import FanOut

        fan_out = FanOut(
            source,
            {
                "crm": Provisioner(source, crm_mapping, crm_target, state=crm_store),
                "wiki": Provisioner(source, wiki_mapping, wiki_target, state=wiki_store),
            },
        )
        report = fan_out.run_once()        # or: await fan_out.arun_once()
        print(report)                      # a FanOutReport: a summary, a line per target
        report.reports["crm"]              # that target's SyncReport

    - ``source``: the source every target reads; each provisioner must have been
      made with this very object.
    - ``targets``: the provisioners, by name (a mapping), or a sequence (named
      ``target-1``, ``target-2``, ...). Each keeps its own mapping, policy, state
      store, apply policy, hooks and observer, and its target its own client (and
      with it its concurrency and rate limit).
    - ``on_report``: receives each cycle's :class:`~scimsync.sync.FanOutReport` (a
      hook that raises is logged); each provisioner's own ``on_report`` receives its
      target's report as before.
    - ``clock`` (aware datetimes) and ``timer`` (monotonic seconds): for tests.

    Refused with :class:`~scimsync.errors.ConfigurationError`, before any I/O: no
    target; a provisioner made with another source; one provisioner, one target
    object or one state store (the same object, or a file at the same path) for two
    targets.

    Use the fan-out's methods, not the provisioners' own, while it runs them: its
    plain methods run every target on its own event loop (the targets' connections
    are opened there), and :meth:`close` closes the targets there.
    """

    def __init__(
        self,
        source: Source | AsyncSource,
        targets: Mapping[str, Provisioner] | Iterable[Provisioner],
        *,
        on_report: Callable[[FanOutReport], object] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.targets: dict[str, Provisioner] = _named(source, targets)
        self.on_report = on_report
        self.clock = clock
        self.timer = timer
        self._loop_runner = LoopRunner()
        weakref.finalize(self, self._loop_runner.close)
        self._schedule = Scheduler()
        # Each target's cycle in flight: a later cycle leaves a target alone until its
        # task is done. Touched on the event loop only.
        self._cycles: dict[str, asyncio.Future[SyncReport]] = {}

    def __repr__(self) -> str:
        return f"FanOut({self.source!r}, targets={sorted(self.targets)!r})"

    def close(self) -> None:
        """Close the targets (their ``aclose()``, or their ``client``'s) on the event
        loop the plain methods ran on, then that loop, then each provisioner's own."""
        for provisioner in self.targets.values():
            self._loop_runner.close_target(provisioner.target)
        self._loop_runner.close()
        for provisioner in self.targets.values():
            provisioner.close()

    def __enter__(self) -> FanOut:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plain twins ----------------------------------------------------------------------

    def run_once(self, *, full: bool = False, force: Iterable[str] = ()) -> FanOutReport:
        """One cycle of every target on one read of the source (see :meth:`arun_once`)."""
        return self._loop_runner.call(lambda: self.arun_once(full=full, force=force))

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

    # -- cycles ---------------------------------------------------------------------------

    async def arun_once(self, *, full: bool = False, force: Iterable[str] = ()) -> FanOutReport:
        """Read the source once, run every target's cycle on that read, concurrently,
        and wait for them all.

        Each target's cycle is its provisioner's
        :meth:`~scimsync.Provisioner.arun_once` (incremental or full by its own
        state; ``full`` and ``force`` apply to every target). A target whose cycle is
        running already (its own ``run_once`` in another thread) is listed as
        ``running``; one whose cycle raises is listed in ``errors``: the others run
        on. A source that raises a read failure (a
        :class:`~scimsync.errors.ScimSyncError`, an ``OSError``) makes every target
        report ``"error"``; anything else it raises is raised.
        """
        try:
            return await self._cycle(full=full, force=frozenset(force), deadline=None)
        finally:
            for provisioner in self.targets.values():
                provisioner._schedule.clear_stop()

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
        """Run a fan-out cycle every ``interval`` until :meth:`stop` is called.

        The scheduling rules are :meth:`~scimsync.Provisioner.arun_forever`'s (jitter,
        :meth:`trigger`, :meth:`stop`, back-off), with these for many targets:

        - a cycle waits for its targets one ``interval`` at most; a target still
          running then carries on, is listed as ``running``, and is left alone by the
          next cycles until it is over (its report goes to its provisioner's
          ``on_report``): a slow target never delays the others;
        - the wait backs off only when the source could not be read or every
          target's cycle was troubled (:attr:`FanOutReport.troubled`): one
          quarantined target does not slow the others down;
        - :meth:`stop` also asks every running target's cycle to start no new write;
          the loop returns once they are over.

        ``sleep``, ``rng`` and ``max_cycles`` are for tests and embedding, as there.
        """
        period = _seconds(interval)
        wait = sleep or asyncio.sleep
        for provisioner in self.targets.values():
            provisioner._schedule.clear_stop()
        try:
            await self._schedule.run_forever(
                lambda full: self._cycle(full=full, force=frozenset(), deadline=(period, wait)),
                interval,
                jitter=jitter,
                max_backoff=max_backoff,
                sleep=sleep,
                rng=rng,
                max_cycles=max_cycles,
                clock=self.clock,
                troubled=lambda report: report.troubled,
            )
            # The targets' cycles still running end (their own way) before the loop does.
            await asyncio.gather(*self._cycles.values(), return_exceptions=True)
        finally:
            for future in self._cycles.values():
                future.cancel()
            for provisioner in self.targets.values():
                provisioner._schedule.clear_stop()

    def trigger(self, *, full: bool = False) -> None:
        """Ask :meth:`run_forever` for a cycle now (``full``: every target reads its
        whole target). Safe from any thread."""
        self._schedule.trigger(full=full)

    def stop(self) -> None:
        """Ask :meth:`run_forever` to stop, and every running target's cycle to start
        no new write. Safe from any thread."""
        self._schedule.stop()
        for provisioner in self.targets.values():
            provisioner.stop()

    # -- one cycle ------------------------------------------------------------------------

    async def _cycle(
        self,
        *,
        full: bool,
        force: frozenset[str],
        deadline: tuple[float, Callable[[float], Awaitable[object]]] | None,
    ) -> FanOutReport:
        started_at, started = self.clock(), self.timer()
        read = await self._read_source()
        logger.info(
            "fan-out cycle started: %d targets, %s",
            len(self.targets),
            f"source read: {len(read.items)} records"
            if read.error is None
            else f"the source could not be read: {describe_error(read.error)}",
        )
        running: list[str] = []
        launched: dict[str, asyncio.Future[SyncReport]] = {}
        for name, provisioner in self.targets.items():
            earlier = self._cycles.get(name)
            if earlier is not None and not earlier.done():
                running.append(name)
                continue
            task = asyncio.ensure_future(
                provisioner._arun_once(full=full, force=force, source=read)
            )
            task.add_done_callback(_Finished(self._cycles, name))
            self._cycles[name] = task
            launched[name] = task
        try:
            await _wait(launched.values(), deadline)
        except BaseException:
            for pending in launched.values():
                pending.cancel()
            raise
        reports: dict[str, SyncReport] = {}
        errors: dict[str, str] = {}
        for name, cycle in launched.items():
            if not cycle.done():
                running.append(name)
                continue
            exc = cycle.exception()
            if exc is None:
                reports[name] = cycle.result()
            elif isinstance(exc, CycleInProgressError):
                running.append(name)
            else:
                errors[name] = describe_error(exc)
                logger.error(
                    "target %s: cycle failed: %s",
                    name,
                    errors[name],
                    exc_info=exc if not isinstance(exc, ScimSyncError) else None,
                )
        report = FanOutReport(
            started_at=started_at,
            finished_at=self.clock(),
            duration=max(self.timer() - started, 0.0),
            source_duration=read.duration,
            source_records=len(read.items),
            source_error=None if read.error is None else describe_error(read.error),
            reports=dict(sorted(reports.items())),
            running=tuple(sorted(running)),
            errors=dict(sorted(errors.items())),
        )
        logger.info("fan-out cycle over: %r", report)
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception:
                logger.exception("the fan-out's on_report hook failed")
        return report

    async def _read_source(self) -> _SharedRead:
        """The source, read once: what it gave, or the read failure every target reports."""
        started = self.timer()
        try:
            items = await read_records(self.source)
        except Exception as exc:
            if not read_failure(exc):
                raise
            return _SharedRead(self.source, [], exc, max(self.timer() - started, 0.0))
        return _SharedRead(self.source, items, None, max(self.timer() - started, 0.0))


class _SharedRead:
    """One read of the shared source, read again by each target's cycle.

    Not a :class:`~scimsync.sources.DeltaSource` (it has no ``read_changes``): each
    target maps the whole read.
    """

    def __init__(
        self,
        source: Source | AsyncSource,
        items: list[SourceItem],
        error: Exception | None,
        duration: float,
    ) -> None:
        self.source = source
        self.items = items
        self.error = error
        self.duration = duration

    def __repr__(self) -> str:
        return repr(self.source)

    def __getattr__(self, name: str) -> Any:
        # Only what a mapping asks of its source: forwarding everything would make this
        # look like a delta source when the shared one is.
        if name in _FORWARDED:
            return getattr(self.source, name)
        raise AttributeError(name)

    def read(self) -> Iterator[SourceItem]:
        if self.error is not None:
            raise self.error.with_traceback(None)
        return iter(self.items)


class _Finished:
    """Done callback of a target's cycle: forgets it, and takes its exception (so a cycle
    that ends after its fan-out cycle stopped waiting is logged, never left unread)."""

    def __init__(self, cycles: dict[str, asyncio.Future[SyncReport]], name: str) -> None:
        self.cycles = cycles
        self.name = name

    def __call__(self, task: asyncio.Future[SyncReport]) -> None:
        if self.cycles.get(self.name) is task:
            del self.cycles[self.name]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, CycleInProgressError):
            logger.debug("target %s: cycle ended with %s", self.name, describe_error(exc))


async def _wait(
    tasks: Collection[asyncio.Future[Any]],
    deadline: tuple[float, Callable[[float], Awaitable[object]]] | None,
) -> None:
    """Wait for ``tasks``; with a ``deadline`` (seconds, sleep), that long at most."""
    if not tasks:
        return
    if deadline is None:
        await asyncio.wait(tasks)
        return
    seconds, sleep = deadline
    sleeper: asyncio.Future[object] = asyncio.ensure_future(sleep(seconds))
    pending = set(tasks)
    try:
        while pending:
            done, _ = await asyncio.wait({*pending, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            if sleeper in done:
                break
            pending -= done
    finally:
        if not sleeper.done():
            sleeper.cancel()
        await asyncio.gather(sleeper, return_exceptions=True)


def _named(
    source: object, targets: Mapping[str, Provisioner] | Iterable[Provisioner]
) -> dict[str, Provisioner]:
    """The targets by name, checked: see :class:`FanOut` for what is refused."""
    if isinstance(targets, AbcMapping):
        named = dict(targets)
    else:
        named = {f"target-{i}": p for i, p in enumerate(targets, 1)}
    if not named:
        raise ConfigurationError("a fan-out needs at least one target")
    seen: dict[object, str] = {}
    for name, provisioner in named.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"target names must be non-empty strings, got {name!r}")
        if not isinstance(provisioner, Provisioner):
            raise ConfigurationError(
                f"target {name!r}: expected a Provisioner, got {type(provisioner).__name__}"
            )
        if provisioner.source is not source:
            raise ConfigurationError(
                f"target {name!r}: its provisioner reads {provisioner.source!r}, not the "
                f"fan-out's source {source!r}: make every provisioner with the shared source"
            )
        for what, key in (
            ("provisioner", ("provisioner", id(provisioner))),
            ("target", ("target", id(provisioner.target))),
            ("state store", ("state", id(provisioner.state))),
            ("state store", ("state file", _state_path(provisioner.state))),
        ):
            if key[1] is None:
                continue
            other = seen.setdefault(key, name)
            if other != name:
                raise ConfigurationError(
                    f"targets {other!r} and {name!r} share one {what}: each target needs its "
                    "own (a state store holds one target's links, fingerprints and lock)"
                )
    return named


def _state_path(state: object) -> str | None:
    """Where a file-backed state store keeps its state (resolved), if it says."""
    path = getattr(state, "path", None)
    if isinstance(path, (str, Path)):
        return str(Path(path).resolve())
    return None
