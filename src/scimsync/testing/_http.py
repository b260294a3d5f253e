"""The HTTP front end: the service over real HTTP/1.1 on a loopback port, stdlib only.

A :class:`http.server.ThreadingHTTPServer` with keep-alive (one thread per
connection), Nagle off and each answer written in one ``send``. Connection faults
are real: a reset closes the socket with ``SO_LINGER`` 0 (the client reads a TCP
RST), a timeout holds the connection without answering until the client gives up
or the server stops. Stopping closes every open connection and joins every thread.
"""

from __future__ import annotations

import contextlib
import http
import select
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ._wire import WireRequest, WireResponse, error_body, json_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._service import ScimService

__all__ = ["HttpFrontend"]

_NO_BODY = frozenset({204, 304})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # The service answers every other method with a SCIM error (405), as in-process.
    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def do_TRACE(self) -> None:
        self._serve()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library would answer in HTML (an unknown method, a bad
        request line, headers too long), as a SCIM error: every error is one."""
        self.close_connection = True
        detail = message or http.HTTPStatus(code).phrase
        self._write(json_response(code, error_body(code, detail)))

    def _serve(self) -> None:
        frontend = self.server.frontend
        service = frontend.service
        body = self._read_body(service.max_body_bytes)
        if body is None:
            return
        if len(body) > service.max_body_bytes:
            # The rest of the body is still on the wire: answer, then hang up.
            self.close_connection = True
        target = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = WireRequest(
            method=self.command,
            path=unquote(target.path),
            query=target.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            origin=f"http://{host}",
        )
        response = service.handle(request)
        if response.delay:
            frontend.sleep(response.delay)
        if response.disconnect == "reset":
            self._reset()
        elif response.disconnect == "timeout":
            self._hold()
        else:
            self._write(response)

    def _read_body(self, limit: int) -> bytes | None:
        """The body, at most ``limit + 1`` bytes of it; None after answering a framing error."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunks(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._write(json_response(400, error_body(400, "bad Content-Length")))
            return None
        return self.rfile.read(min(length, limit + 1))

    def _read_chunks(self, limit: int) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self._write(json_response(400, error_body(400, "bad chunked encoding")))
                return None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            data = self.rfile.read(min(chunk, limit + 1 - size))
            parts.append(data)
            size += len(data)
            if len(data) == chunk:
                self.rfile.readline(8)  # the CRLF after each chunk
        return b"".join(parts)

    def _write(self, response: WireResponse) -> None:
        status = response.status
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        body = b"" if status in _NO_BODY else response.body
        if status not in _NO_BODY:
            lines.append(f"Content-Length: {len(body)}")
        if getattr(self, "command", None) == "HEAD":
            body = b""  # the headers a GET would have, without the body
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _hold(self) -> None:
        """Answer nothing until the client hangs up or the server stops."""
        self.close_connection = True
        stopping = self.server.frontend.stopping
        connection = self.connection
        while not stopping.is_set():
            readable, _, _ = select.select([connection], [], [], 0.05)
            if readable:
                try:
                    if not connection.recv(65536):
                        return
                except OSError:
                    return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 stalls concurrent clients

    def __init__(self, address: tuple[str, int], frontend: HttpFrontend) -> None:
        self.frontend = frontend
        self.open: dict[socket.socket, threading.Thread] = {}
        self.open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request (killed, timed out) is no fault of the
        # server's: the default prints a traceback to stderr for each one.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.open_lock:
                self.open.pop(request, None)


class HttpFrontend:
    """Serve a :class:`ScimService` over HTTP on ``host:port`` (0: any free port)."""

    def __init__(
        self,
        service: ScimService,
        *,
        host: str,
        port: int,
        sleep: Callable[[float], object] | None,
    ) -> None:
        self.service = service
        self.stopping = threading.Event()
        self._sleep = sleep
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scim-test-server:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` with the injected sleep, or really."""
        if self._sleep is None:
            time.sleep(seconds)
        else:
            self._sleep(seconds)

    def stop(self) -> None:
        """Stop accepting, close open connections, and wait for every thread to end."""
        self.stopping.set()
        self._server.shutdown()
        with self._server.open_lock:
            open_connections = dict(self._server.open)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        for thread in open_connections.values():
            thread.join(timeout=10)
        self._thread.join(timeout=10)
