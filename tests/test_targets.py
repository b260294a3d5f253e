"""Targets: MemoryTarget behaves like a SCIM service; BlockingTarget gives the sync path."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import datetime, timezone

import pytest

from _users_only import UsersOnly
from scimsync import Email, EnterpriseUser, Group, Member, Meta, Name, PatchOperation, User
from scimsync.errors import (
    BadRequestError,
    ConfigurationError,
    ConflictResponseError,
    NotFoundError,
    ServerError,
)
from scimsync.schema import CORE_SCHEMAS
from scimsync.targets import (
    GROUP_METHODS,
    USER_METHODS,
    BlockingTarget,
    GroupTarget,
    MemoryCall,
    MemoryTarget,
    Target,
    TargetCapabilities,
    TargetListing,
    UserTarget,
    missing_methods,
    overlay,
    read_target_state,
    supports_groups,
    target_schema,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def memory(**kwargs: object) -> MemoryTarget:
    counter = itertools.count(1)
    return MemoryTarget(
        id_factory=lambda: f"id{next(counter)}",
        clock=lambda: WHEN,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_create_assigns_ids_and_ignores_read_only_attributes() -> None:
    """A created user gets a fresh id and meta; ids and meta sent along are not kept."""
    target = memory()
    created = await target.create_user(User(id="mine", user_name="ann", meta=Meta(version="x")))
    assert ("id1", "ann") == (created.id, created.user_name)
    assert (
        Meta(
            resource_type="User",
            created=WHEN,
            last_modified=WHEN,
            location="/Users/id1",
            version='W/"1"',
        )
        == created.meta
    )


async def test_user_name_is_unique_case_insensitively() -> None:
    """A second ``ANN`` is a 409 uniqueness conflict, as a SCIM service answers."""
    target = memory()
    await target.create_user(User(user_name="ann"))
    with pytest.raises(ConflictResponseError) as caught:
        await target.create_user(User(user_name="ANN"))
    assert (409, "uniqueness") == (caught.value.status, caught.value.scim_type)


async def test_user_name_is_required() -> None:
    """A user without userName is a 400 invalidValue."""
    with pytest.raises(BadRequestError) as caught:
        await memory().create_user(User(display_name="nobody"))
    assert "invalidValue" == caught.value.scim_type


async def test_group_display_name_is_unique_and_required() -> None:
    """Groups need a displayName, unique case-insensitively."""
    target = memory()
    await target.create_group(Group(display_name="Eng"))
    with pytest.raises(ConflictResponseError):
        await target.create_group(Group(display_name="eng"))
    with pytest.raises(BadRequestError):
        await target.create_group(Group())


async def test_unknown_ids_are_not_found() -> None:
    """Every operation on an id that does not exist raises NotFoundError (404)."""
    target = memory()
    for attempt in (
        target.get_user("nope"),
        target.get_group("nope"),
        target.update_user("nope", User(title="x")),
        target.deactivate_user("nope"),
        target.delete_user("nope"),
        target.delete_group("nope"),
        target.add_members("nope", []),
        target.remove_members("nope", []),
    ):
        with pytest.raises(NotFoundError):
            await attempt


async def test_update_with_a_resource_keeps_what_it_does_not_set() -> None:
    """Setting a few attributes keeps the others, down to sub-attributes of ``name``."""
    target = memory()
    user = await target.create_user(
        User(
            user_name="ann",
            title="Guide",
            name=Name(given_name="Ann", family_name="Lee"),
            enterprise=EnterpriseUser(department="R&D", cost_center="42"),
        )
    )
    assert user.id is not None
    updated = await target.update_user(
        user.id,
        User(name=Name(given_name="Anna"), enterprise=EnterpriseUser(department="Ops")),
    )
    assert updated is not None
    assert ("ann", "Guide") == (updated.user_name, updated.title)
    assert Name(given_name="Anna", family_name="Lee") == updated.name
    assert EnterpriseUser(department="Ops", cost_center="42") == updated.enterprise
    assert updated.meta is not None
    assert (WHEN, 'W/"2"') == (updated.meta.created, updated.meta.version)


async def test_an_update_that_takes_a_user_name_is_a_conflict() -> None:
    """Renaming onto another user's userName is refused; the user is unchanged."""
    target = memory()
    await target.create_user(User(user_name="ann"))
    bob = await target.create_user(User(user_name="bob"))
    assert bob.id is not None
    with pytest.raises(ConflictResponseError):
        await target.update_user(bob.id, User(user_name="Ann"))
    assert "bob" == (await target.get_user(bob.id)).user_name


