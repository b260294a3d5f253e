"""Sources: where identities come from.

A source reads identity records, users and groups, each with a stable key, its
attributes and (for groups) its members' keys::

    from scimsync.sources import CsvSource

    source = CsvSource("people.csv", key="employee_id", multi_valued={"groups": ";"})
    for item in source.read():
        ...  # a Record, or a RecordIssue for a row that could not be read

Bad input never stops the rest: a row that cannot be read becomes a
:class:`RecordIssue` (with its line and the reason) in the record's place, and a read
that stops early says so with a ``READ_INCOMPLETE`` issue, so that a partial read is
never mistaken for departures. Sources stream: memory stays flat however large the
input.

Built-ins: :class:`MemorySource` (lists of dicts), :class:`CsvSource`,
:class:`JsonLinesSource`, :class:`ScimSource` and :class:`AsyncScimSource`
(another SCIM service, through :class:`~scimsync.client.ScimClient` or
:class:`~scimsync.client.AsyncScimClient`), :class:`LdapSource` (a directory:
OpenLDAP, Active Directory; the ``scimsync[ldap]`` extra), :class:`SqlSource` (a
database, through any DB-API 2.0 driver), :class:`CombinedSource` (several in turn).
Write your own by implementing :class:`Source` (or :class:`AsyncSource`).

**Delta reads.** A :class:`DeltaSource` (:class:`LdapSource` with ``delta``,
:class:`SqlSource` with ``watermark``) can also read only what changed since a
watermark, in a :class:`ChangeRead`. A :class:`~scimsync.Provisioner` whose state
store keeps snapshots (:class:`~scimsync.sync.SqliteStateStore`,
:class:`~scimsync.sync.MemoryStateStore`) then reads only the changes on its
incremental cycles, merged into the records of the last read, and everything on
its full cycles, which is how departures are found.
"""

from typing import TYPE_CHECKING, Any

from ._csv import CsvSource
from ._delta import ChangeRead, DeltaSource
from ._jsonl import JsonLinesSource
from ._ldap_text import LdapFilter
from ._memory import MemorySource
from ._protocol import AsyncSource, CombinedSource, Source, SourceItem
from ._records import IssueCode, Record, RecordIssue, RecordKind
from ._sql import SqlSource

if TYPE_CHECKING:
    from ._ldap import LdapSource
    from ._scim import AsyncScimSource, ScimSource

__all__ = [
    "AsyncScimSource",
    "AsyncSource",
    "ChangeRead",
    "CombinedSource",
    "CsvSource",
    "DeltaSource",
    "IssueCode",
    "JsonLinesSource",
    "LdapFilter",
    "LdapSource",
    "MemorySource",
    "Record",
    "RecordIssue",
    "RecordKind",
    "ScimSource",
    "Source",
    "SourceItem",
    "SqlSource",
]

# The SCIM sources need the HTTP client, the LDAP source its URL checks: loaded on
# first use, so that the mapping (which reads records) never pulls in httpx.
_LAZY = {"ScimSource": "._scim", "AsyncScimSource": "._scim", "LdapSource": "._ldap"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
