"""Apply a plan to a target state in memory: what the target will hold afterwards.

The same semantics as a SCIM service provider that does what it is asked: creates get
ids, PATCH operations apply (RFC 7644 §3.5.2), PUT replaces, DELETE removes (and a
deleted user leaves every group). Held operations are not applied. Pure: ids of created
resources come from their placeholders, see :func:`simulated_id`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import from_scim, to_scim
from ..errors import PlanError
from ..models import Group, PatchOperation, Resource, TargetState, User
from ._values import Placeholder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._plan import Plan

__all__ = ["simulate", "simulated_id"]


def simulated_id(placeholder: str) -> str:
    """The id :func:`simulate` gives the resource created for ``placeholder``.

    ``"sim-user-<source key>"`` or ``"sim-group-<source key>"``.
    """
    parsed = Placeholder.parse(placeholder)
    if parsed is None:
        raise PlanError(f"not a placeholder: {placeholder!r}")
    return f"sim-{parsed.resource_type.lower()}-{parsed.key}"


def simulate(plan: Plan, actual: TargetState) -> TargetState:
    """The target state after applying ``plan.operations`` to ``actual``, in memory.

    Raises :class:`~scimsync.errors.PlanError` when an operation refers to a resource
    ``actual`` does not hold (the plan was made against another target state).
    """
    users: dict[str, Resource] = {u.id: u for u in actual.users if u.id is not None}
    groups: dict[str, Resource] = {g.id: g for g in actual.groups if g.id is not None}
    ids: dict[str, str] = {}
    for planned in plan.operations:
        op = planned.resolve(ids)
        store = users if op.resource_type == "User" else groups
        if op.kind == "create":
            new_id = simulated_id(planned.target_id)
            if new_id in store:
                raise PlanError(f"simulated id {new_id!r} is already taken")
            ids[planned.target_id] = new_id
            assert op.body is not None
            store[new_id] = attrs.evolve(op.body, id=new_id)
            continue
        if op.target_id not in store:
            raise PlanError(
                f"{op.kind} of {op.resource_type} {op.target_id!r}: not in the target state"
            )
        if op.kind == "delete":
            del store[op.target_id]
            if op.resource_type == "User":
                _leave_groups(groups, op.target_id)
        elif op.body is not None:
            store[op.target_id] = attrs.evolve(op.body, id=op.target_id)
        else:
            store[op.target_id] = _apply_patch(store[op.target_id], op.patch)
    return TargetState(
        users=tuple(users.values()),
        groups=tuple(groups.values()),
        complete=actual.complete,
    )


def _leave_groups(groups: dict[str, Resource], user_id: str) -> None:
    for group_id, group in list(groups.items()):
        assert isinstance(group, Group)
        if group.members and any(m.value == user_id for m in group.members):
            groups[group_id] = attrs.evolve(
                group, members=tuple(m for m in group.members if m.value != user_id)
            )


def _apply_patch(resource: Resource, patch: Sequence[PatchOperation]) -> Resource:
    # Interim until scimsync.patch.apply_patch lands: the operations the engine writes.
    data: dict[str, Any] = to_scim(resource)
    for op in patch:
        path = op.path or ""
        if op.op == "add" and path == "members":
            members = data.setdefault("members", [])
            present = {m.get("value") for m in members}
            members.extend(m for m in op.value if m.get("value") not in present)
        elif op.op == "remove" and path.startswith("members[value eq "):
            value = json.loads(path[len("members[value eq ") : -1])
            data["members"] = [m for m in data.get("members", []) if m.get("value") != value]
        elif op.op == "replace" and path:
            data[path] = op.value
        else:  # pragma: no cover - interim
            raise PlanError(f"cannot simulate {op!r}")
    cls = User if isinstance(resource, User) else Group
    return from_scim(data, cls)
