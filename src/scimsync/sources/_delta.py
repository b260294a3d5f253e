"""Delta reads: what a source that can read only what changed since a watermark offers.

The contract, at the source level (the runner's side is :mod:`scimsync.sync`'s
``source_for_cycle``):

- ``source.read_changes(None)`` reads everything (a full read);
  ``source.read_changes(watermark, previous)`` reads what changed since
  ``watermark``, which an earlier read reported. ``previous`` holds the records the
  last read left (some sources need them: an LDAP group names its members by DN).
- The :class:`ChangeRead` it returns is iterated once, like ``read()``; afterwards
  its ``watermark`` is the one to pass next time (None when the read stopped early
  or the source cannot tell), and ``full_kinds`` names the kinds it read whole (a
  record of such a kind missing from it is gone); records of the other kinds that
  it does not yield are unchanged, not gone.
- A delta read never finds deletions: those are found by the next full read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ._protocol import SourceItem
    from ._records import Record, RecordKind

__all__ = ["ChangeRead", "DeltaSource"]


class ChangeRead:
    """One read of a :class:`DeltaSource`: iterate it once for its items.

    ``since`` is the watermark it read from (None: a full read); ``watermark`` is
    set by the source once the read is over: the value to read from next time, or
    None when the read stopped early (the next read starts from ``since`` again);
    ``full_kinds`` names the record kinds it read whole (every kind, for a full
    read).
    """

    def __init__(
        self,
        produce: Callable[[ChangeRead], Iterator[SourceItem]],
        *,
        since: str | None,
        full_kinds: Sequence[RecordKind] = (),
    ) -> None:
        self.since = since
        self.watermark: str | None = None
        # A full read reads every kind whole.
        self.full_kinds: frozenset[str] = (
            frozenset(("user", "group")) if since is None else frozenset(full_kinds)
        )
        self._items = produce(self)

    def __repr__(self) -> str:
        return f"ChangeRead(since={self.since!r}, watermark={self.watermark!r})"

    def __iter__(self) -> Iterator[SourceItem]:
        return self._items


@runtime_checkable
class DeltaSource(Protocol):
    """A :class:`~scimsync.sources.Source` that can also read only what changed.

    ``source_id`` names what is read (server, base, filter or query) so that a
    stored watermark is never used for another source. See the module
    :mod:`scimsync.sources` and :doc:`/howto/active-directory` for how a
    :class:`~scimsync.Provisioner` uses it.
    """

    @property
    def source_id(self) -> str:
        """A stable name of what this source reads, for its stored watermark."""
        ...

    def read(self) -> Iterator[SourceItem]:
        """A full read (the same as iterating ``read_changes(None)``)."""
        ...

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        """Read what changed since ``since`` (everything when None)."""
        ...
