"""The reconciliation engine: what the source wants + what the target holds -> a Plan.

Rules this module keeps, and every change to it must keep:

- **No I/O.** It never sends a request, reads a file or logs. It takes values and
  returns a value. It imports neither httpx, tenacity nor asyncio.
- **No clock, no randomness.** The time is the ``now`` argument; ids of resources yet
  to be created are placeholders named after their source keys.
- **Deterministic.** No decision depends on the order of the inputs, and every list
  in the plan is sorted: the same inputs, in any order, give a plan whose
  ``to_json()`` is byte for byte the same.
- **Never guess.** An identity that could match more than one way is a conflict in the
  plan, and its accounts are left alone.
- **Only what it owns.** Updates, deactivations, deletions and member removals touch
  only accounts scimsync owns (linked or recorded in the state, carrying a managed
  ``externalId``, or adopted on purpose by the policy).
- **Guards before writes.** Anything that takes something away (deactivate, delete,
  remove members) is held when a guard trips, and the plan says which and why.
- **A bad record protects its own identity.** A source key whose record has an issue
  (``DesiredState.protected_*_keys``) is no departure: the account the state links it
  to, and any account whose ``externalId`` is the key (unless linked to another key),
  is neither deactivated, deleted nor removed from a group; a protected group keeps
  its members. The rest of the plan goes ahead. A protected key the state links to
  nothing and that no externalId names may be any account the state links to no key:
  taking something from such an account trips ``incomplete_listing``.
- **Order.** User creates and updates, then group creates, updates and membership,
  then group deletions, then user deactivations and deletions; within a kind, by
  source key, then target id. User creates come after the creates of the users they
  refer to (a manager before the people it manages, see ``_refs``).
- **Managed means cleared.** A managed attribute (``DesiredState.managed_*``) that a
  desired resource leaves unset is removed from the target, except ``active`` (the
  engine's own: deactivate, reactivate), references that do not resolve, and what a
  record sets on create only.
"""

from __future__ import annotations

