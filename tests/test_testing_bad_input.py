"""ScimTestServer answers bad input with the right SCIM error, never a 500, never half a change."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@pytest.fixture
def server() -> ScimTestServer:
    """A server with one user, ``alice``, and a small body limit."""
    return ScimTestServer(
        users=[{"schemas": [USER], "id": "alice-id", "userName": "alice"}], max_body_bytes=2048
    )


@pytest.fixture
def http(server: ScimTestServer) -> Iterator[httpx.Client]:
    """An in-process client for ``server``."""
    with server.client() as client:
        yield client


def state(server: ScimTestServer) -> Any:
    """Everything the server holds, to compare before and after a refused request."""
    return ([dict(r) for _, r in server._service.store], server.users(), server.groups())


def assert_refused(
    server: ScimTestServer, response: httpx.Response, status: int, scim_type: str | None
) -> None:
    """The answer is the SCIM error expected."""
    body = response.json()
    assert (status, str(status), scim_type) == (
        response.status_code,
        body["status"],
        body.get("scimType"),
    )


BAD_BODIES: list[tuple[str, bytes | Any, int, str | None]] = [
    ("malformed-json", b'{"schemas": [', 400, "invalidSyntax"),
    ("empty-body", b"", 400, "invalidSyntax"),
    ("not-utf8", b"\xff\xfe{", 400, "invalidSyntax"),
    ("a-list", [], 400, "invalidSyntax"),
    ("a-string", "bob", 400, "invalidSyntax"),
    ("no-schemas", {"userName": "bob"}, 400, "invalidSyntax"),
    ("schemas-not-a-list", {"schemas": USER, "userName": "bob"}, 400, "invalidSyntax"),
    ("group-schema", {"schemas": [GROUP], "userName": "bob"}, 400, "invalidSyntax"),
    (
        "unknown-extension-in-schemas",
        {"schemas": [USER, "urn:example:ext"], "userName": "bob"},
        400,
        "invalidSyntax",
    ),
    (
        "unknown-attribute",
        {"schemas": [USER], "userName": "bob", "shoeSize": 44},
        400,
        "invalidSyntax",
    ),
    (
        "unknown-sub-attribute",
        {"schemas": [USER], "userName": "bob", "name": {"nickname": "b"}},
        400,
        "invalidSyntax",
    ),
    (
        "unknown-sub-attribute-in-list",
        {"schemas": [USER], "userName": "bob", "emails": [{"value": "b@x", "verified": True}]},
        400,
        "invalidSyntax",
    ),
    (
        "unknown-extension-key",
        {"schemas": [USER], "userName": "bob", "urn:example:ext": {"x": 1}},
        400,
        "invalidSyntax",
    ),
    (
        "unknown-extension-attribute",
        {"schemas": [USER, ENTERPRISE], "userName": "bob", ENTERPRISE: {"badge": "1"}},
        400,
        "invalidSyntax",
    ),
    ("wrong-type", {"schemas": [USER], "userName": "bob", "active": "maybe"}, 400, "invalidValue"),
    ("object-for-string", {"schemas": [USER], "userName": {"x": 1}}, 400, "invalidValue"),
    ("missing-user-name", {"schemas": [USER], "displayName": "Bob"}, 400, "invalidValue"),
    ("empty-user-name", {"schemas": [USER], "userName": ""}, 400, "invalidValue"),
    ("too-large", {"schemas": [USER], "userName": "b" * 3000}, 413, None),
]


@pytest.mark.parametrize(
    ("body", "status", "scim_type"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_bad_resource_bodies_get_the_right_error_and_change_nothing(
    server: ScimTestServer,
    http: httpx.Client,
    method: str,
    body: bytes | Any,
    status: int,
    scim_type: str | None,
) -> None:
    """POST and PUT with a bad body answer the SCIM error for it; the store is untouched."""
    before = state(server)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = "/Users" if method == "POST" else "/Users/alice-id"
    response = http.request(method, path, content=content)
    assert_refused(server, response, status, scim_type)
    assert before == state(server)


def test_unknown_attributes_are_named_in_the_detail(http: httpx.Client) -> None:
    """The detail lists every attribute the schemas do not declare, with its path."""
    response = http.post(
        "/Users",
        json={"schemas": [USER], "userName": "b", "shoeSize": 1, "name": {"nick": "x"}},
    )
    assert "shoeSize, name.nick" in response.json()["detail"]


def test_type_errors_name_the_attribute_path(http: httpx.Client) -> None:
    """The codec's validation problems reach the client with their attribute paths."""
    response = http.post(
        "/Users", json={"schemas": [USER], "userName": "b", "emails": [{"primary": "maybe"}]}
    )
    assert "$.emails[0].primary" in response.json()["detail"]


def test_group_without_display_name_is_400(http: httpx.Client) -> None:
    """displayName is required on groups."""
    response = http.post("/Groups", json={"schemas": [GROUP]})
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidValue")


def test_member_without_value_is_400(http: httpx.Client, server: ScimTestServer) -> None:
    """A member needs the id of the member."""
    response = http.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "T", "members": [{"display": "x"}]}
    )
    assert (
        response.status_code,
        response.json()["scimType"],
        server.groups(),
    ) == (400, "invalidValue", [])


def test_bad_bulk_bodies_are_400(http: httpx.Client, server: ScimTestServer) -> None:
    """A bulk body that is not a BulkRequest answers 400 and runs nothing."""
    before = state(server)
    bodies: list[dict[str, Any]] = [
        {"Operations": []},
        {"schemas": [BULK], "Operations": [{"path": "/Users"}]},
        {"schemas": [BULK], "Operations": "all of them"},
    ]
    for body in bodies:
        assert http.post("/Bulk", json=body).status_code == 400
    assert before == state(server)


def test_body_limit_applies_to_bulk(http: httpx.Client, server: ScimTestServer) -> None:
    """A bulk request over the body limit answers 413 and runs nothing."""
    operations = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": str(i),
            "data": {"schemas": [USER], "userName": f"u{i}"},
        }
        for i in range(40)
    ]
    response = http.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert (response.status_code, len(server.users())) == (413, 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
attribute_names = st.sampled_from(
    ["userName", "USERNAME", "name", "emails", "active", "groups", "id", "meta", "members",
     "displayName", "externalId", ENTERPRISE, "schemas", "password", "x509Certificates", "nope"]
)  # fmt: skip
resource_bodies = st.dictionaries(attribute_names, json_values, max_size=6) | json_values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=resource_bodies, with_schemas=st.booleans(), path=st.sampled_from(["/Users", "/Groups"])
)
def test_any_json_body_gets_an_answer_and_no_half_change(
    body: Any, with_schemas: bool, path: str
) -> None:
    """Whatever JSON is POSTed or PUT, the answer is a success or a 4xx that changed nothing."""
    server = ScimTestServer(users=[{"schemas": [USER], "id": "u1", "userName": "alice"}])
    if with_schemas and isinstance(body, dict):
        body = {**body, "schemas": [USER if path == "/Users" else GROUP]}
    with server.client() as client:
        for method, target in (("POST", path), ("PUT", f"{path}/u1")):
            before = state(server)
            response = client.request(method, target, json=body)
            assert response.status_code in (200, 201, 400, 404, 409), response.text
            if response.status_code >= 400:
                assert before == state(server)
                assert response.json()["detail"]


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes_get_a_4xx(raw: bytes) -> None:
    """Arbitrary bytes as a body never crash the server."""
    server = ScimTestServer()
    with server.client() as client:
        for path in ("/Users", "/Groups", "/Bulk", "/.search"):
            assert 400 <= client.post(path, content=raw).status_code < 500
