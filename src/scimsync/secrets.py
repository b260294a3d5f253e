"""A string that never shows itself: tokens, client secrets, passwords.

:class:`Secret` wraps the value so that ``repr``, ``str``, f-strings, ``%`` formatting
and logging print ``**********`` instead. The value is read only on purpose, with
:meth:`Secret.reveal`, at the one place that puts it on the wire.

A secret cannot be pickled either (that would write it out in clear).
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn, final

__all__ = ["Secret"]

_REDACTED = "**********"


@final
class Secret:
    """A redacted string: ``Secret("s3cr3t")`` prints as ``Secret('**********')``.

    Two secrets compare equal when their values are equal (in constant time).
    Construct it from a ``str`` or from another :class:`Secret`.
    """

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a secret is a string, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the value in clear. Call it only where the value goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_REDACTED!r})"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, spec: str) -> str:
        return format(_REDACTED, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled: it would be written out in clear")
