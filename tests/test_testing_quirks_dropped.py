"""Dropped attributes: a target that accepts attributes it publishes, and never keeps them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def full_user(name: str = "alice") -> dict[str, Any]:
    """A user body with title, a middle name, typed emails and a cost center."""
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": name,
        "title": "Engineer",
        "name": {"givenName": "Alice", "middleName": "M"},
        "emails": [
            {"value": "a@work.example", "type": "work", "primary": True},
            {"value": "a@home.example", "type": "home"},
        ],
        ENTERPRISE: {"costCenter": "CC1"},
    }


def kept(body: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a user answer these tests look at."""
    return {k: v for k, v in body.items() if k not in ("id", "meta", "schemas")}


@pytest.fixture
def dropping() -> Iterator[tuple[ScimTestServer, httpx.Client]]:
    """A server dropping title and emails.type, and a client to it."""
    server = ScimTestServer(quirks=Quirks(dropped_attributes=("title", "emails.type")))
    with server.client() as http:
        yield server, http


def test_a_create_answers_201_without_the_dropped_attributes(
    dropping: tuple[ScimTestServer, httpx.Client],
) -> None:
    """POST answers 201; the answer, a later GET and the store lack title and email types."""
    server, http = dropping
    created = http.post("/Users", json=full_user())
    fetched = http.get(f"/Users/{created.json()['id']}").json()
    expected = {
        "userName": "alice",
        "name": {"givenName": "Alice", "middleName": "M"},
        "emails": [
            {"value": "a@work.example", "primary": True},
            {"value": "a@home.example"},
        ],
        ENTERPRISE: {"costCenter": "CC1"},
    }
    assert (201, expected, expected) == (created.status_code, kept(created.json()), kept(fetched))
    stored = server.users()[0]
    assert (None, [None, None]) == (stored.title, [e.type for e in stored.emails or ()])


def test_a_replace_answers_200_without_the_dropped_attributes(
    dropping: tuple[ScimTestServer, httpx.Client],
) -> None:
    """PUT with a title answers 200 and keeps no title."""
    _, http = dropping
    user_id = http.post("/Users", json={"schemas": [USER], "userName": "alice"}).json()["id"]
    replaced = http.put(f"/Users/{user_id}", json=full_user())
    assert (200, False) == (replaced.status_code, "title" in replaced.json())


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "add", "path": "title", "value": "Boss"},
        {"op": "replace", "value": {"title": "Boss"}},
        {"op": "add", "value": {"TITLE": "Boss"}},
        {"op": "replace", "path": f"{USER}:title", "value": "Boss"},
    ],
    ids=["replace-path", "add-path", "replace-no-path", "add-no-path-any-case", "urn-path"],
)
def test_a_patch_setting_only_a_dropped_attribute_changes_nothing(
    dropping: tuple[ScimTestServer, httpx.Client], operation: dict[str, Any]
) -> None:
    """A PATCH whose only operation sets title answers 200 and leaves the user as it was,
    version included."""
    _, http = dropping
    created = http.post("/Users", json={"schemas": [USER], "userName": "alice"})
    patched = http.patch(f"/Users/{created.json()['id']}", json=patch_body(operation))
    assert (200, kept(created.json()), created.headers["ETag"]) == (
        patched.status_code,
        kept(patched.json()),
        patched.headers["ETag"],
    )


def test_a_patch_keeps_what_is_not_dropped(
    dropping: tuple[ScimTestServer, httpx.Client],
) -> None:
    """Of a PATCH setting title and displayName, displayName is stored; an email added
    with a type is stored without it."""
    server, http = dropping
    user_id = http.post("/Users", json={"schemas": [USER], "userName": "alice"}).json()["id"]
    patched = http.patch(
        f"/Users/{user_id}",
        json=patch_body(
            {"op": "replace", "value": {"title": "Boss", "displayName": "Alice A"}},
            {"op": "add", "path": "emails", "value": [{"value": "a@x.example", "type": "work"}]},
        ),
    )
    assert (
        200,
        {"userName": "alice", "displayName": "Alice A", "emails": [{"value": "a@x.example"}]},
    ) == (
        patched.status_code,
        kept(patched.json()),
    )
    assert None is server.users()[0].title


