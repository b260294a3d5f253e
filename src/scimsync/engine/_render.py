"""A plan as people review it, like a Terraform plan: one block per operation.

Values come from the operations' :class:`PlannedChange` records, which never hold a sensitive
value, so nothing secret can be rendered.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._values import OPERATION_KINDS, Placeholder

if TYPE_CHECKING:
    from ._plan import Plan
    from ._values import Operation

_SYMBOLS = {
    "create": "+",
    "update": "~",
    "reactivate": "~",
    "add_members": "+",
    "remove_members": "-",
    "deactivate": "-",
    "delete": "-",
}
_COLORS = {"+": "\x1b[32m", "~": "\x1b[33m", "-": "\x1b[31m", "!": "\x1b[31m"}
_RESET = "\x1b[0m"
_LIST_LIMIT = 20
_VALUE_LIMIT = 120
_VERBS = {
    "create": "to create",
    "update": "to update",
    "reactivate": "to reactivate",
    "add_members": "to add members",
    "remove_members": "to remove members",
    "deactivate": "to deactivate",
    "delete": "to delete",
}


def render(plan: Plan, *, color: bool = False) -> str:
    """The review text of ``plan``; with ``color``, symbols in ANSI colours."""
    lines = [_headline(plan)]  # each section below opens with a blank line

    def paint(symbol: str, text: str) -> str:
        return f"{_COLORS[symbol]}{text}{_RESET}" if color and symbol in _COLORS else text

    if plan.operations:
        lines.append("")
    for op in plan.operations:
        lines.extend(_operation_lines(op, paint))
    if plan.guards:
        lines.append("")
        for trip in plan.guards:
            state = "forced past" if trip.forced else f"held {trip.held} operations"
            lines.append(paint("!", f"! guard {trip.name} {state}: {trip.reason}"))
    if plan.held:
        lines.append("")
        lines.append("Held (not applied):")
        for op in plan.held:
            lines.extend(_operation_lines(op, paint))
    if plan.conflicts:
        lines.append("")
        lines.append("Conflicts (left alone):")
        for conflict in plan.conflicts:
            keys = ", ".join(json.dumps(k, ensure_ascii=False) for k in conflict.source_keys)
            ids = f" [{', '.join(conflict.target_ids)}]" if conflict.target_ids else ""
            lines.append(
                paint(
                    "!",
                    f"! {conflict.kind} {conflict.resource_type} {keys}{ids}: {conflict.detail}",
                )
            )
    if plan.skipped:
        lines.append("")
        lines.append("Skipped:")
        lines.extend(
            f"  {skip.resource_type} {_name(skip.source_key, skip.target_id)}: {skip.reason}"
            for skip in plan.skipped
        )
    if plan.protected:
        lines.append("")
        lines.append("Protected (source records with issues: not deprovisioned, groups kept):")
        lines.extend(
            f"  {p.resource_type} {_name(p.source_key, None)}{_ids(p.target_ids)}: {p.reason}"
            for p in plan.protected
        )
    if plan.source_issues:
        lines.append("")
        lines.append(f"Source records with issues ({len(plan.source_issues)}):")
        lines.extend(paint("!", f"! {issue}") for issue in plan.source_issues[:_LIST_LIMIT])
        if len(plan.source_issues) > _LIST_LIMIT:
            lines.append(f"  … and {len(plan.source_issues) - _LIST_LIMIT} more")
    if plan.not_compared:
        lines.append("")
        lines.append("Not compared on this target:")
        lines.extend(f"  {text}" for text in plan.not_compared)
    if plan.target_notes:
        lines.append("")
        lines.append("About this target:")
        lines.extend(f"  {text}" for text in plan.target_notes)
    return "\n".join(lines) + "\n"


def _headline(plan: Plan) -> str:
    counts = dict.fromkeys(OPERATION_KINDS, 0)
    for op in plan.operations:
        counts[op.kind] += 1
    parts = [f"{count} {_VERBS[kind]}" for kind, count in counts.items() if count]
    text = "Plan: " + (", ".join(parts) if parts else "no changes")
    extras = []
    if plan.held:
        extras.append(f"{len(plan.held)} held")
    if plan.conflicts:
        count = len(plan.conflicts)
        extras.append(f"{count} conflict{'' if count == 1 else 's'}")
    if plan.skipped:
        extras.append(f"{len(plan.skipped)} skipped")
    if plan.protected:
        extras.append(f"{len(plan.protected)} protected")
    return text + (f" ({', '.join(extras)})" if extras else "") + "."


def _name(key: str | None, target_id: str | None) -> str:
    parts = []
    if key is not None:
        parts.append(json.dumps(key, ensure_ascii=False))
    if target_id is not None and Placeholder.parse(target_id) is None:
        parts.append(f"(id {target_id})")
    return " ".join(parts) or "(unknown)"


def _ids(target_ids: tuple[str, ...]) -> str:
    """The accounts of a protection, or that none is known."""
    if not target_ids:
        return " (no account known)"
    return f" (id{'s' if len(target_ids) > 1 else ''} {', '.join(target_ids)})"


def _operation_lines(op: Operation, paint: Any) -> list[str]:
    symbol = _SYMBOLS[op.kind]
    head = f"  {symbol} {op.kind} {op.resource_type} {_name(op.source_key, op.target_id)}"
    lines = [paint(symbol, head) + (f"  # {op.reason}" if op.reason else "")]
    width = max((len(c.path) for c in op.changes), default=0)
    for change in op.changes:
        if change.path == "members" and isinstance(change.new or change.old, list):
            sign = "+" if change.new is not None else "-"
            values = change.new if change.new is not None else change.old
            lines.extend(
                paint(sign, f"      {sign} member {_value(value)}")
                for value in values[:_LIST_LIMIT]
            )
            if len(values) > _LIST_LIMIT:
                lines.append(f"      … and {len(values) - _LIST_LIMIT} more")
            continue
        label = change.path.ljust(width)
        if change.sensitive:
            lines.append(f"      {label} = (sensitive)")
        elif op.kind == "create":
            lines.append(f"      {label} = {_value(change.new)}")
        elif change.new is None and change.old is not None:
            lines.append(f"      {label} : {_keyed(change.old, change.old_key)} → (removed)")
        else:
            old, new = _keyed(change.old, change.old_key), _keyed(change.new, change.new_key)
            lines.append(f"      {label} : {old} → {new}")
    return lines


def _keyed(value: Any, key: str | None) -> str:
    """A value, and the source key of the user it names (a manager's id) if known."""
    return _value(value) if key is None else f"{_value(value)} ({key})"


def _value(value: Any) -> str:
    text = json.dumps(_readable(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def _readable(value: Any) -> Any:
    """``value`` with placeholders shown as the resource they stand for: ``<new User E2>``."""
    if isinstance(value, str):
        placeholder = Placeholder.parse(value)
        return (
            value if placeholder is None else f"<new {placeholder.resource_type} {placeholder.key}>"
        )
    if isinstance(value, list):
        return [_readable(item) for item in value]
    if isinstance(value, dict):
        return {key: _readable(item) for key, item in value.items()}
    return value
