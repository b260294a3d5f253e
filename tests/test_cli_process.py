"""The command as users run it, in its own process: ``python -m scimsync demo``, the
installed ``scimsync`` script applying a configuration to a ScimTestServer the test
started, ``scimsync serve-test`` for other tools, and a configuration mistake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from scimsync import demo
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Sequence

pytestmark = pytest.mark.integration

TOKEN = "process-t0ken-never-printed"
SCRIPT = Path(sys.executable).parent / ("scimsync.exe" if os.name == "nt" else "scimsync")


def run(argv: Sequence[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command to its end and return what it did."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_python_m_scimsync_demo(tmp_path: Path) -> None:
    """``python -m scimsync demo`` on a fresh folder: the whole story, exit 0, nothing on
    stderr, nothing left behind."""
    done = run([sys.executable, "-m", "scimsync", "demo"], tmp_path)
    assert (0, "") == (done.returncode, done.stderr)
    assert "Plan: 520 to create, 24 to add members." in done.stdout
    assert "Plan: no changes." in done.stdout
    assert "the server holds 500 users (475 active) in 20 groups" in done.stdout
    assert [] == list(tmp_path.iterdir())


def test_the_scimsync_script_applies_a_configuration(tmp_path: Path) -> None:
    """The installed script syncs the sample into a server started here: 500 users and
    20 groups with their members; run again, it sends no write."""
    assert SCRIPT.exists(), "the console script is not installed"
    config = tmp_path / "scimsync.toml"
    config.write_text(
        f"""
mapping = "scimsync.demo:MAPPING"

[source]
type = "csv"
path = "{demo.DATA_FILE.as_posix()}"
key = "employee_id"

[target]
url = "{{url}}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[state]
path = "state.db"
""",
        "utf-8",
    )
    with ScimTestServer(token=TOKEN) as server:
        config.write_text(config.read_text("utf-8").replace("{url}", server.url), "utf-8")
        first = run([str(SCRIPT), "apply", "-c", str(config)], tmp_path, SCIM_TOKEN=TOKEN)
        assert (0, "") == (first.returncode, first.stderr)
        assert "    create: 520 applied" in first.stdout
        assert (500, 20) == (len(server.users()), len(server.groups()))
        assert 500 == len(
            next(g for g in server.groups() if g.display_name == "all-staff").members or ()
        )
        writes = server.requests.count() - server.requests.count("GET")

        again = run(
            [str(SCRIPT), "apply", "--full", "--json", "-c", str(config)],
            tmp_path,
            SCIM_TOKEN=TOKEN,
        )
        assert 0 == again.returncode
        assert ({}, True) == (json.loads(again.stdout)["planned"], json.loads(again.stdout)["ok"])
        assert writes == server.requests.count() - server.requests.count("GET")
    assert TOKEN not in first.stdout + first.stderr + again.stdout + again.stderr


def test_a_configuration_mistake_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """A secret written into the file: exit 3, one line on stderr, no traceback, no secret."""
    (tmp_path / "people.csv").write_text("id,email\n", "utf-8")
    (tmp_path / "scimsync.toml").write_text(
        f"""
mapping = "scimsync.demo:MAPPING"
[source]
type = "csv"
path = "people.csv"
key = "id"
[target]
url = "https://scim.example.com/v2"
auth = {{ type = "bearer", token = "{TOKEN}" }}
[state]
path = "state.db"
""",
        "utf-8",
    )
    done = run([sys.executable, "-m", "scimsync", "plan"], tmp_path)
    assert (3, "") == (done.returncode, done.stdout)
    assert [
        "scimsync: error: scimsync.toml: [target.auth] token: secrets are never read from the "
        'configuration file; name an environment variable with token_env = "NAME" or a file '
        'with token_file = "path"'
    ] == done.stderr.splitlines()


def test_serve_test_announces_itself_in_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``serve-test --json --port 0``: the first line says where it listens; it answers
    SCIM; SIGTERM stops it cleanly with a count of what it answered."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scimsync", "serve-test", "--json", "--port", "0", "--no-auth"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        assert announced["url"].startswith("http://127.0.0.1:")
        assert None is announced["token"]
        answer = httpx.get(announced["url"] + "/ServiceProviderConfig", timeout=10)
        assert 200 == answer.status_code
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert 0 == process.returncode
    assert err.startswith("Answered 1 requests")


def test_ctrl_c_stops_an_apply_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    """The first SIGINT during apply: no new write, the creates in flight finish, the
    report says STOPPED (exit 1); the next apply creates the rest, without duplicates."""
    gate = threading.Event()
    people = 40
    (tmp_path / "people.csv").write_text(
        "id,email\n" + "".join(f"e{i},p{i}@example.com\n" for i in range(people)), "utf-8"
    )
    with ScimTestServer(token=TOKEN, sleep=lambda seconds: gate.wait(60)) as server:
        (tmp_path / "scimsync.toml").write_text(
            f"""
[source]
type = "csv"
path = "people.csv"
key = "id"
[mapping.users]
userName = "email"
[target]
url = "{server.url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}
[state]
path = "state.db"
""",
            "utf-8",
        )
        # Every create waits at the gate until the interrupt has been taken.
        server.faults = Faults(kinds=["latency"], methods=["POST"], rate=1.0)
        process = subprocess.Popen(
            [sys.executable, "-m", "scimsync", "apply"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "SCIM_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            assert f"  applying {people} operations\n" == process.stdout.readline()
            process.send_signal(signal.SIGINT)
            assert process.stderr.readline().startswith("scimsync: stopping: no new write")
        finally:
            gate.set()
            out, _ = process.communicate(timeout=60)
        assert 1 == process.returncode
        assert "STOPPED" in out
        created = len(server.users())
        assert 0 < created < people

        server.faults = None
        done = run([sys.executable, "-m", "scimsync", "apply"], tmp_path, SCIM_TOKEN=TOKEN)
        assert 0 == done.returncode, done.stdout + done.stderr
        names = [u.user_name for u in server.users()]
        assert (people, people) == (len(names), len(set(names)))
