"""Convergence on custom (non-SCIM) targets that do not keep what they are told.

A connector written on the ``Target`` protocol shows the same habits as real SCIM
targets (issue #13): an application without a nickname field takes ``nickName`` and
drops it; one that ignores a removal keeps a cleared title. Through the public
``Provisioner``: cycle 1 creates everyone and warns once; from cycle 3 at the latest a
cycle that changes nothing plans nothing and sends no write; 20 changed titles are 20
writes; 10 leavers are deactivated; an empty source deprovisions no one. The how-to's
own connector ("Write a target for an application without SCIM") is run from its page.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import httpx

from _sync_helpers import WHEN, Clock, Timer
from scimsync import Provisioner, User
from scimsync.engine import Ledger, Policy, SyncState, Unkept
from scimsync.mapping import Mapping, lower
from scimsync.sources import MemorySource
from scimsync.sync import MemoryStateStore, StoredState
from scimsync.targets import MemoryTarget, Target, UserUpdate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scimsync.sync import SyncReport

USERS = 60
GROUPS = 4
HOWTO = Path(__file__).parent.parent / "docs" / "howto" / "rest-target.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

MAPPING = Mapping(
    users={"userName": lower("email"), "title": "title", "nickName": "nick"},
    member_of="group",
)
# 10 leavers of 60 is more than the default 10 %.
POLICY = Policy(max_deprovisions_percent=20, max_source_shrink=20)

#: The Target methods that write.
WRITES = frozenset(
    {
        "create_user",
        "create_group",
        "update_user",
        "update_group",
        "deactivate_user",
        "reactivate_user",
        "delete_user",
        "delete_group",
        "add_members",
        "remove_members",
    }
)


def people(count: int = USERS) -> list[dict[str, Any]]:
    """User i is in group i % 4, with title T<i % 5> and a nickname."""
    return [
        {
            "id": f"e{i}",
            "email": f"User{i}@Example.com",
            "title": f"T{i % 5}",
            "nick": f"nick{i}",
            "group": f"g{i % GROUPS}",
        }
        for i in range(count)
    ]


class WriteCounter:
    """Passes every call on to a target, counting the write calls by method name."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.writes: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name not in WRITES:
            return method

        async def write(*args: Any) -> Any:
            self.writes[name] += 1
            return await method(*args)

        return write


class Rig:
    """A provisioner from an editable source into a custom target, cycle by cycle.

    ``users`` reads what the application holds, as users, without going through
    the provisioner.
    """

    def __init__(self, target: object, users: Callable[[], Sequence[User]]) -> None:
        self.records = people()
        self.target = WriteCounter(target)
        self.users = users
        self.clock = Clock(WHEN)
        self.provisioner = Provisioner(
            MemorySource(users=self.records),
            MAPPING,
            cast("Target", self.target),
            POLICY,
            check_mapping=False,
            full_cycle_every=None,
            clock=self.clock,
            timer=Timer(),
        )

    def cycle(self) -> tuple[SyncReport, int]:
        """One full cycle an hour after the last; its report and the writes it sent."""
        self.provisioner.source = MemorySource(users=self.records)
        self.target.writes.clear()
        self.clock.advance(3600)
        report = self.provisioner.run_once(full=True)
        return report, sum(self.target.writes.values())

    def titles(self) -> dict[str, str | None]:
        """userName → title, as the application holds them."""
        return {u.user_name or "": u.title for u in self.users()}


