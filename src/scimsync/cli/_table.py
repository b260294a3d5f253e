"""Reading TOML tables with messages that name the file, the table and the key.

Every value the configuration takes goes through a :class:`Table`, which checks its
type, remembers which keys were read, and refuses the ones nobody reads (a typo must
never be ignored). Messages never show a value of a key that looks like a secret.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SECRET_KEYS", "Table", "parse_toml"]

#: Keys that would put a secret in the configuration text: always refused.
SECRET_KEYS = frozenset(
    {"token", "bearer_token", "access_token", "client_secret", "secret", "password", "api_key"}
)

_MISSING: Any = object()


def parse_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML ``text`` read from ``file``; errors become :class:`ConfigurationError`."""
    module_name = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        toml = importlib.import_module(module_name)
    except ImportError:
        raise ConfigurationError(
            f"{file}: reading TOML on Python {sys.version_info[0]}.{sys.version_info[1]} needs "
            "the tomli package: pip install 'scimsync[toml]'"
        ) from None
    try:
        data: dict[str, Any] = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file}: not valid TOML: {exc}") from None
    return data


def type_name(value: object) -> str:
    """A TOML-ish name for the type of ``value``, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


class Table:
    """One table of the configuration, read key by key.

    ``file`` is the configuration file (for messages and relative paths), ``name`` the
    table's dotted name (``target.auth``; ``""`` for the top level).
    """

    def __init__(self, file: Path, name: str, data: dict[str, Any]) -> None:
        self.file = file
        self.name = name
        self.data = data
        self._read: set[str] = set()
        self._asked: set[str] = set()  # optional keys looked for, present or not

    def __repr__(self) -> str:
        return f"Table({self.where()!r})"

    # -- messages ---------------------------------------------------------------------

    def where(self, key: str | None = None) -> str:
        """``[target.auth] token_env`` — how a message names a key of this table."""
        head = f"[{self.name}]" if self.name else ""
        if key is None:
            return head or "(top level)"
        return f"{head} {key}" if head else key

    def fail(self, key: str | None, problem: str) -> NoReturn:
        """Raise the one-line error for ``key`` of this table."""
        raise ConfigurationError(f"{self.file}: {self.where(key)}: {problem}")

    def wrap(self, key: str | None, exc: Exception) -> NoReturn:
        """Raise ``exc`` (a library error about this key) as a configuration error."""
        self.fail(key, " ".join(str(exc).split()))

    # -- keys -------------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        self._asked.add(key)
        return key in self.data

    def keys(self) -> Iterator[str]:
        """The keys the table holds, in file order."""
        return iter(self.data)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value of ``key`` as TOML gave it; required unless ``default`` is given."""
        self._read.add(key)
        if key not in self.data:
            if default is _MISSING:
                unread = [k for k in self.data if k not in self._read]
                close = difflib.get_close_matches(key, unread, n=1)
                hint = f"; the table has {close[0]!r}: a misspelling?" if close else ""
                self.fail(key, f"missing (required){hint}")
            return default
        return self.data[key]

    def _typed(self, key: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if isinstance(value, bool) and bool not in kinds:
            self.fail(key, f"expected {what}, got {type_name(value)}")
        if not isinstance(value, kinds):
            self.fail(key, f"expected {what}, got {type_name(value)}")
        return value

    def string(self, key: str, default: Any = _MISSING) -> Any:
        """A non-empty string (or ``default`` when absent)."""
        value = self._typed(key, default, (str,), "a string")
        if isinstance(value, str) and not value.strip():
            self.fail(key, "must not be empty")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        """``true`` or ``false`` (or ``default`` when absent)."""
        return self._typed(key, default, (bool,), "true or false")

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        """An integer, at least ``minimum`` (or ``default`` when absent)."""
        value = self._typed(key, default, (int,), "an integer")
        if isinstance(value, int) and minimum is not None and value < minimum:
            self.fail(key, f"expected at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        """A number, integer or not, at least ``minimum`` (or ``default`` when absent)."""
        value = self._typed(key, default, (int, float), "a number")
        if isinstance(value, (int, float)) and minimum is not None and value < minimum:
            self.fail(key, f"expected at least {minimum:g}, got {value:g}")
        return float(value) if isinstance(value, (int, float)) else value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        """One of ``choices`` (or ``default`` when absent)."""
        value = self._typed(key, default, (str,), "a string")
        if key in self.data and value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value

    def strings(self, key: str, default: Any = _MISSING) -> Any:
        """A string or an array of strings, as a tuple (or ``default`` when absent)."""
        value = self.raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a string or an array of strings, got {type_name(value)}")
        return tuple(value)

    def path(self, key: str, default: Any = _MISSING) -> Any:
        """A file path, relative to the configuration file's folder (or ``default``)."""
        value = self.string(key, default)
        if key not in self.data:
            return value
        return (self.file.parent / Path(value).expanduser()).resolve()

    def existing_file(self, key: str, default: Any = _MISSING) -> Any:
        """A path (see :meth:`path`) that must name an existing file."""
        found = self.path(key, default)
        if key in self.data and not found.is_file():
            self.fail(key, f"no such file: {found}")
        return found

    def table(self, key: str, *, required: bool = False) -> Table | None:
        """The sub-table ``key``, or None when absent (an error when ``required``)."""
        value = self.raw(key, _MISSING if required else None)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {type_name(value)}")
        return self.child(key, value)

    def child(self, key: str, data: dict[str, Any]) -> Table:
        """A sub-table named after ``key``, quoted when it is not a bare TOML key."""
        bare = key.replace("_", "").replace("-", "").isalnum()
        part = key if bare else f'"{key}"'
        return Table(self.file, f"{self.name}.{part}" if self.name else part, data)

    def finish(self) -> None:
        """Refuse the keys nobody read: a misspelt setting is never silently ignored."""
        for key in self.data:
            if key in self._read:
                continue
            if key.lower() in SECRET_KEYS:
                self.refuse_secret(key)
            known = sorted(self._read | self._asked)
            close = difflib.get_close_matches(key, known, n=1)
            parts = [f"did you mean {close[0]}?"] if close else []
            if known:
                parts.append(f"known here: {', '.join(known)}")
            hint = f" ({'; '.join(parts)})" if parts else ""
            self.fail(key, f"unknown setting{hint}")

    def refuse_secret(self, key: str, how: str | None = None) -> NoReturn:
        """Refuse a secret written into the configuration text (never showing it)."""
        if how is None and f"{key}_env" in self._read:
            how = (
                f'name an environment variable with {key}_env = "NAME" or a file with '
                f'{key}_file = "path"'
            )
        elif how is None:
            how = (
                "give it through an environment variable or a file (the *_env and *_file settings)"
            )
        self.fail(key, f"secrets are never read from the configuration file; {how}")
