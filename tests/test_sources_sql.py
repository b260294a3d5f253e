"""SqlSource: DB-API 2.0 queries streamed with fetchmany, against SQLite (stdlib) and a
real PostgreSQL on 127.0.0.1 (psycopg 3; see ``tests/_postgres.py``)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest

from scimsync.errors import SourceReadError
from scimsync.mapping import Mapping
from scimsync.sources import IssueCode, Record, RecordIssue, SqlSource

if TYPE_CHECKING:
    from pathlib import Path

    from _postgres import Postgres

PEOPLE = [
    ("E1", "ann@example.com", "Ann", "eng;ops", 10, "2024-01-31", b"\x00\x01"),
    ("E2", "bob@example.com", "Bob", "ops", 20, None, None),
    ("E3", "carl@example.com", None, "", 30, None, None),
]


@pytest.fixture
def hr_db(tmp_path: Path) -> Path:
    """An SQLite file with a staff table (one column of bytes)."""
    path = tmp_path / "hr.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE staff (employee_id TEXT, email TEXT, first_name TEXT, teams TEXT,"
            " version INTEGER, hired TEXT, badge BLOB)"
        )
        db.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?, ?)", PEOPLE)
        db.execute("CREATE TABLE teams (name TEXT, members TEXT)")
        db.executemany(
            "INSERT INTO teams VALUES (?, ?)", [("eng", "E1"), ("ops", "E1; E2"), ("empty", None)]
        )
    db.close()
    return path


def connector(path: Path) -> Any:
    return lambda: sqlite3.connect(path)


def records(source: SqlSource) -> dict[str, Record]:
    return {i.key: i for i in source.read() if isinstance(i, Record) and i.key is not None}


# -- SQLite -------------------------------------------------------------------------------


def test_rows_become_records_keyed_by_a_column(hr_db: Path) -> None:
    """Each row is a record keyed by the key column, its columns as attributes; bytes
    are base64 text, NULL None, and a multi-valued column a list."""
    source = SqlSource(
        connector(hr_db),
        "SELECT * FROM staff ORDER BY employee_id",
        key="employee_id",
        multi_valued={"teams": ";"},
    )
    found = records(source)
    assert ["E1", "E2", "E3"] == list(found)
    assert {
        "employee_id": "E1",
        "email": "ann@example.com",
        "first_name": "Ann",
        "teams": ["eng", "ops"],
        "version": 10,
        "hired": "2024-01-31",
        "badge": "AAE=",
    } == dict(found["E1"].attributes)
    assert (None, []) == (found["E3"]["first_name"], found["E3"]["teams"])
    assert "sql row line 2 key 'E2'" == found["E2"].where()


def test_parameters_are_bound_never_formatted(hr_db: Path) -> None:
    """A parameter holding SQL (a quote and OR) is bound as a value: it matches nobody,
    where pasting it into the query would have matched everyone."""
    hostile = "x' OR '1'='1"
    source = SqlSource(
        connector(hr_db), "SELECT * FROM staff WHERE email = ?", (hostile,), key="employee_id"
    )
    assert {} == records(source)
    exact = SqlSource(
        connector(hr_db),
        "SELECT * FROM staff WHERE email = ?",
        ("bob@example.com",),
        key="employee_id",
    )
    assert ["E2"] == list(records(exact))


def test_driver_values_become_text_a_record_can_keep() -> None:
    """Dates and times become ISO text, decimals and UUIDs text, bytes base64, arrays
    lists; text, numbers, booleans and None stay as they are."""
    import decimal
    import uuid

    from scimsync.sources._sql import _value

    stamp = dt.datetime(2024, 1, 31, 12, 0, tzinfo=dt.timezone.utc)
    assert [
        "2024-01-31T12:00:00+00:00",
        "2024-01-31",
        "12.50",
        "00000000-0000-0000-0000-000000000001",
        "AAE=",
        ["a", "2024-01-31"],
        "x",
        3,
        1.5,
        True,
        None,
    ] == [
        _value(v)
        for v in (
            stamp,
            stamp.date(),
            decimal.Decimal("12.50"),
            uuid.UUID(int=1),
            b"\x00\x01",
            ("a", stamp.date()),
            "x",
            3,
            1.5,
            True,
            None,
        )
    ]


def test_a_groups_query_names_members_by_key(hr_db: Path) -> None:
    """With kind="group", the members column is split into member keys (blanks left out)
    and is not kept as an attribute."""
    source = SqlSource(
        connector(hr_db), "SELECT * FROM teams", key="name", kind="group", members="members"
    )
    found = records(source)
    assert {"eng": ("E1",), "ops": ("E1", "E2"), "empty": ()} == {
        key: record.members for key, record in found.items()
    }
    assert {"name": "ops"} == dict(found["ops"].attributes)
    assert {"group"} == {record.kind for record in found.values()}


def test_a_query_without_the_key_column_raises_naming_it(hr_db: Path) -> None:
    """A query lacking the key column raises SourceReadError naming the column and the
    columns it has, before any record."""
    source = SqlSource(connector(hr_db), "SELECT email FROM staff", key="employee_id")
    with pytest.raises(SourceReadError, match=r"no column 'employee_id'.*email"):
        list(source.read())


def test_a_connection_that_fails_raises_a_clear_error() -> None:
    """A connect callable that raises gives SourceReadError saying the connection failed."""

    def refuse() -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    with pytest.raises(SourceReadError, match=r"cannot connect.*unable to open"):
        list(SqlSource(refuse, "SELECT 1 AS id").read())


def test_a_query_the_database_refuses_raises(hr_db: Path) -> None:
    """SQL the database refuses raises SourceReadError with the database's reason."""
    with pytest.raises(SourceReadError, match=r"refused the query.*no such table"):
        list(SqlSource(connector(hr_db), "SELECT * FROM nowhere").read())


