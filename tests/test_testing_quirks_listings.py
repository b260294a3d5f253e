"""Listings of a target that leaves out what RFC 7644 §3.4.2 asks for: ``totalResults``
missing from discovery and resource listings, filters on some attributes refused or ignored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def seeded(quirks: Quirks) -> ScimTestServer:
    """A server with the quirks, users a (externalId E1) and b (E2), group g (G1)."""
    return ScimTestServer(
        quirks=quirks,
        users=[
            {
                "schemas": [USER],
                "id": "a",
                "userName": "alice",
                "externalId": "E1",
                "emails": [{"value": "a@example.com", "type": "work"}],
            },
            {"schemas": [USER], "id": "b", "userName": "bob", "externalId": "E2"},
        ],
        groups=[{"schemas": [GROUP], "id": "g", "displayName": "Team", "externalId": "G1"}],
    )


def listing_keys(body: dict[str, Any]) -> list[str]:
    """The keys of a ListResponse other than Resources."""
    return sorted(key for key in body if key != "Resources")


# -- totalResults ----------------------------------------------------------------------------------


def test_discovery_listings_without_total_results() -> None:
    """/Schemas and /ResourceTypes answer without totalResults, with every resource;
    resource listings keep it."""
    with seeded(Quirks(discovery_total_results=False)).client() as http:
        schemas = http.get("/Schemas").json()
        types = http.get("/ResourceTypes").json()
        users = http.get("/Users").json()
    assert (
        ["itemsPerPage", "schemas", "startIndex"],
        ["itemsPerPage", "schemas", "startIndex"],
        3,
        2,
        2,
    ) == (
        listing_keys(schemas),
        listing_keys(types),
        len(schemas["Resources"]),
        len(types["Resources"]),
        users["totalResults"],
    )


def test_resource_listings_without_total_results() -> None:
    """GET /Users, GET /Groups and both searches answer without totalResults; discovery
    keeps it."""
    with seeded(Quirks(listing_total_results=False)).client() as http:
        bodies = [
            http.get("/Users").json(),
            http.get("/Groups").json(),
            http.post("/Users/.search", json={"schemas": [SEARCH]}).json(),
            http.post("/.search", json={"schemas": [SEARCH]}).json(),
        ]
        schemas = http.get("/Schemas").json()
    assert (
        [["itemsPerPage", "schemas", "startIndex"]] * 4,
        [2, 1, 2, 3],
        3,
    ) == (
        [listing_keys(b) for b in bodies],
        [len(b["Resources"]) for b in bodies],
        schemas["totalResults"],
    )


@pytest.mark.integration
def test_listings_without_total_results_over_http() -> None:
    """Over HTTP too, paged listings and /Schemas come without totalResults."""
    quirks = Quirks(discovery_total_results=False, listing_total_results=False)
    with seeded(quirks) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        page = http.get("/Users", params={"count": 1, "startIndex": 2}).json()
        schemas = http.get("/Schemas").json()
    assert (["itemsPerPage", "schemas", "startIndex"], ["b"], 2, False) == (
        listing_keys(page),
        [r["id"] for r in page["Resources"]],
        page["startIndex"],
        "totalResults" in schemas,
    )


# -- unfilterable attributes -----------------------------------------------------------------------


@pytest.fixture
def refusing() -> Iterator[httpx.Client]:
    """A client to a server answering 400 to filters on the users' externalId."""
    with seeded(Quirks(unfilterable_attributes=("externalId",))).client() as http:
        yield http


@pytest.mark.parametrize(
    "text",
    [
        'externalId eq "E1"',
        'EXTERNALID eq "E1"',
        f'{USER}:externalId eq "E1"',
        'userName eq "bob" or externalId eq "E1"',
        "not (externalId pr)",
    ],
    ids=["plain", "any-case", "urn", "in-or", "in-not"],
)
def test_a_filter_on_an_unfilterable_attribute_is_400(refusing: httpx.Client, text: str) -> None:
    """Wherever the filter names externalId, GET /Users answers 400 invalidFilter."""
    response = refusing.get("/Users", params={"filter": text})
    assert (400, "invalidFilter") == (response.status_code, response.json()["scimType"])


def test_a_search_on_an_unfilterable_attribute_is_400(refusing: httpx.Client) -> None:
    """POST /Users/.search with the filter answers the same 400."""
    response = refusing.post(
        "/Users/.search", json={"schemas": [SEARCH], "filter": 'externalId eq "E1"'}
    )
    assert (400, "invalidFilter") == (response.status_code, response.json()["scimType"])


def test_the_filter_is_refused_when_nothing_is_stored() -> None:
    """The refusal depends on the filter, not on what the listing holds."""
    with ScimTestServer(quirks=Quirks(unfilterable_attributes=("externalId",))).client() as http:
        response = http.get("/Users", params={"filter": 'externalId eq "E1"'})
    assert 400 == response.status_code


def test_other_filters_still_work(refusing: httpx.Client) -> None:
    """userName filters work; Groups still filter on their own externalId."""
    users = refusing.get("/Users", params={"filter": 'userName eq "bob"'}).json()
    groups = refusing.get("/Groups", params={"filter": 'externalId eq "G1"'}).json()
    assert (["b"], ["g"]) == (
        [r["id"] for r in users["Resources"]],
        [r["id"] for r in groups["Resources"]],
    )


def test_an_ignored_filter_lists_everything() -> None:
    """In "ignore" mode the filter on externalId is dropped: every user comes back, with
    totalResults to match."""
    quirks = Quirks(unfilterable_attributes=("externalId",), unsupported_filter_answer="ignore")
    with seeded(quirks).client() as http:
        body = http.get("/Users", params={"filter": 'externalId eq "E1"'}).json()
    assert (2, ["a", "b"]) == (body["totalResults"], [r["id"] for r in body["Resources"]])


def test_an_ignored_filter_still_applies_to_the_types_that_support_it() -> None:
    """Searching users and groups at once with an unfilterable users' externalId lists
    every user and only the groups that match."""
    quirks = Quirks(unfilterable_attributes=("externalId",), unsupported_filter_answer="ignore")
    with seeded(quirks).client() as http:
        body = http.post(
            "/.search", json={"schemas": [SEARCH], "filter": 'externalId eq "nothing"'}
        ).json()
    assert ["a", "b"] == [r["id"] for r in body["Resources"]]


@pytest.mark.parametrize(
    ("unfilterable", "text", "expected"),
    [
        ("emails.type", 'emails[type eq "work"]', 400),
        ("emails.type", 'emails.type eq "work"', 400),
        ("emails.type", 'emails.value eq "a@example.com"', 200),
        ("emails", 'emails[type eq "work"]', 400),
        ("emails", 'emails.value eq "a@example.com"', 400),
        ("Group:externalId", 'externalId eq "E1"', 200),
    ],
)
def test_sub_attributes_and_resource_types_are_told_apart(
    unfilterable: str, text: str, expected: int
) -> None:
    """A sub-attribute covers itself only; a whole attribute covers its sub-attributes
    and value filters; "Group:" leaves users alone."""
    with seeded(Quirks(unfilterable_attributes=(unfilterable,))).client() as http:
        response = http.get("/Users", params={"filter": text})
    assert expected == response.status_code


def test_unknown_answers_and_paths_are_refused() -> None:
    """Only "400" and "ignore" are answers; a path must name an attribute."""
    with pytest.raises(ValueError, match="unsupported_filter_answer"):
        Quirks(unsupported_filter_answer="500")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names no attribute of User"):
        Quirks(unfilterable_attributes=("externalid.value",))
