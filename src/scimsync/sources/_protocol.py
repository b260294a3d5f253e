"""The two source protocols, and a source that reads several others in turn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._records import Record, RecordIssue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["AsyncSource", "CombinedSource", "Source", "SourceItem"]

SourceItem = Record | RecordIssue
"""What a source yields: a record, or an issue about a record it could not read."""


@runtime_checkable
class Source(Protocol):
    """Anything that reads identity records: ``for item in source.read(): ...``.

    ``read()`` starts a fresh read each time it is called (one per sync cycle) and
    yields :class:`Record` values for users and groups, in any order, with a
    :class:`RecordIssue` in their place for a record it could not read. A read that
    stops early (an I/O error, a listing that came out short) yields an issue with
    code ``READ_INCOMPLETE`` and ends: nothing downstream then mistakes the missing
    records for departures. ``read()`` never raises for bad data.

    Sources stream: a read holds one record at a time, not the whole input.
    """

    def read(self) -> Iterator[SourceItem]:
        """Yield every record of a fresh read, and an issue for each record that failed."""
        ...


@runtime_checkable
class AsyncSource(Protocol):
    """The async twin of :class:`Source`: ``async for item in source.read(): ...``."""

    def read(self) -> AsyncIterator[SourceItem]:
        """Yield every record of a fresh read, and an issue for each record that failed."""
        ...


class CombinedSource:
    """Reads several sources one after the other, as one (a users file and a groups file).

    The read is incomplete when any part of it is.
    """

    def __init__(self, *sources: Source) -> None:
        self.sources = sources

    def __repr__(self) -> str:
        return f"CombinedSource{self.sources!r}"

    def read(self) -> Iterator[SourceItem]:
        """Yield the items of each source in turn."""
        for source in self.sources:
            yield from source.read()
