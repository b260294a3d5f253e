"""PATCH: paths, apply_patch on models and SCIM objects, errors, atomicity, safety."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _samples import load_sample
from scimsync import (
    Email,
    EnterpriseUser,
    Group,
    Manager,
    Member,
    Name,
    PatchOp,
    PatchOperation,
    User,
    from_scim,
)
from scimsync.errors import (
    InvalidPathError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    PatchError,
)
from scimsync.filter import AttrPath, attr
from scimsync.patch import Path, apply_patch, parse_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _user() -> dict[str, Any]:
    return {
        "schemas": [CORE_USER],
        "id": "2819c223",
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "title": "Guide",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"},
    }


def _group() -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223", "display": "Babs Jensen"},
            {"value": "902c246b", "display": "Mandy Pepperidge"},
        ],
    }


# -- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("members", Path(AttrPath("members"))),
        ("name.familyName", Path(AttrPath("name", sub="familyName"))),
        ('addresses[type eq "work"]', Path(AttrPath("addresses"), attr("type").eq("work"))),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
            Path(AttrPath("members"), attr("value").eq("2819c223-7f76-453a-919d-413861904646")),
        ),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName',
            Path(
                AttrPath("members"),
                attr("value").eq("2819c223-7f76-453a-919d-413861904646"),
                "displayName",
            ),
        ),
        (
            f"{ENTERPRISE}:manager.value",
            Path(AttrPath("manager", sub="value", urn=ENTERPRISE)),
        ),
        (
            'emails[type eq "work" and value co "@example.com"].value',
            Path(
                AttrPath("emails"),
                attr("type").eq("work") & attr("value").co("@example.com"),
                "value",
            ),
        ),
    ],
)
def test_parse_path(text: str, expected: Path) -> None:
    """The RFC 7644 §3.5.2 path forms parse, and print back as written."""
    assert expected == parse_path(text)
    assert text == str(parse_path(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "members[",
        'members[value eq "x"',
        'members[value eq "x"]value',
        'members[value eq "x"].a.b',
        'name.givenName[value eq "x"]',
        'emails[type eq "work"] and title pr',
        'emails[type[value eq "x"]]',
        "__class__",
        "name.__dict__",
        "a b",
    ],
)
def test_parse_path_refuses(text: str) -> None:
    """Anything but an attribute path or value path is InvalidPathError (scimType invalidPath)."""
    with pytest.raises(InvalidPathError) as caught:
        parse_path(text)
    assert "invalidPath" == caught.value.scim_type


@given(
    st.builds(
        Path,
        st.builds(AttrPath, name=st.sampled_from(["emails", "members", "x-y"])),
        st.sampled_from([attr("type").eq('a"]b'), attr("value").co("\\")]),
        st.none() | st.sampled_from(["value", "display"]),
    )
)
def test_path_text_round_trips(path: Path) -> None:
    """``parse_path(str(p)) == p``."""
    assert path == parse_path(str(path))


# -- RFC 7644 §3.5.2 examples ------------------------------------------------------------------

MEMBER_A = {
    "display": "Babs Jensen",
    "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
    "value": "2819c223-7f76-453a-919d-413861904646",
}
MEMBER_B = {
    "display": "James Smith",
    "$ref": "https://example.com/v2/Users/08e1d05d-121c-4561-8b96-473d93df9210",
    "value": "08e1d05d-121c-4561-8b96-473d93df9210",
}
RFC_GROUP = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
    "displayName": "Tour Guides",
    "members": [MEMBER_A],
}
WORK_ADDRESS = {
    "type": "work",
    "streetAddress": "911 Universal City Plaza",
    "locality": "Hollywood",
    "region": "CA",
    "postalCode": "91608",
    "country": "US",
    "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
    "primary": True,
}
RFC_USER = {
    "schemas": [CORE_USER],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "userName": "bjensen",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza"}],
}

RFC_EXAMPLES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = [
    (
        "3.5.2.1 add members",
        RFC_GROUP,
        [{"op": "add", "path": "members", "value": [MEMBER_B]}],
        {**RFC_GROUP, "members": [MEMBER_A, MEMBER_B]},
    ),
    (
        "3.5.2.1 add without a path",
        RFC_USER,
        [
            {
                "op": "add",
                "value": {
                    "emails": [{"value": "babs@jensen.org", "type": "home"}],
                    "nickname": "Babs",
                },
            }
        ],
        {
            **RFC_USER,
            "emails": [*RFC_USER["emails"], {"value": "babs@jensen.org", "type": "home"}],
            "nickName": "Babs",
        },
    ),
    (
        "3.5.2.2 remove one member",
        {**RFC_GROUP, "members": [MEMBER_A, MEMBER_B]},
        [
            {
                "op": "remove",
                "path": 'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
            }
        ],
        {**RFC_GROUP, "members": [MEMBER_B]},
    ),
    (
        "3.5.2.2 remove all members",
        RFC_GROUP,
        [{"op": "remove", "path": "members"}],
        {key: value for key, value in RFC_GROUP.items() if key != "members"},
    ),
    (
        "3.5.2.2 remove a multi-valued attribute's values by filter",
        {
            **RFC_USER,
            "emails": [
                {"value": "bjensen@example.com", "type": "work"},
                {"value": "babs@jensen.org", "type": "home"},
            ],
        },
        [{"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'}],
        {**RFC_USER, "emails": [{"value": "babs@jensen.org", "type": "home"}]},
    ),
    (
        "3.5.2.2 replace all members (remove then add)",
        RFC_GROUP,
        [
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [MEMBER_B]},
        ],
        {**RFC_GROUP, "members": [MEMBER_B]},
    ),
    (
        "3.5.2.3 replace members",
        RFC_GROUP,
        [{"op": "replace", "path": "members", "value": [MEMBER_B]}],
        {**RFC_GROUP, "members": [MEMBER_B]},
    ),
    (
        "3.5.2.3 replace a filtered address",
        RFC_USER,
        [{"op": "replace", "path": 'addresses[type eq "work"]', "value": WORK_ADDRESS}],
        {**RFC_USER, "addresses": [WORK_ADDRESS]},
    ),
    (
        "3.5.2.3 replace a sub-attribute of a filtered address",
        RFC_USER,
        [
            {
                "op": "replace",
                "path": 'addresses[type eq "work"].streetAddress',
                "value": "1010 Broadway Ave",
            }
        ],
        {**RFC_USER, "addresses": [{"type": "work", "streetAddress": "1010 Broadway Ave"}]},
    ),
    (
        "3.5.2.3 replace without a path",
        RFC_USER,
        [
            {
                "op": "replace",
                "value": {
                    "emails": [
                        {"value": "bjensen@example.com", "type": "work", "primary": True},
                        {"value": "babs@jensen.org", "type": "home"},
                    ],
                    "nickname": "Babs",
                },
            }
        ],
        {
            **RFC_USER,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": True},
                {"value": "babs@jensen.org", "type": "home"},
            ],
            "nickName": "Babs",
        },
    ),
]


@pytest.mark.parametrize(
    ("resource", "operations", "expected"),
    [example[1:] for example in RFC_EXAMPLES],
    ids=[example[0] for example in RFC_EXAMPLES],
)
def test_rfc_examples(
    resource: dict[str, Any], operations: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    """The PATCH examples of RFC 7644 §3.5.2 give the results the RFC describes."""
    before = copy.deepcopy(resource)
    assert expected == apply_patch(resource, operations)
    assert before == resource  # the input is never modified


def test_entra_patch_sample() -> None:
    """A PATCH as Microsoft Entra ID sends it: capitalised ops, "False", an add by filter."""
    user = from_scim(load_sample("rfc7643-8.3-user-enterprise"), User)
    patched = apply_patch(user, load_sample("entra-patch-user"))
    assert patched.active is False
    assert patched.name is not None
    assert "updatedFamilyName" == patched.name.family_name
    assert patched.emails is not None
    work = [e.value for e in patched.emails if e.type == "work"]
    assert ["updatedEmail@microsoft.com"] == work
    assert patched.enterprise is not None
    assert patched.enterprise.manager is None
    assert patched.enterprise.employee_number == user.enterprise.employee_number  # type: ignore[union-attr]


# -- semantics ----------------------------------------------------------------------------------


def test_models_come_back_as_models() -> None:
    """A model in, a new model of the same type out; the input model is unchanged."""
    user = User(user_name="bjensen", title="Guide")
    patched = apply_patch(user, [PatchOperation(op="replace", path="title", value="Lead")])
    assert User(user_name="bjensen", title="Lead") == patched
    assert "Guide" == user.title


def test_operations_in_every_accepted_shape() -> None:
    """PatchOperation models, raw dicts with keys in any case, a PatchOp, a PatchOp body."""
    expected = {**_user(), "title": "Lead"}
    as_model = [PatchOperation(op="replace", path="title", value="Lead")]
    as_dict = [{"OP": "Replace", "Path": "title", "VALUE": "Lead"}]
    as_message = PatchOp(operations=as_model)
    as_body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": as_dict}
    for operations in (as_model, as_dict, as_message, as_body):
        assert expected == apply_patch(_user(), operations)


def test_add_merges_values_without_duplicating() -> None:
    """Adding an existing value changes nothing; same identity updates it; new ones append."""
    patched = apply_patch(
        _user(),
        [
            {
                "op": "add",
                "path": "emails",
                "value": [
                    {"value": "BJENSEN@example.com", "type": "work", "display": "Work"},
                    {"value": "babs@jensen.org", "type": "home"},
                    {"value": "b@other.org", "type": "other"},
                ],
            }
        ],
    )
    expected = [
        {"value": "BJENSEN@example.com", "type": "work", "primary": True, "display": "Work"},
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "b@other.org", "type": "other"},
    ]
    assert expected == patched["emails"]


def test_add_member_twice_keeps_one() -> None:
    """The wild's "add of an existing member duplicates it" does not happen here."""
    patched = apply_patch(
        _group(), [{"op": "add", "path": "members", "value": [{"value": "2819c223"}]}]
    )
    assert ["2819c223", "902c246b"] == [m["value"] for m in patched["members"]]


