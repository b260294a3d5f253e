"""The command's configuration file (TOML): source, mapping, target, policy, state, run.

:func:`load_config` reads and checks everything it can without touching the network:
types, choices, files that must exist, secrets present in the environment or in their
files. A mistake raises :class:`~scimsync.errors.ConfigurationError` with one line
naming the file, the key and the problem. The layout is documented in ``docs/cli.md``.

Secrets are read only from environment variables (``token_env``) or files
(``token_file``); a secret written into the file itself is refused.
"""

from __future__ import annotations

import os
import ssl
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import httpx

from ..engine import GUARDS, Policy
from ..errors import ConfigurationError
from ..mapping import Mapping
from ..retry import RetryPolicy
from ..secrets import Secret
from ..sync import ApplyPolicy
from ._inline_mapping import import_mapping, mapping_from_table
from ._table import Table, parse_toml

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Config",
    "Connection",
    "SourceSettings",
    "TargetSettings",
    "load_config",
]

#: The file used when ``-c`` is not given.
DEFAULT_CONFIG = "scimsync.toml"

SourceType = Literal["csv", "jsonl", "scim", "ldap", "sql"]
SOURCE_TYPES: tuple[SourceType, ...] = ("csv", "jsonl", "scim", "ldap", "sql")


@attrs.frozen(kw_only=True)
class Connection:
    """How to reach one SCIM service: URL, credentials, TLS, timeouts, retries.

    ``auth`` is ready to use (its secret already read); ``auth_origin`` says where
    the secret came from, for messages (``"$SCIM_TOKEN"``), never the secret.
    """

    url: str
    auth: httpx.Auth | None
    auth_origin: str
    timeout: float
    verify: ssl.SSLContext | bool = attrs.field(eq=False)
    allow_insecure_http: bool
    retry: RetryPolicy


@attrs.frozen(kw_only=True)
class SourceSettings:
    """One source: its type, the keyword arguments of its class, its connection (scim).

    ``where`` says what it reads, for people: a file, a URL, a database (never a
    secret).
    """

    type: SourceType
    options: dict[str, Any]
    connection: Connection | None = None
    where: str = ""

    def describe(self) -> str:
        """``csv people.csv`` — what the source is, for people."""
        if self.connection is not None:
            return f"scim {self.connection.url}"
        return f"{self.type} {self.where or self.options['path']}"


@attrs.frozen(kw_only=True)
class TargetSettings:
    """The target: its connection and how :class:`~scimsync.targets.ScimTarget` writes."""

    connection: Connection
    use_patch: bool | None = None
    max_members_per_operation: int | None = None
    request_group_members: bool = False
    page_size: int = 100


@attrs.frozen(kw_only=True)
class Config:
    """A configuration file, read and checked; nothing is connected yet.

    ``policy`` is checked against the core schemas; the command fits it to the
    target's own ``/Schemas`` before planning. ``state_path`` is the SQLite state
    store. ``full_cycle_every`` is the :class:`~scimsync.Provisioner` setting.
    """

    path: Path
    sources: tuple[SourceSettings, ...]
    mapping: Mapping
    mapping_origin: str
    target: TargetSettings
    policy: Policy
    state_path: Path
    apply_policy: ApplyPolicy
    full_cycle_every: timedelta | None


def load_config(path: str | os.PathLike[str], *, environ: dict[str, str] | None = None) -> Config:
    """Read and check the configuration file at ``path``.

    ``environ`` is where ``*_env`` settings are looked up (default: ``os.environ``).
    Raises :class:`~scimsync.errors.ConfigurationError` with one line naming the
    file, the key and the problem.
    """
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: cannot be read: {exc}") from None
    data = parse_toml(text, str(file))
    top = Table(file, "", data)
    env = dict(os.environ) if environ is None else environ
    sources = _sources(top, env)
    mapping, origin = _mapping(top)
    target = _target(top, env)
    policy = _policy(top)
    state = top.table("state", required=True)
    assert state is not None
    state_path: Path = state.path("path")
    if not state_path.parent.is_dir():
        state.fail("path", f"the folder {state_path.parent} does not exist")
    state.finish()
    apply_policy, full_every = _run(top)
    top.finish()
    return Config(
        path=file,
        sources=sources,
        mapping=mapping,
        mapping_origin=origin,
        target=target,
        policy=policy,
        state_path=state_path,
        apply_policy=apply_policy,
        full_cycle_every=full_every,
    )