def test_a_value_filter_on_a_dropped_sub_attribute_finds_nothing(
    dropping: tuple[ScimTestServer, httpx.Client],
) -> None:
    """With emails.type dropped, emails[type eq "work"] matches no user, and a PATCH
    through it finds no value to change."""
    _, http = dropping
    user_id = http.post("/Users", json=full_user()).json()["id"]
    listed = http.get("/Users", params={"filter": 'emails[type eq "work"]'}).json()
    patched = http.patch(
        f"/Users/{user_id}",
        json=patch_body(
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@work.example"}
        ),
    )
    assert (0, 400, "noTarget") == (
        listed["totalResults"],
        patched.status_code,
        patched.json().get("scimType"),
    )


def test_sub_attributes_and_extension_attributes_can_be_dropped() -> None:
    """name.middleName and the enterprise costCenter, named in any case, are dropped;
    an extension left empty leaves schemas too."""
    server = ScimTestServer(
        quirks=Quirks(dropped_attributes=("NAME.middlename", f"{ENTERPRISE}:COSTCENTER"))
    )
    with server.client() as http:
        created = http.post("/Users", json=full_user()).json()
    assert ([USER], {"givenName": "Alice"}, False) == (
        created["schemas"],
        created["name"],
        ENTERPRISE in created,
    )


def test_a_dropped_user_attribute_does_not_touch_groups() -> None:
    """Dropping the User's externalId keeps a Group's; "Group:externalId" drops that one."""
    users_only = ScimTestServer(quirks=Quirks(dropped_attributes=("externalId",)))
    groups_only = ScimTestServer(quirks=Quirks(dropped_attributes=("Group:externalId",)))
    answers = []
    for server in (users_only, groups_only):
        with server.client() as http:
            user = http.post("/Users", json={"schemas": [USER], "userName": "a", "externalId": "x"})
            group = http.post(
                "/Groups", json={"schemas": [GROUP], "displayName": "g", "externalId": "y"}
            )
        answers.append((user.json().get("externalId"), group.json().get("externalId")))
    assert [(None, "y"), ("x", None)] == answers


def test_seed_data_loses_dropped_attributes() -> None:
    """Seeding stores what the target keeps, as a POST would."""
    server = ScimTestServer(
        quirks=Quirks(dropped_attributes=("title",)),
        users=[{"schemas": [USER], "userName": "alice", "title": "Boss"}],
    )
    assert None is server.users()[0].title


def test_schemas_still_publish_dropped_attributes(
    dropping: tuple[ScimTestServer, httpx.Client],
) -> None:
    """/Schemas declares title as before: nothing tells a client it is dropped."""
    _, http = dropping
    schema = http.get(f"/Schemas/{USER}").json()
    assert "title" in [a["name"] for a in schema["attributes"]]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nickname.value", "names no attribute of User"),
        ("Device:title", "no resource type 'Device'"),
        ("urn:example:params:scim:schemas:Custom:x", "names a schema no resource type"),
        ("userName", "cannot be dropped: it is readWrite and required"),
        ("groups", "cannot be dropped: it is readOnly"),
        ("Group:members.value", "cannot be dropped: it is immutable"),
    ],
)
def test_paths_that_cannot_be_dropped_are_refused(path: str, message: str) -> None:
    """A path naming nothing, or an attribute a write cannot silently lose, is a ValueError."""
    with pytest.raises(ValueError, match=message):
        Quirks(dropped_attributes=(path,))


def test_without_the_quirk_everything_is_kept() -> None:
    """Quirks() keeps title, email types, middle name and cost center."""
    with ScimTestServer().client() as http:
        created = http.post("/Users", json=full_user()).json()
    assert kept(full_user()) == kept(created)