def test_setting_primary_clears_the_others() -> None:
    """RFC 7644 §3.5.2: a value made primary makes the other values non-primary."""
    patched = apply_patch(
        _user(),
        [{"op": "replace", "path": 'emails[type eq "home"].primary', "value": True}],
    )
    assert [False, True] == [e.get("primary") for e in patched["emails"]]


def test_add_by_filter_creates_the_described_value() -> None:
    """``add`` to ``emails[type eq "work"].value`` with no work email creates one."""
    user = {"schemas": [CORE_USER], "userName": "x"}
    patched = apply_patch(
        user, [{"op": "add", "path": 'emails[type eq "work"].value', "value": "x@example.com"}]
    )
    assert [{"type": "work", "value": "x@example.com"}] == patched["emails"]


def test_replace_by_filter_with_no_match_is_no_target() -> None:
    """``replace`` through a filter that matches nothing fails with noTarget."""
    with pytest.raises(NoTargetError) as caught:
        apply_patch(
            _user(), [{"op": "replace", "path": 'emails[type eq "other"].value', "value": "x"}]
        )
    assert "noTarget" == caught.value.scim_type


def test_remove_without_path_is_no_target() -> None:
    """RFC 7644 §3.5.2.2: ``remove`` needs a path."""
    with pytest.raises(NoTargetError):
        apply_patch(_user(), [{"op": "remove"}])


