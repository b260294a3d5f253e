"""The Provisioner end to end with managed attributes and managers named by source key.

HR clears a title: the next cycle removes it with one request, and the one after has
nothing to do. HR names managers by employee key: the target gets their ids, managers
first, circles included, and a key that names nobody is reported.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from _sync_helpers import Clock, Timer, memory_target
from scimsync import Email, Provisioner, SyncReport, User
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import PlannedChange, Policy
from scimsync.mapping import Mapping, keep_when_empty, ref
from scimsync.sources import MemorySource
from scimsync.sync import MemoryStateStore
from scimsync.targets import ScimTarget
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from scimsync.targets import MemoryTarget

MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
MAPPING = Mapping(
    users={
        "userName": "email",
        "title": "title",
        "displayName": keep_when_empty("name"),
        'phoneNumbers[type eq "work"].value': "phone",
        MANAGER: ref("manager"),
    }
)


def person(key: str, manager: str = "", **fields: str) -> dict[str, Any]:
    return {
        "id": key,
        "email": f"{key}@example.com",
        "title": "Engineer",
        "name": key.upper(),
        "phone": "",
        "manager": manager,
        **fields,
    }


class Rig:
    """A provisioner over a memory source and target, remembering its state."""

    def __init__(self, records: list[dict[str, Any]], policy: Policy | None = None) -> None:
        self.source = MemorySource(users=records)
        self.target: MemoryTarget = memory_target()
        self.provisioner = Provisioner(
            self.source,
            MAPPING,
            self.target,
            policy or Policy(),
            state=MemoryStateStore(),
            clock=Clock(),
            timer=Timer(),
        )

    def run(self, **kwargs: Any) -> SyncReport:
        self.target.calls.clear()
        return self.provisioner.run_once(**kwargs)

    def users(self) -> dict[str, User]:
        return {u.external_id or "": u for u in self.target.state().users}

    def managers(self) -> dict[str, str | None]:
        """Source key -> source key of its manager, read from the target's ids."""
        keys = {u.id: u.external_id for u in self.target.state().users}
        return {
            u.external_id or "": keys.get(u.enterprise.manager.value)
            for u in self.target.state().users
            if u.enterprise is not None and u.enterprise.manager is not None
        }

    def writes(self) -> Counter[tuple[str, str, int]]:
        return Counter(
            (c.method, c.resource, c.count) for c in self.target.calls if c.method != "GET"
        )


def test_hr_clearing_a_title_removes_it_with_one_request_then_nothing() -> None:
    """One PATCH carrying one ``remove``; the next full cycle writes nothing."""
    for method in ("patch", "put"):
        rig = Rig([person("e1", phone="555-0100"), person("e2")], Policy(update_method=method))
        assert rig.run().ok
        rig.source.users[0] = person("e1", title="", phone="555-0100")
        report = rig.run()
        assert ({"update": {"applied": 1}}, Counter({("PATCH", "Users", 1): 1})) == (
            report.counts(),
            rig.writes(),
        )
        assert (PlannedChange(path="title", old="Engineer"),) == report.results[0].changes
        assert (None, "E1") == (rig.users()["e1"].title, rig.users()["e1"].display_name)
        assert ({}, Counter()) == (rig.run(full=True).counts(), rig.writes())


def test_an_emptied_phone_is_removed_by_its_filter_and_a_kept_name_stays() -> None:
    """``phoneNumbers[type eq "work"]`` goes; displayName, kept when empty, stays."""
    rig = Rig([person("e1", phone="555-0100")])
    rig.run()
    rig.source.users[0] = person("e1", name="", phone="")
    assert {"update": {"applied": 1}} == rig.run().counts()
    user = rig.users()["e1"]
    assert (None, "E1") == (user.phone_numbers, user.display_name)


def test_managers_named_by_employee_key_get_the_managers_ids() -> None:
    """Managers are created before their reports; a circle is closed by one update;
    the next cycle writes nothing."""
    records = [
        person("a", manager="boss"),
        person("boss"),
        person("x", manager="y"),
        person("y", manager="x"),
    ]
    rig = Rig(records)
    report = rig.run()
    assert {"create": {"applied": 4}, "update": {"applied": 1}} == report.counts()
    assert {"a": "boss", "x": "y", "y": "x"} == rig.managers()
    assert ({}, Counter()) == (rig.run(full=True).counts(), rig.writes())


def test_a_new_manager_in_the_source_is_a_change_even_for_an_incremental_cycle() -> None:
    """A manager key is part of what the source wants: changing it is seen, and written
    as one replace of the manager's id."""
    rig = Rig([person("a", manager="b"), person("b"), person("c")])
    rig.run()
    rig.source.users[0] = person("a", manager="c")
    report = rig.run()
    assert ("full", {"update": {"applied": 1}}) == (report.mode, report.counts())
    assert {"a": "c"} == rig.managers()
    rig.source.users[0] = person("a")
    assert {"update": {"applied": 1}} == rig.run().counts()
    assert {} == rig.managers()


