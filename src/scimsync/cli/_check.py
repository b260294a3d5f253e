"""``scimsync check``: everything a sync needs, checked; nothing written without ``--probe``.

In order: the configuration, the sources, the target (connectivity, authentication,
capabilities), its schema against the policy and the mapping, a sample of its users
and groups against the mapping (:mod:`._sample`), the probe when asked
(:mod:`._probe`), the state store with what cycles learned of the target, and what
the target was seen to do against the RFCs. Each check adds :class:`Finding` lines;
any ``error`` among them is exit 1, ``warning`` never is.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError
from . import EXIT_FAILED, EXIT_OK
from ._findings import STATUSES, Finding
from ._probe import ProbeReport

if TYPE_CHECKING:
    import argparse

    from ..client import ServiceCapabilities
    from ..schema import SchemaTable
    from ._config import Config
    from ._console import Console
    from ._probe import ProbeNames
    from ._runtime import Runtime

__all__ = ["Finding", "check_command"]


def _load(args: argparse.Namespace) -> Config:
    from ._config import load_config

    return load_config(args.config)


def check_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync check [--sample N] [--probe]``: everything a sync needs; exit 1 if
    blocked. Nothing is written unless ``--probe`` is given."""
    from ._probe import ProbeNames

    config = _load(args)
    names = ProbeNames.new() if args.probe else None
    if names is not None:
        # Said before anything is sent; in JSON mode on stderr, stdout keeps one document.
        announcement = names.announcement(config.target.connection.url)
        if console.json_mode:
            print(f"scimsync: {announcement}", file=console.stderr, flush=True)
        console.line(announcement)
    outcome = asyncio.run(_check(config, sample_size=args.sample, probe=names))
    findings = outcome.findings
    counts = {status: sum(1 for f in findings if f.status == status) for status in STATUSES}
    errors = counts["error"]
    code = EXIT_FAILED if errors else EXIT_OK
    console.json(
        {
            "ok": not errors,
            "exitCode": code,
            "checks": [f.to_dict() for f in findings],
            "sample": outcome.sample,
            "probe": outcome.probe.to_dict() if outcome.probe is not None else None,
        }
    )
    console.line(f"Checking {config.path}")
    width = max(len(f.name) for f in findings)
    for finding in findings:
        console.line(f"  {finding.status:<7} {finding.name:<{width}}  {finding.detail}")
    also = [_count(counts[status], status) for status in ("warning", "note") if counts[status]]
    noted = f" ({', '.join(also)})" if also else ""
    if errors:
        console.line(f"Not ready: {_count(errors, 'blocking problem')}{noted}.")
    else:
        console.line(f"Ready: no blocking problem{noted}.")
    return code


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'s' if number != 1 else ''}"


@attrs.define
class _Outcome:
    """What ``check`` found: the lines, the sample read, the probe's report."""

    findings: list[Finding] = attrs.field(factory=list)
    sample: dict[str, Any] | None = None
    probe: ProbeReport | None = None


async def _check(config: Config, *, sample_size: int, probe: ProbeNames | None) -> _Outcome:
    from ._runtime import connect

    outcome = _Outcome()
    found = outcome.findings
    found.append(Finding("config", "ok", _describe_config(config)))
    async with connect(_without_retries(config)) as runtime:
        fields = await _check_sources(runtime, found)
        _check_methods(runtime, found)
        reachable = await _check_target(runtime, found)
        schema = None
        if reachable:
            schema = await _check_schema(runtime, fields, found)
        else:
            found.append(Finding("mapping", "skipped", "the target's schema could not be read"))
        fits = schema is not None and not any(f.status == "error" for f in found)
        if not fits:
            found.append(Finding("sample", "skipped", "not read: fix the errors above first"))
        elif sample_size > 0:
            assert schema is not None
            outcome.sample = await _check_sample(runtime, schema, sample_size, found)
        else:
            found.append(Finding("sample", "skipped", "--sample 0"))
        if probe is not None:
            if fits:
                assert schema is not None
                outcome.probe = await _probe(runtime, schema, probe)
                found.extend(outcome.probe.findings())
            else:
                found.append(
                    Finding("probe", "skipped", "nothing written: fix the errors above first")
                )
        learned = _check_state(runtime, found)
        said = set(learned)
        found.extend(
            Finding("target", "warning", text)
            for text in runtime.target.facts.describe()
            if text not in said
        )
    return outcome


