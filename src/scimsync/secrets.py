"""A string that never shows itself: tokens, client secrets, passwords.

:class:`Secret` wraps the value so that ``repr``, ``str``, f-strings, ``%`` formatting
and logging print ``**********`` instead. The value is read only on purpose, with
:meth:`Secret.reveal`, at the one place that puts it on the wire.

A secret cannot be pickled either (that would write it out in clear).

:class:`Redactor` is the other half: text that came from elsewhere (a server's error
page that echoes the request headers) is masked of the secrets we know before it goes
into an error message: in every form a server may echo them in (as is, percent-, HTML-
or JSON-escaped, base64, any letter case), and in part too (any run of
:data:`MIN_REDACTED_LENGTH` characters or more of one of those forms is masked whole).
"""

from __future__ import annotations

import base64
import hmac
import html
import json
from typing import TYPE_CHECKING, Any, NoReturn, final
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MIN_REDACTED_LENGTH", "Redactor", "Secret"]

_REDACTED = "**********"

#: Values shorter than this are not masked in text: a short password such as
#: ``admin`` would mask that word wherever it appears, and hides little anyway. It is
#: also the shortest piece of a longer value that is masked.
MIN_REDACTED_LENGTH = 8


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


def _cased(value: str) -> set[str]:
    """``value`` and its upper, lower and folded case.

    Text is compared case-folded character for character, which misses a case change
    that changes the length (``ß`` upper-cased is ``SS``): those are forms of their own.
    """
    return {value, value.upper(), value.lower(), value.casefold()}


def _base64_forms(value: str) -> set[str]:
    """``value`` base64-encoded (standard and URL-safe), alone or inside a longer text.

    Encoded alone, the whole form with its padding. Inside a longer text (``Bearer
    <token>``, ``user:password`` in HTTP Basic), the characters that encode the value
    depend on where it starts modulo 3 bytes: for each of the three offsets, the
    characters that depend on the value's bytes only, plus the tail (with padding) it
    gets when it ends the text.
    """
    data = value.encode()
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for offset in range(3):
            encoded = encode(bytes(offset) + data).decode("ascii")
            first = -(-8 * offset // 6)  # the first character with no bit of the lead
            forms.add(encoded[first:])
            forms.add(encoded[first:].rstrip("="))
    return forms


def _fold_char(char: str) -> str:
    """``char`` case-folded, or lower-cased if folding makes it longer (``ẞ`` -> ``ß``)."""
    for fold in (char.casefold(), char.lower()):
        if len(fold) == 1:
            return fold
    return char


def _fold(text: str) -> str:
    """``text`` case-folded character for character, so that positions still match."""
    folded = text.casefold()
    if len(folded) == len(text):
        return folded
    return "".join(map(_fold_char, text))


def _forms_of(values: Iterable[str]) -> set[str]:
    """Every form of ``values`` a server may echo (cased, escaped, base64), long enough
    to be masked."""
    forms: set[str] = set()
    for text in values:
        for cased in _cased(text):
            forms.update(_echoed_forms(cased))
        for encoded in _base64_forms(text):
            forms.update(_echoed_forms(encoded))
    return {form for form in forms if len(form) >= MIN_REDACTED_LENGTH}


def _windows(forms: Iterable[str]) -> frozenset[str]:
    """Every run of MIN_REDACTED_LENGTH characters of ``forms``, case-folded."""
    size = MIN_REDACTED_LENGTH
    return frozenset(
        _fold(form[start : start + size]) for form in forms for start in range(len(form) - size + 1)
    )


@final
class Redactor:
    """Masks known secret values in text: ``Redactor([token])(page)``.

    Each value is looked for as it is, percent-encoded (``%2F`` or ``%2f``, ``+`` or
    ``%20`` for spaces), HTML-escaped and JSON-escaped (``\\/`` included), in any
    letter case, and base64-encoded (standard or URL-safe, with or without padding,
    alone or inside a longer encoded text such as ``Bearer <token>``). Not only whole:
    any run of :data:`MIN_REDACTED_LENGTH` or more consecutive characters of one of
    these forms (a value's start cut off by ``…``, its end, a piece of its middle)
    is masked, the whole run (overlapping and adjacent runs merged) becoming
    ``**********``; the text around it is kept. Values shorter than
    :data:`MIN_REDACTED_LENGTH` are left alone. The values are never shown: not in
    ``repr``, and a redactor cannot be pickled.

    ``mask`` is what a masked run becomes.
    """

    __slots__ = ("_mask", "_values", "_windows")

    _values: tuple[str, ...]
    _mask: str
    _windows: frozenset[str] | None

    def __init__(self, values: Iterable[Secret | str] = (), *, mask: str = _REDACTED) -> None:
        texts = (value.reveal() if isinstance(value, Secret) else value for value in values)
        self._values = tuple(text for text in texts if len(text) >= MIN_REDACTED_LENGTH)
        self._mask = mask
        # Built on first use: a client makes a redactor for every answer, and only
        # the few it reads an error from ever mask anything.
        self._windows = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        """``text`` with every known secret, and every piece of one, masked."""
        if not self._values or len(text) < MIN_REDACTED_LENGTH:
            return text
        if self._windows is None:
            self._windows = _windows(_forms_of(self._values))
        windows = self._windows
        size = MIN_REDACTED_LENGTH
        folded = _fold(text)
        runs: list[tuple[int, int]] = []  # masked [start, end), overlapping ones merged
        for start in range(len(folded) - size + 1):
            if folded[start : start + size] in windows:
                if runs and start <= runs[-1][1]:
                    runs[-1] = (runs[-1][0], start + size)
                else:
                    runs.append((start, start + size))
        if not runs:
            return text
        pieces: list[str] = []
        kept = 0
        for start, end in runs:
            pieces += [text[kept:start], self._mask]
            kept = end
        pieces.append(text[kept:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} secrets)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Redactor is not pickled: it would write its secrets out in clear")
