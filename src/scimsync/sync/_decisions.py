"""What the executor decides, as pure functions: the rules, apart from the sending.

Rules this module keeps:

- **No I/O, no clock, no randomness.** Every function takes values and returns a
  value (a random draw or the time comes in as an argument), so each rule is tested
  on its own, without a target.
- **Never guess about identities.** A create whose outcome is unknown, or that hit a
  uniqueness conflict, is resolved by what a lookup found, and only by an account
  whose every match key agrees with the create; several candidates are a failure,
  not a pick.
- **Nothing blindly.** An operation on a resource that changed since the plan is
  re-planned against what the target holds now (:func:`rebase`); what is already
  done is not sent again.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import from_scim, to_scim
from ..engine import Operation
from ..engine._changes import (
    add_members_patch,
    is_sensitive,
    remove_members_patch,
    value_at,
)
from ..engine._match import key_values
from ..engine._values import is_placeholder
from ..errors import (
    BadRequestError,
    ConflictResponseError,
    ForbiddenError,
    InvalidResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PatchError,
    PreconditionFailedError,
    ScimHTTPError,
    UnauthorizedError,
)
from ..models import Group, Member, Resource, User
from ..patch import apply_patch, diff
from ..secrets import MIN_REDACTED_LENGTH, Redactor

if TYPE_CHECKING:
    from ..engine import Ledger, Policy, SyncState
    from ..models import DesiredGroup, DesiredUser, TargetState
    from ._state import JournalEntry

__all__ = [
    "CreateAction",
    "CreateDecision",
    "ErrorAction",
    "ErrorDecision",
    "Rebased",
    "another_identity",
    "create_identity",
    "decide_create",
    "decide_error",
    "dependencies",
    "fingerprint",
    "holds_identity",
    "matches_identity",
    "next_delay",
    "quarantine_reason",
    "rebase",
    "recover",
    "redact",
    "secrets_of",
    "unchanged",
    "without_placeholders",
]


# -- errors ------------------------------------------------------------------------------


class ErrorAction(str, enum.Enum):
    """What to do after a write raised."""

    #: Give up on this operation; it is retried by the next cycle.
    FAIL = "fail"
    #: The target refused the credentials: stop every write of the cycle at once.
    STOP_WRITING = "stop_writing"
    #: A create may have happened, or the identity exists: look it up before anything else.
    LOOKUP = "lookup"
    #: The resource may have changed (412, or an unknown outcome): read it, re-plan, retry.
    REREAD = "reread"
    #: What the operation wanted is already true (a DELETE answered 404).
    ALREADY_DONE = "already_done"


@attrs.frozen
class ErrorDecision:
    """An :class:`ErrorAction` and the reason, in words, for the report."""

    action: ErrorAction
    reason: str


def describe_error(exc: BaseException) -> str:
    """``"ServerError: HTTP 503 for PATCH …"``: the class and message of ``exc``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decide_error(
    op: Operation, exc: BaseException, *, rereads: int, max_rereads: int
) -> ErrorDecision:
    """What to do after the write for ``op`` raised ``exc``.

    ``rereads`` is how many re-reads this operation already made; past ``max_rereads``
    an operation whose resource keeps changing fails instead of looping.
    """
    what = describe_error(exc)
    if isinstance(exc, (UnauthorizedError, ForbiddenError)):
        return ErrorDecision(
            ErrorAction.STOP_WRITING,
            f"the target refused the credentials ({exc.status}): every write stops; {what}",
        )
    unknown = isinstance(exc, (OutcomeUnknownError, InvalidResponseError))
    if op.kind == "create":
        if unknown:
            return ErrorDecision(
                ErrorAction.LOOKUP, f"the outcome of the create is unknown: {what}"
            )
        if isinstance(exc, ConflictResponseError) and exc.scim_type in (None, "uniqueness"):
            return ErrorDecision(ErrorAction.LOOKUP, f"the identity exists on the target: {what}")
        return ErrorDecision(ErrorAction.FAIL, what)
    if isinstance(exc, NotFoundError):
        if op.kind in ("delete", "deactivate", "remove_members"):
            return ErrorDecision(ErrorAction.ALREADY_DONE, "gone from the target already")
        return ErrorDecision(ErrorAction.FAIL, f"gone from the target: {what}")
    removing_nothing = (
        op.kind == "remove_members"
        and isinstance(exc, BadRequestError)
        and exc.scim_type == "noTarget"
    )
    if unknown or removing_nothing or isinstance(exc, PreconditionFailedError):
        if rereads >= max_rereads:
            return ErrorDecision(
                ErrorAction.FAIL, f"still failing after {rereads} re-reads of the resource: {what}"
            )
        return ErrorDecision(ErrorAction.REREAD, what)
    return ErrorDecision(ErrorAction.FAIL, what)


