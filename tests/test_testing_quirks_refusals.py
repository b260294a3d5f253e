"""Writes a target refuses although it announces them: PATCH for a whole resource type,
PATCH add or replace, and writes that find the database locked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pytest

from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from scimsync import User

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def seeded(quirks: Quirks) -> ScimTestServer:
    """A server with the quirks, users a and b, and group g holding a."""
    return ScimTestServer(
        quirks=quirks,
        users=[
            {"schemas": [USER], "id": "a", "userName": "alice"},
            {"schemas": [USER], "id": "b", "userName": "bob"},
        ],
        groups=[
            {"schemas": [GROUP], "id": "g", "displayName": "Team", "members": [{"value": "a"}]}
        ],
    )


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def alice(server: ScimTestServer) -> User:
    """User a as the server holds it."""
    user = server.user("a")
    assert user is not None
    return user


# -- PATCH refused for a resource type -------------------------------------------------------------


def test_patch_refused_for_groups_answers_501_while_announced() -> None:
    """PATCH on a group answers 501 and changes nothing, PATCH on a user works, and
    /ServiceProviderConfig still says patch.supported true."""
    server = seeded(Quirks(patch_refused_for=("group",)))
    with server.client() as http:
        config = http.get("/ServiceProviderConfig").json()
        group = http.patch(
            "/Groups/g",
            json=patch_body({"op": "add", "path": "members", "value": [{"value": "b"}]}),
        )
        user = http.patch(
            "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "Boss"})
        )
    assert (True, 501, "501", 200) == (
        config["patch"]["supported"],
        group.status_code,
        group.json()["status"],
        user.status_code,
    )
    assert ["a"] == [m.value for m in server.groups()[0].members or ()]


def test_put_still_works_where_patch_is_refused() -> None:
    """The fallback, PUT, replaces the group."""
    server = seeded(Quirks(patch_refused_for=("Group",)))
    with server.client() as http:
        response = http.put("/Groups/g", json={"schemas": [GROUP], "displayName": "Crew"})
    assert (200, "Crew") == (response.status_code, response.json()["displayName"])


def test_resource_types_are_checked() -> None:
    """A resource type the server does not serve is a ValueError, not a silent no-op."""
    with pytest.raises(ValueError, match="no resource type 'Groups'; known: Group, User"):
        Quirks(patch_refused_for=("Groups",))


# -- PATCH add refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "title", "value": "Boss"},
        {"op": "add", "path": "name.givenName", "value": "Alice"},
        {"op": "add", "path": "name", "value": {"givenName": "Alice"}},
        {"op": "add", "path": f"{ENTERPRISE}:costCenter", "value": "CC1"},
        {"op": "add", "path": 'emails[type eq "work"].value', "value": "a@x.example"},
        {"op": "add", "value": {"title": "Boss", "emails": [{"value": "a@x.example"}]}},
        {"op": "add", "value": {ENTERPRISE: {"costCenter": "CC1"}}},
    ],
    ids=["simple", "sub", "complex", "extension", "value-filter", "no-path", "no-path-extension"],
)
def test_add_on_a_singular_user_attribute_is_refused(operation: dict[str, Any]) -> None:
    """Each add setting a singular attribute answers 501 with the bare body the provider
    sends, and nothing of the request is applied."""
    server = seeded(Quirks(patch_add_refused_for=("User",)))
    with server.client() as http:
        response = http.patch(
            "/Users/a",
            json=patch_body({"op": "replace", "path": "displayName", "value": "A"}, operation),
        )
    assert (501, {"detail": "", "status": 501}) == (response.status_code, response.json())
    assert (None, None) == (alice(server).display_name, alice(server).title)


def test_replace_works_where_add_is_refused() -> None:
    """replace sets the same attributes add may not."""
    server = seeded(Quirks(patch_add_refused_for=("User",)))
    with server.client() as http:
        response = http.patch(
            "/Users/a",
            json=patch_body(
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "value": {"name": {"givenName": "Alice"}}},
            ),
        )
    body = response.json()
    assert (200, "Boss", {"givenName": "Alice"}) == (
        response.status_code,
        body["title"],
        body["name"],
    )


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "emails", "value": [{"value": "a@x.example", "type": "work"}]},
        {"op": "add", "value": {"emails": [{"value": "a@x.example", "type": "work"}]}},
    ],
    ids=["path", "no-path"],
)
def test_add_of_values_to_a_multi_valued_user_attribute_works(operation: dict[str, Any]) -> None:
    """An add that only adds values to emails is not refused."""
    server = seeded(Quirks(patch_add_refused_for=("User",)))
    with server.client() as http:
        response = http.patch("/Users/a", json=patch_body(operation))
    assert (200, ["a@x.example"]) == (
        response.status_code,
        [e["value"] for e in response.json()["emails"]],
    )


def test_add_refused_for_users_leaves_group_members_alone() -> None:
    """Members are still added to groups, and a group's displayName can be added."""
    server = seeded(Quirks(patch_add_refused_for=("User",)))
    with server.client() as http:
        response = http.patch(
            "/Groups/g",
            json=patch_body(
                {"op": "add", "path": "members", "value": [{"value": "b"}]},
                {"op": "add", "path": "externalId", "value": "G1"},
            ),
        )
    assert (200, ["a", "b"], "G1") == (
        response.status_code,
        [m["value"] for m in response.json()["members"]],
        response.json()["externalId"],
    )


def test_add_refused_for_groups_still_adds_members() -> None:
    """With groups listed, adding members works and adding externalId answers 501."""
    server = seeded(Quirks(patch_add_refused_for=("Group",)))
    with server.client() as http:
        members = http.patch(
            "/Groups/g",
            json=patch_body({"op": "add", "path": "members", "value": [{"value": "b"}]}),
        )
        external = http.patch(
            "/Groups/g", json=patch_body({"op": "add", "path": "externalId", "value": "G1"})
        )
    assert (200, 501) == (members.status_code, external.status_code)


