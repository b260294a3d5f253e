"""ScimTestServer listings: paging, sorting, projection and search (RFC 7644 §3.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync import User
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def seeded(names: list[str], **options: Any) -> ScimTestServer:
    """A server holding one user per name, in that order."""
    return ScimTestServer(users=[User(user_name=n) for n in names], **options)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client to a server with five users with varied attributes."""
    server = ScimTestServer(
        users=[
            {
                "schemas": [USER, ENTERPRISE],
                "userName": "carol",
                "title": "Boss",
                "name": {"givenName": "Carol", "familyName": "Zed"},
                "emails": [
                    {"value": "z@home.example", "type": "home"},
                    {"value": "c@work.example", "type": "work", "primary": True},
                ],
                ENTERPRISE: {"employeeNumber": "3"},
            },
            {"schemas": [USER], "userName": "Alice", "title": "guide", "password": "pw"},
            {"schemas": [USER], "userName": "bob", "emails": [{"value": "b@x.example"}]},
            {"schemas": [USER], "userName": "dave", "title": "Admin"},
            {"schemas": [USER], "userName": "erin"},
        ]
    )
    with server.client() as client:
        yield client


def names(response: httpx.Response) -> list[str]:
    """The userNames of a ListResponse, in order."""
    return [r["userName"] for r in response.json()["Resources"]]


# -- paging ---------------------------------------------------------------------------------------


def test_listing_is_a_list_response_in_creation_order(http: httpx.Client) -> None:
    """GET /Users answers a ListResponse with every user, oldest first."""
    body = http.get("/Users").json()
    assert (
        body["schemas"],
        body["totalResults"],
        body["itemsPerPage"],
        body["startIndex"],
    ) == ([LIST], 5, 5, 1)
    assert [r["userName"] for r in body["Resources"]] == ["carol", "Alice", "bob", "dave", "erin"]


@pytest.mark.parametrize(
    ("params", "expected", "items", "start"),
    [
        ({"startIndex": "2", "count": "2"}, ["Alice", "bob"], 2, 2),
        ({"startIndex": "5", "count": "10"}, ["erin"], 1, 5),
        ({"startIndex": "6"}, [], 0, 6),
        ({"startIndex": "0", "count": "1"}, ["carol"], 1, 1),
        ({"startIndex": "-3", "count": "1"}, ["carol"], 1, 1),
        ({"count": "0"}, [], 0, 1),
        ({"count": "-1"}, [], 0, 1),
    ],
)
def test_paging_parameters(
    http: httpx.Client, params: dict[str, str], expected: list[str], items: int, start: int
) -> None:
    """startIndex is 1-based (below 1 reads as 1), count caps the page (negative: 0)."""
    body = http.get("/Users", params=params).json()
    assert (expected, 5, items, start) == (
        [r["userName"] for r in body["Resources"]],
        body["totalResults"],
        body["itemsPerPage"],
        body["startIndex"],
    )


def test_default_and_maximum_page_sizes() -> None:
    """Without count the default page size applies; a larger count is capped at the maximum."""
    server = seeded([f"u{i:02d}" for i in range(12)], default_page_size=5, max_page_size=8)
    with server.client() as client:
        default = client.get("/Users").json()
        capped = client.get("/Users", params={"count": "100"}).json()
        config = client.get("/ServiceProviderConfig").json()
    assert (
        default["itemsPerPage"],
        capped["itemsPerPage"],
        default["totalResults"],
        capped["totalResults"],
    ) == (5, 8, 12, 12)
    assert config["filter"]["maxResults"] == 8


@pytest.mark.parametrize("params", [{"startIndex": "one"}, {"count": "1.5"}])
def test_non_integer_paging_is_400(http: httpx.Client, params: dict[str, str]) -> None:
    """Paging parameters that are not integers answer 400 invalidValue."""
    response = http.get("/Users", params=params)
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidValue")


