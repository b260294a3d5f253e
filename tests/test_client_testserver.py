"""The clients against ScimTestServer over loopback HTTP, with injected faults and quirks.

Each test starts its own server (in-memory, a thread, a free port) with a bearer
token, so faults and data never leak between tests. Waits are recorded, never slept.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync import Group, Member, User
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import (
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ServerError,
    UnauthorizedError,
)
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy
from scimsync.testing import Faults, Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

TOKEN = "test-server-token"


class Waits:
    """Records the waits a client asks for, in place of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def waits() -> Waits:
    return Waits()


def connect(server: ScimTestServer, waits: Waits, **options: Any) -> ScimClient:
    options.setdefault("retry", RetryPolicy(initial_wait=1, jitter=0))
    return ScimClient(server.url, auth=BearerToken(TOKEN), sleep=waits.sleep, **options)


def _users(n: int) -> list[dict[str, Any]]:
    return [
        {"schemas": [User.schema_urn], "userName": f"user{i:03d}", "externalId": f"e{i:03d}"}
        for i in range(n)
    ]


# -- retries --------------------------------------------------------------------------------------


def test_429_is_waited_out_for_retry_after(server: ScimTestServer, waits: Waits) -> None:
    """A create answered 429 (Retry-After: 3) waits 3 s, is sent again, and lands once."""
    server.faults = Faults(kinds=["429"], limit=1, retry_after=3)
    with connect(server, waits) as client:
        created = client.create(User(user_name="bjensen"))
    assert [3.0] == waits.seconds
    assert 2 == server.requests.count("POST", "/Users")
    assert [created.id] == [u.id for u in server.users()]


def test_503_with_an_http_date_is_waited_out(server: ScimTestServer, waits: Waits) -> None:
    """Retry-After as an HTTP-date is read relative to now."""
    server.add_user(_users(1)[0])
    server.faults = Faults(kinds=["503"], limit=1, retry_after=2, retry_after_http_date=True)
    with connect(server, waits) as client:
        listing = client.list_all(User)
    assert 1 == len(listing)
    assert 1 == len(waits.seconds)
    assert True is (0.0 <= waits.seconds[0] <= 3.0)


def test_reset_connections_and_proxy_pages_are_retried_for_reads(
    server: ScimTestServer, waits: Waits
) -> None:
    """A GET through a dropped connection and an HTML 502 still succeeds."""
    user = server.add_user(_users(1)[0])
    assert user.id is not None
    with connect(server, waits) as client:
        server.faults = Faults(kinds=["reset"], limit=1)
        assert user.id == client.get(User, user.id).id
        server.faults = Faults(kinds=["502"], limit=1)
        assert user.id == client.get(User, user.id).id
    assert [1.0, 1.0] == waits.seconds


def test_a_read_timeout_is_retried(server: ScimTestServer, waits: Waits) -> None:
    """A GET that never gets an answer times out (0.2 s) and is tried again."""
    user = server.add_user(_users(1)[0])
    assert user.id is not None
    server.faults = Faults(kinds=["timeout"], limit=1, methods=["GET"])
    with connect(server, waits, timeout=httpx.Timeout(0.2)) as client:
        assert user.id == client.get(User, user.id).id
    assert 2 == server.requests.count("GET", "/Users")


def test_a_cut_json_answer_is_an_invalid_response(server: ScimTestServer, waits: Waits) -> None:
    """Malformed JSON is an error, never an empty or partial resource: a read cut short
    is read again, and one cut short on every attempt raises."""
    user = server.add_user(_users(1)[0])
    assert user.id is not None
    server.faults = Faults(kinds=["malformed_json"], limit=1)
    with connect(server, waits) as client:
        assert user.id == client.get(User, user.id).id
    assert 2 == server.requests.count("GET", "/Users")
    server.faults = Faults(kinds=["malformed_json"])
    with connect(server, waits) as client, pytest.raises(InvalidResponseError):
        client.get(User, user.id)


# -- writes whose outcome is unknown --------------------------------------------------------------


