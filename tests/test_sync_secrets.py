"""No secret leaves the runner: a full cycle at DEBUG, faults and failures included,
with the bearer token and a create-only password searched for in every output."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import Provisioner
from scimsync.auth import BearerToken
from scimsync.client import AsyncScimClient
from scimsync.mapping import Mapping
from scimsync.retry import RetryPolicy, no_waits
from scimsync.sources import MemorySource
from scimsync.sync import Alert, AuditEvent, Progress, SqliteStateStore, SyncReport
from scimsync.targets import ScimTarget
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "tok-3f9a-NEVER-SHOWN-77"
PASSWORD = "Pw-initial-NEVER-SHOWN-8c1d"


def people(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"e{i}", "email": f"user{i}@example.com", "title": "Guide", "group": "staff"}
        for i in range(count)
    ]


async def test_no_token_and_no_password_in_any_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Logs (every logger, DEBUG, structured extras), audit events, alerts, progress,
    reports (a cycle that could not run too), the explanation, health, history, errors
    and the state file: neither
    the token nor the password appears in any of them."""
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    events: list[AuditEvent] = []
    alerts: list[Alert] = []
    progress: list[Progress] = []
    reports: list[SyncReport] = []
    records = people(30)
    mapping = Mapping(
        users={"userName": "email", "title": "title"},
        create_only={"password": lambda record: PASSWORD},
        member_of="group",
    )
    with ScimTestServer(token=TOKEN) as server, no_waits():
        # Writes fail now and then: lost answers, 500s with the body sent, resets.
        server.faults = Faults(
            rate=0.3, seed=4, kinds=["500", "commit_then_fail", "reset"], methods=["POST"]
        )
        async with AsyncScimClient(server.url, auth=BearerToken(TOKEN)) as client:
            provisioner = Provisioner(
                MemorySource(users=records),
                mapping,
                ScimTarget(client),
                state=SqliteStateStore(tmp_path / "state.db"),
                audit=events.append,
                on_alert=alerts.append,
                on_progress=progress.append,
                on_report=reports.append,
            )
            outputs.append(repr(provisioner))
            await provisioner.arun_once()
            server.faults = None
            await provisioner.arun_once()
            await provisioner.arun_once(full=True)
            records.append(people(31)[30])
            explanation = await provisioner.aprovision_one("e30")
            outputs.extend([str(explanation), json.dumps(explanation.to_dict())])
            records.append(people(32)[31])
            outputs.append((await provisioner.aplan()).render())
            outputs.append(str(provisioner.health().to_dict()))
            outputs.extend(r.detail for r in provisioner.state.history(50))
        # A cycle that cannot run: the target answers 500 to every listing.
        server.faults = Faults(kinds=["500"], methods=["GET"])
        async with AsyncScimClient(
            server.url, auth=BearerToken(TOKEN), retry=RetryPolicy(max_attempts=2)
        ) as client:
            failing = Provisioner(
                MemorySource(users=records),
                mapping,
                ScimTarget(client),
                state=SqliteStateStore(tmp_path / "state.db"),
                on_alert=alerts.append,
            )
            failed = await failing.arun_once(full=True)
            assert "error" == failed.outcome
            outputs.extend([str(failed), failed.to_json(), repr(failed)])
            outputs.extend(r.detail for r in failing.state.history(5))
        sent = server.requests.entries("POST", "/Users")

    assert PASSWORD in {e.json().get("password") for e in sent}  # it was in play
    assert any(r.retries for r in reports)  # and so were the faults
    outputs.extend(r.to_json() for r in reports)
    outputs.extend(str(r) for r in reports)
    outputs.extend(json.dumps(e.to_dict()) for e in events)
    outputs.extend(e.message() for e in events)
    outputs.extend(repr(e) for e in events)
    outputs.extend(a.message for a in alerts)
    outputs.extend(repr(p) for p in progress)
    outputs.append(caplog.text)
    outputs.extend(json.dumps(record.__dict__, default=str) for record in caplog.records)
    outputs.extend(p.read_bytes().decode("utf-8", errors="replace") for p in tmp_path.iterdir())
    everything = "\n".join(outputs)
    assert (False, False) == (TOKEN in everything, PASSWORD in everything)
    assert "password" in everything  # the attribute is named, its value never shown