def test_remove_of_an_absent_value_is_a_no_op() -> None:
    """Removing what is not there succeeds and changes nothing (retries are safe)."""
    no_member = [{"op": "remove", "path": 'members[value eq "nobody"]'}]
    assert _group() == apply_patch(_group(), no_member)
    no_nick_name = [{"op": "remove", "path": "nickName"}]
    assert _user() == apply_patch(_user(), no_nick_name)


def test_remove_members_by_value_as_entra_sends_it() -> None:
    """``remove`` of ``members`` with a value removes just those members."""
    patched = apply_patch(
        _group(), [{"op": "Remove", "path": "members", "value": [{"value": "2819c223"}]}]
    )
    assert [{"value": "902c246b", "display": "Mandy Pepperidge"}] == patched["members"]


def test_remove_a_sub_attribute() -> None:
    """``remove`` of a sub-attribute, of a complex or a filtered multi-valued attribute."""
    patched = apply_patch(
        _user(),
        [
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": 'emails[type eq "work"].primary'},
        ],
    )
    assert {"familyName": "Jensen"} == patched["name"]
    assert [{"value": "bjensen@example.com", "type": "work"}] == patched["emails"][:1]


def test_complex_values_merge() -> None:
    """A complex attribute's given sub-attributes replace, the others stay (§3.5.2.3)."""
    patched = apply_patch(
        _user(), [{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]
    )
    assert {"familyName": "Jensen", "givenName": "Babs"} == patched["name"]


def test_replace_with_null_unassigns() -> None:
    """RFC 7643 §2.5: null is unassigned, so replacing with null removes the attribute."""
    patched = apply_patch(_user(), [{"op": "replace", "path": "title", "value": None}])
    assert "title" not in patched


def test_enterprise_paths_as_entra_sends_them() -> None:
    """URN-qualified attributes, sub-attributes and whole extensions."""
    user = _user()
    patched = apply_patch(
        user,
        [
            {"op": "Add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
            {"op": "Replace", "path": f"{ENTERPRISE}:manager.value", "value": "26118915"},
            {"op": "Replace", "value": {f"{ENTERPRISE}:department": "Tours"}},
        ],
    )
    expected = {
        "employeeNumber": "701984",
        "manager": {"value": "26118915"},
        "department": "Tours",
    }
    assert expected == patched[ENTERPRISE]
    assert [CORE_USER, ENTERPRISE] == patched["schemas"]
    removed = apply_patch(patched, [{"op": "remove", "path": ENTERPRISE}])
    assert (False, [CORE_USER]) == (ENTERPRISE in removed, removed["schemas"])


def test_enterprise_on_models() -> None:
    """The same on a model: the extension appears on ``User.enterprise``."""
    patched = apply_patch(
        User(user_name="x"),
        [
            {
                "op": "add",
                "path": ENTERPRISE,
                "value": {"department": "Tours", "manager": {"value": "m"}},
            }
        ],
    )
    assert EnterpriseUser(department="Tours", manager=Manager(value="m")) == patched.enterprise


def test_schemas_inside_an_extension_value_are_ignored() -> None:
    """Clients that repeat ``schemas`` inside the extension object are understood."""
    value = {"schemas": [ENTERPRISE], "department": "Tours"}
    with_path = apply_patch(_user(), [{"op": "add", "path": ENTERPRISE, "value": value}])
    without_path = apply_patch(_user(), [{"op": "add", "value": {ENTERPRISE: value}}])
    assert {"department": "Tours"} == with_path[ENTERPRISE] == without_path[ENTERPRISE]


def test_core_urn_paths_name_core_attributes() -> None:
    """A core-URN-qualified path names the core attribute."""
    patched = apply_patch(
        _user(), [{"op": "replace", "path": f"{CORE_USER}:name.givenName", "value": "B"}]
    )
    assert "B" == patched["name"]["givenName"]


def test_values_are_checked_and_normalised() -> None:
    """Booleans accept "False"; numbers become strings where a string belongs."""
    patched = apply_patch(
        _user(),
        [
            {"op": "replace", "path": "active", "value": "False"},
            {"op": "replace", "path": f"{ENTERPRISE}:employeeNumber", "value": 1234},
        ],
    )
    assert (False, "1234") == (patched["active"], patched[ENTERPRISE]["employeeNumber"])


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ({"op": "replace", "path": "id", "value": "x"}, MutabilityError),
        (
            {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"},
            MutabilityError,
        ),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, MutabilityError),
        (
            {"op": "replace", "path": f"{ENTERPRISE}:manager.displayName", "value": "x"},
            MutabilityError,
        ),
        ({"op": "remove", "path": "userName"}, InvalidValueError),
        ({"op": "replace", "path": "active", "value": "maybe"}, InvalidValueError),
        ({"op": "replace", "path": "userName", "value": ["a"]}, InvalidValueError),
        ({"op": "replace", "path": "name", "value": "x"}, InvalidValueError),
        ({"op": "replace", "path": "name", "value": {"nickname": "x"}}, InvalidValueError),
        ({"op": "add", "path": "title"}, InvalidValueError),
        ({"op": "add", "path": "title", "value": None}, InvalidValueError),
        ({"op": "replace", "value": "x"}, InvalidValueError),
        ({"op": "move", "path": "title", "value": "x"}, InvalidValueError),
        ({"op": "replace", "path": "nickname2", "value": "x"}, InvalidPathError),
        ({"op": "replace", "path": "name.middle", "value": "x"}, InvalidPathError),
        ({"op": "replace", "path": 'title[value eq "x"]', "value": "x"}, InvalidPathError),
        ({"op": "replace", "path": "urn:example:Other:attr", "value": "x"}, InvalidPathError),
        ({"op": "replace", "path": 42, "value": "x"}, InvalidPathError),
        ({"op": "replace", "value": {"title[x eq 1]": "x"}}, InvalidPathError),
    ],
)
def test_errors_carry_their_scim_type(operation: dict[str, Any], error: type[PatchError]) -> None:
    """Each failure is the PatchError subclass whose scimType a server would answer."""
    with pytest.raises(error) as caught:
        apply_patch(_user(), [operation])
    assert error.scim_type == caught.value.scim_type
    assert "Operations[0]" in caught.value.detail


