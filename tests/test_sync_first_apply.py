"""A first plan applied as reviewed: creates, then the groups they fill, through SCIM."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from scimsync import Group, Member, Provisioner, User
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.mapping import Mapping, lower, split
from scimsync.sources import MemorySource
from scimsync.sync import SqliteStateStore
from scimsync.targets import BlockingTarget, ScimTarget
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "first-apply-token"
PEOPLE = [
    {"id": "E1", "email": "Ann@example.com", "groups": "eng;all"},
    {"id": "E2", "email": "bob@example.com", "groups": "design;all"},
    {"id": "E3", "email": "cy@example.com", "groups": "all"},
]
MAPPING = Mapping(users={"userName": lower("email")}, member_of=split("groups", ";"))


def _provisioner(server: ScimTestServer, tmp_path: Path) -> Provisioner:
    client = AsyncScimClient(http=server.async_client(), auth=BearerToken(TOKEN))
    return Provisioner(
        MemorySource(users=PEOPLE),
        MAPPING,
        ScimTarget(client),
        Policy(),
        state=SqliteStateStore(tmp_path / "state.sqlite"),
    )


def _memberships(server: ScimTestServer) -> dict[str, list[str]]:
    names = {u.id: u.user_name or "" for u in server.users()}
    return {
        g.display_name or "": sorted(names[m.value] for m in g.members or () if m.value)
        for g in server.groups()
    }


EXPECTED = {
    "all": ["ann@example.com", "bob@example.com", "cy@example.com"],
    "design": ["bob@example.com"],
    "eng": ["ann@example.com"],
}


@pytest.mark.parametrize("quirks", [Quirks(), Quirks(omit_group_members=True)])
def test_applying_the_reviewed_first_plan_fills_the_groups_it_creates(
    tmp_path: Path, quirks: Quirks
) -> None:
    """plan() then apply(plan): member additions to groups created by the same plan
    are applied (they were not on the target when it was re-read), and the next plan
    is empty — also against a target that leaves members out of group listings."""
    server = ScimTestServer(token=TOKEN, quirks=quirks)
    provisioner = _provisioner(server, tmp_path)
    plan = provisioner.plan()
    assert {"create": 6, "add_members": 3} == plan.summary()
    report = provisioner.apply(plan)
    assert (0, EXPECTED) == (report.exit_code, _memberships(server))
    assert provisioner.run_once(full=True).exit_code == 0
    assert provisioner.plan().is_empty


def test_groups_left_empty_on_the_target_are_filled_by_the_next_cycle(tmp_path: Path) -> None:
    """A group that exists with no members is listed as empty (not as "members not
    shown"), so the engine plans its members instead of skipping it."""
    server = ScimTestServer(token=TOKEN)
    for name in ("all", "design", "eng"):
        server.add_group(Group(display_name=name, external_id=name))
    provisioner = _provisioner(server, tmp_path)
    provisioner.policy = Policy(adopt="adopt")
    report = provisioner.run_once()
    assert (0, EXPECTED) == (report.exit_code, _memberships(server))
    assert provisioner.plan().is_empty


def test_an_empty_group_reads_as_empty_by_id(tmp_path: Path) -> None:
    """ScimTarget.get_group gives () for a group without members, even on a target
    that leaves members out unless asked."""
    server = ScimTestServer(token=TOKEN, quirks=Quirks(omit_group_members=True))
    empty = server.add_group(Group(display_name="empty"))
    user = server.add_user(User(user_name="ann"))
    assert empty.id is not None
    assert user.id is not None
    with_member = server.add_group(Group(display_name="with", members=[Member(value=user.id)]))
    assert with_member.id is not None
    client = AsyncScimClient(http=server.async_client(), auth=BearerToken(TOKEN))
    with BlockingTarget(ScimTarget(client)) as target:
        assert () == target.get_group(empty.id).members
        assert [user.id] == [m.value for m in target.get_group(with_member.id).members or ()]
