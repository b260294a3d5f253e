"""From a checked :class:`Config` to live objects: clients, source, target, provisioner.

Everything opened here is closed by the ``async with`` that opened it, on the event
loop that used it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from ..client import AsyncScimClient, ScimClient
from ..errors import ConfigurationError, StateError
from ..sources import (
    CombinedSource,
    CsvSource,
    JsonLinesSource,
    LdapSource,
    ScimSource,
    Source,
    SqlSource,
)
from ..sync import MemoryStateStore, Provisioner, RequestStats, SqliteStateStore
from ..targets import ScimTarget
from ._config import Config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ..schema import SchemaTable
    from ..sync import Progress, StateStore
    from ._config import Connection, SourceSettings

__all__ = ["Runtime", "connect"]


@attrs.define
class Runtime:
    """The live pieces of one command: the target's client, the target, the source."""

    config: Config
    client: AsyncScimClient
    target: ScimTarget
    source: Source
    stats: RequestStats
    stack: contextlib.AsyncExitStack

    def source_fields(self) -> frozenset[str] | None:
        """The source's fields for the mapping check (see :func:`source_fields`)."""
        return source_fields(self.config)

    async def schema(self) -> SchemaTable:
        """The target's schema table (the core schemas when it publishes none)."""
        return await self.target.schema()

    async def provisioner(
        self,
        *,
        create_state: bool,
        new_state: bool = False,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> Provisioner:
        """A provisioner on this runtime, its policy fitted to the target's schema.

        The mapping is checked against the target's schema and the source's fields
        first: a blocking problem is a :class:`ConfigurationError`, one line each.
        ``create_state`` opens (and creates) the state file; otherwise a missing state
        file is read as an empty state and nothing is written to disk. ``new_state``
        (``--new-state``) lets an existing empty state file start a new state.
        """
        config = self.config
        schema = await self.schema()
        try:
            policy = attrs.evolve(config.policy, schema=schema)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{config.path}: [policy]: {exc}") from None
        check = config.mapping.check(schema, fields=self.source_fields())
        if not check.ok:
            raise ConfigurationError(
                "\n".join(
                    f"{config.path}: mapping {problem.entry}: {problem.message}"
                    for problem in check.blocking
                )
            )
        return Provisioner(
            self.source,
            config.mapping,
            self.target,
            policy,
            state=self.open_state(create=create_state, new=new_state),
            apply_policy=config.apply_policy,
            on_progress=on_progress,
            request_stats=self.stats,
            full_cycle_every=config.full_cycle_every,
        )

    def remembering(self, *, create_state: bool = False) -> Provisioner:
        """A provisioner for what the state store remembers (:meth:`Provisioner.learned`,
        :meth:`Provisioner.forget`): nothing is read from the target, and the mapping is
        not checked against its schema (it takes no cycle)."""
        config = self.config
        return Provisioner(
            self.source,
            config.mapping,
            self.target,
            config.policy,
            state=self.open_state(create=create_state),
            check_mapping=False,
        )

    def open_state(self, *, create: bool, new: bool = False) -> StateStore:
        """The state store: the SQLite file (closed with the runtime), or an empty
        in-memory state when the file does not exist (or, with ``new``, is empty) and
        ``create`` is False."""
        path = self.config.state_path
        if not create and (not path.exists() or (new and path.stat().st_size == 0)):
            return MemoryStateStore()
        try:
            store = SqliteStateStore(path, new=new)
        except StateError as exc:
            raise ConfigurationError(f"{self.config.path}: [state] path: {exc}") from None
        self.stack.callback(store.close)
        return store


def source_fields(config: Config) -> frozenset[str] | None:
    """The fields the source's files provide, for the mapping check; None when a part
    cannot tell (JSON Lines, SCIM).

    Columns the source itself consumes (the key, a group file's members) are left out
    unless a rule reads them too, so they are not reported as "unread".
    """
    fields: set[str] = set()
    consumed: set[str] = set()
    for index, settings in enumerate(config.sources):
        if settings.type != "csv":
            return None
        try:
            fields.update(CsvSource(**settings.options).fields())
        except ConfigurationError as exc:
            where = "[source]" if len(config.sources) == 1 else f"[source[{index}]]"
            raise ConfigurationError(f"{config.path}: {where} path: {exc}") from None
        consumed.update(
            settings.options[name] for name in ("key", "members") if settings.options.get(name)
        )
    return frozenset(fields - (consumed - config.mapping.reads))


@contextlib.asynccontextmanager
async def connect(config: Config, stats: RequestStats | None = None) -> AsyncIterator[Runtime]:
    """Open the target's client and the source; close them on the way out."""
    stats = stats if stats is not None else RequestStats()
    async with contextlib.AsyncExitStack() as stack:
        settings = config.target
        client = AsyncScimClient(
            settings.connection.url,
            http=await stack.enter_async_context(_async_http(settings.connection)),
            **_client_options(settings.connection),
            on_request=[stats.on_request],
            on_retry=[stats.on_retry],
        )
        target = ScimTarget(
            client,
            use_patch=settings.use_patch,
            max_members_per_operation=settings.max_members_per_operation,
            request_group_members=settings.request_group_members,
            page_size=settings.page_size,
        )
        sources = [_source(part, stack) for part in config.sources]
        source: Source = sources[0] if len(sources) == 1 else CombinedSource(*sources)
        yield Runtime(
            config=config, client=client, target=target, source=source, stats=stats, stack=stack
        )


def _async_http(connection: Connection) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=connection.verify, timeout=connection.timeout)


def _client_options(connection: Connection) -> dict[str, Any]:
    return {
        "auth": connection.auth,
        "retry": connection.retry,
        "allow_insecure_http": connection.allow_insecure_http,
    }


def _source(settings: SourceSettings, stack: contextlib.AsyncExitStack) -> Source:
    if settings.type == "csv":
        return CsvSource(**settings.options)
    if settings.type == "jsonl":
        return JsonLinesSource(**settings.options)
    if settings.type == "ldap":
        return LdapSource(**settings.options)
    if settings.type == "sql":
        return SqlSource(**settings.options)
    connection = settings.connection
    assert connection is not None
    http = stack.enter_context(httpx.Client(verify=connection.verify, timeout=connection.timeout))
    client = ScimClient(connection.url, http=http, **_client_options(connection))
    return ScimSource(client, **settings.options)