class _FailingCursor:
    """A cursor whose second fetchmany fails, as a dropped connection would."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor
        self.fetches = 0

    @property
    def description(self) -> Any:
        return self.cursor.description

    def execute(self, query: str, params: Any) -> None:
        self.cursor.execute(query, params)

    def fetchmany(self, size: int) -> list[Any]:
        self.fetches += 1
        if self.fetches == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return self.cursor.fetchmany(size)

    def close(self) -> None:
        self.cursor.close()


def test_a_read_that_fails_midway_ends_with_read_incomplete(hr_db: Path) -> None:
    """A fetch failing after the first batch keeps the rows read and ends with a
    READ_INCOMPLETE issue; the mapping then marks the desired state incomplete."""
    source = SqlSource(
        connector(hr_db),
        "SELECT * FROM staff ORDER BY employee_id",
        key="employee_id",
        batch_size=1,
        cursor=lambda connection: _FailingCursor(connection.cursor()),
    )
    items = list(source.read())
    assert ["E1"] == [i.key for i in items if isinstance(i, Record)]
    assert [IssueCode.READ_INCOMPLETE] == [i.code for i in items if isinstance(i, RecordIssue)]
    assert "after 1 rows: OperationalError: disk I/O error" in str(items[-1])
    assert False is Mapping(users={"userName": "email"}).map(source).desired.complete


def test_a_duplicate_key_is_reported_and_neither_row_used(hr_db: Path) -> None:
    """Two rows with one key: the mapping reports DUPLICATE_KEY for each row and uses
    neither, protecting the key."""
    source = SqlSource(
        connector(hr_db),
        "SELECT employee_id, email FROM staff UNION ALL SELECT 'E1', 'other@example.com'",
        key="employee_id",
    )
    result = Mapping(users={"userName": "email"}).map(source)
    assert ["E2", "E3"] == sorted(u.key for u in result.desired.users)
    assert [("E1", IssueCode.DUPLICATE_KEY)] * 2 == [(i.key, i.code) for i in result.issues]
    assert ["E1"] == list(result.desired.protected_user_keys)


def test_a_delta_read_returns_rows_at_or_past_the_watermark(hr_db: Path) -> None:
    """With watermark="version", a full read reports the largest version; a delta read
    from it returns the rows changed since (and those of that version, read again)."""
    source = SqlSource(
        connector(hr_db), "SELECT * FROM staff", key="employee_id", watermark="version"
    )
    full = source.read_changes(None)
    assert 3 == len(list(full))
    assert full.watermark is not None
    with sqlite3.connect(hr_db) as db:
        db.execute(
            "UPDATE staff SET email = 'ann@new.example.com', version = 31 WHERE employee_id = 'E1'"
        )
    db.close()
    change = source.read_changes(full.watermark)
    changed = {i.key: i for i in change if isinstance(i, Record)}
    assert ["E1", "E3"] == sorted(k for k in changed if k)
    assert "ann@new.example.com" == changed["E1"]["email"]
    assert '{"value": 31}' == change.watermark  # the value, with its type


class _LazyCursor:
    """A DB-API cursor producing ``rows`` rows on demand, counting the batches asked for."""

    description = (("id",), ("email",), ("name",))

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.given = 0
        self.sizes: set[int] = set()

    def execute(self, query: str, params: Any) -> None:
        self.given = 0

    def fetchmany(self, size: int) -> list[tuple[str, str, str]]:
        self.sizes.add(size)
        count = min(size, self.rows - self.given)
        start = self.given
        self.given += count
        return [(f"E{i}", f"user{i}@example.com", f"User {i}") for i in range(start, start + count)]

    def close(self) -> None:
        pass


class _LazyConnection:
    def __init__(self, cursor: _LazyCursor) -> None:
        self._cursor = cursor

    def cursor(self) -> _LazyCursor:
        return self._cursor

    def close(self) -> None:
        pass


def test_memory_stays_flat_however_many_rows() -> None:
    """Rows are fetched batch_size at a time and never accumulated: reading 50,000 rows
    peaks at the memory of a batch, not of the result."""
    cursor = _LazyCursor(50_000)
    source = SqlSource(lambda: _LazyConnection(cursor), "SELECT", batch_size=500)
    tracemalloc.start()
    try:
        count = sum(1 for _ in source.read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (50_000, {500}) == (count, cursor.sizes)
    assert peak < 2_000_000, peak  # a batch of 500 rows; 50,000 would need ~25 MB


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_staff(postgres: Postgres) -> Postgres:
    """A staff table on the server, with PostgreSQL types (timestamptz, numeric, arrays)."""
    import psycopg

    with psycopg.connect(postgres.conninfo, autocommit=True) as db:
        db.execute(
            "CREATE TABLE staff (employee_id text PRIMARY KEY, email text, salary numeric,"
            " teams text[], updated_at timestamptz NOT NULL)"
        )
        db.execute(
            "INSERT INTO staff SELECT 'E' || i, 'user' || i || '@example.com', 1000.50,"
            " ARRAY['eng', 'ops'], timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'"
            " FROM generate_series(1, 2500) AS i"
        )
    return postgres


def pg_source(server: Postgres, **settings: Any) -> SqlSource:
    import psycopg

    return SqlSource(
        lambda: psycopg.connect(server.conninfo),
        "SELECT * FROM staff WHERE email LIKE %s",
        ("%@example.com",),
        key="employee_id",
        name="postgres",
        **settings,
    )


@pytest.mark.database
def test_postgres_rows_stream_through_a_server_side_cursor(pg_staff: Postgres) -> None:
    """psycopg rows are read through a named (server-side) cursor in batches, with the
    parameter bound; numeric is text, an array a list, a timestamp ISO text."""
    found = records(pg_source(pg_staff, batch_size=100))
    assert 2500 == len(found)
    assert {
        "employee_id": "E7",
        "email": "user7@example.com",
        "salary": "1000.50",
        "teams": ["eng", "ops"],
        "updated_at": "2024-01-01T00:07:00+00:00",
    } == dict(found["E7"].attributes)


@pytest.mark.database
def test_postgres_delta_read_with_a_timestamp_watermark(pg_staff: Postgres) -> None:
    """A timestamptz watermark is stored with its type and bound back as a timestamp: the
    delta read returns the row changed since, and the row of the last instant."""
    import psycopg

    source = pg_source(pg_staff, watermark="updated_at")
    full = source.read_changes(None)
    assert 2500 == sum(1 for _ in full)
    with psycopg.connect(pg_staff.conninfo, autocommit=True) as db:
        db.execute(
            "UPDATE staff SET email = 'moved@example.com', updated_at = updated_at + interval"
            " '1 year' WHERE employee_id = 'E3'"
        )
    change = source.read_changes(full.watermark)
    assert ["E2500", "E3"] == sorted(i.key for i in change if isinstance(i, Record) and i.key)


@pytest.mark.database
def test_postgres_reads_through_a_cursor_on_the_server(pg_staff: Postgres) -> None:
    """While the rows come in, the server holds the source's cursor (pg_cursors lists it):
    the result is fetched a batch at a time, never whole into this process."""
    import psycopg

    opened: list[Any] = []

    def connect() -> Any:
        opened.append(psycopg.connect(pg_staff.conninfo))
        return opened[-1]

    source = SqlSource(connect, "SELECT * FROM staff", key="employee_id", batch_size=100)
    read = iter(source.read())
    next(read)
    (cursors,) = opened[0].execute("SELECT array_agg(name) FROM pg_cursors").fetchone()
    assert 2499 == sum(1 for _ in read)
    assert [name for name in cursors or () if name.startswith("scimsync_")]


@pytest.mark.database
def test_postgres_connection_lost_midway_makes_the_read_incomplete(pg_staff: Postgres) -> None:
    """The server ending the session between two batches (pg_terminate_backend, as a
    restart or a network cut would) ends the read with READ_INCOMPLETE after the rows
    read; mapped, the read is incomplete, so nobody is deprovisioned."""
    import psycopg

    opened: list[Any] = []

    def connect() -> Any:
        opened.append(psycopg.connect(pg_staff.conninfo))
        return opened[-1]

    source = SqlSource(connect, "SELECT * FROM staff", key="employee_id", batch_size=100)
    read = iter(source.read())
    first = [next(read) for _ in range(100)]
    with psycopg.connect(pg_staff.conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (opened[0].info.backend_pid,))
    rest = list(read)
    assert [IssueCode.READ_INCOMPLETE] == [i.code for i in rest if isinstance(i, RecordIssue)]
    assert "after 100 rows" in rest[-1].reason  # type: ignore[union-attr]
    result = Mapping(users={"userName": "email"}).map([*first, *rest])
    assert False is result.desired.complete


@pytest.mark.database
def test_postgres_wrong_password_raises_without_it(pg_staff: Postgres) -> None:
    """A refused login is SourceReadError saying the connection failed; the message
    carries the server's reason, not the password."""
    import psycopg

    wrong = pg_staff.conninfo.replace(pg_staff.password, "not-the-pg-password")
    source = SqlSource(lambda: psycopg.connect(wrong), "SELECT 1 AS id", name="hr")
    with pytest.raises(SourceReadError, match="hr: cannot connect") as raised:
        list(source.read())
    assert "password authentication failed" in str(raised.value)
    assert "not-the-pg-password" not in str(raised.value)


