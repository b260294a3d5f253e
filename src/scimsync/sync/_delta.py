"""Delta reads for the runner: one helper, :func:`source_for_cycle`, that a cycle calls
to get the source it reads.

For a :class:`~scimsync.sources.DeltaSource` with a state store that keeps snapshots
(:class:`~scimsync.sync.SnapshotStore`), the source a cycle reads is a view: on a
full cycle (``full=True``) or when no snapshot is stored, it reads the source whole;
otherwise it reads only what changed since the stored watermark and yields the
stored records merged with the changes (a changed record replaces its old version; a
kind the read gave whole replaces all of that kind). Downstream, the mapping, the
engine and the guards see a whole read either way, so an incremental cycle never
mistakes "not changed" for "gone"; departures are found by the full cycles.

The snapshot is saved when the read is over, and only from a *clean* read: no
issue at all, no record without a key, no key twice, and a watermark reported. A
read with an issue yields its issue in place of the stored record (so the mapping
protects that key, or marks the read incomplete) and keeps the old snapshot: the
next cycle reads the same changes again. A full read with an issue forgets the
snapshot: the next cycle reads the source whole again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..sources._delta import DeltaSource
from ..sources._records import Record, RecordIssue
from ._state import SnapshotStore, SourceSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from ..sources import AsyncSource, Source, SourceItem

__all__ = ["how_read", "source_for_cycle"]

logger = logging.getLogger("scimsync.sync")


def source_for_cycle(
    source: Source | AsyncSource, store: object, *, full: bool, clock: Callable[[], datetime]
) -> Source | AsyncSource:
    """The source a cycle reads: ``source`` itself, or, for a delta-reading source and a
    store keeping snapshots, a view reading only the changes unless ``full``."""
    if not isinstance(source, DeltaSource) or not isinstance(store, SnapshotStore):
        return source
    return _SnapshotRead(source, store, full=full, clock=clock)


def how_read(source: object) -> str:
    """How a cycle's source (from :func:`source_for_cycle`) was read: ``"delta"``
    when only the changes were, else ``"full"``."""
    return "delta" if isinstance(source, _SnapshotRead) and source.mode == "delta" else "full"


class _SnapshotRead:
    """One cycle's read of a delta source, merged into the stored snapshot."""

    def __init__(
        self,
        source: DeltaSource,
        store: SnapshotStore,
        *,
        full: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self.source = source
        self.store = store
        self.full = full
        self.clock = clock
        #: After a read: "full" or "delta" (with the number of changed records): the
        #: cycle's report says which (SyncReport.source_read).
        self.mode: str | None = None
        self.changed = 0

    def __repr__(self) -> str:
        return repr(self.source)

    def __getattr__(self, name: str) -> Any:
        # The mapping reads a source's declared fields (``fields``), if any.
        return getattr(self.source, name)

    def read(self) -> Iterator[SourceItem]:
        source_id = self.source.source_id
        stored = None if self.full else self.store.load_snapshot(source_id)
        since = stored.watermark if stored is not None else None
        previous = stored.records if stored is not None else ()
        change = self.source.read_changes(since, previous)
        self.mode = "full" if since is None else "delta"
        read: dict[tuple[str, str], Record] = {}
        troubled: set[tuple[str, str]] = set()
        clean = True
        for item in change:
            if isinstance(item, RecordIssue):
                # UNKNOWN_MEMBER and the like lose nothing; anything else spoils the read.
                if item.code.loses_identity:
                    clean = False
                    if item.key is not None:
                        troubled.add((item.kind, item.key))
                yield item
                continue
            if item.key is None:
                clean = False
            else:
                if (item.kind, item.key) in read:
                    clean = False  # the mapping reports the duplicate
                read[(item.kind, item.key)] = item
            yield item
        self.changed = len(read)
        kept: list[Record] = []
        if since is not None:
            for record in previous:
                assert record.key is not None
                name = (record.kind, record.key)
                if record.kind in change.full_kinds or name in read or name in troubled:
                    continue
                kept.append(record)
                yield record
        if clean and change.watermark is not None:
            snapshot = SourceSnapshot(
                watermark=change.watermark,
                records=(*kept, *read.values()),
                read_at=self.clock(),
            )
            try:
                self.store.save_snapshot(source_id, snapshot)
            except (TypeError, ValueError) as exc:
                # Values a snapshot cannot hold (not JSON): every cycle reads whole.
                logger.warning(
                    "%r: no delta reads, its records cannot be stored: %s", self.source, exc
                )
                self.store.save_snapshot(source_id, None)
        elif since is None:
            self.store.save_snapshot(source_id, None)
