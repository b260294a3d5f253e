"""Properties of the engine over generated sources, targets and states (Hypothesis).

Each property runs at least 500 examples of up to 200 users and 20 groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimsync import Email, EnterpriseUser, Manager, Meta, User
from scimsync.engine import (
    GUARDS,
    Placeholder,
    Plan,
    Policy,
    SyncState,
    plan,
    simulate,
    simulated_id,
)
from scimsync.engine._changes import attribute_patch
from scimsync.engine._planner import _clearing, _plan, _scopes
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState
from strategies import (
    MANAGED,
    NOW,
    SCOPED,
    UNMANAGED_EMAILS,
    Scenario,
    any_users,
    as_mapped,
    managed_sets,
    recase,
    scenarios,
    shuffled,
    target_states,
    users,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# Scenarios of hundreds of users have long reprs; Hypothesis warns when printing one.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    pytest.mark.properties,
]

EXAMPLES = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

policies = st.builds(
    Policy,
    adopt=st.sampled_from(["adopt", "ignore", "fail"]),
    deprovision=st.sampled_from(["deactivate", "delete", "none"]),
    group_deprovision=st.sampled_from(["delete", "none"]),
    update_method=st.sampled_from(["patch", "put"]),
    max_members_per_operation=st.integers(1, 5),
    max_deprovisions=st.none() | st.integers(0, 20),
    max_deprovisions_percent=st.none() | st.floats(0, 100),
    max_source_shrink=st.none() | st.floats(0, 100),
    external_id_prefix=st.none() | st.just("k1"),
).flatmap(
    lambda p: (
        st.just(p)
        if p.deprovision != "delete"
        else st.builds(
            lambda days: attrs.evolve(p, delete_after_days=days), st.none() | st.integers(0, 45)
        )
    )
)


def _created_ids(result: Plan) -> dict[str, str]:
    return {
        op.target_id: simulated_id(op.target_id) for op in result.operations if op.kind == "create"
    }


def _mirror(actual: TargetState) -> DesiredState:
    """What a source would want to keep ``actual`` exactly as it is (keyed by externalId)."""
    key_of = {u.id: u.external_id for u in actual.users if u.external_id is not None}
    records = [
        DesiredUser(key=u.external_id, user=attrs.evolve(u, id=None, meta=None, groups=None))
        for u in actual.users
        if u.external_id is not None
    ]
    group_records = [
        DesiredGroup(
            key=g.external_id,
            group=attrs.evolve(g, id=None, meta=None, members=None),
            member_keys=[key_of[m.value] for m in g.members or () if m.value in key_of],
        )
        for g in actual.groups
        if g.external_id is not None
    ]
    return DesiredState(users=records, groups=group_records, managed_user_attributes=MANAGED)


@EXAMPLES
@given(target_states(), st.sampled_from(["patch", "put"]))
def test_a_target_planned_against_itself_needs_nothing(actual: TargetState, method: str) -> None:
    """plan(x, x) is empty: a source that wants exactly what the target holds changes nothing.

    Accounts whose userName clashes with another's are conflicts (never a guess), and
    group members that are not mirrored stay where they are (not owned, not touched).
    The mirror manages attributes too: nothing it holds is cleared.
    """
    # Keep one account per userName (case-insensitively), as a real target does.
    seen: set[str] = set()
    unique = []
    for account in actual.users:
        name = (account.user_name or "").casefold()
        if name not in seen:
            seen.add(name)
            unique.append(account)
    actual = attrs.evolve(actual, users=unique)
    # Groups hold only members that are mirrored, so nothing is to be removed either.
    mirrored = {u.id for u in unique if u.external_id is not None}
    actual = attrs.evolve(
        actual,
        groups=[
            attrs.evolve(g, members=tuple(m for m in g.members or () if m.value in mirrored))
            for g in actual.groups
        ],
    )
    result = plan(_mirror(actual), actual, Policy(update_method=method))  # type: ignore[arg-type]
    assert [op.kind for op in result.operations] == []
    assert result.held == ()


def _apply(
    scenario: Scenario, policy: Policy, actual: TargetState, state: SyncState
) -> tuple[Plan, TargetState, SyncState]:
    """Plan one cycle, apply it to the in-memory target, record the next state."""
    result = plan(scenario.desired, actual, policy, state, NOW)
    return result, simulate(result, actual), state.after(result, _created_ids(result))


def _emails(actual: TargetState) -> dict[str, set[tuple[str | None, str]]]:
    """Account id -> (type, value) of each email it holds but the work ones."""
    return {
        u.id or "": {
            (e.type, (e.value or "").casefold()) for e in u.emails or () if e.type != "work"
        }
        for u in actual.users
    }


#: Conflicts over a name another resource holds. They clear once that resource is renamed
#: or deleted, which the same plan may do: then the next cycle does the rest.
NAME_CONTENTION = frozenset({"taken", "ambiguous_match"})


def settle(step: Callable[[], Plan], limit: int = 10) -> list[Plan]:
    """Run ``step`` (plan one cycle and apply it) until a plan has nothing to apply.

    Every cycle after the first must be owed to name contention in the cycle before
    (a rename chain: each cycle frees the name the next record wants).
    """
    plans = [step()]
    while True:
        plans.append(step())
        if not plans[-1].operations:
            return plans
        previous = plans[-2]
        assert any(c.kind in NAME_CONTENTION for c in previous.conflicts), [
            (op.kind, op.target_id, op.reason) for op in plans[-1].operations
        ]
        assert len(plans) < limit


@EXAMPLES
@given(scenarios(), policies)
def test_applying_a_plan_then_planning_again_changes_nothing(
    scenario: Scenario, policy: Policy
) -> None:
    """Idempotence: plan, apply to an in-memory target, record the state, plan again: empty.

    The sources clear attributes the target holds (removed once, then settled) and
    name managers by source key: known, unknown, their own, in circles, created in
    the same plan. Guards are forced here (holding is another property's business). Name contention
    takes more cycles, on purpose: a record whose userName another account holds is a
    conflict until that account is renamed or deleted, which the same plan may do; the
    next cycle then goes on (see :func:`settle`).

    A source managing the work email by filter leaves every other email of every
    account as it is (a home one, one primary next to the work one), whatever the
    cycles do (update, adopt, PUT, deactivate): nothing it does not speak for is lost,
    and no primary flag flips back and forth.
    """
    policy = attrs.evolve(policy, force=frozenset(GUARDS))
    actual, state = scenario.actual, scenario.state

    def step() -> Plan:
        nonlocal actual, state
        result, actual, state = _apply(scenario, policy, actual, state)
        return result

    before = _emails(actual)
    plans = settle(step)
    assert plans[-1].held == ()
    if not any(c.kind in NAME_CONTENTION for c in plans[0].conflicts):
        assert len(plans) == 2
    if scenario.desired.managed_user_attributes in SCOPED:
        after = _emails(actual)
        lost = {
            i: before[i] - after[i] for i in before.keys() & after.keys() if before[i] - after[i]
        }
        assert {} == lost


@EXAMPLES
@given(st.data(), scenarios(complete=None), policies)
def test_the_same_inputs_in_any_order_give_the_same_bytes(
    data: st.DataObject, scenario: Scenario, policy: Policy
) -> None:
    """Determinism: shuffled users, groups and members give a byte-identical plan."""
    expected = plan(scenario.desired, scenario.actual, policy, scenario.state, NOW).to_json()
    other = data.draw(shuffled(scenario))
    assert expected == plan(other.desired, other.actual, policy, other.state, NOW).to_json()


@EXAMPLES
@given(scenarios(complete=None), policies)
def test_no_operation_touches_an_account_scimsync_does_not_own(
    scenario: Scenario, policy: Policy
) -> None:
    """Only owned accounts are changed: linked or owned in the state, carrying the managed
    externalId of the record they serve (or the policy's prefix), or adopted on purpose."""
    result = plan(scenario.desired, scenario.actual, policy, scenario.state, NOW)
    ledgers = {"User": scenario.state.users, "Group": scenario.state.groups}
    accounts: dict[tuple[str, str], Any] = {
        **{("User", u.id or ""): u for u in scenario.actual.users},
        **{("Group", g.id or ""): g for g in scenario.actual.groups},
    }
    adopted = {(link.resource_type, link.target_id) for link in result.links if link.adopted}
    prefix = policy.external_id_prefix
    for op in (*result.operations, *result.held):
        if Placeholder.parse(op.target_id) is not None:
            continue
        account = accounts[op.resource_type, op.target_id]
        external_id = account.external_id
        owned = (
            ledgers[op.resource_type].owns(op.target_id)
            or (prefix is not None and external_id is not None and external_id.startswith(prefix))
            or (op.kind not in ("deactivate", "delete") and external_id == op.source_key)
            or (policy.adopt == "adopt" and (op.resource_type, op.target_id) in adopted)
        )
        assert owned, f"{op.kind} of {op.resource_type} {op.target_id} ({op.reason})"


def _destructive(result: Plan) -> list[Any]:
    return [op for op in result.operations if op.kind in ("deactivate", "delete", "remove_members")]


@EXAMPLES
@given(scenarios(complete=None), policies)
def test_guards_hold_whenever_their_condition_holds(scenario: Scenario, policy: Policy) -> None:
    """Incomplete listings, a shrunken source and too many deprovisions never take anything away."""
    policy = attrs.evolve(policy, force=frozenset())
    result = plan(scenario.desired, scenario.actual, policy, scenario.state, NOW)
    everything = [*result.operations, *result.held]
    takes_away = any(op.kind in ("deactivate", "delete", "remove_members") for op in everything)
    reasons = set()
    if not (scenario.desired.complete and scenario.actual.complete):
        reasons.add("incomplete_listing")
    for resource_type, records, ledger in (
        ("User", scenario.desired.users, scenario.state.users),
        ("Group", scenario.desired.groups, scenario.state.groups),
    ):
        last = ledger.last_source_count
        deprovisions = [
            op
            for op in everything
            if op.resource_type == resource_type and op.kind in ("deactivate", "delete")
        ]
        if (not records and (last or deprovisions)) or (
            last
            and policy.max_source_shrink is not None
            and (last - len(records)) * 100 / last > policy.max_source_shrink
        ):
            reasons.add("source_shrink")
        if policy.max_deprovisions is not None and len(deprovisions) > policy.max_deprovisions:
            reasons.add("max_deprovisions")
    if takes_away and reasons:
        assert result.blocked
        assert _destructive(result) == []
        assert reasons <= {trip.name for trip in result.guards}
    if not reasons - {"max_deprovisions"} and not takes_away:
        assert not result.blocked


@EXAMPLES
@given(st.data(), st.integers(2, 6))
def test_case_variants_of_one_user_name_never_give_two_creates(
    data: st.DataObject, copies: int
) -> None:
    """Source records whose userNames differ only by case are one identity to the target."""
    base = data.draw(users())
    assert base.user_name is not None
    records = []
    for index in range(copies):
        variant = data.draw(
            st.sampled_from([base.user_name, base.user_name.upper(), base.user_name.lower()])
        )
        records.append(
            DesiredUser(
                key=f"k{index}", user=attrs.evolve(base, user_name=variant, external_id=None)
            )
        )
    extra = data.draw(st.lists(st.builds(lambda u: u, users()), max_size=5))
    actual = TargetState(users=[attrs.evolve(u, id=f"u{i}") for i, u in enumerate(extra)])
    result = plan(DesiredState(users=records), actual, Policy(adopt="adopt"), SyncState(), NOW)
    created = [
        op.body.user_name.casefold()
        for op in result.operations
        if op.kind == "create" and isinstance(op.body, User) and op.body.user_name
    ]
    assert base.user_name.casefold() not in created or created.count(base.user_name.casefold()) == 1
    assert len(created) == len(set(created))


def _protected_accounts(scenario: Scenario, resource_type: str) -> set[str]:
    """Accounts of protected keys: linked to one, or carrying one as externalId (and
    linked to no other key)."""
    if resource_type == "User":
        keys, ledger = scenario.desired.protected_user_keys, scenario.state.users
        accounts: Any = scenario.actual.users
    else:
        keys, ledger = scenario.desired.protected_group_keys, scenario.state.groups
        accounts = scenario.actual.groups
    owner = {target_id: key for key, target_id in ledger.links.items()}
    found = {ledger.links[key] for key in keys if key in ledger.links}
    found.update(
        a.id for a in accounts if a.external_id in keys and owner.get(a.id) in (None, a.external_id)
    )
    return found


@EXAMPLES
@given(st.data(), scenarios(complete=None, protect=True), policies)
def test_an_account_of_a_protected_key_never_loses_anything(
    data: st.DataObject, scenario: Scenario, policy: Policy
) -> None:
    """The account of a source record with an issue is never deactivated, deleted or
    removed from a group, applied or held; a protected group keeps its members; the
    plan lists every protected key; and plans with protections are deterministic too
    (shuffled inputs, same bytes)."""
    result = plan(scenario.desired, scenario.actual, policy, scenario.state, NOW)
    users, groups = _protected_accounts(scenario, "User"), _protected_accounts(scenario, "Group")
    for op in (*result.operations, *result.held):
        if op.kind in ("deactivate", "delete"):
            assert op.target_id not in (users if op.resource_type == "User" else groups)
        elif op.kind == "remove_members":
            assert op.target_id not in groups
            assert set() == users & set(op.members)
    desired = scenario.desired
    assert [
        *(("User", key) for key in desired.protected_user_keys),
        *(("Group", key) for key in desired.protected_group_keys),
    ] == [(p.resource_type, p.source_key) for p in result.protected]
    other = data.draw(shuffled(scenario))
    assert result.to_json() == plan(other.desired, other.actual, policy, other.state, NOW).to_json()


@EXAMPLES
@given(scenarios(protect=True), policies)
def test_a_protected_key_tied_to_no_account_takes_nothing_from_unlinked_accounts(
    scenario: Scenario, policy: Policy
) -> None:
    """While a record with an issue is tied to no account, no applied operation takes
    anything from an account the state links to no key: it may be that record's."""
    policy = attrs.evolve(policy, force=frozenset())
    result = plan(scenario.desired, scenario.actual, policy, scenario.state, NOW)
    owners = {"User": scenario.state.users.links, "Group": scenario.state.groups.links}
    untied = {
        p.resource_type
        for p in result.protected
        if not p.target_ids and p.source_key not in owners[p.resource_type]
    }
    linked = {kind: set(links.values()) for kind, links in owners.items()}
    for op in result.operations:
        if op.kind in ("deactivate", "delete") and op.resource_type in untied:
            assert op.target_id in linked[op.resource_type]
        if op.kind == "remove_members" and "User" in untied:
            assert set(op.members) <= linked["User"]


@EXAMPLES
@given(scenarios(complete=None, protect=True), policies, st.booleans())
def test_the_shortcuts_for_unchanged_resources_change_no_plan(
    scenario: Scenario, policy: Policy, first_cycle: bool
) -> None:
    """The fast path (unchanged users told at a glance, linked or matched by key on a
    first cycle; records whose keys agree matched column by column) gives byte for byte
    the plan of matching record by record and comparing every resource in full."""
    state = None if first_cycle else scenario.state
    args = (scenario.desired, scenario.actual, policy, state, NOW)
    assert _plan(*args, fast=False).to_json() == _plan(*args, fast=True).to_json()


def _held_as(user: User, how: int, mask: int) -> User:
    """``user`` as a target might hold it: as sent, with its own email, in another order,
    recased, with ``primary`` left out, with a manager, or with other values."""
    held = attrs.evolve(user, id="u1", meta=Meta(version='W/"1"'))
    emails = held.emails or ()
    if how == 1:
        return attrs.evolve(held, emails=(*emails, UNMANAGED_EMAILS[mask % 3]))
    if how == 2:
        return attrs.evolve(held, emails=(UNMANAGED_EMAILS[mask % 3], *reversed(emails)))
    if how == 3 and held.user_name is not None:
        return attrs.evolve(held, user_name=recase(held.user_name, mask))
    if how == 4:
        mails = tuple(
            attrs.evolve(e, primary=None if e.primary is False else e.primary) for e in emails
        )
        return attrs.evolve(held, emails=mails)
    if how == 5:
        enterprise = held.enterprise or EnterpriseUser()
        return attrs.evolve(held, enterprise=attrs.evolve(enterprise, manager=Manager(value="m")))
    if how == 6:
        mails = tuple(attrs.evolve(e, value=recase(e.value or "", mask)) for e in emails)
        return attrs.evolve(held, emails=(*mails, Email(value="x@example.com", type="work")))
    return held


@EXAMPLES
@given(any_users, any_users, managed_sets, st.integers(0, 7), st.integers(0, 2**16))
def test_the_fast_comparison_agrees_with_the_full_one(
    user: User, other: User, managed: tuple[str, ...] | None, how: int, mask: int
) -> None:
    """For one user and an account (as sent, drifted, or another user altogether), the
    shortcuts of the comparison give the same PATCH, changes and clearings as the full
    attribute-by-attribute walk."""
    policy = Policy()
    wanted = as_mapped(user, managed)
    account = _held_as(other if how == 7 else wanted, how, mask)
    clear = _clearing(User, tuple(sorted(managed)) if managed else None, policy.schema)
    scopes = _scopes(User, tuple(sorted(managed)) if managed else None, (), policy.schema)
    full = attribute_patch(account, wanted, "User", policy, clear, scopes=scopes, fast=False)
    assert full == attribute_patch(account, wanted, "User", policy, clear, scopes=scopes)
