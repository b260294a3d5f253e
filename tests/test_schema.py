"""The schema table: RFC 7643 characteristics, and the same table from a server's /Schemas."""

from __future__ import annotations

from typing import Any

import pytest

from scimsync import from_scim
from scimsync.errors import ConfigurationError, ResourceValidationError
from scimsync.models import ENTERPRISE_USER_SCHEMA, USER_SCHEMA, ResourceType, Schema
from scimsync.schema import (
    CORE_SCHEMAS,
    SchemaTable,
    core_schema_documents,
    split_urn,
)


@pytest.mark.parametrize(
    ("resource_type", "path", "case_exact", "mutability", "returned"),
    [
        ("User", "userName", False, "readWrite", "default"),
        ("user", "USERNAME", False, "readWrite", "default"),
        ("User", "id", True, "readOnly", "always"),
        ("User", "externalId", True, "readWrite", "default"),
        ("User", "password", True, "writeOnly", "never"),
        ("User", "groups", False, "readOnly", "default"),
        ("User", "groups.value", True, "readOnly", "default"),
        ("User", "emails.value", False, "readWrite", "default"),
        ("User", "name.givenName", False, "readWrite", "default"),
        ("User", "meta.lastModified", False, "readOnly", "default"),
        ("User", f"{ENTERPRISE_USER_SCHEMA}:manager.displayName", False, "readOnly", "default"),
        ("User", f"{ENTERPRISE_USER_SCHEMA}:employeeNumber", False, "readWrite", "default"),
        ("User", f"{USER_SCHEMA}:userName", False, "readWrite", "default"),
        ("Group", "members.value", True, "immutable", "default"),
        ("Group", "displayName", False, "readWrite", "default"),
    ],
)
def test_core_table_resolves_rfc_characteristics(
    resource_type: str, path: str, case_exact: bool, mutability: str, returned: str
) -> None:
    """Paths resolve, case-insensitively and URN-qualified, to RFC 7643 §8.7.1 values."""
    spec = CORE_SCHEMAS.resolve(resource_type, path)
    assert spec is not None
    assert (case_exact, mutability, returned) == (spec.case_exact, spec.mutability, spec.returned)


@pytest.mark.parametrize(
    ("resource_type", "path"),
    [("User", "shoeSize"), ("User", "name.nickname"), ("Group", "userName"), ("Device", "id2")],
)
def test_unknown_paths_resolve_to_none(resource_type: str, path: str) -> None:
    """An attribute the schema lacks is None, never a guess."""
    assert CORE_SCHEMAS.resolve(resource_type, path) is None


def test_whole_extension_resolves_to_a_complex_attribute() -> None:
    """The enterprise URN alone names the extension as one complex attribute."""
    spec = CORE_SCHEMAS.resolve("User", ENTERPRISE_USER_SCHEMA)
    assert spec is not None
    assert spec.type == "complex"
    assert spec.sub("manager") is not None


def test_characteristics_drive_helpers() -> None:
    """read_only / write_only / writable and required read from the table."""
    user_name = CORE_SCHEMAS.resolve("User", "userName")
    password = CORE_SCHEMAS.resolve("User", "password")
    groups = CORE_SCHEMAS.resolve("User", "groups")
    assert user_name is not None
    assert password is not None
    assert groups is not None
    assert (user_name.required, user_name.uniqueness) == (True, "server")
    assert (password.write_only, password.writable) == (True, True)
    assert (groups.read_only, groups.writable, groups.multi_valued) == (True, False, True)
    assert CORE_SCHEMAS.case_exact("User", "id") is True
    assert CORE_SCHEMAS.case_exact("User", "nonexistent") is False


def test_attributes_lists_common_core_and_extension() -> None:
    """attributes() yields the common attributes, the core schema's, then each extension's."""
    listed = [(urn, spec.name) for urn, spec in CORE_SCHEMAS.attributes("User")]
    assert listed[:3] == [(None, "id"), (None, "externalId"), (None, "meta")]
    assert (None, "userName") in listed
    assert (ENTERPRISE_USER_SCHEMA, "manager") in listed
    assert len(listed) == 3 + 21 + 6


def test_table_from_served_documents_equals_core() -> None:
    """Parsing the /Schemas documents (JSON or models) gives the same attributes."""
    documents = core_schema_documents()
    from_json = SchemaTable.from_scim(documents)
    from_models = SchemaTable.from_scim([from_scim(d, Schema) for d in documents])
    for table in (from_json, from_models):
        assert table.schemas.keys() == CORE_SCHEMAS.schemas.keys()
        for key, definition in CORE_SCHEMAS.schemas.items():
            assert definition.attributes == table.schemas[key].attributes


def test_resource_types_from_the_server_are_used() -> None:
    """Resource types parsed from /ResourceTypes decide which extensions apply."""
    documents = core_schema_documents()
    user_type = ResourceType(name="User", endpoint="/Users", schema=USER_SCHEMA)
    table = SchemaTable.from_scim(documents, [user_type])
    assert table.extension_urns("User") == ()
    assert table.resolve("User", "userName") is not None
    assert table.resolve("Group", "displayName") is None  # not served as a resource type


def test_sparse_and_oddly_cased_definitions_take_rfc_defaults() -> None:
    """Missing characteristics default per RFC 7643 §2.2; casing of names/values is forgiven."""
    table = SchemaTable.from_scim(
        [
            {
                "ID": USER_SCHEMA,
                "Attributes": [
                    {"Name": "userName", "Type": "String", "Mutability": "readwrite"},
                    {"name": "active", "type": "boolean", "required": "true"},
                ],
            }
        ]
    )
    spec = table.resolve("User", "username")
    assert spec is not None
    assert (spec.type, spec.mutability, spec.case_exact, spec.returned, spec.uniqueness) == (
        "string",
        "readWrite",
        False,
        "default",
        "none",
    )
    active = table.resolve("User", "active")
    assert active is not None
    assert active.required is True


