"""PATCH on ScimTestServer (RFC 7644 §3.5.2): all or nothing, checked like a PUT, with quirks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync.testing import Faults, Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def seeded(**options: Any) -> ScimTestServer:
    """Users a, b, c (alice, bob, carol) and group g holding a and b."""
    return ScimTestServer(
        users=[
            {"schemas": [USER], "id": "a", "userName": "alice", "title": "Guide"},
            {"schemas": [USER], "id": "b", "userName": "bob"},
            {"schemas": [USER], "id": "c", "userName": "carol"},
        ],
        groups=[
            {
                "schemas": [GROUP],
                "id": "g",
                "displayName": "Team",
                "members": [{"value": "a"}, {"value": "b"}],
            }
        ],
        **options,
    )


@pytest.fixture
def server() -> ScimTestServer:
    """The seeded server, RFC profile."""
    return seeded()


@pytest.fixture
def http(server: ScimTestServer) -> Iterator[httpx.Client]:
    """An in-process client."""
    with server.client() as client:
        yield client


def state(server: ScimTestServer) -> Any:
    """Everything the server holds."""
    return [dict(r) for _, r in server._service.store]


def member_ids(server: ScimTestServer, group_id: str = "g") -> list[str | None]:
    """The member ids of a group, as stored."""
    group = server.group(group_id)
    assert group is not None
    return [m.value for m in group.members or ()]


# -- attributes -----------------------------------------------------------------------------------


def test_replace_answers_the_whole_resource_with_a_new_version(http: httpx.Client) -> None:
    """PATCH answers 200 with the resource; version and ETag move."""
    before = http.get("/Users/a").json()
    response = http.patch(
        "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Boss"})
    )
    body = response.json()
    assert (response.status_code, body["title"], body["userName"]) == (200, "Boss", "alice")
    assert body["meta"]["version"] != before["meta"]["version"]
    assert response.headers["ETag"] == body["meta"]["version"]
    assert body["meta"]["created"] == before["meta"]["created"]


def test_a_patch_that_changes_nothing_keeps_the_version(http: httpx.Client) -> None:
    """Replacing a value with itself is not a change."""
    before = http.get("/Users/a").json()
    after = http.patch(
        "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Guide"})
    ).json()
    assert after["meta"]["version"] == before["meta"]["version"]


def test_patch_without_path_and_with_value_filters(http: httpx.Client) -> None:
    """Operations without a path, and with a value-filtered path, apply as RFC 7644 says."""
    http.patch(
        "/Users/a",
        json=patch_body(
            {"op": "add", "value": {"emails": [{"value": "a@work", "type": "work"}]}},
            {"op": "add", "path": "emails", "value": [{"value": "a@home", "type": "home"}]},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "alice@work"},
        ),
    )
    emails = http.get("/Users/a").json()["emails"]
    assert [(e["type"], e["value"]) for e in emails] == [
        ("work", "alice@work"),
        ("home", "a@home"),
    ]


def test_patch_of_the_enterprise_extension(http: httpx.Client) -> None:
    """URN-qualified paths reach the extension; schemas lists it afterwards."""
    body = http.patch(
        "/Users/a",
        json=patch_body({"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "42"}),
    ).json()
    assert (body[ENTERPRISE], body["schemas"]) == ({"employeeNumber": "42"}, [USER, ENTERPRISE])


def test_schemas_inside_an_extension_value_is_ignored(http: httpx.Client) -> None:
    """Clients built on scim2-models put the extension's URN in its value; it is dropped."""
    response = http.patch(
        "/Users/a",
        json=patch_body(
            {
                "op": "add",
                "path": ENTERPRISE,
                "value": {"schemas": [ENTERPRISE], "department": "Tours"},
            },
            {"op": "add", "value": {ENTERPRISE: {"schemas": [ENTERPRISE], "division": "North"}}},
        ),
    )
    assert (response.status_code, response.json()[ENTERPRISE]) == (
        200,
        {"department": "Tours", "division": "North"},
    )


def test_password_can_be_patched_and_is_never_returned(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """PATCH sets the writeOnly password; the answer does not show it."""
    response = http.patch(
        "/Users/a", json=patch_body({"op": "replace", "path": "password", "value": "hunter2"})
    )
    stored = server._service.store.get("User", "a")
    assert ("password" in response.json(), stored and stored["password"]) == (False, "hunter2")


# -- groups ---------------------------------------------------------------------------------------


def test_add_and_remove_members(http: httpx.Client, server: ScimTestServer) -> None:
    """Adding c and removing a by a value filter changes exactly those two memberships."""
    response = http.patch(
        "/Groups/g",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": "c"}]},
            {"op": "remove", "path": 'members[value eq "a"]'},
        ),
    )
    assert (response.status_code, member_ids(server)) == (200, ["b", "c"])
    assert [bool(http.get(f"/Users/{u}").json().get("groups")) for u in "abc"] == [
        False,
        True,
        True,
    ]