def test_a_manager_change_is_shown_by_the_managers_source_keys() -> None:
    """Reviews name managers as HR does: next to each account id, its source key."""
    rig = Rig([person("a", manager="b"), person("b"), person("c")])
    rig.run()
    ids = {key: user.id for key, user in rig.users().items()}
    rig.source.users[0] = person("a", manager="c")
    expected = f'"{ids["b"]}" (b) → "{ids["c"]}" (c)'
    assert expected in rig.provisioner.plan().render()
    steps = {step.name: step.lines for step in rig.provisioner.provision_one("a").steps}
    assert [f"User {MANAGER}: {expected}"] == list(steps["changes"])


def test_a_manager_key_that_names_nobody_is_reported_and_changes_nothing() -> None:
    """The record is used; the issue names the key; the target's manager stays."""
    rig = Rig([person("a", manager="b"), person("b")])
    rig.run()
    rig.source.users[0] = person("a", manager="ghost")
    report = rig.run()
    assert report.ok
    assert {} == report.counts()
    assert {"a": "b"} == rig.managers()
    assert () == report.source_issues
    assert [True] == [
        "unknown_reference" in issue and "'ghost'" in issue for issue in report.source_warnings
    ]
    assert "1 source records used with a part left out:" in str(report)
    assert "not used" not in str(report)


def test_provisioning_one_user_now_finds_its_existing_manager() -> None:
    """On demand, the manager's account is looked up, and its id written."""
    rig = Rig([person("boss")])
    rig.run()
    rig.source.users.append(person("a", manager="boss"))
    explanation = rig.provisioner.provision_one("a")
    assert explanation.report.ok
    assert {"a": "boss"} == rig.managers()


def test_a_newly_managed_attribute_is_cleared_without_waiting_for_a_full_cycle() -> None:
    """A mapping that starts managing an attribute makes the next cycle read the target
    (no identity changed in the source, yet there are values to clear)."""
    rig = Rig([person("e1", phone="555-0100")])
    rig.provisioner.mapping = Mapping(
        users={"userName": "email", 'phoneNumbers[type eq "work"].value': keep_when_empty("phone")}
    )
    rig.run()
    rig.source.users[0] = person("e1")
    assert {} == rig.run().counts()
    assert "incremental" == rig.run().mode
    rig.provisioner.mapping = Mapping(
        users={"userName": "email", 'phoneNumbers[type eq "work"].value': "phone"}
    )
    report = rig.run()
    assert ("full", {"update": {"applied": 1}}) == (report.mode, report.counts())
    assert None is rig.users()["e1"].phone_numbers


@pytest.mark.parametrize("patch_supported", [True, False])
async def test_an_email_added_in_the_application_survives_every_cycle_over_http(
    patch_supported: bool,
) -> None:
    """The mapping writes the work email, primary. Ann adds her home email in the
    application and makes it primary: the next cycle makes the work one primary again
    (one write; the server clears the home one's flag, RFC 7644 §3.5.2), HR then changes
    her work address, and the home email is still there, with nothing left to do."""
    mapping = Mapping(
        users={
            "userName": "email",
            'emails[type eq "work"].value': "email",
            'emails[type eq "work"].primary': True,
        }
    )
    source = MemorySource(users=[{"id": "e1", "email": "ann@work.example"}])
    with ScimTestServer(token="t", quirks=Quirks(patch_supported=patch_supported)) as server:
        async with AsyncScimClient(server.url, auth=BearerToken("t")) as http:
            provisioner = Provisioner(source, mapping, ScimTarget(http), state=MemoryStateStore())
            assert (await provisioner.arun_once()).ok
            (user,) = server.users()
            home = Email(type="home", value="ann@home.example", primary=True)
            work = attrs.evolve(user.emails[0], primary=False)  # type: ignore[index]
            await http.replace(attrs.evolve(user, emails=(work, home), groups=None))

            fixed = await provisioner.arun_once(full=True)
            assert ({"update": {"applied": 1}}, True) == (fixed.counts(), fixed.ok)
            source.users[0] = {"id": "e1", "email": "ann@new-work.example"}
            moved = await provisioner.arun_once()
            assert ({"update": {"applied": 1}}, True) == (moved.counts(), moved.ok)
            assert True is (await provisioner.aplan()).is_empty
            (user,) = server.users()
    assert [("home", "ann@home.example", False), ("work", "ann@new-work.example", True)] == sorted(
        (e.type, e.value, e.primary) for e in user.emails or ()
    )
