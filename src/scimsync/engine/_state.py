"""What earlier cycles leave for the engine: links, ownership, sizes, deactivation times.

A :class:`SyncState` is a frozen value. The runner persists it (``to_dict`` gives plain
JSON data) and hands it back to the next :func:`~scimsync.engine.plan`; after applying
a plan it computes the next one with :meth:`SyncState.after`. ``state=None`` in
``plan`` means a first cycle: nothing linked, nothing owned but what the policy's
``external_id_prefix`` claims.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args

import attrs

from ..errors import PlanError
from ._values import is_placeholder

if TYPE_CHECKING:
    from ._plan import Plan
    from ._values import Operation

__all__ = ["CONFIRMATIONS", "Ledger", "SyncState", "Unkept", "UnkeptHow"]

_FORMAT = 1

UnkeptHow = Literal["dropped", "changed", "not_cleared"]
UnkeptHow.__doc__ = (
    "How a target failed to keep a value it accepted: it ``dropped`` it (the answer holds "
    "nothing there), ``changed`` it (the answer holds another value), or did not clear it "
    "(``not_cleared``: a removal answered with success, the value still there)."
)

#: How often a path must be seen not kept before the engine leaves it out: once can
#: be someone else's write between ours and the read-back, twice is the target.
CONFIRMATIONS = 2


@attrs.frozen(kw_only=True)
class Unkept:
    """What is known of one path a target does not keep (see :attr:`Ledger.unkept`).

    ``how`` it fails to keep it, how often that was ``seen``, and ``since`` when (the
    first time). A path counts once it has been seen :data:`CONFIRMATIONS` times.
    """

    how: UnkeptHow
    seen: int = 1
    since: datetime | None = None

    @property
    def confirmed(self) -> bool:
        """True once seen often enough for the engine to act on it."""
        return self.seen >= CONFIRMATIONS


def _frozen_mapping(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if isinstance(values, MappingProxyType):
        return values
    return MappingProxyType(dict(values or {}))


def _frozen_ids(values: Iterable[str] | None) -> frozenset[str]:
    return values if isinstance(values, frozenset) else frozenset(values or ())


@attrs.frozen(kw_only=True)
class Ledger:
    """What the engine remembers about one resource type (users, or groups).

    - ``links``: source key → target id, the strongest match there is;
    - ``owned``: target ids the engine created or adopted (every linked id is owned);
    - ``last_source_count``: how many records the source had in the last trusted cycle,
      for the ``source_shrink`` guard;
    - ``deactivated_at``: target id → when the engine deactivated it, for
      ``delete_after_days``;
    - ``unkept``: attribute path → :class:`Unkept`, the paths the target was seen
      not to keep. Confirmed ones are left out of every comparison (``dropped``,
      ``changed``) or never cleared (``not_cleared``), so a target that does not keep
      what it is told is not sent the same write on every cycle.
    """

    links: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    owned: frozenset[str] = attrs.field(factory=frozenset, converter=_frozen_ids)
    last_source_count: int | None = None
    deactivated_at: Mapping[str, datetime] = attrs.field(factory=dict, converter=_frozen_mapping)
    unkept: Mapping[str, Unkept] = attrs.field(factory=dict, converter=_frozen_mapping)

    def __attrs_post_init__(self) -> None:
        linked = set(self.links.values())
        if not linked <= self.owned:
            object.__setattr__(self, "owned", self.owned | linked)

    def owns(self, target_id: str) -> bool:
        """True when the engine created or adopted ``target_id``."""
        return target_id in self.owned

    def ignored_paths(self) -> tuple[str, ...]:
        """The confirmed paths the target drops or changes: never compared; never sent,
        but for those it changes on a create (see :meth:`changed_paths`)."""
        return tuple(
            sorted(
                path
                for path, fact in self.unkept.items()
                if fact.confirmed and fact.how != "not_cleared"
            )
        )

    def changed_paths(self) -> tuple[str, ...]:
        """The confirmed paths the target changes (normalises): among the ignored ones,
        still sent when a user is created, so new accounts get them."""
        return tuple(
            sorted(
                path
                for path, fact in self.unkept.items()
                if fact.confirmed and fact.how == "changed"
            )
        )

    def uncleared_paths(self) -> tuple[str, ...]:
        """The confirmed paths the target does not clear: never cleared."""
        return tuple(
            sorted(
                path
                for path, fact in self.unkept.items()
                if fact.confirmed and fact.how == "not_cleared"
            )
        )

    def learn(self, seen: Iterable[tuple[str, UnkeptHow]], now: datetime | None) -> Ledger:
        """This ledger with the paths ``seen`` not kept (once per pair) counted in."""
        unkept = dict(self.unkept)
        for path, how in seen:
            known = unkept.get(path)
            if known is None or known.how != how:
                unkept[path] = Unkept(how=how, seen=1, since=now)
            else:
                unkept[path] = attrs.evolve(known, seen=known.seen + 1)
        return attrs.evolve(self, unkept=unkept)

    def forget(self, paths: Iterable[str] | None = None) -> Ledger:
        """This ledger without the ``paths`` it knows the target does not keep (all: None)."""
        if paths is None:
            return attrs.evolve(self, unkept={})
        gone = {path.lower() for path in paths}
        return attrs.evolve(
            self, unkept={p: f for p, f in self.unkept.items() if p.lower() not in gone}
        )


def _ledger_to_dict(ledger: Ledger) -> dict[str, Any]:
    return {
        "links": dict(sorted(ledger.links.items())),
        "owned": sorted(ledger.owned),
        "lastSourceCount": ledger.last_source_count,
        "deactivatedAt": {
            key: when.isoformat() for key, when in sorted(ledger.deactivated_at.items())
        },
        "unkept": {
            path: {
                "how": fact.how,
                "seen": fact.seen,
                "since": fact.since.isoformat() if fact.since is not None else None,
            }
            for path, fact in sorted(ledger.unkept.items())
        },
    }


def _ledger_from_dict(data: Any, where: str, problems: list[str]) -> Ledger:
    if not isinstance(data, Mapping):
        problems.append(f"{where}: expected an object")
        return Ledger()
    links = data.get("links") or {}
    if not isinstance(links, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in links.items()
    ):
        problems.append(f"{where}.links: expected an object of strings")
        links = {}
    owned = data.get("owned") or []
    if not isinstance(owned, list) or not all(isinstance(v, str) for v in owned):
        problems.append(f"{where}.owned: expected a list of strings")
        owned = []
    count = data.get("lastSourceCount")
    if count is not None and (type(count) is not int or count < 0):
        problems.append(f"{where}.lastSourceCount: expected a non-negative integer")
        count = None
    deactivated: dict[str, datetime] = {}
    raw = data.get("deactivatedAt") or {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}.deactivatedAt: expected an object")
        raw = {}
    for key, text in raw.items():
        when = _parse_datetime(text)
        if when is None:
            problems.append(f"{where}.deactivatedAt.{key}: expected an aware ISO 8601 time")
        else:
            deactivated[str(key)] = when
    return Ledger(
        links=links,
        owned=owned,
        last_source_count=count,
        deactivated_at=deactivated,
        unkept=_unkept_from(data.get("unkept") or {}, f"{where}.unkept", problems),
    )


def _unkept_from(raw: Any, where: str, problems: list[str]) -> dict[str, Unkept]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected an object")
        return {}
    unkept: dict[str, Unkept] = {}
    for path, fact in raw.items():
        if not isinstance(fact, Mapping) or fact.get("how") not in get_args(UnkeptHow):
            problems.append(f"{where}.{path}: expected how: {list(get_args(UnkeptHow))}")
            continue
        seen = fact.get("seen", 1)
        if type(seen) is not int or seen < 1:
            problems.append(f"{where}.{path}.seen: expected a positive integer")
            continue
        since = fact.get("since")
        unkept[str(path)] = Unkept(
            how=fact["how"], seen=seen, since=_parse_datetime(since) if since else None
        )
    return unkept


def _parse_datetime(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


@attrs.frozen(kw_only=True)
class SyncState:
    """Everything earlier cycles recorded, per resource type: ``users`` and ``groups``."""

    users: Ledger = attrs.field(factory=Ledger)
    groups: Ledger = attrs.field(factory=Ledger)

    def ledger(self, resource_type: str) -> Ledger:
        """The ledger of ``"User"`` or ``"Group"``."""
        return self.users if resource_type == "User" else self.groups

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, keys sorted: what a state store writes."""
        return {
            "format": _FORMAT,
            "users": _ledger_to_dict(self.users),
            "groups": _ledger_to_dict(self.groups),
        }

    @classmethod
    def from_dict(cls, data: Any) -> SyncState:
        """Read what :meth:`to_dict` wrote; raises :class:`~scimsync.errors.PlanError`."""
        if not isinstance(data, Mapping):
            raise PlanError(f"invalid sync state: expected an object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise PlanError(f"invalid sync state: unknown format {data.get('format')!r}")
        problems: list[str] = []
        users = _ledger_from_dict(data.get("users", {}), "$.users", problems)
        groups = _ledger_from_dict(data.get("groups", {}), "$.groups", problems)
        if problems:
            raise PlanError("invalid sync state: " + "; ".join(problems))
        return cls(users=users, groups=groups)

    def learn(
        self, seen: Iterable[tuple[str, str, UnkeptHow]], now: datetime | None = None
    ) -> SyncState:
        """This state with ``(resource type, path, how)`` triples of paths the target did
        not keep counted into the ledgers (see :meth:`Ledger.learn`)."""
        by_type: dict[str, list[tuple[str, UnkeptHow]]] = {}
        for resource_type, path, how in seen:
            by_type.setdefault(resource_type, []).append((path, how))
        if not by_type:
            return self
        return SyncState(
            users=self.users.learn(by_type.get("User", ()), now),
            groups=self.groups.learn(by_type.get("Group", ()), now),
        )

    def forget(
        self, resource_type: str | None = None, paths: Iterable[str] | None = None
    ) -> SyncState:
        """This state without what it knows the target does not keep: of one resource
        type (``"User"``, ``"Group"``; None: both), at ``paths`` (None: every path)."""
        listed = None if paths is None else tuple(paths)
        return SyncState(
            users=self.users.forget(listed) if resource_type in (None, "User") else self.users,
            groups=self.groups.forget(listed) if resource_type in (None, "Group") else self.groups,
        )

    def after(
        self,
        plan: Plan,
        resolved: Mapping[str, str] | None = None,
        *,
        failed: Collection[Operation] = (),
    ) -> SyncState:
        """The state once ``plan`` has been applied.

        ``resolved`` maps the placeholders of created resources to their new ids (a
        create missing from it is taken as not done). Operations in ``failed`` left
        no trace: their links, deactivation times and deletions are not recorded.
        Held operations were not applied. Deactivation times come from ``plan.now``.
        """
        ids = dict(resolved or {})
        failed_ops = list(failed)
        return SyncState(
            users=_advance(self.users, "User", plan, ids, failed_ops),
            groups=_advance(self.groups, "Group", plan, ids, failed_ops),
        )


def _advance(
    ledger: Ledger,
    resource_type: str,
    plan: Plan,
    ids: Mapping[str, str],
    failed: list[Operation],
) -> Ledger:
    links = dict(ledger.links)
    owned = set(ledger.owned)
    deactivated = dict(ledger.deactivated_at)
    failed_targets = {(op.kind, op.target_id) for op in failed if op.resource_type == resource_type}
    for link in plan.links:
        if link.resource_type != resource_type:
            continue
        target = ids.get(link.target_id, link.target_id)
        if is_placeholder(target) or ("create", link.target_id) in failed_targets:
            continue
        links[link.source_key] = target
        owned.add(target)
    deleted: set[str] = set()
    for op in _applied(plan.operations, resource_type, failed):
        target = ids.get(op.target_id, op.target_id)
        if op.kind == "deactivate" and plan.now is not None:
            deactivated[target] = plan.now.astimezone(timezone.utc)
        elif op.kind in ("reactivate", "update") and _sets_active(op):
            deactivated.pop(target, None)
        elif op.kind == "delete":
            deleted.add(target)
    if deleted:
        links = {key: target for key, target in links.items() if target not in deleted}
        owned -= deleted
        for target in deleted:
            deactivated.pop(target, None)
    count = plan.source_counts.get(resource_type, ledger.last_source_count)
    return Ledger(
        links=links,
        owned=owned,
        last_source_count=count,
        deactivated_at=deactivated,
        unkept=ledger.unkept,
    )


def _applied(
    operations: Iterable[Operation], resource_type: str, failed: list[Operation]
) -> Iterable[Operation]:
    # Looked up by what tells a plan's operations apart, not by a scan of the list:
    # a cycle that stopped early passes thousands of operations here.
    skipped = {_operation_key(op) for op in failed}
    for op in operations:
        if op.resource_type == resource_type and _operation_key(op) not in skipped:
            yield op


def _operation_key(op: Operation) -> tuple[str, str, str, str | None, tuple[str, ...]]:
    """What no two operations of one plan share (chunks of one group differ by members)."""
    return (op.kind, op.resource_type, op.target_id, op.source_key, op.members)


def _sets_active(op: Operation) -> bool:
    if op.kind == "reactivate":
        return True
    return any(change.path == "active" and change.new is True for change in op.changes)
