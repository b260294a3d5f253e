"""The Provisioner against an in-memory target: cycles, guards, state, reports and hooks."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from _sync_helpers import Clock, ScriptedTarget, Timer, memory_target
from scimsync import Provisioner, SyncReport, User
from scimsync.engine import Plan, Policy
from scimsync.errors import (
    ConfigurationError,
    CycleInProgressError,
    InvalidResponseError,
    ServerError,
    TransportError,
)
from scimsync.mapping import Mapping, split
from scimsync.sources import MemorySource, Record
from scimsync.sync import (
    Alert,
    AuditEvent,
    JournalEntry,
    MemoryStateStore,
    Progress,
    SqliteStateStore,
    StateStore,
)
from scimsync.targets import MemoryTarget, TargetListing

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    create_only={"password": lambda record: f"Initial-{record.key}-pw"},
    member_of=split("groups", ";"),
)


def people(count: int, groups: str = "staff") -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "email": f"user{i}@example.com",
            "name": f"User {i}",
            "title": "Engineer",
            "groups": groups,
        }
        for i in range(count)
    ]


@attrs.define
class Rig:
    """A provisioner wired to a memory source and target, with recorded hooks."""

    source: MemorySource
    target: MemoryTarget
    provisioner: Provisioner
    state: StateStore
    clock: Clock
    events: list[AuditEvent]
    alerts: list[Alert]
    progress: list[Progress]

    def users(self) -> dict[str, User]:
        return {u.user_name or "": u for u in self.target.state().users}

    def calls(self) -> Counter[tuple[str, str]]:
        return Counter((c.method, c.resource) for c in self.target.calls)


def rig(
    records: list[dict[str, Any]],
    *,
    target: MemoryTarget | ScriptedTarget | None = None,
    state: StateStore | None = None,
    policy: Policy | None = None,
    **kwargs: Any,
) -> Rig:
    source = MemorySource(users=records)
    scripted = target if isinstance(target, ScriptedTarget) else None
    inner: MemoryTarget = (
        scripted.inner if scripted is not None else target or memory_target()  # type: ignore[assignment]
    )
    clock = Clock()
    events: list[AuditEvent] = []
    alerts: list[Alert] = []
    progress: list[Progress] = []
    store = state or MemoryStateStore()
    counter = iter(range(1, 1000))
    provisioner = Provisioner(
        source,
        MAPPING,
        scripted.as_target() if scripted is not None else inner,
        policy or Policy(),
        state=store,
        audit=events.append,
        on_alert=alerts.append,
        on_progress=progress.append,
        clock=clock,
        timer=Timer(),
        cycle_ids=lambda: f"c{next(counter)}",
        **kwargs,
    )
    return Rig(source, inner, provisioner, store, clock, events, alerts, progress)


# -- cycles ----------------------------------------------------------------------------------


def test_a_first_cycle_creates_everyone_and_their_groups() -> None:
    """Users, then the group, then its members: one request each, all applied."""
    r = rig(people(3))
    report = r.provisioner.run_once()
    assert (True, 0, "full") == (report.ok, report.exit_code, report.mode)
    assert {"create": {"applied": 4}, "add_members": {"applied": 1}} == report.counts()
    assert 3 == len(r.users())
    (group,) = r.target.state().groups
    assert ("staff", 3) == (group.display_name, len(group.members or ()))
    assert Counter({("POST", "Users"): 3, ("POST", "Groups"): 1, ("PATCH", "Groups"): 1,
                    ("GET", "Users"): 1, ("GET", "Groups"): 1}) == r.calls()  # fmt: skip
    assert 7 == report.requests


def test_an_unchanged_source_costs_no_request_and_a_full_cycle_only_the_listings() -> None:
    """Incremental: the source did not change, the target is not read. Full: two
    listings, no write."""
    r = rig(people(3))
    r.provisioner.run_once()
    r.target.calls.clear()
    quiet = r.provisioner.run_once()
    assert ("incremental", "unchanged", 0, []) == (
        quiet.mode,
        quiet.outcome,
        quiet.requests,
        r.target.calls,
    )
    full = r.provisioner.run_once(full=True)
    assert ("full", "ok", ()) == (full.mode, full.outcome, full.results)
    assert Counter({("GET", "Users"): 1, ("GET", "Groups"): 1}) == r.calls()


def test_a_full_cycle_comes_when_due() -> None:
    """After ``full_cycle_every`` an incremental cycle reads the target anyway."""
    r = rig(people(2), full_cycle_every=timedelta(hours=1))
    r.provisioner.run_once()
    assert "incremental" == r.provisioner.run_once().mode
    r.clock.advance(3600)
    assert "full" == r.provisioner.run_once().mode


def test_changes_are_applied_with_exactly_the_expected_requests() -> None:
    """A title change, a rename, a membership move, a departure and a return: one request
    each, and users who leave are deactivated, then reactivated when they come back.
    A deactivation is read back (the answer to it holds no user) to check it was kept."""
    records = people(20)
    r = rig(records)
    r.provisioner.run_once()
    r.source.users[0] = {**records[0], "title": "Lead"}
    r.source.users[1] = {**records[1], "email": "renamed@example.com"}
    r.source.users[2] = {**records[2], "groups": "admins"}
    del r.source.users[3]
    r.target.calls.clear()
    report = r.provisioner.run_once()
    assert report.ok
    assert {
        "create": {"applied": 1},
        "update": {"applied": 2},
        "add_members": {"applied": 1},
        "remove_members": {"applied": 1},
        "deactivate": {"applied": 1},
    } == report.counts()
    users = r.users()
    assert ("Lead", "User 1", False) == (
        users["user0@example.com"].title,
        users["renamed@example.com"].display_name,
        users["user3@example.com"].active,
    )
    assert Counter(
        {("GET", "Users"): 2, ("GET", "Groups"): 1, ("POST", "Groups"): 1,
         ("PATCH", "Users"): 3, ("PATCH", "Groups"): 2}
    ) == r.calls()  # fmt: skip
    r.source.users.append(records[3])
    back = r.provisioner.run_once()
    assert {"reactivate": {"applied": 1}, "add_members": {"applied": 1}} == back.counts()
    assert True is r.users()["user3@example.com"].active


def test_the_sync_methods_refuse_a_running_event_loop() -> None:
    """Inside an event loop, the plain methods say to await the async twins."""
    r = rig(people(1))

    async def inside() -> None:
        with pytest.raises(ConfigurationError, match="await"):
            r.provisioner.run_once()
        report = await r.provisioner.arun_once()
        assert report.ok

    import asyncio

    asyncio.run(inside())
    assert 1 == len(r.users())


def test_cycles_never_overlap() -> None:
    """A cycle started while another holds the lock is refused at once."""
    r = rig(people(1))
    with r.state.lock(), pytest.raises(CycleInProgressError):
        r.provisioner.run_once()
    assert 0 == len(r.users())


# -- guards ---------------------------------------------------------------------------------------


def test_an_empty_source_deprovisions_no_one() -> None:
    """The source comes back empty: nothing is deactivated; the report is blocked (exit 2)."""
    r = rig(people(3))
    r.provisioner.run_once()
    r.source.users.clear()
    report = r.provisioner.run_once()
    assert (True, 2, "blocked") == (report.blocked, report.exit_code, report.outcome)
    assert all(u.active is not False for u in r.users().values())
    assert "source_shrink" in [g.name for g in report.guards if not g.forced]
    assert {"guard"} == {a.kind for a in r.alerts}


def test_a_source_shrinking_by_half_is_blocked_and_a_forced_apply_is_recorded() -> None:
    """Half the source gone: held. Forced past the guard: applied, and the report and
    history say it was forced."""
    r = rig(people(10), policy=Policy(max_deprovisions_percent=None))
    r.provisioner.run_once()
    del r.source.users[5:]
    held = r.provisioner.run_once()
    assert (True, 6) == (held.blocked, held.held)  # 5 deactivations, 1 member removal
    assert 10 == sum(1 for u in r.users().values() if u.active is not False)
    forced = r.provisioner.run_once(force=["source_shrink"])
    assert (0, True) == (forced.exit_code, forced.ok)
    assert [("source_shrink", True)] == [(g.name, g.forced) for g in forced.guards]
    assert 5 == sum(1 for u in r.users().values() if u.active is False)
    assert "forced past" in str(forced)


# -- failures and the state -----------------------------------------------------------------------


def test_failed_operations_are_remembered_and_retried_next_cycle() -> None:
    """A failed create is kept as a pending failure; the next cycle (even incremental)
    reads the target and applies it, and the failure is gone."""
    scripted = ScriptedTarget(memory_target())
    scripted.fail(
        "create_user", ServerError(503), match=lambda a: a[0].user_name == "user1@example.com"
    )
    r = rig(people(2, groups=""), target=scripted)
    first = r.provisioner.run_once()
    assert (1, 1) == (first.exit_code, len(first.failures))
    assert ["failures"] == [a.kind for a in r.alerts]
    (pending,) = r.state.load().failures
    assert ("create", "e1", 1) == (pending.kind, pending.source_key, pending.attempts)
    second = r.provisioner.run_once()
    assert ("full", True) == (second.mode, second.ok)
    assert () == r.state.load().failures
    assert 2 == len(r.users())


def test_a_group_left_empty_by_a_failure_gets_its_members_next_cycle() -> None:
    """The group was created but adding its members failed: the next cycle sees an
    empty group (not one whose members are unknown) and adds them."""
    scripted = ScriptedTarget(memory_target())
    scripted.fail("add_members", ServerError(503))
    r = rig(people(3), target=scripted)
    assert 1 == len(r.provisioner.run_once().failures)
    (group,) = r.target.state().groups
    assert () == tuple(group.members or ())
    second = r.provisioner.run_once()
    assert ({"add_members": {"applied": 1}}, True) == (second.counts(), second.ok)
    assert 3 == len(r.target.state().groups[0].members or ())


def test_links_survive_in_sqlite_between_provisioners(tmp_path: Path) -> None:
    """A new provisioner on the same state file continues where the last one stopped."""
    target = memory_target()
    rig(people(2), target=target, state=SqliteStateStore(tmp_path / "s.db")).provisioner.run_once()
    again = rig(people(2), target=target, state=SqliteStateStore(tmp_path / "s.db"))
    assert "incremental" == again.provisioner.run_once().mode
    full = again.provisioner.run_once(full=True)
    assert ((), 2) == (full.results, len(again.users()))


def test_a_journal_left_by_a_killed_cycle_is_recovered() -> None:
    """Creates a killed cycle made, but never saved, are linked by the next cycle: no
    duplicate, and the report says what was recovered."""
    target = memory_target()
    r = rig(people(2, groups=""), target=target)
    made = target.create_user  # the killed cycle's create went through
    import asyncio

    created = asyncio.run(made(User(user_name="user0@example.com", external_id="e0")))
    r.state.append_journal(
        [
            JournalEntry(
                event="intent",
                resource_type="User",
                source_key="e0",
                identity={"externalId": "e0", "userName": "user0@example.com"},
            )
        ]
    )
    report = r.provisioner.run_once()
    assert report.ok
    assert "1 creates of an interrupted cycle found on the target and linked" == report.note
    assert {"e0": created.id} == {
        k: v for k, v in r.state.load().state.users.links.items() if k == "e0"
    }
    assert 2 == len(r.users())


@pytest.mark.parametrize(
    "error",
    [
        TransportError("connection refused"),
        ServerError(503),
        InvalidResponseError("an HTML page where a ListResponse was expected"),
    ],
    ids=type,
)
def test_a_target_that_cannot_be_read_gives_an_error_report(error: Exception) -> None:
    """The first page of the listing fails: the cycle returns a report whose outcome is
    "error" (exit code 1) with the reason; nothing is written; the history and an alert
    carrying the report have it; the next cycle runs as usual."""
    scripted = ScriptedTarget(memory_target())
    scripted.fail("list_users", error)
    r = rig(people(1), target=scripted)
    report = r.provisioner.run_once()
    reason = f"could not read the target: {type(error).__name__}: {error}"
    assert ("error", 1, False, reason) == (
        report.outcome,
        report.exit_code,
        report.ok,
        report.error,
    )
    assert [] == [name for name, _ in scripted.calls if name.startswith(("create", "update"))]
    assert f"  ! {reason}: nothing was planned or written" in str(report).splitlines()
    assert ("error", reason) == (json.loads(report.to_json())["outcome"], report.to_dict()["error"])
    health = r.provisioner.health()
    assert (False, "error", 1, reason) == (
        health.healthy,
        health.last_outcome,
        health.consecutive_failures,
        health.detail,
    )
    assert [("error", reason, report)] == [(a.kind, a.message, a.report) for a in r.alerts]
    assert r.provisioner.run_once().ok
    assert (True, 0) == (
        r.provisioner.health().healthy,
        r.provisioner.health().consecutive_failures,
    )


def test_applying_a_plan_to_a_target_that_cannot_be_read_gives_an_error_report() -> None:
    """apply(plan) re-reads the target first: when that fails, the report says so and
    nothing of the plan is sent."""
    scripted = ScriptedTarget(memory_target())
    r = rig(people(2, groups=""), target=scripted)
    plan = r.provisioner.plan()
    scripted.fail("list_groups", ServerError(502))
    report = r.provisioner.apply(plan)
    assert ("apply", "error", "could not read the target: ServerError: HTTP 502") == (
        report.mode,
        report.outcome,
        report.error,
    )
    assert {} == r.users()


class _FailingSource:
    """A source whose read raises ``error`` after the first record."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self) -> Iterator[Record]:
        yield Record(key="e0", attributes=people(1)[0])
        raise self.error