# -- creates -----------------------------------------------------------------------------


def _match_paths(resource_type: str, policy: Policy) -> tuple[str, ...]:
    return policy.match_keys if resource_type == "User" else policy.group_match_keys


def create_identity(op: Operation, policy: Policy) -> dict[str, str]:
    """The match-key values a create sends (``{"externalId": "e1", "userName": "ann"}``).

    These are what a lookup compares after a lost answer or a uniqueness conflict;
    values are as sent (not case-folded), so they can go into a lookup request.
    """
    assert op.body is not None
    data = to_scim(op.body)
    urns = policy.schema.extension_urns(op.resource_type)
    out: dict[str, str] = {}
    for path in _match_paths(op.resource_type, policy):
        value = value_at(data, path, urns)
        if isinstance(value, str):
            out[path] = value
    return out


def _agreement(
    resource_type: str, identity: Mapping[str, str], account: Resource, policy: Policy
) -> list[bool]:
    """Per value of ``identity``: does the account hold that value (per ``caseExact``)?"""
    out = []
    for path, value in identity.items():
        wanted = value if policy.schema.case_exact(resource_type, path) else value.casefold()
        (found,) = key_values(resource_type, path, policy, [account])
        out.append(found == wanted)
    return out


def matches_identity(
    resource_type: str, identity: Mapping[str, str], account: Resource, policy: Policy
) -> bool:
    """True when every value of ``identity`` equals the account's: the account a create
    with that identity made."""
    return bool(identity) and all(_agreement(resource_type, identity, account, policy))


def holds_identity(
    resource_type: str, identity: Mapping[str, str], account: Resource, policy: Policy
) -> bool:
    """True when the account holds any value of ``identity``: a create with it would
    clash with the account, as the engine would match them."""
    return any(_agreement(resource_type, identity, account, policy))


def another_identity(
    resource_type: str, identity: Mapping[str, str], account: Resource, policy: Policy
) -> str | None:
    """The identity ``account`` holds instead of ``identity``, in words, when it holds
    none of its values and another value for at least one (``"userName 'ann'"``); None
    when it may be the account a create with ``identity`` made.

    A value missing from the account is no contradiction: targets drop ``externalId``.
    """
    if not identity or any(_agreement(resource_type, identity, account, policy)):
        return None
    held = []
    for path in identity:
        (found,) = key_values(resource_type, path, policy, [account])
        if found is not None:
            held.append(f"{path} {found!r}")
    return ", ".join(held) or None


class CreateAction(str, enum.Enum):
    """How a create that met an existing identity (or a lost answer) ends."""

    #: The account is the one this create made (or scimsync owns it): link it.
    LINK = "link"
    #: An account scimsync does not own; the policy adopts it: link it, as adopted.
    ADOPT = "adopt"
    #: Nothing found: send the create (again).
    RETRY = "retry"
    #: An unowned account and ``adopt="ignore"``: leave the identity alone.
    IGNORE = "ignore"
    #: Several accounts, another source key's account, or an unowned one with ``adopt="fail"``.
    FAIL = "fail"


@attrs.frozen
class CreateDecision:
    """A :class:`CreateAction`, the account it concerns (if one), and the reason."""

    action: CreateAction
    reason: str
    account: Resource | None = None


