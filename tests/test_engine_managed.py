"""The engine with managed attributes and references, one table of cases each.

Managed attributes: a value the source cleared is removed from the target (the silent
failure otherwise: a stale title, forever). References: a user names another by
source key (its manager); the engine writes that user's target id, or a placeholder
when the same plan creates it.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from scimsync import Email, EnterpriseUser, Group, Manager, PatchOperation, User
from scimsync.engine import (
    Ledger,
    Placeholder,
    Plan,
    PlannedChange,
    Policy,
    SyncState,
    plan,
    simulate,
)
from scimsync.engine._simulate import simulated_id
from scimsync.errors import ConfigurationError
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from strategies import NOW

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager.value"
WORK = 'emails[type eq "work"]'
MANAGED = (
    "active",
    "externalId",
    "userName",
    "title",
    "displayName",
    f"{WORK}.value",
    f"{ENTERPRISE}:department",
    MANAGER,
)
PERMISSIVE = Policy(max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None)


def want(key: str, manager: str | None = None, **attributes: Any) -> DesiredUser:
    """A source record keyed ``key`` (externalId and userName from the key)."""
    create_only = attributes.pop("create_only", None)
    return DesiredUser(
        key=key,
        user=User(external_id=key, user_name=f"{key}@example.com", **attributes),
        create_only=create_only,
        references={MANAGER: manager} if manager else (),
    )


def held(account_id: str, key: str, manager: str | None = None, **attributes: Any) -> User:
    """The account of source key ``key``, as the target lists it."""
    enterprise = attributes.pop("enterprise", None)
    if manager is not None:
        enterprise = attrs.evolve(enterprise or EnterpriseUser(), manager=Manager(value=manager))
    return User(
        id=account_id,
        external_id=key,
        user_name=f"{key}@example.com",
        enterprise=enterprise,
        **attributes,
    )


def desired(*users: DesiredUser, managed: tuple[str, ...] | None = MANAGED) -> DesiredState:
    return DesiredState(users=users, managed_user_attributes=managed)


def cycle(
    wanted: DesiredState,
    actual: TargetState,
    state: SyncState,
    policy: Policy = PERMISSIVE,
) -> tuple[Plan, TargetState, SyncState]:
    """Plan, apply in memory, and record the next state."""
    result = plan(wanted, actual, policy, state, NOW)
    created = {
        op.target_id: simulated_id(op.target_id) for op in result.operations if op.kind == "create"
    }
    return result, simulate(result, actual), state.after(result, created)


def linked(**links: str) -> SyncState:
    return SyncState(users=Ledger(links=links))


def managers(actual: TargetState) -> dict[str | None, str | None]:
    """externalId -> manager id of every account that has a manager."""
    return {
        u.external_id: u.enterprise.manager.value
        for u in actual.users
        if u.enterprise is not None and u.enterprise.manager is not None
    }


def ops(result: Plan) -> list[tuple[str, str, str | None, Any]]:
    """(kind, target id, op, path) of each PATCH operation of each operation."""
    return [(op.kind, op.target_id, p.op, p.path) for op in result.operations for p in op.patch]


# -- clearing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_hr_clearing_a_title_is_one_patch_with_one_remove_and_then_nothing(method: Any) -> None:
    """The title goes from the target in one write (PATCH: one ``remove``; PUT: a body
    without it that keeps what the mapping does not manage), and the next cycle is empty."""
    policy = attrs.evolve(PERMISSIVE, update_method=method)
    actual = TargetState(users=[held("a1", "e1", title="Tour Guide", nick_name="Babs")])
    wanted = desired(want("e1"))
    result, after, state = cycle(wanted, actual, linked(e1="a1"), policy)
    (op,) = result.operations
    assert ("update", "a1", "title cleared in source") == (op.kind, op.target_id, op.reason)
    assert (PlannedChange(path="title", old="Tour Guide"),) == op.changes
    assert '      title : "Tour Guide" → (removed)' in result.render()
    removal = (PatchOperation(op="remove", path="title"),)
    if method == "patch":
        assert (removal, None) == (op.patch, op.body)
    else:
        assert isinstance(op.body, User)
        assert (None, "Babs") == (op.body.title, op.body.nick_name)
        assert removal == op.body_patch()
    assert (None, "Babs") == (after.users[0].title, after.users[0].nick_name)
    assert plan(wanted, after, policy, state, NOW).is_empty


def test_a_source_that_names_no_managed_attributes_clears_nothing() -> None:
    """``managed_user_attributes=None`` (a hand-built state): an unset title is not managed."""
    actual = TargetState(users=[held("a1", "e1", title="Tour Guide")])
    assert plan(desired(want("e1"), managed=None), actual, PERMISSIVE, linked(e1="a1")).is_empty


def test_changes_and_clearings_are_told_apart_in_the_reason() -> None:
    """One PATCH: the replace first, then the removals; the reason names both."""
    actual = TargetState(
        users=[
            held(
                "a1",
                "e1",
                title="Guide",
                display_name="Ann",
                enterprise=EnterpriseUser(department="Tours"),
            )
        ]
    )
    result = plan(desired(want("e1", display_name="Ann Lee")), actual, PERMISSIVE, linked(e1="a1"))
    (op,) = result.operations
    assert "displayName changed; title and department cleared in source" == op.reason
    assert [
        ("replace", "displayName"),
        ("remove", "title"),
        ("remove", f"{ENTERPRISE}:department"),
    ] == [(p.op, p.path) for p in op.patch]


def test_a_cleared_work_email_is_removed_by_its_filter_and_the_home_one_stays() -> None:
    """``emails[type eq "work"].value`` emptied: ``remove emails[type eq "work"]``, only."""
    mails = [
        Email(value="ann@work.example", type="work"),
        Email(value="ann@home.example", type="home"),
    ]
    actual = TargetState(users=[held("a1", "e1", emails=mails)])
    result, after, state = cycle(desired(want("e1")), actual, linked(e1="a1"))
    assert [("update", "a1", "remove", WORK)] == ops(result)
    assert ["home"] == [e.type for e in after.users[0].emails or ()]
    assert plan(desired(want("e1")), after, PERMISSIVE, state, NOW).is_empty


def test_what_the_engine_never_clears() -> None:
    """``active`` (deactivation's business), create-only attributes, required and
    readOnly ones stay, managed or not."""
    actual = TargetState(users=[held("a1", "e1", active=True, nick_name="Babs")])
    wanted = desired(
        want("e1", create_only=User(nick_name="Init")),
        managed=(*MANAGED, "nickName", "id", "groups", "password"),
    )
    assert plan(wanted, actual, PERMISSIVE, linked(e1="a1")).is_empty


def test_only_linked_or_owned_accounts_are_cleared() -> None:
    """An unowned account that matches is left alone under ``adopt="ignore"``."""
    actual = TargetState(users=[User(id="x1", user_name="e1@example.com", title="Temp")])
    result = plan(desired(want("e1")), actual, attrs.evolve(PERMISSIVE, adopt="ignore"))
    assert (0, 1) == (len(result.operations), len(result.skipped))


def test_managed_group_attributes_are_cleared_too() -> None:
    """A group extension attribute the source no longer sets is removed."""
    urn = "urn:example:params:scim:schemas:extension:acme:2.0:Group"
    actual = TargetState(
        groups=[
            Group(
                id="g1",
                external_id="eng",
                display_name="Eng",
                members=(),
                extensions={urn: {"room": "4.2"}},
            )
        ]
    )
    wanted = DesiredState(
        groups=[DesiredGroup(key="eng", group=Group(external_id="eng", display_name="Eng"))],
        managed_group_attributes=("displayName", "externalId", f"{urn}:room"),
    )
    state = SyncState(groups=Ledger(links={"eng": "g1"}))
    (op,) = plan(wanted, actual, PERMISSIVE, state, NOW).operations
    assert ((PatchOperation(op="remove", path=f"{urn}:room"),), "room cleared in source") == (
        op.patch,
        op.reason,
    )


def test_a_managed_path_that_is_no_path_is_a_configuration_error() -> None:
    """A typo in the managed attributes stops planning with a clear error."""
    with pytest.raises(ConfigurationError, match="managed attribute"):
        plan(desired(want("e1"), managed=("title[",)), TargetState(), PERMISSIVE)


# -- references ---------------------------------------------------------------------------------


def test_a_manager_named_by_source_key_is_written_as_its_account_id() -> None:
    """The create carries the linked manager's id; a manager change is one replace."""
    actual = TargetState(users=[held("a1", "boss"), held("a2", "e2", manager="a1")])
    state = linked(boss="a1", e2="a2")
    wanted = desired(want("boss"), want("e1", manager="boss"), want("e2", manager="e1"))
    result = plan(wanted, actual, PERMISSIVE, state, NOW)
    create, update = result.operations
    assert isinstance(create.body, User)
    assert create.body.enterprise is not None
    placeholder = str(Placeholder(resource_type="User", key="e1"))
    assert ("create", "e1", Manager(value="a1")) == (
        create.kind,
        create.source_key,
        create.body.enterprise.manager,
    )
    assert [("update", "a2", "replace", MANAGER)] == ops(Plan(operations=[update]))
    assert (placeholder,) == update.placeholders
    assert '"a1" (boss) → "<new User e1>"' in result.render()
    # The ids stay the values (stale checks compare them); the keys are for people.
    assert [PlannedChange(path=MANAGER, old="a1", new=placeholder, old_key="boss")] == list(
        update.changes
    )
    assert update.changes == Plan.from_json(result.to_json()).operations[1].changes


def test_a_manager_created_in_the_same_plan_is_created_first() -> None:
    """Whatever the keys' order, a manager's create comes before its reports' creates,
    which carry a placeholder for its id; applied, everyone points at real ids."""
    wanted = desired(
        want("a-report", manager="m-lead"),
        want("m-lead", manager="z-boss"),
        want("z-boss"),
    )
    result, after, state = cycle(wanted, TargetState(), SyncState())
    assert ["z-boss", "m-lead", "a-report"] == [op.source_key for op in result.operations]
    report = result.operations[2]
    assert (str(Placeholder(resource_type="User", key="m-lead")),) == report.placeholders
    assert {"a-report": "sim-user-m-lead", "m-lead": "sim-user-z-boss"} == managers(after)
    assert plan(wanted, after, PERMISSIVE, state, NOW).is_empty


@pytest.mark.parametrize("method", ["patch", "put"])
def test_managers_of_each_other_are_created_then_linked_by_one_update(method: Any) -> None:
    """A circle (A manages B manages A) breaks at one reference, found in key order:
    B is created without it and gets it once A exists. Then nothing more to do."""
    policy = attrs.evolve(PERMISSIVE, update_method=method)
    wanted = desired(want("a", manager="b"), want("b", manager="a"))
    result, after, state = cycle(wanted, TargetState(), SyncState(), policy)
    assert [("create", "b"), ("create", "a"), ("update", "b")] == [
        (op.kind, op.source_key) for op in result.operations
    ]
    first, _, update = result.operations
    assert isinstance(first.body, User)
    assert first.body.enterprise is None
    assert 'manager.value set once "a" exists (they refer to each other)' == update.reason
    assert {"a": "sim-user-b", "b": "sim-user-a"} == managers(after)
    assert plan(wanted, after, policy, state, NOW).is_empty


def test_a_user_managing_itself_is_created_then_pointed_at_itself() -> None:
    """A self-reference is a circle of one: create, then update with its own id."""
    wanted = desired(want("ceo", manager="ceo"))
    result, after, state = cycle(wanted, TargetState(), SyncState())
    assert ["create", "update"] == [op.kind for op in result.operations]
    assert {"ceo": "sim-user-ceo"} == managers(after)
    assert plan(wanted, after, PERMISSIVE, state, NOW).is_empty


def test_a_manager_that_is_no_user_of_the_source_is_reported_and_left_as_it_is() -> None:
    """An unknown key never clears the manager the target holds: the plan says why."""
    actual = TargetState(users=[held("a1", "e1", manager="m-old")])
    result = plan(desired(want("e1", manager="ghost")), actual, PERMISSIVE, linked(e1="a1"))
    assert ((), 1) == (result.operations, len(result.skipped))
    assert 'manager.value refers to "ghost", not a user of the source: left as it is' == (
        result.skipped[0].reason
    )


def test_a_manager_removed_in_the_source_is_removed_from_the_target() -> None:
    """No manager key any more: the manager goes, as any managed attribute."""
    actual = TargetState(users=[held("a1", "boss"), held("a2", "e1", manager="a1")])
    state = linked(boss="a1", e1="a2")
    result = plan(desired(want("boss"), want("e1")), actual, PERMISSIVE, state, NOW)
    assert [("update", "a2", "remove", f"{ENTERPRISE}:manager")] == ops(result)
    assert "manager cleared in source" == result.operations[0].reason


def test_a_manager_in_a_conflict_is_left_as_it_is_without_a_second_word() -> None:
    """The conflict is reported already; the report's manager does not change."""
    actual = TargetState(users=[held("a1", "e1", manager="m-old")])
    wanted = desired(
        want("e1", manager="twin"),
        DesiredUser(key="twin", user=User(user_name="same@example.com")),
        DesiredUser(key="twin2", user=User(user_name="SAME@example.com")),
    )
    result = plan(wanted, actual, PERMISSIVE, linked(e1="a1"), NOW)
    assert ([], ()) == (ops(result), result.skipped)
    assert 1 == len(result.conflicts)


def test_a_plan_with_clearings_and_references_round_trips_through_json() -> None:
    """Removals, placeholders in user bodies and the circle's update survive JSON exactly."""
    actual = TargetState(users=[held("a9", "e9", title="Temp")])
    wanted = desired(want("a", manager="b"), want("b", manager="a"), want("e9"))
    for method in ("patch", "put"):
        result = plan(
            wanted, actual, attrs.evolve(PERMISSIVE, update_method=method), linked(e9="a9"), NOW
        )
        assert 4 == len(result.operations)
        assert result == Plan.from_json(result.to_json())


def test_placeholders_in_user_bodies_resolve_to_real_ids() -> None:
    """``Plan.resolve`` writes the manager's id where its placeholder was."""
    result = plan(desired(want("e1", manager="boss"), want("boss")), TargetState(), PERMISSIVE)
    placeholder = str(Placeholder(resource_type="User", key="boss"))
    resolved = result.resolve({placeholder: "id-boss"})
    body = resolved.operations[1].body
    assert isinstance(body, User)
    assert body.enterprise is not None
    assert Manager(value="id-boss") == body.enterprise.manager
    assert () == resolved.operations[1].placeholders


# -- values of a multi-valued attribute the source does not speak for -----------------------

WORK_ONLY = (*MANAGED, f"{WORK}.primary")


def mails(*values: tuple[str, str, bool | None]) -> list[Email]:
    """Emails from ``(type, value, primary)``."""
    return [Email(type=kind, value=value, primary=primary) for kind, value, primary in values]


def with_emails(*values: tuple[str, str, bool | None]) -> TargetState:
    """A target holding account ``a1`` (linked to ``e1``) with these emails."""
    return TargetState(users=[held("a1", "e1", emails=mails(*values))])


def emails_of(actual: TargetState) -> list[tuple[str | None, str | None, bool | None]]:
    (user,) = actual.users
    return sorted((e.type, e.value, e.primary) for e in user.emails or ())


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_home_email_the_mapping_does_not_write_is_never_removed(method: Any) -> None:
    """The source manages the work email; the home one someone added on the target stays,
    through a change of the work address, and nothing is left to do afterwards."""
    policy = attrs.evolve(PERMISSIVE, update_method=method)
    home = ("home", "babs@home.example", None)
    actual = TargetState(
        users=[held("a1", "e1", emails=mails(("work", "old@work.example", True), home))]
    )
    wanted = desired(
        want("e1", emails=mails(("work", "new@work.example", True))), managed=WORK_ONLY
    )
    result, after, state = cycle(wanted, actual, linked(e1="a1"), policy)
    (op,) = result.operations
    assert [
        'emails[type eq "work" and value eq "old@work.example"]',
        'emails[type eq "work" and value eq "new@work.example"]',
    ] == [change.path for change in op.changes]
    if method == "patch":
        assert [
            ("remove", 'emails[type eq "work" and value eq "old@work.example"]'),
            ("add", "emails"),
        ] == [(p.op, p.path) for p in op.patch]
    assert [home, ("work", "new@work.example", True)] == emails_of(after)
    assert plan(wanted, after, policy, state, NOW).is_empty


def test_an_unchanged_work_email_next_to_a_home_one_needs_nothing() -> None:
    """The common steady state: no operation, whatever else the account holds."""
    actual = with_emails(("work", "a@work.example", True), ("home", "a@home.example", None))
    wanted = desired(want("e1", emails=mails(("work", "A@work.example", True))), managed=WORK_ONLY)
    assert plan(wanted, actual, PERMISSIVE, linked(e1="a1"), NOW).is_empty


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_work_email_made_primary_takes_the_flag_from_the_home_one_once(method: Any) -> None:
    """The source says the work email is primary; the target's home email is. One write
    sets the work one (PATCH: one replace, the target clears the other flag itself, RFC
    7644 §3.5.2; PUT: a body with the home email no longer primary), the review says
    both, and the next cycle has nothing to do."""
    policy = attrs.evolve(PERMISSIVE, update_method=method)
    actual = with_emails(("work", "a@work.example", None), ("home", "a@home.example", True))
    wanted = desired(want("e1", emails=mails(("work", "a@work.example", True))), managed=WORK_ONLY)
    result, after, state = cycle(wanted, actual, linked(e1="a1"), policy)
    (op,) = result.operations
    work = 'emails[type eq "work" and value eq "a@work.example"].primary'
    home = 'emails[type eq "home" and value eq "a@home.example"].primary'
    assert (
        PlannedChange(path=work, old=None, new=True),
        PlannedChange(path=home, old=True, new=False),
    ) == op.changes
    if method == "patch":
        assert (PatchOperation(op="replace", path=work, value=True),) == op.patch
    assert [("home", "a@home.example", False), ("work", "a@work.example", True)] == emails_of(after)
    assert plan(wanted, after, policy, state, NOW).is_empty


def test_a_target_that_keeps_two_primary_emails_is_not_fought_over() -> None:
    """A target that ignores RFC 7644 §3.5.2 and keeps the home email primary too: the
    work email is primary, as the source says, and nothing more is sent, ever."""
    actual = with_emails(("work", "a@work.example", True), ("home", "a@home.example", True))
    wanted = desired(want("e1", emails=mails(("work", "a@work.example", True))), managed=WORK_ONLY)
    assert plan(wanted, actual, PERMISSIVE, linked(e1="a1"), NOW).is_empty


def test_a_source_that_writes_the_work_email_but_not_its_flag_leaves_the_flags_alone() -> None:
    """Without ``.primary`` managed, the target's primary home email stays primary."""
    actual = with_emails(("work", "a@work.example", None), ("home", "a@home.example", True))
    wanted = desired(want("e1", emails=mails(("work", "a@work.example", None))))
    assert plan(wanted, actual, PERMISSIVE, linked(e1="a1"), NOW).is_empty


@pytest.mark.parametrize("method", ["patch", "put"])
def test_emails_mapped_whole_are_still_replaced_whole(method: Any) -> None:
    """A source managing ``emails`` itself speaks for every email: the home one goes."""
    policy = attrs.evolve(PERMISSIVE, update_method=method)
    actual = TargetState(
        users=[held("a1", "e1", emails=mails(("work", "a@w", None), ("home", "a@h", None)))]
    )
    wanted = desired(want("e1", emails=mails(("work", "a@w", None))), managed=("emails",))
    result, after, _ = cycle(wanted, actual, linked(e1="a1"), policy)
    assert ['emails[type eq "home" and value eq "a@h"]'] == [
        c.path for c in result.operations[0].changes
    ]
    assert [("work", "a@w", None)] == emails_of(after)


def test_a_work_email_kept_when_empty_still_leaves_the_home_one_alone() -> None:
    """Paths written with ``keep_when_empty`` are not cleared, but they say which emails
    the source speaks for all the same."""
    actual = TargetState(
        users=[held("a1", "e1", emails=mails(("work", "a@w", None), ("home", "a@h", None)))]
    )
    wanted = attrs.evolve(
        desired(want("e1", emails=mails(("work", "b@w", None))), managed=("userName",)),
        kept_user_attributes=(f"{WORK}.value",),
    )
    result, after, _ = cycle(wanted, actual, linked(e1="a1"))
    assert 1 == len(result.operations)
    assert [("home", "a@h", None), ("work", "b@w", None)] == emails_of(after)
