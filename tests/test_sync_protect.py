"""Bad source records protect their own identities only, through the public Provisioner.

Issue #13: 10 leavers were never deactivated because 3 other rows had invalid
emails. A keyed record with an issue now keeps its own account (and its groups),
while every other deprovision of the cycle goes ahead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from _sync_helpers import Clock, Timer, memory_target
from scimsync import Provisioner
from scimsync.engine import Policy
from scimsync.mapping import Mapping, Record, split
from scimsync.sources import MemorySource
from scimsync.sync import MemoryStateStore, StateStore

if TYPE_CHECKING:
    from scimsync.targets import MemoryTarget

PERMISSIVE = Policy(max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None)


def email(record: Record) -> str:
    """The record's email, refused when it is none (as a real mapping would check)."""
    value = str(record["email"])
    if "@" not in value:
        raise ValueError(f"not an email: {value!r}")
    return value


MAPPING = Mapping(users={"userName": email, "displayName": "name"}, member_of=split("groups", ";"))


def person(i: int, address: str | None = None) -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "email": address or f"user{i}@example.com",
        "name": f"User {i}",
        "groups": "staff",
    }


def provisioner(
    source: MemorySource, target: MemoryTarget, state: StateStore, policy: Policy = PERMISSIVE
) -> Provisioner:
    return Provisioner(
        source,
        MAPPING,
        target,
        policy,
        state=state,
        clock=Clock(),
        timer=Timer(),
    )


def active(target: MemoryTarget) -> dict[str, bool]:
    """externalId -> whether the account is active."""
    return {u.external_id or "": u.active is not False for u in target.state().users}


def staff(target: MemoryTarget) -> set[str]:
    """The externalIds of the members of the staff group."""
    (group,) = target.state().groups
    by_id = {u.id: u for u in target.state().users}
    return {by_id[m.value].external_id or "" for m in group.members or () if m.value in by_id}


def test_ten_leavers_are_deactivated_while_three_other_records_are_invalid() -> None:
    """The issue's case, end to end: the 10 leavers are deactivated and leave the group;
    the 3 people with invalid emails keep their active accounts and their group; the
    report names them and why. Once one of them leaves the file, it goes too."""
    source = MemorySource(users=[person(i) for i in range(23)])
    target, state = memory_target(), MemoryStateStore()
    sync = provisioner(source, target, state)
    assert sync.run_once().ok
    source.users[:] = [person(i, "not-an-email") for i in (10, 11, 12)] + [
        person(i) for i in range(13, 23)
    ]

    report = sync.run_once()

    assert {"deactivate": {"applied": 10}, "remove_members": {"applied": 1}} == report.counts()
    assert (True, False, True) == (report.ok, report.blocked, report.source_complete)
    assert {f"e{i}": i >= 10 for i in range(23)} == active(target)
    assert {f"e{i}" for i in range(10, 23)} == staff(target)
    assert [("e10", 1), ("e11", 1), ("e12", 1)] == [
        (p.source_key, len(p.target_ids)) for p in report.protected
    ]
    assert report.protected[0].reason.startswith(
        "source record has an issue: mapping_failed: users['userName']:"
    )
    assert report.protected[0].reason.endswith("raised ValueError: not an email: 'not-an-email'")
    text = str(report)
    assert "  3 protected (source records with issues: not deprovisioned, groups kept):" in text
    assert '    User "e10" (id ' in text
    assert 3 == len(report.source_issues)

    # The bad records are still there: nothing more to do, and no incremental shortcut.
    again = sync.run_once()
    assert ("full", (), 3) == (again.mode, again.results, len(again.protected))
    # One of them leaves the file: its account is deactivated now.
    source.users[:] = [u for u in source.users if u["id"] != "e12"]
    gone = sync.run_once()
    assert ({"deactivate": {"applied": 1}, "remove_members": {"applied": 1}}, False) == (
        gone.counts(),
        active(target)["e12"],
    )


def test_a_bad_record_protects_its_account_after_the_state_store_was_lost() -> None:
    """No link in a fresh state store: the account carrying the key as externalId is the
    bad record's and stays; the leavers, owned by the externalId prefix, go."""
    source = MemorySource(users=[person(i) for i in range(6)])
    target = memory_target()
    assert provisioner(source, target, MemoryStateStore()).run_once().ok
    source.users[:] = [person(3, "broken"), person(4), person(5)]
    lost = provisioner(
        source, target, MemoryStateStore(), attrs.evolve(PERMISSIVE, external_id_prefix="e")
    )
    report = lost.run_once()
    assert ({"e0": False, "e1": False, "e2": False, "e3": True, "e4": True, "e5": True}) == (
        active(target)
    )
    assert (False, ["e3"]) == (report.blocked, [p.source_key for p in report.protected])


def test_an_empty_source_still_deprovisions_no_one() -> None:
    """Nothing read is not everyone leaving: the default guards hold every deactivation."""
    source = MemorySource(users=[person(i) for i in range(3)])
    target = memory_target()
    sync = provisioner(source, target, MemoryStateStore(), Policy())
    assert sync.run_once().ok
    source.users.clear()
    report = sync.run_once()
    assert (True, 4, ()) == (report.blocked, report.held, report.results)  # 3 users, 1 group
    assert ({"e0": True, "e1": True, "e2": True}, {"e0", "e1", "e2"}) == (
        active(target),
        staff(target),
    )
