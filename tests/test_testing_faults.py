"""Fault injection: each kind does what production does to a client, deterministically."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scimsync import User
from scimsync.testing import FaultKind, Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


class SleepRecorder:
    """A sleep function that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> SleepRecorder:
    """The recorder the server sleeps with."""
    return SleepRecorder()


@pytest.fixture
def server(sleep: SleepRecorder) -> ScimTestServer:
    """A server holding ten users, with a fixed clock and a recorded sleep."""
    return ScimTestServer(
        users=[User(user_name=f"user{i}") for i in range(10)], sleep=sleep, clock=lambda: NOW
    )


@pytest.fixture
def http(server: ScimTestServer) -> Iterator[httpx.Client]:
    """An in-process client for ``server``."""
    with server.client() as client:
        yield client


def new_user(name: str) -> dict[str, Any]:
    """A creation body."""
    return {"schemas": [USER], "userName": name}


def stored_names(server: ScimTestServer) -> list[str | None]:
    """The userNames the server holds."""
    return [u.user_name for u in server.users()]


# -- the value ------------------------------------------------------------------------------------


def test_faults_take_kinds_methods_and_paths_as_strings() -> None:
    """Kinds by value, methods in any case, paths with or without slashes."""
    faults = Faults(kinds="429", methods=["post"], paths="Users/")
    assert (frozenset({FaultKind.TOO_MANY_REQUESTS}), frozenset({"POST"}), ("/Users",)) == (
        faults.kinds,
        faults.methods,
        faults.paths,
    )
    assert (
        faults.targets("POST", "/Users/42"),
        faults.targets("GET", "/Users"),
        faults.targets("POST", "/Groups"),
    ) == (True, False, False)


@pytest.mark.parametrize(
    "options",
    [{"rate": 1.5}, {"rate": -0.1}, {"kinds": ["418"]}, {"after_commit": "200"}],
    ids=["rate-high", "rate-low", "unknown-kind", "bad-after-commit"],
)
def test_impossible_faults_are_refused(options: dict[str, Any]) -> None:
    """Values that cannot be injected raise ValueError when built."""
    with pytest.raises(ValueError):
        Faults(**options)


# -- answers instead of processing ----------------------------------------------------------------