async def _probe(runtime: Runtime, schema: SchemaTable, names: ProbeNames) -> ProbeReport:
    from ._probe import run_probe

    capabilities = await runtime.target.capabilities()
    return await run_probe(
        runtime.client, schema, runtime.config.mapping, names, patch=capabilities.patch
    )


def _without_retries(config: Config) -> Config:
    """``config`` trying each request once: a check answers at once what it sees (an
    unreachable target is said in a second, not after the retry policy's waits)."""
    import attrs

    from ..retry import RetryPolicy

    target = config.target
    once = attrs.evolve(target.connection, retry=RetryPolicy.never())
    sources = tuple(
        attrs.evolve(s, connection=attrs.evolve(s.connection, retry=RetryPolicy.never()))
        if s.connection is not None
        else s
        for s in config.sources
    )
    return attrs.evolve(config, target=attrs.evolve(target, connection=once), sources=sources)


def _describe_config(config: Config) -> str:
    sources = "; ".join(s.describe() for s in config.sources)
    return (
        f"source {sources}; mapping {config.mapping_origin} ({len(config.mapping.entries)} "
        f"attributes); target {config.target.connection.url}; state {config.state_path.name}"
    )


async def _check_sources(runtime: Runtime, found: list[Finding]) -> frozenset[str] | None:
    """Each source file readable with its key (and members) column; a SCIM source
    answering and accepting its credentials. Returns the fields for the mapping check."""
    from ..errors import ScimSyncError
    from ..sources import CsvSource
    from ._runtime import source_fields

    config = runtime.config
    parts = getattr(runtime.source, "sources", None) or (runtime.source,)
    usable = True
    for settings, part in zip(config.sources, parts, strict=True):
        if settings.connection is not None:
            found.append(await _check_source_service(part, settings.connection.url))
            continue
        if settings.type in ("ldap", "sql"):
            finding = await _check_source_read(part, settings.describe())
            usable = usable and finding.status == "ok"
            found.append(finding)
            continue
        options = settings.options
        name = options["path"].name
        if settings.type != "csv":
            found.append(Finding("source", "ok", f"{name}: JSON Lines, key {options['key']!r}"))
            continue
        try:
            fields = CsvSource(**options).fields()
        except ScimSyncError as exc:
            found.append(Finding("source", "error", f"{name}: {_short(exc)}"))
            usable = False
            continue
        missing = [
            options[column]
            for column in ("key", "members")
            if options.get(column) is not None and options[column] not in fields
        ]
        if missing:
            listed = ", ".join(map(repr, missing))
            found.append(Finding("source", "error", f"{name} has no column {listed}"))
        else:
            detail = f"{name}: {len(fields)} columns, key {options['key']!r}"
            found.append(Finding("source", "ok", detail))
    return source_fields(config) if usable else None


async def _check_source_read(source: Any, described: str) -> Finding:
    """A directory or database source connects, binds and runs its query: its first
    record is read (and nothing more)."""
    from ..errors import ScimSyncError

    def probe() -> int:
        items = iter(source.read())
        try:
            return 0 if next(items, None) is None else 1
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    try:
        read = await asyncio.to_thread(probe)
    except ScimSyncError as exc:
        return Finding("source", "error", f"{described}: {_short(exc)}")
    what = "read its first record" if read else "answered, with no record"
    return Finding("source", "ok", f"{described}: {what}")


async def _check_source_service(source: Any, url: str) -> Finding:
    """A SCIM source answers discovery and lists users with its credentials."""
    from ..errors import ScimSyncError
    from ..models import User

    def probe() -> None:
        client = source.client
        client.service_provider_config()
        for _ in client.iter_all(User, page_size=1, attributes=["userName"]):
            break

    try:
        await asyncio.to_thread(probe)
    except ScimSyncError as exc:
        return Finding("source", "error", f"{url}: {_short(exc)}")
    return Finding("source", "ok", f"{url} answered and listed users")


def _check_methods(runtime: Runtime, found: list[Finding]) -> None:
    """The target has the methods the mapping needs (the group ones for a mapping that
    makes groups), looked at without I/O: said only when some are missing."""
    from ..targets._protocol import MAPPING_MAKES_GROUPS, methods_problem

    problem = methods_problem(
        runtime.target, groups=runtime.config.mapping.uses_groups, why_groups=MAPPING_MAKES_GROUPS
    )
    if problem is not None:
        found.append(Finding("target", "error", problem))


