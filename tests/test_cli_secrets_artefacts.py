"""A hostile target that echoes the request back: the token appears in no output and no
file a sync leaves behind (text and JSON output, the plan file, the state database and
its side files), in any form the server may echo it."""

from __future__ import annotations

import base64
import html
import json
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from _servers import Reply, Request, ScriptedServer
from scimsync.cli import main

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "Echoed-t0ken-4d2e-NEVER-IN-ANY-FILE"

CONFIG = """
[source]
type = "csv"
path = "people.csv"
key = "id"

[mapping.users]
userName = "email"

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[target.retry]
max_attempts = 1

[state]
path = "state.db"
"""

EMPTY = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    "totalResults": 0,
    "Resources": [],
}


def echoing(request: Request) -> Reply:
    """An empty SCIM service whose writes fail with an HTML page repeating every header
    (as a misconfigured proxy's error page does), and whose 404s do too."""
    echo = "".join(f"<li>{name}={value}</li>" for name, value in request.headers.items())
    page = f"<html><body><ul>{echo}</ul><pre>{request.headers}</pre></body></html>".encode()
    path = request.path.split("?")[0]
    if request.method == "GET" and path.endswith(("/Users", "/Groups")):
        return Reply(200, EMPTY)
    if request.method == "GET" and path.endswith("/ServiceProviderConfig"):
        return Reply(200, {"patch": {"supported": True}})
    if request.method == "GET":
        return Reply(404, page, {"Content-Type": "text/html"})
    return Reply(400, page, {"Content-Type": "text/html"})


def forms(secret: str) -> list[str]:
    """Every form an echo may take: raw, base64 (alone and in a Basic pair), URL- and
    HTML-escaped."""
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"client:{secret}".encode()).decode(),
        urllib.parse.quote(secret),
        html.escape(secret),
    ]


def test_an_echoing_target_leaves_the_token_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan, apply and apply --json against a target whose errors repeat the request's
    headers: the creates fail (exit 1, the reason shown), and neither the output nor any
    file left in the folder holds the token."""
    (tmp_path / "people.csv").write_text(
        "id,email\n" + "".join(f"E{i},user{i}@example.com\n" for i in range(3)), "utf-8"
    )
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    outputs = []
    with ScriptedServer(echoing) as server:
        (tmp_path / "scimsync.toml").write_text(CONFIG.format(url=server.url), "utf-8")
        for argv in (
            ["check", "--config", "scimsync.toml"],
            ["plan", "--config", "scimsync.toml", "--out", "plan.json"],
            ["apply", "--config", "scimsync.toml"],
            ["apply", "--config", "scimsync.toml", "--json"],
            ["apply", "--config", "scimsync.toml", "--plan", "plan.json"],
        ):
            code = main(argv)
            captured = capsys.readouterr()
            outputs.append((argv, code, captured.out + captured.err))
        assert any(f"Bearer {TOKEN}" in r.headers.get("Authorization", "") for r in server.requests)
    applied = [(code, text) for argv, code, text in outputs if argv[0] == "apply"]
    assert [1, 1, 1] == [code for code, _ in applied]
    assert all("400" in text for _, text in applied)
    assert json.loads(applied[1][1])["results"][0]["outcome"] == "failed"
    files = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert {"state.db", "plan.json"} <= files.keys()
    leaks = [
        (where, form)
        for form in forms(TOKEN)
        for where, text in [
            *((" ".join(argv), text) for argv, _, text in outputs),
            *((name, data.decode("latin-1")) for name, data in files.items()),
        ]
        if form in text
    ]
    assert [] == leaks
