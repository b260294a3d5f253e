"""Hostile and broken targets over real loopback HTTP, for both clients.

Each test starts a small server on 127.0.0.1 that misbehaves on purpose (an endless
body, a body dripping in slowly, ...) and pins what the client does about it. Servers
are bounded: bodies are lazy generators, drips are a few milliseconds apart, and no
assertion reads a wall clock.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from typing import TYPE_CHECKING

import httpx
import pytest

from _mock_target import BASE, MockTarget
from _servers import Reply, Request, ScriptedServer, Stream
from scimsync import User
from scimsync.client import DEFAULT_MAX_RESPONSE_BYTES, AsyncScimClient, ScimClient
from scimsync.errors import (
    ConfigurationError,
    IncompleteListingError,
    InvalidResponseError,
    OutcomeUnknownError,
    ServerError,
    TransportError,
)
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy, no_waits

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
#: What a hostile target offers to send: far more than any client here may read.
OFFERED = 200 * MiB


def _huge_user(total: int = OFFERED, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON user whose ``title`` runs on for ``total`` bytes, produced lazily."""
    yield b'{"id": "u-1", "userName": "bjensen", "title": "'
    for _ in range(total // chunk):
        yield b"x" * chunk
    yield b'"}'


def _endless_page() -> Iterator[bytes]:
    yield b"<html><body>Internal error "
    yield from itertools.repeat(b"y" * 4096)


def _serve(stream: Callable[[], Stream]) -> ScriptedServer:
    """A server answering every request with a fresh ``stream()``."""

    def script(request: Request) -> Stream:
        return stream()

    return ScriptedServer(script)


# -- the response-size cap ------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_without_reading_the_rest() -> None:
    """200 MB offered, 1 MiB allowed: InvalidResponseError naming the limit; most never sent."""
    with (
        _serve(lambda: Stream(_huge_user())) as server,
        ScimClient(f"{server.url}/v2", max_response_bytes=MiB) as client,
        pytest.raises(InvalidResponseError) as caught,
    ):
        client.get(User, "u-1")
    assert True is (f"over the {MiB} bytes allowed" in str(caught.value))
    assert True is ("max_response_bytes" in str(caught.value))
    # The client hung up after about 1 MiB; only socket buffers' worth more left.
    assert True is (server.streamed < 32 * MiB)


async def test_the_async_client_refuses_a_body_over_the_cap_too() -> None:
    """The async twin stops reading at the same limit."""
    with _serve(lambda: Stream(_huge_user())) as server:
        async with AsyncScimClient(f"{server.url}/v2", max_response_bytes=MiB) as client:
            with pytest.raises(InvalidResponseError) as caught:
                await client.get(User, "u-1")
    assert True is ("max_response_bytes" in str(caught.value))
    assert True is (server.streamed < 32 * MiB)


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    """A Content-Length above the cap fails at once: the body is not read at all."""
    stream = Stream(_huge_user(), headers={"Content-Length": str(OFFERED + 64)})
    with (
        _serve(lambda: stream) as server,
        ScimClient(f"{server.url}/v2", max_response_bytes=MiB) as client,
        pytest.raises(InvalidResponseError),
    ):
        client.get(User, "u-1")
    assert True is (server.streamed < 32 * MiB)


def test_an_endless_error_page_is_cut_to_an_excerpt() -> None:
    """A 500 whose HTML never ends is a ServerError with the page's start; it is not read on."""
    stream = Stream(_endless_page(), status=500, headers={"Content-Type": "text/html"})
    with (
        _serve(lambda: stream) as server,
        ScimClient(f"{server.url}/v2", retry=RetryPolicy.never()) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.get(User, "u-1")
    assert True is caught.value.body_excerpt.startswith("<html><body>Internal error yyy")
    assert True is (server.streamed < 32 * MiB)


async def test_the_async_client_cuts_an_endless_error_page_too() -> None:
    """The async twin reads an error body only as far as the sync one."""
    stream = Stream(_endless_page(), status=500, headers={"Content-Type": "text/html"})
    with _serve(lambda: stream) as server:
        async with AsyncScimClient(f"{server.url}/v2", retry=RetryPolicy.never()) as client:
            with pytest.raises(ServerError) as caught:
                await client.get(User, "u-1")
    assert True is caught.value.body_excerpt.startswith("<html><body>Internal error yyy")
    assert True is (server.streamed < 32 * MiB)


def test_a_body_of_exactly_the_cap_is_read() -> None:
    """The cap is inclusive: a body of exactly ``max_response_bytes`` bytes is accepted."""
    body = b'{"id": "u-1", "userName": "bjensen"}'
    target = MockTarget()
    target.on("GET", "/v2/Users/u-1", httpx.Response(200, content=body))
    exact = ScimClient(
        BASE, http=httpx.Client(transport=target.transport()), max_response_bytes=len(body)
    )
    short = ScimClient(
        BASE, http=httpx.Client(transport=target.transport()), max_response_bytes=len(body) - 1
    )
    assert "u-1" == exact.get(User, "u-1").id
    with pytest.raises(InvalidResponseError):
        short.get(User, "u-1")


@pytest.mark.parametrize("value", [0, -1, 1.5, "32MiB"])
def test_a_cap_that_cannot_work_is_refused(value: object) -> None:
    """``max_response_bytes`` is a positive integer; anything else fails at construction."""
    with pytest.raises(ConfigurationError):
        ScimClient(BASE, max_response_bytes=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        AsyncScimClient(BASE, max_response_bytes=value)  # type: ignore[arg-type]


def test_the_default_cap_is_32_mib() -> None:
    """Without a setting, 32 MiB: far above any SCIM page, far below what hurts."""
    assert 32 * MiB == DEFAULT_MAX_RESPONSE_BYTES


# -- the deadline of a request ------------------------------------------------------------------

#: Short enough for a quick test, long enough for a loopback answer to come back whole.
DEADLINE = 0.3


def _drip(chunks: int = 2000) -> Iterator[bytes]:
    """A user body that would take ``chunks`` drips to arrive: one byte at a time."""
    yield b'{"id": "u-1", "userName": "bjensen", "title": "'
    yield from itertools.repeat(b"x", chunks)
    yield b'"}'


def _dripping(status: int = 200) -> Stream:
    """One byte every 10 ms: every read succeeds, the whole body would take 20 s."""
    return Stream(_drip(), status=status, interval=0.01)


@contextlib.contextmanager
def _stalled() -> Iterator[ScriptedServer]:
    """A server that sends its headers, then nothing until the test is over."""
    release = threading.Event()

    def body() -> Iterator[bytes]:
        release.wait(30)
        yield b"{}"

    try:
        with _serve(lambda: Stream(body())) as server:
            yield server
    finally:
        release.set()


def test_a_dripping_answer_ends_at_the_request_deadline() -> None:
    """Each byte comes within the read timeout, yet the attempt ends at the deadline."""
    with (
        _serve(_dripping) as server,
        ScimClient(
            f"{server.url}/v2", request_deadline=DEADLINE, retry=RetryPolicy.never()
        ) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.get(User, "u-1")
    assert False is isinstance(caught.value, OutcomeUnknownError)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert True is (f"within {DEADLINE:g} s (request_deadline)" in str(caught.value))


def test_a_dripping_answer_to_a_write_is_outcome_unknown() -> None:
    """A POST sent, then answered too slowly: it may have been applied, as for a lost answer."""
    with (
        _serve(lambda: _dripping(201)) as server,
        ScimClient(f"{server.url}/v2", request_deadline=DEADLINE) as client,
        pytest.raises(OutcomeUnknownError) as caught,
    ):
        client.create(User(user_name="bjensen"))
    assert 1 == len(server.requests)
    assert True is ("request_deadline" in str(caught.value))


def test_a_stalled_answer_ends_at_the_deadline_not_the_read_timeout() -> None:
    """A read that never returns is cut by the timeouts, themselves cut to the deadline."""
    with (
        _stalled() as server,
        ScimClient(
            f"{server.url}/v2",
            timeout=30,
            request_deadline=DEADLINE,
            retry=RetryPolicy.never(),
        ) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.get(User, "u-1")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_max_total_seconds_bounds_the_retries_of_a_dripping_target() -> None:
    """Retried timeouts stop within the policy's budget, however long each deadline is."""
    policy = RetryPolicy(max_attempts=50, max_total_seconds=DEADLINE)
    with (
        _serve(_dripping) as server,
        no_waits(),
        ScimClient(f"{server.url}/v2", request_deadline=30, retry=policy) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.get(User, "u-1")
    assert True is ("max_total_seconds" in str(caught.value))
    assert True is (len(server.requests) <= 2)


async def test_the_async_client_ends_a_dripping_answer_at_the_deadline() -> None:
    """The async twin bounds the whole exchange the same way."""
    with _serve(_dripping) as server:
        async with AsyncScimClient(
            f"{server.url}/v2", request_deadline=DEADLINE, retry=RetryPolicy.never()
        ) as client:
            with pytest.raises(TransportError) as caught:
                await client.get(User, "u-1")
    assert False is isinstance(caught.value, OutcomeUnknownError)
    assert True is (f"within {DEADLINE:g} s (request_deadline)" in str(caught.value))


async def test_the_async_client_ends_a_stalled_write_as_outcome_unknown() -> None:
    """A stalled answer to a PATCH: OutcomeUnknownError once the deadline passes."""
    with _stalled() as server:
        async with AsyncScimClient(
            f"{server.url}/v2", timeout=30, request_deadline=DEADLINE
        ) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.patch(User, "u-1", [PatchOperation(op="remove", path="title")])
    assert 1 == len(server.requests)


async def test_the_async_client_bounds_retries_by_max_total_seconds() -> None:
    """The async twin's retries also end within the policy's budget."""
    policy = RetryPolicy(max_attempts=50, max_total_seconds=DEADLINE)
    with _serve(_dripping) as server, no_waits():
        async with AsyncScimClient(f"{server.url}/v2", request_deadline=30, retry=policy) as client:
            with pytest.raises(TransportError) as caught:
                await client.get(User, "u-1")
    assert True is ("max_total_seconds" in str(caught.value))
    assert True is (len(server.requests) <= 2)


# -- answers for another resource ---------------------------------------------------------------


def _other_user(request: Request) -> Reply:
    """Whatever id is asked for, answer with u-2."""
    return Reply(200, {"id": "u-2", "userName": "mallory"})


def test_a_get_answered_with_another_id_is_refused() -> None:
    """GET /Users/u-1 answered with u-2 is an InvalidResponseError, never u-1's state."""
    with (
        ScriptedServer(_other_user) as server,
        ScimClient(f"{server.url}/v2") as client,
        pytest.raises(InvalidResponseError) as caught,
    ):
        client.get(User, "u-1")
    assert True is ("asked for 'u-1', answered 'u-2'" in str(caught.value))


async def test_the_async_client_refuses_an_answer_with_another_id() -> None:
    """The async twin checks the id of a dict resource the same way."""
    with ScriptedServer(_other_user) as server:
        async with AsyncScimClient(f"{server.url}/v2") as client:
            with pytest.raises(InvalidResponseError) as caught:
                await client.get("/Devices", "u-1")
    assert True is ("asked for 'u-1', answered 'u-2'" in str(caught.value))


@pytest.mark.parametrize(
    ("asked", "body"),
    [
        ("u-1", {"userName": "bjensen"}),
        ("42", {"id": 42, "userName": "bjensen"}),
        ("u-1", {"ID": "u-1", "userName": "bjensen"}),
    ],
)
def test_an_answer_without_another_id_is_taken(asked: str, body: dict[str, object]) -> None:
    """No id at all, a numeric id equal to the one asked, or ``ID`` in capitals: accepted."""
    target = MockTarget()
    target.on("GET", f"/v2/Devices/{asked}", httpx.Response(200, json=body))
    client = ScimClient(BASE, http=httpx.Client(transport=target.transport()))
    assert body == client.get("/Devices", asked)


# -- listings that never end --------------------------------------------------------------------


class EndlessListing:
    """Every page holds ids never seen before, under ``totalResults`` 10**9."""

    def __init__(self) -> None:
        self.pages = 0

    def __call__(self, request: Request) -> Reply:
        self.pages += 1
        ids = [f"p{self.pages}-{n}" for n in range(10)]
        resources = [{"id": i, "userName": i} for i in ids]
        return Reply(200, {"totalResults": 10**9, "Resources": resources})


def test_a_listing_that_never_ends_is_stopped_and_incomplete() -> None:
    """Paged to max_listing_pages, then stopped: incomplete, and iter_all raises."""
    endless = EndlessListing()
    with (
        ScriptedServer(endless) as server,
        ScimClient(f"{server.url}/v2", max_listing_pages=4) as client,
    ):
        listing = client.list_all(User, page_size=10)
        with pytest.raises(IncompleteListingError):
            for _ in client.iter_all(User, page_size=10):
                pass
    assert (False, 40, 4) == (listing.complete, len(listing), listing.pages)
    assert True is ("set max_listing_pages on the client" in (listing.problem or ""))
    assert 8 == endless.pages


async def test_the_async_client_stops_a_listing_that_never_ends() -> None:
    """The async twin stops at max_listing_resources."""
    endless = EndlessListing()
    with ScriptedServer(endless) as server:
        async with AsyncScimClient(f"{server.url}/v2", max_listing_resources=25) as client:
            listing = await client.list_all(User, page_size=10)
    assert (False, 30, 3) == (listing.complete, len(listing), listing.pages)
    assert True is ("set max_listing_resources on the client" in (listing.problem or ""))


@pytest.mark.parametrize("limits", [{"max_listing_pages": 0}, {"max_listing_resources": 2.5}])
def test_listing_limits_that_cannot_work_are_refused(limits: dict[str, object]) -> None:
    """The clients check their listing limits at construction."""
    with pytest.raises(ConfigurationError):
        ScimClient(BASE, **limits)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        AsyncScimClient(BASE, **limits)  # type: ignore[arg-type]


# -- targets that leave out totalResults --------------------------------------------------------

SCHEMAS = [{"id": "urn:x:User", "name": "User", "attributes": []}]
RESOURCE_TYPES = [{"id": "User", "name": "User", "endpoint": "/Users", "schema": "urn:x:User"}]
USERS = [{"id": f"u-{n}", "userName": f"user{n}"} for n in range(5)]


def loose_target(request: Request) -> Reply:
    """A target shaped like a popular Django SCIM provider: no totalResults anywhere,
    a bare array for /ResourceTypes, pages capped at 2, a user answered without id."""
    path, _, query = request.path.partition("?")
    if path == "/v2/Schemas":
        return Reply(200, {"Resources": SCHEMAS})
    if path == "/v2/ResourceTypes":
        return Reply(200, RESOURCE_TYPES)
    if path == "/v2/Users":
        params = dict(pair.split("=", 1) for pair in query.split("&"))
        start = int(params["startIndex"])
        return Reply(200, {"Resources": USERS[start - 1 : start + 1]})
    return Reply(200, {"userName": "user9"})


EXPECTED_DEVIATIONS = (
    "GET /Schemas: ListResponse without totalResults (RFC 7644 §3.4.2)",
    "GET /ResourceTypes: a JSON array instead of a ListResponse (RFC 7644 §4)",
    "GET /Users: ListResponse without totalResults (RFC 7644 §3.4.2)",
    "GET /Users/{id}: a resource without its id (RFC 7643 §3.1)",
)


def test_a_target_without_total_results_is_read_and_its_deviations_noted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Discovery and listings without totalResults are read; each deviation is noted once."""
    with ScriptedServer(loose_target) as server, ScimClient(f"{server.url}/v2") as client:
        assert ["urn:x:User"] == [schema.id for schema in client.schemas()]
        assert ["/Users"] == [kind.endpoint for kind in client.resource_types()]
        for _ in range(2):
            listing = client.list_all(User, page_size=10)
        assert "user9" == client.get(User, "u-9").user_name
        assert EXPECTED_DEVIATIONS == client.deviations
    assert [u["id"] for u in USERS] == [user.id for user in listing]
    assert (True, None) == (listing.complete, listing.total_results)
    assert 1 == len(listing.deviations)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert 4 == len(warned)


async def test_the_async_client_reads_a_target_without_total_results() -> None:
    """The async twin reads the same target the same way and notes the same deviations."""
    with ScriptedServer(loose_target) as server:
        async with AsyncScimClient(f"{server.url}/v2") as client:
            await client.schemas()
            await client.resource_types()
            listed = [user.id async for user in client.iter_all(User, page_size=10)]
            await client.get(User, "u-9")
            assert EXPECTED_DEVIATIONS == client.deviations
    assert [u["id"] for u in USERS] == listed
