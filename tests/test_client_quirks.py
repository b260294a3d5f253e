"""ScimClient against ScimTestServer with each quirk of real providers, in-process.

Each test builds its own server with one quirk (or a profile) and talks to it over
the server's in-process transport: listings stay whole or say they are not, creates
need no Location, no If-Match goes to a target without ETags, string booleans read
as booleans, and duplicated or omitted group members are read for what they are.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from scimsync import Group, Member, User
from scimsync.client import ScimClient
from scimsync.errors import IncompleteListingError
from scimsync.models import PatchOperation
from scimsync.patch import diff
from scimsync.retry import RetryPolicy
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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
    """What went over the in-process wire: request headers and response headers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def if_match(self) -> list[str | None]:
        """The If-Match header of every write, in order."""
        return [
            r.headers.get("If-Match")
            for r in self.requests
            if r.method in ("PUT", "PATCH", "DELETE")
        ]


@contextlib.contextmanager
def connect(
    server: ScimTestServer,
    *,
    wire: Wire | None = None,
    on_request: Callable[[RequestDetails], None] | None = None,
    **options: Any,
) -> Iterator[ScimClient]:
    """A ScimClient to ``server`` over its in-process transport, recording into ``wire``."""
    wire = wire or Wire()
    hooks = {"request": [wire.requests.append], "response": [wire.responses.append]}
    with (
        server.client(event_hooks=hooks) as http,
        ScimClient(
            server.in_process_url,
            http=http,
            retry=RetryPolicy.never(),
            on_request=[on_request] if on_request else (),
            **options,
        ) as client,
    ):
        yield client


def start_indexes(server: ScimTestServer) -> list[int]:
    """The startIndex of every GET /Users listing the server received, in order."""
    return [
        int(parse_qs(e.query)["startIndex"][0]) for e in server.requests.entries("GET", "/Users")
    ]


# -- listings: itemsPerPage echoing count, pages capped silently -----------------------------------

PAGING = [
    Quirks(page_size_cap=20),
    Quirks(page_size_cap=20, items_per_page_echoes_count=True),
    Quirks.profile("legacy"),
]


@pytest.mark.parametrize("quirks", PAGING, ids=["cap", "cap+echo", "legacy"])
def test_capped_pages_still_give_a_whole_listing(quirks: Quirks) -> None:
    """Asking 100 a page of a server that gives 20 (and may say 100): 45 users once each,
    in three pages advanced by what each held, never by itemsPerPage."""
    server = ScimTestServer(token=TOKEN, quirks=quirks, users=users(45))
    with connect(server) as client:
        listing = client.list_all(User, page_size=100)
    names = [u.user_name for u in listing]
    assert (True, 3) == (listing.complete, listing.pages)
    assert [f"user{i:03d}" for i in range(45)] == names
    assert [1, 21, 41] == start_indexes(server)


@pytest.mark.parametrize("quirks", PAGING, ids=["cap", "cap+echo", "legacy"])
def test_capped_pages_of_a_search_give_a_whole_listing(quirks: Quirks) -> None:
    """POST /.search pages the same way."""
    server = ScimTestServer(token=TOKEN, quirks=quirks, users=users(45))
    with connect(server) as client:
        listing = client.search(User, filter='userName sw "user"', page_size=100)
    assert (True, 45, 45) == (listing.complete, len(listing), len({u.id for u in listing}))


# -- listings: a startIndex past the end starting over ---------------------------------------------


def test_a_restarting_server_is_listed_once_when_nothing_changes() -> None:
    """The listing stops at totalResults: once past the end, to see that nothing
    follows a full last page, which the restarting server answers with the first page
    again (nothing new: the end)."""
    server = ScimTestServer(
        token=TOKEN, quirks=Quirks(start_index_past_end_restarts=True), users=users(30)
    )
    with connect(server) as client:
        listing = client.list_all(User, page_size=10)
    assert (True, 30, [1, 11, 21, 31]) == (listing.complete, len(listing), start_indexes(server))


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


