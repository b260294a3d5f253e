"""What the server publishes about itself: RFC 7644 §4 discovery documents.

``/Schemas`` serves the RFC 7643 §8.7.1 documents the schema table is built from,
with one change to match what this server does: group ``displayName`` is unique.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any

from ..models import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    USER_SCHEMA,
)
from ..schema import SchemaTable, core_schema_documents

if TYPE_CHECKING:
    from ._quirks import Quirks

__all__ = [
    "filter_table",
    "resource_type_documents",
    "schema_documents",
    "schema_table",
    "service_provider_config",
]


def service_provider_config(
    quirks: Quirks, *, max_results: int, max_operations: int, max_payload_size: int
) -> dict[str, Any]:
    """The ``/ServiceProviderConfig`` document (RFC 7643 §5), without ``meta.location``."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": "https://github.com/scimsync/scimsync",
        "patch": {"supported": quirks.patch_supported},
        "bulk": {
            "supported": True,
            "maxOperations": max_operations,
            "maxPayloadSize": max_payload_size,
        },
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": quirks.etag_supported},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token in the Authorization header (RFC 6750).",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig"},
    }


def resource_type_documents() -> list[dict[str, Any]]:
    """The ``/ResourceTypes`` documents (RFC 7643 §6), without ``meta.location``."""
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}],
            "meta": {"resourceType": "ResourceType"},
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType"},
        },
    ]


@functools.cache
def _schema_documents() -> tuple[dict[str, Any], ...]:
    documents = copy.deepcopy(core_schema_documents())
    for document in documents:
        if document["id"] == GROUP_SCHEMA:
            for attribute in document["attributes"]:
                if attribute["name"] == "displayName":
                    attribute["uniqueness"] = "server"
    return tuple(documents)


def schema_documents() -> list[dict[str, Any]]:
    """The ``/Schemas`` documents (shared: never mutate them).

    Quirks do not show here: a provider with a quirk publishes the RFC's
    characteristics and behaves otherwise, which is what makes it a quirk.
    """
    return list(_schema_documents())


@functools.cache
def schema_table() -> SchemaTable:
    """The schema table the server validates, sorts and projects with."""
    return SchemaTable.from_scim(schema_documents(), resource_type_documents())


@functools.cache
def filter_table(quirks: Quirks) -> SchemaTable:
    """The schema table filters are evaluated with under ``quirks``."""
    if not quirks.case_sensitive_user_name_filter:
        return schema_table()
    documents = copy.deepcopy(schema_documents())
    for document in documents:
        if document["id"] == USER_SCHEMA:
            for attribute in document["attributes"]:
                if attribute["name"] == "userName":
                    attribute["caseExact"] = True
    return SchemaTable.from_scim(documents, resource_type_documents())
