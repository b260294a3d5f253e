"""Requests per second of ScimTestServer and of scim2-server, same run, same client.

GET-by-id and POST (create a user), each with one keep-alive ``httpx.Client``:

- in-process: scimsync through its httpx transport; scim2-server through httpx's
  WSGI transport over its WSGI application (no sockets either way);
- over HTTP on 127.0.0.1: scimsync's threaded stdlib server; scim2-server's ASGI
  application served by uvicorn (its own command uses the stdlib's HTTP/1.0 wsgiref
  server, which opens a connection per request).

    python benchmarks/bench_server.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
from _common import machine, print_rows, timed

from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
_names = itertools.count()


def user_body() -> dict[str, Any]:
    """A distinct, realistic user to create."""
    n = next(_names)
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"user{n}@example.com",
        "name": {"givenName": "Barbara", "familyName": f"Jensen{n}"},
        "displayName": f"Babs Jensen {n}",
        "active": True,
        "emails": [{"value": f"user{n}@example.com", "type": "work", "primary": True}],
    }


def measure(client: httpx.Client, requests: int) -> tuple[float, float]:
    """Requests/s of GET-by-id and of POST through ``client`` (base URL set to the SCIM root)."""
    created = client.post("Users", json=user_body())
    assert created.status_code == 201, created.text
    path = f"Users/{created.json()['id']}"

    def gets() -> None:
        for _ in range(requests):
            response = client.get(path)
            assert response.status_code == 200

    def posts() -> None:
        for _ in range(requests):
            response = client.post("Users", json=user_body())
            assert response.status_code == 201

    t_get, _ = timed(gets)
    t_post, _ = timed(posts)
    return requests / t_get, requests / t_post


# -- scimsync -----------------------------------------------------------------------------------


def scimsync_in_process(requests: int) -> tuple[float, float]:
    """ScimTestServer through its in-process transport."""
    server = ScimTestServer()
    with server.client(base_url=server.in_process_url + "/") as client:
        return measure(client, requests)


def scimsync_http(requests: int) -> tuple[float, float]:
    """ScimTestServer over loopback HTTP/1.1."""
    with ScimTestServer() as server, httpx.Client(base_url=server.url + "/") as client:
        return measure(client, requests)


# -- scim2-server ---------------------------------------------------------------------------------


def _peer_provider() -> Any:
    from scim2_server.utils import load_default_provider

    return load_default_provider()


def peer_in_process(requests: int) -> tuple[float, float]:
    """scim2-server's WSGI application through httpx's WSGI transport."""
    from scim2_server.applications.wsgi import WSGIApplication
    from scim2_server.memory import InMemoryStorage

    app = WSGIApplication(InMemoryStorage(), _peer_provider())
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver/v2/") as client:
        return measure(client, requests)


@contextlib.contextmanager
def peer_over_uvicorn() -> Iterator[str]:
    """scim2-server's ASGI application served by uvicorn on a free loopback port."""
    import uvicorn
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage

    app = ASGIApplication(AsyncInMemoryStorage(), _peer_provider())
    # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets that say TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v2/"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def peer_http(requests: int) -> tuple[float, float]:
    """scim2-server over loopback HTTP/1.1 (uvicorn)."""
    with peer_over_uvicorn() as url, httpx.Client(base_url=url) as client:
        return measure(client, requests)


def _row(label: str, ours: float, peer: float | None) -> tuple[str, str, str, str]:
    if peer is None:
        return (label, f"{ours:,.0f}", "n/a", "")
    return (label, f"{ours:,.0f}", f"{peer:,.0f}", f"{ours / peer:.1f}x the peer")


def _run_peer(
    fn: Callable[[int], tuple[float, float]], requests: int
) -> tuple[float, float] | None:
    try:
        return fn(requests)
    except ImportError as exc:  # the peers need Python 3.11+
        print(f"# peer skipped: {exc}", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    n = args.requests

    ours_in = scimsync_in_process(n)
    ours_http = scimsync_http(n)
    peer_in = _run_peer(peer_in_process, n)
    peer_net = _run_peer(peer_http, n)

    print(f"# bench_server: {n} requests per measure, best of 3; {machine()}")
    print_rows(
        "SCIM test server: requests per second (keep-alive httpx.Client)",
        [
            _row("in-process GET by id", ours_in[0], peer_in and peer_in[0]),
            _row("in-process POST", ours_in[1], peer_in and peer_in[1]),
            _row("HTTP GET by id", ours_http[0], peer_net and peer_net[0]),
            _row("HTTP POST", ours_http[1], peer_net and peer_net[1]),
        ],
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
