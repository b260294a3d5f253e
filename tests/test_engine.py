"""The engine's decisions, one table of cases each: matching, ownership, operations,
deprovisioning, guards, ordering, and the painful cases real deployments hit."""

from __future__ import annotations

import gc
import re
import threading
from datetime import timedelta
from typing import Any

import attrs
import pytest

from scimsync import Email, Group, Member, Meta, Name, PatchOperation, User
from scimsync.engine import (
    Conflict,
    Ledger,
    Operation,
    Placeholder,
    Plan,
    Policy,
    SyncState,
    _planner,
    plan,
    simulate,
)
from scimsync.errors import ConfigurationError
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from strategies import NOW

PERMISSIVE = Policy(max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None)


def want(key: str, user_name: str | None = None, **attributes: Any) -> DesiredUser:
    """A source record keyed ``key`` whose externalId is the key."""
    create_only = attributes.pop("create_only", None)
    return DesiredUser(
        key=key,
        user=User(external_id=key, user_name=user_name or f"{key}@example.com", **attributes),
        create_only=create_only,
    )


def held(account_id: str, user_name: str, **attributes: Any) -> User:
    """An account as the target lists it."""
    return User(id=account_id, user_name=user_name, **attributes)


def kinds(result: Plan) -> list[tuple[str, str, str]]:
    """(kind, resource type, target id) of each operation, in plan order."""
    return [(op.kind, op.resource_type, op.target_id) for op in result.operations]


def linked(**links: str) -> SyncState:
    """A state linking source keys to user ids (and so owning those ids)."""
    return SyncState(users=Ledger(links=links))


STAYS = want("stays")
STAYS_ACCOUNT = held("s1", "stays@example.com", external_id="stays")


def run(
    users: list[DesiredUser],
    accounts: list[User],
    policy: Policy = PERMISSIVE,
    state: SyncState | None = None,
    **kwargs: Any,
) -> Plan:
    return plan(
        DesiredState(users=users, groups=kwargs.pop("groups", ())),
        TargetState(users=accounts, groups=kwargs.pop("held_groups", ())),
        policy,
        state,
        kwargs.pop("now", NOW),
    )


# -- matching -----------------------------------------------------------------------------


def test_a_link_in_the_state_wins_over_every_match_key() -> None:
    """The linked account is updated even when externalId and userName changed in the source."""
    result = run(
        [want("e1", "new-name@example.com")],
        [held("a1", "old-name@example.com", external_id="old")],
        state=linked(e1="a1"),
    )
    assert kinds(result) == [("update", "User", "a1")]
    assert [c.path for c in result.operations[0].changes] == ["externalId", "userName"]
    assert result.links == ()


def test_externalid_matches_before_username() -> None:
    """The account carrying the record's externalId is the one, and it is owned."""
    result = run(
        [want("e1", "bob@example.com", title="Lead")],
        [held("a1", "bob@example.com", external_id="e1", title="Guide")],
    )
    assert kinds(result) == [("update", "User", "a1")]
    assert result.links[0].matched_by == "externalId"
    assert not result.links[0].adopted


def test_username_matches_regardless_of_case_because_the_schema_says_so() -> None:
    """userName is caseExact=false: ``Alice@X`` finds the account ``alice@x``."""
    result = run(
        [want("e1", "Alice@Example.com")],
        [held("a1", "alice@example.com")],
        policy=attrs.evolve(PERMISSIVE, adopt="adopt"),
    )
    assert kinds(result) == [("update", "User", "a1")]
    assert result.operations[0].reason == "matched by userName, adopted; externalId changed"


@pytest.mark.parametrize(
    ("wanted", "held_as"),
    [
        ("Alice@Example.com", "alice@example.com"),
        ("strasse@example.com", "STRASSE@example.com"),
        ("straße@example.com", "STRASSE@example.com"),  # one character folds to two
        ("a\x00B@example.com", "A\x00b@example.com"),  # the separator of the fast fold
    ],
)
def test_usernames_fold_case_whatever_they_hold(wanted: str, held_as: str) -> None:
    """Matching folds case per value, whatever the values hold: the one account found."""
    others = [want(f"e{i}", f"other{i}@example.com") for i in range(3)]
    accounts = [held(f"o{i}", f"Other{i}@example.com") for i in range(3)]
    result = run(
        [*others, want("e1x", wanted)],
        [*accounts, held("a1", held_as)],
        policy=attrs.evolve(PERMISSIVE, adopt="adopt"),
    )
    assert {link.source_key: link.target_id for link in result.links} == {
        "e0": "o0",
        "e1": "o1",
        "e2": "o2",
        "e1x": "a1",
    }


def test_the_same_source_key_twice_is_a_conflict_and_its_account_is_left_alone() -> None:
    """Neither copy wins; the linked account is neither updated nor deactivated."""
    result = run(
        [want("e1", title="A"), want("e1", title="B")],
        [held("a1", "e1@example.com", external_id="e1")],
        state=linked(e1="a1"),
    )
    assert kinds(result) == []
    assert [
        Conflict(
            kind="duplicate_source_key",
            resource_type="User",
            source_keys=("e1",),
            target_ids=("a1",),
            detail="the source holds 2 records with this key",
        )
    ] == list(result.conflicts)


def test_two_source_records_whose_usernames_differ_only_by_case_are_a_conflict() -> None:
    """``bob`` and ``BOB`` are one account to the target: neither is created."""
    result = run([want("e1", "bob@example.com"), want("e2", "BOB@example.com")], [])
    assert kinds(result) == []
    assert [(c.kind, c.source_keys) for c in result.conflicts] == [
        ("duplicate_key_value", ("e1", "e2"))
    ]


