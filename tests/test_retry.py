"""RetryPolicy: validation, which failures retry, waits, stops, Retry-After, the testing switch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from scimsync.errors import (
    BadRequestError,
    ConfigurationError,
    ConflictResponseError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    TooManyRequestsError,
    TransportError,
)
from scimsync.retry import (
    NEVER_RETRIED_STATUSES,
    RetryDetails,
    RetryPolicy,
    is_testing,
    no_waits,
    parse_retry_after,
    set_testing,
)


def _transport_error(cause: Exception) -> TransportError:
    error = TransportError("failed")
    error.__cause__ = cause
    return error


def _too_many(retry_after: float | None) -> TooManyRequestsError:
    error = TooManyRequestsError(429, method="GET", url="https://x/Users")
    error.retry_after = retry_after
    return error


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _run(policy: RetryPolicy, failures: list[BaseException], clock: FakeClock) -> int:
    """Run attempts that raise ``failures`` in turn (then succeed); return attempts made."""
    attempts = 0
    retrying = policy.retrying(method="GET", url="https://x/Users", clock=clock, sleep=clock.sleep)
    for attempt in retrying:
        with attempt:
            attempts += 1
            if attempts <= len(failures):
                raise failures[attempts - 1]
    return attempts


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(NEVER_RETRIED_STATUSES))
def test_policy_refuses_statuses_that_retrying_cannot_fix(status: int) -> None:
    """Listing 400/401/403/404/409/412 as retryable is a configuration error."""
    with pytest.raises(ConfigurationError, match=str(status)):
        RetryPolicy(retry_statuses=frozenset({429, status}))


@pytest.mark.parametrize(
    "settings",
    [
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"max_total_seconds": 0},
        {"max_total_seconds": float("inf")},
        {"initial_wait": -1},
        {"max_retry_after": float("nan")},
    ],
)
def test_policy_without_a_stop_or_with_nonsense_is_refused(settings: dict[str, float]) -> None:
    """Every policy has a finite stop and sensible waits, checked at construction."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


def test_never_makes_one_attempt() -> None:
    """``RetryPolicy.never()`` tries exactly once, even for a retryable failure."""
    clock = FakeClock()
    with pytest.raises(ServerError):
        _run(RetryPolicy.never(), [ServerError(503)], clock)
    assert [] == clock.sleeps


# -- what retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_too_many(None), True),
        (ServerError(503), True),
        (ServerError(502), True),
        (ServerError(504), True),
        (ServerError(500), False),
        (BadRequestError(400), False),
        (NotFoundError(404), False),
        (ConflictResponseError(409, scim_type="uniqueness"), False),
        (_transport_error(httpx.ConnectError("refused")), True),
        (_transport_error(httpx.ReadTimeout("slow")), True),
        (_transport_error(httpx.RemoteProtocolError("dropped")), True),
        (_transport_error(httpx.ReadError("reset")), True),
        (_transport_error(httpx.UnsupportedProtocol("gopher")), False),
        (_transport_error(httpx.TooManyRedirects("loop")), False),
        (OutcomeUnknownError("lost", method="POST", url="https://x/Users"), False),
        (ValueError("bug"), False),
    ],
)
def test_should_retry_matrix(exc: BaseException, expected: bool) -> None:
    """Default policy: 429/502/503/504, connection faults and timeouts retry; the rest not."""
    assert expected == RetryPolicy().should_retry(exc)


def test_outcome_unknown_is_never_retried_even_with_a_retryable_cause() -> None:
    """A write whose outcome is unknown is the caller's to look up, whatever caused it."""
    unknown = OutcomeUnknownError("lost", method="POST", url="https://x/Users")
    unknown.__cause__ = httpx.ReadTimeout("slow")
    assert False is RetryPolicy().should_retry(unknown)


def test_retry_after_beyond_the_cap_fails_the_request() -> None:
    """A Retry-After longer than ``max_retry_after`` is not waited for: that request fails."""
    clock = FakeClock()
    policy = RetryPolicy(max_retry_after=60)
    with pytest.raises(TooManyRequestsError):
        _run(policy, [_too_many(3600)], clock)
    assert [] == clock.sleeps


# -- waits and stops ------------------------------------------------------------------------------


def test_retry_after_is_the_wait() -> None:
    """The wait after a 429 with Retry-After is exactly what the server asked for."""
    clock = FakeClock()
    assert 3 == _run(RetryPolicy(), [_too_many(7), _too_many(2)], clock)
    assert [7.0, 2.0] == clock.sleeps


