"""``mapping.check``: every problem of a mapping against a target's schema, with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scimsync.errors import ConfigurationError
from scimsync.mapping import Mapping, MappingCheck, MappingProblem, boolean, const, lower, split
from scimsync.schema import CORE_SCHEMAS, SchemaTable, core_schema_documents
from scimsync.sources import CsvSource

FIXTURES = Path(__file__).parent / "fixtures"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def messages(check: MappingCheck) -> list[tuple[str, str, bool]]:
    return [(p.entry, p.message, p.blocking) for p in check.problems]


def test_a_sound_mapping_fits_the_core_schemas() -> None:
    """A mapping of writable core attributes with userName has no problem at all."""
    mapping = Mapping(
        users={
            "userName": lower("email"),
            "name.givenName": "first",
            "active": boolean("status"),
            "roles": split("roles", ";"),
            f"{ENTERPRISE}:department": "dept",
        },
        groups={"displayName": "name"},
    )
    check = mapping.check()
    assert (True, ()) == (check.ok, check.problems)
    assert "the mapping fits the target" == str(check)


def test_an_attribute_the_target_lacks_is_blocking_not_dropped() -> None:
    """A mapped attribute the target does not have would be lost: blocking, with its line."""
    check = Mapping(users={"userName": "u", "favouriteColour": "c"}).check()
    assert [
        (
            "users['favouriteColour']",
            "the target's User has no attribute 'favouriteColour': values mapped to it would be"
            " lost",
            True,
        )
    ] == messages(check)
    assert check.ok is False


def test_sub_attributes_and_extensions_the_target_lacks() -> None:
    """A missing sub-attribute, or a schema the target does not serve, is blocking."""
    check = Mapping(
        users={
            "userName": "u",
            "name.nickname": "n",
            "urn:example:params:scim:schemas:extension:badge:2.0:User:number": "b",
        }
    ).check()
    assert [
        ("users['name.nickname']", True),
        ("users['urn:example:params:scim:schemas:extension:badge:2.0:User:number']", True),
    ] == [(entry, blocking) for entry, _, blocking in messages(check)]
    assert "has no schema" in check.problems[1].message


def test_read_only_attributes_are_blocking() -> None:
    """``groups``, ``meta.created`` and ``id`` are the target's to set."""
    check = Mapping(users={"userName": "u", "groups": "g", "meta.created": "c", "id": "i"}).check()
    assert [
        ("users['groups']", True, True),
        ("users['meta.created']", True, True),
        ("users['id']", True, True),
    ] == [(e, "readOnly" in m, b) for e, m, b in messages(check)]


def test_immutable_attributes_belong_under_create_only() -> None:
    """An immutable attribute managed for updates is blocking; under create_only it is fine."""
    schema = _user_schema_with(
        {"name": "employeeCode", "type": "string", "mutability": "immutable"}
    )
    managed = Mapping(users={"userName": "u", "employeeCode": "c"}).check(schema)
    assert [("users['employeeCode']", True)] == [(e, b) for e, _, b in messages(managed)]
    assert "create_only" in managed.problems[0].message
    created = Mapping(users={"userName": "u"}, create_only={"employeeCode": "c"}).check(schema)
    assert created.ok is True


def test_a_managed_password_is_a_note_to_use_create_only() -> None:
    """A writeOnly attribute cannot be compared: a non-blocking note points to create_only."""
    check = Mapping(users={"userName": "u", "password": "p"}).check()
    assert [("users['password']", False)] == [(e, b) for e, _, b in messages(check)]
    assert check.ok is True
    assert () == Mapping(users={"userName": "u"}, create_only={"password": "p"}).check().problems


def test_required_attributes_must_be_mapped() -> None:
    """A mapping without userName (required) is blocking; groups need displayName."""
    check = Mapping(users={"title": "t"}, groups={"externalId": "x"}).check()
    assert [
        ("users", "'userName' is required by the target and nothing maps it", True),
        ("groups", "'displayName' is required by the target and nothing maps it", True),
    ] == messages(check)


