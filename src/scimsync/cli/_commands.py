"""The commands: ``plan``, ``apply``, ``check``, ``serve-test`` (``demo`` is in ``_demo``).

Each takes the parsed arguments and a :class:`Console` and returns the exit code;
configuration mistakes are raised as :class:`~scimsync.errors.ConfigurationError`
(exit 3 in :func:`scimsync.cli.main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError, PlanError
from . import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence

    from ..client import Capabilities
    from ..engine import Plan
    from ..sync import Progress, Provisioner, SyncReport
    from ._config import Config
    from ._console import Console, ProgressDisplay
    from ._runtime import Runtime

__all__ = ["COMMANDS"]


def _load(args: argparse.Namespace) -> Config:
    from ._config import load_config

    return load_config(args.config)


# -- plan ---------------------------------------------------------------------------------


def plan_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync plan``: print the plan (and save it with ``--out``); exit 2 if blocked."""
    config = _load(args)
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.resolve().is_dir():
        raise ConfigurationError(f"--out {out}: the folder {out.parent} does not exist")
    progress = console.progress()
    try:
        plan = asyncio.run(_plan(config, args.force, progress))
    finally:
        progress.finish()
    if out is not None:
        _save_plan(plan, out)
    code = EXIT_BLOCKED if plan.blocked else EXIT_OK
    console.json(
        {
            "summary": plan.summary(),
            "blocked": plan.blocked,
            "saved": str(out) if out is not None else None,
            "exitCode": code,
            "plan": plan.to_dict(),
        }
    )
    console.line(plan.render(color=console.color).rstrip("\n"))
    if plan.blocked:
        guards = ", ".join(trip.name for trip in plan.guards if not trip.forced)
        console.line()
        console.line(
            f"Blocked: {len(plan.held)} operations held by {guards}. Review them; if they are "
            f"meant, plan again with --force <guard>."
        )
    if out is not None:
        console.line()
        console.line(f"Saved to {out}. Apply it with: scimsync apply -c {args.config} --plan {out}")
    return code


async def _plan(
    config: Config, force: Sequence[str], progress: Callable[[Progress], object]
) -> Plan:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = await runtime.provisioner(create_state=False, on_progress=progress)
        return await provisioner.aplan(force=force)


def _save_plan(plan: Plan, path: Path) -> None:
    # A plan holds what applying needs, create-only values included: owner-only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(plan.to_json())


def _read_plan(path: str) -> Plan:
    from ..engine import Plan

    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"--plan {path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return Plan.from_json(text)
    except PlanError as exc:
        raise ConfigurationError(f"--plan {path}: {exc}") from None


# -- apply --------------------------------------------------------------------------------


def apply_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync apply``: apply a saved plan, or run one cycle; exit with the report's code."""
    if args.plan is not None and args.force:
        raise ConfigurationError(
            "--force is decided when planning: run scimsync plan --force ... --out FILE, "
            "then apply that plan"
        )
    if args.plan is not None and args.full:
        raise ConfigurationError("--full reads the target for a new plan: not with --plan")
    config = _load(args)
    saved = _read_plan(args.plan) if args.plan is not None else None
    progress = console.progress()
    try:
        report = asyncio.run(_apply(config, saved, args, console, progress))
    finally:
        progress.finish()
    console.json(report.to_dict())
    console.line(str(report))
    return report.exit_code


async def _apply(
    config: Config,
    saved: Plan | None,
    args: argparse.Namespace,
    console: Console,
    progress: ProgressDisplay,
) -> SyncReport:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = await runtime.provisioner(create_state=True, on_progress=progress)
        with _stop_on_interrupt(provisioner, console, progress):
            if saved is not None:
                return await provisioner.aapply(saved)
            return await provisioner.arun_once(full=args.full, force=args.force)


@contextlib.contextmanager
def _stop_on_interrupt(
    provisioner: Provisioner, console: Console, progress: ProgressDisplay
) -> Iterator[None]:
    """The first Ctrl-C stops the cycle cleanly (no new write; those in flight finish; the
    state is saved; the report says so); a second one abandons it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    presses = 0

    def interrupted() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            provisioner.stop()
            progress.finish()
            print(
                "scimsync: stopping: no new write, those in flight finish (Ctrl-C again to "
                "abandon them)",
                file=console.stderr,
                flush=True,
            )
        elif task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


# -- check --------------------------------------------------------------------------------


@attrs.frozen
class Finding:
    """One line of ``scimsync check``: what was checked, how it went, the detail."""

    name: str
    status: str  # "ok", "note", "error" or "skipped"
    detail: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON data."""
        return {"name": self.name, "status": self.status, "detail": self.detail}


