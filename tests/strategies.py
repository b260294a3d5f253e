"""Hypothesis strategies for scimsync models and sync scenarios, shared by the test suite.

Small pools of values on purpose: collisions (the same userName twice, case variants,
a drifted title) are what the interesting cases are made of. And every strategy is
built once, at import: scenarios hold hundreds of users, and building strategies per
draw (or drawing names letter by letter) makes properties crawl.

- :func:`users` / :func:`groups`: resources as a mapping or a target would hold them.
- :func:`desired_states` / :func:`target_states`: the two sides of a sync, unrelated.
- :func:`scenarios`: the two sides *and* a state that overlap the way real ones do
  (accounts created by earlier cycles, drifted, deactivated, adopted or foreign).
- :func:`shuffled`: the same scenario with every collection in another order.

With ``protect=True``, scenarios also hold source records with an issue: keys in
``protected_user_keys`` / ``protected_group_keys`` instead of desired records, some
with an account, some new (tied to no account).

Desired states say, some of the time, which attributes they manage (so values the
source cleared are removed) and name managers by source key (known, unknown, their
own, in circles). When they manage emails by filter (the work email only), their
users hold the work email alone, as a mapping builds them, while target accounts
hold other emails too (a home email, a second primary one): values the source does
not speak for, which no plan may remove.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs
from hypothesis import strategies as st

from scimsync import Email, EnterpriseUser, Group, Manager, Member, Meta, Name, User
from scimsync.engine import Ledger, SyncState
from scimsync.models import DesiredGroup, DesiredState, DesiredUser, TargetState

if TYPE_CHECKING:
    from collections.abc import Sequence

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

WORDS = ("ann", "bob", "cy", "dee", "Éva", "eli", "fox")
TEXTS = ("a", "b", "X", "ab", "a b", "Xé", "-", "é-Y")

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager.value"
#: What a mapping of the users these strategies draw would manage.
MANAGED = (
    "active",
    "displayName",
    'emails[type eq "work"].value',
    "externalId",
    "name.familyName",
    "name.givenName",
    "title",
    "userName",
    f"{ENTERPRISE}:department",
    MANAGER,
)
#: The same, with the work email's primary flag set by the source.
MANAGED_PRIMARY = (*MANAGED, 'emails[type eq "work"].primary')
#: Managed sets that speak for the work email only, not for every email (sorted, as
#: ``DesiredState`` keeps them).
SCOPED = frozenset(tuple(sorted(paths)) for paths in (MANAGED, MANAGED_PRIMARY))
managed_sets = st.sampled_from(
    [None, MANAGED, MANAGED_PRIMARY, ("title", MANAGER), ("emails", "name")]
)
#: Emails no mapping of these strategies writes: the target's own.
UNMANAGED_EMAILS = (
    Email(value="cy@elsewhere.example", type="home"),
    Email(value="cy@elsewhere.example", type="home", primary=True),
    Email(value="dee@elsewhere.example", type="other", primary=False),
)

words = st.sampled_from(WORDS)
short_text = st.sampled_from(TEXTS)
opt_text = st.none() | short_text
masks = st.just(0) | st.integers(0, 2**24 - 1)


def recase(text: str, mask: int) -> str:
    """``text`` with the letter at position i upper-cased when bit i of ``mask`` is set."""
    return "".join(c.upper() if mask >> i & 1 else c.lower() for i, c in enumerate(text))


def case_variant(text: str) -> st.SearchStrategy[str]:
    """``text`` with the case of each letter chosen at random (one draw)."""
    return masks.map(lambda mask: recase(text, mask))


user_names = st.builds(lambda a, b, mask: recase(f"{a}.{b}@example.com", mask), words, words, masks)

_EMAIL_POOL = tuple(
    Email(value=f"{w}@example.com", type=t, primary=p)
    for w in WORDS[:4]
    for t in ("work", "home")
    for p in (None, True, False)
)
# RFC 7643 §2.4: "primary" is true for at most one value.
emails = (
    st.lists(st.sampled_from(_EMAIL_POOL), max_size=2, unique_by=lambda e: (e.value, e.type))
    .filter(lambda values: sum(e.primary is True for e in values) <= 1)
    .map(tuple)
)
opt_emails = st.none() | emails
opt_names = st.none() | st.builds(Name, given_name=opt_text, family_name=opt_text)
opt_enterprise = st.none() | st.builds(EnterpriseUser, department=opt_text)
opt_bool = st.none() | st.booleans()


def _user(
    user_name: str,
    display_name: str | None,
    title: str | None,
    active: bool | None,
    name: Name | None,
    mails: tuple[Email, ...] | None,
    enterprise: EnterpriseUser | None,
) -> User:
    return User(
        user_name=user_name,
        display_name=display_name,
        title=title,
        active=active,
        name=name,
        emails=mails,
        enterprise=enterprise,
    )


def users(user_name: st.SearchStrategy[str] = user_names) -> st.SearchStrategy[User]:
    """Users with the attributes a mapping typically manages; no id, no meta."""
    return st.builds(
        _user, user_name, opt_text, opt_text, opt_bool, opt_names, opt_emails, opt_enterprise
    )


any_users = users()


def _pick(values: Sequence[str], indexes: list[int], extra: str | None = None) -> list[str]:
    """The values at ``indexes`` (modulo), ``extra`` standing for one past the end."""
    pool = [*values, extra] if extra is not None else list(values)
    return [pool[i % len(pool)] for i in indexes] if pool else []


_indexes = st.lists(st.integers(0, 10**6), max_size=12)


def groups(member_ids: Sequence[str]) -> st.SearchStrategy[Group]:
    """Groups whose members are drawn from ``member_ids``; no id, no meta."""
    return st.builds(
        lambda word, mask, picks: Group(
            display_name=recase(f"team-{word}", mask),
            members=tuple(Member(value=v) for v in dict.fromkeys(_pick(member_ids, picks))),
        ),
        words,
        masks,
        _indexes,
    )


@st.composite
def desired_states(draw: st.DrawFn, *, max_users: int = 200, max_groups: int = 20) -> DesiredState:
    """What a source could want, keys unique: ``k<n>`` users, ``g<n>`` groups."""
    count = draw(st.integers(0, max_users))
    managed = draw(managed_sets)
    managers = draw(st.lists(st.none() | st.integers(0, count), min_size=count, max_size=count))
    records = [
        DesiredUser(
            key=f"k{i}",
            user=as_mapped(attrs.evolve(draw(any_users), external_id=f"k{i}"), managed),
            references=_manager(managers[i], count),
        )
        for i in range(count)
    ]
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
    return DesiredState(users=records, groups=group_records, managed_user_attributes=managed)


def as_mapped(user: User, managed: tuple[str, ...] | None) -> User:
    """``user`` as a mapping managing ``managed`` builds it: a mapping that writes the
    work email by filter writes one work email (primary when it sets the flag)."""
    if managed is None or tuple(sorted(managed)) not in SCOPED or not user.emails:
        return user
    work = [e for e in user.emails if e.type == "work"][:1]
    primary = True if 'emails[type eq "work"].primary' in managed else None
    return attrs.evolve(user, emails=tuple(attrs.evolve(e, primary=primary) for e in work) or None)


def _manager(index: int | None, count: int) -> dict[str, str]:
    """A manager reference to user ``k<index>``; one past the last is nobody's key."""
    if index is None:
        return {}
    return {MANAGER: f"k{index}" if index < count else "ghost"}