@pytest.mark.parametrize("state", [None, linked(other="o1")], ids=["first cycle", "state"])
def test_two_records_finding_one_account_by_different_keys_is_a_conflict(
    state: SyncState | None,
) -> None:
    """One record's externalId and the other's userName find the same account (each
    record's keys agree on it): a shared account, matched by neither, left alone."""
    result = run(
        [want("e1", "new@example.com"), want("e2", "ann@example.com")],
        [held("a1", "ann@example.com", external_id="e1")],
        state=state,
    )
    assert kinds(result) == []
    assert [(c.kind, c.source_keys, c.target_ids) for c in result.conflicts] == [
        ("shared_account", ("e1", "e2"), ("a1",))
    ]
    assert not result.links


@pytest.mark.parametrize("reverse", [False, True])
def test_a_state_linking_two_keys_to_one_account_plans_the_same_in_any_order(
    reverse: bool,
) -> None:
    """The key still in the source is the account's: its conflict protects the account,
    whichever order the state lists the links in (the other key left the source)."""
    links = dict(sorted({"e1": "a1", "gone": "a1"}.items(), reverse=reverse))
    result = run(
        [want("e1", "bob@example.com")],
        [held("a1", "bob@example.com"), held("a2", "Bob@Example.com")],
        state=SyncState(users=Ledger(links=links)),
    )
    assert kinds(result) == []
    assert [(c.kind, c.target_ids) for c in result.conflicts] == [("ambiguous_match", ("a1", "a2"))]


def test_a_stale_link_to_a_held_account_resolves_to_nothing() -> None:
    """A key that left the source, linked (in an edited state) to the account another
    record holds: a group naming it does not get that account as a member."""
    links = {"e1": "a1", "gone": "a1"}
    e1 = want("e1", "bob@example.com")
    team = DesiredGroup(key="team", group=Group(display_name="Team"), member_keys=["e1", "gone"])
    result = run(
        [e1],
        [held("a1", "bob@example.com", external_id="e1")],
        state=SyncState(users=Ledger(links=links)),
        groups=[team],
    )
    assert [(op.kind, op.members) for op in result.operations] == [
        ("create", ()),
        ("add_members", ("a1",)),
    ]
    assert [s.reason for s in result.skipped] == [
        'members that are not source users, left out: "gone"'
    ]


def test_one_record_matching_two_accounts_is_a_conflict_never_a_guess() -> None:
    """Two accounts share a userName (case-insensitively): the record matches both."""
    result = run(
        [want("e1", "bob@example.com")],
        [held("a1", "bob@example.com"), held("a2", "Bob@Example.com")],
        policy=attrs.evolve(PERMISSIVE, adopt="adopt"),
    )
    assert kinds(result) == []
    assert [(c.kind, c.target_ids) for c in result.conflicts] == [("ambiguous_match", ("a1", "a2"))]


def test_keys_pointing_at_different_accounts_are_a_conflict() -> None:
    """externalId finds one account, userName another: renaming would collide, so no guess."""
    result = run(
        [want("e1", "bob@example.com")],
        [held("a1", "robert@example.com", external_id="e1"), held("a2", "bob@example.com")],
        state=linked(e1="a1"),
    )
    assert kinds(result) == []
    assert [c.kind for c in result.conflicts] == ["ambiguous_match"]
    assert result.conflicts[0].target_ids == ("a1", "a2")


def test_a_reused_username_is_a_conflict_and_the_leavers_account_still_goes() -> None:
    """A newcomer gets the userName of someone who left: no takeover of the leaver's account."""
    result = run(
        [want("new", "jsmith@example.com")],
        [held("a1", "jsmith@example.com", external_id="old", active=True)],
        state=linked(old="a1"),
    )
    assert kinds(result) == [("deactivate", "User", "a1")]
    assert [c.kind for c in result.conflicts] == ["taken"]
    assert result.conflicts[0].detail == "matched by userName the account of source key 'old'"


def test_newcomers_sharing_a_leavers_username_do_not_shield_the_leavers_account() -> None:
    """Two new records share the userName of a linked account whose owner left: they
    conflict with each other, and the account, certainly the leaver's, still goes."""
    result = run(
        [want("new1", "jsmith@example.com"), want("new2", "JSmith@example.com")],
        [held("a1", "jsmith@example.com", external_id="old", active=True)],
        state=linked(old="a1"),
    )
    assert kinds(result) == [("deactivate", "User", "a1")]
    assert [(c.kind, c.target_ids) for c in result.conflicts] == [("duplicate_key_value", ("a1",))]


def test_a_renamed_member_leaves_its_group_while_others_clash_on_its_old_name() -> None:
    """k4 is renamed and leaves g0 while two new records want k4's old userName: the
    account is k4's (the state says so), so its membership change is not held back."""
    group = Group(id="g-1", external_id="g0", display_name="team", members=[Member(value="a4")])
    result = run(
        [
            want("k4", "cy@example.com"),
            want("k15", "bob@example.com"),
            want("k16", "bob@example.com"),
        ],
        [held("a4", "bob@example.com", external_id="k4")],
        state=SyncState(users=Ledger(links={"k4": "a4"}), groups=Ledger(links={"g0": "g-1"})),
        groups=[DesiredGroup(key="g0", group=Group(external_id="g0", display_name="team"))],
        held_groups=[group],
    )
    assert [("update", "User", "a4"), ("remove_members", "Group", "g-1")] == kinds(result)


