"""Where cycles remember things: the :class:`StateStore` protocol and two stores.

What is kept, and why:

- the engine's :class:`~scimsync.engine.SyncState`: links (source key ↔ target id),
  ownership, the last trusted source sizes (the shrink guard), deactivation
  times (``delete_after_days``) and the paths the target does not keep;
- a fingerprint per identity of what was last applied, so an incremental cycle
  whose source did not change ends without a request;
- the operations that failed, retried by the next cycle;
- a write-ahead journal: the creates a cycle is about to send, and what it has
  done so far. A cycle that is killed leaves it behind; the next one reads it and
  links what the killed one created, so nothing is created twice;
- a short history of cycles, for :meth:`Provisioner.health`;
- for each delta-reading source (:class:`~scimsync.sources.DeltaSource`), a
  :class:`SourceSnapshot`: the watermark of its last clean read and the records it
  left, which its next delta read is merged into.

:class:`SqliteStateStore` keeps it in one SQLite file (standard library ``sqlite3``,
WAL, schema versioned and migrated); :class:`MemoryStateStore` in memory;
:class:`~scimsync.sync.PostgresStateStore` (``scimsync.sync._postgres``) in PostgreSQL,
for many targets and workers, with the same tables: the rows of a state
(:func:`state_rows`) and the state of rows (:func:`assemble_state`) are shared here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from ..engine import Ledger, SyncState
from ..engine._state import Unkept
from ..errors import CycleInProgressError, StateError
from ..models._base import to_tuple_or_empty
from ..sources._records import Record

if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
    "CycleRecord",
    "JournalEntry",
    "JournalEvent",
    "MemoryStateStore",
    "PendingFailure",
    "SCHEMA_VERSION",
    "SnapshotStore",
    "SourceSnapshot",
    "SqliteStateStore",
    "StateStore",
    "StoredState",
]

logger = logging.getLogger("scimsync.sync")

JournalEvent = Literal["intent", "created", "deactivated", "deleted"]
JournalEvent.__doc__ = (
    "What a journal entry records: a create about to be sent, or a write that was done."
)

#: Cycles the history keeps.
HISTORY_LENGTH = 200


def _frozen_nested(
    values: Mapping[str, Mapping[str, str]] | None,
) -> Mapping[str, Mapping[str, str]]:
    # Kinds without fingerprints are left out, so equal contents compare equal.
    return MappingProxyType(
        {kind: MappingProxyType(dict(inner)) for kind, inner in (values or {}).items() if inner}
    )


def _frozen_mapping(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if isinstance(values, MappingProxyType):
        return values
    return MappingProxyType(dict(values or {}))


@attrs.frozen(kw_only=True)
class PendingFailure:
    """An operation that failed, kept so the next cycle retries it and people see it.

    ``attempts`` counts the cycles in a row it failed in.
    """

    resource_type: str
    kind: str
    source_key: str | None
    target_id: str | None
    error: str
    attempts: int = 1
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two failures the same one: type, kind, and key (or target id)."""
        return (self.resource_type, self.kind, self.source_key or self.target_id or "")


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One write-ahead record of a cycle in progress.

    - ``intent``: a create is about to be sent; ``identity`` holds the match-key
      values it sends (``{"externalId": "e1", "userName": "ann"}``), ``target_id``
      its placeholder.
    - ``created``: a create (or the lookup after a lost answer) gave ``target_id``.
    - ``deactivated`` / ``deleted``: done to ``target_id`` at ``at``.
    """

    event: JournalEvent
    resource_type: str
    source_key: str | None = None
    target_id: str | None = None
    identity: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    adopted: bool = False
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "event": self.event,
            "resourceType": self.resource_type,
            "sourceKey": self.source_key,
            "targetId": self.target_id,
            "identity": dict(self.identity),
            "adopted": self.adopted,
            "at": _time_text(self.at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalEntry:
        """Read what :meth:`to_dict` wrote."""
        return cls(
            event=data["event"],
            resource_type=data["resourceType"],
            source_key=data.get("sourceKey"),
            target_id=data.get("targetId"),
            identity=data.get("identity") or {},
            adopted=bool(data.get("adopted")),
            at=_parse_time(data.get("at")),
        )


@attrs.frozen(kw_only=True)
class CycleRecord:
    """One cycle in the history: when, how it went, and its counts.

    ``outcome`` is ``"ok"``, ``"unchanged"`` (an incremental cycle that found nothing
    to do), ``"failed"``, ``"blocked"``, ``"quarantined"``, ``"stopped"`` or
    ``"error"``; ``mode`` is ``"full"``, ``"incremental"`` or ``"one"``.
    """

    cycle_id: str
    started_at: datetime
    finished_at: datetime
    mode: str
    outcome: str
    summary: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_mapping)
    detail: str = ""

    @property
    def succeeded(self) -> bool:
        """True for the outcomes an operator need not look at: ``ok`` and ``unchanged``."""
        return self.outcome in ("ok", "unchanged")


@attrs.frozen(kw_only=True)
class StoredState:
    """Everything a store holds besides the history.

    ``fingerprints`` maps ``"User"``/``"Group"`` to source key → fingerprint of what
    was last applied; ``clean`` says the last cycle applied everything it planned
    (nothing failed, held or in conflict) with the policy whose digest is
    ``settings``; ``last_full_at`` is when a cycle last read the whole target;
    ``target_facts`` is what the target was found to accept (PATCH styles, PUT for
    a resource type: :class:`~scimsync.targets.TargetFacts`), as plain strings.
    """

    state: SyncState = attrs.field(factory=SyncState)
    fingerprints: Mapping[str, Mapping[str, str]] = attrs.field(
        factory=dict, converter=_frozen_nested
    )
    failures: tuple[PendingFailure, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    journal: tuple[JournalEntry, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    clean: bool = False
    settings: str | None = None
    last_full_at: datetime | None = None
    target_facts: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)


@runtime_checkable
class StateStore(Protocol):
    """Where a :class:`~scimsync.Provisioner` keeps what cycles need to remember.

    Implementations must make :meth:`save` atomic (all of it or nothing) and
    :meth:`append_journal` durable before it returns: the journal is written before
    creates are sent, and what it says is what a killed cycle leaves for the next.
    """

    def load(self) -> StoredState:
        """What the last :meth:`save` stored, with the journal written since."""
        ...

    def append_journal(self, entries: Sequence[JournalEntry]) -> None:
        """Add write-ahead entries, durably."""
        ...

    def save(self, stored: StoredState, cycle: CycleRecord | None = None) -> None:
        """Replace everything with ``stored`` (its journal too, normally empty), add ``cycle``."""
        ...

    def history(self, limit: int = 20) -> tuple[CycleRecord, ...]:
        """The most recent cycles, newest first."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the cycle lock; raise :class:`~scimsync.errors.CycleInProgressError`
        at once when someone else holds it."""
        ...

    def close(self) -> None:
        """Release what the store holds open."""
        ...


@attrs.frozen(kw_only=True)
class SourceSnapshot:
    """What a delta-reading source's last clean read left: its ``watermark`` (the
    value its next read starts from), the ``records`` it read (users and groups,
    merged with earlier reads), and when (``read_at``)."""

    watermark: str
    records: tuple[Record, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    read_at: datetime | None = None


@runtime_checkable
class SnapshotStore(Protocol):
    """A state store that also keeps a :class:`SourceSnapshot` per source, which is
    what delta reads need (:class:`MemoryStateStore` and :class:`SqliteStateStore`
    do). A :class:`StateStore` without these methods still works: every cycle then
    reads its source whole."""

    def load_snapshot(self, source_id: str) -> SourceSnapshot | None:
        """The snapshot saved for ``source_id``, or None."""
        ...

    def save_snapshot(self, source_id: str, snapshot: SourceSnapshot | None) -> None:
        """Replace the snapshot of ``source_id`` (None: forget it), atomically."""
        ...


def record_to_json(record: Record) -> str:
    """A record as JSON text, for a snapshot (its attributes must be JSON values)."""
    data: dict[str, Any] = {"key": record.key, "kind": record.kind}
    data["attributes"] = dict(record.attributes)
    if record.members:
        data["members"] = list(record.members)
    if record.line is not None:
        data["line"] = record.line
    if record.origin is not None:
        data["origin"] = record.origin
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def record_from_json(text: str) -> Record:
    """The record :func:`record_to_json` wrote."""
    data = json.loads(text)
    return Record(
        key=data["key"],
        kind=data["kind"],
        attributes=data.get("attributes") or {},
        members=tuple(data.get("members") or ()),
        line=data.get("line"),
        origin=data.get("origin"),
    )


# -- memory ------------------------------------------------------------------------------


class MemoryStateStore:
    """A :class:`StateStore` in memory: for tests, and for cycles that need not remember.

    Nothing survives the process: after a restart, scimsync owns only what carries
    its ``externalId`` (or the policy's ``external_id_prefix``). Use
    :class:`SqliteStateStore` for anything that runs more than once.
    """

    def __init__(self, stored: StoredState | None = None) -> None:
        self._stored = stored or StoredState()
        self._journal: list[JournalEntry] = list(self._stored.journal)
        self._history: list[CycleRecord] = []
        self._lock = threading.Lock()
        self._cycle = threading.Lock()
        self._snapshots: dict[str, SourceSnapshot] = {}

    def __repr__(self) -> str:
        return "MemoryStateStore()"

    def load_snapshot(self, source_id: str) -> SourceSnapshot | None:
        """The snapshot of ``source_id``, or None."""
        with self._lock:
            return self._snapshots.get(source_id)

    def save_snapshot(self, source_id: str, snapshot: SourceSnapshot | None) -> None:
        """Replace (or, with None, forget) the snapshot of ``source_id``."""
        with self._lock:
            if snapshot is None:
                self._snapshots.pop(source_id, None)
            else:
                self._snapshots[source_id] = snapshot

    def load(self) -> StoredState:
        """The stored state, with the journal."""
        with self._lock:
            return attrs.evolve(self._stored, journal=tuple(self._journal))

    def append_journal(self, entries: Sequence[JournalEntry]) -> None:
        """Add journal entries."""
        with self._lock:
            self._journal.extend(entries)

    def save(self, stored: StoredState, cycle: CycleRecord | None = None) -> None:
        """Replace the state and the journal, add ``cycle`` to the history."""
        with self._lock:
            self._stored = attrs.evolve(stored, journal=())
            self._journal[:] = stored.journal
            if cycle is not None:
                self._history.append(cycle)
                del self._history[:-HISTORY_LENGTH]

    def history(self, limit: int = 20) -> tuple[CycleRecord, ...]:
        """The most recent cycles, newest first."""
        with self._lock:
            return tuple(reversed(self._history[-limit:])) if limit > 0 else ()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this store's cycle lock (within this process only)."""
        if not self._cycle.acquire(blocking=False):
            raise CycleInProgressError("another sync cycle is running with this state store")
        try:
            yield
        finally:
            self._cycle.release()

    def close(self) -> None:
        """Nothing to release."""


# -- rows: what a SQL store keeps, shared by SQLite and PostgreSQL ------------------------

#: The columns each table is read with, in the order :func:`assemble_state` takes them.
LOAD_COLUMNS: Mapping[str, str] = {
    "links": "resource_type, source_key, target_id",
    "owned": "resource_type, target_id",
    "deactivations": "resource_type, target_id, at",
    "source_counts": "resource_type, count",
    "unkept": "resource_type, path, how, seen, since",
    "fingerprints": "resource_type, source_key, fingerprint",
    "failures": "resource_type, kind, source_key, target_id, error, attempts,"
    " first_failed_at, last_failed_at",
    "journal": "entry",
    "settings": "name, value",
}
#: The order rows must be read in, where it matters.
LOAD_ORDER: Mapping[str, str] = {
    "failures": "resource_type, kind, ident",
    "journal": "seq",
}

#: One table's rows to write: key columns, value columns, key → values.
TableRows = tuple[tuple[str, ...], tuple[str, ...], dict[tuple[Any, ...], tuple[Any, ...]]]


def assemble_state(rows: Mapping[str, Sequence[Sequence[Any]]]) -> StoredState:
    """The :class:`StoredState` that ``rows`` (table → rows, read with
    :data:`LOAD_COLUMNS`) hold."""
    ledgers: dict[str, dict[str, Any]] = {
        kind: {
            "links": {},
            "owned": set(),
            "deactivated_at": {},
            "last_source_count": None,
            "unkept": {},
        }
        for kind in ("User", "Group")
    }
    for kind, key, target in rows["links"]:
        ledgers[kind]["links"][key] = target
    for kind, target in rows["owned"]:
        ledgers[kind]["owned"].add(target)
    for kind, target, at in rows["deactivations"]:
        ledgers[kind]["deactivated_at"][target] = _parse_time(at)
    for kind, count in rows["source_counts"]:
        ledgers[kind]["last_source_count"] = count
    for kind, path, how, seen, since in rows["unkept"]:
        ledgers[kind]["unkept"][path] = Unkept(how=how, seen=seen, since=_parse_time(since))
    fingerprints: dict[str, dict[str, str]] = {"User": {}, "Group": {}}
    for kind, key, value in rows["fingerprints"]:
        fingerprints.setdefault(kind, {})[key] = value
    failures = tuple(
        PendingFailure(
            resource_type=row[0],
            kind=row[1],
            source_key=row[2],
            target_id=row[3],
            error=row[4],
            attempts=row[5],
            first_failed_at=_parse_time(row[6]),
            last_failed_at=_parse_time(row[7]),
        )
        for row in rows["failures"]
    )
    journal = tuple(JournalEntry.from_dict(json.loads(text)) for (text,) in rows["journal"])
    settings: dict[str, Any] = {row[0]: row[1] for row in rows["settings"]}
    return StoredState(
        state=SyncState(users=Ledger(**ledgers["User"]), groups=Ledger(**ledgers["Group"])),
        fingerprints=fingerprints,
        failures=failures,
        journal=journal,
        clean=settings.get("clean") == "1",
        settings=settings.get("settings"),
        last_full_at=_parse_time(settings.get("last_full_at")),
        target_facts=json.loads(settings.get("target_facts") or "{}"),
    )


def state_rows(stored: StoredState) -> dict[str, TableRows]:
    """What each table must hold for ``stored`` (its journal aside), table by table."""
    state = stored.state
    links: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    owned: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    deactivations: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    counts: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    unkept: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for kind in ("User", "Group"):
        ledger = state.ledger(kind)
        links.update(((kind, key), (target,)) for key, target in ledger.links.items())
        owned.update(((kind, target), ()) for target in ledger.owned)
        deactivations.update(
            ((kind, target), (_time_text(at),)) for target, at in ledger.deactivated_at.items()
        )
        if ledger.last_source_count is not None:
            counts[(kind,)] = (ledger.last_source_count,)
        unkept.update(
            ((kind, path), (fact.how, fact.seen, _time_text(fact.since)))
            for path, fact in ledger.unkept.items()
        )
    fingerprints: dict[tuple[Any, ...], tuple[Any, ...]] = {
        (kind, key): (value,)
        for kind, values in stored.fingerprints.items()
        for key, value in values.items()
    }
    failures: dict[tuple[Any, ...], tuple[Any, ...]] = {
        (f.resource_type, f.kind, f.identity[2]): (
            f.source_key,
            f.target_id,
            f.error,
            f.attempts,
            _time_text(f.first_failed_at),
            _time_text(f.last_failed_at),
        )
        for f in stored.failures
    }
    settings: dict[tuple[Any, ...], tuple[Any, ...]] = {
        ("clean",): ("1" if stored.clean else "0",),
        ("settings",): (stored.settings,),
        ("last_full_at",): (_time_text(stored.last_full_at),),
        ("target_facts",): (json.dumps(dict(stored.target_facts), sort_keys=True),),
    }
    return {
        "links": (("resource_type", "source_key"), ("target_id",), links),
        "owned": (("resource_type", "target_id"), (), owned),
        "deactivations": (("resource_type", "target_id"), ("at",), deactivations),
        "source_counts": (("resource_type",), ("count",), counts),
        "unkept": (("resource_type", "path"), ("how", "seen", "since"), unkept),
        "fingerprints": (("resource_type", "source_key"), ("fingerprint",), fingerprints),
        "failures": (
            ("resource_type", "kind", "ident"),
            ("source_key", "target_id", "error", "attempts", "first_failed_at", "last_failed_at"),
            failures,
        ),
        "settings": (("name",), ("value",), settings),
    }


def cycle_row(cycle: CycleRecord) -> tuple[Any, ...]:
    """A cycle as the row SQL stores keep: id, start, end, mode, outcome, summary, detail."""
    return (
        cycle.cycle_id,
        _time_text(cycle.started_at),
        _time_text(cycle.finished_at),
        cycle.mode,
        cycle.outcome,
        json.dumps(dict(cycle.summary), sort_keys=True),
        cycle.detail,
    )


def cycle_from_row(row: Sequence[Any]) -> CycleRecord:
    """The cycle :func:`cycle_row` wrote."""
    return CycleRecord(
        cycle_id=row[0],
        started_at=_parse_time(row[1]) or _EPOCH,
        finished_at=_parse_time(row[2]) or _EPOCH,
        mode=row[3],
        outcome=row[4],
        summary=json.loads(row[5]),
        detail=row[6],
    )


def journal_text(entry: JournalEntry) -> str:
    """A journal entry as the JSON text SQL stores keep."""
    return json.dumps(entry.to_dict(), sort_keys=True)


# -- SQLite ------------------------------------------------------------------------------

#: Each migration brings the schema from its position to the next version; the
#: schema version of a database is ``PRAGMA user_version``. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT)",
        "CREATE TABLE links (resource_type TEXT NOT NULL, source_key TEXT NOT NULL,"
        " target_id TEXT NOT NULL, PRIMARY KEY (resource_type, source_key))",
        "CREATE TABLE owned (resource_type TEXT NOT NULL, target_id TEXT NOT NULL,"
        " PRIMARY KEY (resource_type, target_id))",
        "CREATE TABLE deactivations (resource_type TEXT NOT NULL, target_id TEXT NOT NULL,"
        " at TEXT NOT NULL, PRIMARY KEY (resource_type, target_id))",
        "CREATE TABLE source_counts (resource_type TEXT PRIMARY KEY, count INTEGER NOT NULL)",
        "CREATE TABLE fingerprints (resource_type TEXT NOT NULL, source_key TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, PRIMARY KEY (resource_type, source_key))",
        "CREATE TABLE failures (resource_type TEXT NOT NULL, kind TEXT NOT NULL,"
        " ident TEXT NOT NULL, source_key TEXT, target_id TEXT, error TEXT NOT NULL,"
        " attempts INTEGER NOT NULL, first_failed_at TEXT, last_failed_at TEXT,"
        " PRIMARY KEY (resource_type, kind, ident))",
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL)",
        "CREATE TABLE cycles (seq INTEGER PRIMARY KEY AUTOINCREMENT, cycle_id TEXT NOT NULL,"
        " started_at TEXT NOT NULL, finished_at TEXT NOT NULL, mode TEXT NOT NULL,"
        " outcome TEXT NOT NULL, summary TEXT NOT NULL, detail TEXT NOT NULL)",
    ),
    (
        "CREATE TABLE unkept (resource_type TEXT NOT NULL, path TEXT NOT NULL,"
        " how TEXT NOT NULL, seen INTEGER NOT NULL, since TEXT,"
        " PRIMARY KEY (resource_type, path))",
    ),
    (
        # Delta reads: per source, the watermark of the last clean read and its records.
        "CREATE TABLE source_watermarks (source_id TEXT PRIMARY KEY, watermark TEXT NOT NULL,"
        " read_at TEXT)",
        "CREATE TABLE source_records (source_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " source_key TEXT NOT NULL, record TEXT NOT NULL,"
        " PRIMARY KEY (source_id, kind, source_key))",
    ),
)

