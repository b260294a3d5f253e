"""The command line reads a database (``type = "sql"``) and a directory
(``type = "ldap"``) as well as files: configuration checked up front, secrets from the
environment, real SQLite and a real slapd on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

import pytest

from _directory import (
    READER_DN,
    READER_PASSWORD,
    SUFFIX,
    Slapd,
    SlapdInstall,
    find_slapd,
    person,
    running_slapd,
)
from scimsync.cli import EXIT_OK, EXIT_USAGE, main
from scimsync.cli._config import load_config
from scimsync.errors import ConfigurationError
from scimsync.testing import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

TOKEN = "dir-t0ken-that-must-never-show"
LDAP_PASSWORD_ENV = "SCIMSYNC_TEST_LDAP_PASSWORD"

SQL_CONFIG = """
[source]
type = "sql"
sqlite = "hr.db"
query = "SELECT id, email, status, updated FROM staff WHERE kind = ?"
params = ["staff"]
key = "id"
watermark = "updated"

[mapping.users]
userName = "email"
active = {{ boolean = "status", true = ["active"], false = ["left"] }}

[target]
url = "{url}"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[state]
path = "state.db"
"""

LDAP_CONFIG = """
[source]
type = "ldap"
url = "{ldap}"
base_dn = "{suffix}"
bind_dn = "{reader}"
password_env = "{password_env}"
user_base = "ou=People,{suffix}"
group_filter = false
attributes = ["uid", "mail"]
multi_valued = ["memberOf"]  # mail is one address here
delta = "modifyTimestamp"

[mapping.users]
userName = "uid"
'emails[type eq "work"].value' = "mail"

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
def hr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hr.db with four staff (one has left) and a contractor the query leaves out."""
    database = tmp_path / "hr.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE staff (id TEXT, email TEXT, status TEXT, kind TEXT, updated INT)")
        db.executemany(
            "INSERT INTO staff VALUES (?, ?, ?, ?, ?)",
            [
                ("E1", "ann@example.com", "active", "staff", 1),
                ("E2", "bob@example.com", "active", "staff", 1),
                ("E3", "cy@example.com", "left", "staff", 1),
                ("E4", "di@example.com", "active", "staff", 1),
                ("C1", "con@example.com", "active", "contractor", 1),
            ],
        )
    db.close()
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return database


def write_config(folder: Path, text: str) -> Path:
    path = folder / "scimsync.toml"
    path.write_text(text, "utf-8")
    return path


def test_a_database_source_syncs_from_the_command_line_with_delta_reads(
    hr: Path, server: ScimTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``type = "sql"`` on a SQLite file: check reads its first record; two cycles of
    ``scimsync run`` create the staff (the leaver inactive), then read only the row
    that changed (a leaver's status) and deactivate that account."""
    write_config(hr.parent, SQL_CONFIG.format(url=server.url))
    assert EXIT_OK == main(["check", "--json"])
    checked = json.loads(capsys.readouterr().out)
    [source] = [f for f in checked["checks"] if f["name"] == "source"]
    assert "ok" == source["status"]
    assert source["detail"].endswith("read its first record")

    assert EXIT_OK == main(["run", "--every", "1h", "--cycles", "1", "--json"])
    first = json.loads(capsys.readouterr().out)
    assert ("full", 4) == (first["sourceRead"], first["planned"]["create"])
    users = {u.user_name: u for u in server.users()}
    assert {"ann@example.com", "bob@example.com", "cy@example.com", "di@example.com"} == set(users)
    assert users["cy@example.com"].active is False

    with sqlite3.connect(hr) as db:
        db.execute("UPDATE staff SET status = 'left', updated = 2 WHERE id = 'E2'")
    db.close()
    assert EXIT_OK == main(["run", "--every", "1h", "--cycles", "1", "--json"])
    second = json.loads(capsys.readouterr().out)
    assert ("delta", {"update": 1}) == (second["sourceRead"], second["planned"])
    assert {u.user_name: u.active for u in server.users()}["bob@example.com"] is False


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ('sqlite = "nowhere.db"', "[source] sqlite: no such file"),
        ("", "give the database with sqlite"),
        ('sqlite = "hr.db"\ndsn_env = "HR_DSN"', "(one of them)"),
        ('dsn = "postgresql://hr:s3cret@db/hr"', "dsn_env"),
        ('dsn_env = "NOT_SET_ANYWHERE"', "the environment variable NOT_SET_ANYWHERE is not set"),
        ('sqlite = "hr.db"\nparams = [[1]]', "[source] params: expected an array or a table"),
        ('sqlite = "hr.db"\nmembers = "m"', 'add kind = "group"'),
        ('sqlite = "hr.db"\nbatch_size = 0', "[source] batch_size: expected at least 1"),
        ('sqlite = "hr.db"\nwatermak = "updated"', "[source] watermak: unknown setting"),
    ],
)
def test_a_database_source_is_checked_before_anything_runs(
    hr: Path, settings: str, problem: str
) -> None:
    """Each mistake is one line naming the key; a connection string written into the
    file is refused without being shown."""
    text = f"""
[source]
type = "sql"
{settings}
query = "SELECT id FROM staff"

[mapping.users]
userName = "id"

[target]
url = "https://scim.example.com/v2"
auth = {{ type = "bearer", token_env = "SCIM_TOKEN" }}

[state]
path = "state.db"
"""
    with pytest.raises(ConfigurationError) as raised:
        load_config(write_config(hr.parent, text))
    assert problem in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.fixture(scope="module")
