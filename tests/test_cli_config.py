"""The command's TOML configuration: every setting read, every mistake one line naming the
file, the key and the problem, secrets only from the environment or files, and the
inline mapping syntax building the same rules as Python."""

from __future__ import annotations

import re
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from scimsync.auth import BearerToken, OAuth2ClientCredentials
from scimsync.cli._config import Config, load_config
from scimsync.codec import to_scim
from scimsync.engine import Policy
from scimsync.errors import ConfigurationError
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy

if TYPE_CHECKING:
    from scimsync.mapping import Mapping

ROOT = Path(__file__).parent.parent
TOKEN = "cfg-t0ken-value-never-printed"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

SOURCE = """
[source]
type = "csv"
path = "people.csv"
key = "employee_id"
"""
TARGET = """
[target]
url = "https://scim.example.com/v2"
auth = { type = "bearer", token_env = "SCIM_TOKEN" }
"""
STATE = """
[state]
path = "state.db"
"""
MINIMAL = 'mapping = "scimsync.demo:MAPPING"\n' + SOURCE + TARGET + STATE


def write(tmp_path: Path, text: str, name: str = "scimsync.toml") -> Path:
    """Write the configuration (and an empty people.csv next to it); return its path."""
    (tmp_path / "people.csv").write_text("employee_id,email\n", "utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def load(tmp_path: Path, text: str, **environ: str) -> Config:
    """Load ``text`` as a configuration file, with SCIM_TOKEN set unless overridden."""
    env = {"SCIM_TOKEN": TOKEN, **environ}
    return load_config(write(tmp_path, text), environ=env)


def error_of(tmp_path: Path, text: str, **environ: str) -> str:
    """The one-line message of the configuration error ``text`` raises."""
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, text, **environ)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "scimsync.toml") + ": ")
    return message.removeprefix(str(tmp_path / "scimsync.toml") + ": ")


# -- a complete file -----------------------------------------------------------------------------


def test_the_minimal_file_loads_with_safe_defaults(tmp_path: Path) -> None:
    """Source, a named mapping, target with a token from the environment and state: the
    policy, retry and run settings are the library's defaults."""
    config = load(tmp_path, MINIMAL)
    from scimsync.demo import MAPPING

    assert (MAPPING, "scimsync.demo:MAPPING") == (config.mapping, config.mapping_origin)
    assert ("csv", tmp_path / "people.csv", "employee_id") == (
        config.sources[0].type,
        config.sources[0].options["path"],
        config.sources[0].options["key"],
    )
    assert (tmp_path / "state.db").resolve() == config.state_path
    assert (Policy(), ApplyPolicy(), timedelta(hours=24)) == (
        config.policy,
        config.apply_policy,
        config.full_cycle_every,
    )
    connection = config.target.connection
    assert isinstance(connection.auth, BearerToken)
    assert TOKEN == connection.auth.current().reveal()
    assert ("$SCIM_TOKEN", True, 30.0) == (
        connection.auth_origin,
        connection.verify,
        connection.timeout,
    )


def _documented_example() -> str:
    page = (ROOT / "docs" / "cli.md").read_text("utf-8")
    blocks: list[str] = re.findall(r"^```toml\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    return next(block for block in blocks if "[state]" in block)


def test_the_documented_example_loads_and_maps_a_row(tmp_path: Path) -> None:
    """The complete example of docs/cli.md is a valid file, and its inline mapping turns
    a row into the user the comments promise (contractors left out)."""
    config = load(tmp_path, _documented_example())
    assert isinstance(config.policy, Policy)
    assert ("https://app.example.com/scim/v2", "[mapping]") == (
        config.target.connection.url,
        config.mapping_origin,
    )
    rows = [
        {
            "id": "E1",
            "email": "Ann.Lee@Example.com",
            "given_name": "Ann",
            "family_name": "Lee",
            "title": "Lead",
            "department": "Eng",
            "phone": "+1 555 0100",
            "status": "leave",
            "groups": "eng; all",
            "worker_type": "employee",
        },
        {"id": "C1", "email": "c@example.com", "worker_type": "Contractor"},
    ]
    result = config.mapping.map(MemorySource(users=rows))
    assert [] == [str(issue) for issue in result.issues]
    (user,) = result.desired.users
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "E1",
        "userName": "ann.lee@example.com",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "displayName": "Ann Lee",
        "title": "Lead",
        "active": False,
        "emails": [{"type": "work", "value": "ann.lee@example.com", "primary": True}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}],
        ENTERPRISE: {"department": "Eng", "employeeNumber": "E1"},
    } == to_scim(user.user)
    assert [("all", ("E1",)), ("eng", ("E1",))] == sorted(
        (g.key, g.member_keys) for g in result.desired.groups
    )