def settles_and_still_takes_changes(rig: Rig) -> None:
    """The convergence checks every custom target here passes (see the module docstring)."""
    reports = [rig.cycle() for _ in range(3)]
    first, _ = reports[0]
    assert USERS + GROUPS == first.planned.get("create"), str(first)
    assert first.ok, str(first)
    assert 1 == len(first.target_warnings), str(first)
    assert "User nickName" in first.target_warnings[0]
    assert {f"user{i}@example.com" for i in range(USERS)} == set(rig.titles())
    for report, _ in reports[1:]:
        assert () == report.target_warnings
    third, third_writes = reports[2]
    assert ({}, 0) == (dict(third.planned), third_writes), str(third)

    # 20 changed titles: one write each, and kept.
    for record in rig.records[:20]:
        record["title"] = "Lead"
    changed, changed_writes = rig.cycle()
    assert ({"update": 20}, 20) == (dict(changed.planned), changed_writes), str(changed)
    assert changed.ok, str(changed)
    assert 20 == sum(title == "Lead" for title in rig.titles().values())
    again, again_writes = rig.cycle()
    assert ({}, 0) == (dict(again.planned), again_writes), str(again)

    # 10 leavers are deactivated.
    del rig.records[-10:]
    left, _ = rig.cycle()
    # Each deactivated, and taken out of its group (one write per group).
    expected = ({"deactivate": 10, "remove_members": GROUPS}, 10)
    assert expected == (dict(left.planned), rig.target.writes["deactivate_user"]), str(left)
    assert left.ok, str(left)
    inactive = {u.user_name for u in rig.users() if u.active is False}
    assert {f"user{i}@example.com" for i in range(USERS - 10, USERS)} == inactive
    settled, settled_writes = rig.cycle()
    assert ({}, 0) == (dict(settled.planned), settled_writes), str(settled)

    # An empty source deprovisions no one.
    rig.records.clear()
    empty, empty_writes = rig.cycle()
    assert (True, 0) == (empty.blocked, empty_writes), str(empty)


# -- a connector on top of MemoryTarget ------------------------------------------------


class NoNickNames(MemoryTarget):
    """An application without a nickname field: it takes ``nickName`` and drops it."""

    async def create_user(self, user: User) -> User:
        return await super().create_user(attrs.evolve(user, nick_name=None))

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        if isinstance(change, User):
            change = attrs.evolve(change, nick_name=None)
        else:
            change = [op for op in change if not (op.path or "").lower().startswith("nickname")]
        return await super().update_user(user_id, change)


class KeepsWhatItIsNotToldToClear(MemoryTarget):
    """An application whose update ignores a removal (as an API merging a JSON body
    without its null values does): a cleared title stays."""

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        if not isinstance(change, User):
            change = [op for op in change if op.op != "remove"]
        return await super().update_user(user_id, change)


def memory_rig(target: MemoryTarget) -> Rig:
    return Rig(target, lambda: target.state().users)


def test_a_target_dropping_an_attribute_settles_and_still_takes_changes() -> None:
    """A connector that drops nickName: cycle 1 creates everyone and warns once; a
    no-change cycle then sends nothing; changed titles, leavers and an empty source
    are handled as on any target."""
    settles_and_still_takes_changes(memory_rig(NoNickNames()))


class AnswersInShort(NoNickNames):
    """An application without a nickname field that answers creates and updates with a
    summary of the account (its id and login), as many REST APIs do: the connector
    returns what it was answered."""

    async def create_user(self, user: User) -> User:
        created = await super().create_user(user)
        return User(id=created.id, user_name=created.user_name)

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        updated = await super().update_user(user_id, change)
        assert updated is not None
        return User(id=updated.id, user_name=updated.user_name)


def test_a_target_answering_in_short_is_checked_by_what_it_holds() -> None:
    """Answers without attributes the target keeps are not taken as dropping them: only
    nickName is learned, and changed titles are still written."""
    rig = memory_rig(AnswersInShort())
    settles_and_still_takes_changes(rig)
    learned = rig.provisioner.learned()
    assert ("User nickName: the target drops it (seen 60 times)",) == learned


