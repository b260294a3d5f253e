"""PATCH (RFC 7644 §3.5.2): parse paths, apply operations, compute the minimal diff.

Apply a PATCH a client sent, to a model or a SCIM JSON object::

    >>> from scimsync import User
    >>> from scimsync.patch import apply_patch, changed_attributes, diff
    >>> user = User(user_name="bjensen", title="Guide")
    >>> apply_patch(user, [{"op": "Replace", "path": "title", "value": "Lead"}]).title
    'Lead'

Compute the operations turning what a target holds into what it should hold::

    >>> [(o.op, o.path, o.value) for o in diff(user, User(title="Lead"))]
    [('replace', 'title', 'Lead')]

and show the same changes one attribute at a time, old next to new::

    >>> changed_attributes(user, User(title="Lead"))
    [AttributeChange(path='title', old='Guide', new='Lead')]

Paths are parsed by :func:`parse_path` and value filters are built with
:mod:`scimsync.filter`, never by joining strings. Errors are
:class:`~scimsync.errors.PatchError` subclasses carrying the RFC 7644 ``scimType``.
"""

from __future__ import annotations

from ._apply import apply_patch
from ._diff import AttributeChange, changed_attributes, diff
from ._path import Path, parse_path

__all__ = [
    "AttributeChange",
    "Path",
    "apply_patch",
    "changed_attributes",
    "diff",
    "parse_path",
]
