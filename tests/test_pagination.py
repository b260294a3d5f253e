"""Pagination against servers that misbehave the way real ones do.

Pinned: startIndex advances by what was returned; duplicates are dropped; the listing
always ends; a short listing is reported incomplete, never as a smaller truth.
"""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _mock_target import BASE, MockTarget, json_response
from scimsync import User
from scimsync.client import PagedListing, Paginator, ScimClient
from scimsync.errors import ConfigurationError, IncompleteListingError, InvalidResponseError
from scimsync.models import ListResponse
from scimsync.retry import RetryPolicy


@attrs.define
class PagedServer:
    """A /Users listing with the quirks of real servers, switchable one by one."""

    ids: list[str]
    max_page: int = 1000
    """The server's own page cap (it ignores larger ``count`` values silently)."""
    echo_count: bool = False
    """``itemsPerPage`` echoes the requested count instead of what was returned."""
    ignore_start_index: bool = False
    restart_past_end: bool = False
    """A startIndex past the end answers the first page again."""
    overlap: int = 0
    """Each page after the first starts this many resources early (duplicates)."""
    extra_total: int = 0
    """Announce this many more resources than exist."""
    delete_after_first_page: int = 0
    omit_total: bool = False
    """Leave ``totalResults`` out, as some targets do."""
    total_is: str = "count"
    """What ``totalResults`` says: the count (``"count"``), the size of the page
    (``"page"``) or 0 (``"zero"``), as some targets do."""
    requests: list[tuple[int, int]] = attrs.field(factory=list)

    def page(self, start_index: int, count: int) -> dict[str, Any]:
        self.requests.append((start_index, count))
        if len(self.requests) == 2 and self.delete_after_first_page:
            del self.ids[: self.delete_after_first_page]
        start = 1 if self.ignore_start_index else start_index
        if self.restart_past_end and start > len(self.ids):
            start = 1
        if start > 1:
            start = max(1, start - self.overlap)
        chunk = self.ids[start - 1 : start - 1 + min(count, self.max_page)]
        page = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": {
                "count": len(self.ids) + self.extra_total,
                "page": len(chunk),
                "zero": 0,
            }[self.total_is],
            "itemsPerPage": count if self.echo_count else len(chunk),
            "startIndex": start_index,
            "Resources": [{"id": i, "userName": f"user-{i}"} for i in chunk],
        }
        if self.omit_total:
            del page["totalResults"]
        return page

    def handler(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        return json_response(200, self.page(int(params["startIndex"]), int(params["count"])))


def _client(server: PagedServer) -> ScimClient:
    target = MockTarget()
    target.on("GET", "/v2/Users", server.handler)
    return ScimClient(
        BASE, http=httpx.Client(transport=target.transport()), retry=RetryPolicy.never()
    )


def _ids(n: int) -> list[str]:
    return [f"id-{i:04d}" for i in range(n)]


# -- the real servers' quirks ---------------------------------------------------------------------


def test_server_page_cap_and_echoed_items_per_page() -> None:
    """A server capping pages at 20 and echoing count=100 is still listed whole."""
    server = PagedServer(_ids(45), max_page=20, echo_count=True)
    listing = _client(server).list_all(User, page_size=100)
    assert (True, 45, 3) == (listing.complete, len(listing), listing.pages)
    assert [1, 21, 41] == [start for start, _ in server.requests]


def test_duplicates_across_pages_are_dropped() -> None:
    """Overlapping pages yield each resource once."""
    server = PagedServer(_ids(30), max_page=10, overlap=2)
    listing = _client(server).list_all(User, page_size=10)
    assert _ids(30) == [u.id for u in listing]
    assert True is listing.complete


def test_a_server_ignoring_start_index_gives_an_incomplete_listing() -> None:
    """The same first page again stops the listing, reported as incomplete."""
    server = PagedServer(_ids(50), max_page=20, ignore_start_index=True)
    listing = _client(server).list_all(User, page_size=20)
    assert (False, 20, 2) == (listing.complete, len(listing), listing.pages)
    assert "held only resources already listed after 20 of 50" in (listing.problem or "")


def test_a_server_announcing_more_than_it_has_gives_an_incomplete_listing() -> None:
    """totalResults above what the pages hold ends at an empty page: incomplete."""
    server = PagedServer(_ids(12), max_page=5, extra_total=3)
    listing = _client(server).list_all(User, page_size=5)
    assert (False, 12, 15) == (listing.complete, len(listing), listing.total_results)
    assert "empty" in (listing.problem or "")


@pytest.mark.parametrize("total_is", ["page", "zero"])
@pytest.mark.parametrize(("size", "max_page"), [(45, 20), (30, 20), (45, 10), (10, 10), (7, 10)])
def test_a_total_that_counts_the_page_or_nothing_is_read_past(
    total_is: str, size: int, max_page: int
) -> None:
    """totalResults of the page (or 0) while pages hold more: the listing reads on to
    the end of the pages and says the count was wrong, never stops at the first page.
    (A page cap below the count asked for is not mistaken for the end either.)"""
    server = PagedServer(_ids(size), max_page=max_page, total_is=total_is)
    listing = _client(server).list_all(User, page_size=25)
    assert (True, _ids(size)) == (listing.complete, [u.id for u in listing])
    wrong = size > {"page": max_page, "zero": 0}[total_is]
    assert wrong == any("counts the whole result" in d for d in listing.deviations)


def test_a_full_page_reaching_the_total_asks_for_one_more() -> None:
    """An exact count, a last page as full as asked: one more request sees it is the
    end. A count that stopped at a cap while the target holds more is read past."""
    server = PagedServer(_ids(20))
    listing = _client(server).list_all(User, page_size=10)
    assert (True, 20, [1, 11, 21]) == (
        listing.complete,
        len(listing),
        [start for start, _ in server.requests],
    )
    assert () == listing.deviations
    capped = PagedServer(_ids(30), extra_total=-10)  # a count capped at 20
    listing = _client(capped).list_all(User, page_size=10)
    assert (True, _ids(30)) == (listing.complete, [u.id for u in listing])


def test_an_error_on_the_page_past_a_count_reached_ends_a_whole_listing() -> None:
    """A target answering 400 to a startIndex past its count: the page asked for to
    check the count is not there to read, and the listing, which holds every resource
    announced, is complete, saying so. An error on any other page leaves it incomplete."""

    def past_end_refused(request: httpx.Request) -> httpx.Response:
        if int(request.url.params["startIndex"]) > 3:
            return json_response(400, {"detail": "startIndex out of range"})
        return json_response(200, PagedServer(_ids(3)).page(1, 100))

    target = MockTarget()
    target.on("GET", "/v2/Users", past_end_refused)
    client = ScimClient(
        BASE, http=httpx.Client(transport=target.transport()), retry=RetryPolicy.never()
    )
    listing = client.list_all(User)
    assert (True, 3) == (listing.complete, len(listing))
    assert any("past totalResults answered an error" in d for d in listing.deviations)
    pager: Paginator[dict[str, Any]] = Paginator(2)
    pager.feed(ListResponse(total_results=5, resources=[{"id": "a"}, {"id": "b"}]))
    pager.fail(RuntimeError("HTTP 500"))
    assert (True, False) == (pager.done, pager.complete)


def test_a_lookup_by_filter_is_not_checked_past_its_first_page() -> None:
    """A filtered lookup reaching totalResults on a first page that is not full is the
    whole answer: no request more (lookups are many; a whole listing is checked)."""
    server = PagedServer(_ids(3))
    listing = _client(server).find(User, 'userName eq "user-id-0000"')
    assert (True, 1) == (listing.complete, len(server.requests))
    whole = PagedServer(_ids(3))
    listing = _client(whole).list_all(User)
    assert (True, 2) == (listing.complete, len(whole.requests))


def test_past_the_end_restarting_never_loops() -> None:
    """A server answering pages past the end with the first page again is stopped."""
    server = PagedServer(_ids(12), max_page=5, extra_total=1, restart_past_end=True)
    listing = _client(server).list_all(User, page_size=5)
    assert (False, 12, 4) == (listing.complete, len(listing), listing.pages)


def test_deletions_during_the_listing_make_it_incomplete() -> None:
    """Resources removed mid-listing shift the pages: what is missed is flagged."""
    server = PagedServer(_ids(30), max_page=10, delete_after_first_page=5)
    listing = _client(server).list_all(User, page_size=10)
    # ids 10-14 slid onto page 1 after it was read: the count adds up, yet they were missed.
    assert False is listing.complete
    assert 25 == listing.total_results
    assert "totalResults went from 30 to 25" in (listing.problem or "")


def test_iter_all_raises_after_the_last_resource_of_an_incomplete_listing() -> None:
    """Streaming consumers get every resource, then IncompleteListingError."""
    server = PagedServer(_ids(50), max_page=20, ignore_start_index=True)
    seen: list[str] = []

    def consume() -> None:
        seen.extend(user.id or "" for user in _client(server).iter_all(User, page_size=20))

    with pytest.raises(IncompleteListingError) as caught:
        consume()
    assert 20 == len(seen)
    assert (20, 50) == (caught.value.listed, caught.value.total_results)


def test_iter_all_of_a_whole_listing_ends_quietly() -> None:
    """A complete listing iterates to its end without error."""
    server = PagedServer(_ids(7), max_page=3)
    assert _ids(7) == [u.id for u in _client(server).iter_all(User, page_size=3)]


def test_require_complete_raises_for_short_listings() -> None:
    """``PagedListing.require_complete`` turns the flag into an exception, for callers
    who prefer one."""
    short = PagedListing(
        resources=(1, 2), complete=False, total_results=3, pages=2, problem="short"
    )
    whole = PagedListing(resources=(1, 2), complete=True, total_results=2, pages=1)
    assert whole is whole.require_complete()
    with pytest.raises(IncompleteListingError):
        short.require_complete()


def test_an_empty_target_is_a_complete_empty_listing() -> None:
    """totalResults 0 without Resources is a real, complete, empty listing."""
    target = MockTarget()
    target.on("GET", "/v2/Users", json_response(200, {"totalResults": 0}))
    client = ScimClient(BASE, http=httpx.Client(transport=target.transport()))
    listing = client.list_all(User)
    assert (True, 0, 1) == (listing.complete, len(listing), listing.pages)


@pytest.mark.parametrize(
    "body",
    [
        {"totalResults": 3},
        {"totalResults": "3", "Resources": []},
        {"totalResults": -1, "Resources": []},
        {"totalResults": 1, "Resources": [{"userName": "no-id"}]},
        {"itemsPerPage": 0},
        {"Resources": ["not an object"]},
    ],
)
def test_malformed_pages_are_errors_never_empty(body: dict[str, Any]) -> None:
    """No Resources for a non-zero total, a string or negative total, a resource without id,
    neither totalResults nor Resources, or Resources that are not objects."""
    target = MockTarget()
    target.on("GET", "/v2/Users", json_response(200, body))
    client = ScimClient(BASE, http=httpx.Client(transport=target.transport()))
    with pytest.raises(InvalidResponseError):
        client.list_all(User)


# -- the paginator as a pure state machine --------------------------------------------------------


def _run_endless(
    pager: Paginator[dict[str, Any]], total: int, fresh_per_page: int = 10
) -> list[dict[str, Any]]:
    """Pages of 10 with ``fresh_per_page`` ids never seen before, forever, announcing ``total``."""
    listed: list[dict[str, Any]] = []
    serial = 0
    while not pager.done:
        resources = []
        for _ in range(fresh_per_page):
            serial += 1
            resources.append({"id": f"id-{serial}"})
        resources += [{"id": "id-1"}] * (10 - fresh_per_page)
        listed += pager.feed(ListResponse(total_results=total, resources=resources))
        assert pager.pages <= 10_000, "the paginator did not stop"
    return listed


def test_new_ids_forever_stop_at_the_given_page_limit() -> None:
    """totalResults 10**9 and new ids on every page: stopped at max_pages, incomplete."""
    pager: Paginator[dict[str, Any]] = Paginator(10, max_pages=5)
    listed = _run_endless(pager, 10**9)
    assert (5, 50, False) == (pager.pages, len(listed), pager.complete)
    assert (
        "stopped at the limit of 5 pages (as given) with 50 resources listed of 1000000000 "
        "announced: set max_listing_pages on the client (max_pages of a Paginator) to list "
        "further"
    ) == pager.problem


def test_new_ids_forever_stop_at_the_given_resource_limit() -> None:
    """max_resources stops the listing at the first page that reaches it."""
    pager: Paginator[dict[str, Any]] = Paginator(10, max_resources=25)
    listed = _run_endless(pager, 10**9)
    assert (3, 30, False) == (pager.pages, len(listed), pager.complete)
    assert True is ("max_listing_resources" in (pager.problem or ""))


def test_the_default_page_limit_is_twice_what_the_first_total_needs() -> None:
    """Announcing 100 with pages of 10 needs 10 pages: a trickle of new ids stops at 30."""
    pager: Paginator[dict[str, Any]] = Paginator(10)
    _run_endless(pager, 100, fresh_per_page=1)
    assert (30, False) == (pager.pages, pager.complete)
    assert True is ("derived from the first totalResults, 100" in (pager.problem or ""))


def test_the_ceiling_holds_whatever_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a given limit, MAX_LISTED_RESOURCES caps what an absurd total would allow."""
    monkeypatch.setattr("scimsync.client._pagination.MAX_LISTED_RESOURCES", 40)
    pager: Paginator[dict[str, Any]] = Paginator(10)
    listed = _run_endless(pager, 10**9)
    assert (40, False) == (len(listed), pager.complete)
    assert True is ("MAX_LISTED_RESOURCES, below the limit derived" in (pager.problem or ""))


def test_an_honest_listing_never_meets_its_limits() -> None:
    """The derived limits leave an honest listing whole, to its last page."""
    server = PagedServer(_ids(95), max_page=10)
    pager: Paginator[dict[str, Any]] = Paginator(10)
    assert _ids(95) == [r["id"] for r in _feed(pager, server)]
    assert (True, 10) == (pager.complete, pager.pages)


@pytest.mark.parametrize("limits", [{"max_pages": 0}, {"max_resources": -1}, {"max_pages": 1.5}])
def test_limits_that_cannot_work_are_refused(limits: dict[str, Any]) -> None:
    """A limit is an integer, 1 or more."""
    with pytest.raises(ConfigurationError):
        Paginator(10, **limits)


def _feed(pager: Paginator[dict[str, Any]], server: PagedServer) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    while not pager.done:
        data = server.page(pager.start_index, pager.count)
        announced = "totalResults" in data
        page: ListResponse[dict[str, Any]] = ListResponse(
            total_results=data.get("totalResults", 0), resources=data["Resources"]
        )
        listed.extend(pager.feed(page, total_announced=announced))
    return listed


# -- pages without totalResults --------------------------------------------------------------------


def test_pages_without_total_are_listed_whole_through_a_page_cap() -> None:
    """No totalResults, pages capped at 20 of 100 asked: paged on until a shorter page."""
    server = PagedServer(_ids(45), max_page=20, omit_total=True)
    listing = _client(server).list_all(User, page_size=100)
    assert (True, 45, None) == (listing.complete, len(listing), listing.total_results)
    assert [1, 21, 41] == [start for start, _ in server.requests]
    assert 1 == len(listing.deviations)
    assert True is listing.deviations[0].startswith("ListResponse without totalResults")


def test_a_first_short_page_without_total_is_confirmed_by_an_empty_one() -> None:
    """A short first page may be the target's cap: one more page is asked for, and ends it."""
    server = PagedServer(_ids(7), omit_total=True)
    listing = _client(server).list_all(User, page_size=10)
    assert (True, 7, 2) == (listing.complete, len(listing), listing.pages)


def test_full_pages_without_total_end_at_an_empty_page() -> None:
    """Pages exactly as large as asked go on until an empty one."""
    server = PagedServer(_ids(20), omit_total=True)
    listing = _client(server).list_all(User, page_size=10)
    assert (True, 20, 3) == (listing.complete, len(listing), listing.pages)


def test_pages_without_total_are_bounded_by_the_ceilings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to derive a limit from: the ceilings bound a target that never ends."""
    monkeypatch.setattr("scimsync.client._pagination.MAX_LISTED_PAGES", 6)
    pager: Paginator[dict[str, Any]] = Paginator(10)
    serial = iter(range(10**6))
    while not pager.done:
        page: ListResponse[dict[str, Any]] = ListResponse(
            total_results=0, resources=[{"id": f"id-{next(serial)}"} for _ in range(10)]
        )
        pager.feed(page, total_announced=False)
    assert (6, False) == (pager.pages, pager.complete)
    assert True is ("(MAX_LISTED_PAGES)" in (pager.problem or ""))


@pytest.mark.parametrize("page_size", [0, -5])
def test_page_size_must_be_positive(page_size: int) -> None:
    """A page size that could never advance is a configuration error, before any request."""
    target = MockTarget()
    client = ScimClient(BASE, http=httpx.Client(transport=target.transport()))
    with pytest.raises(ConfigurationError):
        client.list_all(User, page_size=page_size)
    assert [] == target.requests


def test_feeding_a_finished_paginator_is_a_bug() -> None:
    """Once done, the paginator refuses more pages."""
    pager: Paginator[dict[str, Any]] = Paginator(10)
    pager.feed(ListResponse(total_results=0))
    with pytest.raises(RuntimeError):
        pager.feed(ListResponse(total_results=0))


@settings(max_examples=200)
@given(
    size=st.integers(0, 60),
    page_size=st.integers(1, 25),
    max_page=st.integers(1, 25),
    echo_count=st.booleans(),
    ignore_start_index=st.booleans(),
    restart_past_end=st.booleans(),
    overlap=st.integers(0, 3),
    extra_total=st.integers(0, 5),
    deleted=st.integers(0, 5),
    omit_total=st.booleans(),
    total_is=st.sampled_from(["count", "page", "zero"]),
)
def test_any_quirky_server_ends_without_duplicates_and_flags_what_it_misses(
    size: int,
    page_size: int,
    max_page: int,
    echo_count: bool,
    ignore_start_index: bool,
    restart_past_end: bool,
    overlap: int,
    extra_total: int,
    deleted: int,
    omit_total: bool,
    total_is: str,
) -> None:
    """Whatever the quirks: the listing ends, lists each id once, and complete means whole.

    Without totalResults, "complete" cannot be checked against a count: it still means
    whole for an honest target (page caps and all), and the listing says it guessed.
    """
    ids = _ids(size)
    server = PagedServer(
        list(ids),
        max_page=max_page,
        echo_count=echo_count,
        ignore_start_index=ignore_start_index,
        restart_past_end=restart_past_end,
        overlap=overlap,
        extra_total=extra_total,
        delete_after_first_page=deleted,
        omit_total=omit_total,
        total_is=total_is,
    )
    pager: Paginator[dict[str, Any]] = Paginator(page_size, check_first_page=True)
    listed = [r["id"] for r in _feed(pager, server)]
    assert len(set(listed)) == len(listed)
    assert set(listed) <= set(ids)
    assert True is (len(server.requests) <= size + 2)
    if pager.complete and not omit_total and total_is == "count":
        # Whole: every resource that still exists was listed.
        assert set() == set(server.ids) - set(listed)
    honest = not (ignore_start_index or overlap or extra_total or deleted)
    if honest:
        assert True is pager.complete
        assert set() == set(server.ids) - set(listed)
    if total_is == "count" or omit_total:
        assert (1 if omit_total else 0) == len(pager.deviations)