#: The schema version this scimsync writes.
SCHEMA_VERSION = len(MIGRATIONS)

_APPLICATION_ID = 0x5C1A5C  # marks the file as a scimsync state database


class SqliteStateStore:
    """A :class:`StateStore` in one SQLite file, with the standard library's ``sqlite3``.

    The database runs in WAL mode and every save is one transaction, so a process
    killed at any point leaves either the old state or the new one, plus the
    journal written so far. The schema is versioned (``PRAGMA user_version``) and
    migrated forward on open; a file written by a newer scimsync, or that is not a
    scimsync state database, raises :class:`~scimsync.errors.StateError` instead of
    being touched.

    Opening checks the file, and refuses (:class:`~scimsync.errors.StateError`, with
    the way to recover) what cannot be trusted:

    - a file that exists but is empty (0 bytes): state was expected there, and
      reading it as new would forget which accounts scimsync owns. Pass
      ``new=True`` to make a new state database in it on purpose;
    - a damaged database (SQLite's ``PRAGMA quick_check`` finds a fault).

    A missing file is made whole before it appears under ``path`` (built under a
    temporary name, then linked into place), so two processes starting their first
    cycle at once both find a complete database. Files the store creates (the
    database, SQLite's ``-wal``/``-shm`` files beside it, and ``<path>.lock``) are
    readable and writable by their owner only (mode 0600), whatever the umask; files
    that exist already keep their mode.

    :meth:`lock` takes an exclusive ``fcntl`` lock on ``<path>.lock``, so cycles
    never overlap across processes. Where ``fcntl`` is missing (Windows) the lock
    covers this process only, and says so in a warning.

    ``synchronous`` is SQLite's ``PRAGMA synchronous``: ``"NORMAL"`` (the default)
    survives a killed process; ``"FULL"`` also survives a power cut, at the cost of
    a disk sync per write. ``new=True`` says the state starts here: an existing empty
    file becomes a new state database (a file that holds state is still refused, so
    the flag never wipes state).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", new: bool = False
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise StateError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self._lock = threading.RLock()
        self._cycle = threading.Lock()
        name = str(self.path)
        try:
            size: int | None = self.path.stat().st_size
        except FileNotFoundError:
            size = None
        except OSError as exc:
            raise StateError(f"cannot open the state database {name!r}: {exc}") from exc
        if size == 0 and not new:
            raise StateError(_empty_file_message(name))
        try:
            if size is None:
                _create_database(self.path)
            self._db = sqlite3.connect(
                name, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {name!r}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._migrate(new=new and size is not None)
            self._check_integrity()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _open_error(name, exc) from exc
        except BaseException:
            self._db.close()
            raise
        # A store dropped without close() still releases its database.
        self._finalizer = weakref.finalize(self, self._db.close)

    def __repr__(self) -> str:
        return f"SqliteStateStore({str(self.path)!r})"

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            return int(version)

    def _migrate(self, *, new: bool) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`; ``new``: the file was empty and
        may only hold a state database once this returns."""
        if not new and _versions(self._db) == (SCHEMA_VERSION, _APPLICATION_ID):
            return  # the usual open: nothing to do, no write lock taken
        # The versions are read again under the write lock: a process creating or
        # migrating the same file at this moment finishes first, and is not redone.
        with self._transaction() as db:
            version, application_id = _versions(db)
            if new and (version, application_id) != (0, 0):
                raise StateError(
                    f"{str(self.path)!r} holds a state database already: new=True (the "
                    "command line's --new-state) is for an empty file; drop it to use this state"
                )
            if version == 0 and application_id == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StateError(
                        f"{str(self.path)!r} holds tables but is not a scimsync state database"
                    )
            elif application_id != _APPLICATION_ID:
                raise StateError(f"{str(self.path)!r} is not a scimsync state database")
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{str(self.path)!r} has schema version {version}, newer than the "
                    f"{SCHEMA_VERSION} this scimsync knows: upgrade scimsync"
                )
            _apply_migrations(db, version)
        if version < SCHEMA_VERSION:
            logger.info("state database %s migrated to version %d", self.path, SCHEMA_VERSION)

    def _check_integrity(self) -> None:
        """Refuse a damaged database rather than plan from what is left of it."""
        found = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if found != ["ok"]:
            raise StateError(_damaged_message(str(self.path), "; ".join(map(str, found))))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- the protocol ---------------------------------------------------------------------

    def load(self) -> StoredState:
        """Read the stored state and the journal."""
        try:
            with self._lock:
                return self._load()
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"cannot read the state database {str(self.path)!r}: {exc}") from exc

    def _load(self) -> StoredState:
        return assemble_state(
            {
                table: self._db.execute(
                    f"SELECT {columns} FROM {table}"  # noqa: S608 - our own names
                    + (f" ORDER BY {LOAD_ORDER[table]}" if table in LOAD_ORDER else "")
                ).fetchall()
                for table, columns in LOAD_COLUMNS.items()
            }
        )

    def append_journal(self, entries: Sequence[JournalEntry]) -> None:
        """Add journal entries in one transaction."""
        if not entries:
            return
        rows = [(journal_text(entry),) for entry in entries]
        try:
            with self._transaction() as db:
                db.executemany("INSERT INTO journal (entry) VALUES (?)", rows)
        except sqlite3.Error as exc:
            raise StateError(f"cannot write the journal to {str(self.path)!r}: {exc}") from exc

    def save(self, stored: StoredState, cycle: CycleRecord | None = None) -> None:
        """Replace the state (writing only what changed) and the journal, add ``cycle``."""
        try:
            with self._transaction() as db:
                self._save(db, stored)
                db.execute("DELETE FROM journal")
                db.executemany(
                    "INSERT INTO journal (entry) VALUES (?)",
                    [(journal_text(e),) for e in stored.journal],
                )
                if cycle is not None:
                    db.execute(
                        "INSERT INTO cycles (cycle_id, started_at, finished_at, mode, outcome,"
                        " summary, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        cycle_row(cycle),
                    )
                    db.execute(
                        "DELETE FROM cycles WHERE seq <= (SELECT max(seq) FROM cycles) - ?",
                        (HISTORY_LENGTH,),
                    )
        except sqlite3.Error as exc:
            raise StateError(f"cannot save the state to {str(self.path)!r}: {exc}") from exc

    def _save(self, db: sqlite3.Connection, stored: StoredState) -> None:
        for table, (keys, values, rows) in state_rows(stored).items():
            _sync_table(db, table, keys, values, rows)

    def history(self, limit: int = 20) -> tuple[CycleRecord, ...]:
        """The most recent cycles, newest first."""
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT cycle_id, started_at, finished_at, mode, outcome, summary, detail"
                    " FROM cycles ORDER BY seq DESC LIMIT ?",
                    (max(limit, 0),),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the history in {str(self.path)!r}: {exc}") from exc
        return tuple(cycle_from_row(row) for row in rows)

    def load_snapshot(self, source_id: str) -> SourceSnapshot | None:
        """The snapshot saved for ``source_id``, or None."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT watermark, read_at FROM source_watermarks WHERE source_id = ?",
                    (source_id,),
                ).fetchone()
                if row is None:
                    return None
                records = tuple(
                    record_from_json(text)
                    for (text,) in self._db.execute(
                        "SELECT record FROM source_records WHERE source_id = ? ORDER BY rowid",
                        (source_id,),
                    )
                )
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"cannot read the source snapshot in {str(self.path)!r}: {exc}"
            ) from exc
        return SourceSnapshot(watermark=row[0], records=records, read_at=_parse_time(row[1]))

    def save_snapshot(self, source_id: str, snapshot: SourceSnapshot | None) -> None:
        """Replace the snapshot of ``source_id`` in one transaction, writing only the
        records that changed (None: forget it)."""
        rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        if snapshot is not None:
            for record in snapshot.records:
                if record.key is not None:
                    rows[(source_id, record.kind, record.key)] = (record_to_json(record),)
        try:
            with self._transaction() as db:
                if snapshot is None:
                    db.execute("DELETE FROM source_watermarks WHERE source_id = ?", (source_id,))
                    db.execute("DELETE FROM source_records WHERE source_id = ?", (source_id,))
                    return
                db.execute(
                    "INSERT OR REPLACE INTO source_watermarks (source_id, watermark, read_at)"
                    " VALUES (?, ?, ?)",
                    (source_id, snapshot.watermark, _time_text(snapshot.read_at)),
                )
                _sync_table(
                    db,
                    "source_records",
                    ("source_id", "kind", "source_key"),
                    ("record",),
                    rows,
                    where=("source_id", source_id),
                )
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot save the source snapshot to {str(self.path)!r}: {exc}"
            ) from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the cycle lock: this process's, and an ``fcntl`` lock on ``<path>.lock``."""
        if not self._cycle.acquire(blocking=False):
            raise CycleInProgressError(
                f"another sync cycle of this process is running with {str(self.path)!r}"
            )
        try:
            with _file_lock(Path(f"{self.path}.lock")):
                yield
        finally:
            self._cycle.release()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._finalizer()