async def _check_target(runtime: Runtime, found: list[Finding]) -> bool:
    """Connectivity, authentication and capabilities; False when the target is unusable."""
    from contextlib import aclosing
    from typing import cast

    from ..errors import ForbiddenError, ScimSyncError, TransportError, UnauthorizedError
    from ..models import User

    client = runtime.client
    connection = runtime.config.target.connection
    try:
        capabilities = await client.capabilities()
    except TransportError as exc:
        found.append(Finding("connectivity", "error", f"{connection.url}: {_short(exc)}"))
        return False
    except (UnauthorizedError, ForbiddenError) as exc:
        found.append(Finding("connectivity", "ok", f"{connection.url} answered"))
        found.append(
            Finding(
                "auth", "error", f"refused ({_short(exc)}); credentials: {connection.auth_origin}"
            )
        )
        return False
    except ScimSyncError as exc:
        found.append(
            Finding(
                "connectivity", "error", f"{connection.url}/ServiceProviderConfig: {_short(exc)}"
            )
        )
        return False
    found.append(Finding("connectivity", "ok", f"{connection.url} answered /ServiceProviderConfig"))
    try:
        listing = cast("Any", client.iter_all(User, page_size=1, attributes=["userName"]))
        async with aclosing(listing) as users:
            async for _ in users:
                break
    except (UnauthorizedError, ForbiddenError) as exc:
        found.append(
            Finding(
                "auth", "error", f"refused ({_short(exc)}); credentials: {connection.auth_origin}"
            )
        )
        return False
    except ScimSyncError as exc:
        found.append(Finding("auth", "error", f"GET /Users failed: {_short(exc)}"))
        return False
    if connection.auth is None:
        found.append(Finding("auth", "note", "no credentials configured, and GET /Users answered"))
    else:
        found.append(
            Finding("auth", "ok", f"accepted (GET /Users); credentials: {connection.auth_origin}")
        )
    found.append(Finding("capabilities", "ok", _describe_capabilities(capabilities)))
    if not capabilities.patch and runtime.config.target.use_patch is not False:
        found.append(
            Finding(
                "capabilities",
                "note",
                "no PATCH: updates are read-modify-write PUTs that keep attributes the mapping "
                "does not manage",
            )
        )
    if not capabilities.filter:
        found.append(
            Finding(
                "capabilities",
                "note",
                "no filters: a create whose answer is lost cannot be looked up; keep a state file",
            )
        )
    return True


def _describe_capabilities(capabilities: ServiceCapabilities) -> str:
    features = [
        ("PATCH", capabilities.patch),
        ("filter", capabilities.filter),
        ("ETags", capabilities.etag),
        ("bulk", capabilities.bulk),
        ("sort", capabilities.sort),
    ]
    has = [name for name, present in features if present]
    lacks = [name for name, present in features if not present]
    text = ", ".join(has) if has else "nothing announced"
    return text + (f"; no {', no '.join(lacks)}" if lacks else "")


async def _check_schema(
    runtime: Runtime, fields: frozenset[str] | None, found: list[Finding]
) -> SchemaTable | None:
    """The target's schema, the policy and the mapping fitted to it; the schema, or
    None when it could not be read."""
    from ..errors import ScimSyncError
    from ..schema import CORE_SCHEMAS

    config = runtime.config
    try:
        schema = await runtime.schema()
    except ScimSyncError as exc:
        found.append(Finding("schema", "error", f"/Schemas: {_short(exc)}"))
        return None
    types = []
    for name in ("User", "Group"):
        resource_type = schema.resource_type(name)
        if resource_type is None:
            continue
        extensions = schema.extension_urns(name)
        types.append(f"{name} (+ {', '.join(extensions)})" if extensions else name)
    described = ", ".join(types) or "no User or Group resource type"
    if schema is CORE_SCHEMAS:
        described += ": the RFC 7643 core schemas, assumed"
    found.append(Finding("schema", "note" if schema is CORE_SCHEMAS else "ok", described))
    try:
        policy = attrs.evolve(config.policy, schema=schema)
    except ConfigurationError as exc:
        found.append(Finding("policy", "error", _short(exc)))
    else:
        found.append(
            Finding(
                "policy",
                "ok",
                f"users matched by {', '.join(policy.match_keys)}; groups by "
                f"{', '.join(policy.group_match_keys)}; deprovision: {policy.deprovision} "
                f"(groups: {policy.group_deprovision})",
            )
        )
    check = config.mapping.check(schema, fields=fields)
    if check.ok:
        found.append(
            Finding("mapping", "ok", f"{len(config.mapping.entries)} attributes fit the target")
        )
    found.extend(
        Finding("mapping", "error" if p.blocking else "note", f"{p.entry}: {p.message}")
        for p in check.problems
    )
    return schema


