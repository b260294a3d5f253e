"""``scimsync check``, ``plan`` and ``apply`` in process, against a ScimTestServer on
127.0.0.1 over HTTP, with a configuration file written by each test: exit codes, output,
the server's final state, and no secret in any output."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING, Any

import pytest

from scimsync import Group, Member, User
from scimsync.cli import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from scimsync.engine import Plan
from scimsync.testing import Faults, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "cli-t0ken-that-must-never-show"
PEOPLE = 12
GROUPS = ("eng", "ops", "sales")

CONFIG = """
[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[mapping]
member_of = {{ split = "groups", sep = ";" }}

[mapping.users]
userName = {{ lower = "email" }}
name.givenName = "first"
name.familyName = "last"
displayName = {{ template = "{{first}} {{last}}" }}
'emails[type eq "work"].value' = {{ lower = "email" }}
active = {{ boolean = "status", true = ["active"], false = ["left"] }}
{extra_mapping}

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[target.retry]
max_attempts = 1

[state]
path = "state.db"
"""


def write_people(folder: Path, count: int = PEOPLE) -> None:
    """people.csv: person i is in group i % 3, and in "eng" too when i is even."""
    lines = ["employee_id,email,first,last,status,groups"]
    for i in range(count):
        groups = {GROUPS[i % 3]} | ({"eng"} if i % 2 == 0 else set())
        lines.append(
            f"E{i:03d},Person{i}@Example.com,First{i},Last{i},active,{';'.join(sorted(groups))}"
        )
    (folder / "people.csv").write_text("\n".join(lines) + "\n", "utf-8")


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    """A token-protected ScimTestServer over loopback HTTP."""
    with ScimTestServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: ScimTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """scimsync.toml for ``server``, with people.csv beside it; SCIM_TOKEN set; run from
    the folder."""
    write_people(tmp_path)
    path = tmp_path / "scimsync.toml"
    path.write_text(CONFIG.format(url=server.url, extra_mapping=""), "utf-8")
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: the exit code, stdout and stderr; never the token."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    return code, out, err


def writes(server: ScimTestServer) -> int:
    """Write requests the server received so far."""
    return sum(n for method, n in server.requests.by_method().items() if method != "GET")


# -- check ----------------------------------------------------------------------------------------


def test_check_reports_each_part_and_exits_0_when_ready(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Every check passes (the sample is skipped: the target holds no one yet); nothing is
    written, to the target or to disk."""
    code, out, _ = run(capsys, "check")
    assert EXIT_OK == code
    lines = out.splitlines()
    assert f"Checking {config.name}" == lines[0]
    statuses = [(line.split()[0], line.split()[1]) for line in lines[1:-1]]
    assert [
        ("ok", "config"),
        ("ok", "source"),
        ("ok", "connectivity"),
        ("ok", "auth"),
        ("ok", "capabilities"),
        ("ok", "schema"),
        ("ok", "policy"),
        ("ok", "mapping"),
        ("skipped", "sample"),
        ("ok", "state"),
    ] == statuses
    assert "credentials: $SCIM_TOKEN" in out
    assert "Ready: no blocking problem." == lines[-1]
    assert (0, False) == (writes(server), (config.parent / "state.db").exists())


def test_check_names_refused_credentials_and_exits_1(
    capsys: pytest.CaptureFixture[str], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong token: auth is an error, the dependent checks are skipped; in JSON too,
    and neither token shows, even with --debug."""
    monkeypatch.setenv("SCIM_TOKEN", "a-wrong-token-also-secret")
    code, out, err = run(capsys, "check", "--json", "--debug")
    assert EXIT_FAILED == code
    assert "a-wrong-token-also-secret" not in out + err
    document = json.loads(out)
    found = {c["name"]: c for c in document["checks"]}
    assert (False, 1) == (document["ok"], document["exitCode"])
    assert "error" == found["auth"]["status"]
    assert "401" in found["auth"]["detail"]
    assert "skipped" == found["mapping"]["status"]


def test_check_names_an_unreachable_target(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """Nothing listens at the URL: a connectivity error, exit 1, said after one try
    (the configured retries would make a check wait for nothing)."""
    with ScimTestServer() as gone:
        url = gone.url
    retrying = CONFIG.replace("max_attempts = 1", "max_attempts = 5")
    config.write_text(retrying.format(url=url, extra_mapping=""), "utf-8")
    code, out, err = run(capsys, "check")
    assert (EXIT_FAILED, False) == (code, "retrying" in err)
    assert [line for line in out.splitlines() if line.startswith("  error")] == [
        line for line in out.splitlines() if "connectivity" in line
    ]
    assert "Not ready: 1 blocking problem." == out.splitlines()[-1]


def test_a_mapping_the_target_cannot_take(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """An attribute the target lacks: check lists it (exit 1); plan refuses (exit 3) in one
    line naming the mapping entry; nothing is sent."""
    config.write_text(
        CONFIG.format(url=server.url, extra_mapping='favouriteColour = "first"'), "utf-8"
    )
    code, out, _ = run(capsys, "check")
    assert EXIT_FAILED == code
    assert "  error   mapping       users['favouriteColour']: the target's User has no" in out
    code, out, err = run(capsys, "plan")
    assert (EXIT_USAGE, "") == (code, out)
    assert err.startswith(
        f"scimsync: error: {config.name}: mapping users['favouriteColour']: the target's User "
        "has no attribute 'favouriteColour'"
    )
    assert 1 == len(err.splitlines())
    assert 0 == writes(server)


# -- plan and apply -------------------------------------------------------------------------------


def test_plan_out_then_apply_that_plan(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """``plan --out`` sends nothing and saves an owner-only plan; ``apply --plan`` applies
    it; then a cycle finds nothing to do and sends no write."""
    code, out, _ = run(capsys, "plan", "--out", "plan.json")
    assert EXIT_OK == code
    assert out.startswith("Plan: 15 to create, 3 to add members.\n")
    assert (
        "Saved to plan.json. Apply it with: scimsync apply -c scimsync.toml --plan plan.json" in out
    )
    saved = config.parent / "plan.json"
    assert 0o600 == stat.S_IMODE(saved.stat().st_mode)
    assert {"create": 15, "add_members": 3} == Plan.from_json(saved.read_bytes()).summary()
    assert (0, False) == (writes(server), (config.parent / "state.db").exists())

    code, out, _ = run(capsys, "apply", "--plan", "plan.json")
    assert EXIT_OK == code
    assert "(apply): OK" in out.splitlines()[-4]
    assert (PEOPLE, len(GROUPS)) == (len(server.users()), len(server.groups()))
    members = {g.display_name: len(g.members or ()) for g in server.groups()}
    assert {"eng": 8, "ops": 4, "sales": 4} == members

    before = writes(server)
    code, out, _ = run(capsys, "apply", "--full", "--json")
    report = json.loads(out)
    assert (EXIT_OK, "full", True, {}) == (code, report["mode"], report["ok"], report["planned"])
    assert before == writes(server)


def test_apply_runs_a_cycle_with_progress_and_json(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """``apply`` without a plan is one cycle: progress lines, then the report."""
    code, out, _ = run(capsys, "apply")
    assert EXIT_OK == code
    assert "  applying 18 operations" in out.splitlines()
    assert "  applied 18/18 (100%)" in out.splitlines()
    assert "    create: 15 applied" in out
    assert PEOPLE == len(server.users())


def test_a_tripped_guard_exits_2_until_forced(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Five of twelve people leave the file: plan and apply are blocked (exit 2) and
    deactivate nobody (nor take them out of groups), and both say how to force the
    guards, in the same words; forced, apply deactivates exactly them."""
    assert EXIT_OK == run(capsys, "apply")[0]
    write_people(config.parent, PEOPLE - 5)
    code, out, _ = run(capsys, "plan")
    assert EXIT_BLOCKED == code
    blocked = "Blocked: 8 operations held by source_shrink, max_deprovisions. Review them; "
    flags = "with --force source_shrink --force max_deprovisions"
    assert f"{blocked}if they are meant, plan again {flags}" in out
    code, out, _ = run(capsys, "apply")
    assert EXIT_BLOCKED == code
    assert f"{blocked}if they are meant, run again {flags}" in out
    assert "no changes" not in out
    code, out, _ = run(capsys, "apply", "--json")
    report = json.loads(out)
    assert (EXIT_BLOCKED, 2, 8) == (code, report["exitCode"], report["held"])
    assert report["forceHint"].startswith(blocked)
    assert all(user.active for user in server.users())

    code, out, _ = run(capsys, "apply", "--force", "source_shrink", "--force", "max_deprovisions")
    assert EXIT_OK == code
    gone = sorted(u.external_id or "" for u in server.users() if u.active is False)
    assert [f"E{i:03d}" for i in range(PEOPLE - 5, PEOPLE)] == gone


def test_a_target_that_cannot_be_listed_is_a_report_that_exits_1(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """apply, as a scheduler runs it, against a target whose listings fail: a report
    (text and JSON) whose outcome is "error" with the reason, exit 1, nothing written."""
    server.faults = Faults(kinds=["500"], methods=["GET"], paths=["/Users", "/Groups"], rate=1.0)
    code, out, _ = run(capsys, "apply")
    assert EXIT_FAILED == code
    assert "ERROR" in out.splitlines()[-2]
    assert "! could not read the target: ServerError: HTTP 500" in out.splitlines()[-1]
    code, out, _ = run(capsys, "apply", "--json")
    report = json.loads(out)
    assert (EXIT_FAILED, "error", 0) == (code, report["outcome"], writes(server))
    assert report["error"].startswith("could not read the target: ServerError: HTTP 500")


def test_an_empty_state_file_is_refused_until_new_state_is_asked_for(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """A 0-byte state file stops plan and apply (exit 3, nothing sent) with the way to
    recover; ``--new-state`` plans from an empty state and lets apply start one there."""
    state = config.parent / "state.db"
    state.write_bytes(b"")
    for command in ("plan", "apply"):
        code, out, err = run(capsys, command)
        assert (EXIT_USAGE, "") == (code, out)
        assert (True, True) == ("is empty (0 bytes)" in err, "--new-state" in err)
    assert 0 == writes(server)
    code, out, _ = run(capsys, "plan", "--new-state")
    assert (EXIT_OK, 0) == (code, state.stat().st_size)
    assert EXIT_OK == run(capsys, "apply", "--new-state")[0]
    assert PEOPLE == len(server.users())
    code, _, err = run(capsys, "apply", "--new-state")
    assert EXIT_USAGE == code
    assert "holds a state database already" in err


def test_failed_operations_exit_1(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Every group PATCH fails with 500: the users are created, the report says FAILED,
    exit 1."""
    server.faults = Faults(kinds=["500"], methods=["PATCH"], rate=1.0)
    code, out, _ = run(capsys, "apply")
    assert EXIT_FAILED == code
    assert "FAILED" in out
    assert "    add_members: 3 failed" in out
    assert PEOPLE == len(server.users())


def test_apply_refuses_what_cannot_go_with_a_saved_plan(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """``--force`` or ``--full`` with ``--plan``, or a file that is no plan: exit 3, one line."""
    (config.parent / "not-a-plan.json").write_text('{"format": "other"}', "utf-8")
    for argv, message in [
        (["--plan", "p.json", "--force", "source_shrink"], "--force is decided when planning"),
        (["--plan", "p.json", "--full"], "--full reads the target for a new plan"),
        (["--plan", "missing.json"], "--plan missing.json: cannot be read"),
        (["--plan", "not-a-plan.json"], "--plan not-a-plan.json: not a scimsync plan"),
    ]:
        code, out, err = run(capsys, "apply", *argv)
        assert (EXIT_USAGE, "") == (code, out)
        assert err.startswith(f"scimsync: error: {message}")
        assert 1 == len(err.splitlines())


def test_no_output_shows_the_token_even_when_debugging(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """A whole session with --debug (every library log line) never prints the token."""
    outputs: list[str] = []
    for argv in (["check"], ["plan", "--out", "p.json"], ["apply", "--plan", "p.json"], ["apply"]):
        code = main([*argv, "--debug"])
        out, err = capsys.readouterr()
        assert EXIT_OK == code
        outputs.append(out + err)
    everything = "\n".join(outputs)
    assert "DEBUG" in everything  # the logs were on
    assert TOKEN not in everything
    assert TOKEN not in (config.parent / "p.json").read_text("utf-8")


def test_a_json_document_for_every_command(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """check, plan and apply with --json each print exactly one JSON document."""
    documents: dict[str, Any] = {}
    for command in ("check", "plan", "apply"):
        code, out, _ = run(capsys, command, "--json")
        assert EXIT_OK == code
        documents[command] = json.loads(out)
    assert True is documents["check"]["ok"]
    assert ({"create": 15, "add_members": 3}, False) == (
        documents["plan"]["summary"],
        documents["plan"]["blocked"],
    )
    assert "scimsync-plan/1" == documents["plan"]["plan"]["format"]
    assert ("scimsync-report/1", 0) == (
        documents["apply"]["format"],
        documents["apply"]["exitCode"],
    )


def test_a_scim_source_syncs_into_the_target(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    server: ScimTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SCIM to SCIM: users and a group read from another ScimTestServer (its own token
    from a file) are checked, then created on the target with the membership."""
    with ScimTestServer(token="source-token") as origin:
        ann = origin.add_user(User(user_name="ann@example.com", display_name="Ann"))
        origin.add_user(User(user_name="bob@example.com", display_name="Bob"))
        origin.add_group(Group(display_name="admins", members=[Member(value=ann.id)]))
        (tmp_path / "source-token.txt").write_text("source-token\n", "utf-8")
        (tmp_path / "scimsync.toml").write_text(
            f"""
[source]
type = "scim"
url = "{origin.url}"
auth = {{ type = "bearer", token_file = "source-token.txt" }}

[mapping.users]
userName = "userName"
displayName = "displayName"

[mapping.groups]
displayName = "displayName"

[target]
url = "{server.url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[state]
path = "state.db"
""",
            "utf-8",
        )
        monkeypatch.setenv("SCIM_TOKEN", TOKEN)
        monkeypatch.chdir(tmp_path)
        code, out, _ = run(capsys, "check")
        assert EXIT_OK == code
        assert f"  ok      source        {origin.url} answered and listed users" in out
        assert EXIT_OK == run(capsys, "apply")[0]
    users = {u.user_name or "": u.id for u in server.users()}
    assert ["ann@example.com", "bob@example.com"] == sorted(users)
    (admins,) = server.groups()
    assert ("admins", [users["ann@example.com"]]) == (
        admins.display_name,
        [m.value for m in admins.members or ()],
    )
