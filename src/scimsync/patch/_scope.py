"""Element scopes: the values of a multi-valued attribute a desired state speaks for.

A mapping that writes only ``emails[type eq "work"].value`` builds users whose
``emails`` hold the work email alone. It speaks for the work email, not for every
email: the home one a person added in the application is none of its business.
An :class:`ElementScope` says so. Given one, :func:`~scimsync.patch.diff` compares
only the values the scope selects (and those the desired list holds), and leaves
every other value of the attribute as the target holds it.

Scopes are built from managed paths (:func:`~scimsync.patch._managed.element_scopes`):
an attribute gets one when *every* path naming it is a filtered element path. An
attribute mapped whole (``emails``, ``emails.value``) has none: the desired list is
the whole list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..filter import Comparison, Filter

__all__ = ["ElementScope", "equal_values", "scope_key"]


def scope_key(urn: str | None, attribute: str) -> tuple[str, str]:
    """How scopes are looked up: the extension URN ("" for the core) and the attribute,
    lower-cased (RFC 7643 §2.1: names are case-insensitive)."""
    return ((urn or "").lower(), attribute.lower())


@attrs.frozen
class ElementScope:
    """The values of one multi-valued attribute that a desired state speaks for.

    ``filters`` are the value filters of the managed element paths
    (``type eq "work"``), sorted by their text; ``selects`` tells whether one value
    (a model or its SCIM JSON) matches any of them. ``equal_values``, when every
    filter is one equality on the same sub-attribute (what mappings write): that
    sub-attribute and the values it selects, for a test without the evaluator.
    Scopes compare and hash by attribute and filters.
    """

    urn: str | None
    attribute: str
    filters: tuple[Filter, ...]
    selects: Callable[[Any], bool] = attrs.field(eq=False, repr=False)
    equal_values: tuple[str, frozenset[Any]] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    @property
    def key(self) -> tuple[str, str]:
        """See :func:`scope_key`."""
        return scope_key(self.urn, self.attribute)


def equal_values(filters: tuple[Filter, ...]) -> tuple[str, frozenset[Any]] | None:
    """``(sub-attribute, values)`` when each filter is ``sub eq value`` on one
    sub-attribute (``type eq "work"``, ``type eq "home"``); None otherwise."""
    names: set[str] = set()
    values: set[Any] = set()
    name = ""
    for part in filters:
        if not (
            isinstance(part, Comparison)
            and part.op == "eq"
            and part.path.sub is None
            and part.path.urn is None
            and part.value is not None
        ):
            return None
        name = part.path.name
        names.add(name.lower())
        values.add(part.value)
    if len(names) != 1:
        return None
    return name, frozenset(values)
