"""ScimTestServer as a SCIM service provider (RFC 7644), driven in-process with httpx.

Covers CRUD, uniqueness, versions and preconditions, referential integrity, the
computed ``User.groups``, auth, discovery, bulk, seeding, inspection and the request
log. Listing (paging, sorting, projection) and bad input have their own modules.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync import Group, User, from_scim
from scimsync.errors import ConfigurationError, ResourceValidationError
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BASE = "http://localhost/scim/v2"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    """A minimal User creation body."""
    return {"schemas": [USER], "userName": user_name, **attributes}


def group_body(name: str, *member_ids: str) -> dict[str, Any]:
    """A Group creation body with the given members."""
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": name}
    if member_ids:
        body["members"] = [{"value": m} for m in member_ids]
    return body


@pytest.fixture
def server() -> ScimTestServer:
    """An in-process server with a token and a fixed clock."""
    return ScimTestServer(token="s3cret", clock=lambda: NOW)


@pytest.fixture
def http(server: ScimTestServer) -> Iterator[httpx.Client]:
    """An httpx client wired to ``server`` in-process."""
    with server.client() as client:
        yield client


def create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` and return the created resource (asserting 201)."""
    response = http.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    """The response is a SCIM error body with ``status`` and ``scim_type``."""
    body = response.json()
    assert (status, [ERROR], str(status), scim_type) == (
        response.status_code,
        body["schemas"],
        body["status"],
        body.get("scimType"),
    )
    assert body["detail"]


# -- create and read ------------------------------------------------------------------------------


def test_create_user_answers_201_with_location_etag_and_meta(http: httpx.Client) -> None:
    """POST answers 201; Location and ETag match meta.location and meta.version."""
    response = http.post("/Users", json=user_body("bjensen", displayName="Babs"))
    body = response.json()
    assert response.status_code == 201
    assert f"{BASE}/Users/{body['id']}" == response.headers["Location"]
    assert body["meta"]["location"] == response.headers["Location"]
    assert body["meta"]["version"] == response.headers["ETag"]
    assert {k: body["meta"][k] for k in ("resourceType", "created", "lastModified")} == {
        "resourceType": "User",
        "created": "2024-05-06T07:08:09.000Z",
        "lastModified": "2024-05-06T07:08:09.000Z",
    }
    assert (body["userName"], body["displayName"], body["schemas"]) == ("bjensen", "Babs", [USER])
    assert response.headers["Content-Type"] == "application/scim+json"


