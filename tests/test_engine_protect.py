"""Protection: a source record with an issue keeps its own account, and only that one.

The engine reads ``DesiredState.protected_user_keys`` / ``protected_group_keys``: the
accounts of those keys are neither deactivated, deleted nor removed from a group,
and every other deprovision of the plan goes ahead. A protected key the engine cannot
tie to an account holds what the plan takes from accounts the state links to no key.
"""

from __future__ import annotations

from typing import Any

import attrs

from scimsync import Group, Member, User
from scimsync.engine import Ledger, Plan, Policy, Protection, SyncState, plan
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from strategies import NOW

PERMISSIVE = Policy(max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None)
BAD_EMAIL = "source record has an issue: invalid_value: emails: 'x@' is not an email"


def want(key: str) -> DesiredUser:
    """A source record keyed ``key`` whose externalId is the key."""
    return DesiredUser(key=key, user=User(external_id=key, user_name=f"{key}@example.com"))


def account(account_id: str, key: str | None, **attributes: Any) -> User:
    """An active account as the target lists it, carrying ``key`` as its externalId."""
    user_name = f"{key or account_id}@example.com"
    return User(id=account_id, external_id=key, user_name=user_name, active=True, **attributes)


def deactivated(result: Plan) -> list[str]:
    """The ids of the accounts the plan deactivates (to apply, not held)."""
    return [op.target_id for op in result.operations if op.kind == "deactivate"]


def run(
    desired: DesiredState,
    accounts: list[User],
    state: SyncState | None,
    policy: Policy = PERMISSIVE,
    groups: tuple[Group, ...] = (),
) -> Plan:
    return plan(desired, TargetState(users=accounts, groups=groups), policy, state, NOW)


def _company() -> tuple[list[User], SyncState]:
    """20 linked, owned accounts: s0-s6 stay, l0-l9 left, b0-b2 have bad records."""
    keys = [f"s{i}" for i in range(7)] + [f"l{i}" for i in range(10)] + ["b0", "b1", "b2"]
    accounts = [account(f"id-{key}", key) for key in keys]
    state = SyncState(users=Ledger(links={key: f"id-{key}" for key in keys}, last_source_count=20))
    return accounts, state


def test_ten_leavers_are_deactivated_while_three_bad_records_are_protected() -> None:
    """The issue's case: 3 invalid rows no longer hold the 10 leavers; the 3 are kept."""
    accounts, state = _company()
    desired = DesiredState(
        users=[want(f"s{i}") for i in range(7)],
        protected_user_keys=dict.fromkeys(("b2", "b0", "b1"), BAD_EMAIL),
    )
    result = run(desired, accounts, state)
    assert [f"id-l{i}" for i in range(10)] == deactivated(result)
    assert ((), (), ()) == (result.held, result.guards, result.conflicts)
    assert [
        Protection(
            resource_type="User", source_key=key, reason=BAD_EMAIL, target_ids=(f"id-{key}",)
        )
        for key in ("b0", "b1", "b2")
    ] == list(result.protected)
    assert {"User": 10, "Group": 0} == dict(result.source_counts)  # 7 good, 3 bad


def test_protected_keys_count_in_the_source_size() -> None:
    """A source of 17 good and 3 bad records has not shrunk from 20: no source_shrink."""
    accounts, state = _company()
    desired = DesiredState(
        users=[want(f"s{i}") for i in range(7)] + [want(f"l{i}") for i in range(10)],
        protected_user_keys=["b0", "b1", "b2"],
    )
    result = run(desired, accounts, state, attrs.evolve(PERMISSIVE, max_source_shrink=10.0))
    assert ((), [], 20) == (result.guards, deactivated(result), result.source_counts["User"])
    assert ["source record has an issue"] * 3 == [p.reason for p in result.protected]


def test_memberships_of_a_protected_account_are_not_removed() -> None:
    """A group keeps the protected account as a member; the leaver's membership goes."""
    accounts, state = _company()
    state = attrs.evolve(state, groups=Ledger(links={"eng": "gid"}))
    members = [Member(value=v) for v in ("id-s0", "id-l0", "id-b0")]
    result = run(
        DesiredState(
            users=[want("s0")],
            groups=[
                DesiredGroup(
                    key="eng",
                    group=Group(external_id="eng", display_name="Eng"),
                    member_keys=["s0", "b0"],
                )
            ],
            protected_user_keys=["b0"],
        ),
        [a for a in accounts if a.id in ("id-s0", "id-l0", "id-b0")],
        state,
        groups=(Group(id="gid", external_id="eng", display_name="Eng", members=members),),
    )
    assert [("remove_members", ("id-l0",)), ("deactivate", ())] == [
        (op.kind, op.members) for op in result.operations
    ]
    assert () == result.skipped  # "b0" is a member the source holds, not an unknown one


def test_an_account_whose_external_id_is_the_protected_key_is_protected() -> None:
    """No link in the state, but the account carries the key as externalId: it is kept,
    and the key being tied to it, the other deprovisions go ahead."""
    result = run(
        DesiredState(protected_user_keys={"hr-7": BAD_EMAIL}),
        [account("a7", "hr-7"), account("a8", "hr-8")],
        None,
        attrs.evolve(PERMISSIVE, external_id_prefix="hr-"),
    )
    assert (["a8"], (), ("a7",)) == (
        deactivated(result),
        result.guards,
        result.protected[0].target_ids,
    )


