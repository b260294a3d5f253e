"""Identity records from another SCIM service (SCIM-to-SCIM sync), page by page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client import DEFAULT_PAGE_SIZE, AsyncScimClient, ScimClient
from ..codec import to_scim
from ..errors import ConfigurationError, IncompleteListingError, ScimSyncError
from ..models import Group, User
from ._records import IssueCode, Record, RecordIssue, RecordKind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ..filter import Filter
    from ._protocol import SourceItem

__all__ = ["AsyncScimSource", "ScimSource"]


class _ScimRecords:
    """What both twins share: turning listed resources into records, pure."""

    #: The attribute group members come from (never an unread field).
    members = "members"

    def __init__(
        self,
        client: ScimClient | AsyncScimClient,
        *,
        key: str,
        group_key: str,
        users: bool,
        groups: bool,
        user_filter: Filter | str | None,
        group_filter: Filter | str | None,
        page_size: int,
        name: str | None,
    ) -> None:
        for setting, value in (("key", key), ("group_key", group_key)):
            if value not in ("id", "externalId"):
                raise ConfigurationError(f"{setting} must be 'id' or 'externalId', got {value!r}")
        self.client = client
        self.key = key
        self.group_key = group_key
        self.users = users
        self.groups = groups
        self.user_filter = user_filter
        self.group_filter = group_filter
        self.page_size = page_size
        self.name = name if name is not None else str(client.base_url).rstrip("/")
        # id -> key of every user read, to name group members by key.
        self._keys: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, key={self.key!r})"

    def _begin(self) -> None:
        self._keys = {}

    def _user_record(self, user: User, position: int) -> Record:
        attributes = _attributes(user)
        key = user.id if self.key == "id" else user.external_id
        if user.id is not None:
            self._keys[user.id] = key
        return Record(
            key=key or None,
            attributes=attributes,
            kind="user",
            line=position,
            origin=f"{self.name}/Users",
        )

    def _group_record(self, group: Group, position: int) -> Record:
        attributes = _attributes(group)
        key = group.id if self.group_key == "id" else group.external_id
        members: list[str] = []
        for member in group.members or ():
            if not member.value:
                continue
            # A member read as a user is named by that user's key; others (nested
            # groups, users out of the listing) by their id, which the mapping reports.
            named = self._keys.get(member.value, member.value) if self.key != "id" else member.value
            members.append(named or member.value)
        return Record(
            key=key or None,
            attributes=attributes,
            kind="group",
            members=tuple(members),
            line=position,
            origin=f"{self.name}/Groups",
        )

    def _stopped(self, kind: RecordKind, exc: Exception) -> RecordIssue:
        endpoint = "Users" if kind == "user" else "Groups"
        what = (
            "the listing came out short"
            if isinstance(exc, IncompleteListingError)
            else "the listing failed"
        )
        return RecordIssue(
            code=IssueCode.READ_INCOMPLETE,
            reason=f"{what}: {exc}",
            kind=kind,
            origin=f"{self.name}/{endpoint}",
        )


def _attributes(resource: User | Group) -> dict[str, Any]:
    data = to_scim(resource)
    data.pop("schemas", None)
    return data


class ScimSource(_ScimRecords):
    """Reads users and groups from another SCIM service through a :class:`ScimClient`.

    Each resource becomes a record holding its SCIM JSON (so mappings read
    ``"userName"``, ``"name.givenName"``, ``'emails[type eq "work"].value'``), keyed
    by the source's ``id`` (or its ``externalId`` with ``key="externalId"``), groups
    by their ``id`` (or ``group_key="externalId"``); group members are named by the
    users' keys. Users are read first, then groups, page by
    page: memory holds a page, not the listing. ``user_filter`` and ``group_filter``
    (built with :func:`scimsync.filter.attr`) read only part of the source; ``users``
    or ``groups`` set to False skip a kind.

    A listing that fails or comes out short ends with a ``READ_INCOMPLETE`` issue
    (what was read is kept), so a partial read never deprovisions anyone. Use
    :class:`AsyncScimSource` with an :class:`AsyncScimClient`.
    """

    def __init__(
        self,
        client: ScimClient,
        *,
        key: str = "id",
        group_key: str = "id",
        users: bool = True,
        groups: bool = True,
        user_filter: Filter | str | None = None,
        group_filter: Filter | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        name: str | None = None,
    ) -> None:
        super().__init__(
            client,
            key=key,
            group_key=group_key,
            users=users,
            groups=groups,
            user_filter=user_filter,
            group_filter=group_filter,
            page_size=page_size,
            name=name,
        )
        self.client: ScimClient = client

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per user, then per group; an issue where the listing stopped."""
        self._begin()
        if self.users:
            position = 0
            try:
                for user in self.client.iter_all(
                    User, filter=self.user_filter, page_size=self.page_size
                ):
                    position += 1
                    yield self._user_record(user, position)
            except ScimSyncError as exc:
                yield self._stopped("user", exc)
        if self.groups:
            position = 0
            try:
                for group in self.client.iter_all(
                    Group, filter=self.group_filter, page_size=self.page_size
                ):
                    position += 1
                    yield self._group_record(group, position)
            except ScimSyncError as exc:
                yield self._stopped("group", exc)


class AsyncScimSource(_ScimRecords):
    """The async twin of :class:`ScimSource`, through an :class:`AsyncScimClient`."""

    def __init__(
        self,
        client: AsyncScimClient,
        *,
        key: str = "id",
        group_key: str = "id",
        users: bool = True,
        groups: bool = True,
        user_filter: Filter | str | None = None,
        group_filter: Filter | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        name: str | None = None,
    ) -> None:
        super().__init__(
            client,
            key=key,
            group_key=group_key,
            users=users,
            groups=groups,
            user_filter=user_filter,
            group_filter=group_filter,
            page_size=page_size,
            name=name,
        )
        self.client: AsyncScimClient = client

    async def read(self) -> AsyncIterator[SourceItem]:
        """Yield a record per user, then per group; an issue where the listing stopped."""
        self._begin()
        if self.users:
            position = 0
            try:
                async for user in self.client.iter_all(
                    User, filter=self.user_filter, page_size=self.page_size
                ):
                    position += 1
                    yield self._user_record(user, position)
            except ScimSyncError as exc:
                yield self._stopped("user", exc)
        if self.groups:
            position = 0
            try:
                async for group in self.client.iter_all(
                    Group, filter=self.group_filter, page_size=self.page_size
                ):
                    position += 1
                    yield self._group_record(group, position)
            except ScimSyncError as exc:
                yield self._stopped("group", exc)