def test_create_ignores_read_only_attributes_and_never_returns_the_password(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """id, meta and groups sent by a client are ignored; the password is stored, never shown."""
    body = user_body(
        "bjensen",
        id="chosen-by-client",
        meta={"version": 'W/"999"'},
        groups=[{"value": "nope"}],
        password="hunter2",
    )
    created = create(http, "/Users", body)
    fetched = http.get(f"/Users/{created['id']}").json()
    assert created["id"] != "chosen-by-client"
    assert created["meta"]["version"] != 'W/"999"'
    assert ("groups" in created, "password" in created, "password" in fetched) == (
        False,
        False,
        False,
    )
    assert created["meta"]["version"] == 'W/"1"'
    assert "hunter2" not in http.get("/Users").text
    assert [u.password for u in server.users()] == [None]


def test_attribute_names_and_booleans_are_read_as_real_providers_send_them(
    http: httpx.Client,
) -> None:
    """Attribute names in any case and string booleans are stored in canonical form."""
    created = create(http, "/Users", {"SCHEMAS": [USER], "USERNAME": "bjensen", "Active": "False"})
    assert (created["userName"], created["active"]) == ("bjensen", False)


def test_get_unknown_id_is_404_scim_error(http: httpx.Client) -> None:
    """A missing resource answers 404 with a SCIM error body."""
    assert_scim_error(http.get("/Users/missing"), 404)
    assert_scim_error(http.get("/Groups/missing"), 404)


def test_user_id_is_not_a_group(http: httpx.Client) -> None:
    """A user's id under /Groups is not found: each endpoint serves its own type."""
    user = create(http, "/Users", user_body("bjensen"))
    assert_scim_error(http.get(f"/Groups/{user['id']}"), 404)


def test_enterprise_extension_round_trips(http: httpx.Client) -> None:
    """The enterprise extension is stored and served under its URN."""
    body = user_body("bjensen", **{ENTERPRISE: {"employeeNumber": "701984"}})
    body["schemas"] = [USER, ENTERPRISE]
    created = create(http, "/Users", body)
    fetched = http.get(f"/Users/{created['id']}").json()
    assert fetched[ENTERPRISE] == {"employeeNumber": "701984"}
    assert fetched["schemas"] == [USER, ENTERPRISE]


# -- uniqueness -----------------------------------------------------------------------------------


def test_user_name_is_unique_case_insensitively(http: httpx.Client, server: ScimTestServer) -> None:
    """A second userName differing only in case answers 409 uniqueness; nothing is stored."""
    create(http, "/Users", user_body("bjensen"))
    assert_scim_error(http.post("/Users", json=user_body("BJensen")), 409, "uniqueness")
    assert [u.user_name for u in server.users()] == ["bjensen"]


def test_group_display_name_is_unique(http: httpx.Client, server: ScimTestServer) -> None:
    """Group displayName is unique (case-insensitively) and published as such in /Schemas."""
    create(http, "/Groups", group_body("Admins"))
    assert_scim_error(http.post("/Groups", json=group_body("ADMINS")), 409, "uniqueness")
    schema = http.get(f"/Schemas/{GROUP}").json()
    display_name = next(a for a in schema["attributes"] if a["name"] == "displayName")
    assert (display_name["uniqueness"], len(server.groups())) == ("server", 1)


def test_renaming_onto_a_taken_user_name_is_409_and_changes_nothing(http: httpx.Client) -> None:
    """PUT that would duplicate a userName answers 409; the resource keeps its state."""
    create(http, "/Users", user_body("alice"))
    bob = create(http, "/Users", user_body("bob"))
    response = http.put(f"/Users/{bob['id']}", json=user_body("ALICE"))
    assert_scim_error(response, 409, "uniqueness")
    assert bob == http.get(f"/Users/{bob['id']}").json()


def test_a_freed_user_name_can_be_taken_again(http: httpx.Client) -> None:
    """After a delete or a rename, the old userName is free."""
    first = create(http, "/Users", user_body("alice"))
    http.put(f"/Users/{first['id']}", json=user_body("alice2"))
    create(http, "/Users", user_body("alice"))
    assert http.delete(f"/Users/{first['id']}").status_code == 204
    assert http.post("/Users", json=user_body("alice2")).status_code == 201


# -- replace, versions, preconditions -------------------------------------------------------------


def test_put_replaces_the_resource_and_moves_the_version(http: httpx.Client) -> None:
    """PUT replaces every attribute; created stays, version and lastModified move."""
    created = create(http, "/Users", user_body("bjensen", title="Guide", nickName="Babs"))
    response = http.put(f"/Users/{created['id']}", json=user_body("bjensen", title="Boss"))
    replaced = response.json()
    assert response.status_code == 200
    assert (replaced["title"], replaced.get("nickName")) == ("Boss", None)
    assert created["meta"]["created"] == replaced["meta"]["created"]
    assert created["meta"]["version"] != replaced["meta"]["version"]
    assert replaced["meta"]["version"] == response.headers["ETag"]


def test_put_with_identical_content_keeps_the_version(http: httpx.Client) -> None:
    """A PUT that changes nothing leaves meta.version as it was."""
    created = create(http, "/Users", user_body("bjensen", title="Guide"))
    replaced = http.put(f"/Users/{created['id']}", json=user_body("bjensen", title="Guide")).json()
    assert created["meta"]["version"] == replaced["meta"]["version"]


def test_put_without_password_keeps_it(http: httpx.Client, server: ScimTestServer) -> None:
    """A writeOnly password cannot be read back, so a PUT leaving it out keeps it."""
    created = create(http, "/Users", user_body("bjensen", password="hunter2"))
    http.put(f"/Users/{created['id']}", json=user_body("bjensen", title="Boss"))
    stored = server._service.store.get("User", created["id"])
    assert stored is not None
    assert stored["password"] == "hunter2"


def test_put_to_unknown_id_is_404(http: httpx.Client) -> None:
    """PUT does not create."""
    assert_scim_error(http.put("/Users/missing", json=user_body("x")), 404)


def test_if_match_with_a_stale_version_is_412_and_changes_nothing(http: httpx.Client) -> None:
    """PUT and DELETE with an If-Match that is not the current version answer 412."""
    created = create(http, "/Users", user_body("bjensen"))
    path = f"/Users/{created['id']}"
    stale = created["meta"]["version"]
    http.put(path, json=user_body("bjensen", title="Boss"))
    current = http.get(path).json()
    put = http.put(path, json=user_body("bjensen", title="Other"), headers={"If-Match": stale})
    delete = http.delete(path, headers={"If-Match": stale})
    assert_scim_error(put, 412)
    assert_scim_error(delete, 412)
    assert current == http.get(path).json()


@pytest.mark.parametrize("if_match", ["{version}", "*", 'W/"0", {version}', "{bare}"])
def test_if_match_with_the_current_version_succeeds(http: httpx.Client, if_match: str) -> None:
    """If-Match accepts the current version (weakly compared), ``*``, or a list holding it."""
    created = create(http, "/Users", user_body("bjensen"))
    version = created["meta"]["version"]
    header = if_match.format(version=version, bare=version.removeprefix("W/"))
    response = http.put(
        f"/Users/{created['id']}",
        json=user_body("bjensen", title="x"),
        headers={"If-Match": header},
    )
    assert response.status_code == 200


def test_if_none_match_with_the_current_version_is_304(http: httpx.Client) -> None:
    """A conditional GET of an unchanged resource answers 304 without a body."""
    created = create(http, "/Users", user_body("bjensen"))
    response = http.get(
        f"/Users/{created['id']}", headers={"If-None-Match": created["meta"]["version"]}
    )
    assert (304, b"", created["meta"]["version"]) == (
        response.status_code,
        response.content,
        response.headers["ETag"],
    )


# -- delete and referential integrity -------------------------------------------------------------


def test_delete_answers_204_then_404(http: httpx.Client) -> None:
    """DELETE answers 204 with no body; the resource is gone."""
    created = create(http, "/Users", user_body("bjensen"))
    response = http.delete(f"/Users/{created['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert_scim_error(http.get(f"/Users/{created['id']}"), 404)
    assert_scim_error(http.delete(f"/Users/{created['id']}"), 404)


def test_group_members_must_exist(http: httpx.Client, server: ScimTestServer) -> None:
    """A group naming a member that does not exist answers 400 invalidValue; nothing stored."""
    response = http.post("/Groups", json=group_body("Admins", "no-such-user"))
    assert_scim_error(response, 400, "invalidValue")
    assert server.groups() == []


def test_member_type_must_match_the_member(http: httpx.Client) -> None:
    """A member declared as a Group that is a User answers 400 invalidValue."""
    user = create(http, "/Users", user_body("bjensen"))
    body = group_body("Admins")
    body["members"] = [{"value": user["id"], "type": "Group"}]
    assert_scim_error(http.post("/Groups", json=body), 400, "invalidValue")


def test_a_group_cannot_contain_itself(http: httpx.Client) -> None:
    """PUT making a group its own member answers 400 invalidValue."""
    group = create(http, "/Groups", group_body("Admins"))
    response = http.put(f"/Groups/{group['id']}", json=group_body("Admins", group["id"]))
    assert_scim_error(response, 400, "invalidValue")


def test_members_are_typed_deduplicated_and_referenced(http: httpx.Client) -> None:
    """The server fills member type and $ref, and keeps each member once."""
    user = create(http, "/Users", user_body("bjensen"))
    inner = create(http, "/Groups", group_body("Inner"))
    group = create(http, "/Groups", group_body("Outer", user["id"], inner["id"], user["id"]))
    assert [
        {"value": user["id"], "type": "User", "$ref": f"{BASE}/Users/{user['id']}"},
        {"value": inner["id"], "type": "Group", "$ref": f"{BASE}/Groups/{inner['id']}"},
    ] == group["members"]


def test_user_groups_is_computed_from_memberships(http: httpx.Client) -> None:
    """User.groups lists the groups that name the user, with display and $ref."""
    user = create(http, "/Users", user_body("bjensen"))
    admins = create(http, "/Groups", group_body("Admins", user["id"]))
    create(http, "/Groups", group_body("Empty"))
    groups = http.get(f"/Users/{user['id']}").json()["groups"]
    assert [
        {
            "value": admins["id"],
            "$ref": f"{BASE}/Groups/{admins['id']}",
            "display": "Admins",
            "type": "direct",
        }
    ] == groups


def test_user_groups_include_indirect_memberships_once_even_in_a_cycle(
    http: httpx.Client,
) -> None:
    """RFC 7643 §4.1.2: the groups of the user's groups are listed as "indirect", each
    once, even when groups hold each other; filters see them too."""
    user = create(http, "/Users", user_body("bjensen"))
    team = create(http, "/Groups", group_body("Team", user["id"]))
    dept = create(http, "/Groups", group_body("Dept", team["id"]))
    company = create(http, "/Groups", group_body("Company", dept["id"], user["id"]))
    http.put(f"/Groups/{dept['id']}", json=group_body("Dept", team["id"], company["id"]))
    groups = http.get(f"/Users/{user['id']}").json()["groups"]
    assert [("Team", "direct"), ("Company", "direct"), ("Dept", "indirect")] == [
        (g["display"], g["type"]) for g in groups
    ]
    found = http.get("/Users", params={"filter": f'groups[value eq "{dept["id"]}"]'}).json()
    assert [user["id"]] == [u["id"] for u in found["Resources"]]


def test_deleting_a_user_removes_it_from_its_groups(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """After a user is deleted, no group names it, and those groups have a new version."""
    alice = create(http, "/Users", user_body("alice"))
    bob = create(http, "/Users", user_body("bob"))
    group = create(http, "/Groups", group_body("Team", alice["id"], bob["id"]))
    http.delete(f"/Users/{alice['id']}")
    after = http.get(f"/Groups/{group['id']}").json()
    assert [bob["id"]] == [m["value"] for m in after["members"]]
    assert group["meta"]["version"] != after["meta"]["version"]
    assert [[bob["id"]]] == [[m.value for m in g.members or ()] for g in server.groups()]


def test_deleting_a_group_removes_it_from_parents_and_user_groups(http: httpx.Client) -> None:
    """A deleted group leaves its parent groups and its members' User.groups."""
    user = create(http, "/Users", user_body("bjensen"))
    child = create(http, "/Groups", group_body("Child", user["id"]))
    parent = create(http, "/Groups", group_body("Parent", child["id"]))
    http.delete(f"/Groups/{child['id']}")
    assert "members" not in http.get(f"/Groups/{parent['id']}").json()
    assert "groups" not in http.get(f"/Users/{user['id']}").json()


# -- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
def test_requests_without_the_token_are_401(
    server: ScimTestServer, headers: dict[str, str]
) -> None:
    """Every endpoint refuses a missing or wrong token with a SCIM 401 and WWW-Authenticate."""
    with httpx.Client(transport=server.transport(), base_url=BASE, headers=headers) as client:
        for path in ("/Users", "/ServiceProviderConfig", "/nowhere"):
            response = client.get(path)
            assert_scim_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.post("/Users", json=user_body("x")).status_code == 401
    assert server.users() == []


def test_the_token_never_appears_in_answers_or_the_log(server: ScimTestServer) -> None:
    """A refused token is not echoed; the request log keeps no headers."""
    with httpx.Client(
        transport=server.transport(), base_url=BASE, headers={"Authorization": "Bearer guess"}
    ) as client:
        response = client.get("/Users")
    assert "guess" not in response.text
    assert "s3cret" not in repr(server)
    assert not hasattr(server.requests.last, "headers")


def test_without_a_token_no_auth_is_required() -> None:
    """A server built without a token answers anyone."""
    server = ScimTestServer()
    with httpx.Client(transport=server.transport(), base_url=BASE) as client:
        assert client.get("/Users").status_code == 200
    assert (server.headers, server.token) == ({}, None)


# -- routing and discovery ------------------------------------------------------------------------


def test_service_provider_config_says_what_the_server_does(http: httpx.Client) -> None:
    """The configuration announces PATCH, bulk limits, filter, sort, ETag and bearer auth."""
    config = http.get("/ServiceProviderConfig").json()
    assert {
        "patch": {"supported": True},
        "bulk": {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1_048_576},
        "filter": {"supported": True, "maxResults": 1000},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "auth": ["oauthbearertoken"],
        "location": f"{BASE}/ServiceProviderConfig",
    } == {
        "patch": config["patch"],
        "bulk": config["bulk"],
        "filter": config["filter"],
        "sort": config["sort"],
        "etag": config["etag"],
        "auth": [s["type"] for s in config["authenticationSchemes"]],
        "location": config["meta"]["location"],
    }


def test_resource_types_and_schemas_are_listed_and_addressable(http: httpx.Client) -> None:
    """/ResourceTypes and /Schemas list their entries; each is served at its own URL."""
    types = http.get("/ResourceTypes").json()
    schemas = http.get("/Schemas").json()
    assert (
        types["schemas"][0],
        types["totalResults"],
        [t["id"] for t in types["Resources"]],
    ) == (LIST, 2, ["User", "Group"])
    assert [s["id"] for s in schemas["Resources"]] == [USER, GROUP, ENTERPRISE]
    user_type = http.get("/ResourceTypes/User").json()
    assert ("/Users", f"{BASE}/ResourceTypes/User") == (
        user_type["endpoint"],
        user_type["meta"]["location"],
    )
    assert http.get(f"/Schemas/{USER}").json()["id"] == USER
    assert_scim_error(http.get("/Schemas/urn:nope"), 404)
    assert_scim_error(http.get("/ResourceTypes/Nope"), 404)


def test_discovery_refuses_filters(http: httpx.Client) -> None:
    """RFC 7644 §4: a filter on /Schemas or /ResourceTypes answers 403."""
    assert_scim_error(http.get("/Schemas", params={"filter": 'id eq "x"'}), 403)
    assert_scim_error(http.get("/ResourceTypes", params={"filter": 'id eq "x"'}), 403)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/ServiceProviderConfig", "GET"),
        ("DELETE", "/Schemas", "GET"),
        ("PUT", "/Users", "GET, POST"),
        ("POST", "/Users/some-id", "GET, PUT, PATCH, DELETE"),
        ("GET", "/Bulk", "POST"),
        ("GET", "/.search", "POST"),
    ],
)
def test_wrong_methods_are_405_with_allow(
    http: httpx.Client, method: str, path: str, allowed: str
) -> None:
    """A method an endpoint does not serve answers 405 naming the allowed ones."""
    response = http.request(method, path, json={})
    assert_scim_error(response, 405)
    assert allowed == response.headers["Allow"]


@pytest.mark.parametrize("path", ["/Nowhere", "/Users/a/b", "/", "/users"])
def test_unknown_paths_are_404(http: httpx.Client, path: str) -> None:
    """Paths that name no endpoint answer 404 with a SCIM error."""
    assert_scim_error(http.get(path), 404)


def test_paths_outside_the_base_path_are_404(server: ScimTestServer) -> None:
    """The endpoints live under the base path only."""
    with server.client(base_url="http://localhost") as client:
        assert_scim_error(client.get("/Users"), 404)
    with server.client(base_url="http://localhost/scim/v2") as client:
        assert client.get("/Users").status_code == 200


def test_me_is_501(http: httpx.Client) -> None:
    """/Me is not supported, as RFC 7644 §3.11 lets a provider say."""
    assert_scim_error(http.get("/Me"), 501)


def test_base_path_is_configurable() -> None:
    """A server with another base path serves there."""
    server = ScimTestServer(base_path="v2")
    with server.client() as client:
        assert (server.base_path, client.get("/Users").status_code) == ("/v2", 200)
        assert server.in_process_url == "http://localhost/v2"


def test_location_follows_the_host_the_client_used(server: ScimTestServer) -> None:
    """Location and meta.location are built from the URL the client addressed."""
    with server.client(base_url="https://idp.example:8443/scim/v2") as client:
        response = client.post("/Users", json=user_body("bjensen"))
    assert response.headers["Location"].startswith("https://idp.example:8443/scim/v2/Users/")


# -- bulk -----------------------------------------------------------------------------------------


def bulk(http: httpx.Client, *operations: dict[str, Any], **options: Any) -> dict[str, Any]:
    """POST a bulk request and return its answer (asserting 200)."""
    response = http.post(
        "/Bulk", json={"schemas": [BULK_REQUEST], "Operations": list(operations), **options}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["schemas"] == [BULK_RESPONSE]
    return answer


def test_bulk_creates_and_resolves_bulk_ids(http: httpx.Client, server: ScimTestServer) -> None:
    """A group referencing ``bulkId:`` of a user created in the same request gets its id."""
    answer = bulk(
        http,
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("alice")},
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g1",
            "data": {
                "schemas": [GROUP],
                "displayName": "Team",
                "members": [{"value": "bulkId:u1"}],
            },
        },
    )
    (alice,), (team,) = server.users(), server.groups()
    assert [(o["method"], o["status"], o["bulkId"]) for o in answer["Operations"]] == [
        ("POST", "201", "u1"),
        ("POST", "201", "g1"),
    ]
    assert f"{BASE}/Users/{alice.id}" == answer["Operations"][0]["location"]
    assert [alice.id] == [m.value for m in team.members or ()]