def decide_create(
    op: Operation,
    found: Sequence[Resource],
    *,
    policy: Policy,
    ledger: Ledger,
    maybe_ours: bool,
) -> CreateDecision:
    """Decide a create from the accounts a lookup ``found`` holding its identity
    (any of its match-key values: :func:`holds_identity`).

    ``maybe_ours`` is True when an earlier attempt of this create may have been
    committed (its answer was lost): an account holding every value it sent
    (:func:`matches_identity`) is then the one it made. Otherwise an account is
    linked when scimsync owns it (the state says so, it carries the create's own
    ``externalId``, or the policy's ``external_id_prefix``), and adopted, ignored or
    refused per ``policy.adopt``.
    """
    noun = op.resource_type.lower()
    if not found:
        return CreateDecision(CreateAction.RETRY, f"no {noun} account holds this identity")
    if len(found) > 1:
        ids = ", ".join(sorted(str(a.id) for a in found))
        return CreateDecision(
            CreateAction.FAIL,
            f"{len(found)} {noun} accounts hold this identity ({ids}): not guessing",
        )
    (account,) = found
    account_id = account.id or ""
    owner = {target: key for key, target in ledger.links.items()}.get(account_id)
    if owner is not None and owner != op.source_key:
        return CreateDecision(
            CreateAction.FAIL,
            f"the {noun} account {account_id} holding this identity belongs to "
            f"source key {owner!r}",
            account,
        )
    assert op.body is not None
    prefix = policy.external_id_prefix
    managed = (
        owner == op.source_key
        or ledger.owns(account_id)
        or (op.body.external_id is not None and op.body.external_id == account.external_id)
        or (prefix is not None and (account.external_id or "").startswith(prefix))
    )
    ours = maybe_ours and matches_identity(
        op.resource_type, create_identity(op, policy), account, policy
    )
    if ours or managed:
        why = "the create went through although its answer was lost" if ours else "owned"
        return CreateDecision(
            CreateAction.LINK, f"found {noun} account {account_id}: {why}", account
        )
    if policy.adopt == "adopt":
        return CreateDecision(
            CreateAction.ADOPT, f"adopted the existing {noun} account {account_id}", account
        )
    if policy.adopt == "ignore":
        return CreateDecision(
            CreateAction.IGNORE,
            f"an account scimsync does not own ({account_id}) holds this identity; "
            "policy.adopt is 'ignore'",
            account,
        )
    return CreateDecision(
        CreateAction.FAIL,
        f"an account scimsync does not own ({account_id}) holds this identity; set policy.adopt "
        "to 'adopt' to take it over or 'ignore' to leave it",
        account,
    )


# -- re-planning one operation -----------------------------------------------------------


@attrs.frozen
class Rebased:
    """One operation re-planned against what the target holds now.

    ``op`` is what to send (None when nothing is left to do: ``done`` says whether
    that is because it is done already, or because it cannot be done), ``replanned``
    is True when ``op`` differs from the planned operation, ``reason`` says why.
    """

    op: Operation | None
    done: bool = False
    replanned: bool = False
    reason: str = ""


def unchanged(a: Resource, b: Resource) -> bool:
    """True when ``a`` and ``b`` agree on everything a client can write."""
    return to_scim(a, request=True) == to_scim(b, request=True)


def rebase(
    op: Operation,
    current: Resource | None,
    policy: Policy,
    ids: Mapping[str, str] | None = None,
) -> Rebased:
    """Re-plan ``op`` (placeholders resolved) against ``current``, the resource now.

    - Gone: a delete or deactivation is done already; anything else cannot be done.
    - Nothing left to change: done, nothing is sent.
    - The values the plan saw are still there: the operation is sent as planned.
    - Otherwise the change is computed again from ``current``: only what still
      differs is sent (a PUT keeps what changed meanwhile on other attributes).

    ``ids`` resolves placeholders in the operation's review values (a PUT group
    update lists the members it adds there).
    """
    noun = op.resource_type.lower()
    if current is None:
        if op.kind in ("delete", "deactivate", "remove_members"):
            return Rebased(None, done=True, reason=f"the {noun} is gone from the target already")
        return Rebased(None, reason=f"the {noun} is gone from the target since the plan was made")
    if op.kind == "delete":
        return Rebased(op)
    if op.kind in ("add_members", "remove_members") and op.body is None:
        return _rebase_members(op, current)
    if op.body is not None:
        return _rebase_put(op, current, policy, ids or {})
    try:
        patched = apply_patch(current, list(op.patch), schema=policy.schema)
    except PatchError as exc:
        return Rebased(None, reason=f"the planned change no longer applies: {exc}")
    if unchanged(patched, current):
        return Rebased(None, done=True, reason="already as planned on the target")
    if _planned_values_hold(op, current, policy):
        return Rebased(op)
    # What the plan removes is not set in `patched`: diff compares it as managed.
    removed = [o.path for o in op.patch if o.op == "remove" and o.path is not None]
    ops = diff(current, patched, schema=policy.schema, managed=removed)
    return Rebased(
        attrs.evolve(op, patch=ops),
        replanned=True,
        reason="changed on the target since the plan was made: re-planned",
    )