def test_paths_are_relative_to_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in another folder names its CSV and state next to itself."""
    folder = tmp_path / "conf"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    (folder / "people.csv").write_text("employee_id\n", "utf-8")
    (folder / "scimsync.toml").write_text(MINIMAL, "utf-8")
    config = load_config(Path("conf/scimsync.toml"), environ={"SCIM_TOKEN": TOKEN})
    assert (folder / "people.csv").resolve() == config.sources[0].options["path"]
    assert (folder / "state.db").resolve() == config.state_path


def test_every_section_is_read(tmp_path: Path) -> None:
    """Policy, run, retry, target and several sources take every documented key."""
    (tmp_path / "groups.jsonl").write_text("", "utf-8")
    text = """
    mapping = "scimsync.demo:MAPPING"
    [[source]]
    type = "csv"
    path = "people.csv"
    key = "employee_id"
    delimiter = ";"
    encoding = "latin-1"
    multi_valued = { groups = "|" }
    max_row_size = 65536
    [[source]]
    type = "jsonl"
    path = "groups.jsonl"
    key = "id"
    kind = "group"
    members = "members"
    [target]
    url = "http://localhost:8080/scim/v2"
    timeout = 5
    use_patch = false
    max_members_per_operation = 25
    request_group_members = true
    page_size = 500
    [target.retry]
    max_attempts = 2
    max_total_seconds = 10
    retry_statuses = [429, 503]
    [policy]
    match_keys = ["externalId"]
    adopt = "adopt"
    deprovision = "delete"
    delete_after_days = 30
    max_deprovisions = "off"
    max_deprovisions_percent = 25
    max_source_shrink = "off"
    sensitive_paths = "title"
    [state]
    path = "state.db"
    [run]
    concurrency = 4
    max_failure_rate = 0.5
    full_cycle_every_hours = 0
    """
    config = load(tmp_path, text)
    csv, jsonl = config.sources
    assert (";", "latin-1", {"groups": "|"}, 65536) == (
        csv.options["delimiter"],
        csv.options["encoding"],
        csv.options["multi_valued"],
        csv.options["max_row_size"],
    )
    assert ("group", "members") == (jsonl.options["kind"], jsonl.options["members"])
    assert (None, 5.0, 2, frozenset({429, 503})) == (
        config.target.connection.auth,
        config.target.connection.timeout,
        config.target.connection.retry.max_attempts,
        config.target.connection.retry.retry_statuses,
    )
    assert (False, 25, True, 500) == (
        config.target.use_patch,
        config.target.max_members_per_operation,
        config.target.request_group_members,
        config.target.page_size,
    )
    assert (
        Policy(
            match_keys=["externalId"],
            adopt="adopt",
            deprovision="delete",
            delete_after_days=30,
            max_deprovisions=None,
            max_deprovisions_percent=25,
            max_source_shrink=None,
            sensitive_paths=["title"],
        )
        == config.policy
    )
    assert (ApplyPolicy(concurrency=4, max_failure_rate=0.5), None) == (
        config.apply_policy,
        config.full_cycle_every,
    )


def test_a_scim_source_and_oauth2_credentials(tmp_path: Path) -> None:
    """A SCIM source with its own connection; OAuth2 with the client secret from a file."""
    (tmp_path / "secret.txt").write_text("client-s3cret\n", "utf-8")
    text = """
    mapping = "scimsync.demo:MAPPING"
    [source]
    type = "scim"
    url = "https://hr.example.com/scim/v2"
    key = "externalId"
    user_filter = 'active eq true'
    groups = false
    auth = { type = "bearer", token_file = "secret.txt" }
    [target]
    url = "https://scim.example.com/v2"
    [target.auth]
    type = "oauth2"
    token_url = "https://login.example.com/token"
    client_id = "scimsync"
    client_secret_env = "CLIENT_SECRET"
    scope = ["scim.read", "scim.write"]
    extra_params = { audience = "scim" }
    [state]
    path = "state.db"
    """
    config = load(tmp_path, text, CLIENT_SECRET="from-the-env")
    (source,) = config.sources
    assert source.connection is not None
    assert ("externalId", "active eq true", False) == (
        source.options["key"],
        source.options["user_filter"],
        source.options["groups"],
    )
    assert isinstance(source.connection.auth, BearerToken)
    assert "client-s3cret" == source.connection.auth.current().reveal()
    auth = config.target.connection.auth
    assert isinstance(auth, OAuth2ClientCredentials)
    request = auth.build_token_request()
    assert b"scope=scim.read+scim.write" in request.content
    assert b"audience=scim" in request.content
    assert "from-the-env" not in config.target.connection.auth_origin


# -- mistakes: one line, naming the file, the key and the problem --------------------------------

MISTAKES: list[tuple[str, str, str]] = [
    ("no source", 'mapping = "scimsync.demo:MAPPING"' + TARGET + STATE, "source: missing"),
    ("unknown top-level key", MINIMAL + "colour = 1\n", "colour: unknown setting"),
    (
        "misspelt target key",
        MINIMAL.replace("url =", "urll ="),
        "[target] url: missing (required); the table has 'urll': a misspelling?",
    ),
    (
        "unknown key after the known ones",
        MINIMAL + "[run]\nconcurency = 3\n",
        "[run] concurency: unknown setting (did you mean concurrency?; known here:",
    ),
    (
        "misspelt optional key, known though absent",
        MINIMAL.replace('key = "employee_id"', 'key = "employee_id"\ndelimter = ";"'),
        "[source] delimter: unknown setting (did you mean delimiter?; known here: delimiter,",
    ),
    ("wrong type", MINIMAL.replace('key = "employee_id"', "key = 7"), "[source] key: expected a"),
    (
        "unknown source type",
        MINIMAL.replace('type = "csv"', 'type = "oracle"'),
        "[source] type: 'oracle' is not one of 'csv', 'jsonl', 'scim', 'ldap', 'sql'",
    ),
    (
        "missing source file",
        MINIMAL.replace("people.csv", "gone.csv"),
        "[source] path: no such file: ",
    ),
    (
        "members on a file of users",
        MINIMAL.replace('key = "employee_id"', 'key = "employee_id"\nmembers = "m"'),
        '[source] members: is for a file of groups: add kind = "group"',
    ),
    (
        "plain http to a remote host",
        MINIMAL.replace("https://scim.example.com", "http://scim.example.com"),
        "[target] url: the URL 'http://scim.example.com/v2' uses plain http",
    ),
    (
        "TLS verification off",
        MINIMAL.replace("[target]", "[target]\nverify = false"),
        "[target] verify: TLS verification cannot be switched off",
    ),
    (
        "a bad policy value",
        MINIMAL + '[policy]\nadopt = "yes"\n',
        "[policy]: adopt: 'yes' is not one of ['adopt', 'ignore', 'fail']",
    ),
    (
        "a limit that is neither a number nor off",
        MINIMAL + '[policy]\nmax_deprovisions = "none"\n',
        '[policy] max_deprovisions: expected a number, or "off" for no limit',
    ),
    (
        "forcing a guard in the file",
        MINIMAL + '[policy]\nforce = ["source_shrink"]\n',
        "[policy] force: guards are forced per run, never in the file",
    ),
    (
        "a bad retry policy",
        MINIMAL + "[target.retry]\nretry_statuses = [404]\n",
        "[target.retry]: ",
    ),
    ("a bad run setting", MINIMAL + "[run]\nconcurrency = 0\n", "[run] concurrency: expected at"),
    (
        "a row size limit below one",
        MINIMAL.replace('key = "employee_id"', 'key = "employee_id"\nmax_row_size = 0'),
        "[source] max_row_size: expected at least 1",
    ),
    (
        "a state folder that does not exist",
        MINIMAL.replace('path = "state.db"', 'path = "nowhere/state.db"'),
        "[state] path: the folder ",
    ),
    (
        "a mapping that is not a Mapping",
        MINIMAL.replace("scimsync.demo:MAPPING", "scimsync.demo:KEY"),
        "mapping: scimsync.demo:KEY is a string, not a scimsync.mapping.Mapping",
    ),
    (
        "a mapping module that does not exist",
        MINIMAL.replace("scimsync.demo:MAPPING", "no_such_module_here:MAPPING"),
        "mapping: cannot import 'no_such_module_here'",
    ),
    (
        "a reference without a name",
        MINIMAL.replace("scimsync.demo:MAPPING", "scimsync.demo"),
        "mapping: expected 'package.module:NAME' or a table",
    ),
    (
        "a bad user filter",
        MINIMAL.replace(
            'type = "csv"\npath = "people.csv"\nkey = "employee_id"',
            'type = "scim"\nurl = "https://x.example"\nuser_filter = "active eq"',
        ),
        "[source] user_filter: invalid filter",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake raises ConfigurationError: one line, the file, the key, the problem."""
    assert expected in error_of(tmp_path, text)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    """A syntax error says where it is."""
    message = error_of(tmp_path, "[target\nurl = 1\n")
    assert message.startswith("not valid TOML: ")
    assert "line 1" in message


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    """No such file: the message names it."""
    with pytest.raises(ConfigurationError, match=r"scimsync\.toml: no such configuration file"):
        load_config(tmp_path / "scimsync.toml")


