"""AsyncScimClient against ScimTestServer with the quirks of real providers, in-process.

The twin of ``test_client_quirks.py`` for what the async client does on its own:
its paging loops, its ETag decision and its reading of answers.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from scimsync import User
from scimsync.client import AsyncScimClient
from scimsync.errors import IncompleteListingError
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import httpx

    from scimsync.client import RequestDetails

TOKEN = "quirks-token"


def users(n: int) -> list[dict[str, Any]]:
    """n users user000.. with ids u000.., in order."""
    return [
        {"schemas": [User.schema_urn], "id": f"u{i:03d}", "userName": f"user{i:03d}"}
        for i in range(n)
    ]


class Wire:
    """What went over the in-process wire: requests and responses."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    async def request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def response(self, response: httpx.Response) -> None:
        self.responses.append(response)


@contextlib.asynccontextmanager
async def connect(
    server: ScimTestServer,
    *,
    wire: Wire | None = None,
    on_request: Callable[[RequestDetails], None] | None = None,
) -> AsyncIterator[AsyncScimClient]:
    """An AsyncScimClient to ``server`` over its in-process transport."""
    wire = wire or Wire()
    hooks = {"request": [wire.request], "response": [wire.response]}
    async with (
        server.async_client(event_hooks=hooks) as http,
        AsyncScimClient(
            server.in_process_url,
            http=http,
            retry=RetryPolicy.never(),
            on_request=[on_request] if on_request else (),
        ) as client,
    ):
        yield client


def start_indexes(server: ScimTestServer) -> list[int]:
    """The startIndex of every GET /Users listing the server received, in order."""
    return [
        int(parse_qs(e.query)["startIndex"][0]) for e in server.requests.entries("GET", "/Users")
    ]


@pytest.mark.parametrize(
    "quirks",
    [Quirks(page_size_cap=20, items_per_page_echoes_count=True), Quirks.profile("legacy")],
    ids=["cap+echo", "legacy"],
)
async def test_capped_pages_still_give_a_whole_listing(quirks: Quirks) -> None:
    """list_all and iter_all: 45 users once each, pages advanced by what they held."""
    server = ScimTestServer(token=TOKEN, quirks=quirks, users=users(45))
    async with connect(server) as client:
        listing = await client.list_all(User, page_size=100)
        iterated = [u.user_name async for u in client.iter_all(User, page_size=100)]
    expected = [f"user{i:03d}" for i in range(45)]
    assert (True, 3) == (listing.complete, listing.pages)
    assert [expected, expected] == [[u.user_name for u in listing], iterated]
    assert [1, 21, 41, 1, 21, 41] == start_indexes(server)


def delete_after_page(server: ScimTestServer, page: int, ids: list[str]) -> Callable[..., None]:
    """An on_request hook deleting ``ids`` (as another writer would) after listing page ``page``."""
    pages = 0

    def hook(details: RequestDetails) -> None:
        nonlocal pages
        if details.method == "GET":
            pages += 1
            if pages == page:
                with server.client() as admin:
                    for resource_id in ids:
                        admin.delete(f"/Users/{resource_id}").raise_for_status()

    return hook


async def test_a_restart_after_deletions_ends_the_listing_as_incomplete() -> None:
    """Page 3 is past the end after deletions and the server starts over: the client stops
    there, without duplicates, and says the listing is incomplete."""
    server = ScimTestServer(
        token=TOKEN, quirks=Quirks(start_index_past_end_restarts=True), users=users(25)
    )
    hook = delete_after_page(server, 2, [f"u{i:03d}" for i in range(10)])
    async with connect(server, on_request=hook) as client:
        listing = await client.list_all(User, page_size=10)
    assert (False, 3, [1, 11, 21]) == (listing.complete, listing.pages, start_indexes(server))
    assert [f"u{i:03d}" for i in range(20)] == [u.id for u in listing]


async def test_async_iter_all_over_a_restarting_server_raises_at_the_end() -> None:
    """The async iterator yields each user it saw once, then IncompleteListingError."""
    server = ScimTestServer(
        token=TOKEN, quirks=Quirks(start_index_past_end_restarts=True), users=users(25)
    )
    hook = delete_after_page(server, 2, [f"u{i:03d}" for i in range(10)])
    seen: list[str | None] = []

    async def collect(client: AsyncScimClient) -> None:
        async for user in client.iter_all(User, page_size=10):
            seen.append(user.id)  # noqa: PERF401 - one by one: the iteration ends by raising

    async with connect(server, on_request=hook) as client:
        with pytest.raises(IncompleteListingError):
            await collect(client)
    assert [f"u{i:03d}" for i in range(20)] == seen


async def test_creates_return_the_id_without_a_location_header() -> None:
    """The id comes from the body."""
    server = ScimTestServer(token=TOKEN, quirks=Quirks(location_header=False))
    wire = Wire()
    async with connect(server, wire=wire) as client:
        user = await client.create(User(user_name="carol"))
    assert [None] == [r.headers.get("Location") for r in wire.responses]
    assert [user.id] == [u.id for u in server.users()]


@pytest.mark.parametrize(
    ("quirks", "sent"),
    [(Quirks(etag_supported=False), None), (Quirks(), 'W/"1"')],
    ids=["no-etags", "etags"],
)
async def test_if_match_only_where_etags_are_supported(quirks: Quirks, sent: str | None) -> None:
    """A version given to patch goes out as If-Match only if the target announces ETags."""
    server = ScimTestServer(token=TOKEN, quirks=quirks, users=users(1))
    wire = Wire()
    async with connect(server, wire=wire) as client:
        patched = await client.patch(
            User, "u000", [PatchOperation(op="replace", path="title", value="B")], version='W/"1"'
        )
    (patch,) = [r for r in wire.requests if r.method == "PATCH"]
    assert (sent, "B") == (patch.headers.get("If-Match"), patched.title if patched else None)


async def test_string_booleans_read_as_booleans() -> None:
    """Booleans sent as "False" and "True" read as False and True, etag.supported included."""
    server = ScimTestServer(
        token=TOKEN,
        quirks=Quirks(string_booleans=True, etag_supported=False),
        users=[{"schemas": [User.schema_urn], "id": "a", "userName": "alice", "active": False}],
    )
    async with connect(server) as client:
        user = await client.get(User, "a")
        listing = await client.list_all(User)
        capabilities = await client.capabilities()
    assert (False, [False]) == (user.active, [u.active for u in listing])
    assert (True, False) == (capabilities.patch, capabilities.etag)
