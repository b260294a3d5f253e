"""Identity records from a CSV file, streamed row by row."""

from __future__ import annotations

import csv
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ._records import IssueCode, Record, RecordIssue, RecordKind
from ._text import (
    check_file_kind,
    ends_with_newline,
    has_undecodable,
    split_values,
    undecodable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ._protocol import SourceItem

__all__ = ["CsvSource"]

#: The default :attr:`CsvSource.max_row_size`: the most characters one row may hold.
MAX_ROW_SIZE = 1 << 20

_CUT_SHORT = " (the last line is cut short: was the file still being written?)"


class _RowTooLongError(Exception):
    """Raised through ``csv.reader`` when a row grows past the limit."""


#: Python before 3.11 refuses NUL in CSV input; a noncharacter stands in for it.
_NUL_REFUSED = sys.version_info < (3, 11)
_NUL_STANDIN = "\ufffe"


class _Lines:
    """The lines of a text stream for ``csv.reader``, never more than ``limit`` characters
    for one row, however long a line of the file is.

    ``line`` counts the lines read; ``row_start`` is the line the row being read
    starts on (the reader calls :meth:`row_done` after each row). A row that would
    grow past ``limit`` is never handed on: the rest of its line is read in pieces of
    at most ``limit`` characters and dropped, and :class:`_RowTooLongError` is raised from
    the reader. ``unclosed_at_end`` is set when the file ends inside a row (a quoted
    field still open).
    """

    __slots__ = (
        "limit",
        "line",
        "nul_seen",
        "readline",
        "row_size",
        "row_start",
        "unclosed_at_end",
    )

    def __init__(self, stream: Any, limit: int) -> None:
        self.readline = stream.readline
        self.limit = limit
        self.line = 0
        self.row_start = 1
        self.row_size = 0
        self.unclosed_at_end = False
        self.nul_seen = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        room = self.limit - self.row_size
        text: str = self.readline(room + 1)
        if not text:
            self.unclosed_at_end = self.row_size > 0
            raise StopIteration
        self.line += 1
        if len(text) > room:
            line_ended = text[-1] in "\r\n"
            del text  # not kept while the rest of the line is read
            if not line_ended:
                self._skip_rest_of_line()
            raise _RowTooLongError(f"a row longer than {self.limit} characters")
        self.row_size += len(text)
        if _NUL_REFUSED and "\x00" in text:
            # The csv module of Python 3.10 refuses NUL ("line contains NUL"): it stands
            # in for it here and is put back in the row, for the mapping to report it
            # with the record's key, as on later Pythons.
            self.nul_seen = True
            return text.replace("\x00", _NUL_STANDIN)
        return text

    def _skip_rest_of_line(self) -> None:
        size = min(self.limit, 1 << 16)
        while True:
            piece: str = self.readline(size)
            if not piece or piece[-1] in "\r\n":
                return

    def row_done(self) -> None:
        """The reader has the row: the next one starts on the next line."""
        self.row_start = self.line + 1
        self.row_size = 0


class CsvSource:
    """Reads identity records from a CSV file, one row at a time.

    The header row names the fields (or pass ``header`` for a file without one);
    ``key`` names the column holding each record's stable key. Columns listed in
    ``multi_valued`` are split by their separator into lists (``{"groups": ";"}``
    turns ``"eng; ops"`` into ``["eng", "ops"]``). For a file of groups
    (``kind="group"``), ``members`` names the column listing member keys, split by
    its ``multi_valued`` separator (``";"`` unless given). ``max_row_size`` is the
    most characters one row may hold, all its lines together (default
    :data:`MAX_ROW_SIZE`, 1 MiB); it bounds the memory a read takes.

    What a read does with real-world mess:

    - a byte-order mark is skipped (the default ``utf-8-sig`` encoding);
    - quoted fields may hold the delimiter, quotes (``""``) and newlines;
      ``line`` is the line where the record starts;
    - blank lines, and rows whose fields are all blank, are skipped;
    - a row with more or fewer fields than the header, a value in a column without
      a name, or bytes that are not valid in ``encoding`` make a ``MALFORMED`` issue
      for that row; the rows after it are read as usual (a last line cut short says
      so in its reason: the file was probably still being written);
    - a row longer than ``max_row_size`` characters (all its lines together), or a
      field longer than the ``csv`` module's field size limit, is a ``MALFORMED``
      issue saying so, and is never held whole in memory: the rest of its line is
      read in bounded pieces and dropped, and reading goes on with the next line. The
      reason blames an unclosed quote only when a quoted field did run on over the
      following lines (they were read into it, not as rows) or to the end of the file;
    - a missing file, an unreadable or empty header, a ``key``/``members``/multi-valued
      column the header lacks, or a column named twice make one ``READ_INCOMPLETE``
      issue and no records: a read that cannot be trusted is never taken as
      "nobody is left".

    The file is never loaded whole: memory stays flat however many rows it has, and
    bounded by ``max_row_size`` however long a line is.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str,
        kind: RecordKind = "user",
        encoding: str = "utf-8-sig",
        delimiter: str = ",",
        quotechar: str = '"',
        header: Sequence[str] | None = None,
        multi_valued: Mapping[str, str] | None = None,
        members: str | None = None,
        name: str | None = None,
        max_row_size: int = MAX_ROW_SIZE,
    ) -> None:
        check_file_kind(kind, members)
        if max_row_size < 1:
            raise ConfigurationError(f"max_row_size must be positive, got {max_row_size!r}")
        self.path = path
        self.key = key
        self.kind: RecordKind = kind
        self.encoding = encoding
        self.delimiter = delimiter
        self.quotechar = quotechar
        self.header = tuple(header) if header is not None else None
        self.multi_valued = dict(multi_valued or {})
        self.members = members
        self.name = name if name is not None else os.path.basename(os.fspath(path))
        self.max_row_size = max_row_size

    def __repr__(self) -> str:
        return f"CsvSource({os.fspath(self.path)!r}, key={self.key!r}, kind={self.kind!r})"

    def fields(self) -> tuple[str, ...]:
        """The field names the file provides (its header), for :meth:`Mapping.check`.

        Raises :class:`~scimsync.errors.ConfigurationError` when the header cannot be read.
        """
        if self.header is not None:
            return tuple(name.strip() for name in self.header)
        try:
            with self._open() as stream:
                for row in self._reader(_Lines(stream, self.max_row_size)):
                    if any(value.strip() for value in row):
                        return tuple(name.strip() for name in row)
        except (OSError, csv.Error, UnicodeError, _RowTooLongError) as exc:
            raise ConfigurationError(f"cannot read the header of {self.name}: {exc}") from exc
        raise ConfigurationError(f"{self.name} is empty: no header row")

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per row, and an issue per row that cannot be read."""
        try:
            stream = self._open()
        except OSError as exc:
            yield self._incomplete(f"cannot open {os.fspath(self.path)!r}: {exc.strerror or exc}")
            return
        with stream:
            lines = _Lines(stream, self.max_row_size)
            try:
                yield from self._read_rows(self._reader(lines), lines)
            except (OSError, UnicodeError) as exc:
                yield self._incomplete(f"the read failed part-way: {exc}")

    # -- internals ----------------------------------------------------------------------

    def _open(self) -> Any:
        return open(self.path, encoding=self.encoding, errors="surrogateescape", newline="")

    def _reader(self, stream: Any) -> Any:
        return csv.reader(stream, delimiter=self.delimiter, quotechar=self.quotechar)

    def _incomplete(self, reason: str, line: int | None = None) -> RecordIssue:
        return RecordIssue(
            code=IssueCode.READ_INCOMPLETE,
            reason=reason,
            line=line,
            kind=self.kind,
            origin=self.name,
        )

    def _malformed(self, reason: str, line: int, key: str | None = None) -> RecordIssue:
        return RecordIssue(
            code=IssueCode.MALFORMED,
            reason=reason,
            key=key,
            line=line,
            kind=self.kind,
            origin=self.name,
        )

    def _read_header(self, reader: Any, lines: _Lines) -> tuple[list[str] | None, str | None]:
        """Return (column names, a problem or None); ``lines`` is then past the header."""
        if self.header is not None:
            return [name.strip() for name in self.header], None
        for row in reader:
            lines.row_done()
            if any(value.strip() for value in row):
                problem = undecodable(row, self.encoding)
                if problem is not None:
                    return None, f"the header is not readable: {problem}"
                return [name.strip() for name in row], None
        return None, "the file is empty: no header row"

    def _read_rows(self, reader: Any, lines: _Lines) -> Iterator[SourceItem]:
        try:
            columns, problem = self._read_header(reader, lines)
        except (csv.Error, _RowTooLongError) as exc:
            yield self._incomplete(f"the header is not readable: {exc}", line=1)
            return
        if columns is None:
            yield self._incomplete(problem or "no header", line=1)
            return
        problem = self._check_columns(columns)
        if problem is not None:
            yield self._incomplete(problem, line=max(lines.row_start - 1, 1))
            return

        width = len(columns)
        key_index = columns.index(self.key)
        kind, origin, encoding = self.kind, self.name, self.encoding
        splits = [(name, separator) for name, separator in self.multi_valued.items()]
        members_separator = self.multi_valued.get(self.members or "", ";")
        members_index = columns.index(self.members) if self.members is not None else None
        named = [index for index, name in enumerate(columns) if name]
        all_named = len(named) == width
        # A malformed row is held back one row, to tell a cut-off last line apart.
        held: RecordIssue | None = None
        # The for-loop is the fast path; a csv.Error (a field over the size limit) or a
        # row over max_row_size leaves it, is reported for its row, and the loop resumes
        # with the next line.
        while True:
            try:
                for row in reader:
                    start = lines.row_start
                    lines.row_done()
                    if lines.nul_seen:
                        lines.nul_seen = False
                        row = [value.replace(_NUL_STANDIN, "\x00") for value in row]  # noqa: PLW2901
                    if held is not None:
                        yield held
                        held = None
                    if lines.unclosed_at_end:
                        known = row[key_index].strip() if len(row) > key_index else ""
                        reason = self._unclosed_reason(start, lines.line)
                        yield self._malformed(reason, start, known or None)
                        continue
                    if len(row) != width:
                        if not any(value.strip() for value in row):
                            continue  # a blank line
                        known = row[key_index].strip() if len(row) > key_index else ""
                        held = self._malformed(
                            f"{len(row)} fields where the header has {width}", start, known or None
                        )
                        continue
                    key = row[key_index].strip()
                    if not key and not any(value.strip() for value in row):
                        continue  # a row of empty fields, as spreadsheets export blank lines
                    if not all(map(str.isascii, row)) and has_undecodable("".join(row)):
                        yield RecordIssue(
                            code=IssueCode.MALFORMED,
                            reason=undecodable(row, encoding) or "undecodable bytes",
                            key=key or None,
                            line=start,
                            kind=kind,
                            origin=origin,
                        )
                        continue
                    if all_named:
                        attributes: dict[str, Any] = dict(zip(columns, row, strict=False))
                    else:
                        stray = next(
                            (i for i in range(width) if not columns[i] and row[i].strip()), None
                        )
                        if stray is not None:
                            yield RecordIssue(
                                code=IssueCode.MALFORMED,
                                reason=f"a value in column {stray + 1}, which has no name in"
                                " the header",
                                key=key or None,
                                line=start,
                                kind=kind,
                                origin=origin,
                            )
                            continue
                        attributes = {columns[i]: row[i] for i in named}
                    for name, separator in splits:
                        attributes[name] = split_values(attributes[name], separator)
                    members: tuple[str, ...] = ()
                    if members_index is not None:
                        members = tuple(split_values(row[members_index], members_separator))
                        attributes[columns[members_index]] = list(members)
                    yield Record(
                        key=key or None,
                        attributes=attributes,
                        kind=kind,
                        members=members,
                        line=start,
                        origin=origin,
                    )
                break
            except (csv.Error, _RowTooLongError) as exc:
                if held is not None:
                    yield held
                    held = None
                start, end = lines.row_start, lines.line
                lines.row_done()
                yield self._malformed(self._too_long_reason(exc, start, end), start)
        if held is not None:
            if not ends_with_newline(self.path):
                held = self._malformed(
                    held.reason + _CUT_SHORT,
                    held.line or lines.row_start,
                    held.key,
                )
            yield held

    def _too_long_reason(self, exc: Exception, start: int, end: int) -> str:
        """What happened to a row the reader gave up on, from what was seen of it."""
        if isinstance(exc, _RowTooLongError):
            what = f"the row is longer than {self.max_row_size} characters (max_row_size)"
        elif "field larger than field limit" in str(exc):
            limit = csv.field_size_limit()
            what = f"a field is longer than {limit} characters (the csv module's field size limit)"
        else:
            return f"not valid CSV: {exc}"
        if end > start:
            # A quoted field ran on over the lines after it: those were taken into it.
            return (
                f"{what}: a quoted field runs on from line {start} to line {end} (an unclosed"
                f" quote?); lines {start + 1}-{end} were read into it, not as rows"
            )
        return f"{what}; the rows after it are read"

    def _unclosed_reason(self, start: int, end: int) -> str:
        """A row the end of the file cut inside a quoted field."""
        if end > start:
            reason = (
                f"a quoted field runs on from line {start} to the end of the file (line {end}):"
                f" an unclosed quote? lines {start + 1}-{end} were read into it, not as rows"
            )
        else:
            reason = "the file ends inside a quoted field of this line"
        return reason + ("" if ends_with_newline(self.path) else _CUT_SHORT)

    def _check_columns(self, columns: list[str]) -> str | None:
        seen: set[str] = set()
        for name in columns:
            if name and name in seen:
                return f"the header names column {name!r} twice"
            seen.add(name)
        wanted = [("key", self.key)]
        if self.members is not None:
            wanted.append(("members", self.members))
        wanted.extend(("multi-valued", name) for name in self.multi_valued)
        for role, name in wanted:
            if name not in seen:
                return f"the {role} column {name!r} is not in the header {columns!r}"
        return None