def test_bulk_resolves_references_to_later_operations(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """An operation naming a bulkId created later in the request waits for it."""
    answer = bulk(
        http,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g1",
            "data": {
                "schemas": [GROUP],
                "displayName": "Team",
                "members": [{"value": "bulkId:u1"}],
            },
        },
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("alice")},
    )
    assert [o["status"] for o in answer["Operations"]] == ["201", "201"]
    assert [[server.users()[0].id]] == [[m.value for m in g.members or ()] for g in server.groups()]


def test_bulk_unresolvable_reference_is_409(http: httpx.Client, server: ScimTestServer) -> None:
    """A bulkId no successful POST defines fails that operation with 409; others succeed."""
    answer = bulk(
        http,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g1",
            "data": {
                "schemas": [GROUP],
                "displayName": "Team",
                "members": [{"value": "bulkId:zz"}],
            },
        },
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("alice")},
    )
    statuses = {o["bulkId"]: o["status"] for o in answer["Operations"]}
    assert statuses == {"g1": "409", "u1": "201"}
    assert (server.groups(), len(server.users())) == ([], 1)


def test_bulk_puts_and_deletes_with_versions(http: httpx.Client, server: ScimTestServer) -> None:
    """Bulk PUT and DELETE honour each operation's version like If-Match."""
    alice = create(http, "/Users", user_body("alice"))
    bob = create(http, "/Users", user_body("bob"))
    answer = bulk(
        http,
        {
            "method": "PUT",
            "path": f"/Users/{alice['id']}",
            "version": alice["meta"]["version"],
            "data": user_body("alice", title="Boss"),
        },
        {"method": "DELETE", "path": f"/Users/{bob['id']}", "version": 'W/"stale"'},
    )
    put, delete = answer["Operations"]
    assert (
        put["status"],
        delete["status"],
        delete["response"]["schemas"][0],
    ) == ("200", "412", ERROR)
    assert [(u.user_name, u.title) for u in server.users()] == [("alice", "Boss"), ("bob", None)]


