"""Quirks in what the server answers: no ETags, no Location, string booleans, duplicated
members, groups without members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def seeded(quirks: Quirks) -> ScimTestServer:
    """A server with the quirks, users a and b, and group g holding a."""
    return ScimTestServer(
        quirks=quirks,
        users=[
            {
                "schemas": [USER],
                "id": "a",
                "userName": "alice",
                "active": False,
                "emails": [{"value": "a@example.com", "primary": True}],
            },
            {"schemas": [USER], "id": "b", "userName": "bob"},
        ],
        groups=[
            {"schemas": [GROUP], "id": "g", "displayName": "Team", "members": [{"value": "a"}]}
        ],
    )


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@pytest.fixture
def no_etags() -> Iterator[httpx.Client]:
    """A client to a server without ETags."""
    with seeded(Quirks(etag_supported=False)).client() as client:
        yield client


# -- no ETags --------------------------------------------------------------------------------------


def test_without_etags_no_version_is_given(no_etags: httpx.Client) -> None:
    """No ETag header and no meta.version on create, GET by id and listings; announced false."""
    created = no_etags.post("/Users", json={"schemas": [USER], "userName": "carol"})
    fetched = no_etags.get("/Users/a")
    listed = no_etags.get("/Users").json()["Resources"]
    config = no_etags.get("/ServiceProviderConfig").json()
    assert (None, None) == (created.headers.get("ETag"), fetched.headers.get("ETag"))
    assert [False] * 5 == [
        "version" in body["meta"] for body in (created.json(), fetched.json(), *listed)
    ]
    assert False is config["etag"]["supported"]


def test_without_etags_if_match_is_ignored(no_etags: httpx.Client) -> None:
    """A stale If-Match does not stop PUT, PATCH or DELETE: the last writer wins."""
    stale = {"If-Match": 'W/"999"'}
    put = no_etags.put(
        "/Users/a", json={"schemas": [USER], "userName": "alice", "title": "X"}, headers=stale
    )
    patch = no_etags.patch(
        "/Users/a",
        json=patch_body({"op": "replace", "path": "title", "value": "Y"}),
        headers=stale,
    )
    delete = no_etags.delete("/Users/b", headers=stale)
    assert (200, 200, 204) == (put.status_code, patch.status_code, delete.status_code)


def test_without_etags_if_none_match_is_ignored() -> None:
    """GET with the current version answers 200 with the body, never 304."""
    server = seeded(Quirks())
    with server.client() as http:
        version = http.get("/Users/a").headers["ETag"]
        server.quirks = Quirks(etag_supported=False)
        response = http.get("/Users/a", headers={"If-None-Match": version})
    assert (200, "alice") == (response.status_code, response.json()["userName"])


def test_with_etags_a_stale_if_match_is_refused() -> None:
    """The RFC behaviour the quirk turns off: 412 for a stale version."""
    with seeded(Quirks()).client() as http:
        response = http.delete("/Users/b", headers={"If-Match": 'W/"999"'})
    assert 412 == response.status_code


def test_without_etags_bulk_results_carry_no_version(no_etags: httpx.Client) -> None:
    """Bulk results have a location but no version."""
    body = no_etags.post(
        "/Bulk",
        json={
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "c",
                    "data": {"schemas": [USER], "userName": "carol"},
                }
            ],
        },
    ).json()
    (result,) = body["Operations"]
    assert ("201", True, False) == (result["status"], "location" in result, "version" in result)


# -- no Location header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "expected"), [(Quirks(), True), (Quirks(location_header=False), False)]
)
def test_created_answers_without_location(quirks: Quirks, expected: bool) -> None:
    """201 with or without Location; the body has id and meta.location either way."""
    with seeded(quirks).client() as http:
        response = http.post("/Users", json={"schemas": [USER], "userName": "carol"})
    body = response.json()
    assert (201, expected) == (response.status_code, "Location" in response.headers)
    assert body["meta"]["location"].endswith("/Users/" + body["id"])


def test_bulk_still_resolves_bulk_ids_without_location() -> None:
    """Bulk reads created ids inside the server, so a group can name a user created with it."""
    server = seeded(Quirks(location_header=False))
    with server.client() as http:
        body = http.post(
            "/Bulk",
            json={
                "schemas": [BULK],
                "Operations": [
                    {
                        "method": "POST",
                        "path": "/Users",
                        "bulkId": "c",
                        "data": {"schemas": [USER], "userName": "carol"},
                    },
                    {
                        "method": "POST",
                        "path": "/Groups",
                        "bulkId": "h",
                        "data": {
                            "schemas": [GROUP],
                            "displayName": "Carol's",
                            "members": [{"value": "bulkId:c"}],
                        },
                    },
                ],
            },
        ).json()
    assert ["201", "201"] == [r["status"] for r in body["Operations"]]
    carol = next(u for u in server.users() if u.user_name == "carol")
    assert [carol.id] == [m.value for m in server.groups()[-1].members or ()]


# -- booleans as strings ---------------------------------------------------------------------------


def test_booleans_are_written_as_strings() -> None:
    """active, primary and the discovery flags come back as "True"/"False"."""
    server = seeded(Quirks(string_booleans=True))
    with server.client() as http:
        user = http.get("/Users/a").json()
        listed = http.get("/Users", params={"filter": 'userName eq "alice"'}).json()
        config = http.get("/ServiceProviderConfig").json()
        schema = http.get(f"/Schemas/{USER}").json()
    assert ("False", "True") == (user["active"], user["emails"][0]["primary"])
    assert "False" == listed["Resources"][0]["active"]
    assert ("True", "False") == (
        config["patch"]["supported"],
        schema["attributes"][0]["multiValued"],
    )
    assert 1 == listed["totalResults"]


def test_string_booleans_are_only_on_the_wire() -> None:
    """Filters compare real booleans and inspection shows them: the quirk is in the answer."""
    server = seeded(Quirks(string_booleans=True))
    with server.client() as http:
        inactive = http.get("/Users", params={"filter": "active eq false"}).json()
        response = http.patch(
            "/Users/a", json=patch_body({"op": "replace", "path": "active", "value": True})
        )
    assert ["a"] == [r["id"] for r in inactive["Resources"]]
    assert ("True", True) == (response.json()["active"], server.users()[0].active)


def test_errors_keep_their_shape_with_string_booleans() -> None:
    """An error answer is untouched (its status stays the string the RFC shows)."""
    with seeded(Quirks(string_booleans=True)).client() as http:
        body = http.get("/Users/missing").json()
    assert "404" == body["status"]


# -- duplicated members ----------------------------------------------------------------------------


def add_members(http: httpx.Client, *ids: str, path: str | None = "members") -> httpx.Response:
    """PATCH add of members ``ids`` to group g, with ``path`` or inside a value object."""
    members = [{"value": member} for member in ids]
    operation: dict[str, Any] = {"op": "add", "path": path, "value": members}
    if path is None:
        operation = {"op": "add", "value": {"members": members}}
    return http.patch("/Groups/g", json=patch_body(operation))


@pytest.mark.parametrize(
    ("quirks", "expected"),
    [(Quirks(), ["a", "b"]), (Quirks(duplicate_members_on_add=True), ["a", "b", "a"])],
    ids=["rfc", "quirk"],
)
@pytest.mark.parametrize("path", ["members", None], ids=["path", "no-path"])
def test_adding_a_member_again_duplicates_it(
    quirks: Quirks, expected: list[str], path: str | None
) -> None:
    """PATCH add of a (already a member) and b: listed twice with the quirk, once by the RFC."""
    server = seeded(quirks)
    with server.client() as http:
        response = add_members(http, "a", "b", path=path)
        fetched = http.get("/Groups/g").json()
        listed = http.get("/Groups").json()["Resources"][0]
    assert 200 == response.status_code
    assert [expected, expected] == [[m["value"] for m in g["members"]] for g in (fetched, listed)]


def test_duplicated_members_count_once_in_user_groups() -> None:
    """User.groups (computed) names the group once, however often the user is listed in it."""
    server = seeded(Quirks(duplicate_members_on_add=True))
    with server.client() as http:
        add_members(http, "a")
        add_members(http, "a")
        user = http.get("/Users/a").json()
    assert (["g"], ["a", "a", "a"]) == (
        [g["value"] for g in user["groups"]],
        [m.value for m in server.groups()[0].members or ()],
    )


def test_removing_a_duplicated_member_removes_every_copy() -> None:
    """remove members[value eq "a"] leaves no copy behind, so a client can repair the group."""
    server = seeded(Quirks(duplicate_members_on_add=True))
    with server.client() as http:
        add_members(http, "a", "b")
        http.patch("/Groups/g", json=patch_body({"op": "remove", "path": 'members[value eq "a"]'}))
    assert ["b"] == [m.value for m in server.groups()[0].members or ()]


def test_remove_then_add_in_one_patch_does_not_duplicate() -> None:
    """Operations apply in order: a member removed, then added, is listed once."""
    server = seeded(Quirks(duplicate_members_on_add=True))
    with server.client() as http:
        http.patch(
            "/Groups/g",
            json=patch_body(
                {"op": "remove", "path": 'members[value eq "a"]'},
                {"op": "add", "path": "members", "value": [{"value": "a"}]},
            ),
        )
    assert ["a"] == [m.value for m in server.groups()[0].members or ()]


def test_a_duplicated_member_must_still_exist() -> None:
    """The quirk keeps copies, not invalid members: an unknown id is still 400."""
    with seeded(Quirks(duplicate_members_on_add=True)).client() as http:
        response = add_members(http, "a", "nobody")
    assert (400, "invalidValue") == (response.status_code, response.json()["scimType"])


# -- groups without members ------------------------------------------------------------------------


def test_write_answers_omit_members_too() -> None:
    """Create and PATCH answers leave members out too, as GET by id and listings do."""
    server = seeded(Quirks(omit_group_members=True))
    with server.client() as http:
        created = http.post(
            "/Groups",
            json={"schemas": [GROUP], "displayName": "New", "members": [{"value": "a"}]},
        ).json()
        patched = add_members(http, "b").json()
    assert [False, False] == ["members" in body for body in (created, patched)]
    assert [["a", "b"], ["a"]] == [[m.value for m in g.members or ()] for g in server.groups()]
