"""The state of many targets in one PostgreSQL database, for workers on many hosts.

:class:`PostgresStateStore` keeps what :class:`SqliteStateStore` keeps (links,
ownership, fingerprints, learned target facts, pending failures, the write-ahead
journal, the cycle history, delta-read snapshots), the same way, in tables of one
PostgreSQL schema (``scimsync`` by default) shared by every target: each row belongs
to one target, named when the store is opened.

Rules this module keeps:

- **One connection per store, and the cycle lock on it.** :meth:`~PostgresStateStore.lock`
  takes a session-level advisory lock (``pg_try_advisory_lock``) keyed by the
  target, on the connection that also writes the cycle's state. Two workers on two
  hosts never run cycles of the same target at once; different targets never wait
  for each other. A worker that dies loses its connection, and PostgreSQL releases
  the lock with it.
- **Never reconnect under the lock.** A connection lost while the lock is held is a
  :class:`~scimsync.errors.StateError` for the rest of that cycle: the lock went with
  it, another worker may have the target by now, and a new connection would write
  over its state. Outside a cycle, a lost connection is opened again on next use.
- **Atomic saves, durable journal.** Every save is one transaction; every journal
  append commits before it returns. A worker killed mid-apply leaves the state of the
  last save plus the journal, exactly as SQLite does, and the next cycle (on any
  worker) links what the killed one created.
- **Versioned schema, forward only.** The schema's version is a row of its ``meta``
  table; migrations run forward on open, one opener at a time (a transaction-level
  advisory lock). A schema written by a newer scimsync, or a schema of the same name
  that is not scimsync's, is refused with :class:`~scimsync.errors.StateError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import CycleInProgressError, StateError
from . import _state
from ._state import (
    LOAD_COLUMNS,
    LOAD_ORDER,
    CycleRecord,
    JournalEntry,
    SourceSnapshot,
    StoredState,
    assemble_state,
    journal_text,
    record_from_json,
    record_to_json,
    state_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    import psycopg

__all__ = ["POSTGRES_SCHEMA_VERSION", "PostgresStateStore"]

#: Each migration brings the schema from its position to the next version. ``{s}``
#: stands for the schema's quoted name. Append, never edit.
POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE {s}.stores (id serial PRIMARY KEY, name text NOT NULL UNIQUE)",
        "CREATE TABLE {s}.settings (store integer NOT NULL REFERENCES {s}.stores,"
        " name text NOT NULL, value text, PRIMARY KEY (store, name))",
        "CREATE TABLE {s}.links (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, source_key text NOT NULL, target_id text NOT NULL,"
        " PRIMARY KEY (store, resource_type, source_key))",
        "CREATE TABLE {s}.owned (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, target_id text NOT NULL,"
        " PRIMARY KEY (store, resource_type, target_id))",
        "CREATE TABLE {s}.deactivations (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, target_id text NOT NULL, at text NOT NULL,"
        " PRIMARY KEY (store, resource_type, target_id))",
        "CREATE TABLE {s}.source_counts (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, count bigint NOT NULL,"
        " PRIMARY KEY (store, resource_type))",
        "CREATE TABLE {s}.unkept (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, path text NOT NULL, how text NOT NULL,"
        " seen integer NOT NULL, since text, PRIMARY KEY (store, resource_type, path))",
        "CREATE TABLE {s}.fingerprints (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, source_key text NOT NULL, fingerprint text NOT NULL,"
        " PRIMARY KEY (store, resource_type, source_key))",
        "CREATE TABLE {s}.failures (store integer NOT NULL REFERENCES {s}.stores,"
        " resource_type text NOT NULL, kind text NOT NULL, ident text NOT NULL,"
        " source_key text, target_id text, error text NOT NULL, attempts integer NOT NULL,"
        " first_failed_at text, last_failed_at text,"
        " PRIMARY KEY (store, resource_type, kind, ident))",
        "CREATE TABLE {s}.journal (seq bigserial PRIMARY KEY,"
        " store integer NOT NULL REFERENCES {s}.stores, entry text NOT NULL)",
        "CREATE INDEX ON {s}.journal (store, seq)",
        "CREATE TABLE {s}.cycles (seq bigserial PRIMARY KEY,"
        " store integer NOT NULL REFERENCES {s}.stores, cycle_id text NOT NULL,"
        " started_at text NOT NULL, finished_at text NOT NULL, mode text NOT NULL,"
        " outcome text NOT NULL, summary text NOT NULL, detail text NOT NULL)",
        "CREATE INDEX ON {s}.cycles (store, seq)",
        "CREATE TABLE {s}.source_watermarks (store integer NOT NULL REFERENCES {s}.stores,"
        " source_id text NOT NULL, watermark text NOT NULL, read_at text,"
        " PRIMARY KEY (store, source_id))",
        "CREATE TABLE {s}.source_records (store integer NOT NULL REFERENCES {s}.stores,"
        " source_id text NOT NULL, kind text NOT NULL, source_key text NOT NULL,"
        " record text NOT NULL, seq bigserial, PRIMARY KEY (store, source_id, kind, source_key))",
    ),
)

#: The schema version this scimsync writes to PostgreSQL.
POSTGRES_SCHEMA_VERSION = len(POSTGRES_MIGRATIONS)

#: The first key of every advisory lock scimsync takes (the second is the target's id).
_LOCK_CLASS = 0x5C1A
#: The key openers migrate under (a transaction-level lock).
_MIGRATION_LOCK = (_LOCK_CLASS, 0)
_APPLICATION = "scimsync"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


class PostgresStateStore:
    """A :class:`~scimsync.sync.StateStore` (and
    :class:`~scimsync.sync.SnapshotStore`) in PostgreSQL, through psycopg 3
    (``pip install 'scimsync[postgres]'``)::

        from scimsync.sync import PostgresStateStore

        store = PostgresStateStore("host=db.internal dbname=idm user=scimsync", target="hr-app")

    ``conninfo`` is a libpq connection string or URL, or a callable returning a new
    psycopg connection (for TLS settings, a password from a vault...). ``target``
    names the target whose state this is: one database holds the state of many
    targets, each apart. ``schema`` is the PostgreSQL schema of the tables (created,
    with them, on first open where the account may; or made by a DBA beforehand,
    empty, and granted).

    :meth:`lock` is a session-level advisory lock per target, so cycles of one target
    never overlap across workers and hosts; a worker that dies releases it with its
    connection. Opening migrates the schema forward; a schema of a newer scimsync, or
    one that is not scimsync's, raises :class:`~scimsync.errors.StateError` and is
    left untouched.

    Limitation: a worker cut off from PostgreSQL (not killed) while it holds the lock
    keeps writing to the target until its next state write fails; PostgreSQL releases
    the lock when it notices the lost connection (TCP keepalive settings decide when),
    and another worker may start the same target meanwhile. The journal and the
    lookup before every retried create keep that from duplicating accounts; set
    ``keepalives_idle`` and ``tcp_user_timeout`` in ``conninfo`` to bound the window.
    """

    def __init__(
        self,
        conninfo: str | Callable[[], psycopg.Connection[Any]],
        *,
        target: str = "default",
        schema: str = "scimsync",
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise StateError(f"schema must be a plain lower-case PostgreSQL name, got {schema!r}")
        if not target:
            raise StateError("target must name the target this state belongs to")
        try:
            import psycopg
        except ImportError as exc:
            raise StateError(
                "PostgresStateStore needs psycopg 3: pip install 'scimsync[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self._conninfo = conninfo
        self.target = target
        self.schema = schema
        self._lock = threading.RLock()
        self._cycle = threading.Lock()
        self._locked = False
        self._db: psycopg.Connection[Any] | None = None
        self._finalizer = weakref.finalize(self, _close_quietly, [None])
        try:
            db = self._connection()
            self._migrate(db)
            row = db.execute(
                f"INSERT INTO {self._s}.stores (name) VALUES (%s)"  # noqa: S608 - our name
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                (target,),
            ).fetchone()
        except psycopg.Error as exc:
            self.close()
            raise StateError(f"cannot open the state in PostgreSQL ({self}): {exc}") from exc
        except BaseException:
            self.close()
            raise
        assert row is not None
        self._store: int = int(row[0])

    def __repr__(self) -> str:
        # Never the conninfo: it may carry a password.
        return f"PostgresStateStore(target={self.target!r}, schema={self.schema!r})"

    def __str__(self) -> str:
        return f"target {self.target!r}, schema {self.schema!r}"

    def __enter__(self) -> PostgresStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def _s(self) -> str:
        return f'"{self.schema}"'

    # -- the connection ---------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection; a new one if it was lost outside a cycle."""
        db = self._db
        if db is not None and not db.closed and not db.broken:
            return db
        if self._locked:
            raise StateError(
                f"the PostgreSQL connection holding the cycle lock ({self}) was lost: the "
                "lock went with it and this cycle's state is not saved; the next cycle "
                "reads the journal it left"
            )
        if callable(self._conninfo):
            db = self._conninfo()
            db.autocommit = True
        else:
            db = self._psycopg.connect(
                self._conninfo, autocommit=True, application_name=_application_name()
            )
        self._db = db
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _close_quietly, [db])
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            db = self._connection()
            with db.transaction():
                yield db

    # -- schema ----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._lock:
            version = _schema_version(self._connection(), self.schema)
        return version or 0

    def _migrate(self, db: psycopg.Connection[Any]) -> None:
        if _schema_version(db, self.schema) == POSTGRES_SCHEMA_VERSION:
            return  # the usual open: nothing to write, no lock taken
        with db.transaction():
            # One opener migrates at a time; the others find it done.
            db.execute("SELECT pg_advisory_xact_lock(%s, %s)", _MIGRATION_LOCK)
            version = _schema_version(db, self.schema)
            if version is None:
                tables = db.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (self.schema,)
                ).fetchone()
                if tables and tables[0]:
                    raise StateError(
                        f"the PostgreSQL schema {self.schema!r} holds tables but is not a "
                        "scimsync state schema: choose another schema"
                    )
                version = 0
            if version > POSTGRES_SCHEMA_VERSION:
                raise StateError(
                    f"the PostgreSQL schema {self.schema!r} has scimsync schema version "
                    f"{version}, newer than the {POSTGRES_SCHEMA_VERSION} this scimsync "
                    "knows: upgrade scimsync"
                )
            if version == 0:
                db.execute(f"CREATE SCHEMA IF NOT EXISTS {self._s}")
                db.execute(
                    f"CREATE TABLE {self._s}.meta (name text PRIMARY KEY, value text NOT NULL)"
                )
                db.execute(
                    f"INSERT INTO {self._s}.meta VALUES ('application', %s),"  # noqa: S608
                    " ('schema_version', '0')",
                    (_APPLICATION,),
                )
            for step in range(version, POSTGRES_SCHEMA_VERSION):
                for statement in POSTGRES_MIGRATIONS[step]:
                    db.execute(statement.replace("{s}", self._s))
                db.execute(
                    f"UPDATE {self._s}.meta SET value = %s"  # noqa: S608
                    " WHERE name = 'schema_version'",
                    (str(step + 1),),
                )

    # -- the protocol ---------------------------------------------------------------------

    def load(self) -> StoredState:
        """Read this target's stored state and journal (one consistent snapshot)."""
        try:
            with self._transaction() as db:
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                rows = {
                    table: db.execute(
                        f"SELECT {columns} FROM {self._s}.{table} WHERE store = %s"  # noqa: S608
                        + (f" ORDER BY {LOAD_ORDER[table]}" if table in LOAD_ORDER else ""),
                        (self._store,),
                    ).fetchall()
                    for table, columns in LOAD_COLUMNS.items()
                }
            return assemble_state(rows)
        except (self._psycopg.Error, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"cannot read the state in PostgreSQL ({self}): {exc}") from exc

    def append_journal(self, entries: Sequence[JournalEntry]) -> None:
        """Add journal entries in one transaction, committed before this returns."""
        if not entries:
            return
        try:
            with self._transaction() as db, db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {self._s}.journal (store, entry) VALUES (%s, %s)",  # noqa: S608
                    [(self._store, journal_text(entry)) for entry in entries],
                )
        except self._psycopg.Error as exc:
            raise StateError(f"cannot write the journal in PostgreSQL ({self}): {exc}") from exc

    def save(self, stored: StoredState, cycle: CycleRecord | None = None) -> None:
        """Replace this target's state (writing only what changed) and journal, add
        ``cycle``: one transaction."""
        s, store = self._s, self._store
        try:
            with self._transaction() as db:
                for table, (keys, values, rows) in state_rows(stored).items():
                    _sync_table(
                        db, f"{s}.{table}", store, key_columns=keys, value_columns=values, rows=rows
                    )
                db.execute(f"DELETE FROM {s}.journal WHERE store = %s", (store,))  # noqa: S608
                if stored.journal:
                    with db.cursor() as cursor:
                        cursor.executemany(
                            f"INSERT INTO {s}.journal (store, entry) VALUES (%s, %s)",  # noqa: S608
                            [(store, journal_text(e)) for e in stored.journal],
                        )
                if cycle is not None:
                    db.execute(
                        f"INSERT INTO {s}.cycles (store, cycle_id, started_at,"  # noqa: S608
                        " finished_at, mode, outcome, summary, detail)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (store, *_state.cycle_row(cycle)),
                    )
                    db.execute(
                        f"DELETE FROM {s}.cycles WHERE store = %s AND seq <= ("  # noqa: S608
                        f"SELECT seq FROM {s}.cycles WHERE store = %s"
                        " ORDER BY seq DESC OFFSET %s LIMIT 1)",
                        (store, store, _state.HISTORY_LENGTH),
                    )
        except self._psycopg.Error as exc:
            raise StateError(f"cannot save the state in PostgreSQL ({self}): {exc}") from exc

    def history(self, limit: int = 20) -> tuple[CycleRecord, ...]:
        """This target's most recent cycles, newest first."""
        try:
            with self._lock:
                rows = (
                    self._connection()
                    .execute(
                        "SELECT cycle_id, started_at, finished_at, mode, outcome, summary,"  # noqa: S608
                        f" detail FROM {self._s}.cycles WHERE store = %s"
                        " ORDER BY seq DESC LIMIT %s",
                        (self._store, max(limit, 0)),
                    )
                    .fetchall()
                )
        except self._psycopg.Error as exc:
            raise StateError(f"cannot read the history in PostgreSQL ({self}): {exc}") from exc
        return tuple(_state.cycle_from_row(row) for row in rows)

    def load_snapshot(self, source_id: str) -> SourceSnapshot | None:
        """The snapshot saved for ``source_id``, or None."""
        s = self._s
        try:
            with self._transaction() as db:
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = db.execute(
                    f"SELECT watermark, read_at FROM {s}.source_watermarks"  # noqa: S608
                    " WHERE store = %s AND source_id = %s",
                    (self._store, source_id),
                ).fetchone()
                if row is None:
                    return None
                texts = db.execute(
                    f"SELECT record FROM {s}.source_records"  # noqa: S608
                    " WHERE store = %s AND source_id = %s ORDER BY seq",
                    (self._store, source_id),
                ).fetchall()
            records = tuple(record_from_json(text) for (text,) in texts)
        except (self._psycopg.Error, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"cannot read the source snapshot in PostgreSQL ({self}): {exc}"
            ) from exc
        return SourceSnapshot(watermark=row[0], records=records, read_at=_state._parse_time(row[1]))

    def save_snapshot(self, source_id: str, snapshot: SourceSnapshot | None) -> None:
        """Replace the snapshot of ``source_id`` in one transaction, writing only the
        records that changed (None: forget it)."""
        s, store = self._s, self._store
        try:
            with self._transaction() as db:
                if snapshot is None:
                    for table in ("source_watermarks", "source_records"):
                        db.execute(
                            f"DELETE FROM {s}.{table} WHERE store = %s AND source_id = %s",  # noqa: S608
                            (store, source_id),
                        )
                    return
                db.execute(
                    f"INSERT INTO {s}.source_watermarks (store, source_id, watermark, read_at)"  # noqa: S608
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (store, source_id) DO UPDATE"
                    " SET watermark = EXCLUDED.watermark, read_at = EXCLUDED.read_at",
                    (store, source_id, snapshot.watermark, _state._time_text(snapshot.read_at)),
                )
                rows = {
                    (source_id, record.kind, record.key): (record_to_json(record),)
                    for record in snapshot.records
                    if record.key is not None
                }
                _sync_table(
                    db,
                    f"{s}.source_records",
                    store,
                    key_columns=("source_id", "kind", "source_key"),
                    value_columns=("record",),
                    rows=rows,
                    where=("source_id", source_id),
                )
        except self._psycopg.Error as exc:
            raise StateError(
                f"cannot save the source snapshot in PostgreSQL ({self}): {exc}"
            ) from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this target's cycle lock: this process's, and a PostgreSQL advisory lock
        that keeps every other worker on any host out."""
        if not self._cycle.acquire(blocking=False):
            raise CycleInProgressError(
                f"another sync cycle of this process is running for {self.target!r}"
            )
        try:
            self._acquire()
            try:
                yield
            finally:
                self._release()
        finally:
            self._cycle.release()

    def _acquire(self) -> None:
        key = (_LOCK_CLASS, self._store)
        try:
            with self._lock:
                db = self._connection()
                row = db.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
                if row is not None and row[0]:
                    self._locked = True
                    return
                holder = db.execute(
                    "SELECT a.application_name, a.pid FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s"
                    " AND l.objid = %s AND l.objsubid = 2 AND l.database = ("
                    "SELECT oid FROM pg_database WHERE datname = current_database())",
                    key,
                ).fetchone()
        except self._psycopg.Error as exc:
            raise StateError(f"cannot take the cycle lock in PostgreSQL ({self}): {exc}") from exc
        who = None
        if holder is not None:
            who = f"{holder[0] or 'a PostgreSQL session'} (backend {holder[1]})"
        raise CycleInProgressError(
            f"another worker holds the cycle lock of target {self.target!r} in PostgreSQL"
            + (f": {who}" if who else ""),
            holder=who,
        )

    def _release(self) -> None:
        with self._lock:
            db = self._db
            locked, self._locked = self._locked, False
            if not locked or db is None or db.closed or db.broken:
                return  # a lost connection took the lock with it
            with contextlib.suppress(self._psycopg.Error):
                db.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, self._store))

    def close(self) -> None:
        """Close the connection (which releases any lock it held)."""
        with self._lock:
            self._finalizer()
            self._db = None


# -- helpers --------------------------------------------------------------------------------


def _application_name() -> str:
    """What ``pg_stat_activity`` shows for our connections, and a refused lock names."""
    return f"scimsync {socket.gethostname()} pid {os.getpid()}"[:63]


def _close_quietly(holder: list[Any]) -> None:
    db = holder[0]
    if db is not None:
        with contextlib.suppress(Exception):
            db.close()


def _schema_version(db: psycopg.Connection[Any], schema: str) -> int | None:
    """The scimsync schema version of ``schema``; None when it has no ``meta`` table
    (no schema, or not scimsync's); raises StateError for another application's."""
    # A catalog query, not to_regclass(): its cache may not yet see a schema that an
    # opener migrating at the same moment committed while this one waited for it.
    found = db.execute(
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = 'meta'",
        (schema,),
    ).fetchone()
    if found is None or not found[0]:
        return None
    values = dict(
        db.execute(f'SELECT name, value FROM "{schema}".meta').fetchall()  # noqa: S608
    )
    if values.get("application") != _APPLICATION:
        raise StateError(
            f"the PostgreSQL schema {schema!r} is not a scimsync state schema: choose another"
        )
    return int(values.get("schema_version") or 0)


def _sync_table(
    db: psycopg.Connection[Any],
    table: str,
    store: int,
    *,
    key_columns: tuple[str, ...],
    value_columns: tuple[str, ...],
    rows: Mapping[tuple[Any, ...], tuple[Any, ...]],
    where: tuple[str, Any] | None = None,
) -> None:
    """Make ``table`` hold exactly ``rows`` for ``store`` (and ``where``), writing only
    the differences."""
    columns = ", ".join((*key_columns, *value_columns))
    select = f"SELECT {columns} FROM {table} WHERE store = %s"  # noqa: S608 - our own names
    arguments: tuple[Any, ...] = (store,)
    if where is not None:
        select += f" AND {where[0]} = %s"
        arguments += (where[1],)
    existing = {
        tuple(row[: len(key_columns)]): tuple(row[len(key_columns) :])
        for row in db.execute(select, arguments)
    }
    gone = [(store, *key) for key in existing if key not in rows]
    changed = [
        (store, *key, *values) for key, values in rows.items() if existing.get(key) != values
    ]
    with db.cursor() as cursor:
        if gone:
            match = " AND ".join(f"{c} = %s" for c in ("store", *key_columns))
            cursor.executemany(f"DELETE FROM {table} WHERE {match}", gone)  # noqa: S608
        if changed:
            marks = ", ".join("%s" for _ in ("store", *key_columns, *value_columns))
            conflict = ", ".join(("store", *key_columns))
            update = (
                "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in value_columns)
                if value_columns
                else "DO NOTHING"
            )
            cursor.executemany(
                f"INSERT INTO {table} (store, {columns}) VALUES ({marks})"  # noqa: S608
                f" ON CONFLICT ({conflict}) {update}",
                changed,
            )