def test_a_source_that_cannot_be_read_gives_an_error_report() -> None:
    """A source failing with an I/O error (or a scimsync error) is an "error" report naming
    the source; nothing is written."""
    target = memory_target()
    provisioner = Provisioner(_FailingSource(OSError("disk gone")), MAPPING, target)
    report = provisioner.run_once()
    assert ("error", "could not read the source: OSError: disk gone") == (
        report.outcome,
        report.error,
    )
    assert (False, [], []) == (
        report.source_complete,
        list(target.state().users),
        [c for c in target.calls if c.method != "GET"],
    )


def test_programming_and_configuration_errors_are_still_raised() -> None:
    """A bug in a source (a TypeError) is raised, not reported as a failed read; so is a
    cycle already running."""
    provisioner = Provisioner(_FailingSource(TypeError("bug")), MAPPING, memory_target())
    with pytest.raises(TypeError, match="bug"):
        provisioner.run_once()
    r = rig(people(1))
    with r.state.lock(), pytest.raises(CycleInProgressError):
        r.provisioner.run_once()


class _ShortListing(MemoryTarget):
    """A memory target whose user listing is marked short, and says why."""

    async def list_users(self) -> TargetListing[User]:
        listing = await super().list_users()
        return TargetListing(
            resources=listing.resources,
            complete=False,
            problem="the page at startIndex 2 was empty after 1 of 3 resources announced",
        )