@pytest.mark.parametrize(
    ("adopt", "expected_kinds", "conflicts", "skipped"),
    [
        ("adopt", [("update", "User", "a1")], [], 0),
        ("ignore", [], [], 1),
        ("fail", [], ["unowned_match"], 0),
    ],
)
def test_an_unowned_account_that_matches_is_adopted_ignored_or_reported(
    adopt: Any, expected_kinds: list[Any], conflicts: list[str], skipped: int
) -> None:
    """Taking over an existing account is an explicit policy choice."""
    result = run(
        [want("e1", "bob@example.com", title="Lead")],
        [held("a1", "bob@example.com", title="Guide")],
        policy=attrs.evolve(PERMISSIVE, adopt=adopt),
    )
    assert expected_kinds == kinds(result)
    assert conflicts == [c.kind for c in result.conflicts]
    assert skipped == len(result.skipped)
    assert (adopt == "adopt") == any(link.adopted for link in result.links)


# -- ownership and deprovisioning -------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "prefix", "expected"),
    [
        (None, None, []),
        (linked(e9="a9"), None, [("deactivate", "User", "a9")]),
        (SyncState(users=Ledger(owned=["a9"])), None, [("deactivate", "User", "a9")]),
        (None, "e", [("deactivate", "User", "a9")]),
        (None, "hr-", []),
    ],
)
def test_only_owned_accounts_are_deprovisioned(
    state: SyncState | None, prefix: str | None, expected: list[Any]
) -> None:
    """An account not in the source is deactivated only when scimsync owns it."""
    result = run(
        [want("e1")],
        [
            held("a1", "e1@example.com", external_id="e1"),
            held("a9", "x@example.com", external_id="e9"),
        ],
        policy=attrs.evolve(PERMISSIVE, external_id_prefix=prefix),
        state=state,
    )
    assert expected == kinds(result)


def test_an_account_owned_by_prefix_and_still_in_the_source_is_kept() -> None:
    """Ownership by externalId prefix makes accounts candidates, never targets, while
    their record is in the source (linked or matched)."""
    result = run(
        [want("e1"), want("e2")],
        [
            held("a1", "e1@example.com", external_id="e1", active=True),
            held("a2", "e2@example.com", external_id="e2", active=True),
            held("a3", "e3@example.com", external_id="e3", active=True),
        ],
        policy=attrs.evolve(PERMISSIVE, external_id_prefix="e"),
        state=linked(e1="a1"),
    )
    assert [("deactivate", "User", "a3")] == kinds(result)


def test_deactivation_is_a_single_replace_of_active() -> None:
    """The default deprovisioning: one PATCH operation, ``active`` to false."""
    result = run(
        [STAYS], [STAYS_ACCOUNT, held("a9", "x@example.com", active=True)], state=linked(e9="a9")
    )
    (op,) = result.operations
    assert (op.kind, op.source_key, op.reason) == ("deactivate", "e9", "not in source")
    assert (PatchOperation(op="replace", path="active", value=False),) == op.patch


def test_an_account_already_inactive_is_not_deactivated_again() -> None:
    """Deactivation is idempotent: nothing to do for an inactive account."""
    result = run(
        [STAYS], [STAYS_ACCOUNT, held("a9", "x@example.com", active=False)], state=linked(e9="a9")
    )
    assert kinds(result) == []


def test_deprovision_none_never_takes_anything_away() -> None:
    """``deprovision="none"`` leaves owned accounts that left the source alone."""
    policy = attrs.evolve(PERMISSIVE, deprovision="none")
    assert (
        kinds(run([STAYS], [STAYS_ACCOUNT, held("a9", "x@example.com")], policy, linked(e9="a9")))
        == []
    )


def test_delete_without_delay_deletes_at_once() -> None:
    """``deprovision="delete"`` with no delay deletes the owned account that left."""
    policy = attrs.evolve(PERMISSIVE, deprovision="delete")
    result = run(
        [STAYS], [STAYS_ACCOUNT, held("a9", "x@example.com", active=True)], policy, linked(e9="a9")
    )
    assert kinds(result) == [("delete", "User", "a9")]


@pytest.mark.parametrize(
    ("active", "deactivated_days_ago", "now_given", "expected", "skipped"),
    [
        (True, None, True, "deactivate", 0),
        (False, 10, True, None, 0),
        (False, 30, True, "delete", 0),
        (False, 45, True, "delete", 0),
        (False, 45, False, None, 1),
    ],
)
def test_delete_after_days_deactivates_first_and_deletes_when_due(
    active: bool,
    deactivated_days_ago: int | None,
    now_given: bool,
    expected: str | None,
    skipped: int,
) -> None:
    """Deactivate on leaving, delete once deactivated for ``delete_after_days``."""
    policy = attrs.evolve(PERMISSIVE, deprovision="delete", delete_after_days=30)
    deactivated = {"a9": NOW - timedelta(days=deactivated_days_ago)} if deactivated_days_ago else {}
    state = SyncState(users=Ledger(links={"e9": "a9"}, deactivated_at=deactivated))
    result = run(
        [STAYS],
        [STAYS_ACCOUNT, held("a9", "x@example.com", active=active)],
        policy,
        state,
        now=NOW if now_given else None,
    )
    assert ([expected] if expected else []) == [op.kind for op in result.operations]
    assert skipped == len(result.skipped)


def test_an_account_deactivated_by_someone_else_waits_from_its_last_modification() -> None:
    """No recorded deactivation time: meta.lastModified, never earlier, starts the clock."""
    policy = attrs.evolve(PERMISSIVE, deprovision="delete", delete_after_days=30)
    recent = held(
        "a8", "r@example.com", active=False, meta=Meta(last_modified=NOW - timedelta(days=3))
    )
    old = held(
        "a9", "o@example.com", active=False, meta=Meta(last_modified=NOW - timedelta(days=31))
    )
    result = run([STAYS], [STAYS_ACCOUNT, recent, old], policy, linked(e8="a8", e9="a9"))
    assert kinds(result) == [("delete", "User", "a9")]