async def test_deactivate_and_reactivate_flip_active() -> None:
    """``deactivate_user`` sets active false, ``reactivate_user`` true."""
    target = memory()
    user = await target.create_user(User(user_name="ann", active=True))
    assert user.id is not None
    await target.deactivate_user(user.id)
    assert (await target.get_user(user.id)).active is False
    await target.reactivate_user(user.id)
    assert (await target.get_user(user.id)).active is True


async def test_update_with_patch_operations() -> None:
    """PATCH operations apply as a SCIM service applies them; id and meta stay the target's."""
    target = memory()
    user = await target.create_user(
        User(user_name="ann", emails=[Email(value="a@x.org", type="work")])
    )
    assert user.id is not None
    updated = await target.update_user(
        user.id,
        [
            PatchOperation(op="replace", path="title", value="Lead"),
            PatchOperation(op="replace", path='emails[type eq "work"].value', value="b@x.org"),
        ],
    )
    assert updated is not None
    assert (updated.id, updated.title, updated.emails) == (
        user.id,
        "Lead",
        (Email(value="b@x.org", type="work"),),
    )


async def test_a_patch_that_cannot_apply_is_a_400_and_changes_nothing() -> None:
    """A bad path is a 400 with the RFC's scimType, as a SCIM service answers; all or nothing."""
    target = memory()
    user = await target.create_user(User(user_name="ann", title="Guide"))
    assert user.id is not None
    with pytest.raises(BadRequestError) as caught:
        await target.update_user(
            user.id,
            [
                PatchOperation(op="replace", path="title", value="Lead"),
                PatchOperation(op="replace", path="emails[type eq", value="x"),
            ],
        )
    assert (400, "invalidPath") == (caught.value.status, caught.value.scim_type)
    assert "Guide" == (await target.get_user(user.id)).title


async def test_a_patch_onto_a_taken_user_name_is_a_conflict() -> None:
    """PATCHing userName onto another user's is a uniqueness conflict."""
    target = memory()
    await target.create_user(User(user_name="ann"))
    bob = await target.create_user(User(user_name="bob"))
    assert bob.id is not None
    with pytest.raises(ConflictResponseError):
        await target.update_user(
            bob.id, [PatchOperation(op="replace", path="userName", value="ANN")]
        )


async def test_group_members_patched_in_must_exist() -> None:
    """Adding a member through PATCH operations is checked like add_members."""
    target = memory()
    ann = await target.create_user(User(user_name="ann"))
    group = await target.create_group(Group(display_name="Eng"))
    assert ("id1", "id2") == (ann.id, group.id)
    await target.update_group(
        "id2", [PatchOperation(op="add", path="members", value=[{"value": "id1"}])]
    )
    assert ["id1"] == [m.value for m in (await target.get_group("id2")).members or ()]
    with pytest.raises(BadRequestError):
        await target.update_group(
            "id2", [PatchOperation(op="add", path="members", value=[{"value": "ghost"}])]
        )


