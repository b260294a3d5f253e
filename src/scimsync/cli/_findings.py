"""The lines of ``scimsync check``: :class:`Finding`."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["STATUSES", "Finding", "Status"]

Status = Literal["ok", "note", "warning", "error", "skipped"]

#: Every status, in the order of their weight: only ``error`` makes a check fail.
STATUSES: tuple[Status, ...] = ("ok", "note", "warning", "error", "skipped")


@attrs.frozen
class Finding:
    """One line of ``scimsync check``: what was checked, how it went, the detail.

    ``ok``: as a sync needs it; ``note``: worth knowing, handled; ``warning``: a sign
    that a sync will not do all it is asked (an attribute the target seems to drop, a
    departure from the RFCs), never blocking; ``error``: blocking (exit 1);
    ``skipped``: not checked, because something it needs is missing.
    """

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON data."""
        return {"name": self.name, "status": self.status, "detail": self.detail}
