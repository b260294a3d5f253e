"""The in-memory store: resources as SCIM JSON objects, with the indexes the rules need.

Resources are kept as the ``dict`` the codec writes (canonical attribute names, no
``None``), never mutated in place: a write replaces the whole ``dict``, so a reader
holding an older one still sees a consistent resource. Dicts make filtering,
sorting and projection plain lookups, and rendering a response a shallow copy.

Indexes: unique names per resource type (folded, as ``caseExact: false`` wants) and,
for every resource that is a member of a group, the groups it belongs to (what
``User.groups`` is computed from). The store is not thread-safe: the service calls it
under its lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Store"]

Resource = dict[str, Any]

USER = "User"
GROUP = "Group"

# The attribute each resource type keeps unique (case-insensitively).
UNIQUE_ATTRIBUTE = {USER: "userName", GROUP: "displayName"}


def fold(value: str) -> str:
    """The case-insensitive form of a string (RFC 7643 §2.2 caseExact false)."""
    return value.casefold()


def member_ids(group: Resource) -> list[str]:
    """The ``value`` of each member of ``group``, in order."""
    return [m["value"] for m in group.get("members") or () if isinstance(m, dict) and "value" in m]


class Store:
    """Users and groups by id, with unique-name and membership indexes."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Resource]] = {USER: {}, GROUP: {}}
        self._unique: dict[str, dict[str, str]] = {USER: {}, GROUP: {}}
        # member id -> ids of the groups it is a direct member of, in insertion order
        self._member_of: dict[str, dict[str, None]] = {}
        self._version = 0

    def next_version(self) -> str:
        """A new weak ETag, never given before by this store."""
        self._version += 1
        return f'W/"{self._version}"'

    def get(self, resource_type: str, resource_id: str) -> Resource | None:
        """The resource ``resource_id`` of ``resource_type``, or None."""
        return self.resources[resource_type].get(resource_id)

    def type_of(self, resource_id: str) -> str | None:
        """``"User"`` or ``"Group"`` for an existing id, else None."""
        for resource_type, table in self.resources.items():
            if resource_id in table:
                return resource_type
        return None

    def all(self, resource_type: str) -> list[Resource]:
        """Every resource of ``resource_type``, oldest first."""
        return list(self.resources[resource_type].values())

    def owner_of_name(self, resource_type: str, name: str) -> str | None:
        """The id of the resource whose unique name folds like ``name``, or None."""
        return self._unique[resource_type].get(fold(name))

    def put(self, resource_type: str, resource: Resource) -> None:
        """Insert or replace ``resource``, keeping the indexes in line."""
        resource_id = resource["id"]
        table = self.resources[resource_type]
        old = table.get(resource_id)
        unique = UNIQUE_ATTRIBUTE[resource_type]
        if old is not None and isinstance(old.get(unique), str):
            self._unique[resource_type].pop(fold(old[unique]), None)
        if isinstance(resource.get(unique), str):
            self._unique[resource_type][fold(resource[unique])] = resource_id
        table[resource_id] = resource
        if resource_type == GROUP:
            before = set(member_ids(old)) if old is not None else set()
            after = set(member_ids(resource))
            for member in before - after:
                self._forget_membership(member, resource_id)
            for member in after - before:
                self._member_of.setdefault(member, {})[resource_id] = None

    def put_first(self, resource_type: str, resource: Resource) -> None:
        """Insert ``resource`` so that it comes first in listings (used by page drift)."""
        self.put(resource_type, resource)
        table = self.resources[resource_type]
        rest = {k: v for k, v in table.items() if k != resource["id"]}
        table.clear()
        table[resource["id"]] = resource
        table.update(rest)

    def delete(self, resource_type: str, resource_id: str) -> Resource | None:
        """Remove a resource and return it; the caller removes it from groups first."""
        resource = self.resources[resource_type].pop(resource_id, None)
        if resource is None:
            return None
        unique = UNIQUE_ATTRIBUTE[resource_type]
        if isinstance(resource.get(unique), str):
            self._unique[resource_type].pop(fold(resource[unique]), None)
        if resource_type == GROUP:
            for member in member_ids(resource):
                self._forget_membership(member, resource_id)
        return resource

    def groups_of(self, member_id: str) -> list[str]:
        """Ids of the groups ``member_id`` is a direct member of."""
        return list(self._member_of.get(member_id, ()))

    def clear(self) -> None:
        """Forget every resource (versions keep counting up)."""
        for table in self.resources.values():
            table.clear()
        for index in self._unique.values():
            index.clear()
        self._member_of.clear()

    def __iter__(self) -> Iterator[tuple[str, Resource]]:
        for resource_type, table in self.resources.items():
            for resource in table.values():
                yield resource_type, resource

    def _forget_membership(self, member: str, group_id: str) -> None:
        groups = self._member_of.get(member)
        if groups is not None:
            groups.pop(group_id, None)
            if not groups:
                del self._member_of[member]