# -- source -------------------------------------------------------------------------------


def _sources(top: Table, env: dict[str, str]) -> tuple[SourceSettings, ...]:
    value = top.raw("source")
    if isinstance(value, dict):
        return (_source(top.child("source", value), env),)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return tuple(
            _source(Table(top.file, f"source[{i}]", item), env) for i, item in enumerate(value)
        )
    return top.fail("source", "expected a [source] table or [[source]] tables")


def _source(table: Table, env: dict[str, str]) -> SourceSettings:
    kind: SourceType = table.choice("type", SOURCE_TYPES)
    options: dict[str, Any] = {}
    connection = None
    if kind == "ldap":
        return _ldap_source(table, env)
    if kind == "sql":
        return _sql_source(table, env)
    if kind in ("csv", "jsonl"):
        options["path"] = table.existing_file("path")
        options["key"] = table.string("key")
        options["kind"] = table.choice("kind", ("user", "group"), "user")
        for name in ("encoding", "members", "name"):
            if name in table:
                options[name] = table.string(name)
        if kind == "csv":
            for name in ("delimiter", "quotechar"):
                if name in table:
                    options[name] = _one_character(table, name)
            if "header" in table:
                options["header"] = table.strings("header")
            if "max_row_size" in table:
                options["max_row_size"] = table.integer("max_row_size", 0, minimum=1)
            _multi_valued(table, options)
        if "members" in options and options["kind"] != "group":
            table.fail("members", 'is for a file of groups: add kind = "group"')
    else:
        connection = _connection(table, env)
        options["key"] = table.choice("key", ("id", "externalId"), "id")
        options["group_key"] = table.choice("group_key", ("id", "externalId"), "id")
        options["users"] = table.boolean("users", True)
        options["groups"] = table.boolean("groups", True)
        for name in ("user_filter", "group_filter", "name"):
            if name in table:
                options[name] = table.string(name)
        options["page_size"] = table.integer("page_size", 100, minimum=1)
        if "user_filter" in options or "group_filter" in options:
            _check_filters(table, options)
    table.finish()
    return SourceSettings(type=kind, options=options, connection=connection)


def _ldap_source(table: Table, env: dict[str, str]) -> SourceSettings:
    """``type = "ldap"``: the settings of :class:`~scimsync.sources.LdapSource`, the
    bind password from ``password_env`` or ``password_file``."""
    from ..sources import LdapSource

    options: dict[str, Any] = {"url": table.string("url"), "base_dn": table.string("base_dn")}
    if "bind_dn" in table:
        options["bind_dn"] = table.string("bind_dn")
        options["password"], _ = _secret(table, "password", env)
    elif "password" in table or "password_env" in table or "password_file" in table:
        table.fail("bind_dn", "a password needs a bind_dn")
    for name in ("sasl_external", "start_tls", "allow_insecure", "referrals"):
        if name in table:
            options[name] = table.boolean(name)
    for name in ("ca_file", "cert_file", "key_file"):
        if name in table:
            options[name] = table.existing_file(name)
    for name in ("user_filter", "user_base", "group_base", "key", "member_attribute", "name"):
        if name in table:
            options[name] = table.string(name)
    if "group_filter" in table:
        value = table.raw("group_filter")
        if value is False:
            options["group_filter"] = None  # no groups read
        elif isinstance(value, str) and value.strip():
            options["group_filter"] = value
        else:
            table.fail("group_filter", "expected an LDAP filter, or false to read no groups")
    if "scope" in table:
        options["scope"] = table.choice("scope", ("subtree", "one", "base"))
    for name in ("attributes", "multi_valued"):
        if name in table:
            options[name] = table.strings(name)
    if "page_size" in table:
        options["page_size"] = table.integer("page_size", minimum=1)
    if "timeout" in table:
        options["timeout"] = table.number("timeout", minimum=0.001)
    if "delta" in table:
        options["delta"] = table.choice("delta", ("modifyTimestamp", "uSNChanged"))
    table.finish()
    try:
        LdapSource(**options)  # checks the settings together; connects to nothing
    except ConfigurationError as exc:
        table.wrap(None, exc)
    return SourceSettings(type="ldap", options=options, where=options["url"])


