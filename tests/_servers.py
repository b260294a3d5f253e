"""Real HTTP servers on 127.0.0.1 for integration tests, started and stopped by the tests.

- :func:`scim2_server_process`: the independent ``scim2-server`` from PyPI, as a
  subprocess (HTTP/1.0, a new connection per request, backlog 5);
- :func:`scim2_server_asgi`: the same implementation served by uvicorn in a thread,
  for tests that send many requests at once;
- :class:`ScriptedServer`: a stdlib HTTP/1.1 server whose answers a test scripts, for
  misbehaviour no real server shows on demand (dropped connections after a commit,
  HTML error pages, ``Retry-After``);
- :class:`TokenEndpoint`: an OAuth 2.0 client-credentials token endpoint, to serve
  from a :class:`ScriptedServer`;
- :class:`Stream`: an answer a :class:`ScriptedServer` writes chunk by chunk, for
  hostile targets (endless bodies, bodies dripping a byte at a time).

None of them sleeps to wait for readiness: sockets are bound and listening before a
test gets the URL.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus

import attrs

__all__ = [
    "Drop",
    "Reply",
    "Request",
    "ScriptedServer",
    "Stream",
    "TokenEndpoint",
    "free_port",
    "scim2_server_asgi",
    "scim2_server_process",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def scim2_server_process(bearer_tokens: Sequence[str] = ()) -> Iterator[str]:
    """Run ``scim2-server`` on a free loopback port; yield its base URL (``.../v2``)."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from scim2_server.testserver.cli import main; main()",
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    for token in bearer_tokens:
        command += ["--bearer-token", token]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        # The server prints this line once its socket listens.
        banner = process.stdout.readline()
        if "Serving SCIM on" not in banner:
            raise RuntimeError(f"scim2-server did not start: {banner!r}")
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _scim2_asgi_app() -> Any:
    from scim2_models import ScimProvider
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=load_default_service_provider_config(),
    )
    return ASGIApplication(AsyncInMemoryStorage(), provider, ScimService(provider))


@contextlib.contextmanager
def scim2_server_asgi() -> Iterator[str]:
    """Serve scim2-server's ASGI app with uvicorn in a thread; yield its base URL."""
    import uvicorn

    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (else
    # each answer waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue here until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(_scim2_asgi_app(), log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@attrs.frozen
class Request:
    """A request a :class:`ScriptedServer` received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body, parsed as an HTML form."""
        pairs = (item.split("=", 1) for item in self.body.decode().split("&") if item)
        return {unquote_plus(key): unquote_plus(value) for key, value in pairs}


@attrs.frozen
class Reply:
    """Answer with this status, JSON body (or raw bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        """The body as bytes, with its content type."""
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "text/html")
        if self.body is None:
            return b"", "application/scim+json"
        return json.dumps(self.body).encode(), "application/scim+json"


@attrs.frozen
class Drop:
    """Read the whole request, then close the connection without answering."""


@attrs.frozen
class Stream:
    """Answer with ``status`` and ``headers``, then write ``chunks`` one by one.

    The body goes out chunked (``Transfer-Encoding: chunked``) unless ``headers`` give
    a ``Content-Length``; each chunk waits ``interval`` seconds first. Writing stops
    when the client hangs up. ``chunks`` may be endless: it is consumed lazily.
    """

    chunks: Iterable[bytes]
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    interval: float = 0.0


Script = Callable[[Request], "Reply | Drop | Stream"]


class ScriptedServer:
    """A loopback HTTP/1.1 server answering each request with ``script(request)``.

    ``requests`` lists every request received, in order; ``streamed`` counts the body
    bytes of :class:`Stream` answers that left the server. Use it as a context manager.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.streamed = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave without a delayed ACK

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                with outer._lock:
                    outer.requests.append(request)
                action = outer.script(request)
                if isinstance(action, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, Stream):
                    self._stream(action)
                    return
                payload, content_type = action.encoded()
                self.send_response(action.status)
                headers = {"Content-Type": content_type, **action.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, action: Stream) -> None:
                self.send_response(action.status)
                headers = {"Content-Type": "application/scim+json", **action.headers}
                chunked = "Content-Length" not in headers
                if chunked:
                    headers["Transfer-Encoding"] = "chunked"
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.close_connection = True
                try:
                    for chunk in action.chunks:
                        if action.interval:
                            time.sleep(action.interval)
                        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                        self.wfile.write(framed)
                        with outer._lock:
                            outer.streamed += len(chunk)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client hung up: what it did not read stays unsent
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval lets shutdown() return at once instead of after 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class TokenEndpoint:
    """An OAuth 2.0 token endpoint (client credentials, HTTP Basic client auth).

    Issues ``tokens`` in order (the last one again once they run out) with
    ``expires_in`` seconds of life. ``issued`` counts the tokens handed out.
    """

    def __init__(
        self, client_id: str, client_secret: str, tokens: Sequence[str], expires_in: int = 3600
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens = list(tokens)
        self.expires_in = expires_in
        self.issued = 0
        self.scopes: list[str | None] = []

    def __call__(self, request: Request) -> Reply | Drop:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return Reply(401, {"error": "invalid_client"})
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        self.scopes.append(form.get("scope"))
        token = self.tokens[min(self.issued, len(self.tokens) - 1)]
        self.issued += 1
        return Reply(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            {"Cache-Control": "no-store"},
        )
