"""Cycles to converge under every kind of fault: the default provisioner vs one that
retries reads as it retries writes.

1,000 users in 20 groups from memory into ScimTestServer (in-process transport), with
``--rate`` of requests failing in every way the server knows (429, 500, 502, 503,
dropped connections, writes committed then failed, JSON cut short, short pages, pages
drifting), a fresh draw each cycle, waits removed. Cycles run until one applies
everything (at most ``--most``); reported per seed: the cycles, the requests, and
whether anyone was created twice.

The peer, in the same run with the same seeds: the same provisioner whose client
retries reads only where it retries writes (429, 502, 503, 504, dropped
connections): a 500 or a body cut short on a listing page then costs the rest of
the listing, as it did before reads were retried.

    python benchmarks/bench_chaos.py [--users 1000] [--seeds 1,2,3] [--rates 0.2,0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter
from typing import Any

from _common import machine, print_rows

from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.mapping import Mapping, split
from scimsync.retry import DEFAULT_RETRY_STATUSES, RetryPolicy, no_waits
from scimsync.sources import MemorySource
from scimsync.sync import RequestStats
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer

TOKEN = "bench-chaos-token"
KINDS = [
    "429", "500", "502", "503", "reset", "commit_then_fail", "malformed_json", "short_page",
    "page_drift",
]  # fmt: skip
MAPPING = Mapping(
    users={"userName": "email", "displayName": "name", "title": "title"},
    member_of=split("groups", ";"),
)


def people(users: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "email": f"user{i}@example.com",
            "name": f"User {i}",
            "title": f"T{i % 9}",
            "groups": f"g{i % 20};g{(i * 7 + 3) % 20}",
        }
        for i in range(users)
    ]


async def run(users: int, rate: float, seed: int, most: int, retry: RetryPolicy) -> dict[str, Any]:
    server = ScimTestServer(token=TOKEN)
    stats = RequestStats()
    client = AsyncScimClient(
        http=server.async_client(),
        auth=BearerToken(TOKEN),
        retry=retry,
        on_request=[stats.on_request],
        on_retry=[stats.on_retry],
    )
    provisioner = Provisioner(
        MemorySource(users=people(users)),
        MAPPING,
        ScimTarget(client),
        Policy(),
        request_stats=stats,
    )
    cycles = None
    async with client:
        for cycle in range(most):
            server.faults = Faults(rate=rate, seed=seed * 100 + cycle, kinds=KINDS, retry_after=1)
            report = await provisioner.arun_once(full=True)
            if report.ok:
                cycles = cycle + 1
                break
        server.faults = None
    names = Counter(
        u.user_name for u in server.users() if not (u.user_name or "").startswith("drift-")
    )
    return {
        "cycles": cycles,
        "requests": stats.requests,
        "duplicates": sum(1 for count in names.values() if count > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rates", default="0.2,0.1")
    parser.add_argument("--most", type=int, default=8)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # each fault is logged; the counts are the point
    print(f"# {args.users} users, 20 groups, every fault kind; {machine()}")
    peer_retry = RetryPolicy(
        read_retry_statuses=DEFAULT_RETRY_STATUSES, retry_cut_short_reads=False
    )
    rows = []
    with no_waits():
        for rate in (float(r) for r in args.rates.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                ours = asyncio.run(run(args.users, rate, seed, args.most, RetryPolicy()))
                peer = asyncio.run(run(args.users, rate, seed, args.most, peer_retry))

                def shown(result: dict[str, Any]) -> str:
                    cycles = result["cycles"] or f">{args.most}"
                    return f"{cycles} ({result['requests']} req, {result['duplicates']} dup)"

                rows.append(
                    (f"{rate:.0%} faults, seed {seed}: cycles", shown(ours), shown(peer), "")
                )
    print_rows("Cycles to converge under every kind of fault (peer: reads retried as writes)", rows)


if __name__ == "__main__":
    main()
