"""AsyncScimClient against httpx.MockTransport: the twin of ``test_client.py``.

Behaviour is shared with the sync client through the pure base; these tests pin that
the async shell sends, retries, limits and reports exactly like the sync one.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from _mock_target import BASE, MockTarget, json_response, scim_error
from scimsync import Group, User
from scimsync.client import AsyncScimClient, RateLimiter, RequestDetails, ServiceCapabilities
from scimsync.errors import (
    ConfigurationError,
    ConflictResponseError,
    IncompleteListingError,
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    TransportError,
)
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

USER_JSON = {"id": "u-1", "userName": "bjensen", "meta": {"version": 'W/"1"'}}


class Recorder:
    """An injected clock and async sleep: time moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    target: MockTarget, recorder: Recorder | None = None, **options: Any
) -> AsyncScimClient:
    recorder = recorder or Recorder()
    options.setdefault("retry", RetryPolicy(jitter=0))
    return AsyncScimClient(
        BASE,
        http=httpx.AsyncClient(transport=target.async_transport()),
        sleep=recorder.sleep,
        clock=recorder.clock,
        **options,
    )


@pytest.fixture
def target() -> MockTarget:
    return MockTarget()


def _page(ids: list[str], total: int) -> httpx.Response:
    return json_response(
        200, {"totalResults": total, "Resources": [{"id": i, "userName": i} for i in ids]}
    )


async def test_a_page_that_cannot_be_read_ends_the_listing_incomplete(
    target: MockTarget,
) -> None:
    """As the sync client: page 2 failing on every attempt leaves page 1 and a listing
    that says it is short; a first page failing for good raises."""
    target.on("GET", "/v2/Users", _page(["a"], 2), scim_error(503))
    async with make_client(target) as client:
        listing = await client.list_all(User, page_size=1)
    assert (["a"], False) == ([u.id for u in listing], listing.complete)
    target.on("GET", "/v2/Users", scim_error(500))
    async with make_client(target) as client:
        with pytest.raises(ServerError):
            await client.list_all(User)


async def test_crud_round(target: MockTarget) -> None:
    """create, get, patch (204), replace and delete send what the sync client sends."""
    target.on("POST", "/v2/Users", json_response(201, USER_JSON))
    target.on("GET", "/v2/Users/u-1", json_response(200, USER_JSON))
    target.on("PATCH", "/v2/Users/u-1", httpx.Response(204))
    target.on("PUT", "/v2/Users/u-1", json_response(200, USER_JSON))
    target.on("DELETE", "/v2/Users/u-1", httpx.Response(204))
    async with make_client(target, etags=True) as client:
        created = await client.create(User(user_name="bjensen"))
        fetched = await client.get(User, created.id or "")
        patched = await client.patch(
            User, "u-1", [PatchOperation(op="replace", path="active", value=True)]
        )
        replaced = await client.replace(fetched)
        await client.delete(User, "u-1")
    assert ("u-1", "u-1", None, "u-1") == (created.id, fetched.id, patched, replaced.id)
    assert ["POST", "GET", "PATCH", "PUT", "DELETE"] == [r.method for r in target.requests]
    assert 'W/"1"' == target.sent("PUT")[0].headers["If-Match"]
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen",
    } == json.loads(target.requests[0].content)


async def test_dict_resources_with_an_endpoint(target: MockTarget) -> None:
    """Other resource types are dicts at their endpoint, as in the sync client."""
    target.on("GET", "/v2/Devices/d-1", json_response(200, {"id": "d-1"}))
    assert {"id": "d-1"} == await make_client(target).get("/Devices", "d-1")


async def test_errors_map_as_in_the_sync_client(target: MockTarget) -> None:
    """404 and 409 uniqueness keep their classes and scimType; HTML is InvalidResponseError."""
    target.on("GET", "/v2/Users/nope", scim_error(404))
    target.on("POST", "/v2/Users", scim_error(409, "uniqueness"))
    target.on("GET", "/v2/Groups/g", httpx.Response(200, text="<html>proxy</html>"))
    client = make_client(target)
    with pytest.raises(NotFoundError):
        await client.get(User, "nope")
    with pytest.raises(ConflictResponseError) as caught:
        await client.create(User(user_name="taken"))
    assert "uniqueness" == caught.value.scim_type
    with pytest.raises(InvalidResponseError):
        await client.get(Group, "g")