def _planned_values_hold(op: Operation, current: Resource, policy: Policy) -> bool:
    data = to_scim(current)
    urns = policy.schema.extension_urns(op.resource_type)
    for change in op.changes:
        if change.sensitive or change.path == "members":
            return False  # cannot compare: re-diff to be sure
        if value_at(data, change.path, urns) != change.old:
            return False
    return bool(op.changes)


def _rebase_members(op: Operation, current: Resource) -> Rebased:
    assert isinstance(current, Group)
    if current.members is None:
        return Rebased(op)  # the target does not show members: cannot tell, send as planned
    present = {m.value for m in current.members}
    adding = op.kind == "add_members"
    remaining = [m for m in op.members if (m in present) != adding]
    if not remaining:
        return Rebased(None, done=True, reason="already as planned on the target")
    if len(remaining) == len(op.members):
        return Rebased(op)
    patch = add_members_patch(remaining) if adding else remove_members_patch(remaining)
    return Rebased(
        attrs.evolve(op, members=remaining, patch=patch),
        replanned=True,
        reason=f"{len(op.members) - len(remaining)} of the members already as planned",
    )


def _rebase_put(
    op: Operation, current: Resource, policy: Policy, ids: Mapping[str, str]
) -> Rebased:
    """A whole-resource write rebuilt on ``current``: the planned changes, nothing else."""
    assert op.body is not None
    added: list[str] = []
    for change in op.changes:
        if change.path == "members" and op.kind != "remove_members" and change.new:
            added = [ids.get(str(m), str(m)) for m in change.new]
    # Members are merged below (what was added meanwhile stays), the rest set or removed.
    patch = [o for o in op.body_patch() if o.path != "members"]
    try:
        wanted = apply_patch(current, patch, schema=policy.schema) if patch else current
    except PatchError as exc:
        return Rebased(None, reason=f"the planned change no longer applies: {exc}")
    if isinstance(wanted, Group):
        members = list(wanted.members or ())
        if op.kind == "remove_members":
            gone = set(op.members)
            members = [m for m in members if m.value not in gone]
        present = {m.value for m in members}
        members.extend(Member(value=m) for m in added if m not in present)
        wanted = attrs.evolve(wanted, members=tuple(members))
    if unchanged(wanted, current):
        return Rebased(None, done=True, reason="already as planned on the target")
    body = attrs.evolve(wanted, id=None, meta=None)
    assert isinstance(body, (User, Group))
    if isinstance(body, User):
        body = attrs.evolve(body, groups=None)
    same = to_scim(body, request=True) == to_scim(op.body, request=True)
    return Rebased(
        attrs.evolve(op, body=body),
        replanned=not same,
        reason="" if same else "changed on the target since the plan was made: re-planned",
    )


def without_placeholders(op: Operation) -> Operation:
    """``op`` without the values that still hold a placeholder (a user not created).

    PATCH operations carrying one are dropped; a body loses the attributes holding one
    (a manager whose create failed): the rest of the write goes on, and the next
    cycle sets them.
    """
    patch = tuple(o for o in op.patch if _without(o.value) is o.value)
    body = op.body
    if body is not None:
        data = to_scim(body)
        kept = _without(data)
        if kept is not data:
            body = from_scim(kept, type(body))
    return attrs.evolve(op, patch=patch, body=body)


_DROPPED = object()