@pytest.mark.parametrize("after_commit", ["reset", "502", "504"])
def test_commit_then_fail_is_outcome_unknown_and_the_lookup_finds_it(
    server: ScimTestServer, waits: Waits, after_commit: str
) -> None:
    """The create was applied but its answer lost: OutcomeUnknownError, then find_by finds it."""
    server.faults = Faults(kinds=["commit_then_fail"], limit=1, after_commit=after_commit)  # type: ignore[arg-type]
    with connect(server, waits) as client:
        with pytest.raises(OutcomeUnknownError):
            client.create(User(user_name="bjensen", external_id="hr-1"))
        found = client.find_by(User, "externalId", "hr-1")
    assert ["bjensen"] == [u.user_name for u in found]
    assert 1 == server.requests.count("POST", "/Users")
    assert 1 == len(server.users())


def test_commit_then_timeout_is_outcome_unknown(server: ScimTestServer, waits: Waits) -> None:
    """A create applied whose answer never comes is outcome-unknown after the read timeout."""
    server.faults = Faults(kinds=["commit_then_fail"], limit=1, after_commit="timeout")
    with (
        connect(server, waits, timeout=httpx.Timeout(0.2)) as client,
        pytest.raises(OutcomeUnknownError),
    ):
        client.create(User(user_name="bjensen"))
    assert 1 == len(server.users())
    assert [] == waits.seconds


def test_a_500_on_create_is_outcome_unknown_and_the_lookup_says_retry(
    server: ScimTestServer, waits: Waits
) -> None:
    """A 500 may or may not have applied: the lookup finds nothing, so creating again is safe."""
    server.faults = Faults(kinds=["500"], limit=1)
    with connect(server, waits) as client:
        with pytest.raises(OutcomeUnknownError):
            client.create(User(user_name="bjensen", external_id="hr-2"))
        assert () == client.find_by(User, "externalId", "hr-2")
        client.create(User(user_name="bjensen", external_id="hr-2"))
    assert ["bjensen"] == [u.user_name for u in server.users()]


def test_a_lost_patch_is_outcome_unknown(server: ScimTestServer, waits: Waits) -> None:
    """A PATCH applied whose answer was lost is not sent twice."""
    user = server.add_user(_users(1)[0])
    assert user.id is not None
    server.faults = Faults(kinds=["commit_then_fail"], limit=1, methods=["PATCH"])
    with connect(server, waits) as client, pytest.raises(OutcomeUnknownError):
        client.patch(User, user.id, [PatchOperation(op="replace", path="title", value="Boss")])
    assert 1 == server.requests.count("PATCH", "/Users")
    assert "Boss" == (server.user(user.id) or User()).title


# -- listings -------------------------------------------------------------------------------------


def test_short_pages_still_give_a_whole_listing(server: ScimTestServer, waits: Waits) -> None:
    """Pages shorter than asked for advance by what they held: every user, once."""
    server.seed(users=_users(45))
    server.faults = Faults(kinds=["short_page"])
    with connect(server, waits) as client:
        listing = client.list_all(User, page_size=10)
    assert (True, 45) == (listing.complete, len(listing))
    assert {f"user{i:03d}" for i in range(45)} == {u.user_name for u in listing}
    assert True is (listing.pages > 5)


def test_page_drift_is_reported_as_incomplete(server: ScimTestServer, waits: Waits) -> None:
    """Resources inserted or removed mid-listing make it incomplete, never silently short."""
    server.seed(users=_users(30))
    server.faults = Faults(kinds=["page_drift"], seed=3)
    with connect(server, waits) as client:
        listing = client.list_all(User, page_size=10)
    ids = [u.id for u in listing]
    assert False is listing.complete
    assert len(set(ids)) == len(ids)
    assert None is not listing.problem