def test_bulk_fail_on_errors_stops_processing(http: httpx.Client, server: ScimTestServer) -> None:
    """With failOnErrors=1, the operations after the first error are not processed."""
    answer = bulk(
        http,
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER]}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("bob")},
        failOnErrors=1,
    )
    assert [(o["bulkId"], o["status"]) for o in answer["Operations"]] == [("a", "400")]
    assert server.users() == []


@pytest.mark.parametrize(
    "operation",
    [
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Bulk", "bulkId": "x", "data": {}},
        {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "a"}},
        {"method": "DELETE", "path": "/Users"},
    ],
    ids=["get", "nested-bulk", "post-without-bulk-id", "delete-collection"],
)
def test_bulk_refuses_operations_it_cannot_run(
    http: httpx.Client, operation: dict[str, Any]
) -> None:
    """Operations that are not writes to one resource fail alone with a 4xx result."""
    (result,) = bulk(http, operation)["Operations"]
    assert 400 <= int(result["status"]) < 500
    assert result["response"]["schemas"][0] == ERROR


def test_bulk_with_too_many_operations_is_413(server: ScimTestServer) -> None:
    """More operations than maxOperations answers 413 and runs none of them."""
    small = ScimTestServer(max_bulk_operations=1)
    with small.client() as client:
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": str(i), "data": user_body(f"u{i}")}
            for i in range(2)
        ]
        response = client.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations})
    assert_scim_error(response, 413)
    assert small.users() == []


