"""Directory text, pure: LDAP filters built with escaping, DNs, GUIDs, times, ranges,
nested groups. No I/O and no ``ldap3`` here: the mapping helpers and the tests use
these without the LDAP extra installed.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import attrs

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "LdapFilter",
    "escape_dn_value",
    "escape_filter_value",
    "filetime",
    "flatten_groups",
    "generalized_time",
    "guid_text",
    "normalize_dn",
    "parse_range",
    "rdn_value",
]

# RFC 4515 §3: these must be escaped in an assertion value (NUL too).
_FILTER_SPECIAL = {"*": "\\2a", "(": "\\28", ")": "\\29", "\\": "\\5c", "\x00": "\\00"}


def escape_filter_value(value: str | bytes) -> str:
    """Escape ``value`` for use as an LDAP filter assertion value (RFC 4515 §3).

    ``*``, ``(``, ``)``, ``\\`` and NUL become ``\\2a``, ``\\28``, ``\\29``, ``\\5c``,
    ``\\00``: a value can never close the filter or add a clause. Bytes (an
    ``objectGUID``) are written as ``\\xx`` escapes, every byte::

        >>> escape_filter_value("*)(uid=*")
        '\\\\2a\\\\29\\\\28uid=\\\\2a'
        >>> escape_filter_value(b"\\x01\\xff")
        '\\\\01\\\\ff'
    """
    if isinstance(value, bytes):
        return "".join(f"\\{byte:02x}" for byte in value)
    return "".join(_FILTER_SPECIAL.get(char, char) for char in value)


def escape_dn_value(value: str) -> str:
    """Escape ``value`` for use as an attribute value in a DN (RFC 4514 §2.4).

    ``,``, ``+``, ``"``, ``\\``, ``<``, ``>``, ``;`` and ``=`` are backslash-escaped,
    as are a leading ``#`` or space and a trailing space; NUL becomes ``\\00``::

        >>> escape_dn_value("Lee, Ann")
        'Lee\\\\, Ann'
    """
    out = []
    for index, char in enumerate(value):
        if char in ',+"\\<>;=':
            out.append("\\" + char)
        elif char == "\x00":
            out.append("\\00")
        elif (char == "#" and index == 0) or (
            char == " " and (index == 0 or index == len(value) - 1)
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$|^[0-9]+(\.[0-9]+)+$")


def _attribute(name: str) -> str:
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
        raise ConfigurationError(f"not an LDAP attribute name: {name!r}")
    return name


@attrs.frozen
class LdapFilter:
    """An LDAP search filter (RFC 4515) built with every value escaped.

    Build filters with the class methods, never by pasting values into text::

        >>> str(LdapFilter.eq("uid", "ann*)(uid=*"))
        '(uid=ann\\\\2a\\\\29\\\\28uid=\\\\2a)'
        >>> str(LdapFilter.all_of(LdapFilter.eq("objectClass", "person"),
        ...                       LdapFilter.negate(LdapFilter.present("nsAccountLock"))))
        '(&(objectClass=person)(!(nsAccountLock=*)))'

    :meth:`parse` takes filter text written by a person (a setting), checks that
    its parentheses balance and returns it as a filter.
    """

    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def eq(cls, attribute: str, value: str | bytes) -> LdapFilter:
        """``(attribute=value)``, the value escaped."""
        return cls(f"({_attribute(attribute)}={escape_filter_value(value)})")

    @classmethod
    def ge(cls, attribute: str, value: str | bytes) -> LdapFilter:
        """``(attribute>=value)``, the value escaped."""
        return cls(f"({_attribute(attribute)}>={escape_filter_value(value)})")

    @classmethod
    def le(cls, attribute: str, value: str | bytes) -> LdapFilter:
        """``(attribute<=value)``, the value escaped."""
        return cls(f"({_attribute(attribute)}<={escape_filter_value(value)})")

    @classmethod
    def present(cls, attribute: str) -> LdapFilter:
        """``(attribute=*)``: the entry has the attribute."""
        return cls(f"({_attribute(attribute)}=*)")

    @classmethod
    def all_of(cls, *filters: LdapFilter | str) -> LdapFilter:
        """``(&...)``: every filter holds (one filter is returned as it is)."""
        parts = [_as_filter(f) for f in filters]
        if len(parts) == 1:
            return parts[0]
        return cls("(&" + "".join(p.text for p in parts) + ")")

    @classmethod
    def any_of(cls, *filters: LdapFilter | str) -> LdapFilter:
        """``(|...)``: one filter holds at least."""
        parts = [_as_filter(f) for f in filters]
        if len(parts) == 1:
            return parts[0]
        return cls("(|" + "".join(p.text for p in parts) + ")")

    @classmethod
    def negate(cls, inner: LdapFilter | str) -> LdapFilter:
        """``(!filter)``."""
        return cls(f"(!{_as_filter(inner).text})")

    @classmethod
    def parse(cls, text: str) -> LdapFilter:
        """Check filter text from a setting: one parenthesised filter whose parentheses
        balance (escaped ones do not count). Raise ConfigurationError otherwise."""
        stripped = text.strip() if isinstance(text, str) else ""
        if not stripped.startswith("(") or not stripped.endswith(")"):
            raise ConfigurationError(
                f"an LDAP filter must be enclosed in parentheses, got {text!r}"
            )
        depth = 0
        for index, char in enumerate(stripped):
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0 and index != len(stripped) - 1:
                    raise ConfigurationError(f"the LDAP filter {text!r} has text after its end")
            if depth < 0:
                break
        if depth != 0:
            raise ConfigurationError(f"the parentheses of the LDAP filter {text!r} do not balance")
        return cls(stripped)


def _as_filter(value: LdapFilter | str) -> LdapFilter:
    return value if isinstance(value, LdapFilter) else LdapFilter.parse(value)


def guid_text(raw: bytes) -> str:
    """The canonical text of a binary Active Directory ``objectGUID`` (16 bytes, the
    first three fields little-endian): ``"33221100-5544-7766-8899-aabbccddeeff"``."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