def test_an_add_refused_in_a_bulk_request_answers_the_bare_body() -> None:
    """In /Bulk the operation's response is the same bare body, and nothing is applied."""
    server = seeded(Quirks(patch_add_refused_for=("User",)))
    operation = {
        "method": "PATCH",
        "path": "/Users/a",
        "data": patch_body({"op": "add", "path": "title", "value": "Boss"}),
    }
    with server.client() as http:
        body = http.post("/Bulk", json={"schemas": [BULK], "Operations": [operation]}).json()
    result = body["Operations"][0]
    assert ("501", {"detail": "", "status": 501}) == (result["status"], result["response"])
    assert None is alice(server).title


# -- PATCH replace refused -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 501])
def test_replace_refused_answers_the_configured_status(status: Literal[400, 501]) -> None:
    """Every replace on a user answers the status chosen, as a SCIM error, applying nothing."""
    quirks = Quirks(patch_replace_refused_for=("User",), patch_replace_refused_status=status)
    server = seeded(quirks)
    with server.client() as http:
        response = http.patch(
            "/Users/a",
            json=patch_body(
                {"op": "add", "path": "displayName", "value": "A"},
                {"op": "replace", "path": "title", "value": "Boss"},
            ),
        )
    body = response.json()
    assert (status, [ERROR], str(status)) == (response.status_code, body["schemas"], body["status"])
    assert None is alice(server).display_name


def test_add_works_where_replace_is_refused() -> None:
    """add sets a singular attribute and adds members; replace on groups stays allowed."""
    server = seeded(Quirks(patch_replace_refused_for=("User",)))
    with server.client() as http:
        user = http.patch(
            "/Users/a", json=patch_body({"op": "add", "path": "title", "value": "Boss"})
        )
        group = http.patch(
            "/Groups/g", json=patch_body({"op": "replace", "path": "displayName", "value": "Crew"})
        )
    assert (200, "Boss", 200) == (user.status_code, user.json()["title"], group.status_code)


def test_the_replace_status_is_400_or_501() -> None:
    """Another status is a ValueError."""
    with pytest.raises(ValueError, match="patch_replace_refused_status"):
        Quirks(patch_replace_refused_status=404)  # type: ignore[arg-type]


# -- locked writes ---------------------------------------------------------------------------------


def locked_statuses(server: ScimTestServer, count: int) -> list[int]:
    """The statuses of ``count`` user creations."""
    with server.client() as http:
        return [
            http.post("/Users", json={"schemas": [USER], "userName": f"u{n}"}).status_code
            for n in range(count)
        ]


def test_locked_writes_answer_500_and_apply_nothing() -> None:
    """A locked write answers 500 {"detail": "database is locked"}; only the others are stored."""
    server = ScimTestServer(quirks=Quirks(locked_writes_rate=0.5, locked_writes_seed=3))
    with server.client() as http:
        answers = [
            http.post("/Users", json={"schemas": [USER], "userName": f"u{n}"}) for n in range(20)
        ]
    locked = [a for a in answers if a.status_code == 500]
    created = sorted(a.json()["userName"] for a in answers if a.status_code == 201)
    assert (20, [{"detail": "database is locked"}] * len(locked)) == (
        len(locked) + len(created),
        [a.json() for a in locked],
    )
    assert created == sorted(str(u.user_name) for u in server.users())
    assert 0 < len(locked) < 20


def test_locked_writes_are_drawn_from_the_seed() -> None:
    """The same seed locks the same writes; assigning the quirks again restarts the draw."""
    quirks = Quirks(locked_writes_rate=0.3, locked_writes_seed=11)
    server = ScimTestServer(quirks=quirks)
    first = locked_statuses(server, 15)
    server.reset()
    server.quirks = quirks
    again = locked_statuses(server, 15)
    assert first == again == locked_statuses(ScimTestServer(quirks=quirks), 15)


def test_every_kind_of_write_can_be_locked_and_reads_never_are() -> None:
    """With rate 1, PUT, PATCH and DELETE answer 500 and change nothing; GETs answer 200."""
    server = seeded(Quirks(locked_writes_rate=1.0))
    with server.client() as http:
        statuses = [
            http.put("/Users/a", json={"schemas": [USER], "userName": "ann"}).status_code,
            http.patch(
                "/Users/a", json=patch_body({"op": "replace", "path": "title", "value": "X"})
            ).status_code,
            http.delete("/Users/b").status_code,
            http.get("/Users").status_code,
            http.get("/Users/a").status_code,
        ]
    assert ([500, 500, 500, 200, 200], ["alice", "bob"]) == (
        statuses,
        [u.user_name for u in server.users()],
    )


def test_each_bulk_operation_draws_its_own_lock() -> None:
    """In /Bulk a locked operation answers 500 with the provider's body; the rest apply."""
    server = ScimTestServer(quirks=Quirks(locked_writes_rate=0.5, locked_writes_seed=3))
    operations = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": f"b{n}",
            "data": {"schemas": [USER], "userName": f"u{n}"},
        }
        for n in range(10)
    ]
    with server.client() as http:
        results = http.post("/Bulk", json={"schemas": [BULK], "Operations": operations}).json()
    statuses = [r["status"] for r in results["Operations"]]
    assert {"201", "500"} == set(statuses)
    assert statuses.count("201") == len(server.users())


def test_the_rate_is_a_probability() -> None:
    """A rate outside [0, 1] is a ValueError."""
    with pytest.raises(ValueError, match="locked_writes_rate must be between 0 and 1"):
        Quirks(locked_writes_rate=1.5)
