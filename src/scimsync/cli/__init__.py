"""The ``scimsync`` command (also ``python -m scimsync``).

::

    scimsync demo                                   # 500 people into an embedded SCIM server
    scimsync check -c scimsync.toml                 # config, connectivity, auth, schema, mapping
    scimsync check -c scimsync.toml --probe         # also writes a throwaway user and group
    scimsync plan  -c scimsync.toml --out plan.json # what would change; nothing is sent
    scimsync apply -c scimsync.toml --plan plan.json
    scimsync apply -c scimsync.toml                 # plan and apply in one cycle
    scimsync run -c scimsync.toml --every 15m --metrics-port 9100   # cycles until stopped
    scimsync learned -c scimsync.toml               # what was learned of the target
    scimsync learned --forget title                 # ask the target again about title
    scimsync serve-test --port 8080                 # a ScimTestServer for other tools

Every command takes ``--json`` (one JSON document on stdout, for machines),
``--debug`` (logs, and the traceback of an unexpected error) and ``--log-format json``
(the logs on stderr as one JSON object per line). Exit codes: 0 done
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
    """The command line: ``demo``, ``check``, ``plan``, ``apply``, ``run``, ``learned``,
    ``serve-test``.

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
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="the logs on stderr as text, or as one JSON object per line (default: text)",
    )
    common.add_argument(
        "--no-log-values",
        dest="log_values",
        action="store_false",
        help="audit lines in the logs name changed attributes without their values",
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

    stateful = _Parser(add_help=False)
    stateful.add_argument(
        "--new-state",
        action="store_true",
        help="start a new state in an existing empty state file (refused when it holds state)",
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
        help="check the configuration, the target (connectivity, auth, capabilities, schema), "
        "the mapping, and what the target keeps",
        description="Check everything a sync needs, without writing anything (unless --probe): "
        "exit 1 when a blocking problem is found. Warnings (an attribute no account on the "
        "target holds, a departure from the RFCs) never block.",
    )
    check.add_argument(
        "--sample",
        type=_sample_size,
        default=100,
        metavar="N",
        help="read up to N users and N groups of the target and warn of each mapped "
        "attribute none of them holds (default: 100; 0: do not read)",
    )
    check.add_argument(
        "--probe",
        action="store_true",
        help="WRITES to the target: create a throwaway user with every mapped attribute "
        "and a group, report what the target drops or changes and which PATCH styles it "
        "accepts, then delete both",
    )
    check.set_defaults(run="check")

    learned = commands.add_parser(
        "learned",
        parents=[common, configured],
        help="list what cycles learned of the target (paths it does not keep, what it "
        "refuses); --forget to ask again",
        description="List what the state store says cycles learned of the target: the "
        "attribute paths it does not keep (left out of plans) and what it refuses or does "
        "against the RFCs. Nothing is sent to the target. With --forget, forget the paths "
        "given (none: everything), so the next cycle compares and writes them again.",
    )
    learned.add_argument(
        "--forget",
        nargs="*",
        metavar="PATH",
        help="forget these paths (title, emails.type); none given: everything learned, "
        "what the target refuses included",
    )
    learned.add_argument(
        "--type",
        choices=("User", "Group"),
        help="with --forget: only paths of this resource type (default: both)",
    )
    learned.set_defaults(run="learned")

    plan = commands.add_parser(
        "plan",
        parents=[common, configured, forcing, stateful],
        help="show what a sync would change; nothing is sent",
        description="Read the source and the target and print the plan; nothing is written "
        "to the target. Exit 2 when a guard holds operations.",
    )
    plan.add_argument("--out", metavar="FILE", help="save the plan as JSON, for apply --plan")
    plan.set_defaults(run="plan")

    apply = commands.add_parser(
        "apply",
        parents=[common, configured, forcing, stateful],
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

    run = commands.add_parser(
        "run",
        parents=[common, configured, stateful],
        help="run a cycle every interval until stopped (SIGTERM, Ctrl-C), with metrics",
        description="Run sync cycles every --every until stopped: SIGTERM or Ctrl-C lets the "
        "running cycle finish its writes in flight and save the state. Each cycle and each "
        "operation is logged (INFO) on stderr; --json prints each cycle's report as one line "
        "of JSON on stdout. Exit code: the last cycle's.",
    )
    run.add_argument(
        "--every",
        required=True,
        type=_interval,
        metavar="DURATION",
        help="time between cycles: seconds, or a number with s, m or h (15m)",
    )
    run.add_argument(
        "--cycles",
        type=_positive_count,
        metavar="N",
        help="stop after N cycles (default: run until stopped)",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics at http://ADDRESS:PORT/metrics (needs "
        "scimsync[prometheus]; 0 draws a free port)",
    )
    run.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes from another host
        metavar="ADDRESS",
        help="the address the metrics are served on (default: 0.0.0.0, every interface)",
    )
    run.set_defaults(run="run")

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


def _sample_size(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {number}")
    return number


_UNITS = {"s": 1, "m": 60, "h": 3600}


def _interval(text: str) -> float:
    unit = _UNITS.get(text[-1:].lower())
    try:
        number = float(text[:-1] if unit is not None else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds, or a number with s, m or h (15m), got {text!r}"
        ) from None
    seconds = number * (unit or 1)
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def _positive_count(text: str) -> int:
    number = _sample_size(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def _port(text: str) -> int:
    number = _sample_size(text)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {number}")
    return number


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
    # A long-running agent's log is its record: cycles and the audit trail (INFO).
    level = logging.DEBUG if args.debug else logging.INFO if args.run == "run" else logging.WARNING
    with _library_logs(
        stderr, level=level, json_format=args.log_format == "json", values=args.log_values
    ):
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
def _library_logs(
    stream: TextIO, *, level: int, json_format: bool, values: bool = True
) -> Iterator[None]:
    """Library logs from ``level`` on ``stream`` while a command runs, as text lines or
    JSON objects (audit lines without attribute values unless ``values``)."""
    handler = logging.StreamHandler(stream)
    if not values:
        from ..logs import OmitValues

        handler.addFilter(OmitValues())
    if json_format:
        from ..logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("scimsync: %(levelname)s: %(message)s"))
    logger = logging.getLogger("scimsync")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