async def test_get_retries_with_the_async_sleep(target: MockTarget) -> None:
    """503 then 429 (Retry-After: 3) then success: waits 1 s then 3 s, through the async sleep."""
    limited = json_response(429, {}, {"Retry-After": "3"})
    target.on("GET", "/v2/Users/u-1", scim_error(503), limited, json_response(200, USER_JSON))
    recorder = Recorder()
    client = make_client(target, recorder, retry=RetryPolicy(initial_wait=1, jitter=0))
    assert "u-1" == (await client.get(User, "u-1")).id
    assert [1.0, 3.0] == recorder.sleeps


@pytest.mark.parametrize(
    "answer", [scim_error(502), httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteError]
)
async def test_create_with_unknown_outcome_is_never_retried(
    target: MockTarget, answer: httpx.Response | type[httpx.RequestError]
) -> None:
    """A POST answered 5xx, or lost after sending, raises OutcomeUnknownError after one try."""
    target.on("POST", "/v2/Users", answer, json_response(201, USER_JSON))
    with pytest.raises(OutcomeUnknownError):
        await make_client(target).create(User(user_name="bjensen"))
    assert 1 == len(target.requests)


async def test_create_retries_when_it_could_not_connect(target: MockTarget) -> None:
    """ConnectError means nothing was sent: the POST is retried."""
    target.on("POST", "/v2/Users", httpx.ConnectError, json_response(201, USER_JSON))
    assert "u-1" == (await make_client(target).create(User(user_name="b"))).id
    assert 2 == len(target.requests)


async def test_transport_errors_run_out_as_transport_error(target: MockTarget) -> None:
    """A GET that never connects ends as TransportError once attempts run out."""
    target.on("GET", "/v2/Users/u-1", httpx.ConnectError)
    with pytest.raises(TransportError):
        await make_client(target, retry=RetryPolicy(max_attempts=2, jitter=0)).get(User, "u-1")
    assert 2 == len(target.requests)


async def test_list_all_and_iter_all(target: MockTarget) -> None:
    """Pages are followed by what they returned; a short listing is flagged or raised."""
    target.on("GET", "/v2/Users", _page(["a", "b"], 5), _page(["c"], 5), _page([], 5))
    client = make_client(target)
    listing = await client.list_all(User, page_size=2)
    assert (["a", "b", "c"], False, 3) == ([u.id for u in listing], listing.complete, listing.pages)
    assert ["1", "3", "4"] == [r.url.params["startIndex"] for r in target.requests]

    target.on("GET", "/v2/Users", _page(["a", "b"], 3), _page(["a", "b"], 3))
    seen: list[str | None] = []

    async def consume() -> None:
        async for user in client.iter_all(User, page_size=2):
            seen.append(user.id)  # noqa: PERF401 - keeps what came before the error

    with pytest.raises(IncompleteListingError):
        await consume()
    assert ["a", "b"] == seen


async def test_find_and_search(target: MockTarget) -> None:
    """find GETs with the filter, search POSTs to /.search; both return whole listings."""
    target.on("GET", "/v2/Users", _page(["a"], 1))
    target.on("POST", "/v2/Groups/.search", _page(["g"], 1))
    client = make_client(target)
    found = await client.find_by(User, "externalId", "e-1")
    searched = await client.search(Group, filter='displayName eq "ops"')
    assert (["a"], ["g"]) == ([u.id for u in found], [g.id for g in searched])
    assert 'externalId eq "e-1"' == target.requests[0].url.params["filter"]
    assert 'displayName eq "ops"' == json.loads(target.requests[1].content)["filter"]


async def test_discovery_is_cached(target: MockTarget) -> None:
    """ServiceProviderConfig is fetched once; capabilities come from it."""
    target.on(
        "GET",
        "/v2/ServiceProviderConfig",
        json_response(200, {"patch": {"supported": True}, "etag": {"supported": False}}),
    )
    client = make_client(target)
    assert ServiceCapabilities(patch=True) == await client.capabilities()
    await client.service_provider_config()
    assert 1 == len(target.requests)