async def test_members_are_added_once_and_removed() -> None:
    """Adding a member twice keeps it once; removing takes it out; User.groups follows."""
    target = memory()
    ann = await target.create_user(User(user_name="ann", display_name="Ann"))
    bob = await target.create_user(User(user_name="bob"))
    group = await target.create_group(Group(display_name="Eng"))
    assert ("id1", "id2", "id3") == (ann.id, bob.id, group.id)
    await target.add_members("id3", ["id1", "id2", "id1"])
    await target.add_members("id3", ["id1"])
    assert ["id1", "id2"] == [m.value for m in (await target.get_group("id3")).members or ()]
    assert (await target.get_user("id1")).groups is not None
    await target.remove_members("id3", ["id2", "absent"])
    assert (Member(value="id1", type="User", display="Ann"),) == (
        await target.get_group("id3")
    ).members
    assert (await target.get_user("id2")).groups is None


async def test_members_must_exist() -> None:
    """Adding an id that is no user or group is a 400, and nothing is added."""
    target = memory()
    group = await target.create_group(Group(display_name="Eng"))
    assert group.id is not None
    with pytest.raises(BadRequestError):
        await target.add_members(group.id, ["ghost"])
    with pytest.raises(BadRequestError):
        await target.create_group(Group(display_name="Ops", members=[Member(value="ghost")]))
    assert (await target.get_group(group.id)).members is None


async def test_deleting_a_user_removes_it_from_its_groups() -> None:
    """A deleted user is no member of anything any more."""
    target = memory()
    ann = await target.create_user(User(user_name="ann"))
    assert ann.id is not None
    group = await target.create_group(Group(display_name="Eng", members=[Member(value=ann.id)]))
    assert group.id is not None
    await target.delete_user(ann.id)
    assert () == (await target.get_group(group.id)).members
    assert () == (await target.list_users()).resources


async def test_member_requests_are_split_by_the_target_limit() -> None:
    """Five members with a limit of two take three requests of 2, 2 and 1."""
    target = memory(capabilities=TargetCapabilities(max_members_per_operation=2))
    ids = [(await target.create_user(User(user_name=f"u{i}"))).id or "" for i in range(5)]
    group = await target.create_group(Group(display_name="Eng"))
    assert group.id is not None
    target.calls.clear()
    await target.add_members(group.id, ids)
    assert target.calls == [
        MemoryCall(method="PATCH", resource="Groups", id=group.id, count=count)
        for count in (2, 2, 1)
    ]
    assert 3 == target.requests("PATCH", "Groups")


async def test_find_compares_per_case_exactness() -> None:
    """userName lookups ignore case; externalId (caseExact) lookups do not."""
    target = memory()
    await target.create_user(
        User(user_name="Ann", external_id="E1", emails=[Email(value="a@x.org", type="work")])
    )
    assert ["Ann"] == [u.user_name for u in await target.find_users("userName", "ANN")]
    assert () == await target.find_users("externalId", "e1")
    assert 1 == len(await target.find_users("externalId", "E1"))
    assert 1 == len(await target.find_users("emails.value", "A@X.ORG"))
    await target.create_group(Group(display_name="Eng"))
    assert 1 == len(await target.find_groups("displayName", "eng"))


async def test_seeded_resources_and_state() -> None:
    """Resources given at construction are stored with ids; ``state()`` is complete."""
    target = memory(users=[User(user_name="ann")], groups=[Group(display_name="Eng")])
    state = target.state()
    assert (
        ["ann"],
        ["id2"],
        True,
    ) == ([u.user_name for u in state.users], [g.id for g in state.groups], state.complete)
    assert [] == target.calls


async def test_read_target_state_combines_both_listings() -> None:
    """The state is complete only when both listings are; it carries what a short
    listing said of itself."""

    class HalfListed(MemoryTarget):
        async def list_groups(self) -> TargetListing[Group]:
            return TargetListing(resources=(), complete=False, problem="page 2 failed")

    target = HalfListed(users=[User(user_name="ann")])
    state = await read_target_state(target)
    assert (["ann"], False, ("groups: page 2 failed",)) == (
        [u.user_name for u in state.users],
        state.complete,
        state.problems,
    )
    whole = await read_target_state(memory())
    assert (True, ()) == (whole.complete, whole.problems)


