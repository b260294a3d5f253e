"""The library logs to its loggers and never writes to stderr by itself."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

from scimsync import Provisioner
from scimsync.engine import Policy
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.targets import MemoryTarget

if TYPE_CHECKING:
    import pytest

# A cycle whose guard trips: three people synced, then a source that comes back empty.
GUARDED_CYCLE = """
from scimsync import Provisioner
from scimsync.engine import Policy
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.targets import MemoryTarget

source = MemorySource(users=[{"id": f"e{i}", "email": f"u{i}@example.com"} for i in range(3)])
mapping = Mapping(users={"userName": "email"})
provisioner = Provisioner(source, mapping, MemoryTarget(), Policy())
provisioner.run_once()
source.users.clear()
print(provisioner.run_once().blocked)
"""


def _guarded_cycle() -> tuple[MemorySource, Provisioner]:
    source = MemorySource(users=[{"id": f"e{i}", "email": f"u{i}@example.com"} for i in range(3)])
    mapping = Mapping(users={"userName": "email"})
    return source, Provisioner(source, mapping, MemoryTarget(), Policy())


def test_a_tripped_guard_writes_nothing_to_stderr_when_logging_is_unconfigured() -> None:
    """In a program that configured no logging, the guard's warning does not reach
    stderr through Python's last-resort handler: the ``scimsync`` logger has a
    ``NullHandler``, as libraries should (checked in a fresh process, since pytest
    configures logging in its own)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GUARDED_CYCLE)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ("True\n", "") == (done.stdout, done.stderr)


def test_the_guard_warning_still_reaches_the_scimsync_sync_logger(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The warning is logged all the same, on ``scimsync.sync``, for the application's
    handlers; nothing is printed."""
    caplog.set_level(logging.WARNING, logger="scimsync")
    source, provisioner = _guarded_cycle()
    provisioner.run_once()
    source.users.clear()
    assert provisioner.run_once().blocked
    warned = [
        (r.name, r.getMessage().split(":")[0])
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ]
    assert [
        ("scimsync.sync", "guard source_shrink held 3 operations"),
        ("scimsync.sync", "guard max_deprovisions held 3 operations"),
    ] == warned
    assert ("", "") == capfd.readouterr()


def test_the_scimsync_logger_has_a_null_handler_and_no_other() -> None:
    """The package adds a ``NullHandler`` to its top logger and nothing that prints:
    where the records go is the application's choice."""
    handlers = logging.getLogger("scimsync").handlers
    assert [logging.NullHandler] == [type(h) for h in handlers]