@settings(max_examples=30, deadline=None)
@given(total=st.integers(0, 30), count=st.integers(1, 35))
def test_walking_the_pages_visits_every_user_once(total: int, count: int) -> None:
    """Advancing startIndex by itemsPerPage until totalResults lists each user exactly once."""
    server = seeded([f"user{i}" for i in range(total)])
    seen: list[str] = []
    start = 1
    with server.client() as client:
        while True:
            page = client.get("/Users", params={"startIndex": start, "count": count}).json()
            assert total == page["totalResults"]
            seen.extend(r["userName"] for r in page["Resources"])
            if not page["Resources"] or start + page["itemsPerPage"] > total:
                break
            start += page["itemsPerPage"]
    assert [f"user{i}" for i in range(total)] == seen


# -- sorting --------------------------------------------------------------------------------------


def test_sort_by_user_name_is_case_insensitive(http: httpx.Client) -> None:
    """userName is caseExact false: it sorts without regard to case."""
    ascending = http.get("/Users", params={"sortBy": "userName"})
    descending = http.get("/Users", params={"sortBy": "userName", "sortOrder": "descending"})
    assert names(ascending) == ["Alice", "bob", "carol", "dave", "erin"]
    assert names(descending) == ["erin", "dave", "carol", "bob", "Alice"]


def test_missing_values_sort_last_ascending_and_first_descending(http: httpx.Client) -> None:
    """Resources without the sortBy attribute come last ascending, first descending."""
    ascending = names(http.get("/Users", params={"sortBy": "title"}))
    descending = names(http.get("/Users", params={"sortBy": "title", "sortOrder": "DESCENDING"}))
    assert ascending == ["dave", "carol", "Alice", "bob", "erin"]
    assert descending == ["bob", "erin", "Alice", "carol", "dave"]


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("emails", ["bob", "carol"]),
        ("emails.value", ["bob", "carol"]),
        ("name.givenName", ["carol"]),
        (f"{ENTERPRISE}:employeeNumber", ["carol"]),
        (f"{USER}:userName", ["Alice", "bob", "carol", "dave", "erin"]),
        ("USERNAME", ["Alice", "bob", "carol", "dave", "erin"]),
    ],
)
def test_sort_by_paths(http: httpx.Client, sort_by: str, expected: list[str]) -> None:
    """sortBy takes sub-attributes, multi-valued attributes (by primary), URN-qualified paths."""
    sorted_names = names(http.get("/Users", params={"sortBy": sort_by}))
    assert expected == sorted_names[: len(expected)]


def test_sort_by_unknown_attribute_keeps_the_order(http: httpx.Client) -> None:
    """An attribute no resource has leaves the order as it was."""
    assert names(http.get("/Users", params={"sortBy": "nope"})) == [
        "carol",
        "Alice",
        "bob",
        "dave",
        "erin",
    ]


def test_bad_sort_order_is_400(http: httpx.Client) -> None:
    """sortOrder other than ascending/descending answers 400 invalidValue."""
    response = http.get("/Users", params={"sortBy": "userName", "sortOrder": "up"})
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidValue")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text("abcABC", min_size=1, max_size=4), unique_by=str.casefold, max_size=12))
def test_sorting_matches_casefolded_order(user_names: list[str]) -> None:
    """For any userNames, sortBy=userName gives them in casefolded order."""
    with seeded(user_names).client() as client:
        listed = names(client.get("/Users", params={"sortBy": "userName"}))
    assert sorted(user_names, key=str.casefold) == listed


# -- projection -----------------------------------------------------------------------------------


def test_attributes_keeps_only_what_is_asked_plus_id_and_schemas(http: httpx.Client) -> None:
    """attributes=... returns those attributes and those always returned."""
    body = http.get("/Users", params={"attributes": "userName,name.givenName", "count": "1"}).json()
    assert [{"schemas": [USER, ENTERPRISE], "id": body["Resources"][0]["id"], "userName": "carol",
             "name": {"givenName": "Carol"}}] == body["Resources"]  # fmt: skip