def _without(value: Any) -> Any:
    """A JSON value without its placeholders: the value itself when it holds none,
    ``_DROPPED`` when nothing is left of it."""
    if isinstance(value, str):
        return _DROPPED if is_placeholder(value) else value
    if isinstance(value, list):
        items = [_without(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        kept = [item for item in items if item is not _DROPPED]
        return kept or _DROPPED
    if isinstance(value, dict):
        found = {key: _without(item) for key, item in value.items()}
        if all(found[key] is item for key, item in value.items()):
            return value
        rest = {key: item for key, item in found.items() if item is not _DROPPED}
        return rest or _DROPPED
    return value


# -- order -------------------------------------------------------------------------------


def dependencies(operations: Sequence[Operation]) -> list[tuple[int, ...]]:
    """For each operation, the positions of the operations that must finish before it.

    An operation waits for the creates that produce the placeholders it uses (users
    before the groups that list them) and for the operation before it on the same
    resource (chunks of one group's members go one after the other).
    """
    creates: dict[str, int] = {}
    last_on: dict[str, int] = {}
    out: list[tuple[int, ...]] = []
    for position, op in enumerate(operations):
        needs = {creates[p] for p in op.placeholders if p in creates}
        before = last_on.get(op.target_id)
        if before is not None:
            needs.add(before)
        if op.kind == "create":
            creates[op.target_id] = position
        last_on[op.target_id] = position
        out.append(tuple(sorted(needs)))
    return out


# -- quarantine and scheduling -----------------------------------------------------------


def quarantine_reason(
    finished: int, failed: int, *, max_failure_rate: float, min_operations: int
) -> str | None:
    """Why writing must stop for this cycle, or None.

    ``finished`` writes have come back, ``failed`` of them failed. Once at least
    ``min_operations`` have finished, a failure rate above ``max_failure_rate`` (a
    fraction) quarantines the cycle: something is wrong with the target, and
    hammering it helps no one.
    """
    if finished < min_operations or finished == 0:
        return None
    rate = failed / finished
    if rate <= max_failure_rate:
        return None
    return (
        f"{failed} of {finished} writes failed ({rate:.0%}), over the "
        f"{max_failure_rate:.0%} the policy allows: writing stopped"
    )


def next_delay(
    interval: float,
    *,
    jitter: float,
    draw: float,
    backoff_level: int = 0,
    backoff_factor: float = 2.0,
    max_delay: float | None = None,
) -> float:
    """Seconds until the next cycle.

    ``interval`` stretched by ``backoff_factor`` per level of back-off (each cycle in a
    row that was quarantined or failed), capped at ``max_delay``, then moved by up to
    ``jitter`` (a fraction) either way; ``draw`` is a random number in [0, 1).
    """
    delay = interval * backoff_factor ** max(backoff_level, 0)
    if max_delay is not None:
        delay = min(delay, max(max_delay, interval))
    return max(0.0, delay * (1.0 + jitter * (2.0 * draw - 1.0)))


# -- fingerprints ------------------------------------------------------------------------


def fingerprint(desired: DesiredUser | DesiredGroup) -> str:
    """A short stable digest of what the source wants for one identity.

    Create-only values (an initial password drawn afresh each read) are left out:
    they are never compared, so they never make an identity "changed". References
    (a manager's source key) are in.
    """
    from ..models import DesiredGroup

    if isinstance(desired, DesiredGroup):
        data: Any = [to_scim(desired.group), sorted(desired.member_keys)]
    elif desired.references:
        data = [to_scim(desired.user), [list(pair) for pair in desired.references]]
    else:
        data = to_scim(desired.user)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# -- secrets -----------------------------------------------------------------------------

#: Sensitive values shorter than this are not searched for in messages (noise).
_MIN_SECRET_LENGTH = 4
MASK = "********"


def secrets_of(op: Operation, policy: Policy) -> tuple[str, ...]:
    """The sensitive values an operation carries (a password on create), to redact."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "schemas":
                    continue
                if not path:
                    child = key
                elif path.startswith("urn:") and path.lower() in extension_urns:
                    child = f"{path}:{key}"  # an extension's attribute (RFC 7644 §3.10)
                else:
                    child = f"{path}.{key}"
                walk(item, child)
        elif isinstance(value, list):
            for item in value:
                walk(item, path)
        elif (
            isinstance(value, str)
            and len(value) >= _MIN_SECRET_LENGTH
            and is_sensitive(path, op.resource_type, policy)
        ):
            found.append(value)

    extension_urns = {urn.lower() for urn in policy.schema.extension_urns(op.resource_type)}
    if op.body is not None:
        walk(to_scim(op.body), "")
    for patch_op in op.patch:
        walk(patch_op.value, patch_op.path or "")
    return tuple(sorted(set(found), key=len, reverse=True))


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret replaced by a mask.

    A secret of :data:`~scimsync.secrets.MIN_REDACTED_LENGTH` characters or more is
    masked as a :class:`~scimsync.secrets.Redactor` masks it: in any form a server
    echoes it in, and any run of that many characters of it (``password Init-Pa55wo…``).
    A shorter one only where it appears whole, as it is.
    """
    text = Redactor(secrets, mask=MASK)(text)
    for secret in secrets:
        if secret and len(secret) < MIN_REDACTED_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error carries, if any."""
    return exc.status if isinstance(exc, ScimHTTPError) else None


# -- after a crash -----------------------------------------------------------------------


def recover(
    state: SyncState,
    journal: Sequence[JournalEntry],
    actual: TargetState,
    policy: Policy,
) -> tuple[SyncState, list[str], list[JournalEntry]]:
    """The state a killed cycle would have saved, from its journal and the target now.

    Writes the journal records as done are taken as done. A create announced by an
    intent and never recorded may or may not have happened: the account holding its
    identity in ``actual`` (the one such account, owned by no other source key) is
    the one it made, and is linked. An intent whose identity is nowhere is returned
    as unresolved: that create may still land (a request in flight when the process
    died), so the next create of that identity must look it up first.

    Returns the state, notes for people, and the unresolved intents.
    """
    links = {kind: dict(state.ledger(kind).links) for kind in ("User", "Group")}
    owned = {kind: set(state.ledger(kind).owned) for kind in ("User", "Group")}
    deactivated = {kind: dict(state.ledger(kind).deactivated_at) for kind in ("User", "Group")}
    notes: list[str] = []
    done: set[tuple[str, str | None]] = set()
    for entry in journal:
        kind, target_id = entry.resource_type, entry.target_id
        if kind not in links or target_id is None:
            continue
        if entry.event == "created":
            done.add((kind, entry.source_key))
            if entry.source_key is not None:
                links[kind][entry.source_key] = target_id
            owned[kind].add(target_id)
        elif entry.event == "deactivated" and entry.at is not None:
            deactivated[kind][target_id] = entry.at
        elif entry.event == "deleted":
            for key in [k for k, t in links[kind].items() if t == target_id]:
                del links[kind][key]
            owned[kind].discard(target_id)
            deactivated[kind].pop(target_id, None)
    if done:
        notes.append(f"{len(done)} creates of an interrupted cycle recorded")
    unresolved: list[JournalEntry] = []
    linked = 0
    listed = {"User": actual.users, "Group": actual.groups}
    for entry in journal:
        kind, wanted_key = entry.resource_type, entry.source_key
        if entry.event != "intent" or kind not in links or wanted_key is None:
            continue
        if (kind, wanted_key) in done:
            continue
        found = [
            account
            for account in listed[kind]
            if matches_identity(kind, entry.identity, account, policy)
        ]
        if not found:
            unresolved.append(entry)
            continue
        if len(found) != 1 or found[0].id is None:
            continue
        account_id = found[0].id
        holder = next((k for k, t in links[kind].items() if t == account_id), None)
        if holder is not None and holder != wanted_key:
            continue
        links[kind][wanted_key] = account_id
        owned[kind].add(account_id)
        linked += 1
    if linked:
        notes.append(f"{linked} creates of an interrupted cycle found on the target and linked")
    if unresolved:
        notes.append(
            f"{len(unresolved)} creates of an interrupted cycle not found: each is looked "
            "up again before it is sent"
        )
    from ..engine import Ledger, SyncState

    def rebuilt(kind: str) -> Ledger:
        return Ledger(
            links=links[kind],
            owned=owned[kind],
            last_source_count=state.ledger(kind).last_source_count,
            deactivated_at=deactivated[kind],
        )

    return SyncState(users=rebuilt("User"), groups=rebuilt("Group")), notes, unresolved
