"""The command line itself, in process: usage mistakes exit 3 in one line, unexpected
errors are short (the traceback only with --debug), --json always prints JSON, and
progress is a bar on a terminal and a few lines elsewhere."""

from __future__ import annotations

import io
import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest

import scimsync
from scimsync.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from scimsync.cli._console import Console, ProgressDisplay
from scimsync.sync import Progress

if TYPE_CHECKING:
    import argparse


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: the exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints the package version; ``--help`` lists the commands; both exit 0."""
    assert (EXIT_OK, f"scimsync {scimsync.__version__}\n") == run(capsys, "--version")[:2]
    code, out, _ = run(capsys, "--help")
    assert EXIT_OK == code
    for command in ("demo", "check", "plan", "apply", "learned", "serve-test"):
        assert f"    {command}" in out


def test_no_command_prints_help_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """``scimsync`` alone is a usage mistake: the help, and exit 3."""
    code, out, _ = run(capsys)
    assert EXIT_USAGE == code
    assert out.startswith("usage: scimsync")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["apply", "--force", "everything"], "argument --force: invalid choice: 'everything'"),
        (["demo", "--show-plan", "some"], "argument --show-plan: invalid choice: 'some'"),
    ],
)
def test_a_usage_mistake_exits_3_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """argparse's mistakes exit 3 (not its usual 2, which means "blocked" here)."""
    code, out, err = run(capsys, *argv)
    assert (EXIT_USAGE, "") == (code, out)
    usage, error = err.strip().rsplit("\n", 1)
    assert usage.startswith("usage: scimsync")
    assert error.startswith("scimsync: error: ")
    assert message in error


def test_a_missing_configuration_file_exits_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """The default file is scimsync.toml; its absence is one line and exit 3, in JSON too."""
    code, out, err = run(capsys, "check", "-c", str(tmp_path / "scimsync.toml"))
    assert (EXIT_USAGE, "") == (code, out)
    assert f"scimsync: error: {tmp_path / 'scimsync.toml'}: no such configuration file\n" == err
    code, out, err = run(capsys, "plan", "--json", "-c", str(tmp_path / "x.toml"))
    assert EXIT_USAGE == code
    assert {
        "error": {
            "kind": "configuration",
            "message": f"{tmp_path / 'x.toml'}: no such configuration file",
        },
        "exitCode": 3,
    } == json.loads(out)


def _explode(args: argparse.Namespace, console: Console) -> int:
    raise RuntimeError("the unexpected happened")


def test_an_unexpected_error_is_short_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is one line and exit 1; ``--debug`` adds the traceback."""
    from scimsync.cli import _commands

    monkeypatch.setitem(_commands.COMMANDS, "check", _explode)
    code, _, err = run(capsys, "check")
    assert EXIT_FAILED == code
    assert (
        "scimsync: error: unexpected error: RuntimeError: the unexpected happened "
        "(run again with --debug for the traceback)\n"
    ) == err
    code, _, err = run(capsys, "check", "--debug")
    assert EXIT_FAILED == code
    assert err.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("the unexpected happened")' in err


def test_library_logs_are_attached_only_while_a_command_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warnings of the library reach stderr during the command, and the logger is left
    as it was afterwards."""
    import logging

    from scimsync.cli import _commands

    def warn(args: argparse.Namespace, console: Console) -> int:
        logging.getLogger("scimsync.sync").warning("a guard held 3 operations")
        logging.getLogger("scimsync.sync").info("not shown without --debug")
        return EXIT_OK

    monkeypatch.setitem(_commands.COMMANDS, "check", warn)
    logger = logging.getLogger("scimsync")
    before = (logger.level, list(logger.handlers))
    assert (EXIT_OK, "", "scimsync: WARNING: a guard held 3 operations\n") == run(capsys, "check")
    assert before == (logger.level, list(logger.handlers))


# -- progress ------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def progress(phase: str, done: int, total: int) -> Progress:
    """A Progress event of a cycle."""
    return Progress(cycle_id="c1", phase=phase, done=done, total=total)


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place() -> None:
    """Reading shows a status line; applying redraws one bar per percent and ends the line."""
    stream = Terminal()
    ticks = itertools.count()
    display = ProgressDisplay(stream, tty=True, timer=lambda: float(next(ticks)))
    display(progress("reading", 0, 2))
    display(progress("reading", 2, 2))
    for done in range(201):
        display(progress("applying", done, 200))
    frames = stream.getvalue().split("\r\x1b[2K")
    assert "  reading source and target…" == frames[1]
    bars = frames[2:]
    assert 101 == len(bars)  # 0 % to 100 %: a frame per percent, not per operation
    assert bars[0].startswith("  applying [" + "░" * 30 + "]   0/200   0%")
    assert bars[-1].startswith("  applying [" + "█" * 30 + "] 200/200 100%")
    assert bars[-1].endswith("s\n")


def test_elsewhere_progress_is_a_line_per_quarter() -> None:
    """In a log or a pipe: a line when applying starts, then one per quarter."""
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=False)
    display(progress("reading", 0, 2))
    for done in range(9):
        display(progress("applying", done, 8))
    assert [
        "  applying 8 operations",
        "  applied 2/8 (25%)",
        "  applied 4/8 (50%)",
        "  applied 6/8 (75%)",
        "  applied 8/8 (100%)",
    ] == stream.getvalue().splitlines()


def test_with_json_progress_goes_to_a_terminal_stderr_or_nowhere() -> None:
    """``--json`` keeps stdout for the document: progress on stderr if it is a terminal."""
    out, err = io.StringIO(), Terminal()
    Console(stdout=out, stderr=err, json_mode=True).progress()(progress("applying", 1, 1))
    assert ("", True) == (out.getvalue(), "applying [" in err.getvalue())
    quiet_err = io.StringIO()
    Console(stdout=out, stderr=quiet_err, json_mode=True).progress()(progress("applying", 1, 1))
    assert ("", "") == (out.getvalue(), quiet_err.getvalue())


def test_the_command_line_loads_no_http_machinery_until_a_command_runs() -> None:
    """Building the parser (what ``--help`` needs) imports neither httpx nor the test
    server; ``serve-test`` loads the latter only when named."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scimsync.cli import build_parser\n"
        "build_parser(serve_test_options=False)\n"
        "print(sorted(m for m in ('httpx', 'scimsync.testing', 'scimsync.sync') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "[]" == out
