"""A SCIM 2.0 service provider as a :class:`Target`, through :class:`AsyncScimClient`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..client import DEFAULT_PAGE_SIZE, AsyncScimClient
from ..errors import (
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ScimSyncError,
    UnauthorizedError,
)
from ..filter import attr
from ..models import Group, PatchOperation, User
from ..patch import apply_patch, diff
from ..schema import CORE_SCHEMAS, SchemaTable
from ._facts import TargetFacts, filtered, in_style, refuses_patch, refuses_style
from ._overlay import overlay
from ._protocol import GroupUpdate, TargetCapabilities, TargetListing, UserUpdate

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ..client import PagedListing

__all__ = ["ScimTarget"]

logger = logging.getLogger("scimsync.targets")

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

    Targets that announce PATCH and refuse part of it are met where they are
    (:mod:`scimsync.targets._facts`): singular attributes go as ``replace``, new
    values and members as ``add``; an operation style answered 501 (or a 400 about
    its form) is tried once in the other style, and PATCH answered 501 for a
    resource type falls back to PUT. A PATCH with a value-filter path
    (``emails[type eq "work"].value``, a member removal) answered with a 400 about
    its form, the other style too if it has one, is sent as that PUT, and so are that
    resource type's later changes that need such a path; the others stay PATCHes. A
    lookup on an attribute the target cannot filter on (400 ``invalidFilter``) lists
    and compares instead, and every lookup's answer is checked against its filter
    (some targets ignore filters they do not support). Discovery that cannot be read
    falls back to the RFC 7643 core schemas. What was found is kept in :attr:`facts`
    (the :class:`~scimsync.Provisioner` stores it with its state), used from then on,
    and said once.

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
        self._facts = TargetFacts()

    def __repr__(self) -> str:
        return f"ScimTarget({self.client!r})"

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included: what a report counts."""
        return self.client.requests_sent

    @property
    def retries_sent(self) -> int:
        """Of :attr:`requests_sent`, the retries."""
        return self.client.retries_sent

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
            except (UnauthorizedError, ForbiddenError):
                raise
            except ScimSyncError as exc:
                self._deviation(
                    f"GET /Schemas could not be read ({_short(exc)}): the RFC 7643 core "
                    "schemas are assumed",
                    exc,
                )
                self._schema = CORE_SCHEMAS
                return self._schema
            try:
                resource_types = await self.client.resource_types()
            except NotFoundError:
                resource_types = ()
            except (UnauthorizedError, ForbiddenError):
                raise
            except ScimSyncError as exc:
                self._deviation(
                    f"GET /ResourceTypes could not be read ({_short(exc)}): the resource "
                    "types are inferred from /Schemas",
                    exc,
                )
                resource_types = ()
            self._schema = SchemaTable.from_scim(schemas, resource_types)
        return self._schema

    @property
    def facts(self) -> TargetFacts:
        """What the target was found to do beyond what it announces (see
        :class:`TargetFacts`), its client's findings (a listing without
        ``totalResults``) included."""
        for text in getattr(self.client, "deviations", ()):
            self._facts.note(text)
        return self._facts

    def _deviation(self, text: str, cause: BaseException | None = None) -> None:
        if self._facts.note(text):
            if cause is None:
                logger.warning("%s: %s", self.client.base_url, text)
            else:
                logger.warning("%s: %s (%s)", self.client.base_url, text, cause)

    # -- reading --------------------------------------------------------------------------

    async def list_users(self) -> TargetListing[User]:
        """Every user; incomplete when the target's paging came out short."""
        return _listing(await self.client.list_all(User, page_size=self._page_size))

    async def list_groups(self) -> TargetListing[Group]:
        """Every group with its members; incomplete when the paging came out short.

        A group listed without ``members`` is either empty (an unassigned attribute is
        left out, RFC 7643 §2.5) or a target that leaves members out of listings. The
        two look alike, so such groups are listed once more asking for ``members``.
        When no group holds any even then, the target may leave them out of every
        listing (some do): when the first few groups read by id show members (or the
        target was found to before), each group is read by id, asking for its
        members, and what is still absent then is empty. (Read as empty, members the
        target holds would never be removed.)
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
        unread: dict[str, str] = {}  # id -> why
        probed = await self._probed(groups) if all(g.members is None for g in groups) else None
        if groups and probed is not None:
            groups, unread = await self._members_by_id(groups, probed)
            if unread:
                complete = False
                problem = problem or (
                    f"{len(unread)} group(s) could not be read for their members: "
                    f"{', '.join(f'{i} ({why})' for i, why in sorted(unread.items())[:5])}"
                )
        # Members were asked for: a group still without any has none. (None would read
        # as "not shown", and the engine would never compare that group's members.)
        groups = tuple(
            g
            if g.members is not None or g.id is None or g.id in unread
            else attrs.evolve(g, members=())
            for g in groups
        )
        return TargetListing(resources=groups, complete=complete, problem=problem)

    async def _probed(self, groups: Sequence[Group]) -> dict[str, Any] | None:
        """The members of the first few ``groups`` read by id (id -> members), when
        groups listed without members are to be read by id: the target was found to
        show members that way (nothing probed then), or one of those shows some, or
        one could not be read. None when they show none either: the groups are empty
        (as a target may well hold them: a few reads, not one per group and cycle)."""
        if _MEMBERS_BY_ID in self._facts.deviations:
            return {}
        probed: dict[str, Any] = {}
        for group in [g for g in groups if g.id][:_PROBED_GROUPS]:
            try:
                read = await self.client.get(Group, group.id or "", attributes=("members",))
            except (UnauthorizedError, ForbiddenError):
                raise
            except ScimSyncError:
                return probed  # unknown: read them all, failures and all
            probed[group.id or ""] = read.members
            if read.members:
                return probed
        return None

    async def _members_by_id(
        self, groups: Sequence[Group], probed: Mapping[str, Any]
    ) -> tuple[tuple[Group, ...], dict[str, str]]:
        """``groups`` with the members each holds read by id (those ``probed`` already
        are not read again), and the ids of those that could not be read (with the
        reason): they keep none shown, so their members are not compared."""
        unread = [g.id for g in groups if g.id and g.id not in probed]
        reads = await asyncio.gather(
            *(self.client.get(Group, i, attributes=("members",)) for i in unread),
            return_exceptions=True,
        )
        found: dict[str, Any] = dict(probed)
        failed: dict[str, str] = {}  # id -> why
        for group_id, read in zip(unread, reads, strict=True):
            if isinstance(read, BaseException):
                if isinstance(read, (UnauthorizedError, ForbiddenError)):
                    raise read
                failed[group_id] = _short(read)
            else:
                found[group_id] = read.members
        if any(found.values()):
            self._deviation(_MEMBERS_BY_ID)
        out = tuple(attrs.evolve(g, members=found[g.id]) if g.id in found else g for g in groups)
        return out, failed

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
        """Users whose ``attribute`` equals ``value`` (a filter built safely; the answer
        checked against it; a full listing where the target cannot filter on it)."""
        return await self._find(User, attribute, value)

    async def find_groups(self, attribute: str, value: str) -> tuple[Group, ...]:
        """Groups whose ``attribute`` equals ``value`` (as :meth:`find_users`)."""
        return await self._find(Group, attribute, value)

    async def _find(self, kind: type[R], attribute: str, value: str) -> tuple[R, ...]:
        wanted = attr(attribute).eq(value)
        resource_type = kind.resource_type_name
        schema = self._schema or CORE_SCHEMAS
        if (resource_type, attribute) not in self.facts.unfilterable:
            try:
                found = await self.client.find_by(kind, attribute, value)
            except BadRequestError as exc:
                if (exc.scim_type or "invalidfilter").lower() != "invalidfilter":
                    raise
                self.facts.unfilterable.add((resource_type, attribute))
                logger.warning(
                    "%s cannot filter %ss on %s (%s): lookups list them and compare",
                    self.client.base_url,
                    resource_type,
                    attribute,
                    exc.status,
                )
            else:
                # A target may ignore a filter it does not support and answer everyone.
                held = tuple(r for r in found if wanted.matches(r, schema=schema))
                if len(held) != len(found):
                    self._deviation(
                        f"a filter on {resource_type} {attribute} was answered with resources "
                        "that do not match it: answers are checked against their filter"
                    )
                return held
        listing = await self.client.list_all(kind, page_size=self._page_size)
        return tuple(r for r in listing.require_complete() if wanted.matches(r, schema=schema))

    # -- writing --------------------------------------------------------------------------

    async def create_user(self, user: User) -> User:
        """POST the user; return it with its id."""
        return await self.client.create(user)

    async def create_group(self, group: Group) -> Group:
        """POST the group; return it with its id."""
        return await self.client.create(group)

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        """PATCH the operations (or PUT after applying them); a resource sets what it holds."""
        return await self._update(User, user_id, change)

    async def update_group(self, group_id: str, change: GroupUpdate) -> Group | None:
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
        await self._members(group_id, member_ids, _added)

    async def remove_members(self, group_id: str, member_ids: Sequence[str]) -> None:
        """Remove members by id: ``members[value eq "…"]`` PATCHes per chunk, or one PUT."""
        await self._members(group_id, member_ids, _removed)

    async def _members(
        self,
        group_id: str,
        member_ids: Sequence[str],
        operations: Callable[[Sequence[str]], list[PatchOperation]],
    ) -> None:
        """Send ``operations`` for ``member_ids`` in chunks of the size the target takes.

        A chunk answered 413 is halved and sent again, down to one member; the size
        that went through is remembered (:attr:`TargetFacts.max_members`), said once.
        """
        if not member_ids:
            return
        capabilities = await self.capabilities()
        size = min(
            filter(None, (capabilities.max_members_per_operation, self.facts.max_members)),
            default=len(member_ids),
        )
        pending = list(member_ids)
        halved = False
        while pending:
            chunk, rest = pending[:size], pending[size:]
            try:
                await self._update(Group, group_id, operations(chunk))
            except PayloadTooLargeError:
                if len(chunk) == 1:
                    raise
                size, halved = (len(chunk) + 1) // 2, True
                continue
            pending = rest
            if halved:
                self._learn_max_members(size)
                halved = False

    def _learn_max_members(self, size: int) -> None:
        known = self._facts.max_members
        if known is not None and known <= size:
            return
        self._facts.max_members = size
        logger.warning(
            "%s answered 413 to more members per PATCH operation: %d are sent from now on",
            self.client.base_url,
            size,
        )

    # -- internals ------------------------------------------------------------------------

    async def _update(
        self, kind: type[R], resource_id: str, change: Sequence[PatchOperation] | R
    ) -> R | None:
        if isinstance(change, (User, Group)):
            current: R = await self._get(kind, resource_id)
            if await self._patches(kind):
                operations = diff(current, change)
                if not operations:
                    return current
                if self._patchable(kind, operations):
                    with contextlib.suppress(_PatchRefusedError):
                        return await self._patch(kind, resource_id, operations, _version(current))
            return await self.client.replace(overlay(current, change))
        operations = list(change)
        if not operations:
            return None
        if await self._patches(kind) and self._patchable(kind, operations):
            with contextlib.suppress(_PatchRefusedError):
                return await self._patch(kind, resource_id, operations, None)
        # Read-modify-write: members added or removed keep the others, as PATCH would.
        current = await self._get(kind, resource_id)
        return await self.client.replace(_emptied(current, apply_patch(current, operations)))

    async def _patches(self, kind: type[User] | type[Group]) -> bool:
        """True when ``kind`` is written with PATCH (announced, and not refused)."""
        capabilities = await self.capabilities()
        return capabilities.patch and kind.resource_type_name not in self.facts.no_patch

    def _patchable(
        self, kind: type[User] | type[Group], operations: Sequence[PatchOperation]
    ) -> bool:
        """False when ``operations`` need a value-filter path, which the target refuses
        in a PATCH of ``kind``."""
        return kind.resource_type_name not in self.facts.no_filtered_patch or not filtered(
            operations
        )

    async def _patch(
        self,
        kind: type[R],
        resource_id: str,
        operations: Sequence[PatchOperation],
        version: str | None,
    ) -> R | None:
        """PATCH in the style the target accepts; :class:`_PatchRefusedError` when the
        target refuses PATCH on this resource type, or refuses a value-filter path in
        ``operations`` in either style (and from now on, without asking)."""
        resource_type = kind.resource_type_name
        schema = CORE_SCHEMAS if self._schema is None else self._schema
        style = self.facts.singular.get(resource_type, "replace")
        operations = in_style(operations, style, resource_type, schema) or list(operations)
        try:
            return await self.client.patch(kind, resource_id, operations, version=version)
        except Exception as exc:
            if not (refuses_style(exc) or refuses_patch(exc)):
                raise
            refusal = exc
        other = "add" if style == "replace" else "replace"
        # A 405 refuses the method, not a style: no other style is worth a try.
        restyled = (
            in_style(operations, other, resource_type, schema) if refuses_style(refusal) else None
        )
        if restyled is not None:
            try:
                result = await self.client.patch(kind, resource_id, restyled, version=version)
            except Exception as exc:
                if not refuses_style(exc):
                    raise
            else:
                self.facts.singular[resource_type] = other
                logger.warning(
                    "%s answered %s to PATCH '%s' on %s attributes; '%s' worked and is sent "
                    "from now on",
                    self.client.base_url,
                    getattr(refusal, "status", "?"),
                    style,
                    resource_type,
                    other,
                )
                return result
        if not refuses_patch(refusal):
            # A 400 about the form that the other style did not get past: a path with a
            # value filter is what targets refuse that way; PUT needs none.
            if not filtered(operations):
                raise refusal
            # noTarget may only say the filter selected nothing (a member removed
            # meanwhile): written with PUT this once, never learned from.
            no_target = (getattr(refusal, "scim_type", None) or "").lower() == "notarget"
            if not no_target and resource_type not in self.facts.no_filtered_patch:
                self.facts.no_filtered_patch.add(resource_type)
                logger.warning(
                    "%s refuses PATCH paths with a value filter on %ss (%s): changes that "
                    "need one are written with PUT from now on",
                    self.client.base_url,
                    resource_type,
                    _refusal(refusal),
                )
            raise _PatchRefusedError
        self.facts.no_patch.add(resource_type)
        logger.warning(
            "%s refuses PATCH on %ss (%s) although it announces it: PUT is sent from now on",
            self.client.base_url,
            resource_type,
            getattr(refusal, "status", "?"),
        )
        raise _PatchRefusedError

    async def _get(self, kind: type[R], resource_id: str) -> R:
        if kind is Group:
            return await self.get_group(resource_id)
        return await self.client.get(kind, resource_id)


def _listing(listing: PagedListing[R]) -> TargetListing[R]:
    return TargetListing(
        resources=listing.resources, complete=listing.complete, problem=listing.problem
    )


def _emptied(current: R, updated: R) -> R:
    """``updated``, its multi-valued attributes emptied by the change sent as ``[]``.

    A PUT that leaves an attribute out lets the target keep it (RFC 7644 §3.5.1 leaves
    unassigned attributes to the service provider): the last member removed would stay.
    """
    emptied: dict[str, Any] = {
        field.name: ()
        for field in attrs.fields(type(updated))
        if getattr(updated, field.name) is None
        and isinstance(getattr(current, field.name), tuple)
        and getattr(current, field.name)
    }
    return attrs.evolve(updated, **emptied) if emptied else updated


def _short(exc: BaseException) -> str:
    """The kind of failure, the same from one run to the next: a deviation's text is
    noted (and stored) once, so it must not carry a detail such as a request id."""
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if isinstance(status, int) else type(exc).__name__


def _refusal(exc: BaseException) -> str:
    """An HTTP refusal's status and ``scimType``: ``400 invalidPath``."""
    status = getattr(exc, "status", "?")
    scim_type = getattr(exc, "scim_type", None)
    return f"{status} {scim_type}" if scim_type else str(status)


_MEMBERS_BY_ID = (
    "group listings leave members out, even asked for: each group is read by id for its members"
)
#: Groups read by id to tell a target hiding members from listings from empty groups.
_PROBED_GROUPS = 3


def _added(member_ids: Sequence[str]) -> list[PatchOperation]:
    return [PatchOperation(op="add", path="members", value=[{"value": i} for i in member_ids])]


def _removed(member_ids: Sequence[str]) -> list[PatchOperation]:
    return [
        PatchOperation(op="remove", path=str(attr("members").where(attr("value").eq(i))))
        for i in member_ids
    ]


def _version(resource: User | Group) -> str | None:
    return resource.meta.version if resource.meta is not None else None


class _PatchRefusedError(Exception):
    """The target refuses PATCH on a resource type: write it with PUT."""
