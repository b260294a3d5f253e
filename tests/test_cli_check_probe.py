"""``scimsync check`` on what a target keeps, in process, against ScimTestServers on
127.0.0.1: one that follows the RFCs and one that drops ``title`` and ``emails.type`` and
refuses PATCH ``add`` on users. Without ``--probe`` the check reads a sample of accounts
and sends no write; with it, it says what it will write, writes a throwaway user and
group, reports what the target did not keep and which PATCH styles it accepts, and
deletes both."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from _filter_refusing import RefusingFilteredPaths
from scimsync.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from scimsync.cli._probe import ProbeNames, run_probe
from scimsync.client import AsyncScimClient
from scimsync.mapping import Mapping, lower
from scimsync.schema import CORE_SCHEMAS
from scimsync.testing import Faults, Quirks, ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "probe-t0ken-never-shown"
PEOPLE = 5
LOSSY = Quirks(dropped_attributes=("title", "emails.type"), patch_add_refused_for=("User",))
PROBE_NAME = re.compile(r"scimsync-probe-[0-9a-f]{8}")

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
name.givenName = "first"
title = "title"
'emails[type eq "work"].value' = {{ lower = "email" }}
active = true
{extra_mapping}

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[target.retry]
max_attempts = 1

[state]
path = "state.db"
"""

ACCEPTED_STYLES = [
    ("User", "replace", "displayName", "accepted", None),
    ("User", "add", "displayName", "accepted", None),
    ("User", "replace", 'emails[type eq "work"].value', "accepted", None),
    ("Group", "remove", "members", "accepted", None),
    ("Group", "add", "members", "accepted", None),
]


@pytest.fixture
def server() -> Iterator[ScimTestServer]:
    """A token-protected ScimTestServer that follows the RFCs (tests set quirks)."""
    with ScimTestServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: ScimTestServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """scimsync.toml for ``server`` with people.csv beside it; run from the folder."""
    lines = ["employee_id,email,first,last,title,groups"]
    lines.extend(f"E{i},p{i}@example.com,F{i},L{i},T{i},g{i % 2}" for i in range(PEOPLE))
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n", "utf-8")
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


def writes(server: ScimTestServer) -> list[tuple[str, str]]:
    """The write requests the server received so far: (method, route)."""
    return [(e.method, e.route) for e in server.requests.entries() if e.method != "GET"]


