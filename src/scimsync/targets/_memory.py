"""A target held in memory, with the semantics of a SCIM service provider."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..codec import to_scim
from ..errors import BadRequestError, ConflictResponseError, NotFoundError, PatchError
from ..models import Group, GroupMembership, Member, Meta, PatchOperation, TargetState, User
from ..patch import apply_patch
from ..schema import CORE_SCHEMAS, SchemaTable
from ._overlay import overlay
from ._protocol import GroupUpdate, TargetCapabilities, TargetListing, UserUpdate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = ["MemoryCall", "MemoryTarget"]

R = TypeVar("R", User, Group)


@attrs.frozen(kw_only=True)
class MemoryCall:
    """One request a SCIM target would have received: ``("PATCH", "Groups", id)``.

    ``count`` is the number of items the request carried (members added or removed,
    PATCH operations), so tests can assert exactly what a sync sent.
    """

    method: str
    resource: str
    id: str | None = None
    count: int = 1


def _now() -> datetime:
    return datetime.now(timezone.utc)


class MemoryTarget:
    """A :class:`Target` held in memory: for tests, previews and dry runs.

    It behaves like a SCIM service provider: ids are assigned on create (readOnly
    attributes sent are ignored); ``userName`` is required and unique
    case-insensitively, a group's ``displayName`` likewise, and a clash raises
    :class:`~scimsync.errors.ConflictResponseError` with ``scim_type="uniqueness"``
    as the SCIM answer would; unknown ids raise
    :class:`~scimsync.errors.NotFoundError`; group members must exist; deleting a
    user removes it from its groups; ``User.groups`` is computed; ``meta.version``
    changes on every write. Updates take PATCH operations (applied with
    :func:`scimsync.patch.apply_patch`) or a resource whose set attributes replace
    the current ones.

    ``calls`` records the requests a SCIM target would have received, with member
    additions and removals split by ``capabilities.max_members_per_operation``.
    """

    def __init__(
        self,
        users: Iterable[User] = (),
        groups: Iterable[Group] = (),
        *,
        capabilities: TargetCapabilities | None = None,
        schema: SchemaTable = CORE_SCHEMAS,
        id_factory: Callable[[], str] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._capabilities = capabilities or TargetCapabilities(etag=True)
        self._schema = schema
        self._new_id = id_factory or (lambda: str(uuid.uuid4()))
        self._clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._groups: dict[str, Group] = {}
        self._version = 0
        self.calls: list[MemoryCall] = []
        for user in users:
            self._insert_user(user)
        for group in groups:
            self._insert_group(group)
        self.calls.clear()

    def __repr__(self) -> str:
        return f"MemoryTarget(<{len(self._users)} users>, <{len(self._groups)} groups>)"

    # -- inspection (sync) ----------------------------------------------------------------

    def state(self) -> TargetState:
        """Everything the target holds, as the engine sees it (always complete)."""
        with self._lock:
            return TargetState(
                users=tuple(self._with_groups(u) for u in self._users.values()),
                groups=tuple(self._groups.values()),
            )

    def requests(self, method: str | None = None, resource: str | None = None) -> int:
        """How many requests of ``method`` on ``resource`` were made (None: any)."""
        return sum(
            1
            for call in self.calls
            if (method is None or call.method == method)
            and (resource is None or call.resource == resource)
        )

    # -- the Target protocol ------------------------------------------------------------

    async def capabilities(self) -> TargetCapabilities:
        """The capabilities given when the target was made."""
        return self._capabilities

    async def schema(self) -> SchemaTable:
        """The schema table given when the target was made (the RFC 7643 core ones)."""
        return self._schema

    async def list_users(self) -> TargetListing[User]:
        """Every user, with ``groups`` filled in."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Users"))
            return TargetListing(
                resources=tuple(self._with_groups(u) for u in self._users.values())
            )

    async def list_groups(self) -> TargetListing[Group]:
        """Every group, with its members (``()`` for a group that has none)."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Groups"))
            return TargetListing(resources=_with_empty_members(self._groups.values()))

    async def get_user(self, user_id: str) -> User:
        """The user with id ``user_id``."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Users", id=user_id))
            return self._with_groups(self._user(user_id))

    async def get_group(self, group_id: str) -> Group:
        """The group with id ``group_id``."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Groups", id=group_id))
            return self._group(group_id)

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        """Users whose ``attribute`` equals ``value``, compared per the schema's caseExact."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Users"))
            found = _matching(self._users.values(), "User", attribute, value)
            return tuple(self._with_groups(u) for u in found)

    async def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value``."""
        with self._lock:
            self.calls.append(MemoryCall(method="GET", resource="Groups"))
            return tuple(_matching(self._groups.values(), "Group", attribute, value))

    async def create_user(self, user: User) -> User:
        """Create ``user`` with a new id."""
        with self._lock:
            self.calls.append(MemoryCall(method="POST", resource="Users"))
            return self._with_groups(self._insert_user(user))

    async def create_group(self, group: Group) -> Group:
        """Create ``group`` with a new id; its members must exist."""
        with self._lock:
            self.calls.append(MemoryCall(method="POST", resource="Groups"))
            return self._insert_group(group)

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        """Apply PATCH operations, or set the attributes ``change`` holds."""
        with self._lock:
            self.calls.append(_update_call("Users", user_id, change))
            current = self._user(user_id)
            updated = _changed(current, change)
            self._check_user_name(updated, user_id)
            stored = self._stamp(updated, current)
            self._users[user_id] = stored
            return self._with_groups(stored)

    async def update_group(self, group_id: str, change: GroupUpdate) -> Group | None:
        """Apply PATCH operations, or set the attributes ``change`` holds."""
        with self._lock:
            self.calls.append(_update_call("Groups", group_id, change))
            current = self._group(group_id)
            updated = _changed(current, change)
            self._check_group(updated, group_id)
            if updated.members:
                before = {m.value for m in current.members or ()}
                self._check_members(
                    [m.value or "" for m in updated.members if m.value not in before]
                )
                members = tuple(self._member(m.value or "") for m in updated.members)
                updated = attrs.evolve(updated, members=members)
            stored = self._stamp(updated, current)
            self._groups[group_id] = stored
            return stored

    async def deactivate_user(self, user_id: str) -> None:
        """Set ``active`` to false."""
        await self.update_user(user_id, [PatchOperation(op="replace", path="active", value=False)])

    async def reactivate_user(self, user_id: str) -> None:
        """Set ``active`` to true."""
        await self.update_user(user_id, [PatchOperation(op="replace", path="active", value=True)])

    async def delete_user(self, user_id: str) -> None:
        """Delete the user and remove it from every group."""
        with self._lock:
            self.calls.append(MemoryCall(method="DELETE", resource="Users", id=user_id))
            self._user(user_id)
            del self._users[user_id]
            for group_id, group in list(self._groups.items()):
                members = group.members or ()
                if any(m.value == user_id for m in members):
                    kept = tuple(m for m in members if m.value != user_id)
                    self._groups[group_id] = self._stamp(attrs.evolve(group, members=kept), group)

    async def delete_group(self, group_id: str) -> None:
        """Delete the group."""
        with self._lock:
            self.calls.append(MemoryCall(method="DELETE", resource="Groups", id=group_id))
            self._group(group_id)
            del self._groups[group_id]

    async def add_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Add members (existing users or groups); members already there stay once."""
        with self._lock:
            group = self._group(group_id)
            self._log_member_calls(group_id, member_ids)
            self._check_members(member_ids)
            members = list(group.members or ())
            present = {m.value for m in members}
            for member_id in member_ids:
                if member_id not in present:
                    members.append(self._member(member_id))
                    present.add(member_id)
            self._groups[group_id] = self._stamp(attrs.evolve(group, members=members), group)

    async def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members; ids that are not members are ignored."""
        with self._lock:
            group = self._group(group_id)
            self._log_member_calls(group_id, member_ids)
            gone = set(member_ids)
            kept = tuple(m for m in group.members or () if m.value not in gone)
            self._groups[group_id] = self._stamp(attrs.evolve(group, members=kept), group)

    # -- internals ------------------------------------------------------------------------

    def _user(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise NotFoundError(404, detail=f"no user with id {user_id!r}")
        return user

    def _group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            raise NotFoundError(404, detail=f"no group with id {group_id!r}")
        return group

    def _insert_user(self, user: User) -> User:
        new_id = self._fresh_id()
        self._check_user_name(user, new_id)
        stored = self._stamp(attrs.evolve(user, id=new_id, groups=None), None)
        self._users[new_id] = stored
        return stored

    def _insert_group(self, group: Group) -> Group:
        new_id = self._fresh_id()
        self._check_group(group, new_id)
        members = group.members
        if members is not None:
            self._check_members([m.value or "" for m in members])
            members = tuple(self._member(m.value or "") for m in members)
        stored = self._stamp(attrs.evolve(group, id=new_id, members=members), None)
        self._groups[new_id] = stored
        return stored

    def _fresh_id(self) -> str:
        new_id = self._new_id()
        while new_id in self._users or new_id in self._groups:
            new_id = self._new_id()
        return new_id

    def _stamp(self, resource: R, previous: R | None) -> R:
        self._version += 1
        now = self._clock()
        created = previous.meta.created if previous is not None and previous.meta else now
        meta = Meta(
            resource_type=resource.resource_type_name,
            created=created,
            last_modified=now,
            location=f"{resource.endpoint}/{resource.id}",
            version=f'W/"{self._version}"',
        )
        return attrs.evolve(resource, meta=meta)

    def _check_user_name(self, user: User, user_id: str) -> None:
        if not user.user_name:
            raise BadRequestError(400, scim_type="invalidValue", detail="userName is required")
        folded = user.user_name.casefold()
        for other in self._users.values():
            if other.id != user_id and (other.user_name or "").casefold() == folded:
                raise ConflictResponseError(
                    409,
                    scim_type="uniqueness",
                    detail=f"userName {user.user_name!r} is taken by user {other.id}",
                )

    def _check_group(self, group: Group, group_id: str) -> None:
        if not group.display_name:
            raise BadRequestError(400, scim_type="invalidValue", detail="displayName is required")
        folded = group.display_name.casefold()
        for other in self._groups.values():
            if other.id != group_id and (other.display_name or "").casefold() == folded:
                raise ConflictResponseError(
                    409,
                    scim_type="uniqueness",
                    detail=f"displayName {group.display_name!r} is taken by group {other.id}",
                )

    def _check_members(self, member_ids: Iterable[str]) -> None:
        unknown = [i for i in member_ids if i not in self._users and i not in self._groups]
        if unknown:
            raise BadRequestError(
                400, scim_type="invalidValue", detail=f"no such members: {', '.join(unknown)}"
            )

    def _member(self, member_id: str) -> Member:
        user = self._users.get(member_id)
        if user is not None:
            return Member(value=member_id, type="User", display=user.display_name)
        group = self._groups[member_id]
        return Member(value=member_id, type="Group", display=group.display_name)

    def _with_groups(self, user: User) -> User:
        memberships = tuple(
            GroupMembership(value=group.id, display=group.display_name, type="direct")
            for group in self._groups.values()
            if any(m.value == user.id for m in group.members or ())
        )
        return attrs.evolve(user, groups=memberships or None)

    def _log_member_calls(self, group_id: str, member_ids: Sequence[str]) -> None:
        limit = self._capabilities.max_members_per_operation or max(len(member_ids), 1)
        for start in range(0, len(member_ids), limit):
            chunk = member_ids[start : start + limit]
            self.calls.append(
                MemoryCall(method="PATCH", resource="Groups", id=group_id, count=len(chunk))
            )


def _with_empty_members(groups: Iterable[Group]) -> tuple[Group, ...]:
    # A listing that shows members says "none" as (), not None: None would read as
    # "not shown", and the engine would never compare that group's members.
    return tuple(g if g.members is not None else attrs.evolve(g, members=()) for g in groups)


def _update_call(resource: str, resource_id: str, change: Any) -> MemoryCall:
    count = 1 if isinstance(change, (User, Group)) else len(change)
    return MemoryCall(method="PATCH", resource=resource, id=resource_id, count=count)


def _changed(current: R, change: Sequence[PatchOperation] | R) -> R:
    if isinstance(change, (User, Group)):
        return overlay(current, change)
    try:
        patched: R = apply_patch(current, list(change))
    except PatchError as exc:
        # What a SCIM service answers to a PATCH it cannot apply (RFC 7644 §3.5.2).
        raise BadRequestError(exc.status, scim_type=exc.scim_type, detail=exc.detail) from exc
    return attrs.evolve(patched, id=current.id, meta=current.meta)


def _matching(resources: Iterable[R], resource_type: str, attribute: str, value: str) -> list[R]:
    exact = CORE_SCHEMAS.case_exact(resource_type, attribute)
    wanted = value if exact else value.casefold()
    found = []
    for resource in resources:
        for candidate in _values(to_scim(resource), attribute):
            if (
                isinstance(candidate, str)
                and (candidate if exact else candidate.casefold()) == wanted
            ):
                found.append(resource)
                break
    return found


def _values(data: Any, path: str) -> list[Any]:
    nodes = [data]
    for step in path.split("."):
        folded = step.lower()
        next_nodes: list[Any] = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict):
                    next_nodes.extend(v for k, v in item.items() if k.lower() == folded)
        nodes = next_nodes
    return [v for node in nodes for v in (node if isinstance(node, list) else [node])]