# -- opening -------------------------------------------------------------------------------

#: What starting over means, for the messages that suggest it.
_STARTING_OVER = (
    "a new state knows nothing of earlier cycles: scimsync then owns only the accounts "
    "that carry its externalId (or the policy's external_id_prefix), and the links, "
    "deactivation dates and history are lost"
)


def _empty_file_message(name: str) -> str:
    return (
        f"the state database {name!r} is empty (0 bytes) where state was expected. Restore "
        "it from a backup; or, to start over, delete it or open it with new=True (the "
        f"command line's --new-state): {_STARTING_OVER}"
    )


def _damaged_message(name: str, detail: str) -> str:
    return (
        f"the state database {name!r} is damaged ({detail}). Restore it from a backup; "
        f"or, to start over, move it away (keep it for inspection): {_STARTING_OVER}"
    )


_SQLITE_HEADER = b"SQLite format 3\x00"


def _open_error(name: str, exc: sqlite3.DatabaseError) -> StateError:
    """The StateError for a database that failed to open: busy or unwritable, damaged,
    or not a database at all."""
    if isinstance(exc, sqlite3.OperationalError):  # locked, I/O, a failing migration
        return StateError(f"cannot open the state database {name!r}: {exc}")
    try:
        with open(name, "rb") as stream:
            sqlite = stream.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        sqlite = False
    if sqlite:
        return StateError(_damaged_message(name, str(exc)))
    return StateError(f"{name!r} is not a scimsync state database: {exc}")