def test_a_target_that_does_not_clear_stops_being_asked_to() -> None:
    """A cleared title the target keeps is noted "not cleared" on the first cycle after
    clearing, learned on the second (one warning), and no longer re-planned after that;
    titles it is sent are still written."""
    target = KeepsWhatItIsNotToldToClear()
    rig = memory_rig(target)
    created, _ = rig.cycle()
    assert (USERS + GROUPS, ()) == (created.planned.get("create"), created.target_warnings)

    rig.records[0]["title"] = ""
    first, first_writes = rig.cycle()
    assert ({"update": 1}, 1) == (dict(first.planned), first_writes)
    assert ["the target did not keep title (not cleared)"] == [r.reason for r in first.results]
    assert ("applied", ()) == (first.results[0].outcome, first.target_warnings)
    second, second_writes = rig.cycle()
    assert ({"update": 1}, 1) == (dict(second.planned), second_writes)
    assert 1 == len(second.target_warnings), str(second)
    assert "User title" in second.target_warnings[0]
    assert "does not clear it" in second.target_warnings[0]
    third, third_writes = rig.cycle()
    assert ({}, 0, ()) == (dict(third.planned), third_writes, third.target_warnings)
    assert "T0" == rig.titles()["user0@example.com"]

    # What the target does keep is still corrected.
    rig.records[1]["title"] = "Lead"
    changed, changed_writes = rig.cycle()
    assert ({"update": 1}, 1) == (dict(changed.planned), changed_writes)
    assert "Lead" == rig.titles()["user1@example.com"]


# -- the how-to's connector ----------------------------------------------------------


def howto() -> dict[str, Any]:
    """The how-to's fake Acme API and its connector, run from the page's own code up to
    the connector: a fresh namespace (an empty Acme) on each call."""
    namespace: dict[str, Any] = {"__name__": "howto_rest_target"}
    for block in FENCE.findall(HOWTO.read_text("utf-8")):
        exec(compile(block, str(HOWTO), "exec"), namespace)  # our own documentation
        if "AcmeTarget" in namespace:
            return namespace
    raise AssertionError(f"{HOWTO.name} defines no AcmeTarget")


def howto_rig() -> tuple[Rig, dict[str, dict[str, object]]]:
    """A rig on the how-to's connector, and the people the fake Acme API holds."""
    page = howto()
    connector = page["AcmeTarget"]
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(page["acme"]), base_url="https://acme.example.com"
    )
    held: dict[str, dict[str, object]] = page["people"]
    return Rig(connector(http), lambda: [connector._user(p) for p in held.values()]), held


def test_the_howto_target_settles_and_still_takes_changes() -> None:
    """The how-to's connector (Acme has no nickname field) passes the same checks: it
    warns once about nickName, then sends nothing when nothing changed."""
    rig, _ = howto_rig()
    with rig.provisioner:
        settles_and_still_takes_changes(rig)


def test_the_howto_target_clears_a_cleared_title() -> None:
    """A title cleared in the source is cleared in Acme (sent as null), checked as kept,
    and the next cycle sends nothing."""
    rig, held = howto_rig()
    with rig.provisioner:
        rig.cycle()
        rig.records[0]["title"] = ""
        cleared, cleared_writes = rig.cycle()
        assert ({"update": 1}, 1) == (dict(cleared.planned), cleared_writes)
        assert (["applied"], [""], ()) == (
            [r.outcome for r in cleared.results],
            [r.reason for r in cleared.results],
            cleared.target_warnings,
        )
        person = next(p for p in held.values() if p["login"] == "user0@example.com")
        assert None is person.get("job")
        assert None is rig.titles()["user0@example.com"]
        after, after_writes = rig.cycle()
        assert ({}, 0) == (dict(after.planned), after_writes), str(after)
        assert ("User nickName: the target drops it (seen 60 times)",) == (
            rig.provisioner.learned()
        )


def test_forgetting_one_resource_type_keeps_the_others() -> None:
    """``forget(resource_type="Group")`` forgets the group paths only: what was learned of
    users, and what the target refuses, stays."""
    seen = {"title": Unkept(how="dropped", seen=3)}
    store = MemoryStateStore(
        StoredState(
            state=SyncState(users=Ledger(unkept=seen), groups=Ledger(unkept=seen)),
            target_facts={"Group.patch": "put"},
        )
    )
    provisioner = Provisioner(
        MemorySource(users=[]), Mapping(users={"userName": "email"}), MemoryTarget(), state=store
    )
    provisioner.forget(resource_type="Group")
    assert (
        "User title: the target drops it (seen 3 times)",
        "the target refuses PATCH on Groups: they are written with PUT",
    ) == provisioner.learned()
    provisioner.forget()
    assert () == provisioner.learned()