async def test_read_target_state_leaves_no_listing_running_when_one_fails() -> None:
    """A failed group listing cancels the user listing still under way, and waits for
    it: nothing is left running halfway through an answer when the error is raised."""
    users_ended: list[str] = []

    class GroupsFail(MemoryTarget):
        async def list_users(self) -> TargetListing[User]:
            try:
                await asyncio.Event().wait()  # an answer that is slow to come
            except asyncio.CancelledError:
                users_ended.append("cancelled")
                raise
            raise AssertionError("unreachable")  # pragma: no cover

        async def list_groups(self) -> TargetListing[Group]:
            await asyncio.sleep(0)
            raise ServerError(500, detail="backend unavailable")

    with pytest.raises(ServerError, match="backend unavailable"):
        await read_target_state(GroupsFail())
    assert ["cancelled"] == users_ended
    assert {asyncio.current_task()} == asyncio.all_tasks()


def test_memory_target_is_a_target() -> None:
    """MemoryTarget satisfies the Target protocol."""
    assert isinstance(memory(), Target)


async def test_calls_record_the_requests_a_scim_service_would_get() -> None:
    """Each operation is logged as the HTTP request it stands for."""
    target = memory()
    user = await target.create_user(User(user_name="ann"))
    assert user.id is not None
    await target.update_user(user.id, User(title="x"))
    await target.list_users()
    await target.delete_user(user.id)
    assert [
        ("POST", "Users"),
        ("PATCH", "Users"),
        ("GET", "Users"),
        ("DELETE", "Users"),
    ] == [(c.method, c.resource) for c in target.calls]


# -- overlay (read-modify-write) -------------------------------------------------------------


def test_overlay_merges_objects_and_replaces_lists() -> None:
    """Objects merge per attribute; multi-valued attributes are taken whole; readOnly ignored."""
    current = User(
        id="1",
        user_name="ann",
        name=Name(given_name="Ann", family_name="Lee"),
        emails=[Email(value="a@x.org"), Email(value="b@x.org")],
        extensions={"urn:x:badge": {"number": "1", "colour": "red"}},
        meta=Meta(version="v1"),
    )
    wanted = User(
        id="other",
        name=Name(given_name="Anna"),
        emails=[Email(value="c@x.org")],
        extensions={"urn:x:badge": {"number": "2"}},
    )
    merged = overlay(current, wanted)
    assert (
        User(
            id="1",
            user_name="ann",
            name=Name(given_name="Anna", family_name="Lee"),
            emails=[Email(value="c@x.org")],
            extensions={"urn:x:badge": {"number": "2", "colour": "red"}},
            meta=Meta(version="v1"),
        )
        == merged
    )


# -- the blocking path ---------------------------------------------------------------------


def test_blocking_target_runs_every_operation_synchronously() -> None:
    """The sync wrapper creates, lists and updates like the async target."""
    with BlockingTarget(memory()) as target:
        ann = target.create_user(User(user_name="ann"))
        group = target.create_group(Group(display_name="Eng"))
        assert ("id1", "id2") == (ann.id, group.id)
        target.add_members("id2", ["id1"])
        target.update_user("id1", User(title="Guide"))
        assert "Guide" == target.get_user("id1").title
        assert ["ann"] == [u.user_name for u in target.find_users("userName", "ANN")]
        assert target.read_state().complete is True
        assert TargetCapabilities(etag=True) == target.capabilities()
        target.remove_members("id2", ["id1"])
        target.delete_group("id2")
        target.delete_user("id1")
        assert ((), ()) == (target.list_users().resources, target.list_groups().resources)


def test_blocking_target_keeps_one_event_loop_across_calls() -> None:
    """Every call runs on the same loop, so an HTTP client's pool survives between calls."""

    loops: list[asyncio.AbstractEventLoop] = []

    class LoopSpy(MemoryTarget):
        async def list_users(self) -> TargetListing[User]:
            loops.append(asyncio.get_running_loop())
            return await super().list_users()

    with BlockingTarget(LoopSpy()) as target:
        target.list_users()
        target.list_users()
    assert 1 == len(set(map(id, loops)))


