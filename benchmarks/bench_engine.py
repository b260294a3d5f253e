"""Plan a sync of a large directory: time, peak memory, and the cost of an unchanged user.

The shape of a real deployment at steady state: N users (a name, two emails, a title,
the enterprise extension), N/100 groups averaging 100 members plus three groups of
10,000, every account linked in the state by an earlier cycle, and 1% drift (titles
changed, new hires to create, leavers to deactivate, memberships moved).

The same again with what a mapping adds (``--managed`` rows): the attributes it
manages (so a value the source cleared is removed from the target) and a manager
named by source key on every user (resolved to the manager's target id). And the
unchanged user once more with an email of the target's own next to the two the
mapping writes by filter (a value the sync compares around, never removes), and on a
first cycle: no state yet (a first run, a lost state store), every account matched by
externalId and userName, and its link recorded in the plan.

There is no other planning engine to measure against, so the "peer" column is a naive
reconciliation measured in the same run: index the target by externalId, then compare
each user's full ``to_scim`` dict with the target's on the keys the source sets. It
finds changed users and nothing else (no ownership, guards, conflicts, groups or
operations), so the ratio understates what the engine does per user.

    python benchmarks/bench_engine.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

import attrs
from _common import machine, peak_memory, print_rows, timed

from scimsync import Email, EnterpriseUser, Group, Manager, Member, Meta, Name, User, to_scim
from scimsync.engine import Ledger, Plan, Policy, SyncState, plan
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager.value"
#: What a typical HR mapping manages.
MANAGED = (
    "active",
    "displayName",
    'emails[type eq "home"].value',
    'emails[type eq "work"].primary',
    'emails[type eq "work"].value',
    "externalId",
    "name.familyName",
    "name.givenName",
    'phoneNumbers[type eq "work"].value',
    "title",
    "userName",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    MANAGER,
)
POLICY = Policy(max_deprovisions=None, max_deprovisions_percent=None, max_source_shrink=None)
BIG_GROUPS = 3
BIG_GROUP_SIZE = 10_000


def _user(i: int, title: str = "Engineer") -> User:
    return User(
        external_id=f"emp-{i}",
        user_name=f"user{i}@example.com",
        name=Name(given_name="Barbara", family_name=f"Jensen{i}"),
        display_name=f"Barbara Jensen {i}",
        title=title,
        emails=(
            Email(value=f"user{i}@example.com", type="work", primary=True),
            Email(value=f"babs{i}@jensen.org", type="home"),
        ),
        enterprise=EnterpriseUser(employee_number=str(i), department=f"Dept {i % 50}"),
    )


def _managed(user: User, i: int) -> User:
    """The account of user ``i`` as the target holds it once its manager is set."""
    if i == 0 or user.enterprise is None:
        return user
    manager = Manager(value=f"id-{i // 10}")
    return attrs.evolve(user, enterprise=attrs.evolve(user.enterprise, manager=manager))


def _with_own_email(user: User, i: int) -> User:
    """The account with an email the mapping does not write (someone added it)."""
    own = Email(value=f"babs{i}@elsewhere.example", type="other")
    return attrs.evolve(user, emails=(*(user.emails or ()), own))


def build(
    users: int,
    drift: float = 0.01,
    with_groups: bool = True,
    managed: bool = False,
    own_email: bool = False,
) -> tuple[Any, ...]:
    """Desired state, target state and state for ``users`` users with ``drift`` changed.

    ``managed``: the desired state says which attributes it manages, and each user
    (but the first) has a manager by source key, held by the target as its id.
    ``own_email``: each account holds an email of its own besides the mapped ones.
    """
    step = int(1 / drift) if drift else 0
    changed = set(range(0, users, step * 2)) if step else set()  # half the drift: new titles
    hires = set(range(step // 2, users, step * 4)) if step else set()  # a quarter: to create
    leavers = users // (step * 4) if step else 0  # a quarter: left the source
    desired_users = [
        DesiredUser(
            key=f"emp-{i}",
            user=_user(i),
            references={MANAGER: f"emp-{i // 10}"} if managed and i else (),
        )
        for i in range(users)
    ]
    meta = Meta(resource_type="User", version='W/"1"')
    held = _managed if managed else (lambda user, i: user)
    if own_email:
        held = lambda user, i, held=held: _with_own_email(held(user, i), i)  # noqa: E731
    accounts = [
        _with_id(held(_user(i, "Intern" if i in changed else "Engineer"), i), f"id-{i}", meta)
        for i in range(users)
        if i not in hires
    ]
    accounts += [_with_id(_user(users + j), f"id-{users + j}", meta) for j in range(leavers)]
    links = {f"emp-{i}": f"id-{i}" for i in range(users) if i not in hires}
    links.update({f"emp-{users + j}": f"id-{users + j}" for j in range(leavers)})

    desired_groups: list[DesiredGroup] = []
    held_groups: list[Group] = []
    group_links: dict[str, str] = {}
    if with_groups:
        count = max(users // 100, 1)
        for g in range(count + BIG_GROUPS):
            size = min(BIG_GROUP_SIZE, users) if g >= count else 100
            start = (g * 7919) % users
            members = [(start + k) % users for k in range(size)]
            moved = members[: int(size * drift)] if drift else []
            wanted = [m for m in members if m not in set(moved)] + [(m + 1) % users for m in moved]
            key = f"grp-{g}"
            desired_groups.append(
                DesiredGroup(
                    key=key,
                    group=Group(external_id=key, display_name=f"Group {g}"),
                    member_keys=[f"emp-{m}" for m in wanted],
                )
            )
            held_groups.append(
                Group(
                    id=f"gid-{g}",
                    external_id=key,
                    display_name=f"Group {g}",
                    members=tuple(Member(value=f"id-{m}") for m in members if m not in hires),
                )
            )
            group_links[key] = f"gid-{g}"
    desired = DesiredState(
        users=desired_users,
        groups=desired_groups,
        managed_user_attributes=MANAGED if managed else None,
    )
    actual = TargetState(users=accounts, groups=held_groups)
    state = SyncState(
        users=Ledger(links=links, last_source_count=users),
        groups=Ledger(links=group_links, last_source_count=len(desired_groups)),
    )
    return desired, actual, state


def _with_id(user: User, account_id: str, meta: Meta) -> User:
    return attrs.evolve(user, id=account_id, meta=meta)


def naive_changed(desired: DesiredState, actual: TargetState) -> list[str]:
    """The baseline: full SCIM dicts compared on the keys the source sets."""
    by_external_id = {u.external_id: u for u in actual.users}
    out = []
    for record in desired.users:
        account = by_external_id.get(record.user.external_id)
        if account is None:
            out.append(record.key)
            continue
        want, have = to_scim(record.user), to_scim(account)
        if any(have.get(k) != v for k, v in want.items() if k != "schemas"):
            out.append(record.key)
    return out


def measure(n: int, managed: bool = False) -> tuple[float, list[tuple[str, str, str, str]]]:
    """Plan time and peak memory for ``n`` users at 1% drift, and the users-only
    comparison with the naive baseline. Returns the full plan time and the rows."""
    desired, actual, state = build(n, managed=managed)
    repeat = 3 if n <= 100_000 else 1
    t_plan, result = timed(lambda: plan(desired, actual, POLICY, state, NOW), repeat=repeat)
    mem = peak_memory(lambda: plan(desired, actual, POLICY, state, NOW))
    _check(result, n)
    summary = ", ".join(f"{v} {k}" for k, v in result.summary().items())
    what = ", managed attributes + managers" if managed else ""
    print(f"{n} users, {len(desired.groups)} groups{what}: {summary}")
    users_only = attrs.evolve(desired, groups=())
    no_groups = attrs.evolve(actual, groups=())
    t_users, _ = timed(lambda: plan(users_only, no_groups, POLICY, state, NOW), repeat=repeat)
    t_naive, _ = timed(lambda: naive_changed(users_only, no_groups), repeat=repeat)
    label = f"plan {n} users + {len(desired.groups)} groups{what} (s)"
    return t_plan, [
        (label, f"{t_plan:.2f}", "-", ""),
        ("  peak memory (MB)", f"{mem / 1e6:.0f}", "-", ""),
        (
            "  users only (s)",
            f"{t_users:.2f}",
            f"{t_naive:.2f}",
            f"{t_naive / t_users:.2f}x the peer's speed",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"# bench_engine; {machine()}")
    rows: list[tuple[str, str, str, str]] = []
    times = []
    for n in sizes:
        t_plan, more = measure(n)
        times.append(t_plan)
        rows.extend(more)
    n = min(100_000, max(sizes))
    rows.extend(measure(n, managed=True)[1])
    unchanged = {
        (False, False, True): "unchanged user (µs)",
        (False, False, False): "  first cycle: no state, matched by externalId (µs)",
        (True, False, True): "unchanged user, managed attributes + manager (µs)",
        (True, True, True): "  + an email of the target's own (µs)",
    }
    for (managed, own_email, linked), label in unchanged.items():
        desired, actual, state = build(
            n, drift=0, with_groups=False, managed=managed, own_email=own_email
        )
        if not linked:
            state = None
        t_same, result = timed(lambda: plan(desired, actual, POLICY, state, NOW))  # noqa: B023
        t_naive, _ = timed(lambda: naive_changed(desired, actual))  # noqa: B023
        assert result.is_empty, result.summary()
        rows.append(
            (
                label,
                f"{t_same * 1e6 / n:.2f}",
                f"{t_naive * 1e6 / n:.2f}",
                f"{t_naive / t_same:.2f}x the peer's speed",
            )
        )
    for index in range(1, len(sizes)):
        small, large = sizes[index - 1], sizes[index]
        growth = times[index] / times[index - 1]
        rows.append(
            (
                f"growth {small} -> {large} users (plan time)",
                f"x{growth:.1f}",
                "",
                f"for x{large / small:g} size",
            )
        )
    print_rows("Planning (peer: naive full-dict comparison of users, same run)", rows)
    print(
        "\nThe peer finds changed users and nothing else (no ownership, guards, conflicts,"
        "\ngroups or operations): no planning engine exists to compare with."
    )
    sys.stdout.flush()


def _check(result: Plan, users: int) -> None:
    summary = result.summary()
    if summary.get("create", 0) == 0 or summary.get("deactivate", 0) == 0 or result.blocked:
        raise SystemExit(f"unexpected plan for {users} users: {summary}")


if __name__ == "__main__":
    main()