def test_a_restart_after_deletions_ends_the_listing_as_incomplete() -> None:
    """25 users, pages of 10; after page 2 ten listed users are deleted, so page 3 is past the
    end and the server starts over. The client stops at once (nothing new), without
    duplicates, and says the listing is incomplete: user020-024 slid before startIndex 21."""
    server = ScimTestServer(
        token=TOKEN, quirks=Quirks(start_index_past_end_restarts=True), users=users(25)
    )
    hook = delete_after_page(server, 2, [f"u{i:03d}" for i in range(10)])
    wire = Wire()
    with connect(server, wire=wire, on_request=hook) as client:
        listing = client.list_all(User, page_size=10)
    ids = [u.id for u in listing]
    # The third page, past the end, held ten resources again: the first page, restarted.
    assert [10, 10, 10] == [len(r.json()["Resources"]) for r in wire.responses]
    assert (False, 3, [1, 11, 21]) == (listing.complete, listing.pages, start_indexes(server))
    assert [f"u{i:03d}" for i in range(20)] == ids
    assert "totalResults went from 25 to 15" in (listing.problem or "")


def test_iter_all_over_a_restarting_server_raises_after_the_last_resource() -> None:
    """iter_all yields the 20 users it saw once each, then IncompleteListingError."""
    server = ScimTestServer(
        token=TOKEN, quirks=Quirks(start_index_past_end_restarts=True), users=users(25)
    )
    hook = delete_after_page(server, 2, [f"u{i:03d}" for i in range(10)])
    seen: list[str | None] = []
    with connect(server, on_request=hook) as client, pytest.raises(IncompleteListingError):
        seen.extend(u.id for u in client.iter_all(User, page_size=10))
    assert [f"u{i:03d}" for i in range(20)] == seen


# -- creates without a Location header -------------------------------------------------------------


def test_creates_return_the_id_without_a_location_header() -> None:
    """The id comes from the body: model and dict creates both get it, with no Location."""
    server = ScimTestServer(token=TOKEN, quirks=Quirks(location_header=False))
    wire = Wire()
    with connect(server, wire=wire) as client:
        user = client.create(User(user_name="carol"))
        group = client.create(
            {"schemas": [Group.schema_urn], "displayName": "ops"}, endpoint="/Groups"
        )
    assert [None, None] == [r.headers.get("Location") for r in wire.responses]
    assert ([user.id], [group["id"]]) == (
        [u.id for u in server.users()],
        [g.id for g in server.groups()],
    )


# -- no ETags --------------------------------------------------------------------------------------


def test_no_if_match_goes_to_a_target_without_etags() -> None:
    """With etag.supported false, a version given to replace, patch or delete is not sent,
    and the writes succeed."""
    server = ScimTestServer(token=TOKEN, quirks=Quirks(etag_supported=False), users=users(1))
    wire = Wire()
    stale = 'W/"41"'
    with connect(server, wire=wire) as client:
        user = client.get(User, "u000")
        assert False is client.capabilities().etag
        client.replace(User(id="u000", user_name="user000", title="A"), version=stale)
        client.patch(
            User, "u000", [PatchOperation(op="replace", path="title", value="B")], version=stale
        )
        client.delete(User, "u000", version=stale)
    assert None is (user.meta.version if user.meta else "no meta")
    assert [None, None, None] == wire.if_match()
    assert [] == server.users()


def test_if_match_goes_to_a_target_with_etags() -> None:
    """The control: the same writes send the version where the target announces ETags."""
    server = ScimTestServer(token=TOKEN, users=users(1))
    wire = Wire()
    with connect(server, wire=wire) as client:
        user = client.get(User, "u000")
        version = user.meta.version if user.meta else None
        replaced = client.replace(User(id="u000", user_name="user000"), version=version)
        assert replaced.meta is not None
        client.delete(User, "u000", version=replaced.meta.version)
    assert [version, replaced.meta.version] == wire.if_match()
    assert True is (version is not None)


