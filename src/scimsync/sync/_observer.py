"""What a provisioner tells an instrumentation: the :class:`Observer` interface.

Metrics (:mod:`scimsync.metrics`) and traces (:mod:`scimsync.tracing`) are two
observers; an application may write its own. The provisioner calls an observer at
four places only: around each cycle, around each phase of it (reading the source,
listing the target, planning, applying), with the cycle's report, and (through its
target's client's hooks) after each HTTP attempt and before each retry.

Nobody observes by default, and then nothing here runs but an ``is None`` test per
cycle and per phase. An observer that raises is logged, never allowed to break a
cycle (as the ``on_report`` and ``on_alert`` hooks).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._context import cycle_id_var
from ._decisions import describe_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from contextlib import AbstractContextManager

    from ..client import RequestDetails
    from ..retry import RetryDetails
    from ._provisioner import Provisioner
    from ._report import SyncReport

__all__ = ["CycleKind", "Observer", "Phase", "observe"]

logger = logging.getLogger("scimsync.sync")

T = TypeVar("T")

Phase = Literal["read_source", "list_target", "plan", "apply"]
Phase.__doc__ = (
    "A phase of a cycle: reading (and mapping) the source, listing the target, planning, applying."
)

CycleKind = Literal["run", "plan", "apply", "provision_one"]
CycleKind.__doc__ = (
    "What a cycle was asked for: ``run_once`` (``run``), ``plan``, ``apply`` or ``provision_one``."
)

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()


class Observer:
    """Told what a provisioner does, to measure or trace it; every method here does nothing.

    Subclass it and override what you need, then hand it to :func:`observe`:

    - :meth:`cycle` is entered around each cycle (``run_once``, ``plan``, ``apply``,
      ``provision_one``, and their async twins), with the cycle's id; an exception
      that ends the cycle without a report goes through it;
    - :meth:`phase` around each phase of a cycle, inside :meth:`cycle`;
    - :meth:`report` receives each cycle's :class:`~scimsync.SyncReport`, inside
      :meth:`cycle` (a plan-only cycle has none);
    - :meth:`on_request` and :meth:`on_retry` are the target's client's hooks
      (:class:`~scimsync.client.RequestDetails` after each attempt,
      :class:`~scimsync.retry.RetryDetails` before each retry's wait).

    All are called on the cycle's own task (context variables, and so an
    OpenTelemetry current span, carry from :meth:`cycle` to :meth:`phase` to the
    requests), phases of one cycle may overlap (the source is read while the target
    is listed), and cycles of one provisioner never do. Nothing an observer receives
    holds a secret.
    """

    def cycle(self, cycle_id: str, kind: CycleKind) -> AbstractContextManager[object]:
        """A context manager around the cycle ``cycle_id``, of ``kind``."""
        return _NOTHING

    def phase(self, name: Phase) -> AbstractContextManager[object]:
        """A context manager around the phase ``name`` of the running cycle."""
        return _NOTHING

    def report(self, report: SyncReport) -> None:
        """The running cycle's report, once it is made."""

    def on_request(self, details: RequestDetails) -> None:
        """An HTTP attempt to the target ended (an ``on_request`` client hook)."""

    def on_retry(self, details: RetryDetails) -> None:
        """An HTTP request to the target is about to be retried (an ``on_retry`` client hook)."""


def observe(provisioner: Provisioner, observer: Observer) -> None:
    """Have ``observer`` told about ``provisioner``'s cycles and its target's requests.

    Observers add up: metrics and traces may both watch one provisioner; an
    observer already watching it is not added twice. The
    requests are those of the target's ``client`` (a
    :class:`~scimsync.targets.ScimTarget`'s), whose hooks it joins; a target without
    one has its cycles observed, not its requests.
    """
    current = provisioner.observer
    if observer is current or (isinstance(current, _Observers) and observer in current.members):
        return
    provisioner.observer = observer if current is None else _Observers(current, observer)
    client = getattr(provisioner.target, "client", None)
    add_hooks: Callable[..., None] | None = getattr(client, "add_hooks", None)
    if add_hooks is None:
        return
    kind = type(observer)
    add_hooks(
        on_request=[_quiet(observer.on_request, "request")]
        if kind.on_request is not Observer.on_request
        else [],
        on_retry=[_quiet(observer.on_retry, "retry")]
        if kind.on_retry is not Observer.on_retry
        else [],
    )