async def test_max_concurrency_caps_requests_in_flight() -> None:
    """With ``max_concurrency=4``, no more than 4 requests are ever in flight at once."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):  # hand the loop to the other tasks
            await asyncio.sleep(0)
        in_flight -= 1
        return json_response(201, USER_JSON)

    client = AsyncScimClient(
        BASE, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), max_concurrency=4
    )
    await asyncio.gather(*(client.create(User(user_name=f"u{i}")) for i in range(20)))
    assert 4 == peak


async def test_max_concurrency_must_be_positive() -> None:
    """A concurrency limit below 1 could never send: refused."""
    with pytest.raises(ConfigurationError):
        AsyncScimClient(BASE, max_concurrency=0)


async def test_rate_limiter_and_hooks(target: MockTarget) -> None:
    """The shared rate limiter spaces requests; on_request sees each attempt."""
    target.on("GET", "/v2/Users/u-1", json_response(200, USER_JSON))
    recorder = Recorder()
    seen: list[RequestDetails] = []
    client = make_client(target, recorder, rate_limiter=RateLimiter(2.0), on_request=[seen.append])
    for _ in range(3):
        await client.get(User, "u-1")
    assert [0.5, 0.5] == recorder.sleeps
    assert [200, 200, 200] == [d.status for d in seen]


async def test_owned_http_client_is_closed() -> None:
    """A client built from a base URL closes its own httpx client on exit."""
    async with AsyncScimClient(BASE) as client:
        http = client._http
    assert True is http.is_closed


def test_the_twins_offer_the_same_operations() -> None:
    """Every public method of ScimClient exists on AsyncScimClient (close is aclose)."""
    from scimsync.client import ScimClient

    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(ScimClient) - {"close"} == public(AsyncScimClient) - {"aclose"}


async def _ticking_body(recorder: Recorder, chunks: int) -> AsyncIterator[bytes]:
    """A user body whose every chunk takes one second on ``recorder``'s clock."""
    yield b'{"id": "u-1", "userName": "bjensen", "title": "'
    for _ in range(chunks):
        recorder.now += 1.0
        yield b"x"
    yield b'"}'


async def test_an_answer_slower_than_the_deadline_is_a_timeout(target: MockTarget) -> None:
    """As in the sync client: a body still arriving past the deadline ends the attempt."""
    recorder = Recorder()
    target.on(
        "GET",
        "/v2/Users/u-1",
        lambda request: httpx.Response(200, content=_ticking_body(recorder, 10)),
    )
    client = make_client(target, recorder, retry=RetryPolicy.never(), request_deadline=2.5)
    with pytest.raises(TransportError) as caught:
        await client.get(User, "u-1")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert True is ("within 2.5 s (request_deadline)" in str(caught.value))


async def test_each_attempt_is_cut_to_what_is_left_of_max_total_seconds(
    target: MockTarget,
) -> None:
    """As in the sync client: the third attempt, 8 s in, gets the 2 s left of the budget."""
    target.on("GET", "/v2/Users/u-1", scim_error(503))
    recorder = Recorder()
    policy = RetryPolicy(
        max_attempts=10, max_total_seconds=10, initial_wait=4, multiplier=1, jitter=0
    )
    client = make_client(target, recorder, retry=policy, request_deadline=30)
    with pytest.raises(ServerError):
        await client.get(User, "u-1")
    reads = [request.extensions["timeout"]["read"] for request in target.requests]
    assert [5.0, 5.0, 2.0] == reads


async def test_a_deadline_that_cannot_work_is_refused() -> None:
    """``request_deadline`` is checked by the async twin too."""
    with pytest.raises(ConfigurationError):
        AsyncScimClient(BASE, request_deadline=0)


# -- answers that are not what was asked for ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "call", "expected"),
    [
        ("GET", "/v2/Users/u-1", lambda c: c.get(User, "u-1"), "a User"),
        ("GET", "/v2/Users", lambda c: c.list_all(User), "a ListResponse"),
        ("POST", "/v2/Users", lambda c: c.create(User(user_name="bjensen")), "a User"),
        (
            "PUT",
            "/v2/Users/u-1",
            lambda c: c.replace(User(id="u-1", user_name="bjensen")),
            "a User",
        ),
        (
            "PATCH",
            "/v2/Users/u-1",
            lambda c: c.patch(User, "u-1", [PatchOperation(op="replace", path="title", value="x")]),
            "a User",
        ),
    ],
)
async def test_a_success_answering_a_scim_error_says_so(
    target: MockTarget, method: str, path: str, call: Any, expected: str
) -> None:
    """As the sync client: a 200 whose body is a SCIM Error is an InvalidResponseError
    that says so, with the target's status and detail, never a success."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "400",
        "detail": "backend unavailable",
    }
    target.on(method, path, json_response(200, body))
    with pytest.raises(InvalidResponseError) as caught:
        await call(make_client(target, retry=RetryPolicy.never()))
    assert (
        f"answered 200, a success, with a SCIM Error (status 400) where {expected} was "
        "expected: backend unavailable"
    ) in str(caught.value)


async def test_json_null_says_what_came_back(target: MockTarget) -> None:
    """As the sync client: JSON null where a listing belongs says so."""
    target.on("GET", "/v2/Users", httpx.Response(200, content=b"null"))
    with pytest.raises(
        InvalidResponseError, match="answered 200 with JSON null, not a ListResponse"
    ):
        await make_client(target).list_all(User)
