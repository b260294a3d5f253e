"""Identity records from a CSV file, streamed row by row."""

from __future__ import annotations

import csv
import os
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


class CsvSource:
    """Reads identity records from a CSV file, one row at a time.

    The header row names the fields (or pass ``header`` for a file without one);
    ``key`` names the column holding each record's stable key. Columns listed in
    ``multi_valued`` are split by their separator into lists (``{"groups": ";"}``
    turns ``"eng; ops"`` into ``["eng", "ops"]``). For a file of groups
    (``kind="group"``), ``members`` names the column listing member keys, split by
    its ``multi_valued`` separator (``";"`` unless given).

    What a read does with real-world mess:

    - a byte-order mark is skipped (the default ``utf-8-sig`` encoding);
    - quoted fields may hold the delimiter, quotes (``""``) and newlines;
      ``line`` is the line where the record starts;
    - blank lines, and rows whose fields are all blank, are skipped;
    - a row with more or fewer fields than the header, a value in a column without
      a name, or bytes that are not valid in ``encoding`` make a ``MALFORMED`` issue
      for that row; the rows after it are read as usual (a last line cut short says
      so in its reason: the file was probably still being written);
    - a missing file, an unreadable or empty header, a ``key``/``members``/multi-valued
      column the header lacks, or a column named twice make one ``READ_INCOMPLETE``
      issue and no records: a read that cannot be trusted is never taken as
      "nobody is left".

    The file is never loaded whole: memory stays flat however many rows it has.
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
    ) -> None:
        check_file_kind(kind, members)
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
                for row in self._reader(stream):
                    if any(value.strip() for value in row):
                        return tuple(name.strip() for name in row)
        except (OSError, csv.Error, UnicodeError) as exc:
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
            try:
                yield from self._read_rows(self._reader(stream))
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

    def _read_header(self, reader: Any) -> tuple[list[str] | None, int, str | None]:
        """Return (column names, the line after the header, a problem or None)."""
        if self.header is not None:
            return [name.strip() for name in self.header], 1, None
        next_line = 1
        for row in reader:
            next_line = reader.line_num + 1
            if any(value.strip() for value in row):
                problem = undecodable(row, self.encoding)
                if problem is not None:
                    return None, next_line, f"the header is not readable: {problem}"
                return [name.strip() for name in row], next_line, None
        return None, next_line, "the file is empty: no header row"

    def _read_rows(self, reader: Any) -> Iterator[SourceItem]:
        try:
            columns, line, problem = self._read_header(reader)
        except csv.Error as exc:
            yield self._incomplete(f"the header is not readable: {exc}", line=1)
            return
        if columns is None:
            yield self._incomplete(problem or "no header", line=1)
            return
        problem = self._check_columns(columns)
        if problem is not None:
            yield self._incomplete(problem, line=line - 1)
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
        # The for-loop is the fast path; a csv.Error (a field over the size limit, a
        # NUL byte) leaves it, is reported for its row, and the loop resumes after it.
        while True:
            try:
                for row in reader:
                    start, line = line, reader.line_num + 1
                    if held is not None:
                        yield held
                        held = None
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
            except csv.Error as exc:
                if held is not None:
                    yield held
                    held = None
                hint = ""
                if "field larger than field limit" in str(exc):
                    hint = " (an unclosed quote? the rows it swallowed are not read)"
                yield self._malformed(f"not valid CSV: {exc}{hint}", line)
                line = reader.line_num + 1
        if held is not None:
            if not ends_with_newline(self.path):
                held = self._malformed(
                    held.reason
                    + " (the last line is cut short: was the file still being written?)",
                    held.line or line,
                )
            yield held

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
