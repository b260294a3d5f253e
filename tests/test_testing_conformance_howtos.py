"""The conformance kit on the how-tos' own code: the REST-target how-to's connectors
meet every expectation, faults included (and fail the fault ones without translating
httpx's errors); the pytest examples of ``docs/howto/testing.md`` pass under pytest as
written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from scimsync.testing import TARGET_EXPECTATIONS, TargetCheck, TargetFaults, check_target

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).parent.parent / "docs" / "howto"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
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


# -- the REST-target how-to's connectors ----------------------------------------------------


def howto() -> dict[str, Any]:
    """The REST-target how-to's code up to its connector, in a fresh namespace (an empty
    fake Acme API)."""
    namespace: dict[str, Any] = {"__name__": "howto_rest_target"}
    for block in FENCE.findall((DOCS / "rest-target.md").read_text("utf-8")):
        exec(compile(block, "rest-target.md", "exec"), namespace)  # our own documentation
        if "AcmeTarget" in namespace:
            return namespace
    raise AssertionError("rest-target.md defines no AcmeTarget")


def acme_factory(page: dict[str, Any], connector: str, faults: TargetFaults) -> Callable[[], Any]:
    """Fresh ``connector`` objects of the how-to on its fake API, through ``faults``."""

    def new() -> Any:
        transport = faults.transport(httpx.MockTransport(page["acme"]))
        http = httpx.AsyncClient(transport=transport, base_url="https://acme.example.com")
        return page[connector](http)

    return new


def test_the_howto_connector_meets_every_expectation_with_faults() -> None:
    """The how-to's AcmeTarget meets every expectation, faults included, and leaves
    the application as it found it."""
    page, faults = howto(), TargetFaults()
    report = check_target(acme_factory(page, "AcmeTarget", faults), faults=faults, many=30)
    assert {"passed": list(TARGET_EXPECTATIONS)} == outcomes(report)
    assert ({}, {}) == (page["people"], page["teams"])


def test_the_howto_users_only_connector_meets_the_user_expectations() -> None:
    """The how-to's AcmePeople (no team methods) meets the user and fault expectations;
    the group ones are skipped."""
    page, faults = howto(), TargetFaults()
    report = check_target(acme_factory(page, "AcmePeople", faults), faults=faults, many=10)
    assert {
        "passed": [n for n in TARGET_EXPECTATIONS if n not in GROUP_EXPECTATIONS],
        "skipped": GROUP_EXPECTATIONS,
    } == outcomes(report)


class RawHttpErrors:
    """The how-to's connector with the naive ``_call`` it would have without the
    translation: httpx's own errors escape."""

    @staticmethod
    def wrap(connector: type) -> type:
        class Naive(connector):  # type: ignore[misc]
            async def _call(self, method: str, url: str, body: object = None) -> object:
                response = await self.http.request(method, url, json=body)
                if response.status_code == 404:
                    from scimsync.errors import NotFoundError

                    raise NotFoundError(404, detail=url)
                if response.status_code == 409:
                    from scimsync.errors import ConflictResponseError

                    raise ConflictResponseError(409, scim_type="uniqueness")
                response.raise_for_status()
                return response.json() if response.content else None

        return Naive


def test_a_connector_letting_http_errors_escape_fails_the_fault_expectations() -> None:
    """Raw httpx errors (a 500 as HTTPStatusError, a timeout as ReadTimeout) fail the
    fault expectations, naming the exception and the method."""
    page, faults = howto(), TargetFaults()
    page["Naive"] = RawHttpErrors.wrap(page["AcmeTarget"])
    report = check_target(
        acme_factory(page, "Naive", faults), only=FAULT_EXPECTATIONS, faults=faults, many=5
    )
    found = failed(report)
    assert FAULT_EXPECTATIONS == list(found)
    assert found["errors_are_scim_errors"].startswith(
        "when the application answers 500, list_users raised httpx.HTTPStatusError: "
    )
    assert found["lost_answer"].startswith("create_user raised httpx.ReadTimeout: ")
    assert found["listing_cut_short"].startswith("list_users raised httpx.HTTPStatusError: ")


# -- the how-to's pytest examples ---------------------------------------------------------------


def test_the_testing_howto_pytest_examples_pass_under_pytest(pytester: pytest.Pytester) -> None:
    """Each python block of docs/howto/testing.md holding a pytest test runs under
    pytest, as a user's test file, with the plugin: every test passes, but those of
    the fault expectations, skipped (the example passes no faults=)."""
    blocks = [
        b for b in FENCE.findall((DOCS / "testing.md").read_text("utf-8")) if "def test_" in b
    ]
    assert 2 <= len(blocks)
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )
    pytester.makepyfile(**{f"test_howto_{n}": block for n, block in enumerate(blocks)})
    result = pytester.runpytest_inprocess("-p", "scimsync.testing.pytest_plugin", "-q")
    counted = {k: v for k, v in result.parseoutcomes().items() if k != "seconds"}
    # The fixture's test, one per expectation met, one skipped per fault expectation.
    passed = 1 + len(TARGET_EXPECTATIONS) - len(FAULT_EXPECTATIONS)
    assert {"passed": passed, "skipped": len(FAULT_EXPECTATIONS)} == counted, str(result.stdout)
