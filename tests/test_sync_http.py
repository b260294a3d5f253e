"""End to end over HTTP: ScimTestServer and scim2-server on 127.0.0.1, driven by the Provisioner.

1,000 users in 20 groups are provisioned; a second cycle sends no write; then titles,
a rename, membership moves and 20 departures are applied with exactly the expected
requests, and 5 of the departed come back.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

import attrs
import pytest

from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.engine import Policy
from scimsync.mapping import Mapping
from scimsync.retry import RetryPolicy
from scimsync.sources import MemorySource
from scimsync.sync import RequestStats, SqliteStateStore, SyncReport
from scimsync.targets import ScimTarget
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "sync-http-token"
USERS = 1000
GROUPS = 20

MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    member_of="group",
)


def people(prefix: str) -> list[dict[str, Any]]:
    """User i is in group i % 20 and has title T<i % 7>."""
    return [
        {
            "id": f"{prefix}e{i}",
            "email": f"{prefix}user{i}@example.com",
            "name": f"User {i}",
            "title": f"T{i % 7}",
            "group": f"{prefix}g{i % GROUPS}",
        }
        for i in range(USERS)
    ]


class Writes:
    """Counts write requests by (method, resource type) from the client's hook."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()

    def __call__(self, details: RequestDetails) -> None:
        if details.method != "GET":
            kind = "Groups" if "/Groups" in details.url else "Users"
            self.seen[details.method, kind] += 1

    def take(self) -> Counter[tuple[str, str]]:
        seen, self.seen = self.seen, Counter()
        return seen


async def scenario(url: str, state_path: Path, prefix: str = "", **client: Any) -> None:
    """The whole story against one server; asserts along the way."""
    writes = Writes()
    stats = RequestStats()
    async with AsyncScimClient(
        url,
        retry=RetryPolicy(jitter=0),
        on_request=[writes, stats.on_request],
        on_retry=[stats.on_retry],
        max_concurrency=8,
        **client,
    ) as http:
        source = MemorySource(users=people(prefix))
        provisioner = Provisioner(
            source,
            MAPPING,
            ScimTarget(http, max_members_per_operation=100),
            Policy(),
            state=SqliteStateStore(state_path),
            request_stats=stats,
        )
        first = await provisioner.arun_once()
        assert (True, {"create": USERS + GROUPS, "add_members": GROUPS}) == (
            first.ok,
            dict(first.planned),
        )
        assert (
            Counter(
                {("POST", "Users"): USERS, ("POST", "Groups"): GROUPS, ("PATCH", "Groups"): GROUPS}
            )
            == writes.take()
        )

        quiet = await provisioner.arun_once()
        assert ("incremental", 0) == (quiet.mode, quiet.requests)
        full = await provisioner.arun_once(full=True)
        assert (True, (), Counter()) == (full.ok, full.results, writes.take())
        assert full.requests >= 2  # the listings, and nothing else

        users = cast("list[dict[str, Any]]", source.users)  # the list the source reads
        for i in range(10):
            users[i * 20 + 7] = {**users[i * 20 + 7], "title": "Principal"}
        users[500] = {**users[500], "email": f"{prefix}renamed@example.com"}
        for i in range(5):  # user i moves from group i to group i + 1
            users[i] = {**users[i], "group": f"{prefix}g{i + 1}"}
        departed = users[980:]
        del users[980:]
        changed = await provisioner.arun_once()
        assert changed.ok, str(changed)
        assert {
            "update": 11,
            "add_members": 5,
            "remove_members": GROUPS,
            "deactivate": 20,
        } == dict(changed.planned)
        assert Counter({("PATCH", "Users"): 31, ("PATCH", "Groups"): GROUPS + 5}) == writes.take()

        users.extend(departed[:5])
        back = await provisioner.arun_once()
        assert ({"reactivate": 5, "add_members": 5}, True) == (dict(back.planned), back.ok)
        assert Counter({("PATCH", "Users"): 5, ("PATCH", "Groups"): 5}) == writes.take()

        assert True is (await provisioner.aplan()).is_empty
        await check_target(http, prefix, users, departed[5:])


