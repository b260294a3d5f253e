"""Reading request bodies: JSON, resources and messages, or the right SCIM error.

A resource body goes through the codec (:func:`scimsync.from_scim`), so what the
server stores is exactly what scimsync's models can hold, in canonical form:
attribute names as the schema spells them, booleans as booleans, readOnly
attributes (``id``, ``meta``, ``groups``) dropped as RFC 7644 §3.3 asks.

Attributes no schema of the resource type declares are refused (400
``invalidSyntax``) rather than stored: the server publishes its schemas at
``/Schemas``, and a test target that silently keeps what production would reject or
drop hides mapping mistakes until production.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from ..codec import from_scim, to_scim
from ..errors import ResourceValidationError
from ..models import GROUP_SCHEMA, USER_SCHEMA, Group, User
from ._store import GROUP, USER
from ._wire import ScimRequestError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..schema import SchemaTable

__all__ = ["KINDS", "Kind", "parse_json", "read_message", "read_resource"]


@attrs.frozen
class Kind:
    """A resource type the server serves."""

    name: str
    endpoint: str
    schema: str
    model: type[User] | type[Group]


KINDS: dict[str, Kind] = {
    "Users": Kind(USER, "/Users", USER_SCHEMA, User),
    "Groups": Kind(GROUP, "/Groups", GROUP_SCHEMA, Group),
}
KIND_BY_NAME = {kind.name: kind for kind in KINDS.values()}


def parse_json(body: bytes) -> Any:
    """Parse a request body, or raise 400 ``invalidSyntax``."""
    if not body.strip():
        raise ScimRequestError(
            400, "the request has no body; a JSON object is expected", "invalidSyntax"
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScimRequestError(400, f"the body is not valid JSON: {exc}", "invalidSyntax") from None


def check_schemas(data: Mapping[str, Any], expected: str, allowed: tuple[str, ...] = ()) -> None:
    """Check ``schemas`` names ``expected`` and nothing but ``allowed`` extensions."""
    schemas = _get_folded(data, "schemas")
    if schemas is None:
        raise ScimRequestError(
            400, f"'schemas' is required and must include {expected}", "invalidSyntax"
        )
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise ScimRequestError(400, "'schemas' must be a list of URNs", "invalidSyntax")
    folded = {s.lower() for s in schemas}
    if expected.lower() not in folded:
        raise ScimRequestError(
            400, f"'schemas' must include {expected}, got {schemas}", "invalidSyntax"
        )
    known = {expected.lower(), *(a.lower() for a in allowed)}
    unknown = sorted(s for s in schemas if s.lower() not in known)
    if unknown:
        raise ScimRequestError(
            400,
            f"'schemas' names schemas this resource type does not have: {unknown}",
            "invalidSyntax",
        )


def read_message(data: Any, cls: type[Any], schema: str) -> Any:
    """Read a protocol message (PatchOp, SearchRequest, BulkRequest) or raise 400."""
    if not isinstance(data, dict):
        raise ScimRequestError(400, "the body must be a JSON object", "invalidSyntax")
    check_schemas(data, schema)
    try:
        return from_scim(data, cls)
    except ResourceValidationError as exc:
        raise ScimRequestError(400, str(exc), "invalidValue") from None


def read_resource(data: Any, kind: Kind, table: SchemaTable) -> dict[str, Any]:
    """Validate a resource body and return it in canonical form, readOnly attributes dropped.

    Raises :class:`ScimRequestError`: 400 ``invalidSyntax`` for a body that is not an
    object, wrong ``schemas`` or an unknown attribute; 400 ``invalidValue`` for a
    value of the wrong type or a missing required attribute.
    """
    if not isinstance(data, dict):
        raise ScimRequestError(400, f"a {kind.name} must be a JSON object", "invalidSyntax")
    extensions = table.extension_urns(kind.name)
    check_schemas(data, kind.schema, extensions)
    data = without_extension_schemas(data, extensions)
    unknown = unknown_attributes(data, kind, table)
    if unknown:
        raise ScimRequestError(
            400,
            f"attributes not in the {kind.name} schemas: {', '.join(unknown)}",
            "invalidSyntax",
        )
    try:
        model = from_scim(data, kind.model)
    except ResourceValidationError as exc:
        raise ScimRequestError(400, str(exc), "invalidValue") from None
    resource = to_scim(model, request=True)
    for urn, spec in table.attributes(kind.name):
        if spec.required and urn is None and not resource.get(spec.name):
            raise ScimRequestError(
                400, f"required attribute {spec.name!r} is missing or empty", "invalidValue"
            )
    return resource


def without_extension_schemas(data: dict[str, Any], extensions: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without a ``schemas`` key inside its extension objects.

    Clients built on scim2-models write the extension's own URN there; it is no
    attribute of the extension, and dropping it loses nothing.
    """
    folded = {urn.lower() for urn in extensions}
    out = dict(data)
    for key, value in data.items():
        if key.lower() in folded and isinstance(value, dict):
            out[key] = extension_value(value)
    return out


def extension_value(value: dict[str, Any]) -> dict[str, Any]:
    """An extension object without the ``schemas`` key some clients put in it."""
    return {k: v for k, v in value.items() if k.lower() != "schemas"}


def unknown_attributes(data: Mapping[str, Any], kind: Kind, table: SchemaTable) -> list[str]:
    """Paths of the attributes in ``data`` that no schema of ``kind`` declares."""
    extensions = {urn.lower(): urn for urn in table.extension_urns(kind.name)}
    core_urn = kind.schema.lower()
    unknown: list[str] = []
    for key, value in data.items():
        folded = key.lower()
        if folded == "schemas":
            continue
        if folded == core_urn and isinstance(value, dict):
            # Core attributes written under their own URN.
            unknown.extend(f"{key}:{path}" for path in unknown_attributes(value, kind, table))
        elif folded in extensions:
            schema = table.schema(extensions[folded])
            if schema is None or not isinstance(value, dict):
                continue
            for name, sub_value in value.items():
                spec = schema.attribute(name)
                if spec is None:
                    unknown.append(f"{key}:{name}")
                else:
                    unknown.extend(_unknown_sub_attributes(f"{key}:{name}", spec, sub_value))
        else:
            spec = table.resolve(kind.name, key) if not folded.startswith("urn:") else None
            if spec is None:
                unknown.append(key)
            else:
                unknown.extend(_unknown_sub_attributes(key, spec, value))
    return unknown


def _unknown_sub_attributes(path: str, spec: Any, value: Any) -> list[str]:
    if not spec.complex:
        return []
    items = value if isinstance(value, list) else [value]
    unknown: list[str] = []
    for item in items:
        if isinstance(item, dict):
            unknown.extend(f"{path}.{name}" for name in item if spec.sub(name) is None)
    return sorted(set(unknown))


def _get_folded(data: Mapping[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is not None:
        return value
    for key, found in data.items():
        if isinstance(key, str) and key.lower() == name:
            return found
    return None
