"""``scimsync run``: cycles every interval, JSON logs and reports, and Prometheus metrics
served while it runs, against a ScimTestServer on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from scimsync.cli import EXIT_OK, EXIT_USAGE, main
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "run-t0ken-that-must-never-show"
PASSWORD = "Run-Initial-Passw0rd!"

CONFIG = """
[source]
type = "csv"
path = "people.csv"
key = "id"

[mapping.users]
userName = "email"
title = "title"

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[state]
path = "state.db"
"""


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    with ScimTestServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def folder(tmp_path: Path, server: ScimTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """scimsync.toml and people.csv (5 people) for ``server``; SCIM_TOKEN set; run there."""
    (tmp_path / "people.csv").write_text(
        "id,email,title\n" + "".join(f"e{i},p{i}@example.com,T{i}\n" for i in range(5)), "utf-8"
    )
    (tmp_path / "scimsync.toml").write_text(CONFIG.format(url=server.url), "utf-8")
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_cycles_with_json_reports_and_json_logs(
    folder: Path, server: ScimTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cycles: stdout holds one JSON report per line (a full cycle, then an
    incremental one), stderr one JSON log object per line, audit records naming the
    cycle, the operation and the key; the exit code is the last cycle's."""
    code = main(["run", "--every", "0.01", "--cycles", "2", "--json", "--log-format", "json"])
    out, err = capsys.readouterr()
    assert EXIT_OK == code
    reports = [json.loads(line) for line in out.splitlines()]
    assert [("full", "ok"), ("incremental", "unchanged")] == [
        (r["mode"], r["outcome"]) for r in reports
    ]
    logs = [json.loads(line) for line in err.splitlines()]
    audit = [line for line in logs if line["logger"] == "scimsync.audit"]
    assert [(reports[0]["cycleId"], "create", f"e{i}", "applied") for i in range(5)] == sorted(
        (a["cycleId"], a["operation"], a["key"], a["outcome"]) for a in audit
    )
    cycles = {line.get("cycleId") for line in logs if line["logger"] == "scimsync.sync"}
    assert {reports[0]["cycleId"], reports[1]["cycleId"]} <= cycles
    assert 5 == len(server.users())
    assert TOKEN not in out + err


def test_the_metrics_announcement_is_a_log_record_naming_where_it_listens(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --log-format json the line saying where the metrics are is a JSON object
    too; listening on every interface (the default) says so, beside the local URL."""
    code = main(
        ["run", "--every", "1m", "--cycles", "1", "--log-format", "json", "--metrics-port", "0"]
    )
    assert EXIT_OK == code
    logs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    announced = [line["message"] for line in logs if line["logger"] == "scimsync.cli"]
    assert 1 == len(announced)
    assert announced[0].startswith("serving metrics at http://127.0.0.1:")
    assert announced[0].endswith("on every interface)")


def test_run_logs_cycles_as_text_by_default(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json: nothing on stdout; the cycle's summary and audit lines on stderr."""
    assert EXIT_OK == main(["run", "--every", "1m", "--cycles", "1"])
    out, err = capsys.readouterr()
    assert "" == out
    assert any(line.startswith("scimsync: INFO: Sync ") for line in err.splitlines())
    assert 5 == sum(1 for line in err.splitlines() if "applied create User" in line)


def test_run_can_log_without_attribute_values(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-log-values: the audit lines name the creates, not the addresses or titles."""
    assert EXIT_OK == main(["run", "--every", "1m", "--cycles", "1", "--no-log-values"])
    err = capsys.readouterr().err
    assert 5 == sum(1 for line in err.splitlines() if "applied create User" in line)
    assert "@example.com" not in err
    assert "T3" not in err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--every", "0"], "expected a positive duration"),
        (["--every", "soon"], "expected seconds, or a number with s, m or h"),
        (["--every", "5", "--cycles", "0"], "expected 1 or more"),
        (["--every", "5", "--metrics-port", "70000"], "expected a port from 0 to 65535"),
        ([], "the following arguments are required: --every"),
    ],
)
def test_run_refuses_a_bad_command_line(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad interval, count or port: exit 3 naming it."""
    assert EXIT_USAGE == main(["run", *argv])
    assert problem in capsys.readouterr().err


def test_metrics_need_the_prometheus_extra(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--metrics-port without prometheus-client: exit 3 saying what to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setitem(sys.modules, "scimsync.metrics", None)
    assert EXIT_USAGE == main(["run", "--every", "5", "--cycles", "1", "--metrics-port", "0"])
    assert "pip install 'scimsync[prometheus]'" in capsys.readouterr().err


def test_the_running_command_serves_metrics_and_stops_on_sigterm(
    folder: Path, server: ScimTestServer
) -> None:
    """``scimsync run --metrics-port 0`` in its own process: it says where the metrics
    are; after the first cycle they count it, its creates and its requests; SIGTERM
    stops it with exit 0."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "scimsync", "run", "--every", "1h", "--json"),
            *("--metrics-port", "0", "--metrics-address", "127.0.0.1"),
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCIM_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        announced = process.stderr.readline()
        assert announced.startswith("scimsync: INFO: serving metrics at http://127.0.0.1:")
        url = announced.rsplit(" ", 1)[-1].strip()
        report = json.loads(process.stdout.readline())  # the first cycle is over
        scraped = httpx.get(url, timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert 0 == process.returncode
    target = f'target="127.0.0.1:{httpx.URL(server.url).port}"'
    assert f'scimsync_cycles_total{{mode="full",outcome="ok",{target}}} 1.0' in scraped
    assert (
        f'scimsync_operations_total{{kind="create",outcome="applied",resource_type="User",'
        f"{target}}} 5.0"
    ) in scraped
    requests = sum(
        float(line.rsplit(" ", 1)[-1])
        for line in scraped.splitlines()
        if line.startswith("scimsync_http_requests_total{")
    )
    # The cycle's requests; the schema was read before, when the command started.
    assert report["requests"] == requests
    schema_reads = server.requests.count("GET", "/Schemas") + server.requests.count(
        "GET", "/ResourceTypes"
    )
    assert len(server.requests) == requests + schema_reads
    assert "process_cpu_seconds_total" in scraped
    assert "scimsync: WARNING: stopping" in err
    assert TOKEN not in scraped + err