# -- seeding, inspection, log ---------------------------------------------------------------------


def test_seed_keeps_given_ids_and_checks_like_a_post() -> None:
    """Seed data keeps its ids (so groups can name members) and is validated."""
    server = ScimTestServer(
        users=[User(id="u1", user_name="alice"), {"schemas": [USER], "userName": "bob"}],
        groups=[
            {"schemas": [GROUP], "id": "g1", "displayName": "Team", "members": [{"value": "u1"}]}
        ],
    )
    users = server.users()
    assert [
        users[0].id,
        users[0].user_name,
        [g.value for g in users[0].groups or ()],
    ] == ["u1", "alice", ["g1"]]
    assert (server.group("g1") or Group()).id == "g1"
    assert None is server.user("nope")
    assert len(server.requests) == 0
    with pytest.raises(ResourceValidationError, match="already taken"):
        server.add_user(User(user_name="ALICE"))
    with pytest.raises(ResourceValidationError, match="does not exist"):
        server.add_group(from_scim({"displayName": "Bad", "members": [{"value": "ghost"}]}, Group))
    with pytest.raises(ResourceValidationError, match="already taken"):
        server.add_group(Group(id="u1", display_name="Clash"))


def test_reset_forgets_resources_and_requests(server: ScimTestServer, http: httpx.Client) -> None:
    """reset() empties the store and the log."""
    create(http, "/Users", user_body("alice"))
    server.reset()
    assert (server.users(), server.groups(), len(server.requests)) == ([], [], 0)


