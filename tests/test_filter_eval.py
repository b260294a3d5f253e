"""Evaluating filters on models and on SCIM JSON objects: schema-aware and total."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import (
    Email,
    EnterpriseUser,
    Group,
    Manager,
    Member,
    Meta,
    Name,
    PhoneNumber,
    User,
    to_scim,
)
from scimsync.filter import AttrPath, Comparison, Filter, Present, ValuePath, attr, parse_filter
from scimsync.schema import CORE_SCHEMAS, SchemaTable

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"

BARBARA = User(
    id="2819c223-7f76-453a-919d-413861904646",
    external_id="Emp-42",
    user_name="bjensen@example.com",
    name=Name(family_name="O'Malley", given_name="Barbara"),
    title="Tour Guide",
    user_type="Employee",
    active=True,
    emails=[
        Email(value="bjensen@example.com", type="work", primary=True),
        Email(value="babs@jensen.org", type="home"),
    ],
    phone_numbers=[PhoneNumber(value="555-555-8377", type="work")],
    enterprise=EnterpriseUser(
        employee_number="701984", department="Tour Operations", manager=Manager(value="26118915")
    ),
    meta=Meta(
        resource_type="User",
        created=datetime(2010, 1, 23, 4, 56, 22, tzinfo=timezone.utc),
        last_modified=datetime(2011, 5, 13, 4, 42, 34, tzinfo=timezone.utc),
    ),
    extra={"nickNames": ["Babs", "B"]},
)

CASES = [
    # caseExact: userName is not, id and externalId are.
    ('userName eq "BJENSEN@example.com"', True),
    ('id eq "2819C223-7F76-453A-919D-413861904646"', False),
    ('id eq "2819c223-7f76-453a-919d-413861904646"', True),
    ('externalId eq "emp-42"', False),
    ('externalId eq "Emp-42"', True),
    ('USERNAME sw "BJ"', True),
    ('userName ew "@EXAMPLE.COM"', True),
    ('userName co "jensen@"', True),
    ('userName gt "a"', True),
    ('userName lt "a"', False),
    ('name.familyName co "o\'malley"', True),
    # booleans
    ("active eq true", True),
    ("active eq false", False),
    ("active ne false", True),
    ('active eq "true"', True),
    ("active gt false", False),
    # dateTimes compare as instants, whatever the offset they are written with
    ('meta.lastModified gt "2011-05-13T04:42:33Z"', True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified eq "2011-05-13T06:42:34+02:00"', True),
    ('meta.lastModified lt "2011-05-13T04:42:34.5Z"', True),
    ('meta.lastModified le "2011-05-13"', False),
    ('meta.created sw "2010-01-23"', True),
    # multi-valued: any value matches; comparing the attribute compares its "value"
    ('emails.value ew "jensen.org"', True),
    ('emails.type eq "other"', False),
    ('emails co "jensen.org"', True),
    ('emails.value ne "babs@jensen.org"', False),
    ('emails[type eq "work" and value co "@example.com"]', True),
    ('emails[type eq "home" and primary eq true]', False),
    ("emails[not (primary pr)]", True),
    ('phoneNumbers[type eq "work"] and emails[type eq "home"]', True),
    ("emails pr", True),
    ("ims pr", False),
    ('nickNames eq "babs"', True),
    # URN-qualified paths, core and extension
    (f'{CORE_USER}:userName sw "bjensen"', True),
    (f'{ENTERPRISE}:employeeNumber eq "701984"', True),
    (f'{ENTERPRISE}:manager.value eq "26118915"', True),
    (f"{ENTERPRISE}:costCenter pr", False),
    (f"{ENTERPRISE} pr", True),
    (f'schemas eq "{ENTERPRISE}"', True),
    # presence and null
    ("title pr", True),
    ("nickName pr", False),
    ("nickName eq null", True),
    ("title eq null", False),
    ("title ne null", True),
    ('nickName ne "x"', True),
    ('nickName eq "x"', False),
    ("name pr", True),
    ("title gt null", False),
    # logic
    ('title pr and userType eq "Employee"', True),
    ('title pr and userType eq "Intern"', False),
    ('title pr or userType eq "Intern"', True),
    ('not (userType eq "Intern")', True),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', True),
    # values of the wrong type match nothing
    ('active eq "maybe"', False),
    ('meta.created gt "yesterday"', False),
    ("userName eq 12", False),
    ("unknownAttribute pr", False),
    ('unknownAttribute ne "x"', True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_matches_on_models(text: str, expected: bool) -> None:
    """Each filter evaluates as the RFC and the schema table's characteristics say."""
    assert expected == parse_filter(text).matches(BARBARA)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_matches_on_scim_dicts(text: str, expected: bool) -> None:
    """The same filter gives the same answer on the SCIM JSON of the model."""
    assert expected == parse_filter(text).matches(to_scim(BARBARA))


def _shout_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key.upper(): _shout_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shout_keys(item) for item in value]
    return value


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_dict_keys_are_case_insensitive(text: str, expected: bool) -> None:
    """Attribute names in a SCIM object may come in any case (RFC 7643 §2.1)."""
    data = _shout_keys(to_scim(BARBARA))
    assert expected == parse_filter(text).matches(data, resource_type="User")


def test_dicts_as_real_servers_send_them() -> None:
    """Booleans as strings, numbers for strings, single values where lists belong."""
    data = {
        "schemas": [CORE_USER],
        "userName": "x",
        "active": "False",
        "emails": {"value": "a@b.c", "type": "work"},
        ENTERPRISE: {"employeeNumber": 1234},
    }
    assert parse_filter("active eq false").matches(data)
    assert parse_filter('emails[type eq "work"]').matches(data)
    assert parse_filter(f'{ENTERPRISE}:employeeNumber eq "1234"').matches(data)
    assert parse_filter(f"{ENTERPRISE}:employeeNumber eq 1234").matches(data)