def test_the_listing_s_problem_is_the_guard_s_reason_and_the_report_says_how_to_force() -> None:
    """An incomplete listing holds a deprovision; the guard's reason carries what the
    listing said; the report (text and JSON) says how to go past the guard, and does
    not say "no changes"."""
    target = _ShortListing(id_factory=iter(f"id{i}" for i in range(1, 99)).__next__)
    r = rig(people(20, groups=""), target=target)
    r.provisioner.run_once()  # creates them all
    del r.source.users[19]
    report = r.provisioner.run_once()
    problem = "users: the page at startIndex 2 was empty after 1 of 3 resources announced"
    assert [("incomplete_listing", f"the target listing was incomplete ({problem})")] == [
        (g.name, g.reason) for g in report.guards
    ]
    hint = (
        "Blocked: 1 operation held by incomplete_listing. Review them; if they are meant, "
        "run again with --force incomplete_listing (force=['incomplete_listing'] in Python)."
    )
    lines = str(report).splitlines()
    assert (True, hint, [problem]) == (
        f"  {hint}" in lines,
        report.force_hint,
        report.to_dict()["targetProblems"],
    )
    assert ("  nothing applied: 1 held", False) == (lines[1], "no changes" in str(report))
    assert hint == json.loads(report.to_json())["forceHint"]