# Spaces before or after a separator: matched only where there are some.
_DN_SPACES = re.compile(r"\s+(?=[,=+])|(?<=[,=+])\s+")


def normalize_dn(dn: str) -> str:
    """A DN in a form to compare with others: lower case, no spaces around ``,``,
    ``=`` and ``+`` (escaped characters are kept as they are)."""
    lowered = dn.strip().lower()
    # Most DNs have no such spaces: a few substring tests are cheaper than the regex.
    if not lowered.isascii() or any(spaced in lowered for spaced in _SPACED):
        return _DN_SPACES.sub("", lowered)
    return lowered


#: What the regex of normalize_dn may remove, in ASCII: a space next to a separator,
#: or any other white space.
_SPACED = (" ,", ", ", " =", "= ", " +", "+ ", "\t", "\n", "\r", "\x0b", "\x0c")


def rdn_value(dn: str) -> str:
    """The value of a DN's first RDN, unescaped: ``"cn=Lee\\, Ann,ou=People"`` → ``"Lee, Ann"``."""
    out = []
    index = dn.find("=") + 1
    if index == 0:
        return dn
    while index < len(dn):
        char = dn[index]
        if char == "\\" and index + 1 < len(dn):
            pair = dn[index + 1 : index + 3]
            if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                out.append(chr(int(pair, 16)))
                index += 3
                continue
            out.append(dn[index + 1])
            index += 2
            continue
        if char in ",+":
            break
        out.append(char)
        index += 1
    return "".join(out).strip()


_RANGE = re.compile(r"^(?P<name>[^;]+)(?:;[^;]*)*?;range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.I)


def parse_range(name: str) -> tuple[str, int, int | None] | None:
    """Read an Active Directory range attribute name: ``"member;range=0-1499"`` →
    ``("member", 0, 1499)``; the last range ``"member;range=1500-*"`` → ``(…, None)``.
    None when ``name`` is not a range."""
    found = _RANGE.match(name)
    if found is None:
        return None
    high = found["high"]
    return found["name"], int(found["low"]), None if high == "*" else int(high)


def flatten_groups(
    direct: Mapping[str, tuple[Iterable[str], Iterable[str]]],
) -> dict[str, tuple[str, ...]]:
    """Each group's user members, through nested groups: ``direct`` maps a group key to
    (its user member keys, its group member keys). Cycles (A in B in A) are survived:
    each group is visited once per walk. Order: a group's own users first, then those
    of its nested groups, each key once."""
    flat: dict[str, tuple[str, ...]] = {}
    for start in direct:
        seen_groups = {start}
        users: dict[str, None] = {}
        stack = [start]
        while stack:
            group = stack.pop(0)
            user_keys, group_keys = direct.get(group, ((), ()))
            users.update(dict.fromkeys(user_keys))
            for nested in group_keys:
                if nested not in seen_groups:
                    seen_groups.add(nested)
                    stack.append(nested)
        flat[start] = tuple(users)
    return flat


_GENERALIZED = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?$"
)


def generalized_time(text: str) -> datetime | None:
    """An LDAP GeneralizedTime (``"20240131120000Z"``, with fractions or an offset) as
    an aware datetime; None when the text is not one."""
    found = _GENERALIZED.match(text.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        value -= sign * offset
    return value


#: accountExpires values that mean "never": 0 and the largest 64-bit integer.
_NEVER = (0, 0x7FFFFFFFFFFFFFFF)
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def filetime(value: int | str) -> datetime | None:
    """An Active Directory large-integer time (100-ns intervals since 1601, as in
    ``accountExpires``) as an aware datetime; None for "never" (0 or 2**63-1)."""
    number = int(value)
    if number in _NEVER or number < 0:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=number // 10)
    except OverflowError:
        return None
