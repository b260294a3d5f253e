"""Which values of a multi-valued attribute are "the same value" (PATCH and diff agree).

A member is its ``value`` (the id of the member: an immutable reference); an email, a
phone number, a role is its ``type`` and ``value``; an address is its ``type``. Strings
compare as the schema says (``caseExact``), and an empty string is no value. Both
:func:`~scimsync.patch.apply_patch` (an ``add`` merges into the value with the same
identity instead of duplicating it) and :func:`~scimsync.patch.diff` (a changed value
is addressed by a filter on its identity) use these rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..filter import Filter, and_, attr
from ..filter._eval import lookup

if TYPE_CHECKING:
    from ..schema import AttributeSpec

_SCALARS = (str, int, float, bool)


def identity_fields(spec: AttributeSpec | None) -> tuple[AttributeSpec, ...]:
    """The sub-attributes naming a value of the multi-valued complex attribute ``spec``."""
    if spec is None or not spec.complex:
        return ()
    value = spec.sub("value")
    if value is not None and value.mutability == "immutable":
        return (value,)
    return tuple(sub for sub in (spec.sub("type"), value) if sub is not None)


def identity(fields: tuple[AttributeSpec, ...], element: Any) -> tuple[Any, ...] | None:
    """The identity of one value (a SCIM JSON object), or None when it has none."""
    if not fields or not isinstance(element, dict):
        return None
    key: list[Any] = []
    for field in fields:
        found = lookup(element, field.name, field.name.lower())
        if found == "":
            found = None
        elif type(found) is str and not field.case_exact:
            found = found.casefold()
        elif found is not None and type(found) not in _SCALARS:
            return None
        key.append(found)
    return tuple(key)


def identity_filter(fields: tuple[AttributeSpec, ...], element: dict[str, Any]) -> Filter:
    """A value filter selecting the values with the identity of ``element``."""
    parts: list[Filter] = []
    for field in fields:
        found = lookup(element, field.name, field.name.lower())
        if found is None or found == "":
            parts.append(~attr(field.name).pr())
        else:
            parts.append(attr(field.name).eq(found))
    return and_(*parts)
