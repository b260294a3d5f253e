"""What the command prints: text for people, JSON for machines, progress on long cycles.

Text and JSON go to stdout, errors to stderr. With ``--json`` stdout carries exactly
one JSON document (progress, if any, goes to stderr when that is a terminal).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sync import Progress

__all__ = ["Console", "ProgressDisplay"]


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


class Console:
    """Where a command writes: ``stdout`` for results, ``stderr`` for errors.

    In JSON mode :meth:`line` prints nothing and :meth:`json` prints the document;
    otherwise the reverse.
    """

    def __init__(self, *, stdout: TextIO, stderr: TextIO, json_mode: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode

    @property
    def color(self) -> bool:
        """Colour the text output: a terminal, and no ``NO_COLOR`` in the environment."""
        return not self.json_mode and is_terminal(self.stdout) and not os.environ.get("NO_COLOR")

    def line(self, text: str = "") -> None:
        """Print a line of text output (nothing in JSON mode)."""
        if not self.json_mode:
            print(text, file=self.stdout, flush=True)

    def json(self, document: Any, *, one_line: bool = False) -> None:
        """Print the JSON document of the command (only in JSON mode); ``one_line`` for
        a document a program reads as soon as it appears (a server's address)."""
        if self.json_mode:
            text = json.dumps(document, ensure_ascii=False, indent=None if one_line else 2)
            print(text, file=self.stdout, flush=True)

    def error(self, message: str) -> None:
        """Print an error, one ``scimsync: error: ...`` line per line of ``message``."""
        for text in message.splitlines() or [""]:
            print(f"scimsync: error: {text}", file=self.stderr, flush=True)

    def progress(self, *, timer: Callable[[], float] = time.monotonic) -> ProgressDisplay:
        """A progress display fit for where the output goes.

        Text mode: on stdout, a bar on a terminal and a few plain lines elsewhere.
        JSON mode: on stderr when it is a terminal, else silent.
        """
        if self.json_mode:
            tty = is_terminal(self.stderr)
            return ProgressDisplay(self.stderr, tty=tty, enabled=tty, timer=timer)
        return ProgressDisplay(self.stdout, tty=is_terminal(self.stdout), timer=timer)


_PHASES = {"reading": "reading source and target", "planning": "planning"}


class ProgressDisplay:
    """Shows a cycle's :class:`~scimsync.sync.Progress` events as they come.

    On a terminal: a status line for reading and planning, then a bar redrawn in
    place while operations are applied. Elsewhere (a log file, a pipe): one line when
    applying starts and one at each quarter, so logs stay short.
    """

    #: Characters of the bar.
    width = 30

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool,
        enabled: bool = True,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = tty
        self.enabled = enabled
        self.timer = timer
        self._started: float | None = None
        self._shown: tuple[str, int] | None = None
        self._open_line = False
        self._quarter = 0

    def __call__(self, progress: Progress) -> None:
        """Show ``progress`` (the provisioner's ``on_progress`` hook)."""
        if not self.enabled:
            return
        if progress.phase != "applying":
            if self.tty and progress.done < progress.total:
                self._redraw(f"  {_PHASES.get(progress.phase, progress.phase)}…")
            return
        if progress.total == 0:
            return
        if self._started is None:
            self._started = self.timer()
            if not self.tty:
                self._print(f"  applying {progress.total} operations")
        if self.tty:
            self._draw_bar(progress.done, progress.total)
        else:
            self._plain(progress.done, progress.total)

    def _draw_bar(self, done: int, total: int) -> None:
        percent = done * 100 // total
        if self._shown == ("applying", percent) and done < total:
            return
        self._shown = ("applying", percent)
        filled = done * self.width // total
        bar = "█" * filled + "░" * (self.width - filled)
        elapsed = self.timer() - (self._started or 0.0)
        count = f"{done:>{len(str(total))}}/{total}"  # fixed width: the bar does not jitter
        self._redraw(f"  applying [{bar}] {count} {percent:3d}%  {elapsed:.1f}s")
        if done >= total:
            self.finish()

    def _plain(self, done: int, total: int) -> None:
        quarter = done * 4 // total
        if quarter > self._quarter and done > 0:
            self._quarter = quarter
            self._print(f"  applied {done}/{total} ({done * 100 // total}%)")

    def _redraw(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._open_line = True

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        """End the line being redrawn, if any (call before printing anything else)."""
        if self._open_line:
            self.stream.write("\r\x1b[2K" if self._shown is None else "\n")
            self.stream.flush()
            self._open_line = False
            self._shown = None
