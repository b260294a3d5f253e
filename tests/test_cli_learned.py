"""``scimsync learned`` (and what ``plan`` says of the target) in process, against a
ScimTestServer on 127.0.0.1 that drops ``title`` and ``emails.type`` and refuses PATCH
``add`` on users: what a cycle learned is listed from the state store, forgetting it
makes the next plan write it again, and nothing is sent to the target."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from scimsync.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from scimsync.testing import Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "learned-t0ken-never-shown"
PEOPLE = 6
QUIRKS = Quirks(dropped_attributes=("title", "emails.type"), patch_add_refused_for=("User",))
DROPPED = [
    f"User emails.type: the target drops it (seen {PEOPLE} times)",
    f"User title: the target drops it (seen {PEOPLE} times)",
]

CONFIG = """
[source]
type = "csv"
path = "people.csv"
key = "employee_id"

[mapping]
member_of = {{ split = "groups", sep = ";" }}

[mapping.users]
userName = {{ lower = "email" }}
displayName = {{ template = "{{first}} {{last}}" }}
title = "title"
'emails[type eq "work"].value' = {{ lower = "email" }}

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[target.retry]
max_attempts = 1

[state]
path = "state.db"
"""


def write_people(folder: Path) -> None:
    """people.csv: person i has title T<i>, and is in group g<i % 2>."""
    lines = ["employee_id,email,first,last,title,groups"]
    lines.extend(f"E{i},p{i}@example.com,F{i},L{i},T{i},g{i % 2}" for i in range(PEOPLE))
    (folder / "people.csv").write_text("\n".join(lines) + "\n", "utf-8")


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    """A token-protected ScimTestServer with the quirks of a lossy target."""
    with ScimTestServer(token=TOKEN, quirks=QUIRKS) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: ScimTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """scimsync.toml for ``server`` with people.csv beside it; run from the folder."""
    write_people(tmp_path)
    path = tmp_path / "scimsync.toml"
    path.write_text(CONFIG.format(url=server.url), "utf-8")
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: the exit code, stdout and stderr; never the token."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    return code, out, err


def learned(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines of ``scimsync learned --json``."""
    code, out, _ = run(capsys, "learned", "--json")
    assert EXIT_OK == code
    lines: list[str] = json.loads(out)["learned"]
    return lines