@pytest.mark.parametrize(
    ("desired_active", "deactivated_by_us", "expected"),
    [
        (None, True, ["reactivate"]),
        (True, False, ["reactivate"]),
        (None, False, []),
        (False, True, []),
    ],
)
def test_an_identity_back_in_the_source_is_reactivated(
    desired_active: bool | None, deactivated_by_us: bool, expected: list[str]
) -> None:
    """Reactivate when scimsync deactivated it, or when the mapping says active=true."""
    deactivated = {"a1": NOW - timedelta(days=2)} if deactivated_by_us else {}
    state = SyncState(users=Ledger(links={"e1": "a1"}, deactivated_at=deactivated))
    result = run(
        [want("e1", active=desired_active)],
        [held("a1", "e1@example.com", external_id="e1", active=False)],
        state=state,
    )
    assert expected == [op.kind for op in result.operations]
    if expected:
        assert result.operations[0].reason == "back in source"
        assert (PatchOperation(op="replace", path="active", value=True),) == result.operations[
            0
        ].patch


# -- operations ---------------------------------------------------------------------------------


def test_a_create_carries_the_whole_user_and_create_only_values() -> None:
    """The POST body has the managed attributes plus create-only ones (a first password)."""
    result = run([want("e1", title="Lead", create_only=User(password="s3cret!"))], [])
    (op,) = result.operations
    assert ("create", "POST", str(Placeholder(resource_type="User", key="e1"))) == (
        op.kind,
        op.method,
        op.target_id,
    )
    assert (
        User(external_id="e1", user_name="e1@example.com", title="Lead", password="s3cret!")
        == op.body
    )
    assert op.reason == "not on the target"


def test_a_create_the_target_would_refuse_is_skipped_with_its_reason() -> None:
    """No userName (required by the schema): no doomed POST, no placeholder for groups."""
    result = run(
        [DesiredUser(key="e1", user=User(external_id="e1", title="Lead")), want("e2")],
        [],
        groups=[
            DesiredGroup(
                key="g1", group=Group(external_id="g1", display_name="G"), member_keys=["e1", "e2"]
            )
        ],
    )
    e2 = str(Placeholder(resource_type="User", key="e2"))
    assert ["e2", "g1", "g1"] == [op.source_key for op in result.operations]
    assert (e2,) == result.operations[2].members
    assert [("e1", "cannot be created: required userName missing")] == [
        (s.source_key, s.reason) for s in result.skipped
    ]
    assert ["e2", "g1"] == [link.source_key for link in result.links]


def test_one_changed_attribute_is_one_patch_operation() -> None:
    """Minimal writes: a title change is one replace of title, nothing else."""
    result = run(
        [want("e1", title="Lead", display_name="Bob")],
        [
            held(
                "a1",
                "e1@example.com",
                external_id="e1",
                title="Guide",
                display_name="Bob",
                nick_name="B",
            )
        ],
    )
    (op,) = result.operations
    assert (op.kind, op.method, op.reason) == ("update", "PATCH", "title changed")
    assert (PatchOperation(op="replace", path="title", value="Lead"),) == op.patch


def test_put_targets_get_the_whole_user_keeping_what_the_mapping_does_not_manage() -> None:
    """With update_method="put" the body is the target's user with the managed values over it."""
    result = run(
        [want("e1", title="Lead", name=Name(given_name="Robert"))],
        [
            held(
                "a1",
                "e1@example.com",
                external_id="e1",
                title="Guide",
                nick_name="Bobby",
                name=Name(given_name="Bob", family_name="Smith"),
                meta=Meta(version='W/"1"'),
            )
        ],
        policy=attrs.evolve(PERMISSIVE, update_method="put"),
    )
    (op,) = result.operations
    assert (op.kind, op.method, op.patch) == ("update", "PUT", ())
    assert (
        User(
            external_id="e1",
            user_name="e1@example.com",
            title="Lead",
            nick_name="Bobby",
            name=Name(given_name="Robert", family_name="Smith"),
        )
        == op.body
    )


def test_ignored_attributes_never_cause_an_update() -> None:
    """id, meta, groups (readOnly) and a password (writeOnly) are never compared."""
    result = run(
        [
            DesiredUser(
                key="e1",
                user=User(external_id="e1", user_name="e1@example.com", password="x"),
            )
        ],
        [held("a1", "e1@example.com", external_id="e1", meta=Meta(version="3"))],
    )
    assert kinds(result) == []


# -- groups -------------------------------------------------------------------------------------


def test_members_created_in_the_same_plan_are_placeholders_resolved_at_apply_time() -> None:
    """A new group of new users: users first, then the group, then its members by placeholder."""
    result = run(
        [want("e1"), want("e2")],
        [],
        groups=[
            DesiredGroup(
                key="g1",
                group=Group(external_id="g1", display_name="Eng"),
                member_keys=["e2", "e1"],
            )
        ],
    )
    p1, p2 = (str(Placeholder(resource_type="User", key=k)) for k in ("e1", "e2"))
    group = str(Placeholder(resource_type="Group", key="g1"))
    assert [
        ("create", "User", p1),
        ("create", "User", p2),
        ("create", "Group", group),
        ("add_members", "Group", group),
    ] == kinds(result)
    add = result.operations[3]
    assert (p1, p2) == add.members
    assert tuple(sorted((group, p1, p2))) == add.placeholders
    resolved = add.resolve({p1: "id-1", p2: "id-2", group: "gid"})
    assert (resolved.target_id, resolved.members) == ("gid", ("id-1", "id-2"))
    assert [
        PatchOperation(op="add", path="members", value=[{"value": "id-1"}, {"value": "id-2"}])
    ] == list(resolved.patch)


