"""Pieces shared by every model: URNs, the SCIM name of a field, tuple conversion."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

T = TypeVar("T")

#: The shared, read-only default of ``extensions`` and ``extra``.
EMPTY: Mapping[str, Any] = MappingProxyType({})


def _repr_mapping(value: Mapping[str, Any]) -> str:
    return repr(dict(value))


def extra_field() -> Any:
    """An ``extra`` field: attributes the model does not declare, kept for round-trips.

    Compared by ``==`` but left out of ``hash()``, so sub-attribute values stay hashable.
    """
    return attrs.field(default=EMPTY, hash=False, repr=_repr_mapping)


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

# SCIM names that do not follow from camel-casing the Python name.
_SPECIAL_NAMES = {
    "ref": "$ref",
    "resources": "Resources",
    "operations": "Operations",
}


def scim_name(python_name: str) -> str:
    """Return the SCIM attribute name of a model field: ``user_name`` -> ``userName``."""
    special = _SPECIAL_NAMES.get(python_name)
    if special is not None:
        return special
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# The converters take Iterable[Any]: mypy's attrs plugin cannot specialise a generic
# converter per field, and lists must be accepted wherever tuples are stored.
def to_tuple(values: Iterable[Any] | None) -> tuple[Any, ...] | None:
    """Store a multi-valued attribute as a tuple, keeping ``None`` (unset) apart from ``()``."""
    if values is None or type(values) is tuple:
        return values
    return tuple(values)


def to_tuple_or_empty(values: Iterable[Any] | None) -> tuple[Any, ...]:
    """Store a list as a tuple, ``None`` becoming ``()``."""
    if type(values) is tuple:
        return values
    return () if values is None else tuple(values)
