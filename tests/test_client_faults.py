"""Faults over real loopback HTTP: lost answers after a commit, 429/502, short pages.

A stdlib server plays the misbehaving target (``tests/_servers.ScriptedServer``), so
the client's sockets, timeouts and connection handling are the real ones.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from _servers import Drop, Reply, Request, ScriptedServer
from scimsync import Group, User
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.errors import IncompleteListingError, OutcomeUnknownError, ServerError
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy, no_waits

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


class CommitThenDrop:
    """A /Users store whose first POST commits, then drops the connection unanswered."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.drops_left = 1

    def __call__(self, request: Request) -> Reply | Drop:
        if request.method == "POST" and request.path == "/v2/Users":
            user = {**request.json(), "id": uuid.uuid4().hex}
            self.users[user["id"]] = user
            if self.drops_left:
                self.drops_left -= 1
                return Drop()
            return Reply(201, user)
        if request.method == "GET" and request.path.startswith("/v2/Users?"):
            resources = list(self.users.values())
            return Reply(200, {"totalResults": len(resources), "Resources": resources})
        return Reply(404, {"status": "404"})


def test_lost_create_answer_is_outcome_unknown_and_the_lookup_finds_it() -> None:
    """The POST committed, its answer was lost: OutcomeUnknownError, a lookup, no duplicate."""
    store = CommitThenDrop()
    with ScriptedServer(store) as server, ScimClient(f"{server.url}/v2") as client:
        with pytest.raises(OutcomeUnknownError) as caught:
            client.create(User(user_name="bjensen", external_id="e-1"))
        assert {"schemas": [User.schema_urn], "userName": "bjensen", "externalId": "e-1"} == (
            caught.value.payload
        )
        found = client.find_by(User, "externalId", "e-1")
    assert ["bjensen"] == [u.user_name for u in found]
    assert 1 == len(store.users)
    assert 1 == len([r for r in server.requests if r.method == "POST"])


def test_lost_patch_answer_is_outcome_unknown() -> None:
    """A PATCH whose connection drops after sending is not retried."""
    with (
        ScriptedServer(lambda request: Drop()) as server,
        ScimClient(f"{server.url}/v2") as client,
        pytest.raises(OutcomeUnknownError),
    ):
        client.patch(Group, "g-1", [PatchOperation(op="remove", path="members")])
    assert 1 == len(server.requests)


def test_dropped_get_is_retried() -> None:
    """An idempotent GET whose connection drops is simply tried again."""
    answers: Iterator[Reply | Drop] = iter(
        [Drop(), Reply(200, {"id": "u-1", "userName": "bjensen"})]
    )
    with (
        ScriptedServer(lambda request: next(answers)) as server,
        no_waits(),
        ScimClient(f"{server.url}/v2") as client,
    ):
        user = client.get(User, "u-1")
    assert ("u-1", 2) == (user.id, len(server.requests))


def test_429_and_html_502_are_waited_out() -> None:
    """429 with Retry-After, then a proxy's HTML 502, then the answer: the GET succeeds."""
    answers = iter(
        [
            Reply(429, {"status": "429"}, {"Retry-After": "2"}),
            Reply(502, b"<html><h1>502 Bad Gateway</h1></html>", {"Content-Type": "text/html"}),
            Reply(200, {"id": "u-1", "userName": "bjensen"}),
        ]
    )
    sleeps: list[float] = []
    with (
        ScriptedServer(lambda request: next(answers)) as server,
        ScimClient(
            f"{server.url}/v2", retry=RetryPolicy(initial_wait=1, jitter=0), sleep=sleeps.append
        ) as client,
    ):
        assert "u-1" == client.get(User, "u-1").id
    assert [2.0, 2.0] == sleeps


def test_html_502_that_persists_is_a_server_error_with_an_excerpt() -> None:
    """When the proxy page never goes away the error shows the start of it."""
    page = Reply(502, b"<html><h1>502 Bad Gateway</h1></html>", {"Content-Type": "text/html"})
    with (
        ScriptedServer(lambda request: page) as server,
        no_waits(),
        ScimClient(f"{server.url}/v2", retry=RetryPolicy(max_attempts=2)) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.get(User, "u-1")
    assert "502 Bad Gateway" in caught.value.body_excerpt
    assert 2 == len(server.requests)


async def test_short_pages_over_http_are_flagged() -> None:
    """A target that ignores startIndex is caught by the async client too."""
    page = Reply(
        200,
        {"totalResults": 3, "itemsPerPage": 2, "Resources": [{"id": "a"}, {"id": "b"}]},
    )
    with ScriptedServer(lambda request: page) as server:
        async with AsyncScimClient(f"{server.url}/v2") as client:
            listing = await client.list_all(User, page_size=2)
            with pytest.raises(IncompleteListingError):
                async for _ in client.iter_all(User, page_size=2):
                    pass
    assert (False, 2) == (listing.complete, len(listing))