# -- booleans as strings ---------------------------------------------------------------------------


def test_string_booleans_read_as_booleans() -> None:
    """Booleans sent as "False"/"True" become False/True in resources, listings, PATCH
    answers and discovery: etag.supported "False" means no ETags, not a truthy string."""
    server = ScimTestServer(
        token=TOKEN,
        quirks=Quirks(string_booleans=True, etag_supported=False),
        users=[
            {
                "schemas": [User.schema_urn],
                "id": "a",
                "userName": "alice",
                "active": False,
                "emails": [{"value": "a@example.com", "primary": True}],
            }
        ],
    )
    with connect(server) as client:
        user = client.get(User, "a")
        created = client.create(User(user_name="bob", active=True))
        listed = client.list_all(User)
        patched = client.patch(
            User,
            "a",
            [PatchOperation(op="replace", path="active", value=True)],
            attributes=["active"],
        )
        capabilities = client.capabilities()
        (user_schema,) = [s for s in client.schemas() if s.id == User.schema_urn]
    emails = user.emails or ()
    assert [bool, bool] == [type(user.active), type(emails[0].primary)]
    assert (False, True) == (user.active, emails[0].primary)
    assert [False, True] == [u.active for u in listed]
    assert (True, True) == (created.active, patched.active if patched else None)
    assert (True, False) == (capabilities.patch, capabilities.etag)
    assert False is user_schema.attributes[0].multi_valued


# -- duplicated members ----------------------------------------------------------------------------


def test_duplicated_members_are_read_as_sent_and_repaired_by_a_diff() -> None:
    """A PATCH add of a member already there duplicates it; the client shows the group as
    the target holds it, and one diff-made PATCH leaves each member once, for good."""
    server = ScimTestServer(
        token=TOKEN,
        quirks=Quirks(duplicate_members_on_add=True),
        users=users(2),
        groups=[
            {
                "schemas": [Group.schema_urn],
                "id": "g",
                "displayName": "ops",
                "members": [{"value": "u000"}],
            }
        ],
    )
    add = [PatchOperation(op="add", path="members", value=[{"value": "u000"}, {"value": "u001"}])]
    desired = Group(
        id="g", display_name="ops", members=[Member(value="u000"), Member(value="u001")]
    )
    with connect(server) as client:
        client.patch(Group, "g", add)
        doubled = client.get(Group, "g")
        client.patch(Group, "g", diff(doubled, desired))
        repaired = client.get(Group, "g")
    assert ["u000", "u001", "u000"] == [m.value for m in doubled.members or ()]
    assert ["u001", "u000"] == [m.value for m in repaired.members or ()]
    assert [] == diff(repaired, desired)


# -- groups without members ------------------------------------------------------------------------


def test_omitted_members_are_absent_not_empty_and_come_when_asked_for() -> None:
    """GET by id and listings give members None (unknown), not () (empty); asking for
    members by name returns them from both."""
    server = ScimTestServer(
        token=TOKEN,
        quirks=Quirks(omit_group_members=True),
        users=users(2),
        groups=[
            {
                "schemas": [Group.schema_urn],
                "id": "g",
                "displayName": "ops",
                "members": [{"value": "u000"}, {"value": "u001"}],
            }
        ],
    )
    with connect(server) as client:
        plain = client.get(Group, "g")
        listed = client.list_all(Group)
        asked = client.get(Group, "g", attributes=["members"])
        listed_asked = client.list_all(Group, attributes=["displayName", "members"])
    assert [None, None] == [plain.members, listed.resources[0].members]
    assert [["u000", "u001"], ["u000", "u001"]] == [
        [m.value for m in g.members or ()] for g in (asked, listed_asked.resources[0])
    ]
