"""Retry policies as data; every tenacity object scimsync uses is built in this module.

A :class:`RetryPolicy` is a small frozen value: how many attempts, how long in total,
how to back off, which answers and which connection failures are worth another try.
The clients turn it into a :class:`tenacity.Retrying` (or ``AsyncRetrying``) per
request with :meth:`RetryPolicy.retrying`, so no other module touches tenacity.

The rules every policy keeps, whatever its settings:

- it stops: after ``max_attempts`` and before a wait would pass ``max_total_seconds``,
  and the clients cut each attempt's deadline to what is left of ``max_total_seconds``,
  so the whole sequence, attempts and waits, ends within it;
- ``Retry-After`` (seconds or HTTP-date) is honoured; one longer than
  ``max_retry_after`` fails that request at once instead of stalling the caller;
- 400, 401, 403, 404, 409 and 412 are never retried: another try cannot fix them;
- a read (a GET, a POST ``/.search``) is also retried after a 500 and after an answer
  cut short in transit (empty, not JSON): reading twice changes nothing, and the big
  hosted provisioning services do the same; a write never is;
- a request whose outcome is unknown (:class:`~scimsync.errors.OutcomeUnknownError`)
  is never retried here: the caller looks the resource up first.

:func:`set_testing` (or the :func:`no_waits` context manager) removes every wait, for
test suites that exercise retries without sleeping.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import tenacity

from .errors import (
    ConfigurationError,
    InvalidResponseError,
    OutcomeUnknownError,
    ScimHTTPError,
    TransportError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator

__all__ = [
    "DEFAULT_READ_RETRY_STATUSES",
    "DEFAULT_RETRY_EXCEPTIONS",
    "DEFAULT_RETRY_STATUSES",
    "NEVER_RETRIED_STATUSES",
    "RetryDetails",
    "RetryPolicy",
    "is_testing",
    "no_waits",
    "parse_retry_after",
    "set_testing",
]

logger = logging.getLogger("scimsync.retry")

#: Answers worth another try: rate limited, or a gateway that lost the backend.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

#: Answers worth another try for a read, which cannot change anything: 500 as well.
DEFAULT_READ_RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

#: Answers another try cannot fix; a policy that lists one is refused.
NEVER_RETRIED_STATUSES: frozenset[int] = frozenset({400, 401, 403, 404, 409, 412})

#: Connection faults worth another try: refused, reset or dropped connections and
#: timeouts. Only where a retry cannot duplicate a write: a POST or PATCH that may have
#: been sent raises OutcomeUnknownError instead.
DEFAULT_RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
)

_testing = False


def set_testing(enabled: bool) -> None:
    """Remove (``True``) or restore (``False``) every retry and rate-limit wait.

    For test suites: retries still happen, as many as the policy allows, without
    sleeping.
    """
    global _testing  # noqa: PLW0603 - one process-wide switch, like logging's level
    _testing = enabled


def is_testing() -> bool:
    """True while :func:`set_testing` has removed the waits."""
    return _testing


@contextlib.contextmanager
def no_waits() -> Iterator[None]:
    """Remove every retry and rate-limit wait inside the ``with`` block."""
    before = _testing
    set_testing(True)
    try:
        yield
    finally:
        set_testing(before)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header as seconds to wait, or None when absent or garbled.

    Both forms of RFC 9110 §10.2.3 are understood: ``"120"`` and an HTTP-date such
    as ``"Wed, 21 Oct 2015 07:28:00 GMT"`` (relative to ``now``, in UTC). A date in the
    past means "now": 0 seconds.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@attrs.frozen(kw_only=True)
class RetryDetails:
    """What an ``on_retry`` hook receives before each wait: no headers, no body."""

    method: str
    url: str
    attempt: int
    """The attempt that just failed, counting from 1."""
    wait_seconds: float
    cause: str
    """Why: ``"HTTP 503"``, ``"ReadTimeout"``..."""
    elapsed_seconds: float
    """Time since the first attempt started."""


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be a positive number")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be 0 or more")


def _attempts(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not (isinstance(value, int) and value >= 1):
        raise ConfigurationError("RetryPolicy.max_attempts must be an integer, 1 or more")


def _status_set(values: Iterable[int]) -> frozenset[int]:
    return frozenset(values)


def _exception_types(values: Iterable[type[Exception]]) -> tuple[type[Exception], ...]:
    return tuple(values)


def _statuses(_: object, attribute: attrs.Attribute[Any], value: frozenset[int]) -> None:
    refused = sorted(value & NEVER_RETRIED_STATUSES)
    if refused:
        raise ConfigurationError(
            f"RetryPolicy.retry_statuses cannot include {refused}: retrying cannot fix them"
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how a request is tried again. Frozen; build variants with ``attrs.evolve``.

    The wait before retry *n* (counting from 1) is
    ``min(max_wait, initial_wait * multiplier ** (n - 1)) + uniform(0, jitter)``,
    unless the answer carried ``Retry-After``, which wins. Settings that cannot work
    raise :class:`~scimsync.errors.ConfigurationError` at construction.
    """

    max_attempts: int = attrs.field(default=5, validator=_attempts)
    """Attempts in all, the first included; 1 means "never retry"."""
    max_total_seconds: float = attrs.field(default=120.0, validator=_positive)
    """The budget of one request, every attempt and wait included: no retry starts whose
    wait would end later than this after the first attempt, and the clients cut each
    attempt's deadline (their ``request_deadline``) to what is left of it."""
    initial_wait: float = attrs.field(default=0.5, validator=_not_negative)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_wait: float = attrs.field(default=30.0, validator=_not_negative)
    jitter: float = attrs.field(default=0.5, validator=_not_negative)
    """Up to this many seconds, drawn at random, added to each backoff wait."""
    max_retry_after: float = attrs.field(default=120.0, validator=_not_negative)
    """A ``Retry-After`` longer than this fails the request instead of waiting."""
    retry_statuses: frozenset[int] = attrs.field(
        default=DEFAULT_RETRY_STATUSES, converter=_status_set, validator=_statuses
    )
    retry_exceptions: tuple[type[Exception], ...] = attrs.field(
        default=DEFAULT_RETRY_EXCEPTIONS, converter=_exception_types
    )
    """httpx exceptions worth another try (only where a retry cannot duplicate a write)."""
    read_retry_statuses: frozenset[int] = attrs.field(
        default=DEFAULT_READ_RETRY_STATUSES, converter=_status_set, validator=_statuses
    )
    """Answers worth another try for a read (a GET, a POST ``/.search``), on top of
    ``retry_statuses``."""
    retry_cut_short_reads: bool = True
    """Retry a read whose answer looks cut short in transit (empty, not JSON)."""

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def should_retry(self, exc: BaseException, *, read: bool = False) -> bool:
        """True when ``exc``, raised by one attempt, is worth another attempt; ``read``
        says the request only reads (see :attr:`read_retry_statuses`)."""
        if isinstance(exc, OutcomeUnknownError):
            return False
        if isinstance(exc, InvalidResponseError):
            return read and exc.transient and self.retry_cut_short_reads
        if isinstance(exc, ScimHTTPError):
            statuses = (
                self.retry_statuses | self.read_retry_statuses if read else self.retry_statuses
            )
            if exc.status not in statuses:
                return False
            retry_after: float | None = getattr(exc, "retry_after", None)
            if retry_after is not None and retry_after > self.max_retry_after:
                logger.warning(
                    "not retrying %s %s: Retry-After %.0fs is longer than the %.0fs allowed",
                    exc.method,
                    exc.url,
                    retry_after,
                    self.max_retry_after,
                )
                return False
            return True
        if isinstance(exc, TransportError):
            return isinstance(exc.__cause__, self.retry_exceptions)
        return False

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1 = the first retry), jitter included."""
        if _testing:
            return 0.0
        base = min(self.max_wait, self.initial_wait * self.multiplier ** (retry_number - 1))
        return base + random.uniform(0, self.jitter)  # noqa: S311 - jitter, not crypto

    def wait_for(self, exc: BaseException | None, retry_number: int) -> float:
        """The wait before retrying after ``exc``: its ``Retry-After`` if any, else backoff."""
        if _testing:
            return 0.0
        retry_after: float | None = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return retry_after
        return self.backoff(retry_number)

    def retrying(
        self,
        *,
        method: str,
        url: str,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        on_retry: Iterable[Callable[[RetryDetails], None]] = (),
        read: bool = False,
    ) -> tenacity.Retrying:
        """Build the :class:`tenacity.Retrying` for one request (synchronous clients);
        ``read`` says the request only reads."""
        return tenacity.Retrying(
            sleep=sleep, **self._tenacity_arguments(method, url, clock, tuple(on_retry), read)
        )

    def async_retrying(
        self,
        *,
        method: str,
        url: str,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        on_retry: Iterable[Callable[[RetryDetails], None]] = (),
        read: bool = False,
    ) -> tenacity.AsyncRetrying:
        """Build the :class:`tenacity.AsyncRetrying` for one request (async clients)."""
        return tenacity.AsyncRetrying(
            sleep=sleep, **self._tenacity_arguments(method, url, clock, tuple(on_retry), read)
        )

    def _tenacity_arguments(
        self,
        method: str,
        url: str,
        clock: Callable[[], float],
        on_retry: tuple[Callable[[RetryDetails], None], ...],
        read: bool,
    ) -> dict[str, Any]:
        started = clock()
        # tenacity asks for the wait and for the stop in an order that changed across
        # versions; both read the one wait drawn per attempt.
        waits: dict[int, float] = {}

        def wait_of(state: tenacity.RetryCallState) -> float:
            number = state.attempt_number
            if number not in waits:
                exc = state.outcome.exception() if state.outcome else None
                waits[number] = self.wait_for(exc, number)
            return waits[number]

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            return clock() - started + wait_of(state) > self.max_total_seconds

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            details = RetryDetails(
                method=method,
                url=url,
                attempt=state.attempt_number,
                wait_seconds=wait_of(state),
                cause=_describe_cause(exc),
                elapsed_seconds=clock() - started,
            )
            logger.warning(
                "retrying %s %s in %.2fs after %s (attempt %d of %d)",
                method,
                url,
                details.wait_seconds,
                details.cause,
                details.attempt,
                self.max_attempts,
            )
            for hook in on_retry:
                hook(details)

        return {
            "stop": stop,
            "wait": wait_of,
            "retry": tenacity.retry_if_exception(lambda exc: self.should_retry(exc, read=read)),
            "before_sleep": before_sleep,
            "reraise": True,
        }


def _describe_cause(exc: BaseException | None) -> str:
    if isinstance(exc, ScimHTTPError):
        return f"HTTP {exc.status}"
    if isinstance(exc, TransportError) and exc.__cause__ is not None:
        return type(exc.__cause__).__name__
    return type(exc).__name__ if exc is not None else "unknown"