def test_immutable_member_values() -> None:
    """members.value is immutable: set once, never changed (but members come and go)."""
    group = _group()
    with pytest.raises(MutabilityError):
        apply_patch(
            group, [{"op": "replace", "path": 'members[value eq "2819c223"].value', "value": "x"}]
        )
    renamed = apply_patch(
        group, [{"op": "replace", "path": 'members[value eq "2819c223"].display', "value": "B"}]
    )
    assert "B" == renamed["members"][0]["display"]


def test_patches_are_atomic() -> None:
    """When one operation fails, none applies: the model and the dict are as they were."""
    operations = [
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "remove", "path": "emails"},
        {"op": "replace", "path": "id", "value": "other"},
    ]
    data = _user()
    before = copy.deepcopy(data)
    with pytest.raises(MutabilityError):
        apply_patch(data, operations)
    assert before == data
    user = from_scim(_user(), User)
    with pytest.raises(PatchError):
        apply_patch(user, operations)
    assert "Guide" == user.title


@pytest.mark.parametrize(
    "path",
    [
        "__class__",
        "__dict__",
        "extra",
        "extensions",
        "schema_urn",
        "user_name",
        "name.__class__",
        "emails.__len__",
        "resource_type_name",
    ],
)
def test_paths_never_reach_python_attributes(path: str) -> None:
    """Whatever a path holds, it names a SCIM attribute or is refused."""
    user = User(user_name="bjensen")
    with pytest.raises(InvalidPathError):
        apply_patch(user, [{"op": "replace", "path": path, "value": "x"}])
    with pytest.raises(InvalidPathError):
        apply_patch(user, [{"op": "replace", "value": {path: "x"}}])


