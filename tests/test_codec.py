"""The codec: SCIM JSON <-> models, as real providers write it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

from _samples import load_sample
from scimsync import (
    Email,
    EnterpriseUser,
    Group,
    Manager,
    Member,
    Name,
    PatchOp,
    User,
    from_json,
    from_scim,
    to_json,
    to_scim,
)
from scimsync.codec import converter, register_extension
from scimsync.errors import ResourceValidationError
from scimsync.models import (
    ENTERPRISE_USER_SCHEMA,
    BulkRequest,
    BulkResponse,
    Error,
    ListResponse,
    ResourceType,
    SearchRequest,
    ServiceProviderConfig,
)

BADGE_URN = "urn:example:params:scim:schemas:extension:badge:2.0:User"

GOLDEN = [
    ("rfc7643-8.1-user-minimal", User),
    ("rfc7643-8.2-user-full", User),
    ("rfc7643-8.3-user-enterprise", User),
    ("rfc7643-8.4-group", Group),
    ("rfc7643-8.5-service-provider-config", ServiceProviderConfig),
    ("rfc7643-8.6-resource-type-user", ResourceType),
    ("entra-create-user", User),
    ("okta-create-user", User),
]


@pytest.mark.parametrize(("sample", "cls"), GOLDEN)
def test_golden_samples_round_trip_exactly(sample: str, cls: type[Any]) -> None:
    """RFC 7643 §8 examples and provider payloads come back out exactly as they went in."""
    data = load_sample(sample)
    assert data == to_scim(from_scim(data, cls))


def test_full_user_is_read_into_typed_fields() -> None:
    """Every attribute of the RFC full user lands in its typed field."""
    user = from_scim(load_sample("rfc7643-8.3-user-enterprise"), User)
    assert user.user_name == "bjensen@example.com"
    assert user.name == Name(
        formatted="Ms. Barbara J Jensen, III",
        family_name="Jensen",
        given_name="Barbara",
        middle_name="Jane",
        honorific_prefix="Ms.",
        honorific_suffix="III",
    )
    assert user.emails is not None
    assert user.emails[0] == Email(value="bjensen@example.com", type="work", primary=True)
    assert user.addresses is not None
    assert user.addresses[0].postal_code == "91608"
    assert user.groups is not None
    assert user.groups[2].ref == (
        "https://example.com/v2/Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7"
    )
    assert user.meta is not None
    assert user.meta.created == datetime(2010, 1, 23, 4, 56, 22, tzinfo=timezone.utc)
    assert user.enterprise == EnterpriseUser(
        employee_number="701984",
        cost_center="4130",
        organization="Universal Studios",
        division="Theme Park",
        department="Tour Operations",
        manager=Manager(
            value="26118915-6090-4610-87e4-49d8ca9f808d",
            ref="../Users/26118915-6090-4610-87e4-49d8ca9f808d",
            display_name="John Smith",
        ),
    )
    assert user.extensions == {}
    assert user.extra == {}


def test_capitalised_names_string_booleans_and_unknowns_are_read() -> None:
    """Names in any case, "True"/"False" strings, unknown attributes and extensions."""
    user = from_scim(load_sample("capitalised-user"), User)
    assert user.id == "42"
    assert user.external_id == "E-42"
    assert user.user_name == "Alice.Smith@Example.COM"
    assert user.nick_name == "Al"
    assert user.active is True
    assert user.emails == (
        Email(value="Alice.Smith@Example.COM", type="work", primary=True),
        Email(value="alice@home.example", type="home", primary=False),
    )
    assert user.enterprise == EnterpriseUser(
        employee_number="42", manager=Manager(value="7", display_name="Bob")
    )
    assert user.extensions == {BADGE_URN: {"badgeNumber": "B-17", "floor": 3}}
    assert user.extra == {"x-vendor-flag": {"beta": True}}


def test_capitalised_payload_is_written_back_canonically_without_loss() -> None:
    """Output uses canonical names and keeps unknown attributes and extensions."""
    out = to_scim(from_scim(load_sample("capitalised-user"), User))
    assert out == {
        "schemas": [User.schema_urn, ENTERPRISE_USER_SCHEMA, BADGE_URN],
        "id": "42",
        "externalId": "E-42",
        "userName": "Alice.Smith@Example.COM",
        "name": {"familyName": "Smith", "givenName": "Alice"},
        "nickName": "Al",
        "active": True,
        "emails": [
            {"value": "Alice.Smith@Example.COM", "type": "work", "primary": True},
            {"value": "alice@home.example", "type": "home", "primary": False},
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
        ENTERPRISE_USER_SCHEMA: {
            "employeeNumber": "42",
            "manager": {"value": "7", "displayName": "Bob"},
        },
        BADGE_URN: {"badgeNumber": "B-17", "floor": 3},
        "x-vendor-flag": {"beta": True},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("True", True),
        ("False", False),
        (" FALSE ", False),
    ],
)
def test_booleans_accept_scim_strings(raw: object, expected: bool) -> None:
    """String booleans mean what they say ("false" is False, unlike cattrs' default)."""
    assert expected == from_scim({"userName": "u", "active": raw}, User).active


def test_null_means_unassigned() -> None:
    """RFC 7643 §2.5: a null attribute is read as not set."""
    assert User(user_name="u") == from_scim({"userName": "u", "title": None, "emails": None}, User)


def test_request_mode_leaves_out_read_only_attributes() -> None:
    """``request=True`` drops id, meta, groups and manager.displayName, keeps the rest."""
    user = from_scim(load_sample("rfc7643-8.3-user-enterprise"), User)
    out = to_scim(user, request=True)
    assert {"id", "meta", "groups"} & out.keys() == set()
    assert out[ENTERPRISE_USER_SCHEMA]["manager"] == {
        "value": "26118915-6090-4610-87e4-49d8ca9f808d",
        "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
    }
    assert out["password"] == "t1meMa$heen"  # writeOnly is exactly what a client sends
    assert out["externalId"] == "701984"


def test_password_is_not_in_repr() -> None:
    """A user's repr never shows the password."""
    assert "s3cret" not in repr(User(user_name="u", password="s3cret"))


def test_malformed_payload_lists_every_bad_path() -> None:
    """One ResourceValidationError names each bad attribute path and why."""
    payload = {
        "userName": ["not", "a", "string"],
        "active": "maybe",
        "emails": [{"value": "a@b", "primary": "perhaps"}, 5],
        "meta": {"created": "yesterday"},
        "name": "Barbara",
    }
    with pytest.raises(ResourceValidationError) as info:
        from_scim(payload, User)
    assert sorted(info.value.errors) == sorted(
        [
            "$.userName: expected a string, got ['not', 'a', 'string']",
            "$.active: expected a boolean, got 'maybe'",
            "$.emails[0].primary: expected a boolean, got 'perhaps'",
            "$.emails[1]: expected an object, got 5",
            "$.meta.created: expected an xsd:dateTime, got 'yesterday'",
            "$.name: expected an object, got 'Barbara'",
        ]
    )


@pytest.mark.parametrize("payload", [None, [], "user", 42])
def test_a_payload_that_is_not_an_object_is_a_validation_error(payload: object) -> None:
    """Anything but a JSON object is rejected with a project error."""
    with pytest.raises(ResourceValidationError, match=r"\$: expected an object"):
        from_scim(payload, User)


def test_wrong_schemas_is_a_validation_error() -> None:
    """A Group payload read as a User is refused, naming the schemas."""
    with pytest.raises(ResourceValidationError, match=r"\$\.schemas: .*core:2\.0:User"):
        from_scim(load_sample("rfc7643-8.4-group"), User)


def test_wrong_schemas_name_the_missing_one_first() -> None:
    """The message says which schema is missing, then what the payload names instead."""
    with pytest.raises(ResourceValidationError) as caught:
        from_scim({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, User)
    assert [
        "$.schemas: urn:ietf:params:scim:schemas:core:2.0:User is missing (the payload "
        "names ['urn:ietf:params:scim:schemas:core:2.0:Group'])"
    ] == list(caught.value.errors)


def test_invalid_json_is_a_validation_error() -> None:
    """Bytes that are not JSON raise ResourceValidationError, not a JSONDecodeError."""
    with pytest.raises(ResourceValidationError, match="not JSON"):
        from_json(b"<html>502 Bad Gateway</html>", User)


def test_json_helpers_round_trip() -> None:
    """to_json/from_json are the dict functions plus UTF-8 JSON."""
    user = User(user_name="zoë", name=Name(given_name="Zoë"), active=False)
    raw = to_json(user)
    expected = (
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
        '"userName":"zoë","name":{"givenName":"Zoë"},"active":false}'
    )
    assert expected.encode() == raw
    assert user == from_json(raw, User)


def test_list_response_is_typed_and_strict() -> None:
    """ListResponse[User] gives users; totalResults as a string or missing is an error."""
    page = from_scim(
        {"totalResults": 2, "itemsPerPage": 1, "startIndex": 1, "Resources": [{"userName": "a"}]},
        ListResponse[User],
    )
    assert page == ListResponse(
        total_results=2, items_per_page=1, start_index=1, resources=[User(user_name="a")]
    )
    with pytest.raises(ResourceValidationError, match=r"\$\.totalResults: expected an integer"):
        from_scim({"totalResults": "2", "Resources": []}, ListResponse[User])
    with pytest.raises(ResourceValidationError, match="'totalResults' is missing"):
        from_scim({"Resources": []}, ListResponse[User])
    with pytest.raises(ResourceValidationError, match=r"\$\.Resources\[1\]\.active"):
        from_scim(
            {"totalResults": 2, "Resources": [{"userName": "a"}, {"active": "x"}]},
            ListResponse[User],
        )


def test_patch_op_reads_provider_casing() -> None:
    """Entra's "Replace"/"Add" ops are read in lower case; values stay as sent."""
    patch = from_scim(load_sample("entra-patch-user"), PatchOp)
    assert [op.op for op in patch.operations] == ["replace", "add", "replace", "remove"]
    assert patch.operations[0].value == "False"
    assert to_scim(patch)["Operations"][0] == {"op": "replace", "path": "active", "value": "False"}


def test_unknown_patch_op_is_a_validation_error() -> None:
    """An op other than add/remove/replace is refused with its path."""
    with pytest.raises(ResourceValidationError, match=r"\$\.Operations\[0\]: PATCH op"):
        from_scim({"Operations": [{"op": "merge", "path": "x"}]}, PatchOp)


def test_error_status_is_a_string_on_the_wire() -> None:
    """RFC 7644 §3.12 writes the status as a string; we read either and write a string."""
    error = from_scim({"status": "409", "scimType": "uniqueness", "detail": "taken"}, Error)
    assert error == Error(status=409, scim_type="uniqueness", detail="taken")
    assert to_scim(error) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "taken",
    }


def test_search_and_bulk_messages_round_trip() -> None:
    """SearchRequest, BulkRequest and BulkResponse read and write their RFC shapes."""
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "attributes": ["displayName", "userName"],
        "filter": 'displayName sw "smith"',
        "startIndex": 1,
        "count": 10,
    }
    assert search == to_scim(from_scim(search, SearchRequest))
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"userName": "a"}},
            {"method": "DELETE", "path": "/Users/b7c14771", "version": 'W/"0ee8add0a938e1a"'},
        ],
        "failOnErrors": 1,
    }
    assert bulk == to_scim(from_scim(bulk, BulkRequest))
    answer = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
        "Operations": [
            {"method": "POST", "bulkId": "qwerty", "location": "/Users/92b7", "status": "201"}
        ],
    }
    parsed = from_scim(answer, BulkResponse)
    assert parsed.operations[0].status == 201
    assert answer == to_scim(parsed)


