"""What the running cycle is, for whoever logs or measures inside it.

One context variable, set by the provisioner for the length of a cycle. Tasks and
threads the cycle starts (``asyncio.gather``, ``asyncio.to_thread``) copy it, so a log
record made anywhere in a cycle can name it. This module imports nothing: the log
formatter reads it without loading the runner.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["cycle_id_var", "current_cycle_id"]

#: The id of the cycle running in this context, None outside a cycle.
cycle_id_var: ContextVar[str | None] = ContextVar("scimsync_cycle_id", default=None)


def current_cycle_id() -> str | None:
    """The id of the cycle running in this context, or None."""
    return cycle_id_var.get()
