"""Shared pieces of the runner's tests: a target with scripted faults, clocks, sources."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import attrs

from scimsync.targets import MemoryTarget, Target

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock that moves only when told: ``clock()`` is now, ``clock.advance(s)``."""

    def __init__(self, start: datetime = WHEN) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Timer:
    """A monotonic timer that ticks by a fixed step each time it is read."""

    def __init__(self, step: float = 0.001) -> None:
        self.value = 0.0
        self.step = step

    def __call__(self) -> float:
        self.value += self.step
        return self.value


def memory_target(**kwargs: Any) -> MemoryTarget:
    """A MemoryTarget with predictable ids (``id1``, ``id2``…) and time."""
    counter = itertools.count(1)
    return MemoryTarget(id_factory=lambda: f"id{next(counter)}", clock=lambda: WHEN, **kwargs)


@attrs.define
class Fault:
    """One scripted fault: on ``method`` calls whose arguments ``match``, ``times`` times,
    raise ``error`` before the call (nothing happens) or after it (done, answer lost)."""

    method: str
    error: BaseException
    after: bool = False
    times: int | None = 1
    match: Callable[[tuple[Any, ...]], bool] = lambda args: True


class ScriptedTarget:
    """A :class:`MemoryTarget` whose calls fail as scripted, counting calls and concurrency."""

    def __init__(self, inner: MemoryTarget | None = None) -> None:
        self.inner = inner or memory_target()
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def fail(self, method: str, error: BaseException, **kwargs: Any) -> None:
        """Script a fault (see :class:`Fault`)."""
        self.faults.append(Fault(method, error, **kwargs))

    def count(self, method: str) -> int:
        """How many calls of ``method`` were made."""
        return sum(1 for name, _ in self.calls if name == method)

    def as_target(self) -> Target:
        """This object, typed as the protocol it implements."""
        return cast("Target", self)

    def _fault(self, method: str, args: tuple[Any, ...]) -> Fault | None:
        for fault in self.faults:
            live = fault.times is None or fault.times > 0
            if fault.method == method and live and fault.match(args):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def __getattr__(self, name: str) -> Any:
        inner = getattr(self.inner, name)
        if not asyncio.iscoroutinefunction(inner):
            return inner

        async def call(*args: Any) -> Any:
            self.calls.append((name, args))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(0)  # let other operations interleave
                fault = self._fault(name, args)
                if fault is not None and not fault.after:
                    raise fault.error
                result = await inner(*args)
                if fault is not None:
                    raise fault.error
                return result
            finally:
                self.in_flight -= 1

        return call