def target_name(target: object) -> str:
    """What to call ``target`` in metrics and spans: the host (and port) of its
    client's SCIM URL, else its class name: never a key or attribute of an identity."""
    url: Any = getattr(getattr(target, "client", None), "base_url", None)
    host = getattr(url, "host", None)
    if isinstance(host, str) and host:
        port = getattr(url, "port", None)
        return f"{host}:{port}" if isinstance(port, int) else host
    return type(target).__name__


# -- what the provisioner calls ----------------------------------------------------------


@contextlib.contextmanager
def cycle_scope(observer: Observer | None, cycle_id: str | None, kind: CycleKind) -> Iterator[None]:
    """Around one cycle: its id in :data:`~scimsync._context.cycle_id_var` (for the
    logs), and ``observer``'s :meth:`~Observer.cycle` when somebody observes.
    ``cycle_id`` None (:meth:`~scimsync.Provisioner.forget`) is no cycle."""
    if cycle_id is None:
        yield
        return
    token = cycle_id_var.set(cycle_id)
    try:
        if observer is None:
            yield
        else:
            with _Guarded(lambda: observer.cycle(cycle_id, kind), "cycle"):
                yield
    finally:
        cycle_id_var.reset(token)


def phase_scope(observer: Observer | None, name: Phase) -> AbstractContextManager[object]:
    """Around the phase ``name``: ``observer``'s :meth:`~Observer.phase`, or nothing."""
    if observer is None:
        return _NOTHING
    return _Guarded(lambda: observer.phase(name), "phase")


def in_phase(observer: Observer | None, name: Phase, work: Awaitable[T]) -> Awaitable[T]:
    """``work``, awaited as the phase ``name``: ``work`` itself when nobody observes."""
    if observer is None:
        return work
    return _awaited_in(phase_scope(observer, name), work)


async def _awaited_in(scope: AbstractContextManager[object], work: Awaitable[T]) -> T:
    with scope:
        return await work


def notify_report(observer: Observer | None, report: SyncReport) -> None:
    """Hand ``report`` to ``observer``; a failure is logged."""
    if observer is None:
        return
    try:
        observer.report(report)
    except Exception as exc:
        logger.warning("the observer failed on a report: %s", describe_error(exc))


# -- helpers ------------------------------------------------------------------------------


class _Guarded:
    """An observer's context manager whose failures are logged, never raised, and
    which never swallows the cycle's own exception."""

    __slots__ = ("_make", "_manager", "_what")

    def __init__(self, make: Callable[[], AbstractContextManager[object]], what: str) -> None:
        self._make = make
        self._what = what
        self._manager: AbstractContextManager[object] | None = None

    def __enter__(self) -> None:
        try:
            manager = self._make()
            manager.__enter__()
        except Exception as exc:
            logger.warning("the observer failed entering a %s: %s", self._what, describe_error(exc))
        else:
            self._manager = manager

    def __exit__(self, *exc_info: Any) -> None:
        manager, self._manager = self._manager, None
        if manager is None:
            return
        try:
            manager.__exit__(*exc_info)
        except Exception as exc:
            if exc is exc_info[1]:  # the cycle's own exception, passed on
                return
            logger.warning("the observer failed leaving a %s: %s", self._what, describe_error(exc))


def _quiet(hook: Callable[[Any], None], what: str) -> Callable[[Any], None]:
    """``hook``, its failures logged: a client hook that raises would fail the request."""

    def quiet(details: Any) -> None:
        try:
            hook(details)
        except Exception as exc:
            logger.warning("the observer failed on a %s: %s", what, describe_error(exc))

    return quiet


class _Observers(Observer):
    """Several observers as one, each told in the order they were added."""

    def __init__(self, *observers: Observer) -> None:
        self.members: tuple[Observer, ...]
        flat: list[Observer] = []
        for observer in observers:
            flat.extend(observer.members if isinstance(observer, _Observers) else [observer])
        self.members = tuple(flat)

    def __repr__(self) -> str:
        return f"_Observers{self.members!r}"

    @contextlib.contextmanager
    def cycle(self, cycle_id: str, kind: CycleKind) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for member in self.members:
                stack.enter_context(_Guarded(_bind_cycle(member, cycle_id, kind), "cycle"))
            yield

    @contextlib.contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for member in self.members:
                stack.enter_context(_Guarded(_bind_phase(member, name), "phase"))
            yield

    def report(self, report: SyncReport) -> None:
        for member in self.members:
            notify_report(member, report)


def _bind_cycle(
    member: Observer, cycle_id: str, kind: CycleKind
) -> Callable[[], AbstractContextManager[object]]:
    return lambda: member.cycle(cycle_id, kind)


def _bind_phase(member: Observer, name: Phase) -> Callable[[], AbstractContextManager[object]]:
    return lambda: member.phase(name)