def test_blocking_target_can_be_shared_by_threads() -> None:
    """Calls from several threads take turns on the one loop."""
    target = BlockingTarget(memory())
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            target.create_user(User(user_name=f"user{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target.close()
    assert ([], 8) == (errors, len(target.read_state().users))
    target.close()


async def test_blocking_target_refuses_to_run_inside_an_event_loop() -> None:
    """Inside a running loop the blocking path would deadlock: a clear error instead."""
    with pytest.raises(ConfigurationError, match="await the target"):
        BlockingTarget(memory()).list_users()


# -- the smaller protocol: users required, groups optional -----------------------------------


def test_users_only_target_is_a_user_target_and_not_a_target() -> None:
    """Nine user methods make a UserTarget; without the group methods it is not a
    (full) Target, and supports_groups says so."""
    people = UsersOnly()
    assert (True, False, False) == (
        isinstance(people, UserTarget),
        isinstance(people, Target),
        supports_groups(people),
    )
    assert (True, True) == (isinstance(memory(), GroupTarget), supports_groups(memory()))


def test_missing_methods_are_named_in_protocol_order() -> None:
    """missing_methods names what a target lacks: the user methods always, the group
    methods when asked for; a method set to None counts as missing."""

    class NoReactivation(UsersOnly):
        reactivate_user = None  # type: ignore[assignment]

    assert () == missing_methods(UsersOnly())
    assert GROUP_METHODS == missing_methods(UsersOnly(), groups=True)
    assert ("reactivate_user",) == missing_methods(NoReactivation())
    assert ("reactivate_user", *GROUP_METHODS) == missing_methods(NoReactivation(), groups=True)
    assert () == missing_methods(memory(), groups=True)
    assert 9 == len(USER_METHODS)


async def test_read_target_state_of_a_users_only_target_has_no_groups() -> None:
    """A users-only target is listed for users only: its groups are empty and complete,
    and no group request is made."""
    people = UsersOnly(memory(users=[User(user_name="ann")]))
    state = await read_target_state(people)
    assert (["ann"], (), True) == (
        [u.user_name for u in state.users],
        state.groups,
        state.complete,
    )
    assert [("GET", "Users")] == [(c.method, c.resource) for c in people.inner.calls]


async def test_read_target_state_of_a_users_only_target_says_why_it_is_short() -> None:
    """A short user listing of a users-only target makes the state incomplete, with why."""

    class Short(UsersOnly):
        async def list_users(self) -> TargetListing[User]:
            return TargetListing(resources=(), complete=False, problem="page 2 failed")

    state = await read_target_state(Short())
    assert (False, ("users: page 2 failed",)) == (state.complete, state.problems)


async def test_a_target_without_schema_has_the_core_schemas() -> None:
    """schema() is optional: target_schema gives the core schemas without it, and what
    it returns with it."""
    narrow = CORE_SCHEMAS.only(users=["userName"])
    assert CORE_SCHEMAS is await target_schema(UsersOnly())
    assert narrow is await target_schema(memory(schema=narrow))


def test_blocking_target_drives_a_users_only_target() -> None:
    """BlockingTarget works with the user methods alone: its state has no groups, its
    schema is the core one, and a group method is refused by name."""
    with BlockingTarget(UsersOnly()) as target:
        target.create_user(User(user_name="ann"))
        state = target.read_state()
        assert (["ann"], (), True) == (
            [u.user_name for u in state.users],
            state.groups,
            state.complete,
        )
        assert CORE_SCHEMAS is target.schema()
        with pytest.raises(ConfigurationError) as raised:
            target.list_groups()
    expected = f"the target UsersOnly keeps no groups: it lacks {', '.join(GROUP_METHODS)}"
    assert expected == str(raised.value)
