"""Create users over loopback HTTP with 20 ms of server latency: scimsync vs scim2-client.

Three runs against the same server, in the same process:

- ``ScimClient``, one create after the other;
- scim2-client's ``SyncSCIMClient`` (the peer), one create after the other;
- ``AsyncScimClient`` with 16 creates in flight (``max_concurrency=16``).

The server is a small ASGI app under uvicorn in a subprocess (so it does not share
the client's interpreter): it answers ``POST /v2/Users`` after ``--latency`` seconds
with the user and a fresh id, like a SCIM target that takes 20 ms per create.
Prints requests per second and the ratios (goals: sync >= the peer, async at
concurrency 16 >= 10x sync). A second, short run without latency shows each
client's own cost per request.

    python benchmarks/bench_client.py [--users 2000] [--latency 0.02] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from _common import machine, print_rows

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

Scope = dict[str, Any]


def make_app(latency: float) -> Callable[..., Awaitable[None]]:
    """An ASGI app creating users at ``POST /v2/Users`` after ``latency`` seconds."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/v2/Users":
            user = json.loads(body)
            user_id = uuid.uuid4().hex
            user.update(
                id=user_id,
                meta={
                    "resourceType": "User",
                    "location": f"http://127.0.0.1/v2/Users/{user_id}",
                    "version": 'W/"1"',
                },
            )
            status, payload = 201, json.dumps(user).encode()
        else:
            status, payload = 404, b'{"status": "404"}'
        await asyncio.sleep(latency)
        headers = [
            (b"content-type", b"application/scim+json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def serve(latency: float) -> None:
    """Server mode: bind a loopback port, print it, serve until killed."""
    import uvicorn

    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without
    # it every answer waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(make_app(latency), log_level="error", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def server(latency: float) -> Iterator[str]:
    """Run the server in a subprocess; yield its SCIM base URL."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_scimsync_sync(url: str, users: int) -> float:
    """Seconds for ``users`` sequential creates with ScimClient."""
    from scimsync import User
    from scimsync.client import ScimClient

    with ScimClient(url) as client:
        client.create(User(user_name="warm-up-sync"))
        start = time.perf_counter()
        for i in range(users):
            client.create(User(user_name=f"sync-{i}", active=True))
        return time.perf_counter() - start


def run_peer_sync(url: str, users: int) -> float:
    """Seconds for ``users`` sequential creates with scim2-client over httpx2."""
    import httpx2
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import ResourceType, ScimProvider
    from scim2_models import User as PeerUser

    provider = ScimProvider(
        models=[PeerUser], resource_types=[ResourceType.from_resource(PeerUser)]
    )
    with httpx2.Client(base_url=url) as http:
        client = SyncSCIMClient(http, provider=provider)
        client.create(PeerUser(user_name="warm-up-peer"))
        start = time.perf_counter()
        for i in range(users):
            client.create(PeerUser(user_name=f"peer-{i}", active=True))
        return time.perf_counter() - start


def run_scimsync_async(url: str, users: int, concurrency: int) -> float:
    """Seconds for ``users`` creates with AsyncScimClient, ``concurrency`` in flight."""
    from scimsync import User
    from scimsync.client import AsyncScimClient

    async def main() -> float:
        async with AsyncScimClient(url, max_concurrency=concurrency) as client:
            await client.create(User(user_name="warm-up-async"))
            start = time.perf_counter()
            await asyncio.gather(
                *(client.create(User(user_name=f"async-{i}", active=True)) for i in range(users))
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
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return

    print(f"# {machine()}")
    print(
        f"# {args.users} user creates, {args.latency * 1000:.0f} ms server latency, "
        "loopback HTTP/1.1 (uvicorn in a subprocess)"
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