def test_tomli_is_asked_for_when_no_toml_reader_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without tomllib (3.10) and tomli, the message says what to install."""
    import importlib

    real = importlib.import_module

    def without_toml(name: str, package: str | None = None) -> Any:
        if name in ("tomllib", "tomli"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_toml)
    message = error_of(tmp_path, MINIMAL)
    assert "needs the tomli package: pip install 'scimsync[toml]'" in message


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ('{ type = "bearer", token = "' + TOKEN + '" }', "[target.auth] token"),
        (
            '{ type = "oauth2", token_url = "https://t.example", client_id = "c", '
            'client_secret = "' + TOKEN + '" }',
            "[target.auth] client_secret",
        ),
        (
            '{ type = "oauth2", token_url = "https://t.example", client_id = "c", '
            'client_secret_env = "E", extra_params = { client_secret = "' + TOKEN + '" } }',
            "[target.auth.extra_params] client_secret",
        ),
    ],
    ids=["bearer token", "client secret", "secret in extra params"],
)
def test_a_secret_in_the_file_is_refused_without_showing_it(
    tmp_path: Path, auth: str, key: str
) -> None:
    """A literal secret is refused, the message names the key and never the value."""
    text = MINIMAL.replace('auth = { type = "bearer", token_env = "SCIM_TOKEN" }', f"auth = {auth}")
    message = error_of(tmp_path, text, E="x")
    assert message.startswith(f"{key}: secrets are never read from the configuration file")
    assert TOKEN not in message


def test_a_token_beside_the_auth_table_is_refused(tmp_path: Path) -> None:
    """``token = ...`` directly under [target] is refused too, pointing at the auth table."""
    text = MINIMAL.replace(
        'auth = { type = "bearer", token_env = "SCIM_TOKEN" }', f'token = "{TOKEN}"'
    )
    message = error_of(tmp_path, text)
    assert message.startswith("[target] token: secrets are never read")
    assert "[target.auth] token_env" in message
    assert TOKEN not in message


def test_secrets_from_the_environment_and_files(tmp_path: Path) -> None:
    """Unset variable, missing or empty file, neither or both given: each is named."""
    assert "[target.auth] token_env: the token in $SCIM_TOKEN is empty" == error_of(
        tmp_path, MINIMAL, SCIM_TOKEN=" "
    )
    with_file = MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "token.txt"')
    assert "[target.auth] token_file: no such file: " in error_of(tmp_path, with_file)
    (tmp_path / "token.txt").write_text("  \n", "utf-8")
    assert "[target.auth] token_file: the token in file " in error_of(tmp_path, with_file)
    (tmp_path / "token.txt").write_text(TOKEN + "\n", "utf-8")
    auth = load(tmp_path, with_file).target.connection.auth
    assert isinstance(auth, BearerToken)
    assert TOKEN == auth.current().reveal()
    both = MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_env = "A", token_file = "b"')
    assert "give the token with token_env" in error_of(tmp_path, both)


def test_an_unset_variable_is_named(tmp_path: Path) -> None:
    """The variable named by token_env does not exist."""
    text = MINIMAL.replace("SCIM_TOKEN", "NOT_THERE")
    assert "[target.auth] token_env: the environment variable NOT_THERE is not set" == error_of(
        tmp_path, text
    )


def test_a_malformed_token_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A token with a space in it cannot be a bearer token; the message does not show it."""
    message = error_of(tmp_path, MINIMAL, SCIM_TOKEN="not a token")
    assert "the token in $SCIM_TOKEN is not a valid bearer token" in message
    assert "not a token" not in message


