"""The :class:`Plan`: what one cycle will write, why, and what it held back.

A plan is a frozen value. It serialises to JSON and back exactly
(``Plan.from_json(p.to_json()) == p``), and the same inputs to
:func:`~scimsync.engine.plan` give the same bytes, so plans can be stored, reviewed,
diffed and applied later.

The JSON holds what applying needs, create-only values (an initial password) included:
keep stored plans as safe as the credentials of the target. :meth:`Plan.render` is what
people read, and it masks sensitive values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from ..codec import from_scim, to_scim
from ..errors import PlanError, ScimSyncError
from ..models import Group, PatchOperation, User
from ..models._base import to_tuple_or_empty
from ._state import _parse_datetime
from ._values import (
    OPERATION_KINDS,
    Conflict,
    GuardTrip,
    Link,
    Operation,
    PlannedChange,
    Protection,
    Skip,
    _datetime_text,
)

__all__ = ["Plan"]

_FORMAT = "scimsync-plan/1"


def _frozen_counts(values: Mapping[str, int] | None) -> Mapping[str, int]:
    if isinstance(values, MappingProxyType):
        return values
    return MappingProxyType(dict(sorted((values or {}).items())))


@attrs.frozen(kw_only=True)
class Plan:
    """The operations one cycle will apply, in order, and everything it decided not to do.

    - ``operations``: what to apply, in order (user creates first, deprovisions last).
    - ``held``: operations a tripped guard held back; never applied unless forced.
    - ``guards``: the guards that tripped (forced or not), with their reasons.
    - ``conflicts``: identities that could not be matched without guessing.
    - ``skipped``: resources deliberately left alone, with the reason.
    - ``protected``: source identities whose records have an issue, and the accounts
      protected for them (never deactivated, deleted or removed from a group), with
      the reason (see :class:`Protection`).
    - ``links``: source keys newly tied to target resources (creates, first matches,
      adoptions), for :meth:`SyncState.after`.
    - ``source_counts``: source sizes the next state should remember (empty when the
      source cannot be trusted this cycle).
    - ``now``: the time the plan was made for (the ``now`` given to ``plan``).
    - ``source_issues``: source records the mapping could not use, or used leaving a
      part out, as text (``str`` of each :class:`~scimsync.mapping.RecordIssue`). The
      engine plans from a desired state and leaves it empty; the
      :class:`~scimsync.Provisioner` fills it, so a review never hides a bad record.
    - ``not_compared``: the attribute paths left out of every comparison on this
      target, and why (``"User title: the target drops it"``, ``"User nickName:
      Policy.ignore_paths"``), and those never cleared: what the plan cannot see.
    - ``target_notes``: what the target was found to do against RFC 7644 and how it
      is met (PATCH refused for groups: PUT; a listing without ``totalResults``), in
      words. Filled by the :class:`~scimsync.Provisioner`, as ``source_issues``.
    """

    operations: tuple[Operation, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    held: tuple[Operation, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    guards: tuple[GuardTrip, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    conflicts: tuple[Conflict, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    skipped: tuple[Skip, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    links: tuple[Link, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    source_counts: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    now: datetime | None = None
    source_issues: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    not_compared: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    target_notes: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    protected: tuple[Protection, ...] = attrs.field(default=(), converter=to_tuple_or_empty)

    @property
    def blocked(self) -> bool:
        """True when a guard tripped and was not forced: some operations are held."""
        return any(not trip.forced for trip in self.guards)

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to apply and nothing held."""
        return not self.operations and not self.held

    def summary(self) -> dict[str, int]:
        """Operations to apply, counted by kind, in :data:`OPERATION_KINDS` order.

        Kinds with no operation are left out; ``"held"`` counts held operations and
        ``"conflicts"`` the conflicts, when there are any.
        """
        counts = dict.fromkeys(OPERATION_KINDS, 0)
        for op in self.operations:
            counts[op.kind] += 1
        out = {kind: count for kind, count in counts.items() if count}
        if self.held:
            out["held"] = len(self.held)
        if self.conflicts:
            out["conflicts"] = len(self.conflicts)
        return out

    def resolve(self, ids: Mapping[str, str]) -> Plan:
        """This plan with placeholders replaced by real ids (see :class:`Placeholder`)."""
        return attrs.evolve(
            self,
            operations=tuple(op.resolve(ids) for op in self.operations),
            held=tuple(op.resolve(ids) for op in self.held),
            links=tuple(
                attrs.evolve(link, target_id=ids.get(link.target_id, link.target_id))
                for link in self.links
            ),
        )

    def render(self, *, color: bool = False) -> str:
        """A review of the plan for people, like a Terraform plan; sensitive values masked."""
        from ._render import render

        return render(self, color=color)

    def __repr__(self) -> str:
        # Short whatever the size of the plan: render() and to_json() hold the rest.
        counts = " ".join(f"{kind}={count}" for kind, count in self.summary().items())
        return f"<Plan {counts or 'empty'}{' blocked' if self.blocked else ''}>"

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON data (what :meth:`to_json` writes)."""
        return {
            "format": _FORMAT,
            "now": _datetime_text(self.now) if self.now is not None else None,
            "operations": [_operation_to_dict(op) for op in self.operations],
            "held": [_operation_to_dict(op) for op in self.held],
            "guards": [g.to_dict() for g in self.guards],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "skipped": [s.to_dict() for s in self.skipped],
            "links": [
                {
                    "resourceType": link.resource_type,
                    "sourceKey": link.source_key,
                    "targetId": link.target_id,
                    "matchedBy": link.matched_by,
                    "adopted": link.adopted,
                }
                for link in self.links
            ],
            "sourceCounts": dict(self.source_counts),
            "sourceIssues": list(self.source_issues),
            "notCompared": list(self.not_compared),
            "targetNotes": list(self.target_notes),
            "protected": [p.to_dict() for p in self.protected],
        }

    def to_json(self) -> str:
        """The plan as JSON text: keys sorted, no spaces; same plan, same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Read what :meth:`to_dict` wrote; raises :class:`~scimsync.errors.PlanError`."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise PlanError(f"not a scimsync plan (expected format {_FORMAT!r})")
        try:
            now = data.get("now")
            parsed_now = None if now is None else _parse_datetime(now)
            if now is not None and parsed_now is None:
                raise ValueError(f"now: not an aware ISO 8601 time: {now!r}")
            return cls(
                operations=[_operation_from_dict(op) for op in data["operations"]],
                held=[_operation_from_dict(op) for op in data["held"]],
                guards=[
                    GuardTrip(
                        name=_str(g["name"]),
                        reason=_str(g["reason"]),
                        forced=_bool(g["forced"]),
                        held=_int(g["held"]),
                    )
                    for g in data["guards"]
                ],
                conflicts=[
                    Conflict(
                        kind=_str(c["kind"]),
                        resource_type=_str(c["resourceType"]),
                        source_keys=[_str(k) for k in c["sourceKeys"]],
                        target_ids=[_str(t) for t in c["targetIds"]],
                        detail=_str(c["detail"]),
                    )
                    for c in data["conflicts"]
                ],
                skipped=[
                    Skip(
                        resource_type=_str(s["resourceType"]),
                        source_key=_opt_str(s["sourceKey"]),
                        target_id=_opt_str(s["targetId"]),
                        reason=_str(s["reason"]),
                    )
                    for s in data["skipped"]
                ],
                links=[
                    Link(
                        resource_type=_str(link["resourceType"]),
                        source_key=_str(link["sourceKey"]),
                        target_id=_str(link["targetId"]),
                        matched_by=_str(link["matchedBy"]),
                        adopted=_bool(link["adopted"]),
                    )
                    for link in data["links"]
                ],
                source_counts={_str(k): _int(v) for k, v in data["sourceCounts"].items()},
                now=parsed_now,
                source_issues=[_str(i) for i in data.get("sourceIssues", ())],
                not_compared=[_str(i) for i in data.get("notCompared", ())],
                target_notes=[_str(i) for i in data.get("targetNotes", ())],
                protected=[
                    Protection(
                        resource_type=_str(p["resourceType"]),
                        source_key=_str(p["sourceKey"]),
                        target_ids=[_str(t) for t in p["targetIds"]],
                        reason=_str(p["reason"]),
                    )
                    for p in data.get("protected", ())
                ],
            )
        except PlanError:
            raise
        except (ScimSyncError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"invalid plan: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """Read what :meth:`to_json` wrote; raises :class:`~scimsync.errors.PlanError`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlanError(f"invalid plan: not JSON: {exc}") from exc
        return cls.from_dict(data)


def _operation_to_dict(op: Operation) -> dict[str, Any]:
    return {
        "kind": op.kind,
        "resourceType": op.resource_type,
        "targetId": op.target_id,
        "sourceKey": op.source_key,
        "reason": op.reason,
        "patch": [_patch_to_dict(p) for p in op.patch],
        "body": to_scim(op.body) if op.body is not None else None,
        "members": list(op.members),
        "changes": [c.to_dict() for c in op.changes],
    }


def _patch_to_dict(op: PatchOperation) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op.op}
    if op.path is not None:
        out["path"] = op.path
    if op.value is not None:
        out["value"] = op.value
    return out


def _operation_from_dict(data: Mapping[str, Any]) -> Operation:
    resource_type = _str(data["resourceType"])
    body = data["body"]
    model: User | Group | None = None
    if body is not None:
        model = from_scim(body, User) if resource_type == "User" else from_scim(body, Group)
    return Operation(
        kind=_str(data["kind"]),
        resource_type=resource_type,
        target_id=_str(data["targetId"]),
        source_key=_opt_str(data["sourceKey"]),
        reason=_str(data["reason"]),
        patch=[
            PatchOperation(op=_str(p["op"]), path=_opt_str(p.get("path")), value=p.get("value"))
            for p in data["patch"]
        ],
        body=model,
        members=[_str(m) for m in data["members"]],
        changes=[
            PlannedChange(
                path=_str(c["path"]),
                old=c["old"],
                new=c["new"],
                sensitive=_bool(c["sensitive"]),
                old_key=_opt_str(c.get("oldKey")),
                new_key=_opt_str(c.get("newKey")),
            )
            for c in data["changes"]
        ],
    )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value
