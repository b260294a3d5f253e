"""Paging quirks: the server pages like real providers that depart from RFC 7644 §3.4.2.4."""

from __future__ import annotations

from typing import Any

import pytest

from scimsync.testing import Quirks, ScimTestServer

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def five_users(quirks: Quirks) -> ScimTestServer:
    """A server with the quirks and five users u1..u5, in that order."""
    return ScimTestServer(
        quirks=quirks,
        users=[{"schemas": [USER], "id": f"u{i}", "userName": f"user{i}"} for i in range(1, 6)],
    )


def page(server: ScimTestServer, **params: Any) -> tuple[int, int, int, list[str]]:
    """GET /Users with ``params``: (totalResults, itemsPerPage, startIndex, ids)."""
    with server.client() as http:
        body = http.get("/Users", params=params).json()
    return (
        body["totalResults"],
        body["itemsPerPage"],
        body["startIndex"],
        [r["id"] for r in body["Resources"]],
    )


# -- itemsPerPage echoing count --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "expected"),
    [
        (Quirks(), (5, 1, 5, ["u5"])),
        (Quirks(items_per_page_echoes_count=True), (5, 2, 5, ["u5"])),
    ],
    ids=["rfc", "quirk"],
)
def test_items_per_page_echoes_the_count_asked_for(
    quirks: Quirks, expected: tuple[int, int, int, list[str]]
) -> None:
    """On the last page (one resource left), itemsPerPage says 2, as asked, with the quirk."""
    assert expected == page(five_users(quirks), startIndex=5, count=2)


def test_without_count_items_per_page_echoes_the_default_page_size() -> None:
    """No count asked: itemsPerPage is the default page size, not the five resources held."""
    server = ScimTestServer(
        quirks=Quirks(items_per_page_echoes_count=True),
        default_page_size=50,
        users=[{"schemas": [USER], "userName": f"user{i}"} for i in range(5)],
    )
    total, items_per_page, _, ids = page(server)
    assert (5, 50, 5) == (total, items_per_page, len(ids))


def test_items_per_page_echo_applies_to_searches() -> None:
    """POST /.search answers with the same echo as GET."""
    server = five_users(Quirks(items_per_page_echoes_count=True))
    with server.client() as http:
        body = http.post(
            "/Users/.search", json={"schemas": [SEARCH], "startIndex": 4, "count": 10}
        ).json()
    assert (10, ["u4", "u5"]) == (body["itemsPerPage"], [r["id"] for r in body["Resources"]])


# -- startIndex past the end -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "expected"),
    [
        (Quirks(), (5, 0, 9, [])),
        (Quirks(start_index_past_end_restarts=True), (5, 2, 9, ["u1", "u2"])),
    ],
    ids=["rfc", "quirk"],
)
def test_a_start_index_past_the_end_starts_over(
    quirks: Quirks, expected: tuple[int, int, int, list[str]]
) -> None:
    """startIndex 9 of 5: an empty page by the RFC, the first page again with the quirk."""
    assert expected == page(five_users(quirks), startIndex=9, count=2)


def test_start_index_inside_the_listing_is_honoured_with_the_restart_quirk() -> None:
    """Only a startIndex past the last resource starts over; 5 of 5 is the last one."""
    server = five_users(Quirks(start_index_past_end_restarts=True))
    assert (["u5"], ["u1", "u2"]) == (
        page(server, startIndex=5, count=2)[3],
        page(server, startIndex=6, count=2)[3],
    )


def test_an_empty_listing_stays_empty_with_the_restart_quirk() -> None:
    """Nothing to start over with: a filter matching nothing answers no resources."""
    server = five_users(Quirks(start_index_past_end_restarts=True))
    assert (0, 0, 3, []) == page(server, filter='userName eq "nobody"', startIndex=3)


# -- default page size and a silent cap on count ---------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected_ids"),
    [
        ({}, ["u1", "u2"]),
        ({"count": 10}, ["u1", "u2"]),
        ({"count": 1}, ["u1"]),
        ({"startIndex": 3, "count": 1000}, ["u3", "u4"]),
    ],
    ids=["no-count", "count-above", "count-below", "later-page"],
)
def test_the_page_size_cap_bounds_every_page(
    params: dict[str, int], expected_ids: list[str]
) -> None:
    """With page_size_cap=2, pages hold at most two resources, whatever count asks."""
    assert expected_ids == page(five_users(Quirks(page_size_cap=2)), **params)[3]


def test_the_page_size_cap_is_not_announced() -> None:
    """filter.maxResults still says 1000: the cap is silent, as on the providers that have it."""
    server = five_users(Quirks(page_size_cap=20))
    with server.client() as http:
        config = http.get("/ServiceProviderConfig").json()
    assert 1000 == config["filter"]["maxResults"]


def test_a_default_page_size_of_twenty() -> None:
    """The legacy profile's cap: 45 users, no count, 20 come back and 45 are announced."""
    server = ScimTestServer(
        quirks=Quirks(page_size_cap=20),
        users=[{"schemas": [USER], "userName": f"user{i:02d}"} for i in range(45)],
    )
    total, items_per_page, _, ids = page(server)
    assert (45, 20, 20) == (total, items_per_page, len(ids))
