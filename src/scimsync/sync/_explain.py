"""Provisioning one identity on demand, and the step-by-step explanation it returns."""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..engine import Plan
from ..models._base import to_tuple_or_empty
from ._report import SyncReport

__all__ = ["Explanation", "Step"]


@attrs.frozen(kw_only=True)
class Step:
    """One step of an explanation: ``name`` (``"source"``, ``"scope"``, ``"match"``,
    ``"changes"``, ``"operations"``, ``"result"``) and what was found or done."""

    name: str
    detail: str
    lines: tuple[str, ...] = attrs.field(default=(), converter=to_tuple_or_empty)

    def __str__(self) -> str:
        head = f"{self.name}: {self.detail}"
        return "\n".join([head, *(f"    {line}" for line in self.lines)])


@attrs.frozen(kw_only=True)
class Explanation:
    """What :meth:`~scimsync.Provisioner.provision_one` decided and did, step by step.

    ``steps`` go in order: where the source holds the identity, whether it is in
    scope, which target account it matches, what differs, the operations, and how
    each went. ``plan`` holds the operations for this identity only, ``report`` is
    the report of applying them.
    """

    key: str
    steps: tuple[Step, ...] = attrs.field(converter=to_tuple_or_empty)
    plan: Plan
    report: SyncReport

    @property
    def ok(self) -> bool:
        """True when everything planned for this identity was applied."""
        return self.report.ok

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "key": self.key,
            "steps": [
                {"name": step.name, "detail": step.detail, "lines": list(step.lines)}
                for step in self.steps
            ],
            "report": self.report.to_dict(),
        }

    def __str__(self) -> str:
        lines = [f"Provisioning {json.dumps(self.key, ensure_ascii=False)} on demand:"]
        for number, step in enumerate(self.steps, 1):
            text = str(step).splitlines()
            lines.append(f"  {number}. {text[0]}")
            lines.extend(f"  {line}" for line in text[1:])
        return "\n".join(lines)
