"""A string that never shows itself: tokens, client secrets, passwords.

:class:`Secret` wraps the value so that ``repr``, ``str``, f-strings, ``%`` formatting
and logging print ``**********`` instead. The value is read only on purpose, with
:meth:`Secret.reveal`, at the one place that puts it on the wire.

A secret cannot be pickled either (that would write it out in clear).

:class:`Redactor` is the other half: text that came from elsewhere (a server's error
page that echoes the request headers) is masked of the secrets we know, in every
form a server may echo them in, before it goes into an error message.
"""

from __future__ import annotations

import hmac
import html
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn, final
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MIN_REDACTED_LENGTH", "Redactor", "Secret"]

_REDACTED = "**********"

#: Values shorter than this are not masked in text: a short password such as
#: ``admin`` would mask that word wherever it appears, and hides little anyway.
MIN_REDACTED_LENGTH = 8

# How the project's excerpts mark a cut: a secret cut there shows only a prefix.
_CUT = "…"


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


def _echoed_forms(value: str) -> set[str]:
    """``value`` as a server may echo it: as is, percent-encoded, HTML- or JSON-escaped."""
    json_form = json.dumps(value, ensure_ascii=False)[1:-1]
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        json_form,
        json_form.replace("/", "\\/"),
    }


@final
class Redactor:
    """Masks known secret values in text: ``Redactor([token])(page)``.

    Each value is looked for as it is, percent-encoded (``%2F`` or ``%2f``, ``+`` or
    ``%20`` for spaces), HTML-escaped and JSON-escaped (``\\/`` included), in any
    letter case; every occurrence becomes ``**********``. A prefix of a value cut off
    by ``…`` (how excerpts mark a cut) is masked too. Values shorter than
    :data:`MIN_REDACTED_LENGTH` are left alone. The values are never shown: not in
    ``repr``, and a redactor cannot be pickled.
    """

    __slots__ = ("_folded", "_forms", "_pattern")

    _forms: tuple[str, ...]
    _folded: tuple[str, ...]
    _pattern: re.Pattern[str] | None

    def __init__(self, values: Iterable[Secret | str] = ()) -> None:
        forms: set[str] = set()
        for value in values:
            text = value.reveal() if isinstance(value, Secret) else value
            forms.update(_echoed_forms(text))
        kept = sorted(
            (form for form in forms if len(form) >= MIN_REDACTED_LENGTH),
            key=lambda form: (-len(form), form),
        )
        self._forms = tuple(kept)
        self._folded = tuple(form.casefold() for form in kept)
        self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        """``text`` with every known secret masked."""
        if not self._forms or not text:
            return text
        if self._pattern is None:
            # Longest first, so a value is masked whole before a shorter one inside it.
            alternatives = "|".join(re.escape(form) for form in self._forms)
            self._pattern = re.compile(alternatives, re.IGNORECASE)
        masked = self._pattern.sub(_REDACTED, text)
        return self._mask_cut_prefixes(masked) if _CUT in masked else masked

    def _mask_cut_prefixes(self, text: str) -> str:
        pieces = text.split(_CUT)
        for index, piece in enumerate(pieces[:-1]):
            folded = piece.casefold()
            longest = 0
            for form in self._folded:
                for size in range(min(len(form), len(piece)), MIN_REDACTED_LENGTH - 1, -1):
                    if size > longest and folded.endswith(form[:size]):
                        longest = size
                        break
            if longest:
                pieces[index] = piece[:-longest] + _REDACTED
        return _CUT.join(pieces)

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Redactor is not pickled: it would write its secrets out in clear")