def test_nothing_learned_before_the_first_cycle(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Without a state file: one line saying so, exit 0, no request to the target and
    no state file created; ``--forget`` forgets nothing."""
    code, out, _ = run(capsys, "learned")
    assert (
        EXIT_OK,
        f"Nothing learned about the target yet ({config.parent / 'state.db'} "
        "does not exist yet).\n",
    ) == (code, out)
    code, out, _ = run(capsys, "learned", "--forget")
    assert (EXIT_OK, "Nothing learned yet: nothing forgotten.\n") == (code, out)
    assert ([], False) == (server.requests.entries(), (config.parent / "state.db").exists())


def test_learned_lists_what_a_cycle_found_the_target_drops(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """After one apply: title and emails.type, each confirmed, in text and in JSON; no
    request is sent to list them."""
    assert EXIT_OK == run(capsys, "apply")[0]
    server.requests.clear()
    code, out, _ = run(capsys, "learned")
    assert EXIT_OK == code
    assert [
        f"Learned about {server.url} (from {config.parent / 'state.db'}):",
        *(f"  {line}" for line in DROPPED),
        "Paths seen twice are left out of plans. To have the next cycle compare and write "
        "one again: scimsync learned --forget PATH (alone: forget everything).",
    ] == out.splitlines()
    code, out, _ = run(capsys, "learned", "--json")
    document = json.loads(out)
    assert (EXIT_OK, DROPPED, []) == (code, document["learned"], document["targetFacts"])
    assert [
        ("User", "emails.type", "dropped", PEOPLE, True),
        ("User", "title", "dropped", PEOPLE, True),
    ] == [
        (p["resourceType"], p["path"], p["how"], p["seen"], p["confirmed"])
        for p in document["paths"]
    ]
    assert [] == server.requests.entries()


def test_forgetting_title_makes_the_next_plan_write_titles_again(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """``learned --forget title`` forgets title only and says the next cycle writes it
    again; the next plan updates every title (and compares emails.type no more)."""
    assert EXIT_OK == run(capsys, "apply")[0]
    code, out, _ = run(capsys, "plan", "--json")
    assert (EXIT_OK, {}) == (code, json.loads(out)["summary"])

    code, out, _ = run(capsys, "learned", "--forget", "title")
    assert EXIT_OK == code
    assert [
        f"Forgotten (in {config.parent / 'state.db'}):",
        f"  {DROPPED[1]}",
        "The next cycle compares and writes it again.",
    ] == out.splitlines()
    assert DROPPED[:1] == learned(capsys)

    code, out, _ = run(capsys, "plan", "--json")
    plan = json.loads(out)["plan"]
    assert (EXIT_OK, {"update": PEOPLE}) == (code, json.loads(out)["summary"])
    assert [["title"]] * PEOPLE == [
        [change["path"] for change in op["changes"]] for op in plan["operations"]
    ]
    assert ["User emails.type: the target drops it"] == plan["notCompared"]


def test_forget_with_a_type_and_forget_everything(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """``--forget --type Group`` leaves the users' paths and what the target refuses;
    ``--forget`` alone forgets everything, the target's refusals included."""
    server.quirks = Quirks(dropped_attributes=("title", "emails.type"), listing_total_results=False)
    assert EXIT_OK == run(capsys, "apply")[0]
    refusals = [
        "GET /Groups: ListResponse without totalResults (RFC 7644 §3.4.2)",
        "GET /Users: ListResponse without totalResults (RFC 7644 §3.4.2)",
    ]
    assert [*DROPPED, *refusals] == learned(capsys)

    code, out, _ = run(capsys, "learned", "--forget", "--type", "Group")
    assert (EXIT_OK, "Nothing learned of Groups yet: nothing forgotten.") == (
        code,
        out.splitlines()[0],
    )
    assert [*DROPPED, *refusals] == learned(capsys)

    code, out, _ = run(capsys, "learned", "--forget", "--json")
    document = json.loads(out)
    assert (EXIT_OK, [*DROPPED, *refusals], []) == (
        code,
        document["forgotten"],
        document["remaining"],
    )
    assert [] == learned(capsys)


def test_forgetting_what_was_never_learned(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """A path nothing was learned about (a typo) forgets nothing, says so, exit 0."""
    assert EXIT_OK == run(capsys, "apply")[0]
    code, out, _ = run(capsys, "learned", "--forget", "titel", "--type", "User")
    assert EXIT_OK == code
    assert [
        "Nothing learned about titel of Users: nothing forgotten.",
        "What is known: scimsync learned",
    ] == out.splitlines()
    assert DROPPED == learned(capsys)


def test_type_without_forget_is_a_usage_mistake(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """``--type`` only says what to forget: alone it exits 3 in one line; an unknown
    type is argparse's mistake, exit 3 too."""
    code, out, err = run(capsys, "learned", "--type", "User")
    assert (EXIT_USAGE, "") == (code, out)
    assert [
        "scimsync: error: --type goes with --forget: scimsync learned --forget [PATH ...] "
        "--type User|Group"
    ] == err.splitlines()
    code, _, err = run(capsys, "learned", "--forget", "--type", "user")
    assert EXIT_USAGE == code
    assert "argument --type: invalid choice: 'user'" in err


def test_plan_shows_what_it_does_not_compare_and_the_target_notes(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """After a cycle, ``plan`` says which paths it leaves out and what the target does
    against the RFCs, in the text and in the JSON."""
    server.quirks = Quirks(dropped_attributes=("title",), listing_total_results=False)
    assert EXIT_OK == run(capsys, "apply")[0]
    code, out, _ = run(capsys, "plan")
    assert EXIT_OK == code
    assert [
        "Plan: no changes.",
        "",
        "Not compared on this target:",
        "  User title: the target drops it",
        "",
        "About this target:",
        "  GET /Groups: ListResponse without totalResults (RFC 7644 §3.4.2)",
        "  GET /Users: ListResponse without totalResults (RFC 7644 §3.4.2)",
    ] == out.splitlines()
    code, out, _ = run(capsys, "plan", "--json")
    plan = json.loads(out)["plan"]
    assert (["User title: the target drops it"], 2) == (
        plan["notCompared"],
        len(plan["targetNotes"]),
    )


def test_forgetting_while_a_cycle_holds_the_state_fails_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """Another holder of the state file's cycle lock: ``--forget`` exits 1 naming the lock,
    and what was learned stays; listing still works."""
    from scimsync.sync import SqliteStateStore

    assert EXIT_OK == run(capsys, "apply")[0]
    with SqliteStateStore(config.parent / "state.db") as store, store.lock():
        code, out, err = run(capsys, "learned", "--forget", "title")
        assert (EXIT_FAILED, "") == (code, out)
        assert err.startswith("scimsync: error: another process holds the cycle lock on ")
        assert DROPPED == learned(capsys)