# -- the inline mapping ----------------------------------------------------------------------


def inline(tmp_path: Path, users: str, extra: str = "") -> Mapping:
    """The mapping of a file whose [mapping.users] table is ``users``."""
    text = "[mapping]\n" + extra + "\n[mapping.users]\n" + users + SOURCE + TARGET + STATE
    return load(tmp_path, text).mapping


def scim_of(mapping: Mapping, **fields: Any) -> dict[str, Any]:
    """The desired user ``mapping`` makes of one record with ``fields`` (key "k1")."""
    result = mapping.map(MemorySource(users=[{"id": "k1", **fields}]))
    assert [] == [str(issue) for issue in result.issues]
    data = to_scim(result.desired.users[0].user)
    data.pop("schemas")
    return data


def test_every_operator_of_the_table_syntax(tmp_path: Path) -> None:
    """Each operator builds the rule of the same name."""
    mapping = inline(
        tmp_path,
        """
        userName = { lower = { coalesce = ["work_email", "email"] } }
        nickName = { upper = "nick" }
        displayName = { join = [{ strip = "first" }, "last"], sep = "_" }
        title = { default = "title", fallback = "Staff" }
        profileUrl = { template = "https://people.example.com/{first}" }
        userType = { const = "Employee" }
        externalId = { field = "id" }
        preferredLanguage = { key = true }
        active = { boolean = "status", true = ["yes"], false = ["no"] }
        locale = "locale"
        "name.givenName" = "first"
        name.familyName = "last"
        """,
        extra='member_of = { split = "groups", sep = "|" }',
    )
    assert {
        "userName": "ann@example.com",
        "nickName": "ANNIE",
        "displayName": "Ann_Lee",
        "title": "Staff",
        "profileUrl": "https://people.example.com/ Ann",
        "userType": "Employee",
        "externalId": "k1",
        "preferredLanguage": "k1",
        "active": True,
        "name": {"givenName": " Ann", "familyName": "Lee"},
    } == scim_of(
        mapping,
        email="Ann@Example.com",
        nick="annie",
        first=" Ann",
        last="Lee",
        status="Yes",
    )
    assert "split(field('groups'), '|')" == repr(mapping.member_of)


