"""Requests per no-change cycle on targets that do not keep what they are told.

For each quirk of real SCIM providers (and all of them together), ``--users`` people
in 10 groups are synced into a ScimTestServer with that quirk (in-process transport):
cycles run until one plans nothing, at most ``--cycles``. Reported per target: the
cycles it took, and the requests of the third, no-change cycle split into listing GETs
and everything else, which must be zero.

The peer, in the same run on a fresh server with the same quirk: the same provisioner
with ``ApplyPolicy(verify_writes=False)``, which trusts every 2xx and so never learns
what the target drops (what a client that compares against the target without
checking its writes does): its writes per no-change cycle are what learning saves.

    python benchmarks/bench_targets.py [--users 1000] [--cycles 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter
from typing import Any

import attrs
from _common import machine, print_rows

from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.engine import Policy
from scimsync.mapping import Mapping, lower, template
from scimsync.retry import no_waits
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy
from scimsync.targets import ScimTarget
from scimsync.testing import Quirks, ScimTestServer

TOKEN = "bench-targets-token"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MAPPING = Mapping(
    users={
        "userName": lower("email"),
        "name.givenName": "given",
        "name.familyName": "family",
        "displayName": template("{given} {family}"),
        "title": "title",
        'emails[type eq "work"].value': lower("email"),
    },
    member_of="group",
)

QUIRKS: dict[str, Quirks] = {
    "RFC-faithful": Quirks(),
    "title dropped": Quirks(dropped_attributes=("title",)),
    "emails.type dropped": Quirks(dropped_attributes=("emails.type",)),
    "PATCH add refused": Quirks(patch_add_refused_for=("User",)),
    "PATCH replace refused": Quirks(patch_replace_refused_for=("User",)),
    "PATCH refused for groups": Quirks(patch_refused_for=("Group",)),
    "no totalResults": Quirks(discovery_total_results=False, listing_total_results=False),
    "all together": attrs.evolve(
        Quirks.profile("lossy"),
        patch_refused_for=("Group",),
        listing_total_results=False,
        items_per_page_echoes_count=True,
        start_index_past_end_restarts=True,
        page_size_cap=20,
        locked_writes_rate=0.0,
    ),
}


def people(users: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "email": f"user{i}@example.com",
            "given": "Given",
            "family": f"Family{i}",
            "title": f"T{i % 5}",
            "group": f"g{i % 10}",
        }
        for i in range(users)
    ]


def kind(details: RequestDetails) -> str:
    """``write``, ``listing`` (a GET of /Users or /Groups) or ``other read``."""
    if details.method in WRITES:
        return "write"
    if details.method == "GET" and details.url.rstrip("/").endswith(("/Users", "/Groups")):
        return "listing"
    return "other read"


async def run(quirks: Quirks, users: int, cycles: int, *, verify: bool) -> dict[str, Any]:
    """Cycles until one plans nothing; the requests of the third cycle by kind."""
    server = ScimTestServer(token=TOKEN, quirks=quirks, max_page_size=1000)
    sent: list[RequestDetails] = []
    client = AsyncScimClient(
        http=server.async_client(), auth=BearerToken(TOKEN), on_request=[sent.append]
    )
    provisioner = Provisioner(
        MemorySource(users=people(users)),
        MAPPING,
        ScimTarget(client, page_size=1000),
        Policy(),
        apply_policy=ApplyPolicy(verify_writes=verify, concurrency=16),
        full_cycle_every=None,
    )
    settled = None
    third: Counter[str] = Counter()
    async with client:
        for cycle in range(1, cycles + 1):
            sent.clear()
            report = await provisioner.arun_once(full=True)
            if cycle == 3:
                third = Counter(map(kind, sent))
            if settled is None and not report.planned:
                settled = cycle
    return {"settled": settled, "third": third}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the warnings each target earns are the point, not output
    print(f"# {args.users} users in 10 groups per target; {machine()}")
    rows = []
    with no_waits():
        for name, quirks in QUIRKS.items():
            ours = asyncio.run(run(quirks, args.users, args.cycles, verify=True))
            peer = asyncio.run(run(quirks, args.users, args.cycles, verify=False))
            third, peer_third = ours["third"], peer["third"]
            settled = ours["settled"] or f">{args.cycles}"
            peer_settled = peer["settled"] or f">{args.cycles}"
            rows.append(
                (f"{name}: cycles until nothing is planned", str(settled), str(peer_settled), "")
            )
            rows.append(
                (
                    f"{name}: requests in no-change cycle 3 (listing GETs + other)",
                    f"{third['listing']} + {third['other read'] + third['write']}",
                    f"{peer_third['listing']} + {peer_third['other read'] + peer_third['write']}",
                    "",
                )
            )
            rows.append(
                (
                    f"{name}: writes in no-change cycle 3",
                    str(third["write"]),
                    str(peer_third["write"]),
                    "",
                )
            )
    print_rows("Requests per no-change cycle on quirky targets (peer: writes not checked)", rows)


if __name__ == "__main__":
    main()
