"""The target protocol: what the runner asks of the application being provisioned.

Small on purpose: a :class:`UserTarget` (nine methods) is a target; the
:class:`GroupTarget` methods are an optional capability, detected by name when the
:class:`~scimsync.sync.Provisioner` is made (:func:`missing_methods`,
:func:`supports_groups`), never by an ``AttributeError`` in the middle of a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast, runtime_checkable

import attrs

from ..models import Group, PatchOperation, TargetState, User
from ..models._base import to_tuple_or_empty

if TYPE_CHECKING:
    from ..schema import SchemaTable

__all__ = [
    "GROUP_METHODS",
    "GroupUpdate",
    "GroupTarget",
    "TargetListing",
    "Target",
    "TargetCapabilities",
    "USER_METHODS",
    "UserUpdate",
    "UserTarget",
    "missing_methods",
    "read_target_state",
    "supports_groups",
    "target_schema",
]

T = TypeVar("T")

UserUpdate = Sequence[PatchOperation] | User
"""An update of a user: PATCH operations, or a user holding the attributes to set."""

GroupUpdate = Sequence[PatchOperation] | Group
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
class TargetListing(Generic[T]):
    """Every resource a target listing returned, and whether that was all of them.

    ``complete`` is False when the listing came out short (a failed page, fewer
    resources than ``totalResults``); ``problem`` then says why. An incomplete listing
    is never read as "these accounts are gone".
    """

    resources: tuple[T, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    complete: bool = True
    problem: str | None = None


@runtime_checkable
class UserTarget(Protocol):
    """The application being provisioned, users only: what every target implements.

    Async-first (see :class:`BlockingTarget`). Each method is one operation of a plan.
    Failures raise the errors of :mod:`scimsync.errors` as a SCIM service would answer
    them (``NotFoundError``, ``ConflictResponseError`` with ``scim_type="uniqueness"``,
    ``ServerError``, ``TransportError``, ``OutcomeUnknownError`` for a write whose
    answer was lost, ...), so the runner treats every target alike. Implement it to
    provision an application without a SCIM API; add the :class:`GroupTarget` methods
    when the application has groups.

    Two methods are optional, and looked for by name:

    - ``async def schema(self) -> SchemaTable``: the attributes the application keeps,
      to check a mapping against (:meth:`Mapping.check <scimsync.mapping.Mapping.check>`).
      Without it, the core schemas (:data:`~scimsync.schema.CORE_SCHEMAS`) are assumed;
      :meth:`SchemaTable.only <scimsync.schema.SchemaTable.only>` declares a smaller
      table in one line. See :func:`target_schema`.
    - ``async def aclose(self) -> None``: awaited by
      :meth:`Provisioner.close <scimsync.sync.Provisioner.close>`.
    """

    async def capabilities(self) -> TargetCapabilities:
        """What the target supports."""
        ...

    async def list_users(self) -> TargetListing[User]:
        """Every user, and whether the listing is complete."""
        ...

    async def get_user(self, user_id: str) -> User:
        """The user with id ``user_id`` (``NotFoundError`` when there is none)."""
        ...

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        """Users whose ``attribute`` equals ``value`` (per its caseExact): for lookups
        after a create whose answer was lost, or a uniqueness conflict."""
        ...

    async def create_user(self, user: User) -> User:
        """Create ``user``; return it as created, with its id (the runner reads it back
        when the answer lacks some of what was sent)."""
        ...

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        """Apply PATCH operations, or set the attributes a user holds (keeping the rest).

        Returns the updated user when the target answers with it (in part will do),
        else None. The runner compares it with what it sent, reading the user back
        when there is none or it lacks some of that: never return what was sent.
        """
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


@runtime_checkable
class GroupTarget(Protocol):
    """The group methods: an optional capability of a target, all or nothing.

    A target with every one of them keeps groups (:func:`supports_groups`); a target
    without them is users-only: its group listing is empty and complete, nothing
    group-related is planned, and a mapping that makes groups (``groups=`` or
    ``member_of=``) is refused by the :class:`~scimsync.sync.Provisioner` when it is
    made, naming the methods missing (:func:`missing_methods`).
    """

    async def list_groups(self) -> TargetListing[Group]:
        """Every group (with its members, ``()`` for none), and whether the listing is
        complete."""
        ...

    async def get_group(self, group_id: str) -> Group:
        """The group with id ``group_id`` (``NotFoundError`` when there is none)."""
        ...

    async def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value`` (per its caseExact)."""
        ...

    async def create_group(self, group: Group) -> Group:
        """Create ``group`` (members may be given); return it as created, with its id."""
        ...

    async def update_group(self, group_id: str, change: GroupUpdate) -> Group | None:
        """Apply PATCH operations, or set the attributes a group holds (keeping the rest).

        Returns the updated group when the target answers with it, else None (as
        :meth:`UserTarget.update_user`).
        """
        ...

    async def delete_group(self, group_id: str) -> None:
        """Delete the group."""
        ...

    async def add_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Add members by id, in as many requests as the target's limit needs; a member
        already there stays there once."""
        ...

    async def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members by id, in as many requests as the target's limit needs."""
        ...