def test_request_log_counts_by_method_and_path(server: ScimTestServer, http: httpx.Client) -> None:
    """The log answers "how many PATCH/POST/GET to this endpoint" and keeps bodies."""
    user = create(http, "/Users", user_body("alice"))
    http.get(f"/Users/{user['id']}")
    http.get("/Users", params={"count": "1"})
    http.put(f"/Users/{user['id']}", json=user_body("alice", title="x"))
    http.get("/Groups")
    log = server.requests
    assert (
        len(log),
        log.count("POST", "/Users"),
        log.count("GET", "/Users"),
        log.count("get", "/Users/{id}"),
        log.count("PUT", f"/Users/{user['id']}"),
        log.count("PATCH"),
    ) == (5, 1, 2, 1, 1, 0)
    assert dict(log.counts()) == {
        ("POST", "/Users"): 1,
        ("GET", "/Users/{id}"): 1,
        ("GET", "/Users"): 1,
        ("PUT", "/Users/{id}"): 1,
        ("GET", "/Groups"): 1,
    }
    assert dict(log.by_method()) == {"POST": 1, "GET": 3, "PUT": 1}
    first = log.entries("POST")[0]
    assert (first.path, first.status, first.json()["userName"]) == ("/Users", 201, "alice")
    assert (
        log.entries("GET", "/Users")[1].query,
        (log.last or first).path,
    ) == ("count=1", "/Groups")
    assert [e.method for e in log] == ["POST", "GET", "GET", "PUT", "GET"]


def test_server_settings_are_checked() -> None:
    """A default page size above the maximum is a configuration error."""
    with pytest.raises(ConfigurationError):
        ScimTestServer(default_page_size=500, max_page_size=100)


def test_url_needs_a_running_server() -> None:
    """server.url before start() is a clear error, not a wrong URL."""
    with pytest.raises(ConfigurationError, match="not serving"):
        _ = ScimTestServer().url


# -- async and concurrency ------------------------------------------------------------------------


async def test_async_clients_create_concurrently_without_losing_writes() -> None:
    """Fifty concurrent async creates give fifty distinct users and one 409 per duplicate."""
    server = ScimTestServer(token="t")
    async with server.async_client() as client:
        responses = await asyncio.gather(
            *(client.post("/Users", json=user_body(f"user{i % 25}")) for i in range(50))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 25 + [409] * 25
    assert len({u.user_name for u in server.users()}) == 25


def test_the_testing_kit_stays_off_the_client() -> None:
    """Layering: the server imports models, codec, schema, filter and patch, never the client."""
    import subprocess
    import sys

    code = (
        "import sys, scimsync.testing\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scimsync.client', 'tenacity'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
