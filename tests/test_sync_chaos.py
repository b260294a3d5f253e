"""Chaos: 2,000 users and 50 groups against ScimTestServer with 20 % of requests failing.

Faults: 429 with Retry-After, 500/502/503, dropped connections, writes committed and
then failed, short listing pages. Waits are removed by the retry testing switch, so
this runs in seconds. The promise: at most three cycles to converge, every identity
exactly once on the target, the target equal to the source, and nothing left to plan.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import Group, Provisioner, User
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.mapping import Mapping, split
from scimsync.retry import RetryPolicy, no_waits
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, RequestStats, SqliteStateStore, SyncReport
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "chaos-token"
USERS = 2000
GROUPS = 50
FAULTS = Faults(
    rate=0.2,
    seed=20,
    kinds=["429", "500", "502", "503", "reset", "commit_then_fail", "short_page"],
    retry_after=2,
)
MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    member_of=split("groups", ";"),
)


def people() -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "email": f"user{i}@example.com",
            "name": f"User {i}",
            "title": f"T{i % 9}",
            "groups": f"g{i % GROUPS};g{(i * 7 + 3) % GROUPS}",
        }
        for i in range(USERS)
    ]


def wanted_members(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record in records:
        for group in record["groups"].split(";"):
            out.setdefault(group, set()).add(record["email"])
    return out


async def test_chaos_converges_without_duplicates(tmp_path: Path) -> None:
    """Under 20 % faults the sync converges within three cycles, creates nobody twice,
    leaves the target equal to the source, and then plans nothing."""
    records = people()
    server = ScimTestServer(token=TOKEN)
    stats = RequestStats()
    client = AsyncScimClient(
        http=server.async_client(),
        auth=BearerToken(TOKEN),
        # Idempotent reads may be retried on a 500 too; writes never are (their
        # outcome is unknown: the runner looks the resource up instead).
        retry=RetryPolicy(retry_statuses={429, 500, 502, 503, 504}),
        on_request=[stats.on_request],
        on_retry=[stats.on_retry],
    )
    reports: list[SyncReport] = []
    provisioner = Provisioner(
        MemorySource(users=records),
        MAPPING,
        ScimTarget(client),
        Policy(),
        state=SqliteStateStore(tmp_path / "state.db"),
        apply_policy=ApplyPolicy(concurrency=16, max_create_attempts=5),
        request_stats=stats,
        on_report=reports.append,
    )
    async with client:
        with no_waits():
            server.faults = FAULTS
            for _ in range(3):
                report = await provisioner.arun_once(full=True)
                if report.ok:
                    break
            server.faults = None
        assert reports[-1].ok, "\n\n".join(map(str, reports))
        assert len(reports) <= 3
        assert sum(r.retries for r in reports) > 0  # the faults were there, and met
        final = await provisioner.aplan()
    assert (True, True) == (final.is_empty, final.conflicts == ())

    users = server.users()
    names = Counter(u.user_name for u in users)
    assert [] == [name for name, count in names.items() if count > 1]
    assert {r["email"]: (r["name"], r["title"], f"{r['id']}") for r in records} == {
        u.user_name: (u.display_name, u.title, u.external_id) for u in users
    }
    groups: list[Group] = server.groups()
    assert GROUPS == len({g.display_name for g in groups}) == len(groups)
    by_id: dict[str | None, User] = {u.id: u for u in users}
    assert wanted_members(records) == {
        g.display_name: {by_id[m.value].user_name for m in g.members or ()} for g in groups
    }


# -- every kind of fault, README-shaped ---------------------------------------------------

EVERY_KIND = [
    "429", "500", "502", "503", "reset", "commit_then_fail", "malformed_json", "short_page",
    "page_drift",
]  # fmt: skip
MATRIX_USERS = 1000
MATRIX_GROUPS = 20


def matrix_people() -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "email": f"user{i}@example.com",
            "name": f"User {i}",
            "title": f"T{i % 9}",
            "groups": f"g{i % MATRIX_GROUPS};g{(i * 7 + 3) % MATRIX_GROUPS}",
        }
        for i in range(MATRIX_USERS)
    ]


async def cycles_to_converge(
    rate: float, seed: int, tmp_path: Path, most: int = 6
) -> tuple[int, ScimTestServer, list[dict[str, Any]], list[SyncReport]]:
    """Cycles of a default Provisioner (default retry policy) until one applies
    everything, a fresh fault draw each cycle; the server and the records."""
    records = matrix_people()
    server = ScimTestServer(token=TOKEN)
    client = AsyncScimClient(http=server.async_client(), auth=BearerToken(TOKEN))
    reports: list[SyncReport] = []
    provisioner = Provisioner(
        MemorySource(users=records),
        MAPPING,
        ScimTarget(client),
        Policy(),
        state=SqliteStateStore(tmp_path / f"state-{rate}-{seed}.db"),
        on_report=reports.append,
    )
    cycles = 0
    async with client:
        with no_waits():
            for cycle in range(most):
                server.faults = Faults(
                    rate=rate, seed=seed * 100 + cycle, kinds=EVERY_KIND, retry_after=1
                )
                report = await provisioner.arun_once(full=True)
                cycles += 1
                if report.ok:
                    break
            server.faults = None
            final = await provisioner.aplan()
    assert (True, ()) == (final.is_empty, final.conflicts), final.render()
    return cycles, server, records, reports


def wanted_matrix_members(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record in records:
        for group in record["groups"].split(";"):
            out.setdefault(group, set()).add(record["email"])
    return out


@pytest.mark.parametrize(("rate", "most"), [(0.2, 3), (0.1, 2)])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_kind_of_fault_converges_in_few_cycles(
    rate: float, most: int, seed: int, tmp_path: Path
) -> None:
    """1,000 users and 20 groups, every kind of fault at 20 % (10 %), a fresh draw each
    cycle, the default retry policy: everything applied within 3 (2) cycles, nobody
    created twice, no membership lost, and nothing left to plan."""
    cycles, server, records, reports = await cycles_to_converge(rate, seed, tmp_path)
    assert cycles <= most, "\n\n".join(map(str, reports))
    # Page drift adds accounts of its own ("drift-…") at the front of listings.
    users = [u for u in server.users() if not (u.user_name or "").startswith("drift-")]
    names = Counter(u.user_name for u in users)
    assert ([], MATRIX_USERS) == ([n for n, c in names.items() if c > 1], len(names))
    by_id: dict[str | None, User] = {u.id: u for u in users}
    groups: list[Group] = server.groups()
    assert wanted_matrix_members(records) == {
        g.display_name: {by_id[m.value].user_name for m in g.members or ()} for g in groups
    }