def _sql_source(table: Table, env: dict[str, str]) -> SourceSettings:
    """``type = "sql"``: a query of :class:`~scimsync.sources.SqlSource` on a SQLite file
    (``sqlite``) or a PostgreSQL database (``dsn_env`` / ``dsn_file``: a libpq
    connection string, which may hold a password)."""
    from ..sources import SqlSource

    options: dict[str, Any] = {}
    given = [key for key in ("sqlite", "dsn_env", "dsn_file", "dsn") if key in table]
    if len(given) != 1:
        table.fail(
            None,
            'give the database with sqlite = "file.db", or a PostgreSQL connection string '
            'with dsn_env = "VARIABLE" or dsn_file = "path" (one of them)',
        )
    if given[0] == "sqlite":
        database: Path = table.existing_file("sqlite")
        options["connect"] = _sqlite_connect(database)
        where = f"{database}"
    else:
        dsn, origin = _secret(table, "dsn", env)
        options["connect"] = _postgres_connect(table, dsn)
        where = f"PostgreSQL (connection string from {origin})"
    options["query"] = table.string("query")
    if "params" in table:
        params = table.raw("params")
        plain = (str, int, float, bool)
        if isinstance(params, list) and all(isinstance(v, plain) for v in params):
            options["params"] = tuple(params)
        elif isinstance(params, dict) and all(isinstance(v, plain) for v in params.values()):
            options["params"] = dict(params)
        else:
            table.fail("params", "expected an array or a table of strings, numbers or booleans")
    options["key"] = table.string("key", "id")
    options["kind"] = table.choice("kind", ("user", "group"), "user")
    for name in ("members", "watermark", "name"):
        if name in table:
            options[name] = table.string(name)
    if "batch_size" in table:
        options["batch_size"] = table.integer("batch_size", minimum=1)
    _multi_valued(table, options)
    if "members" in options and options["kind"] != "group":
        table.fail("members", 'is for a query of groups: add kind = "group"')
    table.finish()
    try:
        SqlSource(**options)
    except ConfigurationError as exc:
        table.wrap(None, exc)
    return SourceSettings(type="sql", options=options, where=where)


def _sqlite_connect(database: Path) -> Callable[[], Any]:
    def connect() -> Any:
        import sqlite3

        # Read only: the source never writes to the HR database.
        return sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)

    return connect


def _postgres_connect(table: Table, dsn: Secret) -> Callable[[], Any]:
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        table.fail(None, "a PostgreSQL source needs psycopg: pip install 'scimsync[postgres]'")

    def connect() -> Any:
        import psycopg

        return psycopg.connect(dsn.reveal())

    return connect


def _multi_valued(table: Table, options: dict[str, Any]) -> None:
    """``multi_valued = { groups = ";" }``: the columns read as lists, with their
    separators (a CSV file's, a query's)."""
    multi = table.table("multi_valued")
    if multi is not None:
        options["multi_valued"] = {name: multi.string(name) for name in list(multi.keys())}
        multi.finish()


def _one_character(table: Table, key: str) -> str:
    value: str = table.string(key)
    if len(value) != 1:
        table.fail(key, f"expected one character, got {value!r}")
    return value


def _check_filters(table: Table, options: dict[str, Any]) -> None:
    from ..errors import FilterSyntaxError
    from ..filter import parse_filter

    for name in ("user_filter", "group_filter"):
        if name in options:
            try:
                parse_filter(options[name])
            except FilterSyntaxError as exc:
                table.wrap(name, exc)


# -- mapping ------------------------------------------------------------------------------


def _mapping(top: Table) -> tuple[Mapping, str]:
    value = top.raw("mapping")
    if isinstance(value, str):
        return import_mapping(value, top, "mapping"), value
    if isinstance(value, dict):
        return mapping_from_table(top.child("mapping", value)), "[mapping]"
    return top.fail("mapping", "expected 'package.module:NAME' or a [mapping] table")


# -- target and connections ---------------------------------------------------------------


def _target(top: Table, env: dict[str, str]) -> TargetSettings:
    table = top.table("target", required=True)
    assert table is not None
    connection = _connection(table, env)
    settings = TargetSettings(
        connection=connection,
        use_patch=table.boolean("use_patch", None),
        max_members_per_operation=table.integer("max_members_per_operation", None, minimum=1),
        request_group_members=table.boolean("request_group_members", False),
        page_size=table.integer("page_size", 100, minimum=1),
    )
    table.finish()
    return settings


