"""The schema table: what each SCIM attribute is and how it may be used.

One table holds, for every attribute of every schema, the characteristics of RFC 7643
§2.2 and §7 (type, multiValued, required, caseExact, mutability, returned, uniqueness,
canonicalValues, referenceTypes, subAttributes). Everything else asks this table
instead of keeping its own ``if`` lists: the codec (which attributes to leave out of a
request), the filter evaluator (case-sensitive or not), PATCH (may this be written?),
the mapping checker (does the target have this attribute at all?).

:data:`CORE_SCHEMAS` is built from RFC 7643 §8.7.1 (User, Group, EnterpriseUser) plus
the common attributes of §3.1 (``id``, ``externalId``, ``meta``).
:meth:`SchemaTable.from_scim` builds the same table from what a real target serves at
``/Schemas`` and ``/ResourceTypes``, so later parts can check against what the target
actually supports; :meth:`SchemaTable.only` narrows a table to the attributes a custom
target keeps (what its ``schema()`` returns).

Names are matched case-insensitively (RFC 7643 §2.1).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import attrs

from .errors import ConfigurationError, ResourceValidationError
from .models import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    ResourceType,
    Schema,
    SchemaAttribute,
)

__all__ = [
    "AttributeSpec",
    "CORE_SCHEMAS",
    "ResourceTypeSpec",
    "SchemaDefinition",
    "SchemaTable",
    "core_schema_documents",
    "core_schemas",
    "split_urn",
]

_MUTABILITIES = frozenset({"readOnly", "readWrite", "immutable", "writeOnly"})
_RETURNED = frozenset({"always", "never", "default", "request"})
_UNIQUENESS = frozenset({"none", "server", "global"})
_TYPES = frozenset(
    {"string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"}
)


@attrs.frozen(kw_only=True)
class AttributeSpec:
    """The characteristics of one attribute (RFC 7643 §2.2, §7).

    ``sub_attributes`` is keyed by lower-cased name; use :meth:`sub` to look one up.
    """

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: Mapping[str, AttributeSpec] = attrs.field(factory=dict, repr=False)
    description: str | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def read_only(self) -> bool:
        """True when a client may never set this attribute."""
        return self.mutability == "readOnly"

    @property
    def write_only(self) -> bool:
        """True when the value is never returned, so it cannot be compared (a password)."""
        return self.mutability == "writeOnly" or self.returned == "never"

    @property
    def writable(self) -> bool:
        """True when a client may set this attribute at some point."""
        return self.mutability != "readOnly"

    @property
    def complex(self) -> bool:
        """True for complex attributes (those with sub-attributes)."""
        return self.type == "complex"

    def sub(self, name: str) -> AttributeSpec | None:
        """Return the sub-attribute ``name`` (case-insensitive), or None."""
        return self.sub_attributes.get(name.lower())


@attrs.frozen(kw_only=True)
class SchemaDefinition:
    """One schema: its URN and top-level attributes keyed by lower-cased name."""

    id: str
    name: str | None = None
    attributes: Mapping[str, AttributeSpec] = attrs.field(factory=dict, repr=False)

    def attribute(self, name: str) -> AttributeSpec | None:
        """Return the top-level attribute ``name`` (case-insensitive), or None."""
        return self.attributes.get(name.lower())


@attrs.frozen(kw_only=True)
class ResourceTypeSpec:
    """A resource type: its core schema and the extension schemas it may carry."""

    name: str
    schema: str
    extensions: tuple[str, ...] = ()
    endpoint: str | None = None


def split_urn(path: str, known_urns: Iterable[str] = ()) -> tuple[str | None, str]:
    """Split a possibly URN-qualified attribute path into ``(urn, attribute_path)``.

    ``"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"`` gives the User URN
    and ``"name.givenName"``; ``"userName"`` gives ``(None, "userName")``. A path that
    is itself one of ``known_urns`` (a whole extension) gives ``(urn, "")``. Attribute
    names cannot hold ``:``, so the attribute starts after the last colon.
    """
    if path[:4].lower() != "urn:":
        return None, path
    folded = path.lower()
    for urn in known_urns:
        if folded == urn.lower():
            return urn, ""
    # Only a dot after the last colon belongs to the attribute path ("...:2.0:User:name.x").
    head, _, tail = path.rpartition(":")
    return head, tail


@attrs.frozen(kw_only=True, eq=False)
class SchemaTable:
    """Every schema and resource type a target knows, with lookups by attribute path.

    ``schemas`` and ``resource_types`` are keyed by lower-cased URN and name. Tables
    compare and hash by identity, which lets lookups be cached per table.
    """

    schemas: Mapping[str, SchemaDefinition] = attrs.field(factory=dict, repr=False)
    resource_types: Mapping[str, ResourceTypeSpec] = attrs.field(factory=dict)

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_scim(
        cls,
        schemas: Iterable[Mapping[str, Any] | Schema],
        resource_types: Iterable[Mapping[str, Any] | ResourceType] = (),
    ) -> SchemaTable:
        """Build a table from a target's ``/Schemas`` and ``/ResourceTypes`` answers.

        Accepts the JSON objects (or a ListResponse's ``Resources``) or the parsed
        models. Characteristics a server leaves out take the RFC 7643 §2.2 defaults;
        resource types left out are inferred for the core User and Group schemas.
        Raises :class:`~scimsync.errors.ResourceValidationError` listing every
        malformed attribute definition.
        """
        errors: list[str] = []
        table: dict[str, SchemaDefinition] = {}
        for index, raw in enumerate(schemas):
            data = _schema_to_dict(raw)
            definition = _parse_schema(data, f"$[{index}]", errors)
            if definition is not None:
                table[definition.id.lower()] = definition
        if errors:
            raise ResourceValidationError("invalid schema definition", errors)
        types: dict[str, ResourceTypeSpec] = {}
        for raw_type in resource_types:
            spec = _parse_resource_type(raw_type)
            types[spec.name.lower()] = spec
        if not types:
            types = _infer_resource_types(table)
        return cls(schemas=table, resource_types=types)

    def only(self, *, users: Iterable[str], groups: Iterable[str] | None = None) -> SchemaTable:
        """This table narrowed to the attributes a target keeps: a custom target's schema.

        A target that stores a few attributes says which, and checking a mapping
        against the result makes mapping any other one a blocking problem of
        :meth:`Mapping.check <scimsync.mapping.Mapping.check>` (its values would be
        lost), instead of an update planned on every cycle::

            >>> from scimsync.schema import CORE_SCHEMAS
            >>> acme = CORE_SCHEMAS.only(
            ...     users=["userName", "name.givenName", "title", "emails.value", "active"],
            ...     groups=["displayName", "members"],
            ... )
            >>> [spec.name for _, spec in acme.attributes("User")][3:]
            ['userName', 'name', 'title', 'active', 'emails']
            >>> sorted(acme.resolve("User", "name").sub_attributes)
            ['givenname']
            >>> acme.resolve("User", "nickName") is None
            True

        Paths are as a mapping writes them: ``"title"`` keeps the whole attribute (every
        sub-attribute), ``"name.givenName"`` or ``"emails.value"`` one sub-attribute,
        an extension attribute URN-qualified (``"urn:...:enterprise:2.0:User:
        employeeNumber"``), a whole extension by its URN; names in any case. The
        characteristics (type, caseExact, mutability...) are this table's. Attributes
        the schema requires (``userName``) are kept whether listed or not; the common
        attributes ``id``, ``externalId`` and ``meta`` are on every resource.
        ``groups=None`` (the default) leaves the Group resource type out: a users-only
        target, against which a mapping that makes groups is a blocking problem. An
        extension keeps its place on the resource type only when one of its attributes
        is kept.

        Raises :class:`~scimsync.errors.ConfigurationError` naming every path this table
        does not have (a misspelt name would otherwise drop an attribute unnoticed).
        """
        errors: list[str] = []
        schemas: dict[str, SchemaDefinition] = {}
        types: dict[str, ResourceTypeSpec] = {}
        for name, paths in (("User", users), ("Group", groups)):
            if paths is None:
                continue
            if isinstance(paths, str):
                raise ConfigurationError(
                    f"{name.lower()}s= takes a list of attribute paths, not the string {paths!r}"
                )
            rtype = self.resource_type(name)
            if rtype is None:
                errors.append(f"{name}: this table has no {name} resource type")
                continue
            kept = _kept_schemas(self, rtype, paths, errors)
            schemas.update(kept)
            extensions = tuple(urn for urn in rtype.extensions if urn.lower() in kept)
            types[rtype.name.lower()] = attrs.evolve(rtype, extensions=extensions)
        if errors:
            raise ConfigurationError("unknown attributes to keep: " + "; ".join(errors))
        return SchemaTable(schemas=schemas, resource_types=types)

    # -- lookups ----------------------------------------------------------------------

    def schema(self, urn: str) -> SchemaDefinition | None:
        """Return the schema with URN ``urn`` (case-insensitive), or None."""
        return self.schemas.get(urn.lower())

    def resource_type(self, name: str) -> ResourceTypeSpec | None:
        """Return the resource type ``name`` (``"User"``), or None."""
        return self.resource_types.get(name.lower())

    def resolve(self, resource_type: str, path: str) -> AttributeSpec | None:
        """Return the spec of ``path`` on ``resource_type``, or None when there is none.

        ``path`` is an attribute path as in filters and PATCH, without value filters:
        ``"userName"``, ``"name.givenName"``, ``"emails.value"``, ``"meta.created"``,
        or URN-qualified (``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:
        manager.value"``). Common attributes (``id``, ``externalId``, ``meta``) resolve on
        every resource type.
        """
        return _resolve_cached(self, resource_type.lower(), path.lower())

    def case_exact(self, resource_type: str, path: str) -> bool:
        """True when values at ``path`` compare case-sensitively (unknown paths: False)."""
        spec = self.resolve(resource_type, path)
        return spec.case_exact if spec is not None else False

    def extension_urns(self, resource_type: str) -> tuple[str, ...]:
        """The extension schema URNs ``resource_type`` may carry."""
        spec = self.resource_type(resource_type)
        return spec.extensions if spec is not None else ()

    def attributes(self, resource_type: str) -> Iterable[tuple[str | None, AttributeSpec]]:
        """Every top-level attribute of ``resource_type`` as ``(extension urn or None, spec)``.

        The common attributes come first, then the core schema's, then each extension's.
        """
        for spec in _COMMON.values():
            yield None, spec
        rtype = self.resource_type(resource_type)
        if rtype is None:
            return
        core = self.schema(rtype.schema)
        if core is not None:
            for spec in core.attributes.values():
                yield None, spec
        for urn in rtype.extensions:
            ext = self.schema(urn)
            if ext is not None:
                for spec in ext.attributes.values():
                    yield ext.id, spec


# Tables are immutable, so a lookup's answer can be cached per table.
@functools.lru_cache(maxsize=4096)
def _resolve_cached(table: SchemaTable, resource_type: str, path: str) -> AttributeSpec | None:
    rtype = table.resource_types.get(resource_type)
    urn, rest = split_urn(path, rtype.extensions if rtype else ())
    if urn is not None:
        schema = table.schemas.get(urn.lower())
        if schema is None:
            return None
        if not rest:
            return AttributeSpec(name=schema.id, type="complex", sub_attributes=schema.attributes)
        head, _, sub = rest.partition(".")
        spec = schema.attributes.get(head)
    else:
        head, _, sub = path.partition(".")
        spec = _COMMON.get(head)
        if spec is None and rtype is not None:
            core = table.schemas.get(rtype.schema.lower())
            spec = core.attributes.get(head) if core is not None else None
    if spec is None or not sub:
        return spec
    return spec.sub_attributes.get(sub)


# -- parsing ------------------------------------------------------------------------------


def _schema_to_dict(raw: Mapping[str, Any] | Schema) -> Mapping[str, Any]:
    if isinstance(raw, Schema):
        return {
            "id": raw.id,
            "name": raw.name,
            "attributes": [_schema_attribute_to_dict(a) for a in raw.attributes],
        }
    return raw


def _schema_attribute_to_dict(attr: SchemaAttribute) -> dict[str, Any]:
    return {
        "name": attr.name,
        "type": attr.type,
        "multiValued": attr.multi_valued,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": attr.mutability,
        "returned": attr.returned,
        "uniqueness": attr.uniqueness,
        "canonicalValues": list(attr.canonical_values or ()),
        "referenceTypes": list(attr.reference_types or ()),
        "subAttributes": [_schema_attribute_to_dict(s) for s in attr.sub_attributes or ()],
        "description": attr.description,
    }


def _folded(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


def _parse_schema(data: object, where: str, errors: list[str]) -> SchemaDefinition | None:
    if not isinstance(data, Mapping):
        errors.append(f"{where}: expected a schema object, got {type(data).__name__}")
        return None
    fields = _folded(data)
    urn = fields.get("id")
    if not isinstance(urn, str) or not urn:
        errors.append(f"{where}.id: a schema needs its URN as a string")
        return None
    raw_attributes = fields.get("attributes") or []
    if not isinstance(raw_attributes, list):
        errors.append(f"{where}.attributes: expected a list")
        return None
    attributes = _parse_attributes(raw_attributes, f"{where}.attributes", errors)
    name = fields.get("name")
    return SchemaDefinition(
        id=urn, name=name if isinstance(name, str) else None, attributes=attributes
    )


def _parse_attributes(raw: list[Any], where: str, errors: list[str]) -> dict[str, AttributeSpec]:
    out: dict[str, AttributeSpec] = {}
    for index, item in enumerate(raw):
        spec = _parse_attribute(item, f"{where}[{index}]", errors)
        if spec is not None:
            out[spec.name.lower()] = spec
    return out


def _text(fields: Mapping[str, Any], key: str, default: str) -> str:
    value = fields.get(key.lower(), default)
    return value if isinstance(value, str) else default


def _flag(fields: Mapping[str, Any], key: str, where: str, errors: list[str]) -> bool:
    value = fields.get(key.lower(), False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    errors.append(f"{where}.{key}: expected a boolean, got {value!r}")
    return False


def _strings(fields: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = fields.get(key.lower())
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _parse_attribute(item: object, where: str, errors: list[str]) -> AttributeSpec | None:
    if not isinstance(item, Mapping):
        errors.append(f"{where}: expected an attribute object, got {type(item).__name__}")
        return None
    fields = _folded(item)
    name = fields.get("name")
    if not isinstance(name, str) or not name:
        errors.append(f"{where}.name: an attribute needs a name")
        return None
    where = f"{where}({name})"
    attr_type = _text(fields, "type", "string")
    if attr_type not in _TYPES:
        # Some servers write "Boolean" or "datetime"; accept any casing of a known type.
        folded_types = {t.lower(): t for t in _TYPES}
        if attr_type.lower() in folded_types:
            attr_type = folded_types[attr_type.lower()]
        else:
            errors.append(f"{where}.type: unknown type {attr_type!r}")
    mutability = _canonical(_text(fields, "mutability", "readWrite"), _MUTABILITIES)
    returned = _canonical(_text(fields, "returned", "default"), _RETURNED)
    uniqueness = _canonical(_text(fields, "uniqueness", "none"), _UNIQUENESS)
    for key, value, allowed in (
        ("mutability", mutability, _MUTABILITIES),
        ("returned", returned, _RETURNED),
        ("uniqueness", uniqueness, _UNIQUENESS),
    ):
        if value not in allowed:
            errors.append(f"{where}.{key}: unknown value {value!r}")
    raw_subs = fields.get("subattributes") or []
    subs = (
        _parse_attributes(raw_subs, f"{where}.subAttributes", errors)
        if isinstance(raw_subs, list)
        else {}
    )
    description = fields.get("description")
    return AttributeSpec(
        name=name,
        type=attr_type,
        multi_valued=_flag(fields, "multiValued", where, errors),
        required=_flag(fields, "required", where, errors),
        case_exact=_flag(fields, "caseExact", where, errors),
        mutability=mutability,
        returned=returned,
        uniqueness=uniqueness,
        canonical_values=_strings(fields, "canonicalValues"),
        reference_types=_strings(fields, "referenceTypes"),
        sub_attributes=subs,
        description=description if isinstance(description, str) else None,
    )


def _canonical(value: str, allowed: frozenset[str]) -> str:
    for option in allowed:
        if option.lower() == value.lower():
            return option
    return value


def _parse_resource_type(raw: Mapping[str, Any] | ResourceType) -> ResourceTypeSpec:
    if isinstance(raw, ResourceType):
        return ResourceTypeSpec(
            name=raw.name,
            schema=raw.schema,
            extensions=tuple(e.schema for e in raw.schema_extensions),
            endpoint=raw.endpoint,
        )
    fields = _folded(raw)
    name, schema = fields.get("name"), fields.get("schema")
    if not isinstance(name, str) or not isinstance(schema, str):
        raise ResourceValidationError(
            "invalid resource type", [f"$: needs 'name' and 'schema' strings, got {dict(raw)!r}"]
        )
    extensions = []
    for ext in fields.get("schemaextensions") or []:
        if isinstance(ext, Mapping):
            urn = _folded(ext).get("schema")
            if isinstance(urn, str):
                extensions.append(urn)
    endpoint = fields.get("endpoint")
    return ResourceTypeSpec(
        name=name,
        schema=schema,
        extensions=tuple(extensions),
        endpoint=endpoint if isinstance(endpoint, str) else None,
    )


def _infer_resource_types(table: Mapping[str, SchemaDefinition]) -> dict[str, ResourceTypeSpec]:
    types: dict[str, ResourceTypeSpec] = {}
    if USER_SCHEMA.lower() in table:
        extensions = (ENTERPRISE_USER_SCHEMA,) if ENTERPRISE_USER_SCHEMA.lower() in table else ()
        types["user"] = ResourceTypeSpec(
            name="User", schema=USER_SCHEMA, extensions=extensions, endpoint="/Users"
        )
    if GROUP_SCHEMA.lower() in table:
        types["group"] = ResourceTypeSpec(name="Group", schema=GROUP_SCHEMA, endpoint="/Groups")
    return types


# -- narrowing (SchemaTable.only) ---------------------------------------------------------


def _kept_schemas(
    table: SchemaTable, rtype: ResourceTypeSpec, paths: Iterable[str], errors: list[str]
) -> dict[str, SchemaDefinition]:
    """The schemas of ``rtype`` holding only the attributes ``paths`` name (and the
    required ones); an extension nothing names is left out."""
    urns = (rtype.schema, *rtype.extensions)
    # urn (lower) -> attribute (lower) -> sub-attributes kept (None: all of them)
    wanted: dict[str, dict[str, set[str] | None]] = {rtype.schema.lower(): {}}
    core = table.schema(rtype.schema)
    required = [s.name for s in core.attributes.values() if s.required] if core else []
    for path in (*required, *paths):
        urn, rest = split_urn(path, urns)
        urn = urn if urn is not None else rtype.schema
        schema = table.schema(urn)
        if schema is None or urn.lower() not in (u.lower() for u in urns):
            errors.append(f"{rtype.name} {path!r}: no schema {urn} on {rtype.name}")
            continue
        attributes = wanted.setdefault(urn.lower(), {})
        if not rest:
            attributes.update((key, None) for key in schema.attributes)
            continue
        head, _, sub = rest.partition(".")
        spec = schema.attribute(head)
        if spec is None:
            if urn.lower() == rtype.schema.lower() and head.lower() in _COMMON:
                continue  # id, externalId, meta: on every resource anyway
            errors.append(f"{rtype.name} {path!r}: no attribute {head!r}")
            continue
        if not sub:
            attributes[head.lower()] = None
            continue
        if spec.sub(sub) is None:
            errors.append(f"{rtype.name} {path!r}: {spec.name!r} has no sub-attribute {sub!r}")
            continue
        subs = attributes.setdefault(head.lower(), set())
        if subs is not None:
            subs.add(sub.lower())
    out: dict[str, SchemaDefinition] = {}
    for urn, attributes in wanted.items():
        schema = table.schema(urn)
        if schema is None or (urn != rtype.schema.lower() and not attributes):
            continue
        narrowed: dict[str, AttributeSpec] = {}
        for key, spec in schema.attributes.items():
            if key not in attributes:
                continue
            subs = attributes[key]
            narrowed[key] = (
                spec
                if subs is None
                else attrs.evolve(
                    spec,
                    sub_attributes={k: v for k, v in spec.sub_attributes.items() if k in subs},
                )
            )
        out[urn] = attrs.evolve(schema, attributes=narrowed)
    return out


# -- the common attributes of RFC 7643 §3.1, on every resource ----------------------------

_COMMON: dict[str, AttributeSpec] = {
    "id": AttributeSpec(
        name="id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"
    ),
    "externalid": AttributeSpec(name="externalId", case_exact=True),
    "meta": AttributeSpec(
        name="meta",
        type="complex",
        mutability="readOnly",
        sub_attributes={
            "resourcetype": AttributeSpec(
                name="resourceType", case_exact=True, mutability="readOnly"
            ),
            "created": AttributeSpec(name="created", type="dateTime", mutability="readOnly"),
            "lastmodified": AttributeSpec(
                name="lastModified", type="dateTime", mutability="readOnly"
            ),
            "location": AttributeSpec(
                name="location", type="reference", case_exact=True, mutability="readOnly"
            ),
            "version": AttributeSpec(name="version", case_exact=True, mutability="readOnly"),
        },
    ),
}


@functools.cache
def core_schemas() -> SchemaTable:
    """The table of RFC 7643 §8.7.1: User with the enterprise extension, and Group."""
    raw = resources.files("scimsync").joinpath("_data/core_schemas.json").read_text("utf-8")
    return SchemaTable.from_scim(json.loads(raw))


def core_schema_documents() -> list[dict[str, Any]]:
    """The RFC 7643 §8.7.1 schema documents as JSON objects (what ``/Schemas`` serves)."""
    raw = resources.files("scimsync").joinpath("_data/core_schemas.json").read_text("utf-8")
    documents: list[dict[str, Any]] = json.loads(raw)
    return documents


CORE_SCHEMAS: SchemaTable = core_schemas()
"""The default schema table (RFC 7643 §8.7.1 plus the common attributes)."""