def test_adding_an_existing_member_does_not_duplicate_it(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """add of a member already there leaves one entry (and the version as it was)."""
    before = http.get("/Groups/g").json()["meta"]["version"]
    after = http.patch(
        "/Groups/g", json=patch_body({"op": "add", "path": "members", "value": [{"value": "a"}]})
    ).json()
    assert (member_ids(server), after["meta"]["version"]) == (["a", "b"], before)


def test_adding_a_member_that_does_not_exist_is_400(
    http: httpx.Client, server: ScimTestServer
) -> None:
    """Referential integrity holds for PATCH too; nothing is applied."""
    before = state(server)
    response = http.patch(
        "/Groups/g",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": "c"}]},
            {"op": "add", "path": "members", "value": [{"value": "ghost"}]},
        ),
    )
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidValue")
    assert state(server) == before


def test_removing_every_member(http: httpx.Client, server: ScimTestServer) -> None:
    """remove of members empties the group; its users no longer list it."""
    http.patch("/Groups/g", json=patch_body({"op": "remove", "path": "members"}))
    assert (member_ids(server), "groups" in http.get("/Users/a").json()) == ([], False)


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "status", "scim_type"),
    [
        ([{"op": "replace", "path": "title[", "value": "x"}], 400, "invalidPath"),
        ([{"op": "replace", "path": "shoeSize", "value": 44}], 400, "invalidPath"),
        ([{"op": "replace", "path": "id", "value": "x"}], 400, "mutability"),
        ([{"op": "add", "path": "groups", "value": [{"value": "g"}]}], 400, "mutability"),
        ([{"op": "remove"}], 400, "noTarget"),
        ([{"op": "replace", "path": "active", "value": "perhaps"}], 400, "invalidValue"),
        ([{"op": "remove", "path": "userName"}], 400, None),
        ([{"op": "replace", "path": "userName", "value": "BOB"}], 409, "uniqueness"),
        (
            [
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "nope", "value": 1},
            ],
            400,
            "invalidPath",
        ),
    ],
    ids=[
        "malformed-path",
        "unknown-attribute",
        "read-only-id",
        "read-only-groups",
        "remove-without-path",
        "wrong-type",
        "remove-required",
        "taken-user-name",
        "second-op-fails",
    ],
)
def test_refused_patches_change_nothing(
    http: httpx.Client,
    server: ScimTestServer,
    operations: list[dict[str, Any]],
    status: int,
    scim_type: str | None,
) -> None:
    """A PATCH that cannot apply answers its SCIM error and leaves the resource as it was."""
    before = state(server)
    response = http.patch("/Users/a", json=patch_body(*operations))
    assert response.status_code == status
    if scim_type is not None:
        assert response.json()["scimType"] == scim_type
    assert state(server) == before


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (b'{"schemas": [', "invalidSyntax"),
        ({"Operations": [{"op": "add", "path": "title", "value": "x"}]}, "invalidSyntax"),
        ({"schemas": [USER], "Operations": []}, "invalidSyntax"),
        ({"schemas": [PATCH_OP], "Operations": [{"op": "merge", "path": "title"}]}, "invalidValue"),
        ({"schemas": [PATCH_OP]}, "invalidValue"),
    ],
    ids=["not-json", "no-schemas", "wrong-schemas", "unknown-op", "no-operations"],
)
def test_bad_patch_bodies_are_400(
    http: httpx.Client, server: ScimTestServer, body: Any, scim_type: str
) -> None:
    """A body that is not a PatchOp answers 400 with the scimType for it."""
    before = state(server)
    if isinstance(body, bytes):
        response = http.patch("/Users/a", content=body)
    else:
        response = http.patch("/Users/a", json=body)
    assert (response.status_code, response.json()["scimType"]) == (400, scim_type)
    assert state(server) == before


def test_patch_with_a_stale_if_match_is_412(http: httpx.Client, server: ScimTestServer) -> None:
    """If-Match guards PATCH as it guards PUT."""
    before = state(server)
    response = http.patch(
        "/Users/a",
        json=patch_body({"op": "replace", "path": "title", "value": "Boss"}),
        headers={"If-Match": 'W/"nope"'},
    )
    assert (response.status_code, state(server)) == (412, before)


def test_patch_of_a_missing_resource_is_404(http: httpx.Client) -> None:
    """PATCH does not create."""
    response = http.patch("/Users/zz", json=patch_body({"op": "add", "path": "title", "value": 1}))
    assert response.status_code == 404


# -- through bulk, faults, the log ---------------------------------------------------------------


def test_patch_in_bulk_resolves_bulk_ids(http: httpx.Client, server: ScimTestServer) -> None:
    """A bulk PATCH can add a member created earlier in the same request."""
    answer = http.post(
        "/Bulk",
        json={
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "d",
                    "data": {"schemas": [USER], "userName": "dave"},
                },
                {
                    "method": "PATCH",
                    "path": "/Groups/g",
                    "data": patch_body(
                        {"op": "add", "path": "members", "value": [{"value": "bulkId:d"}]}
                    ),
                },
            ],
        },
    ).json()
    dave = next(u for u in server.users() if u.user_name == "dave")
    assert [o["status"] for o in answer["Operations"]] == ["201", "200"]
    assert member_ids(server) == ["a", "b", dave.id]


