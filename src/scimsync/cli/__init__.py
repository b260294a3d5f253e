"""The ``scimsync`` command (also ``python -m scimsync``).

::

    scimsync demo                                   # 500 people into an embedded SCIM server
    scimsync check -c scimsync.toml                 # config, connectivity, auth, schema, mapping
    scimsync plan  -c scimsync.toml --out plan.json # what would change; nothing is sent
    scimsync apply -c scimsync.toml --plan plan.json
    scimsync apply -c scimsync.toml                 # plan and apply in one cycle
    scimsync serve-test --port 8080                 # a ScimTestServer for other tools

Every command takes ``--json`` (one JSON document on stdout, for machines) and
``--debug`` (logs, and the traceback of an unexpected error). Exit codes: 0 done
(everything applied), 1 failures (or an error talking to the target), 2 blocked by a
safety guard, 3 a mistake in the configuration or the command line (one line naming
the file, the key and the problem). The configuration file is described in
``docs/cli.md``; secrets come only from environment variables or files.

The command is built on :mod:`argparse` and loads the rest of scimsync only when a
command runs, so ``scimsync --help`` is quick and ``import scimsync`` stays light.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ._console import Console

__all__ = ["EXIT_BLOCKED", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

#: Everything applied (or, for plan and check: done, nothing blocking).
EXIT_OK = 0
#: Operations failed, writes stopped, a check found a blocking problem, or the target
#: could not be reached.
EXIT_FAILED = 1
#: A safety guard held operations (see ``--force``).
EXIT_BLOCKED = 2
#: A mistake in the configuration file or on the command line.
EXIT_USAGE = 3

_INTERRUPTED = 130


class _UsageError(Exception):
    """A command-line mistake, reported with the usage line and exit code 3."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes exit with code 3, not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self.format_usage())


def build_parser(*, serve_test_options: bool = True) -> argparse.ArgumentParser:
    """The command line: ``demo``, ``check``, ``plan``, ``apply``, ``serve-test``.

    ``serve_test_options=False`` leaves out the options of ``serve-test`` (those of
    ``python -m scimsync.testing``), which load the test server: for command lines
    that do not run it.
    """
    from .. import __version__
    from ..engine import GUARDS

    parser = _Parser(
        prog="scimsync",
        description="Plan/apply provisioning for SCIM 2.0: keep a target's users and groups "
        "in line with an identity source, safely.",
        epilog="Exit codes: 0 ok, 1 failures, 2 blocked by a guard, 3 configuration or usage "
        "error. Configuration: see docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"scimsync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document, for machines")
    common.add_argument(
        "--debug", action="store_true", help="show logs, and the traceback of an unexpected error"
    )
    configured = _Parser(add_help=False)
    configured.add_argument(
        "-c",
        "--config",
        default="scimsync.toml",
        metavar="FILE",
        help="the configuration file (default: scimsync.toml)",
    )
    forcing = _Parser(add_help=False)
    forcing.add_argument(
        "--force",
        action="append",
        default=[],
        choices=GUARDS,
        metavar="GUARD",
        help="go past a safety guard, recorded in the plan (repeatable): " + ", ".join(GUARDS),
    )

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="sync 500 sample people into an embedded SCIM server (no setup, loopback only)",
        description="Sync the bundled sample (500 people in 20 groups) into an embedded "
        "ScimTestServer over loopback HTTP: plan, apply, then plan again.",
    )
    demo.add_argument(
        "--show-plan",
        choices=("excerpt", "full"),
        default="excerpt",
        help="how much of the plan to print (default: excerpt)",
    )
    demo.add_argument(
        "--keep-serving",
        action="store_true",
        help="leave the server running afterwards and print its URL and token",
    )
    demo.set_defaults(run="demo")

    check = commands.add_parser(
        "check",
        parents=[common, configured],
        help="check the configuration, the target (connectivity, auth, capabilities, schema) "
        "and the mapping",
        description="Check everything a sync needs, without writing anything: exit 1 when a "
        "blocking problem is found.",
    )
    check.set_defaults(run="check")

    plan = commands.add_parser(
        "plan",
        parents=[common, configured, forcing],
        help="show what a sync would change; nothing is sent",
        description="Read the source and the target and print the plan; nothing is written "
        "to the target. Exit 2 when a guard holds operations.",
    )
    plan.add_argument("--out", metavar="FILE", help="save the plan as JSON, for apply --plan")
    plan.set_defaults(run="plan")

    apply = commands.add_parser(
        "apply",
        parents=[common, configured, forcing],
        help="apply a saved plan, or plan and apply in one cycle",
        description="Apply a saved plan (--plan), each operation re-checked against the "
        "target, or run one sync cycle. Exit 0 all applied, 1 failures, 2 blocked by a guard.",
    )
    apply.add_argument("--plan", metavar="FILE", help="a plan saved by scimsync plan --out")
    apply.add_argument(
        "--full",
        action="store_true",
        help="read the whole target even if the source has not changed since the last cycle",
    )
    apply.set_defaults(run="apply")

    parents: list[Any] = [common]
    if serve_test_options:
        from ..testing.__main__ import build_parser as test_server_parser

        parents.append(test_server_parser())
    serve = commands.add_parser(
        "serve-test",
        parents=parents,
        add_help=not serve_test_options,
        help="run an in-memory SCIM test server (ScimTestServer) for other tools",
        description="Serve an in-memory SCIM 2.0 service provider over HTTP until "
        "interrupted; the options are those of python -m scimsync.testing.",
    )
    serve.set_defaults(run="serve-test")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from ._console import Console

    stdout, stderr = sys.stdout, sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(serve_test_options="serve-test" in argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        stderr.write(exc.usage)
        Console(stdout=stdout, stderr=stderr, json_mode=False).error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "run", None) is None:
        parser.print_help(stdout)
        return EXIT_USAGE
    console = Console(stdout=stdout, stderr=stderr, json_mode=args.json)
    with _library_logs(stderr, debug=args.debug):
        return _run(args, console)


def _run(args: argparse.Namespace, console: Console) -> int:
    import asyncio

    from ..errors import ConfigurationError, ScimSyncError
    from ._commands import COMMANDS

    try:
        return COMMANDS[args.run](args, console)
    except ConfigurationError as exc:
        return _fail(console, EXIT_USAGE, "configuration", str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return _fail(console, _INTERRUPTED, "interrupted", "interrupted")
    except ScimSyncError as exc:
        return _fail(console, EXIT_FAILED, type(exc).__name__, _one_line(exc), debug=args.debug)
    except Exception as exc:
        message = f"unexpected error: {type(exc).__name__}: {_one_line(exc)}"
        if not args.debug:
            message += " (run again with --debug for the traceback)"
        return _fail(console, EXIT_FAILED, "unexpected", message, debug=args.debug)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fail(console: Console, code: int, kind: str, message: str, *, debug: bool = False) -> int:
    if debug:
        import traceback

        traceback.print_exc(file=console.stderr)
    console.error(message)
    console.json({"error": {"kind": kind, "message": message}, "exitCode": code})
    return code


@contextlib.contextmanager
def _library_logs(stream: TextIO, *, debug: bool) -> Iterator[None]:
    """Library logs on ``stream`` while a command runs: warnings, or all with ``debug``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("scimsync: %(levelname)s: %(message)s"))
    logger = logging.getLogger("scimsync")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
