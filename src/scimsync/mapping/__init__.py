"""The mapping: from source records to the desired SCIM users and groups.

A :class:`Mapping` is declarative: target paths on the left, rules on the right.
``map`` reads a source into the desired state, with an issue for every record that
could not be used::

    >>> from scimsync.mapping import Mapping, lower, template
    >>> from scimsync.sources import MemorySource
    >>> mapping = Mapping(users={
    ...     "userName": lower("email"),
    ...     "name.givenName": "first_name",
    ...     "displayName": template("{first_name} {last_name}"),
    ... })
    >>> source = MemorySource(users=[
    ...     {"id": "E1", "email": "Ann@Example.com", "first_name": "Ann", "last_name": "Lee"},
    ...     {"id": "E2", "email": "", "first_name": "Bob", "last_name": "Ray"},
    ... ])
    >>> result = mapping.map(source)
    >>> [(u.key, u.user.user_name, u.user.display_name) for u in result.desired.users]
    [('E1', 'ann@example.com', 'Ann Lee')]
    >>> print(result.issues[0])
    memory users line 2 key 'E2': invalid_value: required attribute userName empty
    >>> dict(result.desired.protected_user_keys)  # E2 is missing: never deprovisioned
    {'E2': 'source record has an issue: invalid_value: required attribute userName empty'}
    >>> result.complete  # every identity is named: the others' deprovisioning goes ahead
    True

``check`` lists every problem against a target's schema table, with the line it
comes from; ``preview`` shows what a few records become::

    >>> check = Mapping(users={"userName": "email", "favouriteColour": "colour"}).check()
    >>> check.ok
    False
    >>> [(problem.entry, problem.blocking) for problem in check.problems]
    [("users['favouriteColour']", True)]

Rules: a string copies a source field, a callable is called with the record, other
values are constants, and the builders of this module transform: :func:`lower`,
:func:`upper`, :func:`strip`, :func:`join`, :func:`split`, :func:`default`,
:func:`coalesce`, :func:`template`, :func:`boolean`, :func:`const`, :func:`field`,
:func:`key`; :func:`ref` names another user by source key (a manager),
:func:`keep_when_empty` keeps the target's value when the source has none, and
:func:`multi_line` lets a value hold line breaks. For directories: :func:`guid`
(``objectGUID`` bytes or text → canonical GUID), :func:`ad_disabled`,
:func:`ad_expired` and :func:`ad_active` (``userAccountControl``,
``accountExpires``), :func:`ldap_locked` (``pwdAccountLockedTime``), :func:`dn_rdn`
(a DN's first value: ``memberOf`` DNs → group names).

**Control characters are never sent.** A value holding one (a NUL byte, an escape,
DEL, a C1 control) is an ``INVALID_VALUE`` issue naming the record's key and the
attribute, and the record is not written; tab, line feed and carriage return are
allowed only in ``addresses.formatted`` and in rules wrapped in :func:`multi_line`.

**Nothing is dropped without a word.** A source field that no rule reads is listed
(:attr:`MappingResult.unread_fields`, :attr:`PreviewItem.unread_fields`, and by
:meth:`Mapping.check` given the source's fields); a mapped attribute the target does
not have is a blocking problem of :meth:`Mapping.check`; a record that cannot be
mapped is an issue, and its key is protected: its account is never deprovisioned
on that read (a record nobody can name marks the desired state incomplete).
"""

from ..sources._records import IssueCode, Record, RecordIssue
from ._check import MappingCheck, MappingProblem
from ._directory import ad_active, ad_disabled, ad_expired, dn_rdn, guid, ldap_locked
from ._mapping import Entry, Mapping, MappingResult, Preview, PreviewItem
from ._paths import TargetPath
from ._rules import (
    Rule,
    RuleLike,
    boolean,
    coalesce,
    const,
    default,
    field,
    join,
    keep_when_empty,
    key,
    lower,
    multi_line,
    ref,
    split,
    strip,
    template,
    to_rule,
    upper,
)

__all__ = [
    "Entry",
    "IssueCode",
    "Mapping",
    "MappingCheck",
    "MappingProblem",
    "MappingResult",
    "Preview",
    "PreviewItem",
    "Record",
    "RecordIssue",
    "Rule",
    "RuleLike",
    "TargetPath",
    "ad_active",
    "ad_disabled",
    "ad_expired",
    "boolean",
    "coalesce",
    "const",
    "default",
    "dn_rdn",
    "field",
    "guid",
    "join",
    "keep_when_empty",
    "key",
    "ldap_locked",
    "lower",
    "multi_line",
    "ref",
    "split",
    "strip",
    "template",
    "to_rule",
    "upper",
]