def test_a_value_with_a_nul_byte_is_never_sent_and_the_rest_syncs() -> None:
    """A record whose email holds a NUL byte is reported (key and attribute) and never
    written; the other records are created."""
    records = people(3, groups="")
    records[1] = {**records[1], "email": "nul\x00@example.com"}
    r = rig(records)
    report = r.provisioner.run_once()
    assert ["user0@example.com", "user2@example.com"] == sorted(r.users())
    assert [
        "memory users line 2 key 'e1': invalid_value: users['userName']: the value holds a "
        "control character (U+0000), which is never sent"
    ] == list(report.source_issues)
    assert all("\x00" not in repr(call) for call in r.target.calls)


def test_a_mapping_the_target_cannot_take_is_refused_before_any_write() -> None:
    """A mapped attribute the schema lacks blocks the provisioner at once."""
    bad = Mapping(users={"userName": "email", "favouriteColour": "colour"})
    with pytest.raises(ConfigurationError, match="favouriteColour"):
        Provisioner(MemorySource(users=people(1)), bad, memory_target())


# -- plan and apply -------------------------------------------------------------------------------


def test_a_plan_shows_the_source_records_it_could_not_use() -> None:
    """A row without a key is no silent "no changes": the review, the saved plan and
    its JSON name the record and the reason; the good rows are planned."""
    r = rig([*people(2, groups=""), {"email": "nokey@example.com", "name": "No Key"}])
    plan = r.provisioner.plan()
    assert {"create": 2} == plan.summary()
    assert ("memory users line 3: no_key: the record has no key",) == plan.source_issues
    assert "! memory users line 3: no_key: the record has no key" in plan.render()
    assert plan.source_issues == Plan.from_json(plan.to_json()).source_issues