def _versions(db: sqlite3.Connection) -> tuple[int, int]:
    """``(schema version, application id)`` of an open database."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    (application_id,) = db.execute("PRAGMA application_id").fetchone()
    return int(version), int(application_id)


def _apply_migrations(db: sqlite3.Connection, version: int) -> None:
    """Run the migrations from ``version`` on, inside the caller's transaction."""
    for target in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[target]:
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {target + 1}")


def _private_file(path: Path) -> int:
    """Open ``path`` for reading and writing, creating it owner-only (0600) if missing.

    The mode is set after creating, so no umask widens or narrows it; a file that
    exists already keeps the mode its owner gave it.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, os.O_RDWR)
    if hasattr(os, "fchmod"):  # pragma: no branch - missing on Windows before 3.13
        os.fchmod(descriptor, 0o600)
    return descriptor


def _create_database(path: Path) -> None:
    """Make a new, whole state database at ``path``, unless one appears there meanwhile.

    It is built under a temporary name and linked into place, so ``path`` never holds
    a database in the making: a process opening it at the same moment (a second
    first cycle) finds either nothing or the whole schema. SQLite gives the ``-wal``
    and ``-shm`` files the mode of the database, 0600.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.new")
    os.close(_private_file(temporary))
    try:
        db = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            _apply_migrations(db, 0)
            db.execute("COMMIT")
        finally:
            db.close()
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: that one is whole too
        except OSError:
            # No hard links here (some network or FAT file systems): a rename, which
            # only a race of two first cycles could see half-made.
            if not path.exists():
                os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    logger.info("state database %s created (schema version %d)", path, SCHEMA_VERSION)