def test_commit_then_fail_applies_the_patch(http: httpx.Client, server: ScimTestServer) -> None:
    """A PATCH whose answer is lost was still applied: a client must re-read, not re-send."""
    server.faults = Faults(kinds=["commit_then_fail"], after_commit="504")
    response = http.patch(
        "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Boss"})
    )
    user = server.user("a")
    assert (response.status_code, user and user.title) == (504, "Boss")


def test_the_log_counts_patches(http: httpx.Client, server: ScimTestServer) -> None:
    """Tests can assert that exactly one PATCH was sent, and read what it held."""
    http.patch("/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Boss"}))
    http.get("/Users/a")
    (entry,) = server.requests.entries("PATCH", "/Users")
    assert (server.requests.count("PATCH", "/Users"), entry.json()["Operations"][0]["value"]) == (
        1,
        "Boss",
    )


# -- quirks ---------------------------------------------------------------------------------------


@pytest.fixture
def capped() -> Iterator[tuple[ScimTestServer, httpx.Client]]:
    """A server taking at most two members per PATCH operation."""
    server = seeded(quirks=Quirks(max_members_per_patch_operation=2))
    server.add_user({"schemas": [USER], "id": "d", "userName": "dave"})
    with server.client() as client:
        yield server, client


def test_member_cap_refuses_big_operations_with_413(
    capped: tuple[ScimTestServer, httpx.Client],
) -> None:
    """An operation carrying more members than the cap answers 413; nothing applies."""
    server, http = capped
    before = state(server)
    too_many = http.patch(
        "/Groups/g",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": v} for v in ("c", "d", "a")]}
        ),
    )
    without_path = http.patch(
        "/Groups/g",
        json=patch_body(
            {"op": "add", "value": {"members": [{"value": v} for v in ("c", "d", "a")]}}
        ),
    )
    assert (too_many.status_code, without_path.status_code, state(server)) == (413, 413, before)


def test_member_cap_allows_chunked_operations(
    capped: tuple[ScimTestServer, httpx.Client],
) -> None:
    """Operations within the cap apply, even many of them in one request."""
    server, http = capped
    response = http.patch(
        "/Groups/g",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": "c"}, {"value": "d"}]},
            {"op": "remove", "path": 'members[value eq "a"]'},
            {"op": "replace", "path": "displayName", "value": "Crew"},
        ),
    )
    assert (response.status_code, member_ids(server)) == (200, ["b", "c", "d"])


def test_member_cap_spares_users() -> None:
    """The cap is about group members; user PATCHes are not counted."""
    server = seeded(quirks=Quirks(max_members_per_patch_operation=1))
    with server.client() as http:
        response = http.patch(
            "/Users/a",
            json=patch_body(
                {"op": "add", "path": "emails", "value": [{"value": "x@y"}, {"value": "z@y"}]}
            ),
        )
    assert response.status_code == 200


def test_patch_answer_omits_members_under_the_quirk() -> None:
    """The group in a PATCH answer has no members when group GETs omit them."""
    server = seeded(quirks=Quirks(omit_group_members=True))
    with server.client() as http:
        body = http.patch(
            "/Groups/g",
            json=patch_body({"op": "add", "path": "members", "value": [{"value": "c"}]}),
        ).json()
    assert ("members" in body, member_ids(server)) == (False, ["a", "b", "c"])


# -- properties -----------------------------------------------------------------------------------

COMMON_PATHS = ["id", "externalId", "meta.version", "nope", "x[", None]
PATHS = {
    "/Users/a": [
        "title", "userName", "name.givenName", "emails", 'emails[type eq "work"].value',
        "active", "groups", f"{ENTERPRISE}:employeeNumber", *COMMON_PATHS,
    ],
    "/Groups/g": [
        "members", 'members[value eq "a"]', "members.display", "displayName", *COMMON_PATHS,
    ],
}  # fmt: skip
values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.fixed_dictionaries({"value": st.sampled_from(["a", "b", "c", "zz"])}), max_size=3),
    st.fixed_dictionaries({"givenName": st.text(max_size=3)}),
)


def operations(target: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of PATCH operations on paths of ``target``'s resource type, valid or not."""
    operation = st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "ADD"]),
            "path": st.sampled_from(PATHS[target]),
            "value": values,
        }
    ).map(lambda op: {k: v for k, v in op.items() if v is not None})
    return st.lists(operation, min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), target=st.sampled_from(sorted(PATHS)))
def test_any_patch_applies_whole_or_not_at_all(data: st.DataObject, target: str) -> None:
    """Any PATCH gets 200 or a 4xx with a SCIM error; a 4xx leaves the store as it was."""
    ops = data.draw(operations(target))
    server = seeded()
    before = state(server)
    with server.client() as http:
        response = http.patch(target, json=patch_body(*ops))
    assert response.status_code in (200, 400, 409), response.text
    if response.status_code != 200:
        assert state(server) == before
        assert response.json()["detail"]
    else:
        assert response.json()["id"] == target.rsplit("/", 1)[1]
