"""Identity records from a JSON Lines file (one JSON object per line), streamed."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ._records import IssueCode, Record, RecordIssue, RecordKind
from ._text import check_file_kind, ends_with_newline, undecodable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._protocol import SourceItem

__all__ = ["JsonLinesSource"]


class _DuplicateNameError(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal names silently; a record whose fields
    # overwrite each other is reported instead.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateNameError(f"the object names {name!r} twice")
            seen.add(name)
    return obj


class JsonLinesSource:
    """Reads identity records from a JSON Lines file: one JSON object per line.

    ``key`` names the member holding each record's stable key (a string, or a number
    written as one). For a file of groups (``kind="group"``), ``members`` names the
    member listing the member keys (a list of strings, or of objects with a
    ``value``, as SCIM writes them).

    Blank lines are skipped; a byte-order mark is skipped. A line that is not a JSON
    object, holds a name twice, has a key that is neither string nor number, or
    bytes that are not valid in ``encoding`` makes a ``MALFORMED`` issue, and the
    lines after it are read as usual. A missing file makes a ``READ_INCOMPLETE``
    issue. The file is never loaded whole.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str,
        kind: RecordKind = "user",
        encoding: str = "utf-8-sig",
        members: str | None = None,
        name: str | None = None,
    ) -> None:
        check_file_kind(kind, members)
        self.path = path
        self.key = key
        self.kind: RecordKind = kind
        self.encoding = encoding
        self.members = members
        self.name = name if name is not None else os.path.basename(os.fspath(path))

    def __repr__(self) -> str:
        return f"JsonLinesSource({os.fspath(self.path)!r}, key={self.key!r}, kind={self.kind!r})"

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per line, and an issue per line that cannot be read."""
        try:
            stream = open(  # noqa: SIM115 - closed by the with-block below
                self.path, encoding=self.encoding, errors="surrogateescape"
            )
        except OSError as exc:
            yield RecordIssue(
                code=IssueCode.READ_INCOMPLETE,
                reason=f"cannot open {os.fspath(self.path)!r}: {exc.strerror or exc}",
                kind=self.kind,
                origin=self.name,
            )
            return
        with stream:
            try:
                yield from self._read_lines(stream)
            except (OSError, UnicodeError) as exc:
                yield RecordIssue(
                    code=IssueCode.READ_INCOMPLETE,
                    reason=f"the read failed part-way: {exc}",
                    kind=self.kind,
                    origin=self.name,
                )

    def _read_lines(self, stream: Any) -> Iterator[SourceItem]:
        kind, origin, key_name, members_name = self.kind, self.name, self.key, self.members
        decode = json.JSONDecoder(object_pairs_hook=_unique_pairs).decode
        held: RecordIssue | None = None  # a bad line, held to tell a cut-off last line
        number = 0
        for number, text in enumerate(stream, 1):
            if held is not None:
                yield held
                held = None
            if not text.strip():
                continue
            reason: str | None = None
            if not text.isascii():
                reason = undecodable([text], self.encoding)
            obj: Any = None
            if reason is None:
                try:
                    obj = decode(text)
                except _DuplicateNameError as exc:
                    reason = str(exc)
                except ValueError as exc:
                    held = RecordIssue(
                        code=IssueCode.MALFORMED,
                        reason=f"not valid JSON: {exc}",
                        line=number,
                        kind=kind,
                        origin=origin,
                    )
                    continue
            if reason is None and not isinstance(obj, dict):
                reason = f"expected a JSON object, got {type(obj).__name__}"
            key: str | None = None
            if reason is None:
                raw_key = obj.get(key_name)
                if isinstance(raw_key, str):
                    key = raw_key.strip() or None
                elif isinstance(raw_key, (int, float)) and not isinstance(raw_key, bool):
                    key = str(raw_key)
                elif raw_key is not None:
                    reason = f"the key {key_name!r} is a {type(raw_key).__name__}, not a string"
            members: tuple[str, ...] = ()
            if reason is None and members_name is not None:
                members, reason = _member_keys(obj.get(members_name), members_name)
            if reason is not None:
                yield RecordIssue(
                    code=IssueCode.MALFORMED,
                    reason=reason,
                    key=key,
                    line=number,
                    kind=kind,
                    origin=origin,
                )
                continue
            yield Record(
                key=key, attributes=obj, kind=kind, members=members, line=number, origin=origin
            )
        if held is not None:
            if not ends_with_newline(self.path):
                held = RecordIssue(
                    code=IssueCode.MALFORMED,
                    reason=held.reason
                    + " (the last line is cut short: was the file still being written?)",
                    line=held.line,
                    kind=kind,
                    origin=origin,
                )
            yield held


def _member_keys(value: Any, name: str) -> tuple[tuple[str, ...], str | None]:
    """Member keys from a list of strings or of ``{"value": ...}`` objects."""
    if value is None:
        return (), None
    if not isinstance(value, list):
        return (), f"{name!r} must be a list of member keys, got {type(value).__name__}"
    keys: list[str] = []
    for item in value:
        member = item.get("value") if isinstance(item, dict) else item
        if isinstance(member, (int, float)) and not isinstance(member, bool):
            member = str(member)
        if not isinstance(member, str) or not member.strip():
            return (), f"{name!r} holds {item!r}, which is not a member key"
        keys.append(member.strip())
    return tuple(keys), None