def test_unknown_resource_types_take_any_attribute() -> None:
    """Without a resource type the schema cannot check attributes: they are plain keys."""
    patched = apply_patch({"a": 1}, [{"op": "add", "path": "extra", "value": {"k": "v"}}])
    assert {"a": 1, "extra": {"k": "v"}} == patched


def test_groups_as_models() -> None:
    """Member changes on a Group model."""
    group = Group(display_name="G", members=[Member(value="a"), Member(value="b")])
    patched = apply_patch(
        group,
        [
            {"op": "remove", "path": 'members[value eq "a"]'},
            {"op": "add", "path": "members", "value": [Member(value="c")]},
        ],
    )
    assert (Member(value="b"), Member(value="c")) == patched.members


def test_model_values_are_accepted() -> None:
    """Operation values may hold models; they are converted to SCIM JSON."""
    patched = apply_patch(
        User(user_name="x"),
        [
            PatchOperation(op="add", path="emails", value=[Email(value="a@b.c", type="work")]),
            PatchOperation(op="replace", path="name", value=Name(given_name="B")),
        ],
    )
    assert (Email(value="a@b.c", type="work"),) == patched.emails
    assert Name(given_name="B") == patched.name


def test_a_patched_model_must_still_be_valid() -> None:
    """A result the model cannot hold is an InvalidValueError, not a codec error."""
    # With a resource type the schema table does not know, values are not checked
    # on the way in, so the model's own validation is what catches them.
    with pytest.raises(InvalidValueError) as caught:
        apply_patch(
            User(user_name="x"),
            [{"op": "replace", "path": "active", "value": "maybe"}],
            resource_type="Unknown",
        )
    assert "active" in caught.value.detail