def test_filters_and_search_against_the_test_server(server: ScimTestServer, waits: Waits) -> None:
    """GET filters, POST /.search and lookups by externalId agree with the data."""
    server.seed(users=_users(12))
    with connect(server, waits) as client:
        by_get = client.find(User, 'userName sw "user00"')
        by_search = client.search(User, filter='userName sw "user00"', page_size=4)
        one = client.find_by(User, "externalId", "e011")
    assert 10 == len(by_get) == len(by_search)
    assert (True, 3) == (by_search.complete, by_search.pages)
    assert ["user011"] == [u.user_name for u in one]


# -- quirks, auth, versions -----------------------------------------------------------------------


def test_a_target_without_patch_says_so(waits: Waits) -> None:
    """With PATCH unsupported, capabilities say so and a PATCH is a plain 501 ServerError."""
    with ScimTestServer(token=TOKEN, quirks=Quirks(patch_supported=False)) as server:
        user = server.add_user(_users(1)[0])
        assert user.id is not None
        with connect(server, waits) as client:
            assert False is client.capabilities().patch
            with pytest.raises(ServerError) as caught:
                client.patch(User, user.id, [PatchOperation(op="remove", path="title")])
    assert 501 == caught.value.status


def test_member_caps_answer_413(waits: Waits) -> None:
    """Too many members in one operation is PayloadTooLargeError, not retried."""
    with ScimTestServer(token=TOKEN, quirks=Quirks(max_members_per_patch_operation=2)) as server:
        users, (group,) = server.seed(
            users=_users(3), groups=[{"schemas": [Group.schema_urn], "displayName": "ops"}]
        )
        assert group.id is not None
        members = [Member(value=u.id) for u in users]
        with connect(server, waits, max_members_per_operation=2) as client:
            assert 2 == client.capabilities().max_members_per_operation
            with pytest.raises(PayloadTooLargeError):
                client.patch(
                    Group, group.id, [PatchOperation(op="add", path="members", value=members)]
                )
    assert 1 == server.requests.count("PATCH", "/Groups")


def test_a_wrong_token_is_unauthorized(server: ScimTestServer, waits: Waits) -> None:
    """The server refuses another token: UnauthorizedError, once."""
    with (
        ScimClient(server.url, auth=BearerToken("not-the-token")) as client,
        pytest.raises(UnauthorizedError),
    ):
        client.schemas()
    assert 1 == len(server.requests)


def test_versions_guard_replace_and_delete(server: ScimTestServer, waits: Waits) -> None:
    """ETags from the target guard PUT; a stale version is refused with 412."""
    with connect(server, waits) as client:
        created = client.create(User(user_name=f"v-{uuid.uuid4().hex[:6]}"))
        assert created.id is not None
        client.patch(User, created.id, [PatchOperation(op="replace", path="title", value="x")])
        with pytest.raises(PreconditionFailedError):
            client.replace(created)
        fresh = client.get(User, created.id)
        client.delete(User, created.id, version=fresh.meta.version if fresh.meta else None)
        with pytest.raises(NotFoundError):
            client.get(User, created.id)


# -- the async twin -------------------------------------------------------------------------------


async def test_async_client_rides_out_faults(server: ScimTestServer, waits: Waits) -> None:
    """429, commit-then-fail and short pages, through the async client."""
    server.seed(users=_users(25))
    async with AsyncScimClient(
        server.url,
        auth=BearerToken(TOKEN),
        sleep=waits.async_sleep,
        retry=RetryPolicy(jitter=0),
        max_concurrency=4,
    ) as client:
        server.faults = Faults(kinds=["429"], limit=1, retry_after=2)
        created = await client.create(User(user_name="async-1"))
        server.faults = Faults(kinds=["commit_then_fail"], limit=1)
        with pytest.raises(OutcomeUnknownError):
            await client.create(User(user_name="async-2", external_id="x-2"))
        assert 1 == len(await client.find_by(User, "externalId", "x-2"))
        server.faults = Faults(kinds=["short_page"])
        listing = await client.list_all(User, page_size=7)
    assert created.id is not None
    assert [2.0] == waits.seconds
    assert (True, 27) == (listing.complete, len(listing))
