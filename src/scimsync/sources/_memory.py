"""Identity records from Python values: lists of dicts (or of records)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._jsonl import _member_keys
from ._records import IssueCode, Record, RecordIssue, RecordKind

if TYPE_CHECKING:
    from ._protocol import SourceItem

__all__ = ["MemorySource"]


class MemorySource:
    """Reads identity records from lists: ``MemorySource(users=[{...}, ...], key="id")``.

    Each item is a mapping of field names to values (or a ready :class:`Record`);
    ``key`` names the field holding the stable key and, for groups, ``members`` the
    field listing member keys (strings, or objects with a ``value``). An item that
    is not a mapping, or whose key or members have the wrong type, makes a
    ``MALFORMED`` issue; ``line`` is the item's 1-based position in its list.

    The lists are read afresh on every :meth:`read`, so a test may change them
    between sync cycles.
    """

    def __init__(
        self,
        users: Iterable[Mapping[str, Any] | Record] = (),
        groups: Iterable[Mapping[str, Any] | Record] = (),
        *,
        key: str = "id",
        members: str = "members",
        name: str = "memory",
    ) -> None:
        self.users = list(users)
        self.groups = list(groups)
        self.key = key
        self.members = members
        self.name = name

    def __repr__(self) -> str:
        return f"MemorySource(<{len(self.users)} users>, <{len(self.groups)} groups>)"

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per item: users first, then groups."""
        yield from self._records(self.users, "user")
        yield from self._records(self.groups, "group")

    def _records(self, items: list[Any], kind: RecordKind) -> Iterator[SourceItem]:
        origin = f"{self.name} {kind}s"
        for position, item in enumerate(items, 1):
            if isinstance(item, Record):
                yield item
                continue
            reason: str | None = None
            key: str | None = None
            members: tuple[str, ...] = ()
            if not isinstance(item, Mapping):
                reason = f"expected a mapping of fields, got {type(item).__name__}"
            else:
                raw_key = item.get(self.key)
                if isinstance(raw_key, str):
                    key = raw_key.strip() or None
                elif isinstance(raw_key, int) and not isinstance(raw_key, bool):
                    key = str(raw_key)
                elif raw_key is not None:
                    reason = f"the key {self.key!r} is a {type(raw_key).__name__}, not a string"
                if reason is None and kind == "group":
                    members, reason = _member_keys(item.get(self.members), self.members)
            if reason is not None:
                yield RecordIssue(
                    code=IssueCode.MALFORMED,
                    reason=reason,
                    key=key,
                    line=position,
                    kind=kind,
                    origin=origin,
                )
                continue
            assert isinstance(item, Mapping)
            yield Record(
                key=key,
                attributes=dict(item),
                kind=kind,
                members=members,
                line=position,
                origin=origin,
            )
