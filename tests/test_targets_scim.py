"""ScimTarget over real HTTP: the test server (with quirks and faults) and scim2-server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import EnterpriseUser, Group, Member, Name, User
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.errors import ConflictResponseError, NotFoundError
from scimsync.models import PatchOperation
from scimsync.retry import RetryPolicy
from scimsync.targets import (
    BlockingTarget,
    ScimTarget,
    Target,
    TargetCapabilities,
    TargetFacts,
    read_target_state,
)
from scimsync.testing import Faults, Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

TOKEN = "target-test-token"


async def no_wait(seconds: float) -> None:
    """Retries in these tests never really wait."""


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN) as server:
        yield server


def target_for(server: ScimTestServer, **options: Any) -> ScimTarget:
    client = AsyncScimClient(
        server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(jitter=0), sleep=no_wait
    )
    return ScimTarget(client, **options)


async def test_user_operations_over_http(server: ScimTestServer) -> None:
    """Create, read, find, update, deactivate and delete, each one request of its kind."""
    target = target_for(server)
    async with target.client:
        ann = await target.create_user(User(user_name="ann", external_id="E1", title="Guide"))
        assert ann.id is not None
        assert ["ann"] == [u.user_name for u in (await target.list_users()).resources]
        assert [ann.id] == [u.id for u in await target.find_users("userName", "ANN")]
        server.requests.clear()
        await target.update_user(ann.id, [PatchOperation(op="replace", path="title", value="Lead")])
        await target.deactivate_user(ann.id)
        assert 2 == server.requests.count("PATCH", "/Users")
        stored = server.user(ann.id)
        assert stored is not None
        assert ("Lead", False) == (stored.title, stored.active)
        await target.reactivate_user(ann.id)
        assert True is (await target.get_user(ann.id)).active
        await target.delete_user(ann.id)
        with pytest.raises(NotFoundError):
            await target.get_user(ann.id)


async def test_update_with_a_resource_sends_only_what_changed(server: ScimTestServer) -> None:
    """A resource change reads the user and PATCHes the difference, keeping the rest."""
    target = target_for(server)
    async with target.client:
        ann = await target.create_user(
            User(
                user_name="ann",
                title="Guide",
                name=Name(given_name="Ann", family_name="Lee"),
                enterprise=EnterpriseUser(department="R&D", cost_center="42"),
            )
        )
        assert ann.id is not None
        await target.capabilities()  # discovery, read once
        server.requests.clear()
        await target.update_user(ann.id, User(title="Lead", name=Name(given_name="Ann")))
        assert [("GET", "/Users/{id}"), ("PATCH", "/Users/{id}")] == [
            (e.method, e.route) for e in server.requests
        ]
        last = server.requests.last
        assert last is not None
        assert 1 == len(last.json()["Operations"])
        stored = server.user(ann.id)
        assert stored is not None
        assert ("Lead", "Lee", "42") == (
            stored.title,
            stored.name.family_name,  # type: ignore[union-attr]
            stored.enterprise.cost_center,  # type: ignore[union-attr]
        )
        server.requests.clear()
        await target.update_user(ann.id, User(title="Lead"))
        assert [("GET", "/Users/{id}")] == [(e.method, e.route) for e in server.requests]


async def test_user_name_clash_is_the_servers_uniqueness_error(server: ScimTestServer) -> None:
    """A second ``ANN`` is answered 409 uniqueness, raised as ConflictResponseError."""
    target = target_for(server)
    async with target.client:
        await target.create_user(User(user_name="ann"))
        with pytest.raises(ConflictResponseError) as caught:
            await target.create_user(User(user_name="ANN"))
    assert "uniqueness" == caught.value.scim_type


async def _users(target: ScimTarget, count: int) -> list[str]:
    ids = []
    for i in range(count):
        created = await target.create_user(User(user_name=f"user{i}"))
        assert created.id is not None
        ids.append(created.id)
    return ids


async def test_members_are_chunked_to_the_limit(server: ScimTestServer) -> None:
    """Five additions with a limit of two are three PATCHes; three removals, two."""
    target = target_for(server, max_members_per_operation=2)
    async with target.client:
        ids = await _users(target, 5)
        group = await target.create_group(Group(display_name="Eng"))
        assert group.id is not None
        server.requests.clear()
        await target.add_members(group.id, ids)
        assert 3 == server.requests.count("PATCH", "/Groups")
        server.requests.clear()
        await target.remove_members(group.id, ids[:3])
        assert 2 == server.requests.count("PATCH", "/Groups")
        stored = server.group(group.id)
        assert stored is not None
        assert set(ids[3:]) == {m.value for m in stored.members or ()}
        expected = TargetCapabilities(
            patch=True, max_members_per_operation=2, bulk=True, bulk_max_operations=1000, etag=True
        )
        assert expected == await target.capabilities()


async def test_a_member_cap_is_respected_when_told(server: ScimTestServer) -> None:
    """A target capping members per operation refuses more (413); told the cap, the
    target chunks under it, sending no refused request."""
    server.quirks = Quirks(max_members_per_patch_operation=2)
    careful = target_for(server, max_members_per_operation=2)
    async with careful.client:
        ids = await _users(careful, 3)
        group = await careful.create_group(Group(display_name="Eng"))
        assert group.id is not None
        server.requests.clear()
        await careful.add_members(group.id, ids)
    stored = server.group(group.id)
    assert stored is not None
    assert set(ids) == {m.value for m in stored.members or ()}
    assert [] == [r for r in server.requests if r.status == 413]


async def test_a_member_cap_found_by_413_is_learned(server: ScimTestServer) -> None:
    """Not told the cap: a chunk answered 413 is halved until it goes through, and
    that size is remembered (said once): later changes send no refused request."""
    server.quirks = Quirks(max_members_per_patch_operation=3)
    target = target_for(server)
    async with target.client:
        ids = await _users(target, 10)
        group = await target.create_group(Group(display_name="Eng"))
        assert group.id is not None
        server.requests.clear()
        await target.add_members(group.id, ids)
        refused = [r for r in server.requests if r.status == 413]
        assert (2, 3) == (len(refused), target.facts.max_members)  # 10, then 5: 3 went
        server.requests.clear()
        await target.remove_members(group.id, ids[:7])
        assert [] == [r for r in server.requests if r.status == 413]
    stored = server.group(group.id)
    assert stored is not None
    assert set(ids[7:]) == {m.value for m in stored.members or ()}
    restored = TargetFacts.from_dict(target.facts.to_dict())
    assert 3 == restored.max_members


async def test_without_patch_updates_are_read_modify_write(server: ScimTestServer) -> None:
    """A target without PATCH gets GET + PUT, keeping attributes the change does not set."""
    server.quirks = Quirks(patch_supported=False)
    target = target_for(server)
    async with target.client:
        assert False is (await target.capabilities()).patch
        ann = await target.create_user(
            User(user_name="ann", title="Guide", name=Name(given_name="Ann", family_name="Lee"))
        )
        assert ann.id is not None
        server.requests.clear()
        await target.update_user(ann.id, [PatchOperation(op="replace", path="title", value="Lead")])
        await target.update_user(ann.id, User(name=Name(given_name="Anna")))
        await target.deactivate_user(ann.id)
        ids = await _users(target, 2)
        group = await target.create_group(Group(display_name="Eng"))
        assert group.id is not None
        await target.add_members(group.id, [*ids, ids[0]])
        await target.remove_members(group.id, ids[:1])
        assert 0 == server.requests.count("PATCH")
        assert 5 == server.requests.count("PUT")
    stored, stored_group = server.user(ann.id), server.group(group.id)
    assert stored is not None
    assert stored_group is not None
    assert ("ann", "Lead", "Anna", "Lee", False) == (
        stored.user_name,
        stored.title,
        stored.name.given_name,  # type: ignore[union-attr]
        stored.name.family_name,  # type: ignore[union-attr]
        stored.active,
    )
    assert [ids[1]] == [m.value for m in stored_group.members or ()]


async def test_members_left_out_of_listings_are_asked_for(server: ScimTestServer) -> None:
    """A target that lists groups without members shows them when they are asked for:
    up front (``request_group_members``), or by a second listing asking for members."""
    server.quirks = Quirks(omit_group_members=True)
    plain, asking = target_for(server), target_for(server, request_group_members=True)
    async with plain.client, asking.client:
        ids = await _users(asking, 2)
        await asking.create_group(Group(display_name="Eng", members=[Member(value=i) for i in ids]))
        [listed_plain] = (await plain.list_groups()).resources
        [listed] = (await asking.list_groups()).resources
    assert (set(ids), set(ids)) == (
        {m.value for m in listed_plain.members or ()},
        {m.value for m in listed.members or ()},
    )


async def test_a_drifting_listing_is_incomplete(server: ScimTestServer) -> None:
    """Pages that shift mid-listing make the listing, and the target state, incomplete."""
    server.seed(users=[{"schemas": [User.schema_urn], "userName": f"u{i}"} for i in range(30)])
    server.faults = Faults(kinds=["page_drift"], seed=3)
    target = target_for(server, page_size=10)
    async with target.client:
        listing = await target.list_users()
        state = await read_target_state(target)
    assert (False, False) == (listing.complete, state.complete)
    assert None is not listing.problem


def test_the_blocking_path_drives_a_real_client(server: ScimTestServer) -> None:
    """BlockingTarget runs ScimTarget from sync code, one loop for the client's pool."""
    with BlockingTarget(target_for(server)) as target:
        ann = target.create_user(User(user_name="ann"))
        assert ann.id is not None
        target.update_user(ann.id, [PatchOperation(op="replace", path="title", value="x")])
        assert "x" == target.get_user(ann.id).title
        assert 1 == len(target.read_state().users)
        target.run(target.target.client.aclose())  # type: ignore[attr-defined]


