"""SCIM sources and SCIM-to-SCIM runs over real HTTP: test server to test server, and
scim2-server to the test server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from scimsync import Group, Member, User, from_scim
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient, ScimClient
from scimsync.filter import attr
from scimsync.mapping import Mapping
from scimsync.retry import RetryPolicy
from scimsync.sources import AsyncScimSource, IssueCode, Record, RecordIssue, ScimSource
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scimsync.models import DesiredState
    from scimsync.sources import SourceItem

pytestmark = pytest.mark.integration

TOKEN = "source-test-token"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

PEOPLE: list[dict[str, Any]] = [
    {
        "schemas": [User.schema_urn, ENTERPRISE],
        "id": f"u{i}",
        "externalId": f"E{i}",
        "userName": f"user{i}@example.com",
        "name": {"givenName": given, "familyName": family},
        "displayName": f"{given} {family}",
        "active": i != 2,
        "emails": [
            {"value": f"home{i}@example.org", "type": "home"},
            {"value": f"user{i}@example.com", "type": "work", "primary": True},
        ],
        ENTERPRISE: {"department": "R&D" if i % 2 else "Sales"},
    }
    for i, (given, family) in enumerate(
        [("Ann", "Lee"), ("Zoë", "Ångström"), ("Łukasz", "Wołodyjowski"), ("太郎", "山田")]
    )
]
TEAMS = [
    Group(display_name="Engineering", members=[Member(value="u0"), Member(value="u1")]),
    Group(display_name="Everyone", members=[Member(value=f"u{i}") for i in range(4)]),
]

SCIM_TO_SCIM = Mapping(
    users={
        "userName": "userName",
        "name.givenName": "name.givenName",
        "name.familyName": "name.familyName",
        "displayName": "displayName",
        "active": "active",
        'emails[type eq "work"].value': 'emails[type eq "work"].value',
        'emails[type eq "work"].primary': True,
        f"{ENTERPRISE}:department": f"{ENTERPRISE}:department",
    },
    groups={"displayName": "displayName"},
)


def no_wait(seconds: float) -> None:
    """Retries never really wait in these tests."""


async def no_wait_async(seconds: float) -> None:
    """Retries never really wait in these tests."""


@pytest.fixture
def source_server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN, users=PEOPLE, groups=TEAMS) as server:
        yield server


@pytest.fixture
def target_server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN) as server:
        yield server


def sync_client(server: ScimTestServer) -> ScimClient:
    return ScimClient(
        server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(jitter=0), sleep=no_wait
    )


def async_client(server: ScimTestServer) -> AsyncScimClient:
    return AsyncScimClient(
        server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(jitter=0), sleep=no_wait_async
    )


def records(items: list[SourceItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


# -- reading -------------------------------------------------------------------------------------


def test_scim_source_reads_users_then_groups_keyed_by_id(source_server: ScimTestServer) -> None:
    """Users then groups, keyed by id; members by the same keys; SCIM JSON as attributes."""
    with sync_client(source_server) as client:
        items = list(ScimSource(client, page_size=3).read())
    found = records(items)
    assert [("u0", "user"), ("u1", "user"), ("u2", "user"), ("u3", "user")] == [
        (r.key, r.kind) for r in found[:4]
    ]
    groups = {r["displayName"]: r.members for r in found[4:]}
    assert {"Engineering": ("u0", "u1"), "Everyone": ("u0", "u1", "u2", "u3")} == groups
    assert "Zoë" == found[1]["name"]["givenName"]
    assert "schemas" not in found[0]
    assert (1, f"{source_server.url}/Users") == (found[0].line, found[0].origin)


def test_scim_source_keyed_by_external_id_names_members_the_same_way(
    source_server: ScimTestServer,
) -> None:
    """With ``key="externalId"`` users and group members are named by externalId."""
    with sync_client(source_server) as client:
        found = records(list(ScimSource(client, key="externalId").read()))
    assert ["E0", "E1", "E2", "E3"] == [r.key for r in found if r.kind == "user"]
    assert ("E0", "E1") == next(r.members for r in found if r["displayName"] == "Engineering")


def test_a_drifting_listing_ends_with_read_incomplete(source_server: ScimTestServer) -> None:
    """Pages shifting mid-listing: what was read is kept, and the read says it is partial."""
    source_server.seed(users=[User(user_name=f"extra{i}") for i in range(20)])
    source_server.faults = Faults(kinds=["page_drift"], seed=3, paths=["/Users"])
    with sync_client(source_server) as client:
        items = list(ScimSource(client, page_size=5).read())
    issues = [i for i in items if isinstance(i, RecordIssue)]
    assert [(IssueCode.READ_INCOMPLETE, "user")] == [(i.code, i.kind) for i in issues]
    assert "came out short" in issues[0].reason
    assert 2 == len([r for r in records(items) if r.kind == "group"])
    assert False is SCIM_TO_SCIM.map(items).complete


def test_a_listing_that_fails_ends_with_read_incomplete(source_server: ScimTestServer) -> None:
    """A group listing answered 500 every time is an incomplete read, not an empty one."""
    source_server.faults = Faults(kinds=["500"], methods=["GET"], paths=["/Groups"])
    with sync_client(source_server) as client:
        items = list(ScimSource(client).read())
    assert 4 == len(records(items))
    [issue] = [i for i in items if isinstance(i, RecordIssue)]
    assert (IssueCode.READ_INCOMPLETE, "group") == (issue.code, issue.kind)
    assert "the listing failed" in issue.reason


def test_filters_read_part_of_the_source(source_server: ScimTestServer) -> None:
    """``user_filter`` and ``group_filter`` are sent to the source."""
    with sync_client(source_server) as client:
        source = ScimSource(
            client,
            user_filter=attr("userName").sw("user1"),
            group_filter=attr("displayName").eq("Engineering"),
        )
        found = records(list(source.read()))
    assert [("u1", "user"), ("Engineering", "group")] == [
        (r.key if r.kind == "user" else r["displayName"], r.kind) for r in found
    ]


async def test_async_scim_source_reads_the_same(source_server: ScimTestServer) -> None:
    """The async twin yields the same records as the sync one."""
    async with async_client(source_server) as client:
        items = [item async for item in AsyncScimSource(client, page_size=2).read()]
    with sync_client(source_server) as client:
        expected = list(ScimSource(client).read())
    assert [(r.key, r.kind, r.members) for r in records(expected)] == [
        (r.key, r.kind, r.members) for r in records(items)
    ]


# -- SCIM to SCIM --------------------------------------------------------------------------------


async def provision(desired: DesiredState, target: ScimTarget) -> None:
    """Create every desired user, then every group with its members (a first sync)."""
    ids: dict[str, str] = {}
    for user in desired.users:
        created = await target.create_user(user.user)
        assert created.id is not None
        ids[user.key] = created.id
    for group in desired.groups:
        made = await target.create_group(group.group)
        assert made.id is not None
        await target.add_members(made.id, [ids[key] for key in group.member_keys])


def snapshot(server: ScimTestServer) -> dict[str, Any]:
    """What a target holds, by userName and group name, without ids."""
    users = {u.id: u for u in server.users()}
    return {
        "users": sorted(
            (
                u.user_name,
                u.display_name,
                u.active,
                tuple((e.value, e.type) for e in u.emails or ()),
                u.enterprise.department if u.enterprise else None,
                u.external_id,
            )
            for u in users.values()
        ),
        "groups": sorted(
            (g.display_name, tuple(sorted(users[m.value].user_name or "" for m in g.members or ())))
            for g in server.groups()
        ),
    }


async def test_scim_to_scim_from_one_test_server_to_another(
    source_server: ScimTestServer, target_server: ScimTestServer
) -> None:
    """Read a SCIM source, map it, provision a SCIM target: the target mirrors the source."""
    async with async_client(source_server) as source_client:
        result = await SCIM_TO_SCIM.amap(AsyncScimSource(source_client, key="externalId"))
    assert (True, ()) == (result.complete, result.issues)
    async with async_client(target_server) as target_client:
        await provision(result.desired, ScimTarget(target_client))
    expected = {
        "users": sorted(
            (
                p["userName"],
                p["displayName"],
                p["active"],
                ((p["userName"], "work"),),
                p[ENTERPRISE]["department"],
                p["externalId"],
            )
            for p in PEOPLE
        ),
        "groups": [
            ("Engineering", ("user0@example.com", "user1@example.com")),
            ("Everyone", tuple(f"user{i}@example.com" for i in range(4))),
        ],
    }
    assert expected == snapshot(target_server)


async def test_scim_to_scim_from_scim2_server(
    scim2_server_url: str, target_server: ScimTestServer
) -> None:
    """scim2-server (an independent implementation) as the source of a SCIM-to-SCIM run."""
    prefix = f"s{uuid.uuid4().hex[:8]}-"
    with ScimClient(scim2_server_url) as seed:
        ids: dict[str | None, str | None] = {}
        for person in PEOPLE:
            user = from_scim(person, User)
            created = seed.create(
                attrs.evolve(user, id=None, user_name=prefix + person["userName"])
            )
            ids[user.id] = created.id
        for team in TEAMS:
            members = [Member(value=ids[m.value]) for m in team.members or ()]
            seed.create(Group(display_name=prefix + (team.display_name or ""), members=members))
    with ScimClient(scim2_server_url) as client:
        source = ScimSource(
            client,
            user_filter=attr("userName").sw(prefix),
            group_filter=attr("displayName").sw(prefix),
        )
        result = SCIM_TO_SCIM.map(source)
    assert (True, 4, 2) == (result.complete, len(result.desired.users), len(result.desired.groups))
    assert () == result.issues
    async with async_client(target_server) as target_client:
        await provision(result.desired, ScimTarget(target_client))
    held = snapshot(target_server)
    assert sorted(prefix + p["userName"] for p in PEOPLE) == [u[0] for u in held["users"]]
    assert [
        (prefix + "Engineering", (prefix + "user0@example.com", prefix + "user1@example.com")),
        (prefix + "Everyone", tuple(sorted(prefix + f"user{i}@example.com" for i in range(4)))),
    ] == held["groups"]
    assert {"R&D", "Sales"} == {u[4] for u in held["users"]}