def test_an_account_linked_to_another_key_is_not_protected_by_its_external_id() -> None:
    """An account the state links to a leaver is the leaver's, whatever its externalId."""
    result = run(
        DesiredState(protected_user_keys=["e7"]),
        [account("a1", "e7")],
        SyncState(users=Ledger(links={"e1": "a1"})),
    )
    assert (["a1"], (), ()) == (deactivated(result), result.guards, result.protected[0].target_ids)


def test_a_protected_key_tied_to_no_account_holds_what_unlinked_accounts_would_lose() -> None:
    """A first cycle (no state): the bad record may be any unlinked owned account, so
    deprovisioning them is held, with a reason naming the key; forcing goes past it."""
    desired = DesiredState(users=[want("hr-1")], protected_user_keys={"7": BAD_EMAIL})
    accounts = [account("a1", "hr-1"), account("a2", "hr-2"), account("a3", "hr-3")]
    policy = attrs.evolve(PERMISSIVE, external_id_prefix="hr-")
    result = run(desired, accounts, None, policy)
    assert ([], ["a2", "a3"]) == (deactivated(result), [op.target_id for op in result.held])
    assert [
        (
            "incomplete_listing",
            'source records with an issue are tied to no account (User "7"): 2 operations '
            "would take something from accounts the state links to no key, which may be theirs",
        )
    ] == [(g.name, g.reason) for g in result.guards]
    assert () == result.protected[0].target_ids
    forced = run(desired, accounts, None, attrs.evolve(policy, force=["incomplete_listing"]))
    assert ["a2", "a3"] == deactivated(forced)


def test_an_unlinked_protected_key_leaves_accounts_linked_to_other_keys_to_go() -> None:
    """A new hire whose first record is bad has no account yet: leavers whose accounts
    the state links to their own keys are deactivated all the same."""
    accounts, state = _company()
    desired = DesiredState(
        users=[want(f"s{i}") for i in range(7)],
        protected_user_keys={"b0": BAD_EMAIL, "b1": BAD_EMAIL, "b2": BAD_EMAIL, "new": BAD_EMAIL},
    )
    result = run(desired, accounts, state)
    assert ([f"id-l{i}" for i in range(10)], ()) == (deactivated(result), result.guards)
    assert ("new", ()) == (result.protected[-1].source_key, result.protected[-1].target_ids)


def test_an_incomplete_read_still_holds_everything_besides_protection() -> None:
    """Protected keys do not make a partial read trustworthy: every deprovision is held."""
    accounts, state = _company()
    desired = DesiredState(
        users=[want(f"s{i}") for i in range(7)], protected_user_keys=["b0"], complete=False
    )
    result = run(desired, accounts, state)
    assert ([], 12) == (deactivated(result), len(result.held))
    assert ["incomplete_listing"] == [g.name for g in result.guards]


def test_a_protected_group_is_not_deleted_and_a_protected_kept_group_keeps_its_members() -> None:
    """A group record with an issue: the group is not deleted (another leaving group is);
    a group both desired and protected (its members unknown) has no member removed."""
    state = SyncState(
        users=Ledger(links={"s0": "id-s0", "l0": "id-l0"}),
        groups=Ledger(links={"bad": "g-bad", "gone": "g-gone", "half": "g-half"}),
    )
    held_groups = (
        Group(id="g-bad", external_id="bad", display_name="Bad", members=[]),
        Group(id="g-gone", external_id="gone", display_name="Gone", members=[]),
        Group(
            id="g-half",
            external_id="half",
            display_name="Half",
            members=[Member(value="id-s0"), Member(value="id-l0")],
        ),
    )
    result = run(
        DesiredState(
            users=[want("s0"), want("l0")],
            groups=[
                DesiredGroup(
                    key="half",
                    group=Group(external_id="half", display_name="Half"),
                    member_keys=["s0"],
                )
            ],
            protected_group_keys={"bad": "duplicate_key", "half": "member list unreadable"},
        ),
        [account("id-s0", "s0"), account("id-l0", "l0")],
        state,
        groups=held_groups,
    )
    assert [("delete", "g-gone")] == [(op.kind, op.target_id) for op in result.operations]
    assert [("Group", "bad", ("g-bad",)), ("Group", "half", ("g-half",))] == [
        (p.resource_type, p.source_key, p.target_ids) for p in result.protected
    ]


def test_protections_round_trip_through_json_and_show_in_the_review() -> None:
    """Plan.protected survives to_json/from_json exactly and the review names each key."""
    accounts, state = _company()
    desired = DesiredState(
        users=[want(f"s{i}") for i in range(7)],
        protected_user_keys={"b0": BAD_EMAIL, "zz": "source record has an issue"},
    )
    result = run(desired, accounts, state)
    assert result == Plan.from_json(result.to_json())
    text = result.render()
    assert "(2 protected)." in text.splitlines()[0]
    assert [
        "Protected (source records with issues: not deprovisioned, groups kept):",
        f'  User "b0" (id id-b0): {BAD_EMAIL}',
        '  User "zz" (no account known): source record has an issue',
    ] == text.split("\n\n")[-1].splitlines()[:3]


def test_a_reference_to_a_protected_key_is_left_as_it_is_without_a_word() -> None:
    """A manager whose record has an issue is a user of the source: the reference to it
    is left as it is, not reported as naming nobody."""
    employee = attrs.evolve(
        want("s0"),
        references={
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "b0"
        },
    )
    accounts, state = _company()
    result = run(
        DesiredState(users=[employee], protected_user_keys=["b0"]),
        [a for a in accounts if a.id in ("id-s0", "id-b0")],
        state,
    )
    assert ((), ()) == (result.operations, result.skipped)