def test_scim_target_is_a_target(server: ScimTestServer) -> None:
    """ScimTarget satisfies the Target protocol."""
    assert True is isinstance(target_for(server), Target)


# -- scim2-server, an independent implementation ----------------------------------------------


async def test_against_scim2_server(scim2_server_url: str) -> None:
    """The same operations against scim2-server, which answers PATCH with 204 and no body."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    async with AsyncScimClient(scim2_server_url) as client:
        target = ScimTarget(client, max_members_per_operation=2)
        ann = await target.create_user(User(user_name=f"{prefix}ann", title="Guide"))
        bob = await target.create_user(User(user_name=f"{prefix}bob"))
        assert ann.id is not None
        assert bob.id is not None
        assert None is await target.update_user(
            ann.id, [PatchOperation(op="replace", path="title", value="Lead")]
        )
        await target.update_user(ann.id, User(name=Name(given_name="Ann")))
        fetched = await target.get_user(ann.id)
        assert ("Lead", "Ann") == (fetched.title, fetched.name.given_name)  # type: ignore[union-attr]
        group = await target.create_group(Group(display_name=f"{prefix}eng"))
        assert group.id is not None
        await target.add_members(group.id, [ann.id, bob.id])
        await target.remove_members(group.id, [bob.id])
        assert [ann.id] == [m.value for m in (await target.get_group(group.id)).members or ()]
        listing = await target.list_users()
        assert True is listing.complete
        assert {ann.id, bob.id} <= {u.id for u in listing.resources}
        await target.delete_group(group.id)
        await target.delete_user(bob.id)
        await target.deactivate_user(ann.id)
        assert False is (await target.get_user(ann.id)).active
