"""Plans applied to a real in-memory target (``MemoryTarget``), then planned again.

The target enforces what a SCIM service provider does (unique userNames, existing
members, ids on create), so these tests check that the operations a plan holds are
ones a target accepts, in the order given, and that a second plan finds nothing to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimsync import Email, Group, PatchOperation, User
from scimsync.engine import Plan, Policy, SyncState, plan
from scimsync.models import DesiredGroup, DesiredState, DesiredUser
from scimsync.targets import BlockingTarget, MemoryTarget
from strategies import NOW, SCOPED, desired_states
from test_engine_properties import settle

if TYPE_CHECKING:
    from collections.abc import Iterator

POLICY = Policy(
    adopt="adopt", max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None
)


def apply(result: Plan, target: BlockingTarget) -> dict[str, str]:
    """Apply a plan's operations in order, as an executor would; return created ids."""
    created: dict[str, str] = {}
    for planned in result.operations:
        op = planned.resolve(created)
        user = op.resource_type == "User"
        if op.kind == "create":
            assert op.body is not None
            made = (
                target.create_user(op.body)  # type: ignore[arg-type]
                if user
                else target.create_group(op.body)  # type: ignore[arg-type]
            )
            created[planned.target_id] = made.id or ""
        elif op.kind == "delete":
            (target.delete_user if user else target.delete_group)(op.target_id)
        elif op.body is None and op.kind == "add_members":
            target.add_members(op.target_id, list(op.members))
        elif op.body is None and op.kind == "remove_members":
            target.remove_members(op.target_id, list(op.members))
        else:
            change: Any = op.body if op.body is not None else list(op.patch)
            if op.body is not None and any(p.op == "remove" for p in op.body_patch()):
                change = list(op.body_patch())  # a body cannot clear: as the executor does
            (target.update_user if user else target.update_group)(op.target_id, change)
    return created


@pytest.fixture
def target() -> Iterator[tuple[MemoryTarget, BlockingTarget]]:
    memory = MemoryTarget(
        users=[User(id="old-1", user_name="dee@example.com", title="Temp")],
    )
    with BlockingTarget(memory) as blocking:
        yield memory, blocking


def cycle(
    desired: DesiredState,
    memory: MemoryTarget,
    blocking: BlockingTarget,
    state: SyncState,
    policy: Policy = POLICY,
) -> tuple[Plan, SyncState]:
    """Plan against what the target holds, apply, and record the next state."""
    result = plan(desired, memory.state(), policy, state, NOW)
    created = apply(result, blocking)
    return result, state.after(result, created)


def _directory(title: str | None = "Guide", *, leaver: bool = False) -> DesiredState:
    people = [
        DesiredUser(
            key=f"e{i}",
            user=User(
                external_id=f"e{i}",
                user_name=f"{name}@example.com",
                title=title if name == "ann" else "Staff",
                emails=[Email(value=f"{name}@example.com", type="work", primary=True)],
            ),
        )
        for i, name in enumerate(["ann", "bob", "cy", "dee"])
        if not (leaver and name == "cy")
    ]
    return DesiredState(
        users=people,
        groups=[
            DesiredGroup(
                key="g1",
                group=Group(external_id="g1", display_name="Engineering"),
                member_keys=[p.key for p in people],
            )
        ],
        managed_user_attributes=("externalId", "userName", "title", 'emails[type eq "work"].value'),
    )


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_directory_lifecycle_converges_on_a_memory_target(
    target: tuple[MemoryTarget, BlockingTarget], method: Any
) -> None:
    """Create, adopt, change, leave: each cycle applies cleanly, the next finds nothing."""
    memory, blocking = target
    policy = attrs.evolve(POLICY, update_method=method)
    first, state = cycle(_directory(), memory, blocking, SyncState(), policy)
    # PUT targets get a new group with its members in the POST body.
    created = {"create": 4, "update": 1, **({"add_members": 1} if method == "patch" else {})}
    assert created == first.summary()
    assert "matched by userName, adopted; externalId, title and emails changed" == next(
        op.reason for op in first.operations if op.kind == "update"
    )
    second, state = cycle(_directory(), memory, blocking, state, policy)
    assert (True, (), ()) == (second.is_empty, second.conflicts, second.links)

    memory.calls.clear()
    third, state = cycle(_directory("Lead", leaver=True), memory, blocking, state, policy)
    assert {"update": 1, "remove_members": 1, "deactivate": 1} == third.summary()
    if method == "patch":
        # One changed attribute, one request; the leaver leaves the group in one more.
        assert 3 == memory.requests("PATCH")
    assert (False, "Lead") == (
        next(u.active for u in memory.state().users if u.user_name == "cy@example.com"),
        next(u.title for u in memory.state().users if u.user_name == "ann@example.com"),
    )
    assert (
        () == cycle(_directory("Lead", leaver=True), memory, blocking, state, policy)[0].operations
    )

    # HR clears ann's title: one request removes it, and it stays removed.
    memory.calls.clear()
    fourth, state = cycle(_directory(None, leaver=True), memory, blocking, state, policy)
    assert ({"update": 1}, "title cleared in source") == (
        fourth.summary(),
        fourth.operations[0].reason,
    )
    assert [("PATCH", "Users", 1)] == [(c.method, c.resource, c.count) for c in memory.calls]
    assert None is next(u.title for u in memory.state().users if u.user_name == "ann@example.com")
    assert () == cycle(_directory(None, leaver=True), memory, blocking, state, policy)[0].operations


@pytest.mark.properties
@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    desired_states(max_users=60, max_groups=8),
    desired_states(max_users=60, max_groups=8),
    st.sampled_from(["patch", "put"]),
)
def test_any_source_applied_twice_to_a_memory_target_converges(
    first: DesiredState, second: DesiredState, method: Any
) -> None:
    """Whatever the source holds, an applied plan makes the target agree with it (the
    next plan is empty, or name contention takes a few cycles: see ``settle``), and so
    does the plan for the next source that replaces it, clearing what it no longer
    sets and pointing managers at their new ids. The target refusing an operation (a
    taken userName, a missing member) fails the test.

    Between the two, a person adds a primary email of their own to every account in
    the application: a source managing the work email by filter keeps it."""
    memory = MemoryTarget()
    policy = attrs.evolve(
        POLICY, force=frozenset({"source_shrink", "max_deprovisions"}), update_method=method
    )
    own = {"type": "other", "value": "me@elsewhere.example", "primary": True}
    given_own: set[str | None] = set()
    with BlockingTarget(memory) as blocking:
        state = SyncState()
        for desired in (first, second):

            def step(desired: DesiredState = desired) -> Plan:
                nonlocal state
                result, state = cycle(desired, memory, blocking, state, policy)
                return result

            settle(step)
            if desired is first:
                for user in memory.state().users:
                    add = PatchOperation(op="add", path="emails", value=[own])
                    blocking.update_user(user.id or "", [add])
                    given_own.add(user.id)
    if second.managed_user_attributes in SCOPED:
        lost = [u.id for u in memory.state().users if u.id in given_own and not _holds(u, own)]
        assert [] == lost


def _holds(user: User, email: dict[str, Any]) -> bool:
    return any((e.type, e.value) == (email["type"], email["value"]) for e in user.emails or ())
