"""What one cycle read (:class:`Reading`), and which failures of reading a cycle reports.

A cycle's reading is filled in as it goes: the source's mapped records and the
stored state first, the target's listing once read (with what an interrupted cycle
left repaired), and the state as the cycle learns. Remembering and reporting take it
from there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from ..engine import Policy, SyncState
from ..errors import ConfigurationError, CycleInProgressError, ScimSyncError, StateError
from ..mapping import MappingResult
from ..models import DesiredState, TargetState
from ._state import JournalEntry, StoredState

__all__ = ["Reading", "empty_mapping_result", "read_failure", "read_records"]


@attrs.define
class Reading:
    """What one cycle read: the mapping's result, the target, the state, the policy."""

    mapped: MappingResult
    stored: StoredState
    state: SyncState
    policy: Policy
    actual: TargetState | None = None
    #: How the source was read: "full", "delta" (only its changes), "" (not read).
    source_read: str = "full"
    notes: list[str] = attrs.Factory(list)
    # Creates an interrupted cycle announced and nobody found yet: they may still land.
    earlier: list[JournalEntry] = attrs.Factory(list)


def read_failure(exc: Exception) -> bool:
    """True for an error of reading a source or target (the target or a SCIM source
    answering badly, or not at all; a file that cannot be read), which a cycle reports;
    False for what is raised: configuration mistakes, a cycle already running, a
    failing state store, and programming errors."""
    if isinstance(exc, (ConfigurationError, CycleInProgressError, StateError)):
        return False
    return isinstance(exc, (ScimSyncError, OSError))


def empty_mapping_result() -> MappingResult:
    """The mapping result of a cycle that does not read the source (applying a plan)."""
    return MappingResult(desired=DesiredState())


async def read_records(source: Any) -> list[Any]:
    """Every record of a source, sync or async (a sync one read in a worker thread)."""
    items = source.read()
    if hasattr(items, "__anext__"):
        return [item async for item in items]
    return await asyncio.to_thread(list, items)
