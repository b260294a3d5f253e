"""The commands: ``plan``, ``apply``, ``serve-test`` (``check`` is in ``_check``, ``demo`` in
``_demo``).

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
from typing import TYPE_CHECKING

from ..engine import blocked_message
from ..errors import ConfigurationError, PlanError
from . import EXIT_BLOCKED, EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence

    from ..engine import Plan
    from ..sync import Progress, Provisioner, SyncReport
    from ._config import Config
    from ._console import Console, ProgressDisplay

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
        plan = asyncio.run(_plan(config, args.force, args.new_state, progress))
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
    blocked = blocked_message(plan.guards, len(plan.held))
    if blocked is not None:
        console.line()
        console.line(blocked)
    if out is not None:
        console.line()
        console.line(f"Saved to {out}. Apply it with: scimsync apply -c {args.config} --plan {out}")
    return code


async def _plan(
    config: Config,
    force: Sequence[str],
    new_state: bool,
    progress: Callable[[Progress], object],
) -> Plan:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = await runtime.provisioner(
            create_state=False, new_state=new_state, on_progress=progress
        )
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
        provisioner = await runtime.provisioner(
            create_state=True, new_state=args.new_state, on_progress=progress
        )
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


def _check_command(args: argparse.Namespace, console: Console) -> int:
    from ._check import check_command

    return check_command(args, console)


def _learned_command(args: argparse.Namespace, console: Console) -> int:
    from ._learned import learned_command

    return learned_command(args, console)


def _run_command(args: argparse.Namespace, console: Console) -> int:
    from ._forever import run_command

    return run_command(args, console)


def _demo_command(args: argparse.Namespace, console: Console) -> int:
    from ._demo import demo_command

    return demo_command(args, console)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "apply": apply_command,
    "check": _check_command,
    "demo": _demo_command,
    "learned": _learned_command,
    "plan": plan_command,
    "run": _run_command,
    "serve-test": serve_test_command,
}
