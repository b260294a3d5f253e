"""The mapping: from source records to the desired SCIM users and groups.

A :class:`Mapping` is declarative: target paths on the left, rules on the right::

    from scimsync.mapping import Mapping, lower, template

    mapping = Mapping(users={
        "userName": lower("email"),
        "name.givenName": "first_name",
        "displayName": template("{first_name} {last_name}"),
    })
    result = mapping.map(source)        # MappingResult: desired state + issues
    mapping.check(schema_table)         # every problem, with the line it comes from
    print(mapping.preview(records))     # what a few records become

Rules: a string copies a source field, a callable is called with the record, other
values are constants, and the builders of this module transform: :func:`lower`,
:func:`upper`, :func:`strip`, :func:`join`, :func:`split`, :func:`default`,
:func:`coalesce`, :func:`template`, :func:`boolean`, :func:`const`, :func:`field`,
:func:`key`.

**Nothing is dropped without a word.** A source field that no rule reads is listed
(:attr:`MappingResult.unread_fields`, :attr:`PreviewItem.unread_fields`, and by
:meth:`Mapping.check` given the source's fields); a mapped attribute the target does
not have is a blocking problem of :meth:`Mapping.check`; a record that cannot be
mapped is an issue that also marks the desired state incomplete.
"""

from ..sources._records import IssueCode, Record, RecordIssue
from ._check import MappingCheck, MappingProblem
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
    key,
    lower,
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
    "boolean",
    "coalesce",
    "const",
    "default",
    "field",
    "join",
    "key",
    "lower",
    "split",
    "strip",
    "template",
    "to_rule",
    "upper",
]
