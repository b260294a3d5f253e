"""A SCIM 2.0 service provider as a :class:`Target`, through :class:`AsyncScimClient`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import attrs

from ..client import DEFAULT_PAGE_SIZE, AsyncScimClient
from ..errors import ConfigurationError, NotFoundError
from ..filter import attr
from ..models import Group, Member, PatchOperation, User
from ..patch import apply_patch, diff
from ..schema import CORE_SCHEMAS, SchemaTable
from ._overlay import overlay
from ._protocol import GroupChange, Listing, TargetCapabilities, UserChange

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..client import Listing as ClientListing

__all__ = ["ScimTarget"]

R = TypeVar("R", User, Group)

# Asked for explicitly when a target leaves group members out of listings.
_GROUP_ATTRIBUTES = ("externalId", "displayName", "members", "meta")


class ScimTarget:
    """A SCIM 2.0 service provider, written to through an :class:`AsyncScimClient`.

    Discovery decides how to write: with PATCH when the target announces it (each
    update one request with the operations of the plan), else read-modify-write PUT
    (the current resource is read, the change applied to it, the whole resource
    sent back with ``If-Match`` when versions are known), so attributes the mapping
    does not manage are kept either way. ``use_patch`` overrides what discovery says.

    Group members are added and removed by id, with at most
    ``max_members_per_operation`` members per request (default: the client's, else
    no limit): additions as one ``add`` of ``members``, removals as
    ``members[value eq "…"]`` operations built with the filter builder.

    ``request_group_members`` lists groups asking for ``members`` explicitly, for
    targets that leave them out of listings unless asked (otherwise every group
    would look empty). Errors are the client's: :class:`~scimsync.errors.ScimHTTPError`
    subclasses, :class:`~scimsync.errors.OutcomeUnknownError` for a create or PATCH
    whose answer was lost.
    """

    def __init__(
        self,
        client: AsyncScimClient,
        *,
        use_patch: bool | None = None,
        max_members_per_operation: int | None = None,
        request_group_members: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if max_members_per_operation is not None and max_members_per_operation < 1:
            raise ConfigurationError("max_members_per_operation must be 1 or more")
        self.client = client
        self._use_patch = use_patch
        self._max_members = max_members_per_operation
        self._request_group_members = request_group_members
        self._page_size = page_size
        self._capabilities: TargetCapabilities | None = None
        self._schema: SchemaTable | None = None

    def __repr__(self) -> str:
        return f"ScimTarget({self.client!r})"

    # -- discovery ------------------------------------------------------------------------

    async def capabilities(self) -> TargetCapabilities:
        """What the target announces, with this object's overrides (read once)."""
        if self._capabilities is None:
            found = await self.client.capabilities()
            self._capabilities = TargetCapabilities(
                patch=found.patch if self._use_patch is None else self._use_patch,
                max_members_per_operation=self._max_members or found.max_members_per_operation,
                bulk=found.bulk,
                bulk_max_operations=found.bulk_max_operations,
                etag=found.etag,
            )
        return self._capabilities

    async def schema(self) -> SchemaTable:
        """The target's ``/Schemas`` and ``/ResourceTypes`` as a schema table (read once).

        A target that publishes no ``/Schemas`` (404) is taken to follow the core
        schemas of RFC 7643; one that publishes no ``/ResourceTypes`` gets them
        inferred from its schemas.
        """
        if self._schema is None:
            try:
                schemas = await self.client.schemas()
            except NotFoundError:
                self._schema = CORE_SCHEMAS
                return self._schema
            try:
                resource_types = await self.client.resource_types()
            except NotFoundError:
                resource_types = ()
            self._schema = SchemaTable.from_scim(schemas, resource_types)
        return self._schema

    # -- reading --------------------------------------------------------------------------

    async def list_users(self) -> Listing[User]:
        """Every user; incomplete when the target's paging came out short."""
        return _listing(await self.client.list_all(User, page_size=self._page_size))

    async def list_groups(self) -> Listing[Group]:
        """Every group with its members; incomplete when the paging came out short.

        A group listed without ``members`` is either empty (an unassigned attribute is
        left out, RFC 7643 §2.5) or a target that leaves members out of listings. The
        two look alike, so such groups are listed once more asking for ``members``:
        what is still absent then is empty.
        """
        attributes = _GROUP_ATTRIBUTES if self._request_group_members else None
        listing = await self.client.list_all(
            Group, attributes=attributes, page_size=self._page_size
        )
        groups = listing.resources
        complete, problem = listing.complete, listing.problem
        if not self._request_group_members and any(g.members is None for g in groups):
            members = await self.client.list_all(
                Group, attributes=("members",), page_size=self._page_size
            )
            found = {g.id: g.members for g in members.resources}
            groups = tuple(
                g if g.members is not None else attrs.evolve(g, members=found.get(g.id))
                for g in groups
            )
            complete, problem = complete and members.complete, problem or members.problem
        # Members were asked for: a group still without any has none. (None would read
        # as "not shown", and the engine would never compare that group's members.)
        groups = tuple(
            g if g.members is not None or g.id is None else attrs.evolve(g, members=())
            for g in groups
        )
        return Listing(resources=groups, complete=complete, problem=problem)

    async def get_user(self, user_id: str) -> User:
        """The user with id ``user_id``."""
        return await self.client.get(User, user_id)

    async def get_group(self, group_id: str) -> Group:
        """The group with id ``group_id``, with its members (``()`` when it has none)."""
        attributes = _GROUP_ATTRIBUTES if self._request_group_members else None
        group = await self.client.get(Group, group_id, attributes=attributes)
        if group.members is None and not self._request_group_members:
            asked = await self.client.get(Group, group_id, attributes=("members",))
            group = attrs.evolve(group, members=asked.members)
        return group if group.members is not None else attrs.evolve(group, members=())

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        """Users whose ``attribute`` equals ``value`` (a filter built safely)."""
        return await self.client.find_by(User, attribute, value)

    async def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value``."""
        return await self.client.find_by(Group, attribute, value)

    # -- writing --------------------------------------------------------------------------

    async def create_user(self, user: User) -> User:
        """POST the user; return it with its id."""
        return await self.client.create(user)

    async def create_group(self, group: Group) -> Group:
        """POST the group; return it with its id."""
        return await self.client.create(group)

    async def update_user(self, user_id: str, change: UserChange) -> User | None:
        """PATCH the operations (or PUT after applying them); a resource sets what it holds."""
        return await self._update(User, user_id, change)

    async def update_group(self, group_id: str, change: GroupChange) -> Group | None:
        """PATCH the operations (or PUT after applying them); a resource sets what it holds."""
        return await self._update(Group, group_id, change)

    async def deactivate_user(self, user_id: str) -> None:
        """Set ``active`` to false."""
        await self.update_user(user_id, [PatchOperation(op="replace", path="active", value=False)])

    async def reactivate_user(self, user_id: str) -> None:
        """Set ``active`` to true."""
        await self.update_user(user_id, [PatchOperation(op="replace", path="active", value=True)])

    async def delete_user(self, user_id: str) -> None:
        """DELETE the user."""
        await self.client.delete(User, user_id)

    async def delete_group(self, group_id: str) -> None:
        """DELETE the group."""
        await self.client.delete(Group, group_id)

    async def add_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Add members by id: one PATCH per chunk, or one read-modify-write PUT."""
        if not member_ids:
            return
        capabilities = await self.capabilities()
        if not capabilities.patch:
            current = await self.get_group(group_id)
            present = {m.value for m in current.members or ()}
            added = [Member(value=i) for i in dict.fromkeys(member_ids) if i not in present]
            if added:
                members = (*(current.members or ()), *added)
                await self.client.replace(_with_members(current, members))
            return
        for chunk in _chunks(member_ids, capabilities.max_members_per_operation):
            operation = PatchOperation(
                op="add", path="members", value=[{"value": i} for i in chunk]
            )
            await self.client.patch(Group, group_id, [operation])

    async def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members by id: ``members[value eq "…"]`` PATCHes per chunk, or one PUT."""
        if not member_ids:
            return
        capabilities = await self.capabilities()
        if not capabilities.patch:
            current = await self.get_group(group_id)
            gone = set(member_ids)
            kept = tuple(m for m in current.members or () if m.value not in gone)
            if len(kept) != len(current.members or ()):
                await self.client.replace(_with_members(current, kept))
            return
        for chunk in _chunks(member_ids, capabilities.max_members_per_operation):
            operations = [
                PatchOperation(op="remove", path=str(attr("members").where(attr("value").eq(i))))
                for i in chunk
            ]
            await self.client.patch(Group, group_id, operations)

    # -- internals ------------------------------------------------------------------------

    async def _update(
        self, kind: type[R], resource_id: str, change: Sequence[PatchOperation] | R
    ) -> R | None:
        capabilities = await self.capabilities()
        if isinstance(change, (User, Group)):
            current: R = await self._get(kind, resource_id)
            if capabilities.patch:
                operations = diff(current, change)
                if not operations:
                    return current
                return await self.client.patch(
                    kind, resource_id, operations, version=_version(current)
                )
            return await self.client.replace(overlay(current, change))
        operations = list(change)
        if not operations:
            return None
        if capabilities.patch:
            return await self.client.patch(kind, resource_id, operations)
        current = await self._get(kind, resource_id)
        return await self.client.replace(apply_patch(current, operations))

    async def _get(self, kind: type[R], resource_id: str) -> R:
        if kind is Group:
            return await self.get_group(resource_id)
        return await self.client.get(kind, resource_id)


def _listing(listing: ClientListing[R]) -> Listing[R]:
    return Listing(resources=listing.resources, complete=listing.complete, problem=listing.problem)


def _chunks(items: Sequence[str], size: int | None) -> list[Sequence[str]]:
    size = size or len(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _version(resource: User | Group) -> str | None:
    return resource.meta.version if resource.meta is not None else None


def _with_members(group: Group, members: Sequence[Member]) -> Group:
    return attrs.evolve(group, members=tuple(members))