def probe(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """``check --probe --json``: the exit code, the probe's JSON, stderr."""
    code, out, err = run(capsys, "check", "--probe", "--json")
    document = json.loads(out)
    return code, document["probe"], err


def styles(report: dict[str, Any]) -> list[tuple[str, str, str, str, int | None]]:
    """The PATCH requests of a probe report: type, op, path, outcome, status."""
    return [
        (s["resourceType"], s["op"], s["path"], s["outcome"], s["status"]) for s in report["patch"]
    ]


def unkept(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What a probe report says the target did not keep."""
    return [(u["resourceType"], u["path"], u["how"]) for u in report["unkept"]]


def statuses(out: str, name: str) -> list[tuple[str, str]]:
    """The (status, detail) of each ``check`` line named ``name``."""
    found = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] == name:
            found.append((parts[0], parts[2]))
    return found


# -- the probe ------------------------------------------------------------------------------------


def test_the_probe_on_a_target_that_follows_the_rfcs(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Everything sent is kept, both PATCH styles and both member changes are accepted,
    both resources are deleted; the writes are exactly those, the created user carries the
    announced names and every mapped attribute, and the announcement went to stderr."""
    code, report, err = probe(capsys)
    assert EXIT_OK == code
    assert ([], ACCEPTED_STYLES, []) == (unkept(report), styles(report), report["problems"])
    user_name, external_id = report["user"]["userName"], report["user"]["externalId"]
    assert (f"{external_id}@example.invalid", True) == (
        user_name,
        bool(PROBE_NAME.fullmatch(external_id)),
    )
    assert [
        f"scimsync: Probe: this check writes to {server.url}: it creates the user "
        f"{user_name} (externalId {external_id}) and the group {external_id}, changes them "
        "with PATCH, then deletes both."
    ] == [line for line in err.splitlines() if "Probe:" in line]
    assert [
        ("POST", "/Users"),
        ("POST", "/Groups"),
        ("PATCH", "/Users/{id}"),
        ("PATCH", "/Users/{id}"),
        ("PATCH", "/Users/{id}"),
        ("PATCH", "/Groups/{id}"),
        ("PATCH", "/Groups/{id}"),
        ("DELETE", "/Groups/{id}"),
        ("DELETE", "/Users/{id}"),
    ] == writes(server)
    (created,) = [e.json() for e in server.requests.entries("POST", "/Users")]
    assert (user_name, external_id, "scimsync-probe title", True) == (
        created["userName"],
        created["externalId"],
        created["title"],
        created["active"],
    )
    assert [{"type": "work", "value": user_name}] == created["emails"]
    assert [
        ("Group", report["group"]["id"], True),
        ("User", report["user"]["id"], True),
    ] == [(c["resourceType"], c["id"], c["deleted"]) for c in report["cleanup"]]
    assert ([], []) == (server.users(), server.groups())


def test_the_probe_reports_what_a_lossy_target_drops_and_refuses(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Exactly title and emails.type are dropped, PATCH 'add' is refused (501) while
    'replace' works, the work email's filter is not tried (it selects nothing without
    emails.type), members change; the text says so in warnings and notes, exit 0."""
    server.quirks = LOSSY
    code, report, _ = probe(capsys)
    assert EXIT_OK == code
    assert [("User", "emails.type", "dropped"), ("User", "title", "dropped")] == unkept(report)
    assert [
        ("User", "replace", "displayName", "accepted", None),
        ("User", "add", "displayName", "refused", 501),
        ("User", "replace", 'emails[type eq "work"].value', "not probed", None),
        ("Group", "remove", "members", "accepted", None),
        ("Group", "add", "members", "accepted", None),
    ] == styles(report)
    assert ([], []) == (server.users(), server.groups())

    code, out, _ = run(capsys, "check", "--probe")
    assert EXIT_OK == code
    assert out.startswith(
        f"Probe: this check writes to {server.url}: it creates the user scimsync-probe-"
    )
    probe_lines = statuses(out, "probe")
    dropped = "dropped: accepted, then not returned (syncs leave it out once they see that)"
    assert [
        ("warning", f"User emails.type: {dropped}"),
        ("warning", f"User title: {dropped}"),
        ("note", "User: 6 of 8 attribute values sent came back as sent"),
        ("ok", "Group: all 3 attribute values sent came back as sent"),
        ("ok", "PATCH 'replace' of User displayName: accepted"),
        (
            "note",
            "PATCH 'add' of User displayName: refused (501): scimsync sends 'replace' to this "
            "target",
        ),
        (
            "note",
            """PATCH 'replace' of User emails[type eq "work"].value: not probed: the target """
            "does not keep emails.type",
        ),
        ("ok", "PATCH 'remove' of Group members: accepted"),
        ("ok", "PATCH 'add' of Group members: accepted"),
    ] == probe_lines[:-1]
    assert probe_lines[-1][1].startswith("cleanup: deleted Group ")
    assert "Ready: no blocking problem (2 warnings, 3 notes)." == out.splitlines()[-1]


async def test_the_probe_on_a_target_refusing_value_filters_in_patch_paths(
    server: ScimTestServer,
) -> None:
    """A target answering 400 invalidPath to any PATCH path with a value filter: the
    probe says the work email and the member removal are refused, and that syncs write
    such changes with PUT; the singular attribute and the member addition are accepted."""
    client = AsyncScimClient(
        http=httpx.AsyncClient(
            transport=RefusingFilteredPaths(server.async_transport()),
            base_url=server.in_process_url,
            headers=server.headers,
        )
    )
    mapping = Mapping(
        users={"userName": lower("email"), 'emails[type eq "work"].value': lower("email")},
        member_of="group",
    )
    async with client:
        report = await run_probe(
            client, CORE_SCHEMAS, mapping, ProbeNames.new("0a1b2c3d"), patch=True
        )
    refused = "PATCH 'replace' of User emails[type eq \"work\"].value: refused (400): invalidPath"
    assert [
        ("ok", "PATCH 'replace' of User displayName: accepted"),
        ("ok", "PATCH 'add' of User displayName: accepted"),
        (
            "note",
            f"{refused}: scimsync writes changes that need a value filter on Users with PUT"
            " to this target",
        ),
        (
            "note",
            "PATCH 'remove' of Group members: refused (400): invalidPath: scimsync writes "
            "changes that need a value filter on Groups with PUT to this target",
        ),
        ("ok", "PATCH 'add' of Group members: accepted"),
    ] == [(f.status, f.detail) for f in report.findings() if "PATCH" in f.detail]
    assert ([], []) == (server.users(), server.groups())


def test_a_failed_cleanup_is_reported_with_the_ids(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """Every DELETE answers 500: the probe says which resources are left, by id, as
    warnings (not a blocking problem), in the text and in the JSON."""
    server.faults = Faults(kinds=["500"], methods=["DELETE"], rate=1.0)
    code, report, _ = probe(capsys)
    assert EXIT_OK == code
    user_id, group_id = report["user"]["id"], report["group"]["id"]
    assert [("Group", group_id, False), ("User", user_id, False)] == [
        (c["resourceType"], c["id"], c["deleted"]) for c in report["cleanup"]
    ]
    assert ([user_id], [group_id]) == (
        [u.id for u in server.users()],
        [g.id for g in server.groups()],
    )

    code, out, _ = run(capsys, "check", "--probe")
    assert EXIT_OK == code
    cleanup = [(s, d) for s, d in statuses(out, "probe") if d.startswith("cleanup:")]
    left = {u.id for u in server.users()} | {g.id for g in server.groups()}
    assert 4 == len(left)
    pattern = re.compile(
        r"cleanup: (?:Group|User) (\S+) could not be deleted \(.*500.*\); delete it by hand"
    )
    matches = [pattern.fullmatch(detail) for _, detail in cleanup]
    assert (["warning", "warning"], True) == (
        [status for status, _ in cleanup],
        all(m is not None and m.group(1) in left for m in matches),
    )


def test_no_probe_when_the_mapping_does_not_fit(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """A blocking problem first: the probe is skipped and nothing is written."""
    config.write_text(
        CONFIG.format(url=server.url, extra_mapping='favouriteColour = "first"'), "utf-8"
    )
    code, out, _ = run(capsys, "check", "--probe")
    assert EXIT_FAILED == code
    assert [("skipped", "nothing written: fix the errors above first")] == statuses(out, "probe")
    assert [] == writes(server)


# -- the sample, without writing ------------------------------------------------------------------


def test_the_sample_warns_of_what_no_account_holds_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """After a sync into the lossy target: title and the work email are warned of (no
    user read holds title, none holds emails.type), what was learned is listed, and the
    check sends no write; exit 0."""
    server.quirks = LOSSY
    assert EXIT_OK == run(capsys, "apply")[0]
    server.requests.clear()
    code, out, _ = run(capsys, "check")
    assert EXIT_OK == code
    assert [
        ("warning", f"User title: none of the {PEOPLE} users read holds title"),
        (
            "warning",
            f'User emails[type eq "work"].value: none of the {PEOPLE} users read holds emails.type',
        ),
        (
            "note",
            "the target may drop what none of the accounts read holds, or nobody has set it "
            "there yet: scimsync check --probe finds out with a throwaway user",
        ),
    ] == statuses(out, "sample")
    assert [
        ("note", f"User emails.type: the target drops it (seen {PEOPLE} times)"),
        ("note", f"User title: the target drops it (seen {PEOPLE} times)"),
    ] == statuses(out, "learned")
    assert [] == writes(server)

    code, out, _ = run(capsys, "check", "--json")
    sample = json.loads(out)["sample"]
    assert ({"User": PEOPLE, "Group": 2}, ["title", "emails.type"]) == (
        sample["read"],
        [a["missing"] for a in sample["absent"]],
    )
    assert None is json.loads(out)["probe"]


def test_the_sample_on_a_target_that_keeps_everything(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """After a sync into an RFC target: one ok line; ``--sample 2`` asks for pages of 2
    and reads no more; ``--sample 0`` reads nothing."""
    assert EXIT_OK == run(capsys, "apply")[0]
    code, out, _ = run(capsys, "check")
    assert (
        EXIT_OK,
        [
            (
                "ok",
                f"{PEOPLE} users and 2 groups read: each mapped attribute is held by at least one",
            )
        ],
    ) == (code, statuses(out, "sample"))
    server.requests.clear()
    code, out, _ = run(capsys, "check", "--sample", "2")
    assert [
        ("ok", "2 users and 2 groups read: each mapped attribute is held by at least one")
    ] == statuses(out, "sample")
    listed = [e.query for e in server.requests.entries("GET", "/Groups")]
    assert ["count=2&excludedAttributes=members&startIndex=1"] == [
        "&".join(sorted(q.split("&"))) for q in listed
    ]
    server.requests.clear()
    code, out, _ = run(capsys, "check", "--sample", "0")
    assert (EXIT_OK, [("skipped", "--sample 0")]) == (code, statuses(out, "sample"))
    assert [] == server.requests.entries("GET", "/Groups")


def test_a_negative_sample_is_a_usage_mistake(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """``--sample -1``: exit 3, argparse's one line."""
    code, out, err = run(capsys, "check", "--sample", "-1")
    assert (EXIT_USAGE, "") == (code, out)
    assert "argument --sample: expected 0 or more, got -1" in err


# -- departures from the RFCs ---------------------------------------------------------------------


def test_unreadable_schemas_are_a_warning_never_a_failure(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """GET /Schemas answers 500: the core schemas are assumed, the schema line is a note,
    the departure a warning, and the check is ready (exit 0)."""
    server.faults = Faults(kinds=["500"], paths=["/Schemas"], rate=1.0)
    code, out, _ = run(capsys, "check")
    assert EXIT_OK == code
    (schema,) = statuses(out, "schema")
    assert ("note", "the RFC 7643 core schemas, assumed") == (
        schema[0],
        schema[1].rsplit(": ", 1)[1],
    )
    (target,) = statuses(out, "target")
    assert ("warning", True, True) == (
        target[0],
        target[1].startswith("GET /Schemas could not be read ("),
        target[1].endswith("): the RFC 7643 core schemas are assumed"),
    )
    assert out.splitlines()[-1].startswith("Ready: no blocking problem (1 warning")


def test_listings_without_total_results_are_warnings(
    capsys: pytest.CaptureFixture[str], config: Path, server: ScimTestServer
) -> None:
    """A target whose listings lack totalResults: one warning per listing seen, exit 0."""
    server.quirks = Quirks(discovery_total_results=False, listing_total_results=False)
    code, out, _ = run(capsys, "check")
    assert EXIT_OK == code
    assert [
        ("warning", "GET /Users: ListResponse without totalResults (RFC 7644 §3.4.2)"),
        ("warning", "GET /Schemas: ListResponse without totalResults (RFC 7644 §3.4.2)"),
        ("warning", "GET /ResourceTypes: ListResponse without totalResults (RFC 7644 §3.4.2)"),
        ("warning", "GET /Groups: ListResponse without totalResults (RFC 7644 §3.4.2)"),
    ] == statuses(out, "target")


def test_the_sample_of_users_alone(
    capsys: pytest.CaptureFixture[str], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target holding two users (seeded, every mapped attribute set) and no group: the
    sample compares the users and says there are no groups yet."""
    seeded = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "title": "Engineer",
        "displayName": "Ann A",
        "name": {"givenName": "Ann"},
        "emails": [{"value": "ann@example.com", "type": "work"}],
        "active": True,
    }
    users = [{"userName": f"u{i}", "externalId": f"E{i}", **seeded} for i in range(2)]
    with ScimTestServer(token=TOKEN, users=users) as seeded_server:
        config.write_text(CONFIG.format(url=seeded_server.url, extra_mapping=""), "utf-8")
        code, out, _ = run(capsys, "check")
    assert (
        EXIT_OK,
        [
            (
                "ok",
                "2 users read (no groups yet): each mapped user attribute is held by at least one",
            )
        ],
    ) == (code, statuses(out, "sample"))


def test_the_probe_on_scim2_server(
    capsys: pytest.CaptureFixture[str], config: Path, scim2_server_url: str
) -> None:
    """On an independent SCIM server (which answers PATCH with 204 and no body): nothing
    dropped, both styles and both member changes accepted, both resources deleted."""
    text = CONFIG.format(url=scim2_server_url, extra_mapping="")
    config.write_text(text.replace('auth = { type = "bearer", token_env = "SCIM_TOKEN" }', ""))
    code, report, _ = probe(capsys)
    assert (EXIT_OK, [], ACCEPTED_STYLES, []) == (
        code,
        unkept(report),
        styles(report),
        report["problems"],
    )
    assert [True, True] == [c["deleted"] for c in report["cleanup"]]


# -- the target's methods -------------------------------------------------------------------------


def test_a_target_without_the_group_methods_is_named(
    capsys: pytest.CaptureFixture[str], config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapping with member_of= and a target lacking member methods: check names them,
    as the provisioner would, and exits 1."""
    from scimsync.targets import ScimTarget

    class NoMembers(ScimTarget):
        add_members = None  # type: ignore[assignment]
        remove_members = None  # type: ignore[assignment]

    monkeypatch.setattr("scimsync.cli._runtime.ScimTarget", NoMembers)
    code, out, _ = run(capsys, "check", "--sample", "0")
    assert EXIT_FAILED == code
    assert [
        (
            "error",
            "the target NoMembers lacks add_members, remove_members: the mapping makes groups "
            "(groups= or member_of=), and a target keeps groups only with every GroupTarget "
            "method",
        )
    ] == statuses(out, "target")