def _connection(table: Table, env: dict[str, str]) -> Connection:
    from .._urls import require_safe_url

    url: str = table.string("url")
    allow_insecure_http: bool = table.boolean("allow_insecure_http", False)
    try:
        require_safe_url(url, what="the URL", allow_insecure_http=allow_insecure_http)
    except ConfigurationError as exc:
        table.wrap("url", exc)
    if "verify" in table:
        table.fail(
            "verify",
            "TLS verification cannot be switched off; give the CA that signed the "
            'server\'s certificate with ca_file = "path"',
        )
    verify = _tls(table)
    timeout: float = table.number("timeout", 30.0, minimum=0.001)
    retry = RetryPolicy()
    retry_table = table.table("retry")
    if retry_table is not None:
        retry = _retry(retry_table)
    auth, origin = _auth(table, env)
    return Connection(
        url=url,
        auth=auth,
        auth_origin=origin,
        timeout=timeout,
        verify=verify,
        allow_insecure_http=allow_insecure_http,
        retry=retry,
    )


def _tls(table: Table) -> ssl.SSLContext | bool:
    """System CAs (True), or a context with the CA file and client certificate given."""
    ca_file: Path | None = table.existing_file("ca_file", None)
    client_cert: Path | None = table.existing_file("client_cert", None)
    client_key: Path | None = table.existing_file("client_key", None)
    if client_key is not None and client_cert is None:
        table.fail("client_key", "needs client_cert as well")
    if ca_file is None and client_cert is None:
        return True
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        table.fail("ca_file", f"cannot load {ca_file}: {exc}")
    if client_cert is not None:
        try:
            # An encrypted key would make OpenSSL prompt on the terminal: refuse it instead.
            context.load_cert_chain(
                str(client_cert), str(client_key) if client_key else None, password=lambda: b""
            )
        except (ssl.SSLError, OSError) as exc:
            table.fail("client_cert", f"cannot load {client_cert}: {exc}")
    return context


_RETRY_NUMBERS = (
    "max_total_seconds",
    "initial_wait",
    "multiplier",
    "max_wait",
    "jitter",
    "max_retry_after",
)


def _retry(table: Table) -> RetryPolicy:
    options: dict[str, Any] = {}
    if "max_attempts" in table:
        options["max_attempts"] = table.integer("max_attempts", minimum=1)
    for name in _RETRY_NUMBERS:
        if name in table:
            options[name] = table.number(name, minimum=0)
    if "retry_statuses" in table:
        statuses = table.raw("retry_statuses")
        if not isinstance(statuses, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in statuses
        ):
            table.fail("retry_statuses", "expected an array of HTTP status codes")
        options["retry_statuses"] = statuses
    table.finish()
    try:
        return RetryPolicy(**options)
    except ConfigurationError as exc:
        table.wrap(None, exc)


def _auth(table: Table, env: dict[str, str]) -> tuple[httpx.Auth | None, str]:
    if "token" in table:
        table.raw("token")
        table.refuse_secret(
            "token", f'name it in the auth table: [{table.name}.auth] token_env = "NAME"'
        )
    for misplaced in ("token_env", "token_file"):
        if misplaced in table:
            table.fail(
                misplaced,
                f'belongs in the auth table: [{table.name}.auth] type = "bearer", '
                f"{misplaced} = ...",
            )
    auth = table.table("auth")
    if auth is None:
        return None, "none"
    kind = auth.choice("type", ("bearer", "oauth2", "none"))
    if kind == "none":
        auth.finish()
        return None, "none"
    if kind == "bearer":
        from ..auth import BearerToken

        secret, origin = _secret(auth, "token", env)
        auth.finish()
        try:
            return BearerToken(secret), origin
        except ConfigurationError:
            auth.fail(
                _secret_key(auth, "token"), f"the token in {origin} is not a valid bearer token"
            )
    from ..auth import OAuth2ClientCredentials

    token_url: str = auth.string("token_url")
    client_id: str = auth.string("client_id")
    secret, origin = _secret(auth, "client_secret", env)
    scope = auth.strings("scope", None)
    client_auth: str = auth.choice("client_auth", ("basic", "post"), "basic")
    extra: dict[str, str] = {}
    extra_table = auth.table("extra_params")
    if extra_table is not None:
        for name in list(extra_table.keys()):
            if name.lower() in ("client_secret", "password", "assertion", "client_assertion"):
                extra_table.refuse_secret(name)
            extra[name] = extra_table.string(name)
        extra_table.finish()
    refresh_margin: float = auth.number("refresh_margin", 60.0, minimum=0)
    allow_insecure_http: bool = auth.boolean("allow_insecure_http", False)
    auth.finish()
    try:
        flow = OAuth2ClientCredentials(
            token_url,
            client_id,
            secret,
            scope=scope,
            extra_params=extra,
            client_auth=client_auth,
            refresh_margin=refresh_margin,
            allow_insecure_http=allow_insecure_http,
        )
    except ConfigurationError as exc:
        auth.wrap("token_url", exc)
    return flow, f"OAuth2 client {client_id!r} at {token_url}, secret from {origin}"


