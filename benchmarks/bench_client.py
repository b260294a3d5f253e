"""Create users over loopback HTTP with 20 ms of server latency: scimsync vs scim2-client.

Three runs against the same ScimTestServer, in the same process:

- ``ScimClient``, one create after the other;
- scim2-client's ``SyncSCIMClient`` (the peer), one create after the other;
- ``AsyncScimClient`` with 16 creates in flight (``max_concurrency=16``).

The server is scimsync's ``ScimTestServer`` over HTTP/1.1 in a subprocess (so it does
not share the clients' interpreter), with a latency fault on every request: each
answer comes ``--latency`` seconds late, like a SCIM target that takes 20 ms per
create. Prints requests per second and the ratios (goals: sync >= the peer, async at
concurrency 16 >= 10x sync). A second, short run without latency shows each
client's own cost per request.

    python benchmarks/bench_client.py [--users 2000] [--latency 0.02] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

from _common import machine, print_rows

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def server(latency: float) -> Iterator[str]:
    """Run ScimTestServer in a subprocess, every answer ``latency`` s late; yield its URL."""
    command = [sys.executable, "-m", "scimsync.testing", "--port", "0", "--no-auth"]
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


def run_scimsync_sync(url: str, users: int) -> float:
    """Seconds for ``users`` sequential creates with ScimClient."""
    from scimsync import User
    from scimsync.client import ScimClient

    run = uuid.uuid4().hex[:8]  # the server keeps userNames unique

    with ScimClient(url) as client:
        client.create(User(user_name=f"{run}-warm-up"))
        start = time.perf_counter()
        for i in range(users):
            client.create(User(user_name=f"{run}-{i}", active=True))
        return time.perf_counter() - start


def run_peer_sync(url: str, users: int) -> float:
    """Seconds for ``users`` sequential creates with scim2-client over httpx2."""
    import httpx2
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import ResourceType, ScimProvider
    from scim2_models import User as PeerUser

    run = uuid.uuid4().hex[:8]

    provider = ScimProvider(
        models=[PeerUser], resource_types=[ResourceType.from_resource(PeerUser)]
    )
    with httpx2.Client(base_url=url) as http:
        client = SyncSCIMClient(http, provider=provider)
        client.create(PeerUser(user_name=f"{run}-warm-up"))
        start = time.perf_counter()
        for i in range(users):
            client.create(PeerUser(user_name=f"{run}-{i}", active=True))
        return time.perf_counter() - start


def run_scimsync_async(url: str, users: int, concurrency: int) -> float:
    """Seconds for ``users`` creates with AsyncScimClient, ``concurrency`` in flight."""
    from scimsync import User
    from scimsync.client import AsyncScimClient

    run = uuid.uuid4().hex[:8]

    async def main() -> float:
        async with AsyncScimClient(url, max_concurrency=concurrency) as client:
            await client.create(User(user_name=f"{run}-warm-up"))
            start = time.perf_counter()
            await asyncio.gather(
                *(client.create(User(user_name=f"{run}-{i}", active=True)) for i in range(users))
            )
            return time.perf_counter() - start

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--overhead-users", type=int, default=1000, help="creates of the 0 ms latency run"
    )
    args = parser.parse_args()

    print(f"# {machine()}")
    print(
        f"# {args.users} user creates, {args.latency * 1000:.0f} ms server latency, "
        "ScimTestServer over loopback HTTP/1.1 in a subprocess"
    )
    if importlib.util.find_spec("sniffio") is None:
        # httpcore 1.0 retries a failed `import sniffio` for every async lock it makes
        # (encode/httpcore#1103); anyio >= 4.11 no longer installs sniffio.
        print("# sniffio is not installed: httpcore's async pool pays a failed import per request")
    with server(args.latency) as url:
        ours = run_scimsync_sync(url, args.users)
        peer = run_peer_sync(url, args.users)
        concurrent = run_scimsync_async(url, args.users, args.concurrency)
    # Without latency the clients' own cost per request shows (the server's too).
    with server(0.0) as url:
        ours_bare = run_scimsync_sync(url, args.overhead_users)
        peer_bare = run_peer_sync(url, args.overhead_users)

    def rate(seconds: float, count: int = args.users) -> float:
        return count / seconds

    print_rows(
        "Sequential creates: ScimClient vs scim2-client (requests/s, higher is better)",
        [
            (
                "creates/s",
                f"{rate(ours):.1f}",
                f"{rate(peer):.1f}",
                f"{rate(ours) / rate(peer):.2f}x",
            ),
            (
                "creates/s, 0 ms latency",
                f"{rate(ours_bare, args.overhead_users):.0f}",
                f"{rate(peer_bare, args.overhead_users):.0f}",
                f"{peer_bare / ours_bare:.2f}x",
            ),
        ],
    )
    print_rows(
        f"AsyncScimClient at concurrency {args.concurrency} vs sequential ScimClient",
        [
            (
                "creates/s",
                f"{rate(concurrent):.1f}",
                f"{rate(ours):.1f} (sync)",
                f"{rate(concurrent) / rate(ours):.1f}x",
            )
        ],
    )


if __name__ == "__main__":
    main()
