"""A 10,000-user sync over loopback HTTP with 5 ms of server latency: scimsync vs a naive script.

Against ScimTestServer over HTTP/1.1 in a subprocess (so it does not share the
clients' interpreter), each answer ``--latency`` seconds late, like a SCIM target
that takes 5 ms per request:

- scimsync: ``Provisioner.run_once()`` from a plain script (``ScimTarget`` on
  ``AsyncScimClient``, ``--concurrency`` operations in flight, state in SQLite):
  the initial sync, then a no-change cycle forced to read the whole target (only
  the listing GETs may be sent, and it should take about as long as those GETs
  alone, timed apart), then an incremental no-change cycle (the source did not
  change: no request at all);
- the peer, measured in the same run against a fresh server with the same latency:
  what a hand-rolled script does — for each user, one GET by filter on ``userName``,
  then a POST when it is missing or a PATCH when it differs, one after the other, with
  plain ``httpx``. Run twice: the initial sync, then the no-change pass. (The test
  server evaluates a filter by scanning every user, so each of the peer's lookups
  also costs server time that grows with the number of users, as it would on a
  target without an index on ``userName``.)

Prints wall time, requests and requests per second for each.

    python benchmarks/bench_sync.py [--users 10000] [--latency 0.005] [--concurrency 16]
    python benchmarks/bench_sync.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from _common import machine, print_rows

from scimsync import Provisioner, User
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, SqliteStateStore
from scimsync.targets import ScimTarget

if TYPE_CHECKING:
    from collections.abc import Iterator

MAPPING = Mapping(users={"userName": "email", "displayName": "name", "title": "title"})


def records(users: int) -> list[dict[str, Any]]:
    """The source: ``users`` people, as a directory export would list them."""
    return [
        {"id": f"e{i}", "email": f"user{i}@example.com", "name": f"User {i}", "title": f"T{i % 7}"}
        for i in range(users)
    ]


@contextlib.contextmanager
def server(latency: float) -> Iterator[str]:
    """Run ScimTestServer in a subprocess, every answer ``latency`` s late; yield its URL."""
    command = [
        sys.executable,
        "-m",
        "scimsync.testing",
        "--port",
        "0",
        "--no-auth",
        "--max-page-size",
        "1000",
    ]
    if latency > 0:
        command += ["--faults-rate", "1", "--faults-kinds", "latency"]
        command += ["--faults-latency", str(latency)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # "Serving SCIM 2.0 at <url>" once listening
        yield banner.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


class Requests:
    """Requests by method, counted by the client's ``on_request`` hook."""

    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, details: RequestDetails) -> None:
        with self._lock:
            self.by_method[details.method] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.by_method = self.by_method, Counter()
        return taken


def run_scimsync(url: str, users: int, concurrency: int) -> dict[str, Any]:
    """Initial sync, full no-change cycle, incremental no-change cycle, and the listing alone."""
    counted = Requests()
    client = AsyncScimClient(url, max_concurrency=concurrency, on_request=[counted])
    target = ScimTarget(client, page_size=1000)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        state = SqliteStateStore(Path(folder) / "state.db")
        with Provisioner(
            MemorySource(users=records(users)),
            MAPPING,
            target,
            state=state,
            apply_policy=ApplyPolicy(concurrency=concurrency),
        ) as provisioner:
            for name, full in (("initial", False), ("full", True), ("incremental", False)):
                start = time.perf_counter()
                report = provisioner.run_once(full=full)
                out[name] = (time.perf_counter() - start, counted.take())
                if not report.ok:
                    raise SystemExit(f"the {name} cycle did not succeed:\n{report}")
        state.close()
    out["listing"] = list_only(url)
    return out


def list_only(url: str) -> tuple[float, Counter[str]]:
    """Seconds and requests to list every user and group, and nothing else."""
    counted = Requests()

    async def main() -> float:
        async with AsyncScimClient(url, on_request=[counted]) as client:
            target = ScimTarget(client, page_size=1000)
            start = time.perf_counter()
            await asyncio.gather(target.list_users(), target.list_groups())
            return time.perf_counter() - start

    return asyncio.run(main()), counted.take()