async def check_target(
    http: AsyncScimClient,
    prefix: str,
    records: list[dict[str, Any]],
    departed: list[dict[str, Any]],
) -> None:
    """The target holds exactly the source: each user once, titles, groups, deactivations."""
    from scimsync import Group, User

    listed = [
        u
        for u in (await http.list_all(User)).resources
        if (u.external_id or "").startswith(f"{prefix}e")
    ]
    by_name = Counter(u.user_name for u in listed)
    assert [] == [name for name, count in by_name.items() if count > 1]
    wanted = {r["email"]: (r["title"], True) for r in records}
    wanted.update({r["email"]: (r["title"], False) for r in departed})
    assert wanted == {u.user_name: (u.title, u.active is not False) for u in listed}
    ids = {u.id: u.user_name for u in listed}
    groups = [
        g
        for g in (await http.list_all(Group)).resources
        if (g.display_name or "").startswith(f"{prefix}g")
    ]
    members = {g.display_name: {ids[m.value] for m in g.members or ()} for g in groups}
    expected: dict[str, set[str]] = {}
    for r in records:
        expected.setdefault(r["group"], set()).add(r["email"])
    assert expected == members


@pytest.fixture
def test_server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN, max_page_size=500) as server:
        yield server


@pytest.mark.slow
async def test_against_the_test_server(test_server: ScimTestServer, tmp_path: Path) -> None:
    """The whole story over loopback HTTP against ScimTestServer."""
    await scenario(test_server.url, tmp_path / "state.db", auth=BearerToken(TOKEN))
    assert 0 == test_server.requests.count("PUT")
    assert 0 == test_server.requests.count("DELETE")


@pytest.mark.slow
async def test_against_scim2_server(scim2_asgi_url: str, tmp_path: Path) -> None:
    """The same story against scim2-server, an independent implementation (shared by the
    session, so everything here carries a prefix of its own)."""
    prefix = f"s{uuid.uuid4().hex[:6]}-"
    await scenario(scim2_asgi_url, tmp_path / "state.db", prefix=prefix)


def test_the_plain_methods_over_http(test_server: ScimTestServer, tmp_path: Path) -> None:
    """A script without an event loop: run_once twice on one client, connections reused."""
    http = AsyncScimClient(test_server.url, auth=BearerToken(TOKEN))
    records = people("")[:20]
    with Provisioner(
        MemorySource(users=records),
        MAPPING,
        ScimTarget(http),
        state=SqliteStateStore(tmp_path / "s.db"),
    ) as provisioner:
        first: SyncReport = provisioner.run_once()
        second = provisioner.run_once(full=True)
    assert (True, True, ()) == (first.ok, second.ok, second.results)
    assert 20 == len(test_server.users())


async def test_a_target_without_patch_keeps_what_the_mapping_does_not_manage(
    tmp_path: Path,
) -> None:
    """Against a server without PATCH, changes go as whole-resource PUTs that keep the
    attributes someone else set on the target, and membership still converges."""
    with ScimTestServer(token=TOKEN, quirks=Quirks(patch_supported=False)) as server:
        async with AsyncScimClient(server.url, auth=BearerToken(TOKEN)) as http:
            source = MemorySource(users=people("")[:30])
            provisioner = Provisioner(
                source,
                MAPPING,
                ScimTarget(http),
                state=SqliteStateStore(tmp_path / "state.db"),
            )
            assert (await provisioner.arun_once()).ok
            user = next(u for u in server.users() if u.user_name == "user0@example.com")
            await http.replace(attrs.evolve(user, nick_name="Babs"))  # set by someone else
            users = cast("list[dict[str, Any]]", source.users)
            users[0] = {**users[0], "title": "Principal", "group": "g5"}
            server.requests.clear()
            report = await provisioner.arun_once()
            assert report.ok, str(report)
            assert 0 == server.requests.count("PATCH")
            assert True is (await provisioner.aplan()).is_empty
        changed = next(u for u in server.users() if u.user_name == "user0@example.com")
        groups = {g.display_name: {m.value for m in g.members or ()} for g in server.groups()}
    assert ("Principal", "Babs") == (changed.title, changed.nick_name)
    assert changed.id in groups["g5"]
    assert changed.id not in groups["g0"]