def test_attributes_on_multi_valued_sub_attributes_and_extensions(http: httpx.Client) -> None:
    """emails.value keeps only that sub-attribute of each email; URN paths pick extensions."""
    first = http.get(
        "/Users",
        params={"attributes": f"emails.value,{ENTERPRISE}:employeeNumber,{USER}:title", "count": 1},
    ).json()["Resources"][0]
    assert (first["emails"], first[ENTERPRISE], first["title"]) == (
        [{"value": "z@home.example"}, {"value": "c@work.example"}],
        {"employeeNumber": "3"},
        "Boss",
    )
    whole = http.get("/Users", params={"attributes": ENTERPRISE, "count": 1}).json()
    assert whole["Resources"][0][ENTERPRISE] == {"employeeNumber": "3"}


def test_excluded_attributes_drops_them_but_never_id(http: httpx.Client) -> None:
    """excludedAttributes removes attributes and sub-attributes; id and schemas stay."""
    first = http.get(
        "/Users", params={"excludedAttributes": "title,emails.type,id,meta", "count": 1}
    ).json()["Resources"][0]
    assert ("title" in first, "meta" in first, "id" in first, "schemas" in first) == (
        False,
        False,
        True,
        True,
    )
    assert first["emails"] == [
        {"value": "z@home.example"},
        {"value": "c@work.example", "primary": True},
    ]


def test_projection_applies_to_single_resources(http: httpx.Client) -> None:
    """GET by id honours attributes; the password is never returned even when asked."""
    user_id = http.get("/Users", params={"count": 1, "startIndex": 2}).json()["Resources"][0]["id"]
    body = http.get(f"/Users/{user_id}", params={"attributes": "userName,password"}).json()
    assert {"schemas": [USER], "id": user_id, "userName": "Alice"} == body


def test_projection_applies_to_write_answers(http: httpx.Client) -> None:
    """POST honours attributes in its answer too."""
    response = http.post(
        "/Users", params={"attributes": "userName"}, json={"schemas": [USER], "userName": "zed"}
    )
    assert list(response.json()) == ["schemas", "id", "userName"]


def test_unknown_attributes_in_projection_select_nothing(http: httpx.Client) -> None:
    """attributes naming nothing known returns only what is always returned."""
    first = http.get("/Users", params={"attributes": "nope,name.nope", "count": 1}).json()
    assert list(first["Resources"][0]) == ["schemas", "id"]


def test_attributes_and_excluded_attributes_together_is_400(http: httpx.Client) -> None:
    """The two parameters are mutually exclusive."""
    response = http.get("/Users", params={"attributes": "userName", "excludedAttributes": "title"})
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidValue")


# -- search ---------------------------------------------------------------------------------------


def test_search_with_post_pages_sorts_and_projects(http: httpx.Client) -> None:
    """POST /Users/.search takes the same parameters in its body."""
    response = http.post(
        "/Users/.search",
        json={
            "schemas": [SEARCH],
            "sortBy": "userName",
            "sortOrder": "descending",
            "startIndex": 2,
            "count": 2,
            "attributes": ["userName"],
        },
    )
    body = response.json()
    assert (
        response.status_code,
        body["totalResults"],
        body["itemsPerPage"],
        [r["userName"] for r in body["Resources"]],
    ) == (200, 5, 2, ["dave", "carol"])
    assert list(body["Resources"][0]) == ["schemas", "id", "userName"]


