"""``scimsync demo`` in process: the bundled 500 people and 20 groups reach an embedded
ScimTestServer over loopback HTTP, the plan is shown, the second plan is empty and sends
no write, and the throwaway token shows only when the server is kept for the user."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest

from scimsync import demo
from scimsync.cli import EXIT_OK, main
from scimsync.cli._console import Console
from scimsync.cli._demo import run_demo

if TYPE_CHECKING:
    from scimsync.testing import ScimTestServer

pytestmark = pytest.mark.integration

DEMO_TOKEN = "demo-t0ken-for-the-test"


@pytest.fixture(autouse=True)
def known_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's random token, made predictable so tests can look for it."""
    import secrets

    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: DEMO_TOKEN)


def sample_groups() -> Counter[str]:
    """Members per group, as the bundled CSV says."""
    with demo.DATA_FILE.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return Counter(name for row in rows for name in row["groups"].split(";"))


def test_the_sample_maps_cleanly() -> None:
    """500 users, 20 groups, no issue; the mapping fits the core schemas and reads every
    column (manager_id through ref(): a source key, written as the manager's id)."""
    result = demo.MAPPING.map(demo.source())
    assert (500, 20, (), True) == (
        len(result.desired.users),
        len(result.desired.groups),
        result.issues,
        result.complete,
    )
    check = demo.MAPPING.check(source=demo.source())
    assert [] == [(p.entry, p.message) for p in check.problems]
    managers = {u.key: dict(u.references) for u in result.desired.users}
    assert {f"{demo.ENTERPRISE}:manager.value": "E10003"} == managers["E10010"]
    assert 25 == sum(1 for u in result.desired.users if u.user.active is False)


def test_the_demo_tells_the_story_and_ends_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """Plan (an excerpt), apply, an empty second plan without writes, a summary; exit 0;
    the token is not printed."""
    assert EXIT_OK == main(["demo"])
    out, err = capsys.readouterr()
    assert "" == err
    lines = out.splitlines()
    assert "Plan: 520 to create, 24 to add members." in lines
    assert (
        "  users to create: 500 · groups to create: 20 · memberships to add: "
        f"{sum(sample_groups().values())} (in 24 PATCH requests)"
    ) in lines
    assert '  + create User "E10000"  # not on the target' in lines
    assert "      … and 97 more members" in lines
    assert "  … and 541 more operations like these (--show-plan full prints them all)" in lines
    assert "  applied 544/544 (100%)" in lines
    assert "    create: 520 applied" in lines
    assert lines.index("Plan: no changes.") > lines.index("    create: 520 applied")
    assert "  (0 writes: the second plan only read.)" in lines
    summary = next(line for line in lines if line.startswith("Done in "))
    assert "the server holds 500 users (475 active) in 20 groups" in summary
    assert DEMO_TOKEN not in out
    assert len(lines) < 80  # an excerpt, not 500 screens


def test_the_demo_in_json_with_the_full_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json --show-plan full``: one document with the counts and the whole plan."""
    assert EXIT_OK == main(["demo", "--json", "--show-plan", "full"])
    out, _ = capsys.readouterr()
    document = json.loads(out)
    assert {"users": 500, "activeUsers": 475, "groups": 20} == {
        k: document["server"][k] for k in ("users", "activeUsers", "groups")
    }
    assert ({"create": 520, "add_members": 24}, 544) == (
        document["plan"]["summary"],
        len(document["plan"]["plan"]["operations"]),
    )
    assert (True, 0, {"summary": {}, "empty": True}) == (
        document["report"]["ok"],
        document["requests"]["writesAfterApply"],
        document["replan"],
    )
    assert {"POST": 520, "PATCH": 24} == {
        m: n for m, n in document["requests"]["byMethod"].items() if m != "GET"
    }
    assert ("token" not in document["server"], 0) == (True, document["exitCode"])


def test_keep_serving_leaves_the_synced_server_up_with_its_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With ``keep_serving`` the server still answers, with the token printed for it, and
    holds every person, every membership and every manager of the sample."""
    seen: dict[str, object] = {}

    def poke(server: ScimTestServer) -> None:
        out = capsys.readouterr().out
        url = next(line.split()[1] for line in out.splitlines() if line.startswith("  URL "))
        token = next(line.split()[1] for line in out.splitlines() if line.startswith("  token "))
        answer = httpx.get(
            f"{url}/Users",
            params={"count": 2},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        seen["status"] = answer.status_code
        seen["total"] = answer.json()["totalResults"]
        seen["members"] = Counter(
            {g.display_name or "": len(g.members or ()) for g in server.groups()}
        )
        by_employee = {u.external_id: u for u in server.users()}
        seen["managers"] = {
            key: (u.enterprise.manager.value if u.enterprise and u.enterprise.manager else None)
            for key, u in by_employee.items()
            if key in ("E10000", "E10010")
        }
        seen["E10003"] = by_employee["E10003"].id

    console = Console(stdout=sys.stdout, stderr=sys.stderr, json_mode=False)
    assert EXIT_OK == run_demo(console, keep_serving=True, wait=poke)
    assert (200, 500) == (seen["status"], seen["total"])
    assert sample_groups() == seen["members"]
    # Managers are named by employee key in the CSV and hold the manager's id here.
    assert {"E10000": None, "E10010": seen["E10003"]} == seen["managers"]


@pytest.mark.parametrize("color", [False, True])
def test_the_excerpt_cuts_member_lists_in_colour_too(color: bool) -> None:
    """A membership operation shows three members and how many more, coloured or not."""
    from scimsync.cli._demo import _render_one
    from scimsync.engine import Policy, plan
    from scimsync.models import TargetState

    made = plan(demo.MAPPING.map(demo.source()).desired, TargetState(), Policy())
    additions = next(op for op in made.operations if op.kind == "add_members")
    lines = _render_one(made, additions, color).splitlines()
    assert 5 == len(lines)
    assert lines[-1] == f"      … and {len(additions.members) - 3} more members"