def test_apply_re_plans_against_the_target_as_it_is_now() -> None:
    """Between plan and apply someone fixed one title by hand and created a user: apply
    sends only what is still needed and creates no duplicate."""
    r = rig(people(2, groups=""))
    r.provisioner.run_once()
    r.source.users[0] = {**people(1, groups="")[0], "title": "Lead"}
    r.source.users.append(people(3, groups="")[2])
    plan = r.provisioner.plan()
    assert {"create": 1, "update": 1} == plan.summary()
    import asyncio

    user0 = r.users()["user0@example.com"]
    asyncio.run(r.target.update_user(user0.id or "", User(title="Lead")))
    asyncio.run(r.target.create_user(User(user_name="user2@example.com", external_id="e2")))
    r.target.calls.clear()
    report = r.provisioner.apply(plan)
    assert ("apply", True) == (report.mode, report.ok)
    # The create links user2 and brings its title in line; the update is done already.
    assert [("create", 1), ("update", 0)] == [(x.kind, x.writes) for x in report.results]
    writes = [(c.method, c.resource, c.id) for c in r.target.calls if c.method != "GET"]
    assert [("PATCH", "Users", r.users()["user2@example.com"].id)] == writes
    assert 3 == len(r.users())


def test_applying_a_blocked_plan_applies_what_is_safe_and_holds_the_rest() -> None:
    """A plan with held deprovisions: the rest is applied, the held ones are not, and
    the report is blocked (exit code 2) and says to plan again with --force."""
    r = rig(people(10, groups=""))
    r.provisioner.run_once()
    r.source.users[:] = people(4, groups="")
    r.source.users[0] = {**people(1, groups="")[0], "title": "Lead"}
    plan = r.provisioner.plan()
    assert (True, {"update": 1, "held": 6}) == (plan.blocked, plan.summary())
    report = r.provisioner.apply(plan)
    assert (2, True, {"update": {"applied": 1}}) == (
        report.exit_code,
        report.blocked,
        report.counts(),
    )
    assert (report.force_hint or "").endswith(
        "if they are meant, plan again with --force source_shrink --force max_deprovisions "
        "(force=['source_shrink', 'max_deprovisions'] in Python), then apply the new plan."
    )
    assert 10 == sum(1 for u in r.users().values() if u.active is not False)


# -- reports, audit, hooks ------------------------------------------------------------------------


def test_the_report_is_json_and_reads_well() -> None:
    """``to_json`` is valid JSON with the verdict and counts; ``str`` a summary."""
    r = rig(people(2))
    report = r.provisioner.run_once()
    data = json.loads(report.to_json())
    assert ("scimsync-report/1", True, 0, {"applied": 4, "failed": 0, "skipped": 0}) == (
        data["format"],
        data["ok"],
        data["exitCode"],
        data["totals"],
    )
    assert ["create"] * 3 + ["add_members"] == [x["kind"] for x in data["results"]]
    text = str(report)
    assert text.startswith("Sync c1 (full): OK in")
    assert "create: 3 applied" in text


