"""What a source yields: identity records, and issues for the records it could not read."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from ..models._base import EMPTY, to_tuple_or_empty

__all__ = ["IssueCode", "Record", "RecordIssue", "RecordKind"]

RecordKind = Literal["user", "group"]
RecordKind.__doc__ = "Whether a record describes a user or a group: ``'user'`` or ``'group'``."


def _repr_attributes(value: Mapping[str, Any]) -> str:
    return repr(dict(value))


@attrs.frozen(kw_only=True)
class Record:
    """One identity as a source holds it.

    ``key`` is the record's stable source key (an employee number, an ``objectGUID``,
    the id on a source SCIM service), or None when the record has none; the mapping
    reports such a record unless scoping leaves it out. ``attributes`` maps source field
    names to values: strings, lists of strings for multi-valued columns, or any JSON
    value for JSON sources. ``members`` holds the source keys of a group's members.
    ``line`` (1-based line of a file, or position in a list) and ``origin`` (a file
    name, a URL) say where the record came from, for messages.

    A record reads like its attributes: ``record["email"]``, ``record.get("title")``.
    """

    key: str | None
    attributes: Mapping[str, Any] = attrs.field(default=EMPTY, repr=_repr_attributes)
    kind: RecordKind = "user"
    members: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    line: int | None = None
    origin: str | None = None

    def __getitem__(self, name: str) -> Any:
        return self.attributes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.attributes

    def __iter__(self) -> Iterator[str]:
        return iter(self.attributes)

    def get(self, name: str, default: Any = None) -> Any:
        """Return the value of source field ``name``, or ``default`` when absent."""
        return self.attributes.get(name, default)

    def where(self) -> str:
        """Where the record came from, for messages: ``"users.csv line 12"``."""
        return _where(self.origin, self.line, self.key)


class IssueCode(str, enum.Enum):
    """Why a record did not become part of the desired state."""

    #: The record cannot be read: a CSV row with the wrong number of fields, a line
    #: that is not JSON, bytes that are not valid in the file's encoding.
    MALFORMED = "malformed"
    #: The record is in scope but has no key.
    NO_KEY = "no_key"
    #: Two or more records share a key; none of them is used (see :class:`Mapping`).
    DUPLICATE_KEY = "duplicate_key"
    #: A value cannot be turned into what its attribute needs ("maybe" for a boolean),
    #: or holds a control character (a NUL byte, an escape): it is never sent.
    INVALID_VALUE = "invalid_value"
    #: The mapping failed on the record: a callable raised, a required field is absent.
    MAPPING_FAILED = "mapping_failed"
    #: The read stopped early (I/O error, a listing that came out short): records
    #: after this point are missing.
    READ_INCOMPLETE = "read_incomplete"
    #: A group names a member key that no user record has; that member is left out.
    UNKNOWN_MEMBER = "unknown_member"
    #: A user refers (``ref()``, a manager say) to a key no user record has; the
    #: target's value of that attribute is left as it is.
    UNKNOWN_REFERENCE = "unknown_reference"

    @property
    def loses_identity(self) -> bool:
        """True when an identity the source holds may be missing from the desired state.

        The engine never reads such an identity's absence as a departure: when the
        issue names the record's key for certain, the mapping protects that key (its
        account is not deprovisioned, see :class:`~scimsync.mapping.Mapping`);
        otherwise (no key, :attr:`MALFORMED`, :attr:`READ_INCOMPLETE`) the desired
        state is incomplete and nothing is deprovisioned. :attr:`UNKNOWN_MEMBER` and
        :attr:`UNKNOWN_REFERENCE` lose nothing: the key they name is not a known user.
        """
        return self not in (IssueCode.UNKNOWN_MEMBER, IssueCode.UNKNOWN_REFERENCE)


@attrs.frozen(kw_only=True)
class RecordIssue:
    """A problem with one record (or with the read itself), carried as a value.

    Issues never stop the other records: a source yields them next to its records
    and the mapping collects them next to the desired state. ``key`` and ``line``
    say which record it is, as far as they are known.
    """

    code: IssueCode
    reason: str
    key: str | None = None
    line: int | None = None
    kind: RecordKind = "user"
    origin: str | None = None

    def __str__(self) -> str:
        return f"{_where(self.origin, self.line, self.key)}: {self.code.value}: {self.reason}"


def _where(origin: str | None, line: int | None, key: str | None) -> str:
    parts = []
    if origin:
        parts.append(origin)
    if line is not None:
        parts.append(f"line {line}")
    if key is not None:
        parts.append(f"key {key!r}")
    return " ".join(parts) or "record"
