"""A real PostgreSQL for the tests and benchmarks: ``initdb`` into a temporary directory,
``pg_ctl start`` on 127.0.0.1 and a free port, stopped at the end.

:func:`find_postgres` looks for ``initdb`` and ``pg_ctl`` on ``PATH``, then in the
directory ``pg_config --bindir`` names, then in the usual Debian and Fedora places
(``/usr/lib/postgresql/<version>/bin``, ``/usr/pgsql-<version>/bin``), newest first.
When none is found the caller skips, saying why; ``.ci/run`` installs the
``postgresql`` Debian package where it can.

PostgreSQL refuses to run as root: when the tests run as root (CI does), the server
runs as an unprivileged account (``postgres`` if the package made it, else
``nobody``) that owns the temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from _directory import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

_BINDIRS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


def _version_key(path: str) -> tuple[int, ...]:
    digits = [int(part) for part in path.replace("-", "/").split("/") if part.isdigit()]
    return tuple(digits)


def find_postgres() -> str:
    """The directory holding ``initdb`` and ``pg_ctl``; raise LookupError saying why not."""
    candidates: list[str] = []
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        candidates.append(str(Path(found).resolve().parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            candidates.append(bindir)
    for pattern in _BINDIRS:
        candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return directory
    raise LookupError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH, through "
        "pg_config or in the usual places (Debian: apt-get install postgresql; "
        ".ci/run installs it where it can)"
    )


#: The superuser's password: connections over TCP need it (SCRAM), as on a real server.
PASSWORD = "pg-test-pass-7"


@attrs.frozen
class Postgres:
    """A running server: connect with ``conninfo``."""

    port: int
    user: str
    password: str = PASSWORD

    @property
    def conninfo(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={self.user} password={self.password}"
            " dbname=postgres"
        )


def _server_account() -> tuple[int, int, str] | None:
    """(uid, gid, name) to run the server as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid, name
    raise LookupError("running as root, and no unprivileged account to run PostgreSQL as")


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL on 127.0.0.1 (TCP connections authenticated with
    :data:`PASSWORD`, SCRAM), stopped on exit."""
    bindir = find_postgres()
    account = _server_account()
    with tempfile.TemporaryDirectory(prefix="pg-") as temp:
        data = Path(temp) / "data"
        kwargs: dict[str, object] = {}
        user = pwd.getpwuid(os.geteuid()).pw_name
        if account is not None:
            uid, gid, user = account
            os.chown(temp, uid, gid)
            kwargs = {"user": uid, "group": gid, "extra_groups": []}
        password_file = Path(temp) / "password"
        password_file.write_text(PASSWORD + "\n", encoding="utf-8")
        if account is not None:
            os.chown(password_file, account[0], account[1])
        initdb = subprocess.run(
            [
                f"{bindir}/initdb",
                "-D",
                str(data),
                "-U",
                user,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={password_file}",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr[-2000:]}")
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={temp}"
            " -c fsync=off -c full_page_writes=off"
        )
        log = f"{temp}/server.log"
        # -w: pg_ctl itself waits until the server accepts connections (bounded by -t).
        start = subprocess.run(
            [
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                log,
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if start.returncode != 0:
            detail = Path(log).read_text(errors="replace")[-2000:] if Path(log).exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {start.stderr[-1000:]} {detail}")
        try:
            yield Postgres(port=port, user=user)
        finally:
            subprocess.run(
                [f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
                **kwargs,  # type: ignore[call-overload]
            )