def test_backoff_grows_and_is_capped() -> None:
    """Without Retry-After, waits double from ``initial_wait`` up to ``max_wait``."""
    clock = FakeClock()
    policy = RetryPolicy(
        max_attempts=6, initial_wait=1, multiplier=2, max_wait=5, jitter=0, max_total_seconds=999
    )
    assert 6 == _run(policy, [ServerError(503)] * 5, clock)
    assert [1.0, 2.0, 4.0, 5.0, 5.0] == clock.sleeps


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 4),
    max_wait=st.floats(0, 60),
    jitter=st.floats(0, 2),
    retry_number=st.integers(1, 30),
)
def test_backoff_stays_within_bounds(
    initial: float, multiplier: float, max_wait: float, jitter: float, retry_number: int
) -> None:
    """Every backoff wait lies in [0, max_wait + jitter]."""
    policy = RetryPolicy(
        initial_wait=initial, multiplier=multiplier, max_wait=max_wait, jitter=jitter
    )
    wait = policy.backoff(retry_number)
    assert True is (0 <= wait <= max_wait + jitter)


def test_attempts_stop_at_max_attempts() -> None:
    """After ``max_attempts`` failures the last error is raised, not a tenacity wrapper."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, jitter=0)
    with pytest.raises(ServerError) as caught:
        _run(policy, [ServerError(503), ServerError(502), ServerError(504)], clock)
    assert 504 == caught.value.status
    assert 2 == len(clock.sleeps)


def test_no_retry_starts_that_would_end_past_the_total_budget() -> None:
    """A wait that would pass ``max_total_seconds`` stops the retries before sleeping."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, max_total_seconds=10)
    with pytest.raises(TooManyRequestsError):
        _run(policy, [_too_many(6), _too_many(6)], clock)
    assert [6.0] == clock.sleeps


def test_on_retry_hook_receives_frozen_details() -> None:
    """Each retry calls the hooks with method, url, attempt, wait and cause."""
    clock = FakeClock()
    seen: list[RetryDetails] = []
    retrying = RetryPolicy(jitter=0, initial_wait=1).retrying(
        method="GET", url="https://x/Users", clock=clock, sleep=clock.sleep, on_retry=[seen.append]
    )
    attempts = 0
    for attempt in retrying:
        with attempt:
            attempts += 1
            if attempts == 1:
                raise _transport_error(httpx.ConnectError("refused"))
    expected = RetryDetails(
        method="GET",
        url="https://x/Users",
        attempt=1,
        wait_seconds=1.0,
        cause="ConnectError",
        elapsed_seconds=0.0,
    )
    assert [expected] == seen


def test_testing_switch_removes_every_wait() -> None:
    """Under ``no_waits()`` retries still happen, each with a zero wait; the switch resets."""
    clock = FakeClock()
    assert False is is_testing()
    with no_waits():
        assert True is is_testing()
        assert 3 == _run(RetryPolicy(), [_too_many(30), ServerError(503)], clock)
    assert False is is_testing()
    assert [0.0, 0.0] == clock.sleeps


def test_set_testing_is_a_plain_switch() -> None:
    """``set_testing`` turns the switch on and off."""
    set_testing(True)
    try:
        assert 0.0 == RetryPolicy().backoff(5)
    finally:
        set_testing(False)
    assert False is is_testing()


async def test_async_retrying_waits_with_the_given_sleep() -> None:
    """The async twin honours Retry-After through the injected async sleep."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    attempts = 0
    retrying = RetryPolicy().async_retrying(
        method="GET", url="https://x/Users", clock=clock, sleep=sleep
    )
    async for attempt in retrying:
        with attempt:
            attempts += 1
            if attempts == 1:
                raise _too_many(4)
    assert 2 == attempts
    assert [4.0] == clock.sleeps


def test_retrying_is_a_tenacity_object() -> None:
    """The policy builds tenacity's own retrying objects (tenacity lives in one module)."""
    retrying = RetryPolicy().retrying(
        method="GET", url="u", clock=FakeClock(), sleep=lambda _: None
    )
    assert isinstance(retrying, tenacity.Retrying)


# -- Retry-After ----------------------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Seconds and HTTP-date forms are read; a past date is 0; garbage is ignored."""
    assert expected == parse_retry_after(header, NOW)


@given(st.integers(0, 10**6))
def test_parse_retry_after_http_date_round_trips(seconds: int) -> None:
    """An HTTP-date ``seconds`` after now reads back as ``seconds``."""
    when = NOW + timedelta(seconds=seconds)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert float(seconds) == parse_retry_after(header, NOW)