import gc
import json
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import to_scim
from ..errors import ConfigurationError, InvalidPathError
from ..models import DesiredState, Group, Member, PatchOperation, Resource, TargetState, User
from ..patch import apply_patch
from ..patch._diff import _unchanged_check
from ..patch._managed import Clearing, clearing, element_scopes
from ._changes import (
    add_members_patch,
    attribute_patch,
    chunks,
    describe_resource,
    missing_required,
    overlay,
    remove_members_patch,
    summarise,
    without_members,
)
from ._ignore import canonical_path, ignoring
from ._match import match
from ._plan import Plan
from ._policy import Policy
from ._refs import creation_order, reader, with_values
from ._state import SyncState
from ._values import (
    DEPROVISION_KINDS,
    DESTRUCTIVE_KINDS,
    GuardTrip,
    Operation,
    Placeholder,
    PlannedChange,
    Protection,
    Skip,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from ..models import DesiredGroup, DesiredUser
    from ..patch._scope import ElementScope
    from ._match import Matching

__all__ = ["plan"]

# The order operations are applied in: (resource type, kind) -> phase.
_PHASES = {
    ("User", "create"): 0,
    ("User", "reactivate"): 1,
    ("User", "update"): 2,
    ("Group", "create"): 3,
    ("Group", "update"): 4,
    ("Group", "add_members"): 5,
    ("Group", "remove_members"): 6,
    ("Group", "delete"): 7,
    ("User", "deactivate"): 8,
    ("User", "delete"): 9,
}


def plan(
    desired: DesiredState,
    actual: TargetState,
    policy: Policy,
    state: SyncState | None = None,
    now: datetime | None = None,
) -> Plan:
    """Decide what to write so the target holds what the source wants.

    ``desired`` comes from the mapping, ``actual`` from the target listing (with
    ``complete=False`` when it came out short), ``policy`` says how to match, own,
    deprovision and guard, ``state`` is what earlier cycles recorded (``None`` on a
    first cycle) and ``now`` the time, a timezone-aware value, needed only for
    ``delete_after_days`` and to date deactivations in the next state. Pure and
    deterministic (see the rules at the top of this module).

    Group membership comes from each desired group's ``member_keys`` (source keys of
    desired users); a desired group's own ``members`` are not read. A managed
    attribute (``desired.managed_user_attributes`` / ``managed_group_attributes``)
    that a desired resource leaves unset is removed from the target ("title cleared
    in source"). A desired user's ``references`` (a manager by source key) become the
    target id of that user's account, or its placeholder when this plan creates it:
    a manager is created before the people it manages.

    A source key in ``desired.protected_user_keys`` / ``protected_group_keys`` (its
    record has an issue) keeps its account: it is not deactivated, deleted or
    removed from a group, and :attr:`Plan.protected` says so, while every other
    deprovision goes ahead. When such a key is tied to no account (the state links
    it to none, no account carries it as ``externalId``: a first cycle, a lost state
    store), any account the state links to no key may be its own: a plan taking
    something from one trips the ``incomplete_listing`` guard, naming the keys.

    Python's cyclic garbage collector is paused while it plans and left as it was
    after: a plan frees what it allocates by reference counting, and the collector
    would only walk every live object again and again.

    Raises :class:`~scimsync.errors.ConfigurationError` for arguments of the wrong kind.
    """
    with _collector_paused():
        return _plan(desired, actual, policy, state, now)


class _CollectorPause:
    """Plans running with the cyclic collector paused, across threads: the first turns
    it off (when it was on), the last one to end turns it back on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plans = 0


_PAUSE = _CollectorPause()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold back Python's cyclic garbage collector while planning, and collect nothing
    extra after: a plan allocates a few objects per resource and frees them all by
    reference counting, but the collector would walk every live object again each
    time allocations outrun it (about a sixth of a first cycle's time at 100k users).

    Left alone when it was already off. Plans in several threads share one pause: the
    collector is back on when the last of them ends (so a thread turning it off while
    plans run sees it on again then: the one case this cannot tell apart).
    """
    with _PAUSE.lock:
        joined = _PAUSE.plans > 0 or gc.isenabled()
        if joined:
            if _PAUSE.plans == 0:
                gc.disable()
            _PAUSE.plans += 1
    try:
        yield
    finally:
        if joined:
            with _PAUSE.lock:
                _PAUSE.plans -= 1
                if _PAUSE.plans == 0:
                    gc.enable()


def _plan(
    desired: DesiredState,
    actual: TargetState,
    policy: Policy,
    state: SyncState | None = None,
    now: datetime | None = None,
    *,
    fast: bool = True,
) -> Plan:
    """:func:`plan`; ``fast=False`` matches record by record and compares every matched
    resource in full, without the shortcuts: column-wise matching of agreeing records on
    a first cycle, and the quick check for unchanged ones. The plans must be the same
    (the properties check it)."""
    _check_arguments(desired, actual, policy, state, now)
    state = state or SyncState()
    # Whether a user is active is never learned away (a leaver would stay active): a
    # state holding it as not kept (earlier versions learned it) is not followed there.
    learned = [p for p in state.users.ignored_paths() if p.lower() != "active"]
    user_ignored = (*policy.ignore_paths, *learned)
    try:
        desired, actual = ignoring(
            desired,
            actual,
            schema=policy.schema,
            user_ignored=user_ignored,
            group_ignored=(*policy.group_ignore_paths, *state.groups.ignored_paths()),
            user_uncleared=state.users.uncleared_paths(),
            group_uncleared=state.groups.uncleared_paths(),
            user_sent_on_create=[p for p in state.users.changed_paths() if p in learned],
        )
    except InvalidPathError as exc:
        raise ConfigurationError(f"cannot plan: {exc}") from exc
    cycle = _Cycle(desired, actual, policy, state, now, fast=fast)
    cycle.active_ignored = any(
        canonical_path(path, "User", policy.schema) == "active" for path in user_ignored
    )
    made = cycle.plan()
    not_compared = _not_compared(policy, state)
    return attrs.evolve(made, not_compared=not_compared) if not_compared else made


_HOW = {
    "dropped": "the target drops it",
    "changed": "the target changes it: sent on create only",
    "not_cleared": "the target does not clear it: never cleared",
}


def _not_compared(policy: Policy, state: SyncState) -> list[str]:
    """What the plan leaves out, and why: for :attr:`Plan.not_compared`."""
    out: list[str] = []
    for resource_type, declared, ledger in (
        ("User", policy.ignore_paths, state.users),
        ("Group", policy.group_ignore_paths, state.groups),
    ):
        name = "ignore_paths" if resource_type == "User" else "group_ignore_paths"
        out.extend(f"{resource_type} {path}: Policy.{name}" for path in sorted(declared))
        out.extend(
            f"{resource_type} {path}: {_HOW[fact.how]}"
            for path, fact in sorted(ledger.unkept.items())
            if fact.confirmed
        )
    return out


def _check_arguments(
    desired: object, actual: object, policy: object, state: object, now: object
) -> None:
    problems = []
    if not isinstance(desired, DesiredState):
        problems.append(f"desired must be a DesiredState, got {type(desired).__name__}")
    if not isinstance(actual, TargetState):
        problems.append(f"actual must be a TargetState, got {type(actual).__name__}")
    if not isinstance(policy, Policy):
        problems.append(f"policy must be a Policy, got {type(policy).__name__}")
    if state is not None and not isinstance(state, SyncState):
        problems.append(f"state must be a SyncState or None, got {type(state).__name__}")
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        problems.append(f"now must be a timezone-aware datetime or None, got {now!r}")
    if problems:
        raise ConfigurationError("cannot plan: " + "; ".join(problems))


def _listed(resources: Sequence[Any]) -> dict[str, Any]:
    """The listed resources by id. A listing may repeat one (page drift): one id, one
    resource, and when the copies differ the choice must not depend on their order."""
    ids = list(map(_ID, resources))
    by_id = dict(zip(ids, resources, strict=True))
    by_id.pop(None, None)
    if len(by_id) != len(ids) - ids.count(None):
        copies: dict[str, list[Any]] = {}
        for resource in resources:
            if resource.id is not None:
                copies.setdefault(resource.id, []).append(resource)
        for resource_id, versions in copies.items():
            if len(versions) > 1:
                by_id[resource_id] = min(versions, key=_canonical_text)
    return by_id


_ID = attrgetter("id")
_VALUE = attrgetter("value")
_SOURCE_KEY = attrgetter("source_key")


def _canonical_text(resource: Resource) -> str:
    return json.dumps(to_scim(resource), sort_keys=True, default=str)


def _canonical(path: str, schema: Any) -> str:
    """An attribute path as the compiled managed attributes write it."""
    try:
        return clearing(User, (path,), schema).managed[0].text
    except InvalidPathError as exc:
        raise ConfigurationError(f"cannot plan: {exc}") from exc


def _without_create_only(clear: Clearing, create_only: User, schema: Any) -> Clearing | None:
    """``clear`` without the attributes ``create_only`` sets: those are never cleared.

    A managed element path (``emails[type eq "work"].value``) is one of them only when
    a value ``create_only`` holds is one its filter selects: the work email is still
    cleared when the create-only values are the home one.
    """
    heads: dict[tuple[str, str], Any] = {}
    for name, value in to_scim(create_only, request=True).items():
        if name == "schemas":
            continue
        if name.lower().startswith("urn:") and isinstance(value, dict):
            heads.update(((name.lower(), inner.lower()), v) for inner, v in value.items())
        else:
            heads[("", name.lower())] = value
    kept = tuple(
        m.text
        for m in clear.managed
        if m.scope_head not in heads
        or (
            m.matches is not None
            and isinstance(values := heads[m.scope_head], list)
            and not any(m.matches(v) for v in values)
        )
    )
    if len(kept) == len(clear.managed):
        return clear
    return clearing(User, kept, schema) if kept else None


#: Managed attributes the engine never clears: ``active`` is deactivation's business.
_NEVER_CLEARED = frozenset({"active"})


def _clearing(
    cls: type[User] | type[Group], paths: tuple[str, ...] | None, schema: Any
) -> Clearing | None:
    """The managed attributes compiled, without those the engine never clears."""
    if not paths:
        return None
    try:
        compiled = clearing(cls, paths, schema)
    except InvalidPathError as exc:
        raise ConfigurationError(f"cannot plan: {exc}") from exc
    kept = tuple(
        m.text for m in compiled.managed if m.urn is not None or m.attribute not in _NEVER_CLEARED
    )
    return clearing(cls, kept, schema) if kept else None


def _scopes(
    cls: type[User] | type[Group],
    managed: tuple[str, ...] | None,
    kept: tuple[str, ...],
    schema: Any,
) -> tuple[ElementScope, ...]:
    """The element scopes of what the source writes (managed or kept when empty)."""
    paths = tuple(sorted({*(managed or ()), *kept}))
    if not paths:
        return ()
    try:
        return element_scopes(cls, paths, schema)
    except InvalidPathError as exc:
        raise ConfigurationError(f"cannot plan: {exc}") from exc


def _key(label: Callable[[str], str], account_id: Any) -> str | None:
    """The source key of the account ``account_id`` names, if it is not that id."""
    if not isinstance(account_id, str) or Placeholder.parse(account_id) is not None:
        return None  # a placeholder shows its key itself
    key = label(account_id)
    return None if key == account_id else key


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _strip_server_attributes(resource: Any) -> Any:
    """``resource`` without what only the service provider sets (id, meta, groups)."""
    changes: dict[str, Any] = {}
    if resource.id is not None:
        changes["id"] = None
    if resource.meta is not None:
        changes["meta"] = None
    if isinstance(resource, User) and resource.groups is not None:
        changes["groups"] = None
    return attrs.evolve(resource, **changes) if changes else resource


class _Cycle:
    """One planning run: the inputs, the matchings, and what has been decided so far."""

    def __init__(
        self,
        desired: DesiredState,
        actual: TargetState,
        policy: Policy,
        state: SyncState,
        now: datetime | None,
        *,
        fast: bool = True,
    ) -> None:
        self.desired = desired
        self.actual = actual
        self.policy = policy
        self.state = state
        self.now = now
        self.put = policy.update_method == "put"
        self.actual_users: dict[str, User] = _listed(actual.users)
        self.actual_groups: dict[str, Group] = _listed(actual.groups)
        complete = actual.complete
        self.users = match(
            "User",
            desired.users,
            self.actual_users,
            state.users,
            policy,
            listing_complete=complete,
            bulk=fast,
        )
        self.groups = match(
            "Group",
            desired.groups,
            self.actual_groups,
            state.groups,
            policy,
            listing_complete=complete,
            bulk=fast,
        )
        self.skipped: list[Skip] = [*self.users.skipped, *self.groups.skipped]
        self.refuse_incomplete_creates(self.users, "User")
        self.refuse_incomplete_creates(self.groups, "Group")
        self.protections: list[Protection] = []
        # Protected keys tied to no account, by resource type (see protect()).
        self.untied: dict[str, list[str]] = {"User": [], "Group": []}
        self.protect(self.users, "User", desired.users, desired.protected_user_keys)
        self.protect(self.groups, "Group", desired.groups, desired.protected_group_keys)
        schema = policy.schema
        self.clear_users = _clearing(User, desired.managed_user_attributes, schema)
        self.clear_groups = _clearing(Group, desired.managed_group_attributes, schema)
        # Multi-valued attributes the source writes only some values of (the work email).
        self.user_scopes = _scopes(
            User, desired.managed_user_attributes, desired.kept_user_attributes, schema
        )
        self.group_scopes = _scopes(
            Group, desired.managed_group_attributes, desired.kept_group_attributes, schema
        )
        # The user clearing without given paths (a record's references), by those paths.
        self._clear_without: dict[tuple[str, ...], Clearing | None] = {}
        self.create_rank: dict[str, int] = {}
        self._readers: dict[str, Callable[[Any], Any]] = {}
        # The target does not keep ``active``: deactivating would be planned forever.
        self.active_ignored = False
        # False: every matched resource compared in full (see _plan).
        self.fast = fast

    def refuse_incomplete_creates(self, matching: Matching, resource_type: str) -> None:
        """Leave out creates the target would refuse: a required attribute is missing."""
        attr = "user" if resource_type == "User" else "group"
        keep = []
        for record in matching.creates:
            missing = missing_required(getattr(record, attr), resource_type, self.policy.schema)
            if not missing:
                keep.append(record)
                continue
            self.skipped.append(
                Skip(
                    resource_type=resource_type,
                    source_key=record.key,
                    reason=f"cannot be created: required {', '.join(missing)} missing",
                )
            )
            del matching.ids[record.key]
            matching.unresolved.add(record.key)
        if len(keep) != len(matching.creates):
            kept = {record.key for record in keep}
            matching.links = [
                link
                for link in matching.links
                if link.matched_by != "create" or link.source_key in kept
            ]
            matching.creates = keep

    def protect(
        self,
        matching: Matching,
        resource_type: str,
        records: Sequence[DesiredUser] | Sequence[DesiredGroup],
        keys: Mapping[str, str],
    ) -> None:
        """Take nothing from the accounts of source keys whose records have an issue.

        Such a key's account is the one the state links it to, one whose
        ``externalId`` is the key (unless the state links it to another key: then it
        is that key's), or the one its record matched when it was mapped all the
        same. Those are protected (claimed, so not deprovisioned; never removed from
        a group). A key absent from the desired state is unresolved: a group member
        or a reference naming it is left as it is, not reported as unknown.
        """
        if not keys:
            return
        listed = matching.listed
        links = matching.ledger.links
        named: dict[str, list[str]] = {}
        for account_id, account in listed.items():
            external_id = account.external_id
            if external_id is not None and external_id in keys:
                named.setdefault(external_id, []).append(account_id)
        desired_keys = {record.key for record in records}
        for key, reason in keys.items():
            linked = links.get(key)
            ids = {linked} if linked is not None and linked in listed else set()
            ids.update(i for i in named.get(key, ()) if matching.linked_key(i) in (None, key))
            matched = matching.ids.get(key)
            if matched is not None and matched in listed:
                ids.add(matched)
            if linked is None and not ids:
                self.untied[resource_type].append(key)
            matching.protected.update(ids)
            matching.claimed.update(ids)
            if key not in desired_keys:
                matching.unresolved.add(key)
            self.protections.append(
                Protection(
                    resource_type=resource_type,
                    source_key=key,
                    reason=reason or "source record has an issue",
                    target_ids=sorted(ids),
                )
            )

    def source_size(self, resource_type: str) -> int:
        """How many identities the source holds: desired ones, and protected ones."""
        if resource_type == "User":
            records: Sequence[Any] = self.desired.users
            protected = self.desired.protected_user_keys
        else:
            records = self.desired.groups
            protected = self.desired.protected_group_keys
        if not protected:
            return len(records)
        return len(records) + len(protected.keys() - {record.key for record in records})

    def plan(self) -> Plan:
        operations = [
            *self.user_creates(),
            *self.user_updates(),
            *self.group_changes(),
            *self.user_deprovisions(),
            *self.group_deprovisions(),
        ]
        operations.sort(key=self.order)
        trips, untrusted = self.guards(operations)
        holding = any(not trip.forced for trip in trips)
        to_apply = [op for op in operations if not (holding and op.kind in DESTRUCTIVE_KINDS)]
        held = [op for op in operations if holding and op.kind in DESTRUCTIVE_KINDS]
        trips = [trip if trip.forced else attrs.evolve(trip, held=len(held)) for trip in trips]
        sizes = (("User", self.source_size("User")), ("Group", self.source_size("Group")))
        users, groups = self.users, self.groups
        return Plan(
            operations=to_apply,
            held=held,
            guards=trips,
            conflicts=sorted(
                [*users.conflicts, *groups.conflicts],
                key=lambda c: (c.resource_type != "User", c.source_keys, c.kind, c.target_ids),
            ),
            skipped=sorted(
                self.skipped,
                key=lambda s: (
                    s.resource_type != "User",
                    s.source_key or "",
                    s.target_id or "",
                    s.reason,
                ),
            ),
            # Users' links, then groups', each by source key (one per user on a first
            # cycle: a C-level key).
            links=[*sorted(users.links, key=_SOURCE_KEY), *sorted(groups.links, key=_SOURCE_KEY)],
            source_counts={kind: size for kind, size in sizes if kind not in untrusted},
            now=self.now,
            protected=sorted(
                self.protections, key=lambda p: (p.resource_type != "User", p.source_key)
            ),
        )

    def order(self, op: Operation) -> tuple[int, int, str, str]:
        """Where ``op`` goes in the plan (see the rules at the top of this module)."""
        phase = _PHASES[op.resource_type, op.kind]
        rank = self.create_rank.get(op.source_key or "", 0) if phase == 0 else 0
        return (phase, rank, op.source_key or "", op.target_id)

    # -- writes -------------------------------------------------------------------------

    def write(
        self,
        kind: str,
        account: Resource,
        *,
        key: str | None,
        reason: str,
        patch: Sequence[PatchOperation],
        after: Resource,
        changes: Sequence[PlannedChange],
    ) -> Operation:
        """An operation changing ``account``: its PATCH, or for PUT targets the whole body."""
        return Operation(
            kind=kind,
            resource_type=account.resource_type_name,
            target_id=account.id or "",
            source_key=key,
            reason=reason,
            patch=() if self.put else patch,
            body=_strip_server_attributes(after) if self.put else None,
            changes=changes,
        )

    # -- users --------------------------------------------------------------------------

    def user_creates(self) -> Iterable[Operation]:
        creates = self.users.creates
        resolved = {record.key: self.resolve_references(record) for record in creates}
        created = {self.users.ids[record.key]: record.key for record in creates}
        rank, deferred = creation_order(
            {
                key: [(path, created[target]) for path, target in refs if target in created]
                for key, refs in resolved.items()
            }
        )
        self.create_rank = rank
        later: list[tuple[DesiredUser, User, list[tuple[str, str]]]] = []
        for record in creates:
            body: User = _strip_server_attributes(record.user)
            refs = resolved[record.key]
            now = [(p, t) for p, t in refs if (record.key, p) not in deferred]
            if now:
                body = with_values(body, now, self.policy.schema)
            if len(now) != len(refs):
                left = [(p, t) for p, t in refs if (record.key, p) in deferred]
                later.append((record, body, left))
            if record.create_only is not None:
                body = overlay(body, record.create_only)
            gone = self.users.gone_links.get(record.key)
            yield Operation(
                kind="create",
                resource_type="User",
                target_id=self.users.ids[record.key],
                source_key=record.key,
                reason=f"linked account {gone} is gone from the target"
                if gone
                else "not on the target",
                body=body,
                changes=describe_resource(body, "User", self.policy),
            )
        for record, body, refs in later:
            yield self.deferred_references(record, body, refs, created)

    def deferred_references(
        self, record: DesiredUser, body: User, refs: list[tuple[str, str]], created: dict[str, str]
    ) -> Operation:
        """The update writing references a create left out to break a circle of them."""
        patch = [PatchOperation(op="replace", path=path, value=target) for path, target in refs]
        others = ", ".join(sorted({_quoted(created[target]) for _, target in refs}))
        return Operation(
            kind="update",
            resource_type="User",
            target_id=self.users.ids[record.key],
            source_key=record.key,
            reason=f"{summarise([PlannedChange(path=p) for p, _ in refs]).removesuffix(' changed')}"
            f" set once {others} exists (they refer to each other)",
            patch=() if self.put else patch,
            body=with_values(body, refs, self.policy.schema) if self.put else None,
            changes=[
                PlannedChange(path=path, new=target, new_key=_key(self.users.label, target))
                for path, target in refs
            ],
        )

    def labelled(
        self, changes: Sequence[PlannedChange], refs: list[tuple[str, str]]
    ) -> tuple[PlannedChange, ...]:
        """``changes`` with the source keys people know the accounts of references (a
        manager) by, next to their ids, as group members are shown."""
        paths = {path.lower() for path, _ in refs}
        label = self.users.label
        return tuple(
            attrs.evolve(change, old_key=_key(label, change.old), new_key=_key(label, change.new))
            if change.path.lower() in paths and not change.sensitive
            else change
            for change in changes
        )

    def resolve_references(self, record: DesiredUser) -> list[tuple[str, str]]:
        """``(path, id or placeholder)`` of each reference of ``record`` that resolves.

        One that names no user of the source is left as it is on the target, and said
        in the plan; one naming a user in a conflict is left as it is too (the conflict
        says why).
        """
        out = []
        users = self.users
        id_of = users.id_of
        for path, key in record.references:
            target = id_of(key)
            if target is not None:
                out.append((path, target))
            elif key not in users.unresolved:
                self.skipped.append(
                    Skip(
                        resource_type="User",
                        source_key=record.key,
                        reason=f"{summarise([PlannedChange(path=path)]).removesuffix(' changed')} "
                        f"refers to {_quoted(key)}, not a user of the source: left as it is",
                    )
                )
        return out

    def read_reference(self, path: str) -> Callable[[Any], Any]:
        """Reads the value at reference ``path`` off an account."""
        found = self._readers.get(path)
        if found is None:
            found = self._readers[path] = reader(path, self.policy.schema)
        return found

    def clearing_for(self, record: DesiredUser) -> Clearing | None:
        """The managed user attributes to clear for ``record``: not its references."""
        references = record.references
        if not references:
            return self.clear_users
        if len(references) == 1:
            paths: tuple[str, ...] = (references[0][0],)
        else:
            paths = tuple(path for path, _ in references)
        if paths not in self._clear_without:
            base = self.clear_users
            schema = self.policy.schema
            found = None
            if base is not None:
                excluded = {_canonical(path, schema) for path in paths}
                kept = tuple(m.text for m in base.managed if m.text not in excluded)
                found = clearing(User, kept, schema) if kept else None
            self._clear_without[paths] = found
        return self._clear_without[paths]

    def user_updates(self) -> Iterable[Operation]:
        users = self.users
        settled = self.settled_check()
        for record, account in zip(users.linked_records, users.linked_accounts, strict=True):
            # The hot path of a sync: most linked users are unchanged.
            if settled is not None and settled(record, account):
                continue
            op = self.user_update(record, account, "link", adopted=False)
            if op is not None:
                yield op
        # Matched by key (a first cycle, a lost state store): the same shortcut. An
        # account that needs nothing needs no adoption either; its link is in the plan.
        for _, record, account, matched_by, adopted in users.matched:
            if settled is not None and settled(record, account):
                continue
            op = self.user_update(record, account, matched_by, adopted=adopted)
            if op is not None:
                yield op

    def settled_check(self) -> Callable[[DesiredUser, Any], bool] | None:
        """A function telling, fast, that an account needs no update for a record
        (False: ask :meth:`user_update`); None when every user is to be compared in full.

        True only when diff's own first check finds nothing to write, every reference
        (a manager) already holds its id, and no managed attribute is to be cleared:
        then :meth:`user_update` would plan nothing either.
        """
        if not self.fast:
            return None
        unchanged = _unchanged_check(User, self.policy.schema, "User", None, self.user_scopes)
        clear_users = self.clear_users
        id_of = self.users.id_of
        readers = self._readers
        read_reference = self.read_reference
        clearing_for = self.clearing_for

        def settled(record: DesiredUser, account: Any) -> bool:
            wanted = record.user
            if (
                account.active is False
                or type(wanted) is not User
                or type(account) is not User
                or not unchanged(account, wanted)
            ):
                return False
            references = record.references
            if not references:
                return clear_users is None or not clear_users.needed(account, wanted)
            # References (a manager) the account holds already, every one?
            for path, key in references:
                target = id_of(key)
                read = readers.get(path) or read_reference(path)
                if target is None or read(account) != target:
                    return False
            clear = clearing_for(record)
            return clear is None or not clear.needed(account, wanted)

        return settled

    def user_update(
        self,
        record: DesiredUser,
        account: Any,
        matched_by: str,
        *,
        adopted: bool,
    ) -> Operation | None:
        """The update (or reactivation) ``account`` needs, or None."""
        key = record.key
        wanted = record.user
        schema = self.policy.schema
        refs = self.resolve_references(record) if record.references else []
        differing = [(p, t) for p, t in refs if self.read_reference(p)(account) != t]
        if differing:
            wanted = with_values(wanted, differing, schema)
        # Back in the source: active again, unless the mapping says otherwise, and
        # only if scimsync deactivated it when the mapping leaves `active` alone.
        reactivate = account.active is False and (
            wanted.active is True
            or (wanted.active is None and account.id in self.state.users.deactivated_at)
        )
        if reactivate and wanted.active is None:
            wanted = attrs.evolve(wanted, active=True)
        clear = self.clearing_for(record)
        if clear is not None and record.create_only is not None:
            clear = _without_create_only(clear, record.create_only, schema)
        patch, changes, cleared = attribute_patch(
            account, wanted, "User", self.policy, clear, scopes=self.user_scopes, fast=self.fast
        )
        if not patch:
            return None
        if refs:
            changes = self.labelled(changes, refs)
        if reactivate:
            others = [c for c in changes if c.path != "active"]
            reason = "back in source" + (f"; {summarise(others, cleared)}" if others else "")
        else:
            reason = summarise(changes, cleared)
        if adopted:
            reason = f"matched by {matched_by}, adopted; {reason}"
        after = overlay(account, wanted, self.user_scopes, schema)
        if cleared and self.put:
            removals = [PatchOperation(op="remove", path=path) for path in cleared]
            after = apply_patch(after, removals, schema=schema)
        return self.write(
            "reactivate" if reactivate else "update",
            account,
            key=key,
            reason=reason,
            patch=patch,
            after=after,
            changes=changes,
        )

    def user_deprovisions(self) -> Iterable[Operation]:
        policy = self.policy
        if policy.deprovision == "none":
            return
        users = self.users
        for target_id in users.unclaimed_owned():
            account = self.actual_users[target_id]
            key = users.linked_key(target_id)
            if policy.deprovision == "delete" and not policy.delete_after_days:
                yield _delete(account, key, "not in source")
            elif self.active_ignored:
                self.skipped.append(
                    Skip(
                        resource_type="User",
                        source_key=key,
                        target_id=target_id,
                        reason="not in source, but the target does not keep active: it cannot "
                        "be deactivated (deprovision='delete' deletes it)",
                    )
                )
            elif account.active is not False:
                reason = "not in source"
                if policy.deprovision == "delete":
                    reason += f"; to be deleted after {policy.delete_after_days} days"
                yield self.write(
                    "deactivate",
                    account,
                    key=key,
                    reason=reason,
                    patch=[PatchOperation(op="replace", path="active", value=False)],
                    after=attrs.evolve(account, active=False),
                    changes=[PlannedChange(path="active", old=account.active, new=False)],
                )
            elif policy.deprovision == "delete":
                yield from self.delete_when_due(account, key)

    def delete_when_due(self, account: User, key: str | None) -> Iterable[Operation]:
        """Delete a deactivated account once it has been so for ``delete_after_days``."""
        target_id: str = account.id  # type: ignore[assignment]
        days = self.policy.delete_after_days or 0
        since = self.state.users.deactivated_at.get(target_id)
        if since is None and account.meta is not None:
            # Not deactivated by scimsync: the last change is no earlier than the
            # deactivation, so waiting from it never deletes too early.
            since = account.meta.last_modified
        if self.now is None or since is None or since.utcoffset() is None:
            why = " (no `now` given)" if self.now is None else ""
            self.skipped.append(
                Skip(
                    resource_type="User",
                    source_key=key,
                    target_id=target_id,
                    reason=f"deactivated and not in source, but since when is unknown{why}",
                )
            )
            return
        waited = self.now - since
        if waited >= timedelta(days=days):
            yield _delete(
                account,
                key,
                f"not in source; deactivated {waited.days} days ago (delete after {days})",
            )

    # -- groups -------------------------------------------------------------------------

    def wanted_members(self, record: DesiredGroup) -> dict[str, str]:
        """Member id (or placeholder) -> source key, for the members that resolve."""
        users = self.users
        keys = record.member_keys
        found = list(map(users.resolved().get, keys))
        # The first key of each id: dict() keeps the last of repeated keys, so reversed.
        out: dict[str, str] = dict(zip(reversed(found), reversed(keys), strict=True))  # type: ignore[arg-type]
        unknown: set[str] = set()
        if out.pop(None, None) is not None:  # type: ignore[call-overload]
            unresolved = users.unresolved
            unknown = {
                key
                for key, i in zip(keys, found, strict=True)
                if i is None and key not in unresolved
            }
        if unknown:
            shown = ", ".join(_quoted(k) for k in sorted(unknown)[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            self.skipped.append(
                Skip(
                    resource_type="Group",
                    source_key=record.key,
                    reason=f"members that are not source users, left out: {shown}{more}",
                )
            )
        return out

    def group_changes(self) -> Iterable[Operation]:
        yield from self.group_creates()
        group_ids = self.actual_groups.keys()
        protected = self.users.protected
        for key, record, found, matched_by, adopted in self.groups.all_matched():
            account: Group = found  # type: ignore[assignment]
            current = without_members(account)
            wanted = without_members(record.group)
            patch, changes, cleared = attribute_patch(
                current,
                wanted,
                "Group",
                self.policy,
                self.clear_groups,
                scopes=self.group_scopes,
                fast=self.fast,
            )
            after = current  # what the group will hold: needed only to write it
            if patch or self.put:
                after = overlay(current, wanted, self.group_scopes, self.policy.schema)
            if cleared and self.put:
                removals = [PatchOperation(op="remove", path=path) for path in cleared]
                after = apply_patch(after, removals, schema=self.policy.schema)
            members = self.wanted_members(record)
            to_add: list[str] = []
            to_remove: list[str] = []
            if account.members is None:
                # A PUT would clear the members nobody listed: no PUT at all then.
                consequence = "group not updated" if self.put else "membership not compared"
                self.skipped.append(
                    Skip(
                        resource_type="Group",
                        source_key=record.key,
                        target_id=account.id,
                        reason=f"the target listing left out members: {consequence}",
                    )
                )
                if self.put:
                    continue
            else:
                present = set(map(_VALUE, account.members))
                present.discard(None)
                to_add = sorted(members.keys() - present)
                # Nested groups and accounts in a conflict or of a record with an issue
                # stay where they are; so do all members of a group whose record has one.
                to_remove = sorted(
                    m for m in present - members.keys() if m not in protected and m not in group_ids
                )
                if key in self.desired.protected_group_keys:
                    to_remove = []
            adoption = f"matched by {matched_by}, adopted; " if adopted else ""
            if self.put:
                yield from self.put_group(
                    key,
                    account=account,
                    after=after,
                    adoption=adoption,
                    patch=patch,
                    changes=changes,
                    cleared=cleared,
                    to_add=to_add,
                    to_remove=to_remove,
                )
                continue
            if patch:
                yield self.write(
                    "update",
                    account,
                    key=key,
                    reason=adoption + summarise(changes, cleared),
                    patch=patch,
                    after=after,
                    changes=changes,
                )
            yield from self.member_operations("add_members", account.id or "", key, to_add)
            yield from self.member_operations("remove_members", account.id or "", key, to_remove)

    def group_creates(self) -> Iterable[Operation]:
        for record in self.groups.creates:
            placeholder = self.groups.ids[record.key]
            members = self.wanted_members(record)
            body: Group = _strip_server_attributes(without_members(record.group))
            changes = describe_resource(body, "Group", self.policy)
            if self.put and members:
                ordered = sorted(members)
                body = attrs.evolve(body, members=tuple(Member(value=m) for m in ordered))
                changes = (
                    *changes,
                    PlannedChange(path="members", new=[members[m] for m in ordered]),
                )
            yield Operation(
                kind="create",
                resource_type="Group",
                target_id=placeholder,
                source_key=record.key,
                reason="not on the target",
                body=body,
                changes=changes,
            )
            if not self.put:
                yield from self.member_operations(
                    "add_members", placeholder, record.key, sorted(members)
                )

    def member_operations(
        self,
        kind: str,
        group_id: str,
        group_key: str,
        member_ids: Sequence[str],
    ) -> Iterable[Operation]:
        """Membership changes in chunks of ``max_members_per_operation``."""
        adding = kind == "add_members"
        for chunk in chunks(member_ids, self.policy.max_members_per_operation):
            shown = [self.users.label(m) for m in chunk]
            yield Operation(
                kind=kind,
                resource_type="Group",
                target_id=group_id,
                source_key=group_key,
                reason=_plural(len(chunk), "member")
                + (" to add" if adding else " not in the source group"),
                patch=add_members_patch(chunk) if adding else remove_members_patch(chunk),
                members=chunk,
                changes=[
                    PlannedChange(
                        path="members", new=shown if adding else None, old=None if adding else shown
                    )
                ],
            )

    def put_group(
        self,
        key: str,
        *,
        account: Group,
        after: Group,
        adoption: str,
        patch: Sequence[PatchOperation],
        changes: Sequence[PlannedChange],
        cleared: Sequence[str],
        to_add: Sequence[str],
        to_remove: Sequence[str],
    ) -> Iterable[Operation]:
        """Whole-group PUTs; member removals in one of their own, so a guard can hold it."""
        # In id order: the listing's order is no part of the plan (same bytes, any order).
        current = sorted(account.members or (), key=lambda m: m.value or "")
        if patch or to_add:
            changes = list(changes)
            if to_add:
                changes.append(
                    PlannedChange(path="members", new=[self.users.label(m) for m in to_add])
                )
            grown = [*current, *(Member(value=m) for m in to_add)]
            yield Operation(
                kind="update",
                resource_type="Group",
                target_id=account.id or "",
                source_key=key,
                reason=adoption + summarise(changes, cleared),
                body=_strip_server_attributes(attrs.evolve(after, members=tuple(grown))),
                changes=changes,
            )
        if to_remove:
            removed = set(to_remove)
            final = [
                *(m for m in current if m.value not in removed),
                *(Member(value=m) for m in to_add),
            ]
            yield Operation(
                kind="remove_members",
                resource_type="Group",
                target_id=account.id or "",
                source_key=key,
                reason=_plural(len(to_remove), "member") + " not in the source group",
                body=_strip_server_attributes(attrs.evolve(after, members=tuple(final))),
                members=to_remove,
                changes=[
                    PlannedChange(path="members", old=[self.users.label(m) for m in to_remove])
                ],
            )

    def group_deprovisions(self) -> Iterable[Operation]:
        if self.policy.group_deprovision != "delete":
            return
        groups = self.groups
        for target_id in groups.unclaimed_owned():
            account = self.actual_groups[target_id]
            yield _delete(account, groups.linked_key(target_id), "not in source")

    # -- guards -------------------------------------------------------------------------

    def guards(self, operations: Sequence[Operation]) -> tuple[list[GuardTrip], set[str]]:
        """The guards that trip, and the resource types whose source size is not trusted.

        A guard trips when its condition holds and the plan takes something away; an
        untrusted size is not remembered, so the next cycle still compares with the
        last good one.
        """
        policy = self.policy
        trips: list[GuardTrip] = []
        untrusted: set[str] = set()
        takes_away = any(op.kind in DESTRUCTIVE_KINDS for op in operations)

        def trip(name: str, reasons: list[str]) -> None:
            if reasons and takes_away:
                trips.append(
                    GuardTrip(name=name, reason="; ".join(reasons), forced=name in policy.force)
                )

        incomplete = []
        if not self.desired.complete:
            incomplete.append("the source read was incomplete")
            untrusted.update(("User", "Group"))
        if not self.actual.complete:
            why = "; ".join(self.actual.problems)
            incomplete.append("the target listing was incomplete" + (f" ({why})" if why else ""))
        untied = self.untied_risk(operations)
        if untied is not None:
            incomplete.append(untied)
        trip("incomplete_listing", incomplete)

        shrank = []
        deprovisions = {
            kind: sum(
                1 for op in operations if op.resource_type == kind and op.kind in DEPROVISION_KINDS
            )
            for kind in ("User", "Group")
        }
        for resource_type, count, ledger in (
            ("User", self.source_size("User"), self.state.users),
            ("Group", self.source_size("Group"), self.state.groups),
        ):
            noun = "users" if resource_type == "User" else "groups"
            last = ledger.last_source_count
            if count == 0 and (last or deprovisions[resource_type]):
                seen = f" (last cycle: {last})" if last is not None else ""
                shrank.append(f"the source returned no {noun}{seen}")
            elif last and policy.max_source_shrink is not None:
                drop = (last - count) * 100 / last
                if drop <= policy.max_source_shrink:
                    continue
                shrank.append(
                    f"the source {noun} shrank by {drop:.1f}% ({last} -> {count}), "
                    f"over max_source_shrink {policy.max_source_shrink:g}%"
                )
            else:
                continue
            if "source_shrink" not in policy.force:
                untrusted.add(resource_type)
        trip("source_shrink", shrank)

        over = []
        for resource_type, matching in (("User", self.users), ("Group", self.groups)):
            count = deprovisions[resource_type]
            if not count:
                continue
            owned = matching.owned_count()
            noun = "users" if resource_type == "User" else "groups"
            if policy.max_deprovisions is not None and count > policy.max_deprovisions:
                limit = policy.max_deprovisions
                over.append(f"{count} {noun} to deprovision, over max_deprovisions {limit}")
            elif policy.max_deprovisions_percent is not None and owned:
                share = count * 100 / owned
                if share > policy.max_deprovisions_percent:
                    over.append(
                        f"{count} of {owned} owned {noun} to deprovision ({share:.1f}%), "
                        f"over max_deprovisions_percent {policy.max_deprovisions_percent:g}%"
                    )
        trip("max_deprovisions", over)
        return trips, untrusted

    def untied_risk(self, operations: Sequence[Operation]) -> str | None:
        """Why the plan must not take anything away for protected keys tied to no account.

        A protected key the state links to nothing, and that no account carries as
        its ``externalId``, may be the identity of any account the state links to no
        key (a first cycle, a lost state store). An account the state links to
        another key is that key's, and goes its own way.
        """
        risky = 0
        for resource_type, matching in (("User", self.users), ("Group", self.groups)):
            if not self.untied[resource_type]:
                continue
            for op in operations:
                if op.kind in DEPROVISION_KINDS and op.resource_type == resource_type:
                    touched: Sequence[str] = (op.target_id,)
                elif op.kind == "remove_members" and resource_type == "User":
                    touched = op.members
                else:
                    continue
                if any(matching.linked_key(target_id) is None for target_id in touched):
                    risky += 1
        if not risky:
            return None
        keys = sorted(f"{t} {_quoted(k)}" for t, ks in self.untied.items() for k in ks)
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        return (
            f"source records with an issue are tied to no account ({shown}): "
            f"{_plural(risky, 'operation')} would take something from accounts the state "
            "links to no key, which may be theirs"
        )


def _delete(account: Resource, key: str | None, reason: str) -> Operation:
    return Operation(
        kind="delete",
        resource_type=account.resource_type_name,
        target_id=account.id or "",
        source_key=key,
        reason=reason,
    )


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