def test_audit_events_go_to_the_sinks_and_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    """One event per operation, with attributes and masked sensitive values; the same as
    structured log records."""
    caplog.set_level(logging.INFO, logger="scimsync.audit")
    r = rig(people(1, groups=""))
    r.provisioner.run_once()
    (event,) = r.events
    assert ("c1", "create", "User", "e0", "applied") == (
        event.cycle_id,
        event.kind,
        event.resource_type,
        event.source_key,
        event.outcome,
    )
    password = next(c for c in event.changes if c.path == "password")
    assert (None, None, True) == (password.old, password.new, password.sensitive)
    assert "userName" in event.changed_attributes
    (record,) = [rec for rec in caplog.records if rec.name == "scimsync.audit"]
    assert event.to_dict() == record.scimsync_audit  # type: ignore[attr-defined]
    assert "Initial-e0-pw" not in caplog.text


def test_progress_is_reported_through_each_phase() -> None:
    """Reading, planning, then applying with ``done`` counting up to ``total``."""
    r = rig(people(3, groups=""))
    r.provisioner.run_once()
    applying = [(p.done, p.total) for p in r.progress if p.phase == "applying"]
    assert [(0, 3), (1, 3), (2, 3), (3, 3)] == applying
    assert ["reading", "planning", "applying"] == list(dict.fromkeys(p.phase for p in r.progress))