def test_a_10000_member_group_with_3_changes_costs_3_member_changes() -> None:
    """Only the changed members are sent: 2 additions in one operation, 1 removal."""
    ids = [f"u{i:05d}" for i in range(10_000)]
    accounts = [held(i, f"{i}@example.com", external_id=f"k{i}") for i in ids]
    accounts += [
        held("n1", "n1@example.com", external_id="kn1"),
        held("n2", "n2@example.com", external_id="kn2"),
    ]
    users = [want(a.external_id or "", a.user_name) for a in accounts]
    keys = [f"k{i}" for i in ids[1:]] + ["kn1", "kn2"]
    result = run(
        users,
        accounts,
        groups=[
            DesiredGroup(
                key="g1", group=Group(external_id="g1", display_name="All"), member_keys=keys
            )
        ],
        held_groups=[
            Group(
                id="g", external_id="g1", display_name="All", members=[Member(value=i) for i in ids]
            )
        ],
    )
    assert [(op.kind, op.members) for op in result.operations] == [
        ("add_members", ("n1", "n2")),
        ("remove_members", ("u00000",)),
    ]
    assert sum(len(op.members) for op in result.operations) == 3
    assert (PatchOperation(op="remove", path='members[value eq "u00000"]'),) == result.operations[
        1
    ].patch


def test_member_changes_are_chunked_to_the_targets_limit() -> None:
    """250 new members with a limit of 100 per operation: 100, 100 and 50."""
    users = [want(f"k{i:03d}") for i in range(250)]
    result = run(
        users,
        [],
        policy=attrs.evolve(PERMISSIVE, max_members_per_operation=100),
        groups=[
            DesiredGroup(
                key="g1", group=Group(display_name="All"), member_keys=[u.key for u in users]
            )
        ],
    )
    assert [len(op.members) for op in result.operations if op.kind == "add_members"] == [
        100,
        100,
        50,
    ]


def test_nested_groups_and_members_in_a_conflict_are_never_removed() -> None:
    """Members the source cannot speak for stay: a nested group, an account in a conflict."""
    result = run(
        [want("e1", "dup@example.com"), want("e2", "DUP@example.com")],
        [
            held("a1", "dup@example.com", external_id="e1"),
            held("a3", "z@example.com", external_id="e3"),
        ],
        groups=[DesiredGroup(key="g1", group=Group(external_id="g1", display_name="Eng"))],
        held_groups=[
            Group(
                id="g",
                external_id="g1",
                display_name="Eng",
                members=[Member(value=v) for v in ("a1", "a3", "h")],
            ),
            Group(id="h", external_id="h1", display_name="Nested"),
        ],
        state=SyncState(groups=Ledger(owned=["h"])),
        policy=attrs.evolve(PERMISSIVE, group_deprovision="none"),
    )
    assert [(op.kind, op.members) for op in result.operations] == [("remove_members", ("a3",))]


def test_a_group_listed_without_members_is_not_compared() -> None:
    """Some targets leave members out of a listing: unknown is not empty."""
    result = run(
        [want("e1")],
        [held("a1", "e1@example.com", external_id="e1")],
        groups=[
            DesiredGroup(
                key="g1", group=Group(external_id="g1", display_name="Eng"), member_keys=["e1"]
            )
        ],
        held_groups=[Group(id="g", external_id="g1", display_name="Eng")],
    )
    assert kinds(result) == []
    assert [s.reason for s in result.skipped] == [
        "the target listing left out members: membership not compared"
    ]


def test_a_renamed_group_is_one_replace_of_displayname() -> None:
    """Group rename: a single PATCH operation."""
    result = run(
        [],
        [],
        groups=[DesiredGroup(key="g1", group=Group(external_id="g1", display_name="Platform"))],
        held_groups=[Group(id="g", external_id="g1", display_name="Infra", members=[])],
    )
    (op,) = result.operations
    assert (op.kind, op.reason) == ("update", "displayName changed")
    assert (PatchOperation(op="replace", path="displayName", value="Platform"),) == op.patch


def test_owned_groups_that_left_the_source_are_deleted() -> None:
    """group_deprovision="delete" (the default) deletes owned groups only."""
    result = run(
        [],
        [],
        groups=[DesiredGroup(key="g2", group=Group(external_id="g2", display_name="New"))],
        held_groups=[
            Group(id="g2", external_id="g2", display_name="New", members=[]),
            Group(id="g", external_id="g1", display_name="Old", members=[]),
            Group(id="h", display_name="Someone else's", members=[]),
        ],
        state=SyncState(groups=Ledger(links={"g1": "g"})),
    )
    assert kinds(result) == [("delete", "Group", "g")]


# -- order --------------------------------------------------------------------------------------


def test_operations_run_creates_first_and_deprovisions_last_each_kind_by_key() -> None:
    """User creates, updates, group changes, group deletions, deactivations; keys in order."""
    result = run(
        [want("b"), want("a"), want("c", title="T")],
        [
            held("x2", "gone2@example.com", active=True),
            held("x1", "gone1@example.com", active=True),
            held("c1", "c@example.com", external_id="c"),
        ],
        state=SyncState(users=Ledger(links={"z1": "x1", "z2": "x2"}), groups=Ledger(owned=["og"])),
        groups=[
            DesiredGroup(key="g", group=Group(external_id="g", display_name="G"), member_keys=["a"])
        ],
        held_groups=[Group(id="og", display_name="Old", members=[])],
    )
    pa, pb = (str(Placeholder(resource_type="User", key=k)) for k in "ab")
    pg = str(Placeholder(resource_type="Group", key="g"))
    assert [
        ("create", "User", pa),
        ("create", "User", pb),
        ("update", "User", "c1"),
        ("create", "Group", pg),
        ("add_members", "Group", pg),
        ("delete", "Group", "og"),
        ("deactivate", "User", "x1"),
        ("deactivate", "User", "x2"),
    ] == kinds(result)