def _sync_table(
    db: sqlite3.Connection,
    table: str,
    key_columns: tuple[str, ...],
    value_columns: tuple[str, ...],
    rows: Mapping[tuple[Any, ...], tuple[Any, ...]],
    *,
    where: tuple[str, Any] | None = None,
) -> None:
    """Make ``table`` hold exactly ``rows`` (key → values), writing only the differences;
    with ``where`` (column, value), only the rows having that value are considered."""
    columns = ", ".join((*key_columns, *value_columns))
    select = f"SELECT {columns} FROM {table}"  # noqa: S608 - our own names
    arguments: tuple[Any, ...] = ()
    if where is not None:
        select += f" WHERE {where[0]} = ?"
        arguments = (where[1],)
    existing = {
        tuple(row[: len(key_columns)]): tuple(row[len(key_columns) :])
        for row in db.execute(select, arguments)
    }
    gone = [key for key in existing if key not in rows]
    changed = [(*key, *values) for key, values in rows.items() if existing.get(key) != values]
    if gone:
        match = " AND ".join(f"{c} = ?" for c in key_columns)
        db.executemany(f"DELETE FROM {table} WHERE {match}", gone)  # noqa: S608
    if changed:
        marks = ", ".join("?" for _ in (*key_columns, *value_columns))
        db.executemany(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", changed)  # noqa: S608


# -- the inter-process lock --------------------------------------------------------------

_warned_no_fcntl = False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        global _warned_no_fcntl  # noqa: PLW0603 - warn once per process
        if not _warned_no_fcntl:
            _warned_no_fcntl = True
            logger.warning(
                "no fcntl on %s: cycles are kept apart within this process only; "
                "never run two agents on one state file",
                sys.platform,
            )
        yield
        return
    handle: TextIO = os.fdopen(_private_file(path), "r+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or None
            raise CycleInProgressError(
                f"another process holds the cycle lock on {str(path)!r}"
                + (f" ({holder})" if holder else ""),
                holder=holder,
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


# -- times -------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat()


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
