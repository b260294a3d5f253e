"""The target protocol: what the runner asks of the application being provisioned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from ..models import Group, PatchOperation, TargetState, User
from ..models._base import to_tuple_or_empty

if TYPE_CHECKING:
    from ..schema import SchemaTable

__all__ = [
    "GroupChange",
    "Listing",
    "Target",
    "TargetCapabilities",
    "UserChange",
    "read_target_state",
]

T = TypeVar("T")

UserChange = Sequence[PatchOperation] | User
"""An update of a user: PATCH operations, or a user holding the attributes to set."""

GroupChange = Sequence[PatchOperation] | Group
"""An update of a group: PATCH operations, or a group holding the attributes to set."""


@attrs.frozen(kw_only=True)
class TargetCapabilities:
    """What a target supports, as the engine and the runner need to know it.

    ``patch``: PATCH is supported (otherwise updates are read-modify-write PUTs);
    ``max_members_per_operation``: the most group members one request may add or
    remove (None: no limit); ``bulk`` / ``bulk_max_operations``: the ``/Bulk``
    endpoint; ``etag``: versions are returned and ``If-Match`` is honoured.
    """

    patch: bool = True
    max_members_per_operation: int | None = None
    bulk: bool = False
    bulk_max_operations: int | None = None
    etag: bool = False


@attrs.frozen(kw_only=True)
class Listing(Generic[T]):
    """Every resource a target listing returned, and whether that was all of them.

    ``complete`` is False when the listing came out short (a failed page, fewer
    resources than ``totalResults``); ``problem`` then says why. An incomplete listing
    is never read as "these accounts are gone".
    """

    resources: tuple[T, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True
    problem: str | None = None


@runtime_checkable
class Target(Protocol):
    """The application being provisioned: async-first (see :class:`BlockingTarget`).

    Each method is one operation of a plan. Failures raise the errors of
    :mod:`scimsync.errors` as a SCIM service would answer them (``NotFoundError``,
    ``ConflictResponseError`` with ``scim_type="uniqueness"``, ...), so the runner
    treats every target alike. Implement it to provision an application without a
    SCIM API.
    """

    async def capabilities(self) -> TargetCapabilities:
        """What the target supports."""
        ...

    async def schema(self) -> SchemaTable:
        """The target's schema table, to check a mapping against (:meth:`Mapping.check`)."""
        ...

    async def list_users(self) -> Listing[User]:
        """Every user, and whether the listing is complete."""
        ...

    async def list_groups(self) -> Listing[Group]:
        """Every group (with its members), and whether the listing is complete."""
        ...

    async def get_user(self, user_id: str) -> User:
        """The user with id ``user_id`` (``NotFoundError`` when there is none)."""
        ...

    async def get_group(self, group_id: str) -> Group:
        """The group with id ``group_id`` (``NotFoundError`` when there is none)."""
        ...

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        """Users whose ``attribute`` equals ``value`` (per its caseExact): for lookups
        after a create whose answer was lost, or a uniqueness conflict."""
        ...

    async def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value``."""
        ...

    async def create_user(self, user: User) -> User:
        """Create ``user``; return it as created, with its id."""
        ...

    async def create_group(self, group: Group) -> Group:
        """Create ``group`` (members may be given); return it as created, with its id."""
        ...

    async def update_user(self, user_id: str, change: UserChange) -> User | None:
        """Apply PATCH operations, or set the attributes a user holds (keeping the rest).

        Returns the updated user when the target answers with it, else None.
        """
        ...

    async def update_group(self, group_id: str, change: GroupChange) -> Group | None:
        """Apply PATCH operations, or set the attributes a group holds (keeping the rest)."""
        ...

    async def deactivate_user(self, user_id: str) -> None:
        """Set ``active`` to false."""
        ...

    async def reactivate_user(self, user_id: str) -> None:
        """Set ``active`` to true."""
        ...

    async def delete_user(self, user_id: str) -> None:
        """Delete the user."""
        ...

    async def delete_group(self, group_id: str) -> None:
        """Delete the group."""
        ...

    async def add_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Add members by id, in as many requests as the target's limit needs."""
        ...

    async def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members by id, in as many requests as the target's limit needs."""
        ...


async def read_target_state(target: Target) -> TargetState:
    """List users and groups (concurrently) into the :class:`TargetState` the engine takes.

    The state is complete only when both listings are.
    """
    import asyncio

    users, groups = await asyncio.gather(target.list_users(), target.list_groups())
    return TargetState(
        users=users.resources,
        groups=groups.resources,
        complete=users.complete and groups.complete,
    )