def test_multi_line_in_the_table_syntax(tmp_path: Path) -> None:
    """``{ multi_line = ... }`` builds the same rule as Python's multi_line()."""
    mapping = inline(tmp_path, 'userName = "email"\ntitle = { multi_line = "title" }\n')
    assert "multi_line(field('title'))" == repr(mapping.user_entries[1].rule)


def test_ref_and_keep_when_empty_in_the_table_syntax(tmp_path: Path) -> None:
    """``{ ref = ... }`` names another user by source key (the manager, resolved by the
    engine) and ``{ keep_when_empty = ... }`` leaves the attribute unmanaged when empty."""
    manager = '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"'
    mapping = inline(
        tmp_path,
        f"""
        userName = "email"
        title = "title"
        nickName = {{ keep_when_empty = "nick" }}
        {manager} = {{ ref = "manager_id" }}
        """,
    )
    result = mapping.map(
        MemorySource(
            users=[
                {
                    "id": "boss",
                    "email": "boss@example.com",
                    "title": "",
                    "nick": "",
                    "manager_id": "",
                },
                {
                    "id": "k1",
                    "email": "a@example.com",
                    "title": "",
                    "nick": "",
                    "manager_id": "boss",
                },
            ]
        )
    )
    assert [] == [str(issue) for issue in result.issues]
    by_key = {u.key: u for u in result.desired.users}
    assert "boss" in dict(by_key["k1"].references).values()
    managed = result.desired.managed_user_attributes or ()
    assert ("title" in managed, "nickName" in managed) == (True, False)


def test_omit_leaves_the_external_id_out(tmp_path: Path) -> None:
    """``{ omit = true }`` is no value: externalId is not the key then."""
    mapping = inline(tmp_path, 'userName = "email"\nexternalId = { omit = true }')
    assert {"userName": "a@example.com"} == scim_of(mapping, email="a@example.com")


