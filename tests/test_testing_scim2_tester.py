"""A third party checks us: scim2-tester runs its RFC 7643/7644 checks against the server.

scim2-tester drives the server over loopback HTTP through scim2-client; its httpx
engine needs the ``httpx2`` fork, so the few lines of engine below send its requests
with httpx. Every check must pass (or be skipped for a reason the server announces).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from scimsync.testing import Quirks, ScimTestServer

pytest.importorskip("scim2_tester")  # needs Python 3.11+

from scim2_client import BaseSyncSCIMClient
from scim2_tester import check_server

pytestmark = pytest.mark.integration


class HttpxEngine(BaseSyncSCIMClient):
    """scim2-client's synchronous client, sending with an ``httpx.Client``."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request."""
        return self.client.request(method, url, **kwargs)


def run_checks(server: ScimTestServer) -> list[Any]:
    """Every scim2-tester check against ``server`` over HTTP."""
    with server, httpx.Client(base_url=server.url + "/", headers=server.headers) as http:
        results: list[Any] = check_server(HttpxEngine(http))
    return results


def outcome(results: list[Any]) -> tuple[dict[str, int], list[str]]:
    """Counts by status, and a line for each check that did not pass or skip."""
    counts = Counter(r.status.name for r in results)
    failures = [
        f"{r.status.name} {r.title} {r.resource_type}: {r.reason}"
        for r in results
        if r.status.name not in ("SUCCESS", "SKIPPED")
    ]
    return dict(counts), failures


def test_scim2_tester_finds_nothing_wrong() -> None:
    """Discovery, CRUD, projection and PATCH checks all pass on the RFC profile."""
    counts, failures = outcome(run_checks(ScimTestServer(token="tester-token")))
    assert (failures, counts.get("SKIPPED", 0)) == ([], 0)
    assert counts["SUCCESS"] > 100


def test_scim2_tester_skips_patch_when_the_server_says_it_has_none() -> None:
    """With the no-PATCH quirk announced, the PATCH checks are skipped, the rest pass."""
    counts, failures = outcome(
        run_checks(ScimTestServer(token="t", quirks=Quirks(patch_supported=False)))
    )
    assert failures == []
    assert counts["SKIPPED"] > 0
