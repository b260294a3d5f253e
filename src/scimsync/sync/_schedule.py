"""Scheduling cycles: ``run_forever``'s loop, and the signals that steer it.

Rules this module keeps:

- **Signals from any thread.** :meth:`Scheduler.trigger` and :meth:`Scheduler.stop`
  may be called from any thread (and from signal handlers' callbacks): they set a
  flag under the signal lock, then wake the sleeping loop on its own event loop.
- **Locks around flags, never around waits.** The signal lock is held to read or
  change the flags only; no cycle and no sleep runs under it.
- **Triggers coalesce.** Triggers during a cycle make one more cycle right after
  it; ``full`` sticks until that cycle takes it.
- **No overlapping, no waiting.** A cycle that finds another running is skipped
  (logged), never waited for: the next comes at the next interval.
- **Back off when troubled.** After a quarantined cycle, or one that could not run,
  the wait doubles each time, up to the ceiling (:func:`~._decisions.next_delay`,
  which also spreads agents with jitter).
- **No wall clock.** Time is the ``clock`` given; waiting is the ``sleep`` given.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError, CycleInProgressError, ScimSyncError
from ._decisions import describe_error, next_delay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from ._report import SyncReport

__all__ = ["Scheduler"]

logger = logging.getLogger("scimsync.sync")


R = TypeVar("R")


def _troubled(report: Any) -> bool:
    """A cycle to back off after: quarantined, or one that could not run."""
    sync_report: SyncReport = report
    return sync_report.quarantine is not None or sync_report.error is not None


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Scheduler:
    """What ``run_forever`` waits on and when it runs next; set from any thread."""

    def __init__(self) -> None:
        self._signal_lock = threading.Lock()
        self._stop_requested = False
        self._full_requested = False
        self._triggered = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        #: When the next cycle runs (None while one runs, or when the loop is not running).
        self.next_run_at: datetime | None = None

    async def run_forever(
        self,
        run_cycle: Callable[[bool], Awaitable[R]],
        interval: float | timedelta,
        *,
        jitter: float,
        max_backoff: float | timedelta | None,
        sleep: Callable[[float], Awaitable[object]] | None,
        rng: random.Random | None,
        max_cycles: int | None,
        clock: Callable[[], datetime],
        troubled: Callable[[R], bool] | None = None,
    ) -> None:
        """Run ``run_cycle(full)`` every ``interval`` until :meth:`stop` (see
        :meth:`~scimsync.Provisioner.arun_forever`). ``troubled(report)`` says whether
        to back off (default: a :class:`~scimsync.SyncReport` quarantined, or whose
        cycle could not run)."""
        is_troubled = troubled or _troubled
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
                self.next_run_at = None
                try:
                    report = await run_cycle(full)
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
                    backoff = backoff + 1 if is_troubled(report) else 0
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
                self.next_run_at = clock() + timedelta(seconds=delay)
                await self._sleep_until_woken(wait, delay)
        finally:
            with self._signal_lock:
                self._stop_requested = False
            self.next_run_at = None
            self._loop = None
            self._wake = None

    def trigger(self, *, full: bool = False) -> None:
        """Ask for a cycle now (``full``: one that reads the whole target)."""
        with self._signal_lock:
            self._triggered = True
            self._full_requested = self._full_requested or full
        self._wake_up()

    def stop(self) -> None:
        """Ask the loop to stop, and a running cycle to start no new write."""
        with self._signal_lock:
            self._stop_requested = True
        self._wake_up()

    def clear_stop(self) -> None:
        """Forget a :meth:`stop` request (a fan-out's loop ended: its targets write again)."""
        with self._signal_lock:
            self._stop_requested = False

    def stop_is_requested(self) -> bool:
        """True once :meth:`stop` was called, until the loop ends (what the executor asks)."""
        with self._signal_lock:
            return self._stop_requested

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