def test_scope_keeps_or_leaves_out_records(tmp_path: Path) -> None:
    """``in`` keeps the listed values, ``not_in`` leaves them out, ignoring case."""
    rows = [
        {"id": "1", "email": "a@example.com", "type": "Employee"},
        {"id": "2", "email": "b@example.com", "type": "contractor"},
    ]
    for scope, kept in (('in = ["employee"]', ["1"]), ('not_in = ["employee"]', ["2"])):
        mapping = inline(tmp_path, 'userName = "email"', f'scope = {{ field = "type", {scope} }}')
        result = mapping.map(MemorySource(users=rows))
        assert kept == [u.key for u in result.desired.users]


RULE_MISTAKES: list[tuple[str, str, str]] = [
    ("array", 'userName = ["a", "b"]', "[mapping.users] userName: an array is not a rule"),
    ("two operators", 'userName = { lower = "a", upper = "b" }', "exactly one operator (found"),
    ("no operator", "userName = { sep = 1 }", "exactly one operator (found none)"),
    ("unknown option", 'userName = { lower = "a", sep = "," }', "lower takes no option; unknown"),
    ("empty field", 'userName = ""', "an empty string names no field"),
    ("key not true", "userName = { key = 1 }", "write { key = true }"),
    ("default without fallback", 'userName = { default = "a" }', "default needs a fallback"),
    ("template not text", "userName = { template = 3 }", "template expects a string"),
    ("join of nothing", "userName = { join = [] }", "join expects a non-empty array of rules"),
    (
        "boolean words",
        'active = { boolean = "s", true = ["x"], false = ["x"] }',
        "active: boolean(): ['x'] are both",
    ),
    ("bad path", '"emails[type eq".value = "a"', "[mapping]: "),
    ("a date", "userName = 2024-01-01", "[mapping.users] userName: a date is not a rule"),
]


@pytest.mark.parametrize(
    ("users", "expected"), [m[1:] for m in RULE_MISTAKES], ids=[m[0] for m in RULE_MISTAKES]
)
def test_a_rule_mistake_names_the_entry(tmp_path: Path, users: str, expected: str) -> None:
    """A rule that cannot be built is one line naming the mapping entry."""
    text = "[mapping.users]\n" + users + SOURCE + TARGET + STATE
    assert expected in error_of(tmp_path, text)


def test_a_mapping_module_next_to_the_file_is_found(tmp_path: Path) -> None:
    """``mapping = "module:NAME"`` imports a module from the file's folder."""
    (tmp_path / "cfg_mapping_next_to_file.py").write_text(
        "from scimsync.mapping import Mapping, lower\n"
        "MAPPING = Mapping(users={'userName': lower('email')})\n",
        "utf-8",
    )
    text = MINIMAL.replace("scimsync.demo:MAPPING", "cfg_mapping_next_to_file:MAPPING")
    try:
        config = load(tmp_path, text)
    finally:
        sys.modules.pop("cfg_mapping_next_to_file", None)
    assert {"userName": "a@example.com", "externalId": "k1"} == scim_of(
        config.mapping, email="A@example.com"
    )
    assert str(tmp_path) not in sys.path


def test_a_mapping_module_that_fails_on_import_is_named(tmp_path: Path) -> None:
    """An exception while importing the module is a configuration error naming it."""
    (tmp_path / "cfg_broken_mapping.py").write_text("raise RuntimeError('boom')\n", "utf-8")
    text = MINIMAL.replace("scimsync.demo:MAPPING", "cfg_broken_mapping:MAPPING")
    try:
        message = error_of(tmp_path, text)
    finally:
        sys.modules.pop("cfg_broken_mapping", None)
    assert "mapping: importing 'cfg_broken_mapping' failed: RuntimeError: boom" == message


def test_tls_files_must_exist_and_load(tmp_path: Path) -> None:
    """ca_file and client_cert are checked when the file is read: missing, not PEM, or a
    key without its certificate."""
    with_ca = MINIMAL.replace("[target]", '[target]\nca_file = "ca.pem"')
    assert "[target] ca_file: no such file: " in error_of(tmp_path, with_ca)
    (tmp_path / "ca.pem").write_text("not a certificate\n", "utf-8")
    assert "[target] ca_file: cannot load " in error_of(tmp_path, with_ca)
    (tmp_path / "key.pem").write_text("not a key\n", "utf-8")
    key_only = MINIMAL.replace("[target]", '[target]\nclient_key = "key.pem"')
    assert "[target] client_key: needs client_cert as well" == error_of(tmp_path, key_only)
