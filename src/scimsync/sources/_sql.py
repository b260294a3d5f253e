"""Identity records from a database, through any DB-API 2.0 (PEP 249) driver, streamed."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, SourceReadError
from ._delta import ChangeRead
from ._records import IssueCode, Record, RecordIssue, RecordKind

if TYPE_CHECKING:
    from ._protocol import SourceItem

__all__ = ["SqlSource"]

_PARAMSTYLES = ("qmark", "numeric", "named", "format", "pyformat")
#: Column values a record holds as they come.
_PLAIN = frozenset({str, int, float, bool})
_SINCE = "scimsync_since"


class SqlSource:
    """Reads identity records from a database query, a batch of rows at a time.

    ::

        import sqlite3
        from scimsync.sources import SqlSource

        source = SqlSource(
            lambda: sqlite3.connect("hr.db"),
            "SELECT employee_id, email, first_name, last_name, updated_at"
            " FROM staff WHERE status <> ?",
            ("contractor",),
            key="employee_id",
            watermark="updated_at",
        )

    ``connect`` is called once per read and must return a new DB-API 2.0
    connection (``sqlite3``, ``psycopg``, ``pymysql``, ``oracledb``…); the source
    closes it after the read. ``query`` is run with ``params`` *bound* by the driver
    (in its ``paramstyle``), never formatted into the SQL text. Each row becomes a
    record whose attributes are the columns, named as the query names them; ``key``
    names the column holding the stable key. For a query of groups
    (``kind="group"``), ``members`` names the column listing member keys (an array,
    or text split by its ``multi_valued`` separator, ``";"`` unless given); columns
    in ``multi_valued`` (``{"groups": ";"}``) are split into lists.

    Values: text, numbers, booleans and None as the driver gives them; dates and
    times become ISO 8601 text, decimals and UUIDs text, bytes base64 text, arrays
    lists. So records look the same however they are read (or stored between reads).

    **Streaming.** Rows are fetched ``batch_size`` at a time with ``fetchmany``:
    memory stays flat on millions of rows, as long as the driver's cursor streams.
    ``sqlite3`` does; PostgreSQL drivers hold a whole result in memory unless the
    cursor is a server-side (named) one, which this source opens for ``psycopg`` and
    ``psycopg2`` connections (``cursor`` takes any other way to open one:
    ``cursor=lambda connection: connection.cursor(...)``).

    **What goes wrong.** A connection that cannot be made, a query the database
    refuses, or a query without the ``key`` (or ``members``, ``watermark``) column
    raises :class:`~scimsync.errors.SourceReadError` before any record. A failure
    while rows are fetched yields a ``READ_INCOMPLETE`` issue (what was read is
    kept): never "everyone left". A row without a key gives a record without one
    (the mapping reports it); two rows with one key, a ``DUPLICATE_KEY`` issue
    from the mapping.

    **Delta reads.** With ``watermark`` naming a column that grows with every change
    (an update timestamp, a row version), :meth:`read_changes` runs
    ``SELECT * FROM (<query>) AS changes WHERE <watermark> >= <the last value>`` (the
    value bound, never formatted), so only changed rows are read; the new watermark
    is the largest value read. ``>=`` reads the rows of the last instant again (a
    row committed later with the same timestamp is not missed); a column set at
    commit (a sequence) is exact. Deleted rows are found by full reads.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        query: str,
        params: Sequence[Any] | Mapping[str, Any] = (),
        *,
        key: str = "id",
        kind: RecordKind = "user",
        members: str | None = None,
        multi_valued: Mapping[str, str] | None = None,
        watermark: str | None = None,
        batch_size: int = 1000,
        paramstyle: str | None = None,
        cursor: Callable[[Any], Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(connect):
            raise ConfigurationError("connect must be a callable returning a DB-API connection")
        if not isinstance(query, str) or not query.strip():
            raise ConfigurationError("query must be SQL text")
        if kind not in ("user", "group"):
            raise ConfigurationError(f"kind must be 'user' or 'group', got {kind!r}")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if paramstyle is not None and paramstyle not in _PARAMSTYLES:
            raise ConfigurationError(
                f"paramstyle must be one of {_PARAMSTYLES}, got {paramstyle!r}"
            )
        if watermark is not None and not watermark.replace("_", "").isalnum():
            raise ConfigurationError(
                f"watermark must be a plain column name (letters, digits, _), got {watermark!r}"
            )
        self.connect = connect
        self.query = query.strip().rstrip(";")
        self.params = params
        self.key = key
        self.kind = kind
        self.members = members
        self.multi_valued = dict(multi_valued or {})
        if members is not None:
            self.multi_valued.setdefault(members, ";")
        self.watermark = watermark
        self.batch_size = batch_size
        self.paramstyle = paramstyle
        self.cursor = cursor
        self.name = name if name is not None else "sql"

    def __repr__(self) -> str:
        return f"SqlSource({self.name!r}, key={self.key!r}, kind={self.kind!r})"

    @property
    def source_id(self) -> str:
        """What this source reads: its name, a digest of the query and its settings."""
        digest = hashlib.sha256(
            json.dumps([self.query, _jsonable(self.params)], default=str).encode()
        ).hexdigest()[:16]
        return f"sql {self.name} {self.kind} key={self.key} watermark={self.watermark} {digest}"

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per row; an issue where the read stopped."""
        return iter(self.read_changes(None))

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        """Read the rows whose ``watermark`` column is at least the stored value (every
        row when ``since`` is None or no ``watermark`` is set)."""
        if self.watermark is None:
            since = None
        return ChangeRead(lambda change: self._read(change, since), since=since)

    def _read(self, change: ChangeRead, since: str | None) -> Iterator[SourceItem]:
        try:
            connection = self.connect()
        except Exception as exc:
            raise SourceReadError(
                f"{self.name}: cannot connect to the database: {type(exc).__name__}: {exc}"
            ) from None
        try:
            yield from self._rows(connection, change, since)
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _rows(self, connection: Any, change: ChangeRead, since: str | None) -> Iterator[SourceItem]:
        query, params = self.query, self.params
        if since is not None:
            assert self.watermark is not None
            style = self.paramstyle or _paramstyle(connection)
            query, params = _changes_query(query, params, self.watermark, since, style)
        try:
            cursor = self._open_cursor(connection)
            cursor.execute(query, params)
            columns = [column[0] for column in cursor.description or ()]
        except Exception as exc:
            raise SourceReadError(
                f"{self.name}: the database refused the query: {type(exc).__name__}: {exc}"
            ) from None
        for needed, what in (
            (self.key, "key"),
            (self.members, "members"),
            (self.watermark, "watermark"),
        ):
            if needed is not None and needed not in columns:
                raise SourceReadError(
                    f"{self.name}: the query has no column {needed!r} (the {what} column); "
                    f"its columns: {', '.join(columns)}"
                )
        newest: Any = _decode_watermark(since) if since is not None else None
        position = 0
        origin = self.name
        separators = [self.multi_valued.get(column) for column in columns]
        mark_at = columns.index(self.watermark) if self.watermark is not None else None
        try:
            while True:
                try:
                    rows = cursor.fetchmany(self.batch_size)
                except Exception as exc:
                    yield RecordIssue(
                        code=IssueCode.READ_INCOMPLETE,
                        reason=f"fetching rows failed after {position} rows: "
                        f"{type(exc).__name__}: {exc}",
                        kind=self.kind,
                        origin=origin,
                    )
                    return
                if not rows:
                    break
                for row in rows:
                    position += 1
                    if mark_at is not None:
                        mark = row[mark_at]
                        if mark is not None and (newest is None or _later(mark, newest)):
                            newest = mark
                    yield self._record(columns, separators, row, position)
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        if self.watermark is not None:
            change.watermark = _encode_watermark(newest) if newest is not None else since

    def _open_cursor(self, connection: Any) -> Any:
        if self.cursor is not None:
            return self.cursor(connection)
        if type(connection).__module__.split(".")[0] in ("psycopg", "psycopg2"):
            # A named cursor streams from the server; a plain one holds the whole result.
            return connection.cursor(name=f"scimsync_{uuid.uuid4().hex[:12]}")
        return connection.cursor()

    def _record(
        self, columns: list[str], separators: list[str | None], row: Sequence[Any], position: int
    ) -> Record | RecordIssue:
        attributes: dict[str, Any] = {}
        for column, separator, raw in zip(columns, separators, row, strict=False):
            value = raw if raw is None or raw.__class__ in _PLAIN else _value(raw)
            if separator is not None and isinstance(value, str):
                value = [part.strip() for part in value.split(separator) if part.strip()]
            attributes[column] = value
        raw_key = attributes.get(self.key)
        key = None if raw_key is None or raw_key == "" else str(raw_key).strip() or None
        members: tuple[str, ...] = ()
        if self.kind == "group" and self.members is not None:
            value = attributes.pop(self.members, None)
            if value is None:
                members = ()
            elif isinstance(value, list):
                members = tuple(str(v) for v in value if v is not None and str(v).strip())
            else:
                return RecordIssue(
                    code=IssueCode.MALFORMED,
                    reason=f"the members column {self.members!r} holds {type(value).__name__}",
                    key=key,
                    line=position,
                    kind="group",
                    origin=self.name,
                )
        return Record(
            key=key,
            attributes=attributes,
            kind=self.kind,
            members=members,
            line=position,
            origin=f"{self.name} row",
        )


def _value(value: Any) -> Any:
    """A column value as a record holds it (see :class:`SqlSource`)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value


def _paramstyle(connection: Any) -> str:
    module = sys.modules.get(type(connection).__module__.split(".")[0])
    style = getattr(module, "paramstyle", None)
    if style not in _PARAMSTYLES:
        raise ConfigurationError(
            "cannot tell the driver's paramstyle for the watermark: pass paramstyle="
        )
    return str(style)


def _changes_query(
    query: str, params: Sequence[Any] | Mapping[str, Any], column: str, since: str, style: str
) -> tuple[str, Any]:
    """The query reading only rows whose ``column`` is at least ``since`` (bound)."""
    value = _decode_watermark(since)
    if isinstance(params, Mapping):
        if style not in ("named", "pyformat"):
            raise ConfigurationError(
                f"named params need a named paramstyle, the driver's is {style}"
            )
        mark = f":{_SINCE}" if style == "named" else f"%({_SINCE})s"
        bound: Any = {**params, _SINCE: value}
    else:
        listed = list(params)
        if style == "qmark":
            mark = "?"
        elif style == "numeric":
            mark = f":{len(listed) + 1}"
        elif style in ("format", "pyformat"):
            mark = "%s"
        else:
            raise ConfigurationError("positional params with a named paramstyle: pass a mapping")
        bound = [*listed, value]
    text = f"SELECT * FROM ({query}) AS scimsync_changes WHERE {column} >= {mark}"  # noqa: S608 - column checked, value bound
    return text, bound


def _later(value: Any, than: Any) -> bool:
    try:
        return bool(value > than)
    except TypeError:
        return str(value) > str(than)


def _encode_watermark(value: Any) -> str:
    """A watermark value as text, with its type, to bind it back as it was read."""
    if isinstance(value, dt.datetime):
        return json.dumps({"datetime": value.isoformat()})
    if isinstance(value, dt.date):
        return json.dumps({"date": value.isoformat()})
    if isinstance(value, decimal.Decimal):
        return json.dumps({"decimal": str(value)})
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return json.dumps({"text": str(value)})
    return json.dumps({"value": value})


def _decode_watermark(text: str) -> Any:
    try:
        data = json.loads(text)
        ((kind, value),) = data.items()
    except (ValueError, AttributeError):
        raise ConfigurationError(f"not a SqlSource watermark: {text!r}") from None
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
    return value


def _jsonable(params: Any) -> Any:
    if isinstance(params, Mapping):
        return {str(k): str(v) for k, v in params.items()}
    return [str(v) for v in params]
