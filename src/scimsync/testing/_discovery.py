"""What the server publishes about itself: RFC 7644 §4 discovery documents, and the
endpoints serving them (:func:`answer_discovery`).

``/Schemas`` serves the RFC 7643 §8.7.1 documents the schema table is built from,
with one change to match what this server does: group ``displayName`` is unique.
Each document carries its ``meta.location``; a filter on these endpoints is refused
(403) rather than ignored, and an entry is found by id case-insensitively.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any

from ..models import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    USER_SCHEMA,
)
from ..schema import SchemaTable, core_schema_documents
from ._wire import ScimRequestError, json_response

if TYPE_CHECKING:
    from ._quirks import Quirks
    from ._routes import Context, Route
    from ._wire import WireResponse

__all__ = [
    "answer_discovery",
    "filter_table",
    "resource_type_documents",
    "schema_documents",
    "schema_table",
    "service_provider_config",
]


def answer_discovery(
    route: Route,
    context: Context,
    *,
    base_path: str,
    max_results: int,
    max_operations: int,
    max_payload_size: int,
) -> WireResponse:
    """Answer ``GET /ServiceProviderConfig``, ``/ResourceTypes[/{id}]`` or ``/Schemas[/{id}]``."""
    base = context.request.origin + base_path
    quirks = context.quirks
    if route.endpoint == "ServiceProviderConfig":
        document = service_provider_config(
            quirks,
            max_results=max_results,
            max_operations=max_operations,
            max_payload_size=max_payload_size,
        )
        document["meta"] = {**document["meta"], "location": f"{base}/ServiceProviderConfig"}
        return json_response(200, document)
    if "filter" in context.params:
        # RFC 7644 §4: a filter here would be ignored, so refuse it rather than mislead.
        raise ScimRequestError(403, f"filtering is not supported on /{route.endpoint}")
    if route.endpoint == "ResourceTypes":
        documents = resource_type_documents()
    else:
        documents = schema_documents()
    located = [
        {**d, "meta": {**d.get("meta", {}), "location": f"{base}/{route.endpoint}/{d['id']}"}}
        for d in documents
    ]
    if route.item is not None:
        for document in located:
            if document["id"].lower() == route.item.lower():
                return json_response(200, document)
        raise ScimRequestError(404, f"no {route.endpoint} entry {route.item!r}")
    listing: dict[str, Any] = {"schemas": [LIST_RESPONSE_SCHEMA]}
    if quirks.discovery_total_results:
        listing["totalResults"] = len(located)
    listing.update(itemsPerPage=len(located), startIndex=1, Resources=located)
    return json_response(200, listing)


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