def test_search_at_the_root_spans_users_and_groups(http: httpx.Client) -> None:
    """POST /.search returns resources of every type, each in its own representation."""
    http.post("/Groups", json={"schemas": [GROUP], "displayName": "Team"})
    body = http.post("/.search", json={"schemas": [SEARCH], "excludedAttributes": ["meta"]}).json()
    kinds = [r["schemas"][0] for r in body["Resources"]]
    assert (body["totalResults"], kinds) == (6, [USER] * 5 + [GROUP])


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"count": 1}, "invalidSyntax"),
        ({"schemas": [SEARCH], "count": "many"}, "invalidValue"),
        ({"schemas": [USER]}, "invalidSyntax"),
        ([], "invalidSyntax"),
    ],
    ids=["no-schemas", "bad-count", "wrong-schema", "not-an-object"],
)
def test_bad_search_bodies_are_400(http: httpx.Client, body: Any, scim_type: str) -> None:
    """A search body that is not a SearchRequest answers 400."""
    response = http.post("/Users/.search", json=body)
    assert (400, scim_type) == (response.status_code, response.json()["scimType"])


# -- filtering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ALICE"', ["Alice"]),
        ('title co "o"', ["carol"]),
        ('title pr and not (title eq "boss")', ["Alice", "dave"]),
        ('emails[type eq "work" and value ew "@work.example"]', ["carol"]),
        (f'{ENTERPRISE}:employeeNumber eq "3"', ["carol"]),
        ('meta.resourceType eq "User" and userName sw "d"', ["dave"]),
        ('userName eq "nobody"', []),
    ],
)
def test_filter_selects_matching_users(http: httpx.Client, text: str, expected: list[str]) -> None:
    """GET /Users?filter= returns exactly the users the filter matches (caseExact honoured)."""
    body = http.get("/Users", params={"filter": text}).json()
    assert ([r["userName"] for r in body["Resources"]], body["totalResults"]) == (
        expected,
        len(expected),
    )


def test_filter_combines_with_sorting_and_paging(http: httpx.Client) -> None:
    """totalResults counts every match; the page is cut after sorting."""
    body = http.get(
        "/Users",
        params={"filter": "title pr", "sortBy": "title", "startIndex": 2, "count": 1},
    ).json()
    assert (body["totalResults"], body["itemsPerPage"], names_of(body)) == (3, 1, ["carol"])


def test_filter_on_the_computed_user_groups(http: httpx.Client) -> None:
    """groups.value filters on memberships, which the server computes."""
    bob = http.get("/Users", params={"filter": 'userName eq "bob"'}).json()["Resources"][0]
    group = http.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Team", "members": [{"value": bob["id"]}]},
    ).json()
    body = http.get("/Users", params={"filter": f'groups.value eq "{group["id"]}"'}).json()
    assert names_of(body) == ["bob"]
    members = http.get("/Groups", params={"filter": f'members.value eq "{bob["id"]}"'}).json()
    assert [g["displayName"] for g in members["Resources"]] == ["Team"]


def test_filter_in_a_search_across_types(http: httpx.Client) -> None:
    """POST /.search filters users and groups, each with its own schema."""
    http.post("/Groups", json={"schemas": [GROUP], "displayName": "Alice fans"})
    body = http.post(
        "/.search",
        json={"schemas": [SEARCH], "filter": 'userName sw "a" or displayName sw "a"'},
    ).json()
    assert [(r.get("userName"), r.get("displayName")) for r in body["Resources"]] == [
        ("Alice", None),
        (None, "Alice fans"),
    ]


@pytest.mark.parametrize(
    "text", ["userName eq", "userName xx 1", "(title pr", 'emails[type eq "w"']
)
def test_invalid_filters_are_400_invalid_filter(http: httpx.Client, text: str) -> None:
    """A filter that does not parse answers 400 invalidFilter, for GET and for POST .search."""
    response = http.get("/Users", params={"filter": text})
    search = http.post("/Users/.search", json={"schemas": [SEARCH], "filter": text})
    assert [(r.status_code, r.json()["scimType"]) for r in (response, search)] == [
        (400, "invalidFilter")
    ] * 2


def names_of(body: dict[str, Any]) -> list[str]:
    """The userNames in a ListResponse body."""
    return [r["userName"] for r in body["Resources"]]