def _secret_key(table: Table, name: str) -> str:
    return f"{name}_env" if f"{name}_env" in table else f"{name}_file"


def _secret(table: Table, name: str, env: dict[str, str]) -> tuple[Secret, str]:
    """The secret ``name`` from ``<name>_env`` or ``<name>_file``, and where it came from."""
    env_key, file_key = f"{name}_env", f"{name}_file"
    if name in table:
        table.raw(name)
        table.refuse_secret(
            name,
            f'name an environment variable with {env_key} = "NAME" or a file with '
            f'{file_key} = "path"',
        )
    given = [k for k in (env_key, file_key) if k in table]
    if len(given) != 1:
        table.fail(
            None,
            f'give the {name.replace("_", " ")} with {env_key} = "VARIABLE" or '
            f'{file_key} = "path" (one of them)',
        )
    if given[0] == env_key:
        variable: str = table.string(env_key)
        value = env.get(variable)
        if value is None:
            table.fail(env_key, f"the environment variable {variable} is not set")
        origin = f"${variable}"
    else:
        file: Path = table.path(file_key)
        try:
            value = file.read_text("utf-8")
        except FileNotFoundError:
            table.fail(file_key, f"no such file: {file}")
        except (OSError, UnicodeDecodeError) as exc:
            table.fail(file_key, f"cannot read {file}: {type(exc).__name__}")
        origin = f"file {file}"
    value = value.strip()
    if not value:
        table.fail(given[0], f"the {name.replace('_', ' ')} in {origin} is empty")
    return Secret(value), origin


# -- policy, state, run -------------------------------------------------------------------

_OFF = "off"


def _policy(top: Table) -> Policy:
    table = top.table("policy")
    if table is None:
        return Policy()
    if "force" in table:
        table.raw("force")
        table.fail(
            "force",
            "guards are forced per run, never in the file: pass --force "
            f"{' / '.join(GUARDS)} to plan or apply",
        )
    options: dict[str, Any] = {}
    for name in ("match_keys", "group_match_keys", "sensitive_paths"):
        if name in table:
            options[name] = table.strings(name)
    for name in (
        "adopt",
        "deprovision",
        "group_deprovision",
        "update_method",
        "external_id_prefix",
    ):
        if name in table:
            options[name] = table.string(name)
    for name in ("delete_after_days", "max_members_per_operation"):
        if name in table:
            options[name] = table.integer(name)
    for name in ("max_deprovisions", "max_deprovisions_percent", "max_source_shrink"):
        if name in table:
            value = table.raw(name)
            if value == _OFF:
                options[name] = None
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                options[name] = value
            else:
                table.fail(name, f'expected a number, or "off" for no limit; got {value!r}')
    table.finish()
    try:
        return Policy(**options)
    except ConfigurationError as exc:
        table.fail(None, str(exc).removeprefix("invalid policy: "))


def _run(top: Table) -> tuple[ApplyPolicy, timedelta | None]:
    table = top.table("run")
    if table is None:
        return ApplyPolicy(), timedelta(hours=24)
    options: dict[str, Any] = {}
    for name in ("concurrency", "min_operations", "max_create_attempts"):
        if name in table:
            options[name] = table.integer(name, minimum=1)
    if "max_rereads" in table:
        options["max_rereads"] = table.integer("max_rereads", minimum=0)
    if "max_failure_rate" in table:
        options["max_failure_rate"] = table.number("max_failure_rate", minimum=0)
    hours: float = table.number("full_cycle_every_hours", 24.0, minimum=0)
    table.finish()
    try:
        apply_policy = ApplyPolicy(**options)
    except (ConfigurationError, ValueError, TypeError) as exc:
        table.wrap(None, exc)
    return apply_policy, (timedelta(hours=hours) if hours > 0 else None)