# -- guards -------------------------------------------------------------------------------------


def _owned_accounts(count: int) -> tuple[list[User], SyncState]:
    accounts = [
        held(f"a{i}", f"u{i}@example.com", external_id=f"k{i}", active=True) for i in range(count)
    ]
    state = SyncState(
        users=Ledger(links={f"k{i}": f"a{i}" for i in range(count)}, last_source_count=count)
    )
    return accounts, state


def test_an_empty_source_never_deprovisions() -> None:
    """The classic outage: the source answers with nobody. Everything is held."""
    accounts, state = _owned_accounts(3)
    result = run([], accounts, Policy(), state)
    assert kinds(result) == []
    assert len(result.held) == 3
    assert result.blocked
    assert [(g.name, g.reason) for g in result.guards] == [
        ("source_shrink", "the source returned no users (last cycle: 3)"),
        (
            "max_deprovisions",
            "3 of 3 owned users to deprovision (100.0%), over max_deprovisions_percent 10%",
        ),
    ]
    assert dict(result.source_counts) == {"Group": 0}


def test_a_shrunken_source_holds_deprovisions_and_keeps_the_last_good_size() -> None:
    """A drop over max_source_shrink holds; the next state still compares with the old size."""
    accounts, state = _owned_accounts(10)
    users = [want(f"k{i}", f"u{i}@example.com") for i in range(8)]
    result = run(users, accounts, attrs.evolve(PERMISSIVE, max_source_shrink=10.0), state)
    assert [g.name for g in result.guards] == ["source_shrink"]
    assert (
        result.guards[0].reason
        == "the source users shrank by 20.0% (10 -> 8), over max_source_shrink 10%"
    )
    assert len(result.held) == 2
    assert "User" not in result.source_counts
    assert state.after(result).users.last_source_count == 10


def test_an_incomplete_listing_holds_every_deprovision_and_member_removal() -> None:
    """A short target listing or partial source read is not "these accounts are gone"."""
    accounts, state = _owned_accounts(2)
    for desired_complete, target_complete in ((False, True), (True, False)):
        result = plan(
            DesiredState(
                users=[want("k0", "u0@example.com")],
                groups=[DesiredGroup(key="g1", group=Group(external_id="g1", display_name="G"))],
                complete=desired_complete,
            ),
            TargetState(
                users=accounts,
                groups=[
                    Group(id="g", external_id="g1", display_name="G", members=[Member(value="a0")])
                ],
                complete=target_complete,
            ),
            PERMISSIVE,
            state,
            NOW,
        )
        assert kinds(result) == []
        assert sorted(op.kind for op in result.held) == ["deactivate", "remove_members"]
        assert [g.name for g in result.guards] == ["incomplete_listing"]


def test_an_incomplete_listing_s_guard_says_what_the_listing_said() -> None:
    """The target state's problems (one per short listing) are the guard's reason."""
    accounts, state = _owned_accounts(2)
    result = plan(
        DesiredState(users=[want("k0", "u0@example.com")]),
        TargetState(
            users=accounts,
            complete=False,
            problems=["users: the page at startIndex 101 failed: HTTP 503", "groups: short"],
        ),
        PERMISSIVE,
        state,
        NOW,
    )
    assert [
        (
            "incomplete_listing",
            "the target listing was incomplete (users: the page at startIndex 101 failed: "
            "HTTP 503; groups: short)",
        )
    ] == [(g.name, g.reason) for g in result.guards]


@pytest.mark.parametrize(
    ("limit", "percent", "reason"),
    [
        (2, None, "3 users to deprovision, over max_deprovisions 2"),
        (
            None,
            20.0,
            "3 of 10 owned users to deprovision (30.0%), over max_deprovisions_percent 20%",
        ),
    ],
)
def test_too_many_deprovisions_are_held(
    limit: int | None, percent: float | None, reason: str
) -> None:
    """max_deprovisions caps one cycle, as a count and as a share of owned accounts."""
    accounts, state = _owned_accounts(10)
    users = [want(f"k{i}", f"u{i}@example.com") for i in range(7)]
    policy = Policy(
        max_deprovisions=limit, max_deprovisions_percent=percent, max_source_shrink=None
    )
    result = run(users, accounts, policy, state)
    assert [("max_deprovisions", reason, 3)] == [(g.name, g.reason, g.held) for g in result.guards]
    assert kinds(result) == []


def test_forcing_a_guard_applies_what_it_would_hold_and_says_so() -> None:
    """``force`` goes past a named guard; the plan records that it was forced."""
    accounts, state = _owned_accounts(3)
    result = run([], accounts, Policy(force=["source_shrink", "max_deprovisions"]), state)
    assert len(result.operations) == 3
    assert not result.blocked
    assert {("source_shrink", True), ("max_deprovisions", True)} == {
        (g.name, g.forced) for g in result.guards
    }


# -- the painful real cases --------------------------------------------------------------------