def test_429_asks_to_retry_after_seconds_and_processes_nothing(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """A 429 carries Retry-After in seconds and a SCIM error; the POST is not applied."""
    server.faults = Faults(kinds=["429"], retry_after=3)
    response = http.post("/Users", json=new_user("new"))
    assert (
        response.status_code,
        response.headers["Retry-After"],
        response.json()["scimType"],
    ) == (429, "3", "tooMany")
    assert "new" not in stored_names(server)


def test_retry_after_can_be_an_http_date(server: ScimTestServer, http: httpx.Client) -> None:
    """With retry_after_http_date, Retry-After is an HTTP-date that far past the clock."""
    server.faults = Faults(kinds=["503"], retry_after=90, retry_after_http_date=True)
    response = http.get("/Users")
    assert response.status_code == 503
    assert datetime(2024, 5, 6, 7, 9, 39, tzinfo=timezone.utc) == parsedate_to_datetime(
        response.headers["Retry-After"]
    )


def test_500_is_a_scim_error(server: ScimTestServer, http: httpx.Client) -> None:
    """An injected 500 answers a SCIM error body; nothing is applied."""
    server.faults = Faults(kinds=["500"])
    response = http.post("/Users", json=new_user("new"))
    assert (response.status_code, response.json()["status"]) == (500, "500")
    assert "new" not in stored_names(server)


def test_502_is_html_from_a_proxy(server: ScimTestServer, http: httpx.Client) -> None:
    """An injected 502 answers HTML, as a gateway does, not JSON."""
    server.faults = Faults(kinds=["502"])
    response = http.get("/Users")
    assert (
        response.status_code,
        response.headers["Content-Type"],
    ) == (502, "text/html; charset=utf-8")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_reset_raises_the_httpx_error_and_processes_nothing(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """In-process, a dropped connection is httpx.ReadError; the log has no status."""
    server.faults = Faults(kinds=["reset"])
    with pytest.raises(httpx.ReadError):
        http.post("/Users", json=new_user("new"))
    entry = server.requests.last
    assert entry is not None
    assert (entry.status, entry.fault) == (None, FaultKind.CONNECTION_RESET)
    assert "new" not in stored_names(server)


def test_timeout_raises_read_timeout(server: ScimTestServer, http: httpx.Client) -> None:
    """In-process, a timeout is httpx.ReadTimeout, immediately."""
    server.faults = Faults(kinds=["timeout"])
    with pytest.raises(httpx.ReadTimeout):
        http.get("/Users")


def test_latency_goes_through_the_injected_sleep(
    server: ScimTestServer, http: httpx.Client, sleep: SleepRecorder
) -> None:
    """Latency calls the server's sleep function, then answers normally."""
    server.faults = Faults(kinds=["latency"], latency=2.5)
    response = http.get("/Users")
    assert (response.status_code, sleep.calls) == (200, [2.5])


async def test_latency_in_the_async_transport_awaits_an_async_sleep() -> None:
    """The async transport awaits the sleep function when it returns an awaitable."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    server = ScimTestServer(faults=Faults(kinds=["latency"], latency=0.5), sleep=fake_sleep)
    async with server.async_client() as client:
        response = await client.get("/Users")
    assert (response.status_code, waited) == (200, [0.5])


async def test_async_transport_raises_connection_faults() -> None:
    """The async transport raises the same httpx errors as the sync one."""
    server = ScimTestServer(faults=Faults(kinds=["reset"], limit=1))
    async with server.async_client() as client:
        with pytest.raises(httpx.ReadError):
            await client.get("/Users")
        assert (await client.get("/Users")).status_code == 200


async def test_latency_in_the_async_transport_with_a_plain_sleep(sleep: SleepRecorder) -> None:
    """A plain (non-async) injected sleep works with the async transport too."""
    server = ScimTestServer(faults=Faults(kinds=["latency"], latency=1.5), sleep=sleep)
    async with server.async_client() as client:
        await client.get("/Users")
    assert sleep.calls == [1.5]


# -- processed, then spoiled ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_commit", "outcome"),
    [
        ("reset", httpx.ReadError),
        ("timeout", httpx.ReadTimeout),
        ("500", 500),
        ("502", 502),
        ("503", 503),
        ("504", 504),
    ],
)
def test_commit_then_fail_applies_the_write_and_reports_a_failure(
    server: ScimTestServer, http: httpx.Client, after_commit: Any, outcome: Any
) -> None:
    """The POST is stored, yet the client sees a failure: the duplicate-maker."""
    server.faults = Faults(kinds=["commit_then_fail"], after_commit=after_commit)
    if isinstance(outcome, int):
        assert outcome == http.post("/Users", json=new_user("new")).status_code
    else:
        with pytest.raises(outcome):
            http.post("/Users", json=new_user("new"))
    assert stored_names(server).count("new") == 1


def test_commit_then_fail_spares_reads_and_failed_writes(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """Reads are never chosen; a write that fails on its own answers its real error."""
    server.faults = Faults(kinds=["commit_then_fail"], after_commit="500")
    assert http.get("/Users").status_code == 200
    assert http.post("/Users", json=new_user("user1")).status_code == 409
    assert http.post("/Users", json=new_user("user10")).status_code != 201
    assert [e.fault for e in server.requests] == [None, None, FaultKind.COMMIT_THEN_FAIL]


def test_commit_then_fail_applies_to_put_patch_delete_and_bulk(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """Every kind of write can commit then fail: here a DELETE."""
    user_id = server.users()[0].id
    server.faults = Faults(kinds=["commit_then_fail"], after_commit="502")
    assert http.delete(f"/Users/{user_id}").status_code == 502
    assert None is server.user(str(user_id))


def test_malformed_json_cuts_the_answer_after_processing(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """The answer is truncated JSON with status 200/201; the write did happen."""
    server.faults = Faults(kinds=["malformed_json"])
    response = http.post("/Users", json=new_user("new"))
    assert response.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert "new" in stored_names(server)


# -- listings -------------------------------------------------------------------------------------


def test_short_page_returns_fewer_than_count_while_more_remain(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """A short page holds fewer than asked, totalResults stays true; the last page is whole."""
    server.faults = Faults(kinds=["short_page"])
    first = http.get("/Users", params={"count": 4}).json()
    last = http.get("/Users", params={"startIndex": 9, "count": 4}).json()
    assert (first["totalResults"], first["itemsPerPage"], len(first["Resources"])) == (10, 2, 2)
    assert (
        last["itemsPerPage"],
        [r["userName"] for r in last["Resources"]],
    ) == (2, ["user8", "user9"])


def test_short_page_never_applies_to_writes(server: ScimTestServer, http: httpx.Client) -> None:
    """Listing-only kinds are never drawn for other requests."""
    server.faults = Faults(kinds=["short_page", "page_drift"])
    assert http.post("/Users", json=new_user("new")).status_code == 201
    assert None is (server.requests.last and server.requests.last.fault)


def test_page_drift_changes_the_listing_between_pages(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """Before a later page, a user is removed from or added to the front: pages shift."""
    first = http.get("/Users", params={"count": 5}).json()
    server.faults = Faults(kinds=["page_drift"], seed=1)
    second = http.get("/Users", params={"startIndex": 6, "count": 5}).json()
    listed: list[str] = [r["userName"] for r in first["Resources"] + second["Resources"]]
    held = [str(name) for name in stored_names(server)]
    assert len(held) != 10
    assert sorted(listed) != sorted(held)
    assert (server.requests.last and server.requests.last.fault) == FaultKind.PAGE_DRIFT


def test_page_drift_spares_the_first_page(server: ScimTestServer, http: httpx.Client) -> None:
    """Drift happens between pages, so the first page sees the listing as it is."""
    server.faults = Faults(kinds=["page_drift"])
    http.get("/Users", params={"count": 5})
    assert [f"user{i}" for i in range(10)] == stored_names(server)


@pytest.mark.parametrize("seed", range(4))
def test_page_drift_inserts_or_removes_one_user(seed: int) -> None:
    """Each drift adds a user first in the listing or removes the first one."""
    server = ScimTestServer(users=[User(user_name=f"user{i}") for i in range(4)])
    server.faults = Faults(kinds=["page_drift"], seed=seed)
    with server.client() as client:
        client.get("/Users", params={"startIndex": 2})
    held = stored_names(server)
    assert held in (
        [f"user{i}" for i in range(1, 4)],
        [held[0], *(f"user{i}" for i in range(4))],
    )


# -- choosing -------------------------------------------------------------------------------------


def run_requests(faults: Faults) -> list[FaultKind | None]:
    """Send the same thirty requests to a fresh server; return the faults they drew."""
    server = ScimTestServer(users=[User(user_name="alice")], sleep=lambda _: None, faults=faults)
    with server.client() as client:
        for i in range(30):
            try:
                if i % 2:
                    client.get("/Users", params={"startIndex": 2, "count": 1})
                else:
                    client.post("/Users", json=new_user(f"n{i}"))
            except httpx.TransportError:
                pass
    return [entry.fault for entry in server.requests]


def test_the_same_seed_gives_the_same_faults() -> None:
    """Faults are deterministic for a seed and the same requests; another seed differs."""
    faults = Faults(rate=0.5, seed=42)
    first, again = run_requests(faults), run_requests(faults)
    other = run_requests(Faults(rate=0.5, seed=43))
    assert first == again
    assert first != other
    assert 5 < sum(f is not None for f in first) < 25
    assert len({f for f in first if f is not None}) > 3


def test_rate_zero_injects_nothing() -> None:
    """rate=0 never draws a fault."""
    assert run_requests(Faults(rate=0.0)) == [None] * 30


def test_limit_stops_injecting(server: ScimTestServer, http: httpx.Client) -> None:
    """After ``limit`` faults, requests go through."""
    server.faults = Faults(kinds=["500"], limit=2)
    assert [http.get("/Users").status_code for _ in range(4)] == [500, 500, 200, 200]


def test_limit_counts_only_faults_that_took_effect(
    server: ScimTestServer, http: httpx.Client
) -> None:
    """A short page drawn for the last page changes nothing and does not use up the limit."""
    server.faults = Faults(kinds=["short_page"], limit=1)
    last = http.get("/Users", params={"startIndex": 9, "count": 5}).json()
    first = http.get("/Users", params={"count": 4}).json()
    again = http.get("/Users", params={"count": 4}).json()
    assert (last["itemsPerPage"], first["itemsPerPage"], again["itemsPerPage"]) == (2, 2, 4)
    assert [e.fault for e in server.requests] == [None, FaultKind.SHORT_PAGE, None]


def test_methods_and_paths_target_faults(server: ScimTestServer, http: httpx.Client) -> None:
    """Only requests with a listed method to a listed path draw faults."""
    server.faults = Faults(kinds=["500"], methods=["POST"], paths=["/Groups"])
    assert http.get("/Groups").status_code == 200
    assert http.post("/Users", json=new_user("new")).status_code == 201
    assert http.post("/Groups", json={"schemas": ["x"]}).status_code == 500


def test_faults_can_be_switched_at_run_time(server: ScimTestServer, http: httpx.Client) -> None:
    """Assigning server.faults takes effect on the next request; None turns them off."""
    assert http.get("/Users").status_code == 200
    server.faults = Faults(kinds=["503"])
    assert (503, Faults(kinds=["503"])) == (http.get("/Users").status_code, server.faults)
    server.faults = None
    assert (http.get("/Users").status_code, server.faults) == (200, None)


def test_assigning_faults_restarts_the_draw(server: ScimTestServer, http: httpx.Client) -> None:
    """The same Faults assigned twice draws the same sequence again (and resets the limit)."""
    faults = Faults(rate=0.5, seed=9, kinds=["500"])
    server.faults = faults
    first = [http.get("/Users").status_code for _ in range(12)]
    server.faults = faults
    again = [http.get("/Users").status_code for _ in range(12)]
    assert first == again
    assert {200, 500} == set(first)


def test_faults_given_at_construction_spare_the_seed_data() -> None:
    """Seed data is stored before faults apply: the constructor's faults hit clients only."""
    server = ScimTestServer(users=[User(user_name="alice")], faults=Faults(kinds=["500"]))
    with server.client() as client:
        assert client.get("/Users").status_code == 500
    assert stored_names(server) == ["alice"]