@runtime_checkable
class Target(UserTarget, GroupTarget, Protocol):
    """A target of users and groups: :class:`UserTarget` and :class:`GroupTarget`.

    What :class:`ScimTarget` and :class:`MemoryTarget` are. The name keeps the
    meaning it always had (every operation of a plan), so code annotated with it, or
    asking ``isinstance(x, Target)``, still gets a target that keeps groups; the runner
    itself asks only for a :class:`UserTarget` and looks for the group methods.
    ``schema()`` is no longer part of it: it is optional (see :class:`UserTarget`).
    """


#: The methods every target implements (:class:`UserTarget`).
USER_METHODS: tuple[str, ...] = (
    "capabilities",
    "list_users",
    "get_user",
    "find_users",
    "create_user",
    "update_user",
    "deactivate_user",
    "reactivate_user",
    "delete_user",
)

#: The methods of a target that keeps groups (:class:`GroupTarget`), all or none.
GROUP_METHODS: tuple[str, ...] = (
    "list_groups",
    "get_group",
    "find_groups",
    "create_group",
    "update_group",
    "delete_group",
    "add_members",
    "remove_members",
)


def missing_methods(target: object, *, groups: bool = False) -> tuple[str, ...]:
    """The methods ``target`` lacks, by name, in protocol order; ``()`` when none.

    The :data:`USER_METHODS` always; the :data:`GROUP_METHODS` too when ``groups``
    (a mapping that makes groups). Looks at the object only: nothing is called.
    """
    wanted = (*USER_METHODS, *GROUP_METHODS) if groups else USER_METHODS
    return tuple(name for name in wanted if not callable(getattr(target, name, None)))


def methods_problem(target: object, *, groups: bool, why_groups: str) -> str | None:
    """What the runner would say of a target lacking methods it will be asked for, or
    None: the user methods always, the group methods when ``groups`` (``why_groups``
    says why they are wanted). One wording for the provisioner and ``scimsync check``."""
    missing = missing_methods(target, groups=groups)
    if not missing:
        return None
    why = (
        "every target implements the UserTarget methods"
        if any(name not in GROUP_METHODS for name in missing)
        else f"{why_groups}, and a target keeps groups only with every GroupTarget method"
    )
    return f"the target {type(target).__name__} lacks {', '.join(missing)}: {why}"


#: Why a mapping wants the group methods, as :func:`methods_problem` says it.
MAPPING_MAKES_GROUPS = "the mapping makes groups (groups= or member_of=)"


def supports_groups(target: object) -> bool:
    """True when ``target`` has every :class:`GroupTarget` method (it keeps groups)."""
    return all(callable(getattr(target, name, None)) for name in GROUP_METHODS)


async def target_schema(target: object) -> SchemaTable:
    """The schema table of ``target``: what its optional ``schema()`` returns, or the
    core schemas (:data:`~scimsync.schema.CORE_SCHEMAS`) when it has none."""
    method = getattr(target, "schema", None)
    if not callable(method):
        from ..schema import CORE_SCHEMAS

        return CORE_SCHEMAS
    table: SchemaTable = await method()
    return table


async def read_target_state(target: UserTarget) -> TargetState:
    """List users and groups (concurrently) into the :class:`TargetState` the engine takes.

    The state is complete only when both listings are; ``problems`` carries what each
    short listing said of itself. A users-only target (without the
    :class:`GroupTarget` methods) has no groups: its group listing is empty and
    complete, and nothing is asked of it. When one listing fails, the other is
    cancelled, and over, before the error is raised.
    """
    import asyncio

    if not supports_groups(target):
        users = await target.list_users()
        return TargetState(
            users=users.resources,
            complete=users.complete,
            problems=[f"users: {users.problem}"] if not users.complete and users.problem else [],
        )
    groups_of = cast("GroupTarget", target)
    listings = (
        asyncio.ensure_future(target.list_users()),
        asyncio.ensure_future(groups_of.list_groups()),
    )
    try:
        users, groups = await asyncio.gather(*listings)
    except BaseException:
        # One listing failed (or this read was cancelled): the other is of no use, and
        # is not left running behind, halfway through an answer, for whoever closes
        # the loop to find.
        for listing in listings:
            listing.cancel()
        await asyncio.gather(*listings, return_exceptions=True)
        raise
    return TargetState(
        users=users.resources,
        groups=groups.resources,
        complete=users.complete and groups.complete,
        problems=[
            f"{name}: {listing.problem}"
            for name, listing in (("users", users), ("groups", groups))
            if not listing.complete and listing.problem
        ],
    )