def test_member_of_groups_get_their_display_name_from_the_key() -> None:
    """Groups made by member_of have a displayName without a rule: nothing is missing."""
    assert Mapping(users={"userName": "u"}, member_of="g").check().ok is True


def test_types_that_cannot_fit_are_blocking() -> None:
    """A list into a single value, a boolean into text, text into an object: blocking."""
    check = Mapping(
        users={
            "userName": "u",
            "title": split("t"),
            "nickName": boolean("n"),
            "name": const("Ann Lee"),
            "active": const("perhaps"),
            "locale": 5,
        }
    ).check()
    assert [
        ("users['title']", True),
        ("users['nickName']", True),
        ("users['name']", True),
        ("users['active']", True),
    ] == [(e, b) for e, _, b in messages(check)]


def test_text_into_a_boolean_is_a_note() -> None:
    """Copying text into ``active`` works only for 'true'/'false': a note suggests boolean()."""
    check = Mapping(users={"userName": "u", "active": lower("status")}).check()
    assert [("users['active']", False)] == [(e, b) for e, _, b in messages(check)]
    assert "boolean()" in check.problems[0].message
    assert Mapping(users={"userName": "u", "active": const("True")}).check().ok is True


def test_constants_outside_canonical_values_are_notes() -> None:
    """A constant the schema's canonical values do not list is worth a look, not a stop."""
    schema = _user_schema_with(
        {"name": "userKind", "type": "string", "canonicalValues": ["staff", "guest"]}
    )
    check = Mapping(users={"userName": "u", "userKind": "Contractor"}).check(schema)
    assert check.ok is True
    kind = Mapping(users={"userName": "u", "userKind": const("robot")}).check(schema)
    assert [("users['userKind']", False)] == [(e, b) for e, _, b in messages(kind)]


def test_a_target_without_groups_blocks_group_mappings() -> None:
    """Mapping groups for a target that serves no Group resource type is blocking."""
    users_only = SchemaTable.from_scim([d for d in core_schema_documents() if d["id"] == USER])
    check = Mapping(users={"userName": "u"}, member_of="g").check(users_only)
    assert [("groups", "the target serves no Group resource type", True)] == messages(check)


def test_an_extension_the_user_type_does_not_carry() -> None:
    """A schema the target knows but not as an extension of User is blocking."""
    documents = core_schema_documents()
    resource_types = [
        {"name": "User", "endpoint": "/Users", "schema": USER},
        {"name": "Group", "endpoint": "/Groups", "schema": GROUP},
    ]
    schema = SchemaTable.from_scim(documents, resource_types)
    check = Mapping(users={"userName": "u", f"{ENTERPRISE}:department": "d"}).check(schema)
    assert [(e, b) for e, _, b in messages(check)] == [(f"users['{ENTERPRISE}:department']", True)]
    assert "not an extension of User" in check.problems[0].message


def test_source_fields_read_and_unread() -> None:
    """Given the source, a field it lacks is blocking and unread columns are listed."""
    source = CsvSource(FIXTURES / "people.csv", key="employee_id")
    mapping = Mapping(users={"userName": lower("emial"), "title": "department"}, member_of="groups")
    assert [
        ("users['userName']", "reads source field 'emial', which the source lacks", True),
        (
            "source fields",
            "no rule reads 'email', 'first_name', 'last_name', 'note', 'status'",
            False,
        ),
    ] == messages(mapping.check(source=source))


def test_field_names_can_be_given_directly() -> None:
    """``fields=`` checks against a list of names; callables make the unread list a maybe."""
    mapping = Mapping(users={"userName": "mail", "title": lambda r: r["t"]})
    assert [("source fields", "no rule reads 't' (callables may read them)", False)] == messages(
        mapping.check(fields=["mail", "t"])
    )


def test_a_source_that_cannot_list_fields_is_a_configuration_error() -> None:
    """Asking to check against a source without ``fields()`` says what to do instead."""
    with pytest.raises(ConfigurationError, match="pass fields="):
        Mapping(users={"userName": "u"}).check(source=object())


