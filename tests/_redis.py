"""A real Redis for the Celery tests: ``redis-server`` on 127.0.0.1 and a free port, with
a throwaway directory, nothing saved to disk, stopped at the end.

:func:`find_redis` looks for ``redis-server`` on ``PATH``, then in ``/usr/bin`` and
``/usr/sbin`` (Debian's package); when none is found the caller skips, saying why.
``.ci/run`` installs the ``redis-server`` Debian package where it can.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING

from _directory import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator


def find_redis() -> str:
    """The ``redis-server`` binary; raise LookupError saying why not."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise LookupError(
        "redis-server was not found on PATH or in /usr/bin, /usr/sbin (Debian: apt-get "
        "install redis-server; .ci/run installs it where it can)"
    )


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")
    return False


@contextlib.contextmanager
def running_redis(*, timeout: float = 30.0) -> Iterator[str]:
    """A throwaway ``redis-server`` on 127.0.0.1; yields its URL (database 0)."""
    binary = find_redis()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-") as directory:
        command = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", directory,
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as server:
            try:
                deadline = time.monotonic() + timeout
                while not _answers(port):
                    if server.poll() is not None:
                        detail = (
                            server.stderr.read().decode(errors="replace") if server.stderr else ""
                        )
                        raise RuntimeError(f"redis-server exited: {detail[-2000:]}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not answer within {timeout} s")
                    time.sleep(0.02)
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(timeout=30)