@attrs.frozen
class Scenario:
    """Both sides of one sync cycle and what earlier cycles recorded."""

    desired: DesiredState
    actual: TargetState
    state: SyncState


class _Reader:
    """Reads choices from drawn bytes: byte 0 is always the simplest choice.

    Scenarios hold hundreds of users; one draw of bytes for all of them keeps the
    properties fast, and Hypothesis still shrinks them (towards zero bytes).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        value = self.data[self.at] if self.at < len(self.data) else 0
        self.at += 1
        return value

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.byte() % len(options)]

    def maybe(self, options: Sequence[Any]) -> Any:
        """None for 0, else one of ``options``."""
        value = self.byte()
        return None if value == 0 else options[(value - 1) % len(options)]

    def mask(self) -> int:
        return self.byte() | self.byte() << 8

    def user(self) -> User:
        mails = self.maybe([(), *((e,) for e in _EMAIL_POOL)])
        if mails and self.byte() % 2:
            second = self.choice(_EMAIL_POOL)
            if (second.value, second.type) != (mails[0].value, mails[0].type):
                # RFC 7643 §2.4: "primary" is true for at most one value.
                if second.primary and mails[0].primary:
                    second = attrs.evolve(second, primary=False)
                mails = (*mails, second)
        given, family = self.maybe(TEXTS), self.maybe(TEXTS)
        department = self.maybe(TEXTS)
        return User(
            user_name=recase(f"{self.choice(WORDS)}.{self.choice(WORDS)}@example.com", self.mask()),
            display_name=self.maybe(TEXTS),
            title=self.maybe(TEXTS),
            active=self.maybe([True, False]),
            name=Name(given_name=given, family_name=family) if self.byte() % 2 else None,
            emails=mails,
            enterprise=EnterpriseUser(department=department) if self.byte() % 2 else None,
        )


_USER_BYTES = 16  # about what _Reader.user reads (past the end, bytes read as 0)
_IDENTITY_BYTES = _USER_BYTES + 16
_FOREIGN_BYTES = _USER_BYTES + 5
_LAST_WEEK = Meta(last_modified=NOW - timedelta(days=40))
# Where an identity is: (in the source, on the target).
_PRESENCE = [(True, True), (True, False), (False, True), (True, True)]
_GROUP = st.tuples(
    st.sampled_from(_PRESENCE),
    st.booleans(),  # display name upper-cased in the source
    _indexes,  # source members
    _indexes,  # target members
    st.sampled_from([0, 0, 0, 0, 0, 1]),  # the listing leaves members out
    st.booleans(),  # externalId on the target group
    st.booleans(),  # linked in the state
)


def _cleared(user: User, which: int) -> User:
    """``user`` as a source that cleared one of its attributes wants it (0: none)."""
    if which == 1:
        return attrs.evolve(user, title=None)
    if which == 2:
        return attrs.evolve(user, emails=None)
    if which == 3:
        return attrs.evolve(user, name=None)
    if which == 4:
        return attrs.evolve(user, enterprise=None)
    return user


def _with_manager(user: User, manager_id: str | None) -> User:
    if manager_id is None:
        return user
    return attrs.evolve(
        user,
        enterprise=attrs.evolve(
            user.enterprise or EnterpriseUser(), manager=Manager(value=manager_id)
        ),
    )


def _drifted(user: User, read: _Reader) -> User:
    """``user`` as a target might hold it: sometimes changed, recased or deactivated,
    or with an email of its own (a home one, maybe primary next to another primary)."""
    change = read.byte() % 8
    title, mask, mails = read.choice(TEXTS), read.mask(), read.choice([(), _EMAIL_POOL[:1]])
    own = read.choice(UNMANAGED_EMAILS)
    if change == 1:
        return attrs.evolve(user, title=title)
    if change == 2 and user.user_name is not None:
        return attrs.evolve(user, user_name=recase(user.user_name, mask))
    if change == 3:
        return attrs.evolve(user, emails=mails)
    if change == 4:
        return attrs.evolve(user, active=False)
    if change in (5, 6):
        held = [e for e in user.emails or () if (e.value, e.type) != (own.value, own.type)]
        return attrs.evolve(user, emails=(*held, own))
    return user


@st.composite
def target_states(draw: st.DrawFn, *, max_users: int = 200, max_groups: int = 20) -> TargetState:
    """What a target could hold: ids ``u<n>`` / ``t<n>``, externalIds sometimes set."""
    count = draw(st.integers(0, max_users))
    read = _Reader(draw(st.binary(min_size=count * _USER_BYTES, max_size=count * _USER_BYTES)))
    accounts = [
        attrs.evolve(read.user(), id=f"u{i}", external_id=f"k{i}" if read.byte() % 2 else None)
        for i in range(count)
    ]
    ids = [a.id or "" for a in accounts]
    held = [
        attrs.evolve(draw(groups(ids)), id=f"t{i}", external_id=f"g{i}")
        for i in range(draw(st.integers(0, max_groups)))
    ]
    return TargetState(users=accounts, groups=held)


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_users: int = 200,
    max_groups: int = 20,
    complete: bool | None = True,
    protect: bool = False,
) -> Scenario:
    """A source, a target and a state that overlap like a real deployment's.

    Each identity ``k<n>`` may be in the source, on the target (as ``u<n>``, linked in
    the state or not, with the externalId set or not, drifted), both, or neither.
    The target also holds foreign accounts (``x<n>``) whose userName may clash with a
    source record's, and whose externalId may be another record's key (two records
    then find one account by different keys). ``complete=None`` draws the
    completeness flags too; ``protect``
    turns some identities into records with an issue (see the module docstring).
    """
    count = draw(st.integers(0, max_users))
    managed = draw(managed_sets)
    read = _Reader(
        draw(st.binary(min_size=count * _IDENTITY_BYTES, max_size=count * _IDENTITY_BYTES))
    )
    records: list[DesiredUser] = []
    accounts: list[User] = []
    links: dict[str, str] = {}
    deactivated: dict[str, datetime] = {}
    for index in range(count):
        key, account_id = f"k{index}", f"u{index}"
        user = attrs.evolve(read.user(), external_id=key)
        in_source, on_target = read.choice(_PRESENCE)
        drifted = _drifted(user, read)
        no_ext, meta, link = read.byte() % 3 == 2, read.byte() % 2, read.byte() % 2
        recorded, days = read.byte() % 2, read.byte() % 61
        boss, held_boss, cleared = read.byte(), read.byte(), read.byte() % 6
        if in_source:
            records.append(
                DesiredUser(
                    key=key,
                    user=as_mapped(_cleared(user, cleared), managed),
                    references=_manager(boss % (count + 1) if boss else None, count),
                )
            )
        if on_target:
            account = attrs.evolve(
                _with_manager(drifted, f"u{held_boss % (count + 1)}" if held_boss else None),
                id=account_id,
                external_id=None if no_ext else key,
                meta=_LAST_WEEK if meta else None,
            )
            accounts.append(account)
            if link:
                links[key] = account_id
                if account.active is False and recorded:
                    deactivated[account_id] = NOW - timedelta(days=days)
    foreigners = draw(st.integers(0, max(1, max_users // 10)))
    read = _Reader(
        draw(st.binary(min_size=foreigners * _FOREIGN_BYTES, max_size=foreigners * _FOREIGN_BYTES))
    )
    for index in range(foreigners):
        foreign = read.user()
        clash, pick, mask, ext = read.byte() % 2, read.byte(), read.mask(), read.byte() % 4
        if clash and records:
            taken = records[pick % len(records)].user.user_name or ""
            foreign = attrs.evolve(foreign, user_name=recase(taken, mask))
        external_id = f"ext{index}" if ext in (1, 2) else None
        if ext == 3 and records:  # a key of the source: maybe the one the userName is
            external_id = records[(pick + mask) % len(records)].key
        accounts.append(attrs.evolve(foreign, id=f"x{index}", external_id=external_id))

    keys = [r.key for r in records]
    account_ids = [a.id or "" for a in accounts]
    group_records: list[DesiredGroup] = []
    held_groups: list[Group] = []
    group_links: dict[str, str] = {}
    for index in range(draw(st.integers(0, max_groups))):
        key, group_id, name = f"g{index}", f"t{index}", f"team-{index}"
        (in_source, on_target), upper, wanted, present, unlisted, has_ext, link = draw(_GROUP)
        if in_source:
            group_records.append(
                DesiredGroup(
                    key=key,
                    group=Group(external_id=key, display_name=name.upper() if upper else name),
                    member_keys=_pick(keys, wanted, extra="nobody"),
                )
            )
        if on_target:
            members = tuple(Member(value=v) for v in dict.fromkeys(_pick(account_ids, present)))
            held_groups.append(
                Group(
                    id=group_id,
                    external_id=key if has_ext else None,
                    display_name=name,
                    members=None if unlisted else members,
                )
            )
            if link:
                group_links[key] = group_id

    last_users = draw(st.none() | st.integers(0, max(count, 1) * 2))
    last_groups = draw(st.none() | st.integers(0, max_groups * 2))
    state = SyncState(
        users=Ledger(links=links, last_source_count=last_users, deactivated_at=deactivated),
        groups=Ledger(links=group_links, last_source_count=last_groups),
    )
    flags = (complete, complete) if complete is not None else draw(st.tuples(opt_bool, opt_bool))
    protected_users: set[str] = set()
    protected_groups: set[str] = set()
    if protect:
        # One past the last identity is a key no account has ever had.
        picks = draw(st.lists(st.integers(0, count + 1), max_size=8))
        protected_users = {f"k{i}" for i in picks}
        records = [r for r in records if r.key not in protected_users]
        group_picks = draw(st.lists(st.integers(0, max_groups), max_size=3))
        protected_groups = {f"g{i}" for i in group_picks}
        group_records = [g for g in group_records if g.key not in protected_groups]
    return Scenario(
        desired=DesiredState(
            users=records,
            groups=group_records,
            complete=flags[0] is not False,
            managed_user_attributes=managed,
            protected_user_keys=dict.fromkeys(protected_users, "source record has an issue"),
            protected_group_keys=protected_groups,
        ),
        actual=TargetState(users=accounts, groups=held_groups, complete=flags[1] is not False),
        state=state,
    )


@st.composite
def shuffled(draw: st.DrawFn, scenario: Scenario) -> Scenario:
    """The same scenario with every collection in another order."""

    rng = draw(st.randoms(use_true_random=False))

    def permute(values: Any) -> list[Any]:
        out = list(values)
        rng.shuffle(out)
        return out

    desired = attrs.evolve(
        scenario.desired,
        users=permute(scenario.desired.users),
        groups=[
            attrs.evolve(g, member_keys=permute(g.member_keys))
            for g in permute(scenario.desired.groups)
        ],
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
