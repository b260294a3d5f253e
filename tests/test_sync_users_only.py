"""A users-only target (the UserTarget methods, no group methods, no ``schema()``)
through the public Provisioner: a users-only mapping runs with no group request at all;
what a target lacks for a mapping, or for a plan, is refused by name before any I/O; and
a target's declared schema makes mapping an attribute it does not keep a blocking
problem."""

from __future__ import annotations

from typing import Any

import pytest

from _sync_helpers import Clock, Timer, memory_target
from _users_only import UsersOnly
from scimsync import Provisioner
from scimsync.engine import Policy
from scimsync.errors import ConfigurationError
from scimsync.mapping import Mapping, lower
from scimsync.schema import CORE_SCHEMAS
from scimsync.sources import MemorySource
from scimsync.targets import GROUP_METHODS

USERS = Mapping(users={"userName": lower("email"), "title": "title"})
WITH_GROUPS = Mapping(users={"userName": lower("email")}, member_of="team")


def people(count: int) -> list[dict[str, Any]]:
    """``count`` people, each with a title and a team."""
    return [
        {"id": f"e{i}", "email": f"User{i}@example.com", "title": f"T{i}", "team": "eng"}
        for i in range(count)
    ]


def provisioner(target: object, mapping: Mapping, records: list[dict[str, Any]]) -> Provisioner:
    """A provisioner with a still clock, reading the target on every cycle."""
    return Provisioner(
        MemorySource(users=records),
        mapping,
        target,  # type: ignore[arg-type]
        Policy(max_deprovisions_percent=50, max_source_shrink=50),
        full_cycle_every=None,
        clock=Clock(),
        timer=Timer(),
    )


def requests(target: UsersOnly) -> list[tuple[str, str]]:
    """The requests the users-only target stood for: (method, resource)."""
    return [(call.method, call.resource) for call in target.inner.calls]


def test_a_users_only_mapping_runs_with_no_group_request() -> None:
    """Creates, updates and deactivations go through; no request ever concerns groups,
    and a settled target plans nothing."""
    target = UsersOnly(memory_target())
    records = people(4)
    sync = provisioner(target, USERS, records)
    created = sync.run_once()
    assert ({"create": 4}, True) == (dict(created.planned), created.ok)
    records[0]["title"] = "Lead"
    sync.source = MemorySource(users=records[:3])
    changed = sync.run_once()
    assert {"update": 1, "deactivate": 1} == dict(changed.planned)
    assert sync.plan().is_empty
    assert [] == [r for r in requests(target) if r[1] != "Users"]
    held = {u.user_name: (u.title, u.active) for u in target.inner.state().users}
    assert ("Lead", False) == (held["user0@example.com"][0], held["user3@example.com"][1])


def test_a_mapping_with_groups_needs_the_group_methods_by_name() -> None:
    """member_of= against a users-only target is a ConfigurationError when the
    provisioner is made, naming every group method, before any request."""
    target = UsersOnly(memory_target())
    with pytest.raises(ConfigurationError) as raised:
        provisioner(target, WITH_GROUPS, people(2))
    assert (
        f"the target UsersOnly lacks {', '.join(GROUP_METHODS)}: the mapping makes groups "
        "(groups= or member_of=), and a target keeps groups only with every GroupTarget method"
    ) == str(raised.value)
    assert [] == requests(target)


def test_a_missing_user_method_is_named_whatever_the_mapping() -> None:
    """A target without reactivate_user is refused even for a users-only mapping."""

    class NoReactivation(UsersOnly):
        reactivate_user = None  # type: ignore[assignment]

    with pytest.raises(ConfigurationError) as raised:
        provisioner(NoReactivation(), USERS, people(1))
    assert (
        "the target NoReactivation lacks reactivate_user: every target implements the "
        "UserTarget methods"
    ) == str(raised.value)


def test_a_plan_with_group_operations_is_refused_for_a_users_only_target() -> None:
    """A plan made for a target with groups, applied to a users-only one, is refused by
    name before any request."""
    made = provisioner(memory_target(), WITH_GROUPS, people(2)).plan()
    assert {"create", "add_members"} == {
        op.kind for op in made.operations if op.resource_type == "Group"
    }
    target = UsersOnly(memory_target())
    with pytest.raises(ConfigurationError, match=r"lacks list_groups, .*: the plan has group"):
        provisioner(target, USERS, people(2)).apply(made)
    assert [] == requests(target)


def test_without_schema_the_mapping_is_checked_against_the_core_schemas() -> None:
    """schema() is optional: a target without it is checked against the core schemas,
    so a mapped title runs."""
    target = UsersOnly(memory_target())
    report = provisioner(target, USERS, people(1)).run_once()
    assert ({"create": 1}, "T0") == (dict(report.planned), target.inner.state().users[0].title)


def test_an_attribute_the_declared_schema_does_not_keep_is_blocking() -> None:
    """A target declaring that it keeps userName and active only: a mapped title is a
    blocking problem at the first cycle, and nothing is written."""
    target = memory_target(schema=CORE_SCHEMAS.only(users=["userName", "active"]))
    sync = provisioner(target, USERS, people(1))
    with pytest.raises(ConfigurationError) as raised:
        sync.run_once()
    assert (
        "the mapping cannot be used with this target:\n  error: users['title']: the target's "
        "User has no attribute 'title': values mapped to it would be lost"
    ) == str(raised.value)
    assert 0 == target.requests("POST") + target.requests("PATCH")
