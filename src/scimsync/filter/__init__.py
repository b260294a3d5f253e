"""The SCIM filter language (RFC 7644 §3.4.2.2): parse, build safely, evaluate.

Parse text a client or server sent::

    >>> from scimsync.filter import attr, parse_filter
    >>> f = parse_filter('userName eq "bjensen" and emails[type eq "work"]')
    >>> str(f)
    'userName eq "bjensen" and emails[type eq "work"]'

Build filters with :func:`attr` and combine them with ``&``, ``|`` and ``~`` (or
:func:`and_`, :func:`or_`, :func:`not_`). Values are written as JSON string literals,
so a value can never change the shape of the filter::

    >>> print(attr("userName").eq('x" or userName pr or userName eq "y'))
    userName eq "x\\" or userName pr or userName eq \\"y"
    >>> print(attr("emails").where(attr("type").eq("work")) | ~attr("title").pr())
    emails[type eq "work"] or not (title pr)

Evaluate a filter on a model or a SCIM JSON object with :meth:`Filter.matches`: string
comparisons follow the schema table's ``caseExact`` (``userName`` is case-insensitive),
dateTime, number and boolean attributes compare as their type, and a multi-valued
attribute matches when any of its values does::

    >>> from scimsync import User
    >>> parse_filter('USERNAME eq "BJensen"').matches(User(user_name="bjensen"))
    True

Filters are immutable values: nodes compare by value, ``parse_filter(str(f)) == f``,
and the compiled form of a filter is cached per resource type and schema table. Never
build a filter by joining strings.
"""

from __future__ import annotations

from ._nodes import (
    COMPARISON_OPERATORS,
    And,
    AttrPath,
    AttrRef,
    Comparison,
    Filter,
    FilterValue,
    Not,
    Or,
    Present,
    ValuePath,
    and_,
    attr,
    format_value,
    not_,
    or_,
)
from ._parse import MAX_DEPTH, parse_filter

__all__ = [
    "And",
    "AttrPath",
    "AttrRef",
    "COMPARISON_OPERATORS",
    "Comparison",
    "Filter",
    "FilterValue",
    "MAX_DEPTH",
    "Not",
    "Or",
    "Present",
    "ValuePath",
    "and_",
    "attr",
    "format_value",
    "not_",
    "or_",
    "parse_filter",
]