def test_a_username_case_change_alone_creates_nothing_and_deactivates_nothing() -> None:
    """HR fixes the case of a userName: the same person, one account, no churn."""
    result = run(
        [want("e1", "Jane.Doe@Example.com")],
        [held("a1", "jane.doe@example.com", external_id="e1")],
        state=linked(e1="a1"),
    )
    assert [
        op.kind for op in result.operations if op.kind in ("create", "deactivate", "delete")
    ] == []
    assert list(result.conflicts) == []


def test_the_primary_email_moving_is_two_small_replaces_and_then_settles() -> None:
    """The primary flag moves from the work to the home address: one request, two
    filtered replaces (no list rewrite), and once applied nothing more to do."""
    actual = TargetState(
        users=[
            held(
                "a1",
                "e1@example.com",
                external_id="e1",
                emails=[
                    Email(value="a@example.com", type="work", primary=True),
                    Email(value="b@example.com", type="home"),
                ],
            )
        ]
    )
    desired = DesiredState(
        users=[
            want(
                "e1",
                emails=[
                    Email(value="a@example.com", type="work", primary=False),
                    Email(value="b@example.com", type="home", primary=True),
                ],
            )
        ]
    )
    result = plan(desired, actual, PERMISSIVE, linked(e1="a1"), NOW)
    (op,) = result.operations
    assert (
        PatchOperation(
            op="replace",
            path='emails[type eq "work" and value eq "a@example.com"].primary',
            value=False,
        ),
        PatchOperation(
            op="replace",
            path='emails[type eq "home" and value eq "b@example.com"].primary',
            value=True,
        ),
    ) == op.patch
    assert "emails changed" == op.reason
    again = plan(desired, simulate(result, actual), PERMISSIVE, linked(e1="a1"), NOW)
    assert [] == kinds(again)


def test_a_user_removed_while_the_source_is_empty_is_held() -> None:
    """One leaver plus an empty source read: nothing is deactivated, the reason is stated."""
    accounts, state = _owned_accounts(1)
    result = run([], accounts, Policy(), state)
    assert (kinds(result), len(result.held), result.blocked) == ([], 1, True)


# -- the garbage collector ------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("fails", [False, True])
def test_planning_pauses_the_cyclic_collector_and_restores_it(
    monkeypatch: pytest.MonkeyPatch, enabled: bool, fails: bool
) -> None:
    """The collector is off while plan() runs and as it was afterwards, even on an error."""
    seen: list[bool] = []

    def planning(*args: object) -> Plan:
        seen.append(gc.isenabled())
        if fails:
            raise ConfigurationError("bad")
        return Plan()

    monkeypatch.setattr(_planner, "_plan", planning)
    (gc.enable if enabled else gc.disable)()
    try:
        if fails:
            with pytest.raises(ConfigurationError):
                plan(DesiredState(), TargetState(), Policy())
        else:
            plan(DesiredState(), TargetState(), Policy())
        assert (seen, gc.isenabled()) == ([False], enabled)
    finally:
        gc.enable()


def test_plans_in_two_threads_share_the_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first plan ending while a second runs leaves the collector off for it; the
    last to end turns it back on."""
    first_in, first_may_end = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def planning(desired: DesiredState, *args: object) -> Plan:
        if desired.users:  # the first plan: ends when the second says so
            first_in.set()
            assert first_may_end.wait(timeout=30)
        else:  # the second plan: lets the first end, then looks
            first_may_end.set()
            first.join(timeout=30)
            seen["second plan, after the first ended"] = gc.isenabled()
        return Plan()

    monkeypatch.setattr(_planner, "_plan", planning)
    gc.enable()
    first = threading.Thread(
        target=plan, args=(DesiredState(users=[want("e1")]), TargetState(), Policy())
    )
    first.start()
    try:
        assert first_in.wait(timeout=30)
        plan(DesiredState(), TargetState(), Policy())
    finally:
        first_may_end.set()
        first.join(timeout=30)
    seen["after both"] = gc.isenabled()
    assert seen == {"second plan, after the first ended": False, "after both": True}


# -- bad input ----------------------------------------------------------------------------------


def test_wrong_arguments_are_a_configuration_error() -> None:
    """plan() says what is wrong with its arguments instead of failing somewhere inside."""
    with pytest.raises(
        ConfigurationError, match=r"desired must be a DesiredState.*now must be a timezone-aware"
    ):
        plan([], TargetState(), Policy(), None, NOW.replace(tzinfo=None))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adopt": "maybe"}, "adopt: 'maybe' is not one of"),
        ({"max_deprovisions": -1}, "max_deprovisions: expected a non-negative integer"),
        ({"max_source_shrink": 150}, "max_source_shrink: expected a percentage"),
        ({"max_members_per_operation": 0}, "max_members_per_operation: expected at least 1"),
        ({"match_keys": ["emails"]}, "'emails' is not a singular string attribute"),
        ({"match_keys": ["id"]}, "'id' is readOnly"),
        ({"match_keys": ["emails.value"]}, "'emails.value' is in the multi-valued 'emails'"),
        ({"match_keys": ["nope"]}, "User has no attribute 'nope'"),
        ({"force": ["everything"]}, "force: unknown guards"),
        ({"delete_after_days": 3}, "only meaningful with deprovision='delete'"),
    ],
)
def test_an_invalid_policy_is_refused_with_every_problem_named(
    kwargs: dict[str, Any], message: str
) -> None:
    """Policy checks its values on construction and raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        Policy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ignore_paths": ["userName"]}, "ignore_paths: 'userName' cannot be ignored"),
        ({"ignore_paths": ["USERNAME"]}, "ignore_paths: 'USERNAME' cannot be ignored"),
        (
            {"ignore_paths": ["urn:ietf:params:scim:schemas:core:2.0:User:userName"]},
            "'urn:ietf:params:scim:schemas:core:2.0:User:userName' cannot be ignored",
        ),
        ({"ignore_paths": ["id"]}, "ignore_paths: 'id' cannot be ignored"),
        ({"ignore_paths": ["meta.created"]}, "ignore_paths: 'meta.created' cannot be ignored"),
        ({"ignore_paths": ["groups"]}, "ignore_paths: 'groups' cannot be ignored"),
        ({"ignore_paths": ["schemas"]}, "ignore_paths: 'schemas' cannot be ignored"),
        ({"group_ignore_paths": ["members"]}, "group_ignore_paths: 'members' cannot be ignored"),
        (
            {"group_ignore_paths": ["MEMBERS.value"]},
            "group_ignore_paths: 'MEMBERS.value' cannot be ignored",
        ),
        (
            {"group_ignore_paths": ["displayName"]},
            "group_ignore_paths: 'displayName' cannot be ignored",
        ),
        (
            {"ignore_paths": ['emails[type eq "work"].value']},
            "an ignored path names no value filter",
        ),
        ({"ignore_paths": ["title."]}, "ignore_paths: invalid path 'title.'"),
        ({"ignore_paths": ["a b"]}, "ignore_paths: invalid path 'a b'"),
    ],
)
def test_ignore_paths_that_cannot_be_ignored_are_refused(
    kwargs: dict[str, Any], message: str
) -> None:
    """Required attributes, what identifies a resource, memberships, filtered paths and
    paths that do not parse are refused as ignored paths, in any spelling."""
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Policy(**kwargs)


