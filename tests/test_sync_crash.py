"""Crash: the runner is killed (SIGKILL) mid-apply in a subprocess; the next run converges,
with the state in SQLite or in PostgreSQL.

The mapping leaves ``externalId`` out, so the only way to know which accounts the
killed run created is the state it left: its write-ahead journal. Without it the
next run would find accounts it does not own (a conflict); with it, every identity
is linked, nothing is created twice, and the target ends equal to the source.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.engine import Policy
from scimsync.sources import MemorySource
from scimsync.sync import SqliteStateStore, StateStore
from scimsync.targets import ScimTarget
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from scimsync.mapping import Mapping

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

TOKEN = "crash-token"
USERS = 300
GROUPS = 5

# The same source and mapping in the killed child and in this process.
SETUP = textwrap.dedent(
    f"""
    from scimsync.mapping import Mapping
    from scimsync.sources import MemorySource

    RECORDS = [
        {{"id": f"e{{i}}", "email": f"user{{i}}@example.com", "title": f"T{{i % 3}}",
          "group": f"g{{i % {GROUPS}}}"}}
        for i in range({USERS})
    ]
    MAPPING = Mapping(
        users={{"userName": "email", "title": "title", "externalId": None}},
        member_of="group",
        groups={{"displayName": "name", "externalId": None}},
    )

    def open_store(spec):
        # "sqlite <path>" or "postgres <schema> <conninfo>"
        import scimsync.sync as sync
        kind, _, rest = spec.partition(" ")
        if kind == "sqlite":
            return sync.SqliteStateStore(rest)
        schema, _, conninfo = rest.partition(" ")
        return sync.PostgresStateStore(conninfo, target="crash", schema=schema)
    """
)

CHILD = SETUP + textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from scimsync import Provisioner
    from scimsync.auth import BearerToken
    from scimsync.client import AsyncScimClient
    from scimsync.sync import ApplyPolicy
    from scimsync.targets import ScimTarget

    url, token, spec, fatal_call, fatal_count = sys.argv[1:]

    class DiesMidway:
        # Passes every call to the target; after the Nth `fatal_call` went through
        # (the server committed it), the process is killed before it hears of it.
        def __init__(self, inner):
            self.inner = inner
            self.calls = 0

        def __getattr__(self, name):
            attribute = getattr(self.inner, name)
            if name != fatal_call:
                return attribute

            async def call(*args):
                result = await attribute(*args)
                self.calls += 1
                if self.calls >= int(fatal_count):
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            return call

    async def main():
        async with AsyncScimClient(url, auth=BearerToken(token)) as client:
            provisioner = Provisioner(
                MemorySource(users=RECORDS),
                MAPPING,
                DiesMidway(ScimTarget(client)),
                state=open_store(spec),
                apply_policy=ApplyPolicy(concurrency=4),
            )
            await provisioner.arun_once()

    asyncio.run(main())
    print("the run was not killed")
    """
)


def setup_names() -> tuple[list[dict[str, Any]], Mapping]:
    namespace: dict[str, Any] = {}
    exec(SETUP, namespace)  # our own constant, shared with the child
    return namespace["RECORDS"], namespace["MAPPING"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.database)])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the killed run and the next keep their state: a SQLite file, or a schema of
    its own in the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite {tmp_path / 'state.db'}"
    server = request.getfixturevalue("postgres")
    return f"postgres crash_{uuid.uuid4().hex[:12]} {server.conninfo}"


def open_store(spec: str) -> StateStore:
    namespace: dict[str, Any] = {}
    exec(SETUP, namespace)
    store: StateStore = namespace["open_store"](spec)
    return store


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN) as server:
        yield server


@pytest.mark.parametrize(
    ("fatal_call", "count"),
    [("create_user", 150), ("add_members", 2)],
    ids=["during-user-creates", "during-group-members"],
)
async def test_a_killed_run_is_finished_by_the_next_without_duplicates(
    server: ScimTestServer, store_spec: str, fatal_call: str, count: int
) -> None:
    """Killed after the Nth create (or member change) went through: the next run links
    what the killed one made from its journal, creates only what is missing, and leaves
    the target equal to the source. The same with the state in SQLite or PostgreSQL."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, server.url, TOKEN, store_spec, fatal_call, str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert -9 == child.returncode, child.stderr
    created_before = server.requests.count("POST", "/Users")
    assert count <= created_before if fatal_call == "create_user" else USERS == created_before

    records, mapping = setup_names()
    async with AsyncScimClient(server.url, auth=BearerToken(TOKEN)) as client:
        provisioner = Provisioner(
            MemorySource(users=records),
            mapping,
            ScimTarget(client),
            Policy(),
            state=open_store(store_spec),
        )
        report = await provisioner.arun_once()
        assert report.ok, str(report)
        assert "interrupted cycle" in report.note
        assert True is (await provisioner.aplan()).is_empty
        provisioner.state.close()

    # None created twice. (A POST cut short by the kill reached the server as a 400.)
    created = [e for e in server.requests.entries("POST", "/Users") if e.status == 201]
    assert USERS == len(created)
    users = server.users()
    assert Counter({r["email"]: 1 for r in records}) == Counter(u.user_name for u in users)
    assert {r["email"]: r["title"] for r in records} == {u.user_name: u.title for u in users}
    by_id = {u.id: u.user_name for u in users}
    wanted: dict[str, set[str]] = {}
    for record in records:
        wanted.setdefault(record["group"], set()).add(record["email"])
    assert wanted == {
        g.display_name: {by_id[m.value] for m in g.members or ()} for g in server.groups()
    }


async def test_without_the_journal_the_next_run_would_not_own_them(
    server: ScimTestServer, tmp_path: Path
) -> None:
    """The control: the same kill with the state file deleted leaves accounts the next
    run cannot tell are its own; it refuses to guess (conflicts), and creates none twice."""
    db = tmp_path / "state.db"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, server.url, TOKEN, f"sqlite {db}", "create_user", "150"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert -9 == child.returncode, child.stderr
    for leftover in tmp_path.glob("state.db*"):
        leftover.unlink()
    records, mapping = setup_names()
    async with AsyncScimClient(server.url, auth=BearerToken(TOKEN)) as client:
        provisioner = Provisioner(
            MemorySource(users=records),
            mapping,
            ScimTarget(client),
            Policy(),
            state=SqliteStateStore(db),
        )
        report = await provisioner.arun_once()
    assert report.conflicts
    assert {"unowned_match"} == {c.kind for c in report.conflicts}
    assert [] == [n for n, c in Counter(u.user_name for u in server.users()).items() if c > 1]