def test_core_attributes_under_their_own_urn_are_merged() -> None:
    """A provider that writes core attributes under the core URN is read correctly."""
    user = from_scim(
        {"urn:ietf:params:scim:schemas:core:2.0:User": {"userName": "u", "title": "Boss"}},
        User,
    )
    assert User(user_name="u", title="Boss") == user


def test_numbers_where_strings_belong_are_accepted() -> None:
    """employeeNumber sent as a JSON number is read as its string."""
    user = from_scim({"userName": "u", ENTERPRISE_USER_SCHEMA: {"employeeNumber": 1234}}, User)
    assert user.enterprise == EnterpriseUser(employee_number="1234")


def test_group_members_read_and_write() -> None:
    """Group members keep value, $ref, display and type."""
    group = Group(display_name="G", members=[Member(value="1", type="User", display="A")])
    assert to_scim(group) == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "G",
        "members": [{"value": "1", "display": "A", "type": "User"}],
    }
    assert group == from_scim(to_scim(group), Group)


@attrs.frozen(kw_only=True)
class Badge:
    """A custom extension for the tests."""

    badge_number: str | None = None
    floor: int | None = None


def test_registered_extension_is_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    """After register_extension, the extension reads as the attrs class and writes back."""
    from scimsync import codec

    monkeypatch.setattr(codec, "_EXTENSIONS", dict(codec._EXTENSIONS))
    register_extension(BADGE_URN, Badge)
    assert {BADGE_URN: Badge} == codec.registered_extensions()
    user = from_scim(load_sample("capitalised-user"), User)
    assert user.extension(BADGE_URN) == Badge(badge_number="B-17", floor=3)
    assert user.extension(BADGE_URN.upper()) == Badge(badge_number="B-17", floor=3)
    assert to_scim(user)[BADGE_URN] == {"badgeNumber": "B-17", "floor": 3}
    with pytest.raises(ResourceValidationError, match=r"floor: expected an integer"):
        from_scim({"userName": "u", BADGE_URN: {"floor": "third"}}, User)


def test_register_extension_refuses_non_attrs_classes() -> None:
    """Only attrs classes can be registered."""
    with pytest.raises(TypeError, match="not an attrs class"):
        register_extension(BADGE_URN, dict)


def test_the_converter_is_our_own() -> None:
    """The module's converter is not cattrs' global one."""
    import cattrs

    assert converter is not cattrs.global_converter


def test_list_values_are_stored_as_tuples() -> None:
    """Models built from lists compare equal to those built from tuples."""
    assert User(emails=[Email(value="a")]) == User(emails=(Email(value="a"),))
    assert User(emails=[]).emails == ()
    assert User().emails is None