@pytest.mark.parametrize(
    ("path", "attribute"),
    [
        ("emails.value", "emails"),
        ("PhoneNumbers.Value", "phoneNumbers"),
        ("x509Certificates.value", "x509Certificates"),
    ],
)
def test_the_value_of_a_multi_valued_attribute_cannot_be_ignored(path: str, attribute: str) -> None:
    """``emails.value`` is refused, naming the attribute to ignore instead (as the
    schema spells it): left out, the engine would create and add emails without one."""
    with pytest.raises(ConfigurationError, match=re.escape(f"ignore {attribute!r}")):
        Policy(ignore_paths=[path])


def test_every_ignore_path_problem_is_named_at_once() -> None:
    """Two bad ignored paths give one error naming both."""
    with pytest.raises(ConfigurationError) as caught:
        Policy(ignore_paths=["userName", "a b"], group_ignore_paths=["members"])
    text = str(caught.value)
    assert (True, True, True) == (
        "'userName' cannot be ignored" in text,
        "invalid path 'a b'" in text,
        "group_ignore_paths: 'members' cannot be ignored" in text,
    )


def test_ignore_paths_may_be_one_string_or_any_attribute_that_can_go() -> None:
    """One path given as a string is one path; optional core, extension and unknown
    attributes and sub-attributes are accepted as written."""
    ignored = (
        "title",
        "emails.type",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "costCode",
    )
    assert (("title",), ignored, ("externalId",)) == (
        Policy(ignore_paths="title").ignore_paths,
        Policy(ignore_paths=ignored).ignore_paths,
        Policy(group_ignore_paths=["externalId"]).group_ignore_paths,
    )


def test_match_keys_may_be_extension_attributes() -> None:
    """An enterprise employeeNumber can identify users (URN-qualified path)."""
    from scimsync import EnterpriseUser

    policy = Policy(
        match_keys=["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"],
        adopt="adopt",
    )
    result = run(
        [
            DesiredUser(
                key="e1",
                user=User(
                    user_name="n@example.com", enterprise=EnterpriseUser(employee_number="42")
                ),
            )
        ],
        [held("a1", "old@example.com", enterprise=EnterpriseUser(employee_number="42"))],
        policy,
    )
    assert kinds(result) == [("update", "User", "a1")]


def test_simulate_applies_a_plan_like_a_target_would() -> None:
    """Creates get ids, updates apply, a deleted user leaves its groups."""
    actual = TargetState(
        users=[
            held("a1", "e1@example.com", external_id="e1", title="Guide"),
            held("a9", "x@example.com"),
        ],
        groups=[Group(id="g", external_id="g1", display_name="G", members=[Member(value="a9")])],
    )
    result = plan(
        DesiredState(
            users=[want("e1", title="Lead"), want("e2")],
            groups=[
                DesiredGroup(
                    key="g1",
                    group=Group(external_id="g1", display_name="G"),
                    member_keys=["e2", "e9"],
                )
            ],
        ),
        actual,
        attrs.evolve(PERMISSIVE, deprovision="delete"),
        SyncState(users=Ledger(links={"e9": "a9"})),
        NOW,
    )
    after = simulate(result, actual)
    assert [u.id for u in after.users] == ["a1", "sim-user-e2"]
    assert after.users[0].title == "Lead"
    assert (Member(value="sim-user-e2"),) == after.groups[0].members


def test_simulate_refuses_a_plan_made_for_another_target() -> None:
    """An operation on a resource the target does not hold is a PlanError, not a no-op."""
    from scimsync.errors import PlanError

    stray = Plan(operations=[Operation(kind="delete", resource_type="User", target_id="nope")])
    with pytest.raises(PlanError, match="not in the target state"):
        simulate(stray, TargetState())


def test_emails_are_compared_by_identity() -> None:
    """The same emails in another order are no change."""
    emails = [Email(value="a@example.com", type="work"), Email(value="b@example.com", type="home")]
    result = run(
        [want("e1", emails=emails)],
        [held("a1", "e1@example.com", external_id="e1", emails=list(reversed(emails)))],
    )
    assert kinds(result) == []
