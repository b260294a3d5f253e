"""``scimsync learned``: what cycles learned of the target, and forgetting it.

Reads the state store of the configuration (nothing is sent to the target):
the paths the target does not keep (:attr:`~scimsync.engine.Ledger.unkept`) and
what it refuses or does against the RFCs (:class:`~scimsync.targets.TargetFacts`),
through :meth:`Provisioner.learned() <scimsync.Provisioner.learned>`. ``--forget``
goes through :meth:`Provisioner.forget() <scimsync.Provisioner.forget>`, so the
next cycle compares and writes those paths again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from . import EXIT_OK

if TYPE_CHECKING:
    import argparse

    from ..sync import Provisioner
    from ._config import Config
    from ._console import Console

__all__ = ["learned_command", "learned_paths"]

#: The resource types ``--type`` takes.
RESOURCE_TYPES = ("User", "Group")


def learned_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync learned [--forget [PATH ...]] [--type User|Group]``; exit 0."""
    from ._config import load_config

    if args.type is not None and args.forget is None:
        raise ConfigurationError(
            "--type goes with --forget: scimsync learned --forget [PATH ...] --type "
            + "|".join(RESOURCE_TYPES)
        )
    config = load_config(args.config)
    if args.forget is None:
        return asyncio.run(_show(config, console))
    return asyncio.run(_forget(config, args.forget or None, args.type, console))


async def _show(config: Config, console: Console) -> int:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = runtime.remembering()
        lines = provisioner.learned()
        paths = learned_paths(provisioner)
    facts = lines[len(paths) :]
    state = config.state_path
    console.json(
        {
            "state": str(state),
            "target": config.target.connection.url,
            "learned": list(lines),
            "paths": paths,
            "targetFacts": list(facts),
            "exitCode": EXIT_OK,
        }
    )
    if not lines:
        where = f"{state}" if state.exists() else f"{state} does not exist yet"
        console.line(f"Nothing learned about the target yet ({where}).")
        return EXIT_OK
    console.line(f"Learned about {config.target.connection.url} (from {state}):")
    for line in lines:
        console.line(f"  {line}")
    if paths:
        console.line(
            "Paths seen twice are left out of plans. To have the next cycle compare and "
            "write one again: scimsync learned --forget PATH (alone: forget everything)."
        )
    return EXIT_OK


async def _forget(
    config: Config, paths: list[str] | None, resource_type: str | None, console: Console
) -> int:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = runtime.remembering()
        before = provisioner.learned()
        known = learned_paths(provisioner)
        if paths is None and resource_type is not None:
            # All paths of one type: what the target refuses (kept for both types
            # together) stays known.
            paths = [p["path"] for p in known if p["resourceType"] == resource_type]
        if before and (paths is None or paths):
            provisioner.forget(paths, resource_type=resource_type)
        after = provisioner.learned()
    forgotten = [line for line in before if line not in after]
    of_paths = sum(1 for line in forgotten if line in before[: len(known)])
    state = config.state_path
    console.json(
        {
            "state": str(state),
            "forgotten": forgotten,
            "remaining": list(after),
            "exitCode": EXIT_OK,
        }
    )
    if not forgotten:
        asked = " ".join(paths) if paths else None
        scope = f" of {resource_type}s" if resource_type else ""
        if asked is None:
            console.line(f"Nothing learned{scope} yet: nothing forgotten.")
        else:
            console.line(f"Nothing learned about {asked}{scope}: nothing forgotten.")
        if after:
            console.line("What is known: scimsync learned")
        return EXIT_OK
    console.line(f"Forgotten (in {state}):")
    for line in forgotten:
        console.line(f"  {line}")
    then = []
    if of_paths:
        then.append(f"compares and writes {'it' if of_paths == 1 else 'them'} again")
    if of_paths < len(forgotten):
        then.append("finds out again what the target accepts")
    console.line(f"The next cycle {' and '.join(then)}.")
    return EXIT_OK


def learned_paths(provisioner: Provisioner) -> list[dict[str, Any]]:
    """The paths the target does not keep, as the state store holds them: plain JSON
    data, in the order :meth:`Provisioner.learned` lists them."""
    stored = provisioner.state.load()
    return [
        {
            "resourceType": resource_type,
            "path": path,
            "how": fact.how,
            "seen": fact.seen,
            "confirmed": fact.confirmed,
            "since": fact.since.isoformat() if fact.since is not None else None,
        }
        for resource_type in RESOURCE_TYPES
        for path, fact in sorted(stored.state.ledger(resource_type).unkept.items())
    ]
