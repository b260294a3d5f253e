"""The event loop the plain Provisioner methods (``run_once``, ``plan``, ...) run on.

Rules this module keeps:

- **One loop, in a thread of its own, for the provisioner's life.** The target's
  connections are opened on it and reused from one call to the next.
- **Any thread may call at any time, and no call waits behind another here.** Each
  call is one task on the loop; cycles exclude each other with the provisioner's
  cycle lock, at once. So a webhook calling ``provision_one`` while ``run_forever``
  runs in another thread gets its answer, or ``CycleInProgressError``, at once.
- **Never inside a running event loop.** A plain method called from a coroutine is
  refused (the async twins are for that), before its coroutine is even made.
- **The lock guards starting and stopping the loop, never a call.**
- **Closing awaits the target's** ``aclose()`` **on the loop first**: connections
  opened on a loop cannot outlive it. Tasks still running then are cancelled and
  awaited, and async generators finished, before the loop stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError
from ._decisions import describe_error

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["LoopRunner"]

logger = logging.getLogger("scimsync.sync")

T = TypeVar("T")


class LoopRunner:
    """The plain methods' event loop, started on first use, in a daemon thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # held to start or stop the loop, never to run

    @property
    def used(self) -> bool:
        """True when a loop is open."""
        return self._loop is not None and not self._loop.is_closed()

    def call(self, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine ``start()`` makes on this loop and return what it returns.

        Refused with :class:`~scimsync.errors.ConfigurationError` inside a running
        event loop, before ``start`` is called (so no coroutine is left un-awaited).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.run(start())
        raise ConfigurationError(
            "the plain Provisioner methods cannot run inside a running event loop: "
            "await their async twins (arun_once, aplan, aapply, ...)"
        )

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run ``awaitable`` on this loop, from any thread but the loop's own."""
        future = asyncio.run_coroutine_threadsafe(awaitable, self._started())
        try:
            return future.result()
        except BaseException:
            # The caller was interrupted (Ctrl-C): the task goes too.
            future.cancel()
            raise

    def close_with(self, target: object) -> None:
        """Close the loop; when it was used, await ``target``'s ``aclose()`` (or its
        ``client``'s, as a :class:`~scimsync.targets.ScimTarget` has) on it first.

        A failing ``aclose()`` is logged: the loop is closed anyway.
        """
        self.close_target(target)
        self.close()

    def close_target(self, target: object) -> None:
        """When the loop was used, await ``target``'s ``aclose()`` (or its ``client``'s)
        on it; the loop stays open. A failing ``aclose()`` is logged."""
        if not self.used:
            return
        closer = getattr(target, "aclose", None)
        if closer is None:
            closer = getattr(getattr(target, "client", None), "aclose", None)
        if callable(closer):
            try:
                self.run(closer())
            except Exception as exc:
                logger.warning("closing the target failed: %s", describe_error(exc))

    def close(self) -> None:
        """Stop the loop and its thread, if started: tasks still running are cancelled
        and awaited first, then async generators are finished."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or loop.is_closed():
            return
        if thread is not None and thread is not threading.current_thread():
            with contextlib.suppress(Exception):  # finish tasks, then async generators
                asyncio.run_coroutine_threadsafe(_finish(loop), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
        if not loop.is_running():
            loop.close()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="scimsync-provisioner", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    # As asyncio.run() ends: a task still running (a call given up on, its caller
    # interrupted) is cancelled and awaited before the async generators are closed,
    # or closing one it is iterating fails ("aclose(): asynchronous generator is
    # already running") and the stream it reads is left open.
    running = [task for task in asyncio.all_tasks(loop) if task is not asyncio.current_task()]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await loop.shutdown_asyncgens()
