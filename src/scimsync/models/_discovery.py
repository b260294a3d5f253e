"""Discovery resources of RFC 7643 §5–§7: ServiceProviderConfig, ResourceType, Schema."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ._base import (
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    to_tuple_or_empty,
)
from ._resources import Meta

__all__ = [
    "AuthenticationScheme",
    "BulkSupport",
    "FilterSupport",
    "ResourceType",
    "Schema",
    "SchemaAttribute",
    "SchemaExtension",
    "ServiceProviderConfig",
    "Supported",
]


@attrs.frozen(kw_only=True)
class Supported:
    """A feature flag of the service provider configuration."""

    supported: bool = False


@attrs.frozen(kw_only=True)
class BulkSupport:
    """Bulk support and its limits."""

    supported: bool = False
    max_operations: int | None = None
    max_payload_size: int | None = None


@attrs.frozen(kw_only=True)
class FilterSupport:
    """Filter support and the most results a filtered listing returns."""

    supported: bool = False
    max_results: int | None = None


@attrs.frozen(kw_only=True)
class AuthenticationScheme:
    """An authentication scheme the service provider accepts (RFC 7643 §5)."""

    type: str
    name: str
    description: str | None = None
    spec_uri: str | None = None
    documentation_uri: str | None = None
    primary: bool | None = None


@attrs.frozen(kw_only=True)
class ServiceProviderConfig:
    """What a SCIM service provider supports (RFC 7643 §5).

    Servers that omit a feature are read as not supporting it.
    """

    schema_urn: ClassVar[str] = SERVICE_PROVIDER_CONFIG_SCHEMA

    documentation_uri: str | None = None
    patch: Supported = attrs.field(factory=Supported)
    bulk: BulkSupport = attrs.field(factory=BulkSupport)
    filter: FilterSupport = attrs.field(factory=FilterSupport)
    change_password: Supported = attrs.field(factory=Supported)
    sort: Supported = attrs.field(factory=Supported)
    etag: Supported = attrs.field(factory=Supported)
    authentication_schemes: tuple[AuthenticationScheme, ...] = attrs.field(
        default=(), converter=to_tuple_or_empty
    )
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SchemaExtension:
    """An extension schema a resource type may carry."""

    schema: str
    required: bool = False


@attrs.frozen(kw_only=True)
class ResourceType:
    """A resource type the service provider serves (RFC 7643 §6)."""

    schema_urn: ClassVar[str] = RESOURCE_TYPE_SCHEMA

    id: str | None = None
    name: str
    endpoint: str
    schema: str
    description: str | None = None
    schema_extensions: tuple[SchemaExtension, ...] = attrs.field(
        default=(), converter=to_tuple_or_empty
    )
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SchemaAttribute:
    """The definition of one attribute in a :class:`Schema` (RFC 7643 §7)."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    description: str | None = None
    required: bool = False
    canonical_values: tuple[str, ...] | None = None
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    reference_types: tuple[str, ...] | None = None
    sub_attributes: tuple[SchemaAttribute, ...] | None = None


@attrs.frozen(kw_only=True)
class Schema:
    """A schema definition served at ``/Schemas`` (RFC 7643 §7)."""

    schema_urn: ClassVar[str] = SCHEMA_SCHEMA

    id: str
    name: str | None = None
    description: str | None = None
    attributes: tuple[SchemaAttribute, ...] = attrs.field(default=(), converter=to_tuple_or_empty)
    meta: Meta | None = None