def check_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync check``: everything a sync needs, nothing written; exit 1 if blocked."""
    config = _load(args)
    findings = asyncio.run(_check(config))
    errors = sum(1 for f in findings if f.status == "error")
    notes = sum(1 for f in findings if f.status == "note")
    code = EXIT_FAILED if errors else EXIT_OK
    console.json({"ok": not errors, "exitCode": code, "checks": [f.to_dict() for f in findings]})
    console.line(f"Checking {config.path}")
    width = max(len(f.name) for f in findings)
    for finding in findings:
        console.line(f"  {finding.status:<7} {finding.name:<{width}}  {finding.detail}")
    noted = f" ({notes} note{'s' if notes != 1 else ''})" if notes else ""
    if errors:
        console.line(f"Not ready: {errors} blocking problem{'s' if errors != 1 else ''}{noted}.")
    else:
        console.line(f"Ready: no blocking problem{noted}.")
    return code


async def _check(config: Config) -> list[Finding]:
    from ._runtime import connect

    found: list[Finding] = [Finding("config", "ok", _describe_config(config))]
    async with connect(_without_retries(config)) as runtime:
        fields = await _check_sources(runtime, found)
        reachable = await _check_target(runtime, found)
        if reachable:
            await _check_schema(runtime, fields, found)
        else:
            found.append(Finding("mapping", "skipped", "the target's schema could not be read"))
        _check_state(config, found)
    return found


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


def _describe_capabilities(capabilities: Capabilities) -> str:
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
) -> None:
    from ..errors import ScimSyncError

    config = runtime.config
    try:
        schema = await runtime.schema()
    except ScimSyncError as exc:
        found.append(Finding("schema", "error", f"/Schemas: {_short(exc)}"))
        return
    types = []
    for name in ("User", "Group"):
        resource_type = schema.resource_type(name)
        if resource_type is None:
            continue
        extensions = schema.extension_urns(name)
        types.append(f"{name} (+ {', '.join(extensions)})" if extensions else name)
    found.append(Finding("schema", "ok", ", ".join(types) or "no User or Group resource type"))
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
                f"{', '.join(policy.group_match_keys)}; deprovision: {policy.deprovision}",
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


def _check_state(config: Config, found: list[Finding]) -> None:
    from ..errors import StateError
    from ..sync import SqliteStateStore

    path = config.state_path
    if not path.exists():
        found.append(Finding("state", "ok", f"{path}: new, created by the first apply"))
        return
    try:
        with SqliteStateStore(path) as store:
            history = store.history(1)
    except StateError as exc:
        found.append(Finding("state", "error", _short(exc)))
        return
    if not history:
        found.append(Finding("state", "ok", f"{path}: no cycle yet"))
        return
    last = history[0]
    found.append(
        Finding(
            "state",
            "ok" if last.succeeded else "note",
            f"{path}: last cycle {last.finished_at:%Y-%m-%d %H:%M} UTC, {last.outcome}",
        )
    )


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- serve-test ---------------------------------------------------------------------------


def serve_test_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync serve-test``: a ScimTestServer until interrupted."""
    from ..errors import ScimSyncError
    from ..testing.__main__ import server_from, wait_until_stopped

    try:
        server = server_from(args)
    except (ScimSyncError, ValueError) as exc:
        raise ConfigurationError(f"serve-test: {exc}") from None
    drawn = server.token is not None and args.token is None
    with server:
        console.json({"url": server.url, "token": server.token if drawn else None}, one_line=True)
        console.line(f"Serving SCIM 2.0 at {server.url}")
        if drawn:
            console.line(f"Bearer token: {server.token}")
        console.line("Stop with Ctrl-C.")
        wait_until_stopped()
    counts = server.requests.counts()
    print(f"Answered {sum(counts.values())} requests", file=console.stderr)
    for (method, route), count in sorted(counts.items()):
        print(f"  {count:6d}  {method} {route}", file=console.stderr)
    return EXIT_OK


def _demo_command(args: argparse.Namespace, console: Console) -> int:
    from ._demo import demo_command

    return demo_command(args, console)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "apply": apply_command,
    "check": check_command,
    "demo": _demo_command,
    "plan": plan_command,
    "serve-test": serve_test_command,
}
