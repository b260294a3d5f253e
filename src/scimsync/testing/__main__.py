"""``python -m scimsync.testing``: run a ScimTestServer standalone, for any SCIM client.

    python -m scimsync.testing --port 8080 --seed seed.json --faults-rate 0.1
    python -m scimsync.testing --quirks legacy --no-patch

It prints the base URL and, unless ``--token`` or ``--no-auth`` is given, a bearer
token drawn at start; it serves until interrupted (Ctrl-C or SIGTERM), then prints
how many requests it answered, by method and endpoint.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ScimSyncError
from ._faults import FaultKind, Faults
from ._quirks import Quirks
from ._server import ScimTestServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m scimsync.testing",
        description="Serve an in-memory SCIM 2.0 service provider over HTTP, with optional "
        "faults and quirks.",
    )
    serve = parser.add_argument_group("serving")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    serve.add_argument("--base-path", default="/scim/v2", help="path of the SCIM endpoints")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--token", help="the bearer token to require (default: a random one)")
    auth.add_argument("--no-auth", action="store_true", help="accept requests without a token")
    serve.add_argument(
        "--seed",
        type=argparse.FileType("r", encoding="utf-8"),
        metavar="FILE",
        help='JSON file {"Users": [...], "Groups": [...]} to load at start; ids given are kept',
    )
    serve.add_argument("--default-page-size", type=int, default=100)
    serve.add_argument("--max-page-size", type=int, default=1000)
    serve.add_argument("--max-body-bytes", type=int, default=1_048_576)

    faults = parser.add_argument_group("faults (off unless --faults-rate is given)")
    faults.add_argument("--faults-rate", type=float, help="probability of a fault per request")
    faults.add_argument("--faults-seed", type=int, default=0)
    faults.add_argument(
        "--faults-kinds",
        default=",".join(k.value for k in FaultKind),
        help="comma-separated kinds (default: all): " + ", ".join(k.value for k in FaultKind),
    )
    faults.add_argument("--faults-methods", default="", help="comma-separated, e.g. POST,PATCH")
    faults.add_argument("--faults-paths", default="", help="comma-separated, e.g. /Users")
    faults.add_argument("--faults-latency", type=float, default=1.0, help="seconds")

    quirks = parser.add_argument_group("quirks (added to the profile's)")
    quirks.add_argument(
        "--quirks",
        default="strict",
        choices=Quirks.profile_names(),
        help="a quirk profile (default: strict, none)",
    )
    quirks.add_argument("--no-patch", action="store_true", help="answer PATCH with 501")
    quirks.add_argument(
        "--omit-group-members", action="store_true", help="leave members out of group GETs"
    )
    quirks.add_argument(
        "--max-members-per-patch", type=int, metavar="N", help="413 past N members per operation"
    )
    quirks.add_argument(
        "--case-sensitive-user-name-filter",
        action="store_true",
        help="compare userName case-sensitively in filters",
    )
    return parser


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _faults(args: argparse.Namespace) -> Faults | None:
    if args.faults_rate is None:
        return None
    return Faults(
        rate=args.faults_rate,
        seed=args.faults_seed,
        kinds=_split(args.faults_kinds),
        methods=_split(args.faults_methods),
        paths=_split(args.faults_paths),
        latency=args.faults_latency,
    )


def quirks_from(args: argparse.Namespace) -> Quirks:
    """The quirks the command line asks for: the profile's, plus each flag given."""
    changes: dict[str, Any] = {}
    if args.no_patch:
        changes["patch_supported"] = False
    if args.omit_group_members:
        changes["omit_group_members"] = True
    if args.max_members_per_patch is not None:
        changes["max_members_per_patch_operation"] = args.max_members_per_patch
    if args.case_sensitive_user_name_filter:
        changes["case_sensitive_user_name_filter"] = True
    return attrs.evolve(Quirks.profile(args.quirks), **changes)


def server_from(args: argparse.Namespace) -> ScimTestServer:
    """The server the parsed command line asks for, not started yet.

    The token is ``--token``, none with ``--no-auth``, else one drawn at random.
    Raises :class:`~scimsync.errors.ScimSyncError` or :class:`ValueError` for
    settings that cannot work.
    """
    token = None if args.no_auth else (args.token or secrets.token_urlsafe(24))
    seed: dict[str, Any] = {}
    if args.seed is not None:
        with args.seed:
            seed = json.load(args.seed)
    return ScimTestServer(
        token=token,
        faults=_faults(args),
        quirks=quirks_from(args),
        base_path=args.base_path,
        host=args.host,
        port=args.port,
        default_page_size=args.default_page_size,
        max_page_size=args.max_page_size,
        max_body_bytes=args.max_body_bytes,
        users=seed.get("Users", ()),
        groups=seed.get("Groups", ()),
    )


def wait_until_stopped() -> None:
    """Block until Ctrl-C or SIGTERM (the handler is installed from the main thread)."""
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        server = server_from(args)
    except (ScimSyncError, ValueError) as exc:
        parser.error(str(exc))
    with server:
        print(f"Serving SCIM 2.0 at {server.url}", flush=True)
        if server.token is not None and args.token is None:
            print(f"Bearer token: {server.token}", flush=True)
        wait_until_stopped()
    counts = server.requests.counts()
    print(f"Answered {sum(counts.values())} requests", file=sys.stderr)
    for (method, route), count in sorted(counts.items()):
        print(f"  {count:6d}  {method} {route}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
