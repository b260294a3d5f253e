"""``scimsync demo``: the bundled sample, synced into an embedded SCIM server over loopback.

The real stack runs: :func:`scimsync.demo.source` (a :class:`~scimsync.sources.CsvSource`)
→ :data:`scimsync.demo.MAPPING` → :class:`~scimsync.targets.ScimTarget` on an
:class:`~scimsync.client.AsyncScimClient` → :class:`~scimsync.Provisioner`, against a
:class:`~scimsync.testing.ScimTestServer` listening on 127.0.0.1. Plan, apply, plan
again: the second plan is empty and sends no write.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs

from ..engine import Plan
from ..sync import SyncReport
from . import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from ..engine import Operation
    from ..testing import ScimTestServer
    from ._console import Console

__all__ = ["DemoResult", "demo_command", "run_demo"]

#: Member lines shown per membership operation in the excerpt.
_MEMBERS_SHOWN = 3
_MEMBER_LINE = re.compile(r"\s+[+-] member ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@attrs.frozen(kw_only=True)
class DemoResult:
    """What the demo did: the first plan, its report, the plan after it, the requests."""

    plan: Plan
    report: SyncReport
    again: Plan
    requests: int
    by_method: dict[str, int]
    writes_after: int
    seconds: float

    @property
    def ok(self) -> bool:
        """True when everything was applied and nothing was left to do, nor sent, after."""
        return self.report.ok and self.again.is_empty and self.writes_after == 0


def demo_command(args: argparse.Namespace, console: Console) -> int:
    """Run the demo as the command line asks."""
    from ..testing.__main__ import wait_until_stopped

    return run_demo(
        console,
        show_plan=args.show_plan,
        keep_serving=args.keep_serving,
        wait=lambda server: wait_until_stopped(),
    )


def run_demo(
    console: Console,
    *,
    show_plan: str = "excerpt",
    keep_serving: bool = False,
    wait: Callable[[ScimTestServer], object] = lambda server: None,
    timer: Callable[[], float] = time.perf_counter,
) -> int:
    """Sync the sample into a fresh embedded server and tell the story; return the exit code.

    ``wait`` is called with the server, still serving, when ``keep_serving`` is set.
    """
    from .. import demo
    from ..testing import ScimTestServer

    started = timer()
    token = secrets.token_urlsafe(24)
    with ScimTestServer(token=token) as server:
        _introduce(console, server, demo.DATA_FILE.name)
        result = asyncio.run(
            _sync(console, server, token, show_plan=show_plan, timer=timer, started=started)
        )
        users = server.users()
        active = sum(1 for user in users if user.active is not False)
        groups = len(server.groups())
        code = EXIT_OK if result.ok else EXIT_FAILED
        document: dict[str, Any] = {
            "server": {
                "url": server.url,
                "users": len(users),
                "activeUsers": active,
                "groups": groups,
            },
            "plan": {"summary": result.plan.summary(), "memberships": _memberships(result.plan)},
            "report": result.report.to_dict(),
            "replan": {"summary": result.again.summary(), "empty": result.again.is_empty},
            "requests": {
                "total": result.requests,
                "byMethod": result.by_method,
                "writesAfterApply": result.writes_after,
            },
            "seconds": round(result.seconds, 3),
            "exitCode": code,
        }
        if show_plan == "full":
            document["plan"]["plan"] = result.plan.to_dict()
        console.line()
        methods = ", ".join(f"{n} {m}" for m, n in sorted(result.by_method.items()))
        console.line(
            f"Done in {result.seconds:.1f}s: the server holds {len(users)} users "
            f"({active} active) in {groups} groups; {result.requests} requests ({methods})."
        )
        if keep_serving:
            document["server"]["token"] = token
            console.json(document)
            _serving(console, server, token)
            wait(server)
        else:
            console.json(document)
            console.line(
                "Next: scimsync demo --keep-serving to look around; "
                "docs/cli.md to sync your own source."
            )
    return code


def _introduce(console: Console, server: ScimTestServer, file_name: str) -> None:
    from ..demo import MAPPING

    console.line("scimsync demo: 500 people from a CSV file, synced into a SCIM 2.0 server")
    console.line()
    console.line(f"  source   {file_name}, bundled (500 rows, 20 groups named in a column)")
    console.line(f"  target   ScimTestServer at {server.url} (embedded, over loopback HTTP)")
    console.line("  mapping  scimsync.demo.MAPPING, CSV columns → SCIM attributes:")
    rows = [(entry.path.text, repr(entry.rule)) for entry in MAPPING.user_entries]
    if MAPPING.member_of is not None:
        rows.append(("groups (member_of)", repr(MAPPING.member_of)))
    width = max(len(_short_path(path)) for path, _ in rows)
    for path, rule in rows:
        console.line(f"             {_short_path(path):<{width}}  ← {rule}")


def _short_path(path: str) -> str:
    from ..demo import ENTERPRISE

    return path.replace(ENTERPRISE, "urn:…:enterprise:2.0:User")


async def _sync(
    console: Console,
    server: ScimTestServer,
    token: str,
    *,
    show_plan: str,
    timer: Callable[[], float],
    started: float,
) -> DemoResult:
    from .. import demo
    from ..auth import BearerToken
    from ..client import AsyncScimClient
    from ..sync import Provisioner, RequestStats
    from ..targets import ScimTarget

    stats = RequestStats()
    progress = console.progress()
    async with AsyncScimClient(
        server.url,
        auth=BearerToken(token),
        on_request=[stats.on_request],
        on_retry=[stats.on_retry],
    ) as client:
        provisioner = Provisioner(
            demo.source(),
            demo.MAPPING,
            ScimTarget(client),
            on_progress=progress,
            request_stats=stats,
        )
        console.line()
        console.line("1. Plan: read the source and the target, decide. Nothing is sent.")
        plan = await provisioner.aplan()
        progress.finish()
        _show_plan(console, plan, full=show_plan == "full")

        console.line()
        console.line(
            f"2. Apply: exactly that plan, {provisioner.apply_policy.concurrency} requests "
            "at a time."
        )
        report = await provisioner.aapply(plan)
        progress.finish()
        console.line(str(report))

        console.line()
        console.line("3. Plan again: the target now matches the source.")
        before = Counter(server.requests.by_method())
        again = await provisioner.aplan()
        progress.finish()
        after = Counter(server.requests.by_method())
        writes_after = sum(n for method, n in (after - before).items() if method != "GET")
        console.line(again.render(color=console.color).rstrip("\n"))
        console.line(f"  ({writes_after} writes: the second plan only read.)")
        by_method = dict(sorted(after.items()))
    return DemoResult(
        plan=plan,
        report=report,
        again=again,
        requests=stats.snapshot()[0],
        by_method=by_method,
        writes_after=writes_after,
        seconds=timer() - started,
    )


def _show_plan(console: Console, plan: Plan, *, full: bool) -> None:
    color = console.color
    if full:
        console.line(plan.render(color=color).rstrip("\n"))
        return
    console.line(plan.render().splitlines()[0])
    console.line(f"  {_plan_summary(plan)}")
    console.line()
    picked = _excerpt(plan)
    for op in picked:
        console.line(_render_one(plan, op, color))
    rest = len(plan.operations) - len(picked)
    if rest > 0:
        console.line(
            f"  … and {rest} more operations like these (--show-plan full prints them all)"
        )


def _plan_summary(plan: Plan) -> str:
    counts = Counter((op.kind, op.resource_type) for op in plan.operations)
    parts = []
    for (kind, resource_type), count in counts.items():
        if kind == "add_members":
            continue
        noun = "users" if resource_type == "User" else "groups"
        parts.append(f"{noun} to {kind}: {count}")
    additions = [op for op in plan.operations if op.kind == "add_members"]
    if additions:
        parts.append(
            f"memberships to add: {_memberships(plan)} (in {len(additions)} PATCH requests)"
        )
    return " · ".join(parts)


def _memberships(plan: Plan) -> int:
    return sum(len(op.members) for op in plan.operations if op.kind == "add_members")


def _excerpt(plan: Plan) -> list[Operation]:
    """One operation of each kind and resource type, in plan order."""
    seen: set[tuple[str, str]] = set()
    picked = []
    for op in plan.operations:
        if (op.kind, op.resource_type) not in seen:
            seen.add((op.kind, op.resource_type))
            picked.append(op)
    return picked


def _render_one(plan: Plan, op: Operation, color: bool) -> str:
    """The render of one operation, membership lists cut to a few lines."""
    alone = attrs.evolve(
        plan, operations=(op,), held=(), guards=(), conflicts=(), skipped=(), links=()
    )
    lines = alone.render(color=color).splitlines()[2:]  # no headline, no blank line
    members = [i for i, line in enumerate(lines) if _MEMBER_LINE.match(_ANSI.sub("", line))]
    if len(members) > _MEMBERS_SHOWN:
        cut = members[_MEMBERS_SHOWN]
        hidden = len(op.members) - _MEMBERS_SHOWN
        lines = [*lines[:cut], f"      … and {hidden} more members"]
    return "\n".join(lines)


def _serving(console: Console, server: ScimTestServer, token: str) -> None:
    console.line()
    console.line("The server keeps serving until Ctrl-C. Its throwaway credentials:")
    console.line(f"  URL    {server.url}")
    console.line(f"  token  {token}")
    console.line(
        f'  try    curl -s -H "Authorization: Bearer {token}" "{server.url}/Users?count=2"'
    )