def slapd_install() -> SlapdInstall:
    found = find_slapd()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def directory(slapd_install: SlapdInstall) -> Iterator[Slapd]:
    people = person("ann", given="Ann", sn="Lee", mail=["ann@example.org"]) + person(
        "bob", given="Bob", sn="Ray", mail=["bob@example.org"]
    )
    with running_slapd(slapd_install, people, tls=False) as running:
        yield running


def test_a_directory_source_syncs_from_the_command_line(
    tmp_path: Path,
    directory: Slapd,
    server: ScimTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``type = "ldap"``: the bind password from the environment, check binds and
    reads, apply creates the people; the password shows nowhere."""
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.setenv(LDAP_PASSWORD_ENV, READER_PASSWORD)
    monkeypatch.chdir(tmp_path)
    config = LDAP_CONFIG.format(
        ldap=directory.url,
        suffix=SUFFIX,
        reader=READER_DN,
        password_env=LDAP_PASSWORD_ENV,
        url=server.url,
    )
    write_config(tmp_path, config)
    assert EXIT_OK == main(["check"])
    assert EXIT_OK == main(["apply", "--json"])
    out, err = capsys.readouterr()
    assert {"ann", "bob"} == {u.user_name for u in server.users()}
    assert READER_PASSWORD not in out + err


def test_a_directory_password_written_into_the_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``password = "..."`` in the file: exit 3, pointing at password_env, never
    echoing the value; plain ldap:// to another host is refused as the class does."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    config = LDAP_CONFIG.format(
        ldap="ldaps://dc1.example.com",
        suffix=SUFFIX,
        reader=READER_DN,
        password_env="X",
        url="https://scim.example.com/v2",
    ).replace('password_env = "X"', 'password = "Hunter2-in-the-file"')
    write_config(tmp_path, config)
    assert EXIT_USAGE == main(["check"])
    err = capsys.readouterr().err
    assert "password_env" in err
    assert "Hunter2-in-the-file" not in err
    insecure = LDAP_CONFIG.format(
        ldap="ldap://dc1.example.com",
        suffix=SUFFIX,
        reader=READER_DN,
        password_env="X",
        url="https://scim.example.com/v2",
    )
    monkeypatch.setenv("X", "whatever-password")
    write_config(tmp_path, insecure)
    assert EXIT_USAGE == main(["check"])
    assert "plain LDAP" in capsys.readouterr().err
