"""Hypothesis strategies for scimsync models and sync scenarios, shared by the test suite.

Small alphabets on purpose: collisions (the same userName twice, case variants, a
drifted title) are what the interesting cases are made of.

- :func:`users` / :func:`groups`: resources as a mapping or a target would hold them.
- :func:`desired_states` / :func:`target_states`: the two sides of a sync, unrelated.
- :func:`scenarios`: the two sides *and* a state that overlap the way real ones do
  (accounts created by earlier cycles, drifted, deactivated, adopted or foreign).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import strategies as st

from scimsync import Email, EnterpriseUser, Group, Member, Meta, Name, User
from scimsync.engine import Ledger, SyncState
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

words = st.sampled_from(["ann", "bob", "cy", "dee", "Éva", "eli", "fox"])
short_text = st.text(alphabet="abXY é-", min_size=1, max_size=5)
opt_text = st.none() | short_text


def case_variant(text: str) -> st.SearchStrategy[str]:
    """``text`` with the case of each letter chosen at random."""
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(
            c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True)
        )
    )


user_names = st.builds(lambda a, b: f"{a}.{b}@example.com", words, words).flatmap(case_variant)

emails = st.lists(
    st.builds(
        Email,
        value=st.builds(lambda w: f"{w}@example.com", words),
        type=st.sampled_from(["work", "home"]),
        primary=st.none() | st.booleans(),
    ),
    max_size=2,
    unique_by=lambda e: (e.value, e.type),
).map(tuple)


@st.composite
def users(draw: st.DrawFn, *, user_name: str | None = None) -> User:
    """A user with the attributes a mapping typically manages; no id, no meta."""
    return User(
        user_name=user_name if user_name is not None else draw(user_names),
        display_name=draw(opt_text),
        title=draw(opt_text),
        active=draw(st.none() | st.booleans()),
        name=draw(st.none() | st.builds(Name, given_name=opt_text, family_name=opt_text)),
        emails=draw(st.none() | emails),
        enterprise=draw(st.none() | st.builds(EnterpriseUser, department=opt_text)),
    )


def groups(member_ids: list[str]) -> st.SearchStrategy[Group]:
    """A group whose members are drawn from ``member_ids``; no id, no meta."""
    members = (
        st.lists(st.sampled_from(member_ids), unique=True, max_size=10)
        if member_ids
        else st.just([])
    )
    return st.builds(
        lambda name, values: Group(
            display_name=name, members=tuple(Member(value=v) for v in values)
        ),
        st.builds(lambda w: f"team-{w}", words).flatmap(case_variant),
        members,
    )


@st.composite
def desired_states(draw: st.DrawFn, *, max_users: int = 200, max_groups: int = 20) -> DesiredState:
    """What a source could want, keys unique: ``k<n>`` users, ``g<n>`` groups."""
    count = draw(st.integers(0, max_users))
    records = []
    for index in range(count):
        user = draw(users())
        records.append(
            DesiredUser(key=f"k{index}", user=attrs.evolve(user, external_id=f"k{index}"))
        )
    keys = [r.key for r in records]
    group_records = []
    for index in range(draw(st.integers(0, max_groups))):
        group = draw(groups(keys))
        group_records.append(
            DesiredGroup(
                key=f"g{index}",
                group=attrs.evolve(group, external_id=f"g{index}", members=None),
                member_keys=[m.value or "" for m in group.members or ()],
            )
        )
    return DesiredState(users=records, groups=group_records)


@st.composite
def target_states(draw: st.DrawFn, *, max_users: int = 200, max_groups: int = 20) -> TargetState:
    """What a target could hold: ids ``u<n>`` / ``t<n>``, externalIds sometimes set."""
    accounts = []
    for index in range(draw(st.integers(0, max_users))):
        user = draw(users())
        accounts.append(
            attrs.evolve(user, id=f"u{index}", external_id=draw(st.none() | st.just(f"k{index}")))
        )
    ids = [a.id or "" for a in accounts]
    held = []
    for index in range(draw(st.integers(0, max_groups))):
        group = draw(groups(ids))
        held.append(attrs.evolve(group, id=f"t{index}", external_id=f"g{index}"))
    return TargetState(users=accounts, groups=held)


@attrs.frozen
class Scenario:
    """Both sides of one sync cycle and what earlier cycles recorded."""

    desired: DesiredState
    actual: TargetState
    state: SyncState


def _drift(draw: st.DrawFn, user: User) -> User:
    """``user`` as a target might hold it: sometimes changed, recased or deactivated."""
    change = draw(st.sampled_from(["same", "same", "title", "recase", "emails", "inactive"]))
    if change == "title":
        return attrs.evolve(user, title=draw(short_text))
    if change == "recase" and user.user_name is not None:
        return attrs.evolve(user, user_name=draw(case_variant(user.user_name)))
    if change == "emails":
        return attrs.evolve(user, emails=draw(emails))
    if change == "inactive":
        return attrs.evolve(user, active=False)
    return user


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_users: int = 200,
    max_groups: int = 20,
    complete: bool | None = True,
) -> Scenario:
    """A source, a target and a state that overlap like a real deployment's.

    Each identity ``k<n>`` may be in the source, on the target (as ``u<n>``, linked in
    the state or not, with the externalId set or not, drifted), both, or neither.
    The target also holds foreign accounts (``x<n>``) whose userName may clash with a
    source record's. ``complete=None`` draws the completeness flags too.
    """
    count = draw(st.integers(0, max_users))
    records: list[DesiredUser] = []
    accounts: list[User] = []
    links: dict[str, str] = {}
    deactivated: dict[str, datetime] = {}
    for index in range(count):
        key, account_id = f"k{index}", f"u{index}"
        user = attrs.evolve(draw(users()), external_id=key)
        in_source, on_target = draw(
            st.sampled_from([(True, True), (True, True), (True, False), (False, True)])
        )
        if in_source:
            records.append(DesiredUser(key=key, user=user))
        if on_target:
            held = attrs.evolve(
                _drift(draw, user),
                id=account_id,
                external_id=draw(st.sampled_from([key, key, None])),
                meta=draw(st.none() | st.just(Meta(last_modified=NOW - timedelta(days=40)))),
            )
            accounts.append(held)
            if draw(st.booleans()):
                links[key] = account_id
                if held.active is False and draw(st.booleans()):
                    deactivated[account_id] = NOW - timedelta(days=draw(st.integers(0, 60)))
    for index in range(draw(st.integers(0, max(1, max_users // 10)))):
        clash = draw(st.booleans()) and records
        name = draw(st.sampled_from(records)).user.user_name if clash else None
        foreign = draw(users(user_name=draw(case_variant(name)) if name else None))
        accounts.append(
            attrs.evolve(
                foreign, id=f"x{index}", external_id=draw(st.none() | st.just(f"ext{index}"))
            )
        )

    keys = [r.key for r in records]
    account_ids = [a.id or "" for a in accounts]
    group_records: list[DesiredGroup] = []
    held_groups: list[Group] = []
    group_links: dict[str, str] = {}
    for index in range(draw(st.integers(0, max_groups))):
        key, group_id = f"g{index}", f"t{index}"
        name = f"team-{index}"
        in_source, on_target = draw(
            st.sampled_from([(True, True), (True, True), (True, False), (False, True)])
        )
        if in_source:
            member_keys = draw(st.lists(st.sampled_from([*keys, "nobody"]), max_size=12))
            group_records.append(
                DesiredGroup(
                    key=key,
                    group=Group(
                        external_id=key, display_name=draw(st.sampled_from([name, name.upper()]))
                    ),
                    member_keys=member_keys,
                )
            )
        if on_target:
            members = (
                draw(st.lists(st.sampled_from(account_ids), unique=True, max_size=12))
                if account_ids
                else []
            )
            held_groups.append(
                Group(
                    id=group_id,
                    external_id=draw(st.sampled_from([key, None])),
                    display_name=name,
                    members=draw(
                        st.sampled_from([tuple(Member(value=m) for m in members)] * 5 + [None])
                    ),
                )
            )
            if draw(st.booleans()):
                group_links[key] = group_id

    last_users = draw(st.none() | st.integers(0, max(count, 1) * 2))
    last_groups = draw(st.none() | st.integers(0, max_groups * 2))
    state = SyncState(
        users=Ledger(links=links, last_source_count=last_users, deactivated_at=deactivated),
        groups=Ledger(links=group_links, last_source_count=last_groups),
    )
    flags = (
        (complete, complete)
        if complete is not None
        else draw(st.tuples(st.booleans(), st.booleans()))
    )
    return Scenario(
        desired=DesiredState(users=records, groups=group_records, complete=flags[0]),
        actual=TargetState(users=accounts, groups=held_groups, complete=flags[1]),
        state=state,
    )


def shuffled(draw: st.DrawFn, scenario: Scenario) -> Scenario:
    """The same scenario with every collection in another order."""

    def permute(values: Any) -> list[Any]:
        return draw(st.permutations(list(values)))

    desired = DesiredState(
        users=permute(scenario.desired.users),
        groups=[
            attrs.evolve(g, member_keys=permute(g.member_keys))
            for g in permute(scenario.desired.groups)
        ],
        complete=scenario.desired.complete,
    )
    actual = TargetState(
        users=permute(scenario.actual.users),
        groups=[
            attrs.evolve(g, members=permute(g.members)) if g.members is not None else g
            for g in permute(scenario.actual.groups)
        ],
        complete=scenario.actual.complete,
    )
    return Scenario(desired=desired, actual=actual, state=scenario.state)