def test_a_failing_hook_never_breaks_a_cycle(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks that raise are logged; the cycle goes on."""

    def broken(_: object) -> None:
        raise RuntimeError("hook bug")

    provisioner = Provisioner(
        MemorySource(users=people(1)), MAPPING, memory_target(), audit=broken, on_progress=broken
    )
    assert provisioner.run_once().ok
    assert "hook bug" in caplog.text


def test_health_tells_how_the_agent_is() -> None:
    """No cycle yet: not healthy. After a good one: healthy, with its time."""
    r = rig(people(1))
    before = r.provisioner.health()
    assert (False, "no cycle has run yet") == (before.healthy, before.detail)
    r.provisioner.run_once()
    after = r.provisioner.health()
    assert (True, "ok", r.clock.now, r.clock.now) == (
        after.healthy,
        after.last_outcome,
        after.last_cycle_at,
        after.last_success_at,
    )
    assert {"healthy": True} == {k: v for k, v in after.to_dict().items() if k == "healthy"}


# -- one identity on demand ------------------------------------------------------------------------


def test_provision_one_creates_the_user_and_its_memberships_and_explains() -> None:
    """On demand: the user is created and added to its existing group, step by step;
    nobody else is touched."""
    r = rig(people(2))
    r.provisioner.run_once()
    r.source.users.append({**people(3)[2], "groups": "staff;new"})
    r.source.users[0] = {**people(1)[0], "title": "Changed, but not on demand"}
    explanation = r.provisioner.provision_one("e2")
    assert explanation.ok
    assert ["source", "scope", "match", "changes", "operations", "result"] == [
        s.name for s in explanation.steps
    ]
    assert "to be created" in explanation.steps[2].detail
    groups = {g.display_name: g for g in r.target.state().groups}
    user2 = r.users()["user2@example.com"]
    assert user2.id in {m.value for m in groups["staff"].members or ()}
    assert [user2.id] == [m.value for m in groups["new"].members or ()]
    assert "Engineer" == r.users()["user0@example.com"].title
    text = str(explanation)
    assert text.startswith('Provisioning "e2" on demand:')
    assert "password = (sensitive)" in text


def test_provision_one_of_a_group_creates_it_with_the_members_there_are() -> None:
    """A group key on demand: the group is created and gets its existing members."""
    r = rig(people(2))
    r.provisioner.run_once()
    r.source.users[0] = {**people(1)[0], "groups": "staff;ops"}
    explanation = r.provisioner.provision_one("ops")
    assert explanation.ok
    groups = {g.display_name: g for g in r.target.state().groups}
    assert [r.users()["user0@example.com"].id] == [m.value for m in groups["ops"].members or ()]


def test_provision_one_of_a_key_the_source_lacks() -> None:
    """An unknown key is explained, nothing is sent, and it is not a success: ``ok`` is
    False and ``problem`` says why."""
    r = rig(people(1))
    explanation = r.provisioner.provision_one("nobody")
    assert "holds no record" in explanation.steps[0].detail
    assert () == explanation.report.results
    assert (False, "the source holds no record with key 'nobody'") == (
        explanation.ok,
        explanation.problem,
    )
    assert False is explanation.to_dict()["ok"]
    assert "not done: the source holds no record" in str(explanation)


def test_provision_one_of_a_record_out_of_scope() -> None:
    """A record the mapping's scope leaves out is explained as such."""
    scoped = Mapping(users={"userName": "email"}, scope=lambda rec: rec["title"] != "Intern")
    records = [*people(1), {**people(2)[1], "title": "Intern"}]
    provisioner = Provisioner(MemorySource(users=records), scoped, memory_target())
    explanation = provisioner.provision_one("e1")
    assert "out of scope" in explanation.steps[1].detail
    assert (False, explanation.steps[1].detail) == (explanation.ok, explanation.problem)


def test_reports_have_the_verdicts_the_command_line_needs() -> None:
    """Exit codes: 0 applied, 1 failures, 2 blocked; ``outcome`` names the case."""
    r = rig(people(1))
    ok = r.provisioner.run_once()
    assert (0, "ok") == (ok.exit_code, ok.outcome)
    failed = attrs.evolve(ok, results=[attrs.evolve(ok.results[0], outcome="failed")])
    assert (1, "failed", False) == (failed.exit_code, failed.outcome, failed.ok)
    assert isinstance(failed, SyncReport)


# -- closing ----------------------------------------------------------------------------------


def test_closing_a_provisioner_mid_listing_leaves_no_stream_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The group listing is answered JSON null while the user listing's answer is still
    coming: the cycle fails, the user listing is cancelled and its stream closed, and
    closing the provisioner reports no async generator closed while it ran."""
    import asyncio

    import httpx

    from scimsync.client import AsyncScimClient
    from scimsync.retry import RetryPolicy
    from scimsync.targets import ScimTarget

    closed: list[str] = []

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                yield b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], '
                await asyncio.Event().wait()  # the rest never comes
                yield b"}"  # pragma: no cover
            finally:
                closed.append("users")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Users"):
            return httpx.Response(200, stream=Endless())
        if request.url.path.endswith("/Groups"):
            return httpx.Response(200, content=b"null")
        return httpx.Response(404)

    http = httpx.AsyncClient(
        base_url="https://scim.example.com/v2", transport=httpx.MockTransport(answer)
    )
    client = AsyncScimClient(http=http, retry=RetryPolicy.never())
    caplog.set_level(logging.WARNING, logger="asyncio")
    with Provisioner(
        MemorySource(users=people(1)), MAPPING, ScimTarget(client), state=MemoryStateStore()
    ) as provisioner:
        report = provisioner.run_once()
        assert "/Groups answered 200 with JSON null, not a ListResponse" in str(report.error)
    assert ["users"] == closed
    assert [] == [rec.getMessage() for rec in caplog.records if rec.name == "asyncio"]


def test_closing_the_loop_cancels_what_still_runs_before_closing_generators(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task left running on the plain methods' loop (a call given up on) is cancelled
    and awaited when the loop closes, before the async generators it iterates are
    closed: none is closed while it runs."""
    import asyncio

    from scimsync.sync._loop import LoopRunner

    ended: list[str] = []

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.Event().wait()
            yield b"never"  # pragma: no cover
        finally:
            ended.append("stream")

    async def read(chunks: AsyncIterator[bytes]) -> None:
        async for _ in chunks:
            pass

    async def start() -> None:
        chunks = stream()
        left.append(asyncio.ensure_future(read(chunks)))
        await asyncio.sleep(0.01)  # the reader is waiting inside the generator

    left: list[asyncio.Future[None]] = []
    caplog.set_level(logging.WARNING, logger="asyncio")
    runner = LoopRunner()
    runner.run(start())
    runner.close()
    assert ["stream"] == ended
    assert left[0].cancelled()
    assert [] == [rec.getMessage() for rec in caplog.records if rec.name == "asyncio"]