@pytest.mark.database
def test_postgres_unreachable_server_raises() -> None:
    """Nothing listening: SourceReadError saying the connection failed."""
    import socket

    psycopg = pytest.importorskip("psycopg")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        source = SqlSource(
            lambda: psycopg.connect(f"host=127.0.0.1 port={port} connect_timeout=5"),
            "SELECT 1 AS id",
        )
        with pytest.raises(SourceReadError, match="cannot connect"):
            list(source.read())


@pytest.mark.database
def test_postgres_duplicate_keys_are_reported_naming_the_key(pg_staff: Postgres) -> None:
    """A query giving one key twice: the mapping reports DUPLICATE_KEY naming it, and
    uses neither row; the others map."""
    import psycopg

    source = SqlSource(
        lambda: psycopg.connect(pg_staff.conninfo),
        "SELECT employee_id, email FROM staff WHERE employee_id IN ('E1', 'E2')"
        " UNION ALL SELECT 'E1', 'again@example.com'",
        key="employee_id",
    )
    result = Mapping(users={"userName": "email"}).map(source)
    assert ["E2"] == [u.key for u in result.desired.users]
    duplicates = [i for i in result.issues if i.code is IssueCode.DUPLICATE_KEY]
    assert {"E1"} == {i.key for i in duplicates}