def test_raise_for_problems_lists_every_blocking_problem() -> None:
    """The check raises one ConfigurationError naming every blocking line."""
    check = Mapping(users={"title": "t", "groups": "g"}).check()
    with pytest.raises(ConfigurationError) as caught:
        check.raise_for_problems()
    assert "users['groups']" in str(caught.value)
    assert "'userName' is required" in str(caught.value)
    Mapping(users={"userName": "u"}).check().raise_for_problems()  # fine: nothing raised


def test_problems_read_as_lines() -> None:
    """A problem prints as severity, line and message."""
    problem = MappingProblem(entry="users['x']", message="no such attribute")
    assert "error: users['x']: no such attribute" == str(problem)


def test_checked_against_the_core_table_by_default() -> None:
    """Without a table, the RFC 7643 core schemas are the reference."""
    mapping = Mapping(users={"userName": "u"})
    assert mapping.check() == mapping.check(CORE_SCHEMAS)


def _user_schema_with(attribute: dict[str, Any]) -> SchemaTable:
    documents = core_schema_documents()
    for document in documents:
        if document["id"] == USER:
            document["attributes"] = [*document["attributes"], attribute]
    return SchemaTable.from_scim(documents)


def test_dotted_fields_are_satisfied_by_their_top_level_field() -> None:
    """``name.givenName`` reads from a nested ``name`` field: a source with ``name`` has it."""
    mapping = Mapping(users={"userName": "userName", "name.givenName": "name.givenName"})
    assert () == mapping.check(fields=["userName", "name"]).problems
    assert [
        (
            "users['name.givenName']",
            "reads source field 'name.givenName', which the source lacks",
            True,
        )
    ] == messages(mapping.check(fields=["userName"]))


def test_filtered_targets_are_checked_element_by_element() -> None:
    """A filter on a single-valued attribute, or on a sub-attribute the target lacks, blocks;
    a condition value outside the canonical values is a note."""
    check = Mapping(
        users={
            "userName": "u",
            'name[givenName eq "x"].familyName': "f",
            'emails[kind eq "work"].value': "w",
            'emails[type eq "office"].value': "o",
            'emails[type eq "work"].value': "e",
        }
    ).check()
    assert [
        ("users['name[givenName eq \"x\"].familyName']", True),
        ("users['emails[kind eq \"work\"].value']", True),
        ("users['emails[type eq \"office\"].value']", False),
    ] == [(e, b) for e, _, b in messages(check)]


def test_required_sub_attributes_per_filtered_element() -> None:
    """When the target requires ``emails.value``, an element mapped without it blocks."""
    documents = core_schema_documents()
    for document in documents:
        if document["id"] == USER:
            for attribute in document["attributes"]:
                if attribute["name"] == "emails":
                    for sub in attribute["subAttributes"]:
                        if sub["name"] == "value":
                            sub["required"] = True
    schema = SchemaTable.from_scim(documents)
    check = Mapping(
        users={
            "userName": "u",
            'emails[type eq "work"].display': "d",
            'emails[type eq "home"].value': "h",
        }
    ).check(schema)
    assert [
        (
            "users['emails[type eq \"work\"].display']",
            "emails.value is required by the target and nothing maps it",
            True,
        )
    ] == messages(check)


def test_an_attribute_a_declared_target_does_not_keep_is_blocking() -> None:
    """Against a table declared with SchemaTable.only, every mapped attribute, sub-attribute
    or group the target does not keep is a blocking problem, with its line."""
    acme = CORE_SCHEMAS.only(users=["userName", "title", "emails.value"])
    mapping = Mapping(
        users={
            "userName": "email",
            "title": "title",
            "nickName": "nick",
            "name.givenName": "first",
            "emails.type": const("work"),
        },
        member_of="teams",
    )
    assert [
        ("users['nickName']", "the target's User has no attribute 'nickName'", True),
        ("users['name.givenName']", "the target's User has no attribute 'name'", True),
        ("users['emails.type']", "the target's 'emails' has no sub-attribute 'type'", True),
        ("groups", "the target serves no Group resource type", True),
    ] == [
        (entry, message.split(":")[0], blocking)
        for entry, message, blocking in messages(mapping.check(acme))
    ]
    assert Mapping(users={"userName": "email", "title": "title"}).check(acme).ok
