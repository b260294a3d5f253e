"""The conformance kit (``scimsync.testing.check_target``): MemoryTarget, a users-only
target and ScimTarget meet every expectation that applies; targets broken in the ways
real connectors are (a removal dropped, a stale answer, a case-sensitive lookup, a
KeyError for an unknown id, a listing that hides a failure...) fail with the expectation
named and why; faults go through ``TargetFaults``; the kit cleans up after itself.
The how-tos' own code is checked in ``test_testing_conformance_howtos.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from _users_only import UsersOnly
from scimsync import User
from scimsync.client import AsyncScimClient
from scimsync.errors import ConfigurationError, ConformanceError, ServerError
from scimsync.retry import RetryPolicy
from scimsync.targets import MemoryTarget, ScimTarget, TargetListing, UserUpdate
from scimsync.testing import (
    TARGET_EXPECTATIONS,
    ScimTestServer,
    TargetCheck,
    TargetFaults,
    acheck_target,
    check_target,
)

if TYPE_CHECKING:
    from collections.abc import Callable

FAULT_EXPECTATIONS = ["errors_are_scim_errors", "lost_answer", "listing_cut_short"]
GROUP_EXPECTATIONS = ["group_create_and_get", "group_update", "membership", "group_delete"]


def outcomes(report: TargetCheck) -> dict[str, list[str]]:
    """Expectation names by outcome (outcomes with none left out)."""
    found: dict[str, list[str]] = {}
    for result in report.results:
        found.setdefault(result.outcome, []).append(result.name)
    return found


def failed(report: TargetCheck) -> dict[str, str]:
    """name → why, for each expectation not met."""
    return {r.name: r.detail for r in report.failures}


# -- who meets them ----------------------------------------------------------------------------


def test_memory_target_meets_every_expectation() -> None:
    """MemoryTarget meets every expectation that applies without faults; the fault ones
    are skipped, saying why."""
    report = check_target(MemoryTarget)
    assert {
        "passed": [n for n in TARGET_EXPECTATIONS if n not in FAULT_EXPECTATIONS],
        "skipped": FAULT_EXPECTATIONS,
    } == outcomes(report)
    assert {"no faults= given (see TargetFaults)"} == {r.detail for r in report.skipped}
    report.raise_for_failures()


def test_a_users_only_target_skips_the_group_expectations() -> None:
    """A target with the user methods alone meets the user expectations; the group ones
    are skipped, saying it keeps no groups."""
    report = check_target(UsersOnly, many=5)
    assert GROUP_EXPECTATIONS == [
        r.name for r in report.skipped if r.detail.startswith("the target keeps no groups")
    ]
    assert () == report.failures


def test_scim_target_meets_every_expectation_with_faults() -> None:
    """ScimTarget on a ScimTestServer, its client built on TargetFaults' transport (with
    retries that do not wait), meets them all, faults included."""
    server = ScimTestServer()
    faults = TargetFaults()

    async def no_wait(seconds: float) -> None:
        return None

    def new_target() -> ScimTarget:
        http = httpx.AsyncClient(
            transport=faults.transport(server.async_transport()),
            base_url=server.in_process_url,
        )
        retry = RetryPolicy(max_attempts=2)
        return ScimTarget(AsyncScimClient(http=http, retry=retry, sleep=no_wait))

    report = check_target(new_target, faults=faults, many=30)
    assert {"passed": list(TARGET_EXPECTATIONS)} == outcomes(report)
    assert ([], []) == (server.users(), server.groups())


# -- who does not, and what they are told ----------------------------------------------------


class DropsRemovals(MemoryTarget):
    """Turns PATCH operations into a body without the None values (as a connector that
    filters None out of its request does): a removal is lost."""

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        if not isinstance(change, User):
            change = [op for op in change if op.op != "remove"]
        return await super().update_user(user_id, change)


class StaleAnswer(MemoryTarget):
    """Answers an update with the user as it was before it."""

    async def update_user(self, user_id: str, change: UserUpdate) -> User | None:
        before = await self.get_user(user_id)
        await super().update_user(user_id, change)
        return before


class CaseSensitiveLookups(MemoryTarget):
    """Finds users by exact value only, userName included."""

    async def find_users(self, attribute: str, value: str) -> tuple[User, ...]:
        found = await super().find_users(attribute, value)
        return tuple(u for u in found if value in (u.user_name, u.external_id))


class KeyErrors(MemoryTarget):
    """Reads its store as a dict: an unknown id is a KeyError."""

    async def get_user(self, user_id: str) -> User:
        return {u.id: u for u in self.state().users}[user_id]


class FirstHundred(MemoryTarget):
    """Lists the first page of 100 and calls it complete."""

    async def list_users(self) -> TargetListing[User]:
        listing = await super().list_users()
        return TargetListing(resources=listing.resources[:100])


class NoRemoveMembers(MemoryTarget):
    """Has every group method but remove_members."""

    remove_members = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (
            DropsRemovals,
            {"clear_attribute": "title is still 'scimsync-check-"},
        ),
        (
            StaleAnswer,
            {
                "update_by_patch": "update_user answered with title 'scimsync-check-",
                "update_by_resource": "update_user answered with title 'scimsync-check-",
                "clear_attribute": "update_user answered a PATCH remove of title with title",
            },
        ),
        (
            CaseSensitiveLookups,
            {"find_per_case_exact": "find_users('userName', 'SCIMSYNC-CHECK-"},
        ),
        (
            KeyErrors,
            {"delete": "get_user('", "unknown_id": "get_user('scimsync-check-"},
        ),
        (
            FirstHundred,
            {"listing_complete": "list_users lists 100 of the 120 users created"},
        ),
        (
            NoRemoveMembers,
            {"protocol": "some group methods, but no remove_members"},
        ),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_broken_target_fails_the_expectation_it_breaks(
    factory: Callable[[], MemoryTarget], expected: dict[str, str]
) -> None:
    """Each broken target fails exactly the expectations it breaks, and the reason
    says what it did."""
    report = check_target(
        factory, only=[n for n in TARGET_EXPECTATIONS if n not in GROUP_EXPECTATIONS]
    )
    found = failed(report)
    assert sorted(expected) == sorted(found), str(report)
    for name, start in expected.items():
        assert start == found[name][: len(start)], found[name]


def test_the_reasons_say_what_to_do() -> None:
    """A lost removal and a stale answer are explained with what the runner needs."""
    dropped = failed(check_target(DropsRemovals, only=["clear_attribute"]))["clear_attribute"]
    stale = failed(check_target(StaleAnswer, only=["update_by_patch"]))["update_by_patch"]
    assert (
        "a removal must clear it in the application (send its way of clearing a field: a "
        "null, an empty value), or a value cleared in the source stays"
    ) == dropped.split(" after a PATCH remove: ")[1]
    assert (
        "return the resource as the application holds it after the update, or None (never "
        "one read before it, or built from the request)"
    ) == stale.split("': ")[1]
    unknown = failed(check_target(KeyErrors, only=["unknown_id"]))["unknown_id"]
    missing = unknown.split("'")[1]
    assert (
        f"get_user({missing!r}) raised KeyError: {missing!r}, not the NotFoundError a SCIM "
        "service answers"
    ) == unknown


def test_raise_for_failures_names_each_expectation_as_an_assertion() -> None:
    """raise_for_failures raises a ConformanceError, an AssertionError too, naming every
    failed expectation with why."""
    report = check_target(StaleAnswer, only=["update_by_patch", "update_by_resource", "delete"])
    with pytest.raises(AssertionError) as raised:
        report.raise_for_failures()
    error = raised.value
    assert isinstance(error, ConformanceError)
    assert ["update_by_patch", "update_by_resource"] == [name for name, _ in error.failures]
    lines = str(error).splitlines()
    assert "the target does not meet 2 expectations:" == lines[0]
    assert ["  update_by_patch:", "  update_by_resource:"] == [
        line.split(": ")[0] + ":" for line in lines[1:]
    ]


class SwallowsFailures(MemoryTarget):
    """Turns a failed listing into an empty, complete one."""

    def __init__(self, faults: TargetFaults) -> None:
        super().__init__()
        self.http = httpx.AsyncClient(
            transport=faults.transport(httpx.MockTransport(lambda r: httpx.Response(200))),
            base_url="https://app.example.com",
        )

    async def list_users(self) -> TargetListing[User]:
        try:
            (await self.http.get("/users")).raise_for_status()
        except httpx.HTTPError:
            return TargetListing()
        return await super().list_users()


def test_a_listing_that_hides_a_failure_is_caught() -> None:
    """A listing that answers "nobody, and that is all" when its request failed fails
    errors_are_scim_errors and listing_cut_short."""
    faults = TargetFaults()
    report = check_target(
        lambda: SwallowsFailures(faults),
        only=["errors_are_scim_errors", "listing_cut_short"],
        faults=faults,
        many=3,
    )
    found = failed(report)
    assert ["errors_are_scim_errors", "listing_cut_short"] == list(found)
    assert found["errors_are_scim_errors"].startswith(
        "when the application answers 500, list_users returned TargetListing("
    )
    assert found["listing_cut_short"].startswith(
        "when request 1 of its 1 failed, list_users returned 0 of the 3 users and said it was "
        "complete"
    )


def test_faults_given_to_a_target_that_does_not_use_them_are_said() -> None:
    """faults= for a target whose requests do not go through its transport fails the
    fault expectations with how to wire it."""
    report = check_target(MemoryTarget, only=["lost_answer"], faults=TargetFaults())
    assert {
        "lost_answer": "list_users sent no request through faults.transport(): build the "
        "target's httpx client on it in the factory, or leave faults= out"
    } == failed(report)


# -- running it ------------------------------------------------------------------------------


def test_the_kit_cleans_up_what_it_created() -> None:
    """Against one shared target, the kit deletes every user and group it created."""
    shared = MemoryTarget(users=[User(user_name="resident")])
    report = check_target(lambda: shared, many=5)
    assert () == report.failures
    assert (["resident"], ()) == (
        [u.user_name for u in shared.state().users],
        shared.state().groups,
    )


def test_only_picks_expectations_by_name_and_refuses_unknown_ones() -> None:
    """only= runs the named expectations, in the kit's order; an unknown name, or a
    single string, is a ConfigurationError."""
    report = check_target(MemoryTarget, only=["delete", "protocol"])
    assert ["protocol", "delete"] == [r.name for r in report.results]
    with pytest.raises(ConfigurationError, match="no expectation named deletion; there are "):
        check_target(MemoryTarget, only=["deletion"])
    with pytest.raises(ConfigurationError, match="a list of expectation names"):
        check_target(MemoryTarget, only="delete")


def test_a_failing_factory_fails_each_expectation() -> None:
    """A factory that raises is a failure of each expectation, saying so."""

    def broken() -> MemoryTarget:
        raise RuntimeError("no credentials")

    report = check_target(broken, only=["protocol", "delete"])
    assert {
        "protocol": "the factory raised RuntimeError: no credentials",
        "delete": "the factory raised RuntimeError: no credentials",
    } == failed(report)


def test_a_check_whose_expectations_all_skip_is_a_skipped_test() -> None:
    """Under pytest, raise_for_failures of a check that skipped everything skips."""
    report = check_target(UsersOnly, only=["membership"])
    with pytest.raises(pytest.skip.Exception, match="membership: the target keeps no groups"):
        report.raise_for_failures()


async def test_the_async_twin_and_async_factories() -> None:
    """acheck_target runs inside an event loop and takes an async factory; check_target
    there refuses, saying to await the twin."""

    async def new_target() -> MemoryTarget:
        return MemoryTarget()

    report = await acheck_target(new_target, only=["create_and_get"])
    assert ["create_and_get"] == [r.name for r in report.results if r.outcome == "passed"]
    with pytest.raises(ConfigurationError, match="await acheck_target"):
        check_target(MemoryTarget)


def test_target_faults_on_a_sync_client() -> None:
    """TargetFaults works for httpx.Client too: 500s and timeouts answered without
    reaching the application, a lost answer after it, reads untouched by lost answers;
    every request counted."""
    received: list[str] = []

    def app(request: httpx.Request) -> httpx.Response:
        received.append(request.method)
        return httpx.Response(201 if request.method == "POST" else 200, json={})

    faults = TargetFaults()
    with httpx.Client(transport=faults.transport(httpx.MockTransport(app))) as http:
        with faults.injecting("server_error", after=1):
            statuses = [http.get("https://app.example.com/").status_code for _ in range(2)]
        with faults.injecting("timeout"), pytest.raises(httpx.ReadTimeout):
            http.get("https://app.example.com/")
        with faults.injecting("lost_answer"):
            read = http.get("https://app.example.com/").status_code
            with pytest.raises(httpx.ReadTimeout):
                http.post("https://app.example.com/")
    assert ([200, 500], 200, ["GET", "GET", "POST"], 5) == (
        statuses,
        read,
        received,
        faults.requests,
    )


def test_server_errors_from_the_faults_read_as_scim_errors() -> None:
    """The 500 TargetFaults answers is a SCIM-shaped error: ScimTarget reads it as a
    ServerError."""
    faults = TargetFaults()
    server = ScimTestServer()
    http = httpx.AsyncClient(
        transport=faults.transport(server.async_transport()), base_url=server.in_process_url
    )
    target = ScimTarget(AsyncScimClient(http=http, retry=RetryPolicy.never()))
    from scimsync.targets import BlockingTarget

    with (
        BlockingTarget(target) as blocking,
        faults.injecting("server_error"),
        pytest.raises(ServerError) as raised,
    ):
        blocking.get_user("anyone")
    assert (500, "fault injected by check_target") == (raised.value.status, raised.value.detail)
