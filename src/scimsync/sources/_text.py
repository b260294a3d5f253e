"""Small helpers the file sources share: settings, undecodable bytes, multi-valued splitting."""

from __future__ import annotations

import os
import re

from ..errors import ConfigurationError

# Files are decoded with errors="surrogateescape": an undecodable byte becomes a lone
# surrogate in U+DC80..U+DCFF instead of stopping the read, so the record holding it
# can be reported on its own and every other record still flows.
_UNDECODABLE = re.compile("[\udc80-\udcff]")

#: True (a match) when the text holds an undecodable byte.
has_undecodable = _UNDECODABLE.search


def check_file_kind(kind: str, members: str | None) -> None:
    """Refuse a file source's ``kind``/``members`` settings that cannot work together."""
    if kind not in ("user", "group"):
        raise ConfigurationError(f"kind must be 'user' or 'group', got {kind!r}")
    if members is not None and kind != "group":
        raise ConfigurationError("members= is for a file of groups (kind='group')")


def undecodable(values: list[str], encoding: str) -> str | None:
    """Describe the first undecodable byte in ``values``, or None when there is none."""
    for value in values:
        if value.isascii():
            continue
        found = _UNDECODABLE.search(value)
        if found is not None:
            byte = ord(found.group()) - 0xDC00
            shown = encoding[:-4] if encoding.lower().endswith("-sig") else encoding
            return f"byte 0x{byte:02x} is not valid {shown}"
    return None


def split_values(value: str, separator: str) -> list[str]:
    """Split a multi-valued field, dropping blanks: ``"a; b;;"`` gives ``["a", "b"]``."""
    return [part for part in map(str.strip, value.split(separator)) if part]


def ends_with_newline(path: str | os.PathLike[str]) -> bool:
    """True when the file's last byte ends a line (an empty file counts as ended)."""
    try:
        with open(path, "rb") as binary:
            if binary.seek(0, os.SEEK_END) == 0:
                return True
            binary.seek(-1, os.SEEK_END)
            return binary.read(1) in (b"\n", b"\r")
    except OSError:
        return True