async def _check_sample(
    runtime: Runtime, schema: SchemaTable, size: int, found: list[Finding]
) -> dict[str, Any]:
    """Up to ``size`` users and groups (the first page), against the mapping: warn of
    each mapped attribute none of them holds. Sends no write."""
    from ..errors import ScimSyncError
    from ..models import Group, User
    from ._sample import absent_attributes, compared_entries

    read: dict[str, int] = {}
    absent = []
    for kind in (User, Group):
        resource_type = kind.resource_type_name
        try:
            sample = await _read_sample(runtime, kind, size)
        except ScimSyncError as exc:
            found.append(Finding("sample", "warning", f"GET /{resource_type}s: {_short(exc)}"))
            continue
        read[resource_type] = len(sample)
        entries = compared_entries(runtime.config.mapping, resource_type, schema)
        if sample:
            absent.extend(absent_attributes(entries, resource_type, sample))
    for item in absent:
        count = _count(read[item.resource_type], item.resource_type.lower())
        found.append(
            Finding(
                "sample",
                "warning",
                f"{item.resource_type} {item.path}: none of the {count} read holds {item.what}",
            )
        )
    held = [rt for rt, n in read.items() if n]
    counted = " and ".join(_count(read[rt], rt.lower()) for rt in held)
    if absent:
        found.append(
            Finding(
                "sample",
                "note",
                "the target may drop what none of the accounts read holds, or nobody has "
                "set it there yet: scimsync check --probe finds out with a throwaway user",
            )
        )
    elif held:
        empty = [f"no {rt.lower()}s" for rt, n in read.items() if not n]
        none_yet = f" ({' and '.join(empty)} yet)" if empty else ""
        which = f" {'/'.join(rt.lower() for rt in held)}" if empty else ""
        found.append(
            Finding(
                "sample",
                "ok",
                f"{counted} read{none_yet}: each mapped{which} attribute is held by at least one",
            )
        )
    elif read:
        found.append(
            Finding("sample", "skipped", "the target holds no users or groups to compare yet")
        )
    return {
        "read": read,
        "absent": [
            {"resourceType": a.resource_type, "path": a.path, "missing": a.what} for a in absent
        ],
    }


async def _read_sample(runtime: Runtime, kind: type[Any], size: int) -> list[dict[str, Any]]:
    """The first ``size`` resources of ``kind`` as SCIM JSON (groups without members)."""
    from contextlib import aclosing
    from typing import cast

    from ..codec import to_scim
    from ..errors import BadRequestError
    from ..models import Group

    # Groups without their members, which can be many; a target that cannot leave them
    # out is read again with them.
    excluded = ["members"] if kind is Group else None
    while True:
        out: list[dict[str, Any]] = []
        listing = cast(
            "Any", runtime.client.iter_all(kind, page_size=size, excluded_attributes=excluded)
        )
        try:
            async with aclosing(listing) as resources:
                async for resource in resources:
                    out.append(to_scim(resource))
                    if len(out) >= size:
                        break
        except BadRequestError:
            if excluded is None:
                raise
            excluded = None
            continue
        return out


def _check_state(runtime: Runtime, found: list[Finding]) -> tuple[str, ...]:
    """The state store, and what it says cycles learned of the target (returned)."""
    from ..errors import StateError
    from ..sync import SqliteStateStore

    path = runtime.config.state_path
    if not path.exists():
        found.append(Finding("state", "ok", f"{path}: new, created by the first apply"))
        return ()
    try:
        with SqliteStateStore(path) as store:
            history = store.history(1)
        learned = runtime.remembering().learned()
    except StateError as exc:
        found.append(Finding("state", "error", _short(exc)))
        return ()
    if not history:
        found.append(Finding("state", "ok", f"{path}: no cycle yet"))
    else:
        last = history[0]
        found.append(
            Finding(
                "state",
                "ok" if last.succeeded else "note",
                f"{path}: last cycle {last.finished_at:%Y-%m-%d %H:%M} UTC, {last.outcome}",
            )
        )
    shown = learned[:_LEARNED_SHOWN]
    found.extend(Finding("learned", "note", line) for line in shown)
    if len(learned) > len(shown):
        more = len(learned) - len(shown)
        found.append(Finding("learned", "note", f"… and {more} more: scimsync learned"))
    return learned


#: How many lines of what was learned check shows (``scimsync learned`` shows all).
_LEARNED_SHOWN = 10


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