def run_naive(url: str, users: int) -> dict[str, Any]:
    """The peer: per user, GET by filter, then POST or PATCH; sequential, plain httpx."""
    wanted = records(users)
    counted: Counter[str] = Counter()
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url.rstrip("/") + "/") as http:

        def one_pass() -> None:
            for record in wanted:
                body = {
                    "schemas": [User.schema_urn],
                    "externalId": record["id"],
                    "userName": record["email"],
                    "displayName": record["name"],
                    "title": record["title"],
                }
                flt = f"userName eq {json.dumps(record['email'])}"
                found = http.get("Users", params={"filter": flt})
                counted["GET"] += 1
                found.raise_for_status()
                page = found.json()
                if not page.get("totalResults"):
                    http.post("Users", json=body).raise_for_status()
                    counted["POST"] += 1
                    continue
                existing = page["Resources"][0]
                changed = [
                    {"op": "replace", "path": name, "value": body[name]}
                    for name in ("displayName", "title")
                    if existing.get(name) != body[name]
                ]
                if changed:
                    patch = {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": changed,
                    }
                    http.patch(f"Users/{existing['id']}", json=patch).raise_for_status()
                    counted["PATCH"] += 1

        for name in ("initial", "full"):
            start = time.perf_counter()
            one_pass()
            out[name] = (time.perf_counter() - start, counted.copy())
            counted.clear()
    return out


def describe(requests: Counter[str]) -> str:
    total = sum(requests.values())
    parts = ", ".join(f"{count:,} {method}" for method, count in sorted(requests.items()))
    return f"{total:,} ({parts})" if parts else "0"


def writes(requests: Counter[str]) -> int:
    return sum(count for method, count in requests.items() if method != "GET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="500 users, to check the script")
    args = parser.parse_args()
    users = 500 if args.quick else args.users

    print(machine())
    print(
        f"{users:,} users over loopback HTTP, ScimTestServer in a subprocess, "
        f"{args.latency * 1000:g} ms per answer; scimsync at concurrency {args.concurrency}"
    )
    with server(args.latency) as url:
        ours = run_scimsync(url, users, args.concurrency)
    with server(args.latency) as url:
        peer = run_naive(url, users)

    for name in ("full", "incremental"):
        if writes(ours[name][1]):
            raise SystemExit(f"the {name} no-change cycle wrote: {describe(ours[name][1])}")

    def seconds(value: float) -> str:
        return f"{value:.2f} s"

    def rate(entry: tuple[float, Counter[str]]) -> str:
        return f"{sum(entry[1].values()) / entry[0]:,.0f}"

    def faster(ours_s: float, peer_s: float) -> str:
        return f"{peer_s / ours_s:.1f}x faster" if ours_s > 0 else ""

    rows = [
        (
            "initial sync: wall time",
            seconds(ours["initial"][0]),
            seconds(peer["initial"][0]),
            faster(ours["initial"][0], peer["initial"][0]),
        ),
        ("initial sync: requests", describe(ours["initial"][1]), describe(peer["initial"][1]), ""),
        ("initial sync: requests/s", rate(ours["initial"]), rate(peer["initial"]), ""),
        (
            "no-change cycle (full): wall time",
            seconds(ours["full"][0]),
            seconds(peer["full"][0]),
            faster(ours["full"][0], peer["full"][0]),
        ),
        (
            "no-change cycle (full): requests",
            describe(ours["full"][1]),
            describe(peer["full"][1]),
            "",
        ),
        (
            "the listing GETs alone: wall time",
            seconds(ours["listing"][0]) + f", {describe(ours['listing'][1])}",
            "",
            "",
        ),
        (
            "no-change cycle (incremental): wall time",
            seconds(ours["incremental"][0]) + f", {describe(ours['incremental'][1])} requests",
            "",
            "",
        ),
    ]
    print_rows(
        f"Sync of {users:,} users, {args.latency * 1000:g} ms latency "
        "(peer: naive script, GET-by-filter then POST/PATCH per user)",
        rows,
    )


if __name__ == "__main__":
    main()
