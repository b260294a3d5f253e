"""Fan-out: one source into 20 targets of 5,000 users, 5 ms of latency each, in one process.

Each target is its own ScimTestServer in a subprocess (so the servers do not share
the clients' interpreter), every answer ``--latency`` seconds late. The source is a
``MemorySource`` that counts its reads; half the targets map ``title`` and half do
not, so each has a mapping of its own. Every target has its own ``AsyncScimClient``
(``--concurrency`` requests in flight) and its own SQLite state.

- scimsync: one ``FanOut`` over the targets' ``Provisioner`` objects, from a plain
  script: the source is read once a cycle, every target's cycle runs on that read,
  concurrently, on one event loop;
- the peer, measured in the same run against fresh servers: the same ``Provisioner``
  objects without the fan-out, each on its own (each ``run_once`` in a thread of its
  own, all at once), each reading the source itself.

Each runs three cycles: the first sync (every user created), a no-change cycle forced
to read every target whole (``full=True``), and an incremental no-change cycle (the
source did not change: no target is read). Prints wall time and source reads.

    python benchmarks/bench_fanout.py [--targets 20] [--users 5000] [--latency 0.005]
    python benchmarks/bench_fanout.py --targets 3 --users 200     # quick
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import machine, print_rows
from bench_sync import records, server

from scimsync import FanOut, Provisioner
from scimsync.client import AsyncScimClient
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, SqliteStateStore
from scimsync.targets import ScimTarget

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scimsync.sources import SourceItem

MAPPINGS = (
    Mapping(users={"userName": "email", "displayName": "name", "title": "title"}),
    Mapping(users={"userName": "email", "displayName": "name"}),
)

CYCLES = (("first sync", False), ("no-change cycle (full)", True), ("incremental", False))


class CountingSource:
    """A MemorySource that counts how many times it is read."""

    def __init__(self, users: int) -> None:
        self.inner = MemorySource(users=records(users))
        self.reads = 0
        self._lock = threading.Lock()

    def read(self) -> Iterator[SourceItem]:
        with self._lock:
            self.reads += 1
        return self.inner.read()

    def take(self) -> int:
        with self._lock:
            taken, self.reads = self.reads, 0
        return taken


@contextlib.contextmanager
def servers(count: int, latency: float) -> Iterator[list[str]]:
    """``count`` ScimTestServer subprocesses; yield their URLs."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(server(latency)) for _ in range(count)]


def provisioners(
    source: CountingSource, urls: list[str], folder: Path, concurrency: int
) -> list[Provisioner]:
    """One provisioner per target: its own mapping, client, state and concurrency."""
    made = []
    for i, url in enumerate(urls):
        client = AsyncScimClient(url, max_concurrency=concurrency)
        made.append(
            Provisioner(
                source,
                MAPPINGS[i % 2],
                ScimTarget(client, page_size=1000),
                state=SqliteStateStore(folder / f"state-{i}.db"),
                apply_policy=ApplyPolicy(concurrency=concurrency),
            )
        )
    return made


def check(name: str, reports: list[Any]) -> None:
    for report in reports:
        if not report.ok:
            raise SystemExit(f"the {name} cycle did not succeed:\n{report}")


def run_fanout(args: argparse.Namespace) -> dict[str, tuple[float, int]]:
    """The three cycles through one FanOut: (seconds, source reads) each."""
    source = CountingSource(args.users)
    out: dict[str, tuple[float, int]] = {}
    with servers(args.targets, args.latency) as urls, tempfile.TemporaryDirectory() as folder:
        made = provisioners(source, urls, Path(folder), args.concurrency)
        with FanOut(source, made) as fan_out:
            for name, full in CYCLES:
                start = time.perf_counter()
                report = fan_out.run_once(full=full)
                out[name] = (time.perf_counter() - start, source.take())
                if not report.ok:
                    raise SystemExit(f"the {name} fan-out cycle did not succeed:\n{report}")
        for provisioner in made:
            provisioner.state.close()  # type: ignore[attr-defined]
    return out


def run_separate(args: argparse.Namespace) -> dict[str, tuple[float, int]]:
    """The peer: the same provisioners, each on its own, all at once in threads."""
    source = CountingSource(args.users)
    out: dict[str, tuple[float, int]] = {}
    with servers(args.targets, args.latency) as urls, tempfile.TemporaryDirectory() as folder:
        made = provisioners(source, urls, Path(folder), args.concurrency)
        with ThreadPoolExecutor(max_workers=len(made)) as pool:
            for name, full in CYCLES:
                start = time.perf_counter()
                reports = list(pool.map(lambda p, full=full: p.run_once(full=full), made))
                out[name] = (time.perf_counter() - start, source.take())
                check(name, reports)
        for provisioner in made:
            provisioner.close()
            provisioner.state.close()  # type: ignore[attr-defined]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    print(machine())
    print(
        f"{args.targets} targets x {args.users:,} users, ScimTestServer subprocesses, "
        f"{args.latency * 1000:g} ms per answer; concurrency {args.concurrency} per target"
    )
    ours = run_fanout(args)
    peer = run_separate(args)

    rows = []
    for name, _ in CYCLES:
        ours_s, ours_reads = ours[name]
        peer_s, peer_reads = peer[name]
        ratio = f"{peer_s / ours_s:.2f}x the peer's speed" if ours_s > 0 else ""
        rows.append((f"{name}: wall time (s)", f"{ours_s:.2f}", f"{peer_s:.2f}", ratio))
        rows.append((f"{name}: source reads", str(ours_reads), str(peer_reads), ""))
    print_rows(
        f"Fan-out: {args.targets} targets x {args.users:,} users, "
        f"{args.latency * 1000:g} ms latency (peer: {args.targets} separate Provisioners, "
        "same run)",
        rows,
    )


if __name__ == "__main__":
    main()
