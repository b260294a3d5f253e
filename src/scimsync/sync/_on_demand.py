"""Provisioning one identity on demand: what to read of the target, and what to send.

Rules this module keeps:

- **The source whole, the target narrowly.** Scope and duplicate keys are decided on
  the whole source (the provisioner reads it); of the target, only the accounts the
  identity may concern are read (:func:`read_for`): a user's linked account and
  those holding its match-key values, the users it refers to (its manager), and the
  groups it should be in; for a group, its own and the users (listed once, to find
  its members). The listing is marked incomplete, so nothing is planned away on it.
- **Nothing is taken away on demand.** :func:`plan_for` narrows the plan made on
  that partial target to the identity's own creates and updates, and, for a user,
  its additions to groups (with the creates of those groups). No deactivation,
  deletion or member removal: without the whole target that waits for the next
  cycle, and the explanation says so.
- **Pure where it can be.** :func:`plan_for` and :func:`find_record` take values and
  return values; :func:`read_for` only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import attrs

from ..engine import PlannedChange
from ..engine._changes import add_members_patch
from ..models import TargetState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..engine import Plan, Policy, SyncState
    from ..models import DesiredState, Group, User
    from ..targets import GroupTarget, UserTarget

__all__ = ["find_record", "plan_for", "read_for"]


def find_record(records: Sequence[Any], key: str) -> Any:
    """The source record with ``key`` (a user's before any other kind's), or None."""
    return next(
        (r for r in records if getattr(r, "key", None) == key and getattr(r, "kind", "") == "user"),
        None,
    ) or next((r for r in records if getattr(r, "key", None) == key), None)


async def read_for(
    target: UserTarget,
    key: str,
    resource_type: str,
    *,
    desired: DesiredState,
    state: SyncState,
    policy: Policy,
) -> tuple[TargetState, int]:
    """The accounts one identity may concern, and how many reads that took: a user's
    own and its groups, or a group's own and the users (its members)."""
    from ..errors import NotFoundError

    # Group lookups happen only for a mapping that makes groups, whose target was
    # checked to have the group methods when the provisioner was made.
    groups_of = cast("GroupTarget", target)
    reads = 0
    users: dict[str, User] = {}
    groups: dict[str, Group] = {}

    async def lookups(kind: str, resource: Any, linked: str | None) -> None:
        nonlocal reads
        into: dict[str, Any] = users if kind == "User" else groups
        if linked is not None:
            reads += 1
            try:
                found = await (
                    target.get_user(linked) if kind == "User" else groups_of.get_group(linked)
                )
            except NotFoundError:
                pass
            else:
                into[found.id or ""] = found
        paths = policy.match_keys if kind == "User" else policy.group_match_keys
        from ..codec import to_scim
        from ..engine._changes import value_at

        data = to_scim(resource)
        for path in paths:
            value = value_at(data, path, policy.schema.extension_urns(kind))
            if not isinstance(value, str):
                continue
            reads += 1
            found_many = await (
                target.find_users(path, value)
                if kind == "User"
                else groups_of.find_groups(path, value)
            )
            for account in found_many:
                if account.id is not None:
                    into.setdefault(account.id, account)

    if resource_type == "User":
        wanted = next(u for u in desired.users if u.key == key)
        await lookups("User", wanted.user, state.users.links.get(key))
        # The users it refers to (its manager), to write their ids.
        referred = {ref_key for _, ref_key in wanted.references if ref_key != key}
        for other in desired.users:
            if other.key in referred:
                await lookups("User", other.user, state.users.links.get(other.key))
        for group in desired.groups:
            if key in group.member_keys:
                await lookups("Group", group.group, state.groups.links.get(group.key))
    else:
        wanted_group = next(g for g in desired.groups if g.key == key)
        await lookups("Group", wanted_group.group, state.groups.links.get(key))
        # Its members may be anyone: the users are listed (once), not looked up one by one.
        reads += 1
        listed = await target.list_users()
        users.update((u.id, u) for u in listed.resources if u.id is not None)
    return TargetState(
        users=tuple(users.values()), groups=tuple(groups.values()), complete=False
    ), reads


def plan_for(whole: Plan, key: str, resource_type: str, policy: Policy) -> Plan:
    """The operations of ``whole`` for one identity; group changes narrowed to it."""
    links = [
        link
        for link in whole.links
        if link.resource_type == resource_type and link.source_key == key
    ]
    operations = []
    if resource_type == "Group":
        operations = [
            op for op in whole.operations if op.resource_type == "Group" and op.source_key == key
        ]
        return attrs.evolve(whole, operations=operations, held=(), links=links, source_counts={})
    ref = next((link.target_id for link in links), None)
    user_ops = [
        op for op in whole.operations if op.resource_type == "User" and op.source_key == key
    ]
    if ref is None:
        ref = next((op.target_id for op in user_ops), None)
    group_creates: dict[str, Any] = {}
    member_ops = []
    if ref is not None and policy.update_method == "patch":
        member_ops = [
            attrs.evolve(
                op,
                members=(ref,),
                patch=add_members_patch([ref]),
                reason="1 member to add",
                changes=(PlannedChange(path="members", new=[key]),),
            )
            for op in whole.operations
            if op.kind == "add_members" and ref in op.members
        ]
        wanted_groups = {op.target_id for op in member_ops}
        for op in whole.operations:
            if (
                op.resource_type == "Group"
                and op.kind == "create"
                and op.target_id in wanted_groups
            ):
                group_creates[op.target_id] = op
        links.extend(
            link
            for link in whole.links
            if link.resource_type == "Group" and link.target_id in group_creates
        )
    operations = [*user_ops, *group_creates.values(), *member_ops]
    return attrs.evolve(whole, operations=operations, held=(), links=links, source_counts={})