@pytest.mark.parametrize(
    ("schemas", "expected"),
    [
        ([{"attributes": []}], "$[0].id: a schema needs its URN as a string"),
        (["urn:x"], "$[0]: expected a schema object, got str"),
        (
            [{"id": "urn:x", "attributes": [{"name": "a", "type": "shoe"}]}],
            "$[0].attributes[0](a).type: unknown type 'shoe'",
        ),
        (
            [{"id": "urn:x", "attributes": [{"name": "a", "mutability": "sometimes"}]}],
            "$[0].attributes[0](a).mutability: unknown value 'sometimes'",
        ),
        (
            [{"id": "urn:x", "attributes": [{"type": "string"}]}],
            "$[0].attributes[0].name: an attribute needs a name",
        ),
    ],
)
def test_malformed_definitions_are_reported(schemas: list[Any], expected: str) -> None:
    """A malformed /Schemas answer raises ResourceValidationError naming the place."""
    with pytest.raises(ResourceValidationError) as info:
        SchemaTable.from_scim(schemas)
    assert [expected] == list(info.value.errors)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("userName", (None, "userName")),
        (f"{USER_SCHEMA}:name.givenName", (USER_SCHEMA, "name.givenName")),
        (ENTERPRISE_USER_SCHEMA, (ENTERPRISE_USER_SCHEMA, "")),
        (f"{ENTERPRISE_USER_SCHEMA}:manager.value", (ENTERPRISE_USER_SCHEMA, "manager.value")),
    ],
)
def test_split_urn(path: str, expected: tuple[str | None, str]) -> None:
    """URN-qualified paths split at the last colon; a known URN alone is a whole extension."""
    assert expected == split_urn(path, [ENTERPRISE_USER_SCHEMA])


# -- what a custom target keeps (SchemaTable.only) ---------------------------------------------


def subs(table: SchemaTable, path: str) -> list[str]:
    """The sub-attributes of the User attribute ``path`` in ``table``, sorted."""
    spec = table.resolve("User", path)
    assert spec is not None, path
    return sorted(spec.sub_attributes)


def test_only_keeps_the_named_attributes_with_their_characteristics() -> None:
    """A narrowed table holds the named attributes (a dotted path keeps one
    sub-attribute), the required userName, and the core characteristics."""
    table = CORE_SCHEMAS.only(
        users=["name.givenName", "TITLE", "emails.value", "emails.type", "active"],
        groups=["displayName"],
    )
    assert ["id", "externalId", "meta", "userName", "name", "title", "active", "emails"] == [
        spec.name for _, spec in table.attributes("User")
    ]
    assert (["givenname"], ["type", "value"]) == (subs(table, "name"), subs(table, "emails"))
    assert CORE_SCHEMAS.resolve("User", "emails.value") == table.resolve("User", "emails.value")
    assert (None, None, None) == (
        table.resolve("User", "nickName"),
        table.resolve("User", "name.familyName"),
        table.resolve("Group", "members"),
    )


def test_only_leaves_groups_out_unless_named() -> None:
    """``groups=None`` is a users-only target: no Group resource type, no Group schema."""
    table = CORE_SCHEMAS.only(users=["userName"])
    assert (None, None, ["user"]) == (
        table.resource_type("Group"),
        table.schema("urn:ietf:params:scim:schemas:core:2.0:Group"),
        sorted(table.resource_types),
    )


def test_only_keeps_an_extension_when_one_of_its_attributes_is_named() -> None:
    """An extension stays on User only when something of it is kept: an attribute, a
    sub-attribute, or the whole extension by its URN."""
    without = CORE_SCHEMAS.only(users=["userName"])
    one = CORE_SCHEMAS.only(users=[f"{ENTERPRISE_USER_SCHEMA}:manager.value"])
    whole = CORE_SCHEMAS.only(users=[ENTERPRISE_USER_SCHEMA])
    assert ((), (ENTERPRISE_USER_SCHEMA,)) == (
        without.extension_urns("User"),
        one.extension_urns("User"),
    )
    assert ["value"] == subs(one, f"{ENTERPRISE_USER_SCHEMA}:manager")
    assert None is one.resolve("User", f"{ENTERPRISE_USER_SCHEMA}:employeeNumber")
    assert None is not whole.resolve("User", f"{ENTERPRISE_USER_SCHEMA}:employeeNumber")


def test_only_names_every_unknown_path() -> None:
    """A misspelt path is a ConfigurationError naming it, all of them at once; a single
    string instead of a list is refused."""
    with pytest.raises(ConfigurationError) as raised:
        CORE_SCHEMAS.only(users=["titel", "name.given"], groups=["colour"])
    assert (
        "unknown attributes to keep: User 'titel': no attribute 'titel'; User 'name.given': "
        "'name' has no sub-attribute 'given'; Group 'colour': no attribute 'colour'"
    ) == str(raised.value)
    with pytest.raises(ConfigurationError, match="a list of attribute paths"):
        CORE_SCHEMAS.only(users="userName")


def test_only_accepts_the_common_attributes() -> None:
    """id, externalId and meta are on every resource: naming them is no mistake."""
    table = CORE_SCHEMAS.only(users=["externalId", "id", "meta.created"])
    assert ["id", "externalId", "meta", "userName"] == [
        spec.name for _, spec in table.attributes("User")
    ]