def test_resource_type_comes_from_meta_when_schemas_are_missing() -> None:
    """Without ``schemas``, ``meta.resourceType`` says which schema applies."""
    data = {"id": "ABC", "meta": {"resourceType": "User"}}
    assert not parse_filter('id eq "abc"').matches(data)
    # Without any hint, attributes have no characteristics: strings fold case.
    assert parse_filter('id eq "abc"').matches({"id": "ABC"})


def test_groups_and_members() -> None:
    """members.value is caseExact; comparing ``members`` compares the member ids."""
    group = Group(display_name="Admins", members=[Member(value="U1"), Member(value="U2")])
    assert parse_filter('members[value eq "U2"]').matches(group)
    assert not parse_filter('members[value eq "u2"]').matches(group)
    assert parse_filter('members eq "U1"').matches(group)
    assert parse_filter('displayName eq "admins"').matches(group)
    assert not parse_filter('userName eq "admins"').matches(group)
    assert parse_filter('members[value eq "U2"]').matches(to_scim(group))


def test_numbers_follow_the_schema_type() -> None:
    """Integer and decimal attributes of a target's schema compare as numbers."""
    table = SchemaTable.from_scim(
        [
            {
                "id": "urn:example:Device",
                "name": "Device",
                "attributes": [
                    {"name": "ports", "type": "integer"},
                    {"name": "weight", "type": "decimal"},
                    {"name": "serial", "type": "string", "caseExact": True},
                ],
            }
        ],
        [{"name": "Device", "schema": "urn:example:Device"}],
    )
    device = {"schemas": ["urn:example:Device"], "ports": 8, "weight": "2.5", "serial": "AbC"}
    assert parse_filter("ports gt 7").matches(device, schema=table)
    assert not parse_filter("ports gt 8").matches(device, schema=table)
    assert parse_filter('ports eq "8"').matches(device, schema=table)
    assert parse_filter("weight lt 3").matches(device, schema=table)
    assert parse_filter("weight ge 2.5").matches(device, schema=table)
    assert not parse_filter('ports co "8"').matches(device, schema=table)
    assert not parse_filter('serial eq "abc"').matches(device, schema=table)
    assert parse_filter('serial eq "abc"').matches(device)  # no schema: case folds


def test_compile_gives_a_reusable_predicate() -> None:
    """``compile`` returns the predicate ``matches`` uses, for testing many resources."""
    predicate = parse_filter('userName sw "user1"').compile(resource_type="User")
    users = [User(user_name=f"User{i}") for i in range(25)]
    assert ["User1", *(f"User{i}" for i in range(10, 20))] == [
        u.user_name for u in users if predicate(u)
    ]


def test_compiled_predicates_are_cached() -> None:
    """Equal filters share one compiled predicate per resource type and schema table."""
    first = parse_filter('userName eq "x"').compile(resource_type="User")
    second = attr("userName").eq("x").compile(resource_type="User", schema=CORE_SCHEMAS)
    assert first is second


# -- totality --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["value", "type", "x", "Value"]), children, max_size=3)
    ),
    max_leaves=8,
)
resources = st.dictionaries(
    st.sampled_from(["userName", "emails", "meta", "active", "schemas", ENTERPRISE, "name"]),
    json_values,
)
leaf_paths = st.sampled_from(
    [
        AttrPath("userName"),
        AttrPath("emails"),
        AttrPath("emails", sub="value"),
        AttrPath("meta", sub="lastModified"),
        AttrPath("active"),
        AttrPath("name", sub="givenName"),
        AttrPath("manager", sub="value", urn=ENTERPRISE),
        AttrPath("x"),
    ]
)
any_values = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
any_filters: st.SearchStrategy[Filter] = st.one_of(
    st.builds(
        Comparison,
        leaf_paths,
        st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]),
        any_values,
    ),
    st.builds(Present, leaf_paths),
    st.builds(
        ValuePath,
        st.sampled_from([AttrPath("emails"), AttrPath("meta")]),
        st.builds(Comparison, st.just(AttrPath("value")), st.just("gt"), any_values),
    ),
)


@settings(max_examples=300)
@given(any_filters, resources, st.sampled_from([None, "User", "Group"]))
def test_evaluation_never_raises(f: Filter, resource: dict[str, Any], rtype: str | None) -> None:
    """Any filter on any JSON object gives True or False: never an exception."""
    assert f.matches(resource, resource_type=rtype) in (True, False)


user_strategy = st.builds(
    User,
    user_name=st.none() | st.sampled_from(["bjensen", "BJensen", "alice", ""]),
    active=st.none() | st.booleans(),
    emails=st.none()
    | st.lists(
        st.builds(
            Email,
            value=st.none() | st.sampled_from(["a@x.org", "B@x.org"]),
            type=st.none() | st.sampled_from(["work", "home"]),
            primary=st.none() | st.booleans(),
        ),
        max_size=3,
    ),
    enterprise=st.none() | st.builds(EnterpriseUser, department=st.none() | st.just("Ops")),
)


@settings(max_examples=300)
@given(any_filters, user_strategy)
def test_models_and_their_json_agree(f: Filter, user: User) -> None:
    """A filter gives the same answer on a model and on ``to_scim`` of that model."""
    assert f.matches(user) == f.matches(to_scim(user))
