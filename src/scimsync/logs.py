"""Structured logs: scimsync's records as one JSON object per line.

scimsync logs to the standard :mod:`logging` module: operational records on
``scimsync.*`` loggers (a cycle started, a guard held, a retry) and one audit record
per operation on ``scimsync.audit`` (:data:`~scimsync.sync.AUDIT_LOGGER`), which
carries its :class:`~scimsync.sync.AuditEvent` as data. :class:`JsonFormatter` writes
each record as one line of JSON::

    {"time": "2026-03-01T09:00:00.120Z", "level": "INFO", "logger": "scimsync.audit",
     "message": "applied create User \\"E1\\" (id 7): userName = \\"ann@example.com\\"",
     "cycleId": "3f2a9c0d1e4b", "operation": "create", "resourceType": "User",
     "key": "E1", "targetId": "7", "outcome": "applied", "changes": [...], ...}

- every record: ``time`` (UTC), ``level``, ``logger``, ``message``, and ``cycleId``
  when it was logged during a cycle (records of any logger: the application's own
  too), ``exception`` with the traceback when there is one;
- audit records, besides: ``operation`` (the kind: ``create``, ``update``...),
  ``resourceType``, ``key`` (the source key), ``targetId``, ``outcome``
  (``applied``, ``failed``, ``skipped``), ``changes`` (each attribute with its old
  and new value), ``reason``, ``error``, ``status``, ``duration``, ``writes``,
  ``replanned``, ``adopted``.

Sensitive values (passwords, writeOnly attributes, those the policy names) are
masked in audit events before they are logged, and no record of scimsync holds a
secret. The other values (names, titles, addresses) are the audit trail's point;
where the logs must not hold personal data, the :class:`OmitValues` filter names
each changed attribute without its values (``scimsync run --no-log-values``).
:func:`record_fields` gives the same fields for other formatters, and
:func:`add_scimsync_fields` is the ``structlog`` processor that adds them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from ._context import current_cycle_id

__all__ = ["JsonFormatter", "OmitValues", "add_scimsync_fields", "record_fields"]

# The audit event's own names, and the names they take on a log line.
_AUDIT_FIELDS = (
    ("kind", "operation"),
    ("resourceType", "resourceType"),
    ("sourceKey", "key"),
    ("targetId", "targetId"),
    ("outcome", "outcome"),
    ("changes", "changes"),
    ("reason", "reason"),
    ("error", "error"),
    ("status", "status"),
    ("duration", "duration"),
    ("writes", "writes"),
    ("replanned", "replanned"),
    ("adopted", "adopted"),
)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The scimsync fields of ``record``: ``cycleId`` (the record's audit event's, else
    the cycle running where it is formatted) and, for an audit record, the event's
    fields (see the module). Empty for a record logged outside any cycle."""
    fields: dict[str, Any] = {}
    audit = getattr(record, "scimsync_audit", None)
    if isinstance(audit, dict):
        fields["cycleId"] = audit.get("cycleId")
        for name, key in _AUDIT_FIELDS:
            if name in audit:
                fields[key] = audit[name]
        return fields
    cycle_id = current_cycle_id()
    if cycle_id is not None:
        fields["cycleId"] = cycle_id
    return fields


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON (see the module for the fields).

    For ``logging.config``: ``{"()": "scimsync.logs.JsonFormatter"}``. The cycle
    id of a record that is not an audit record is read when the record is
    formatted: format where it is logged (a ``StreamHandler``, a ``QueueHandler``
    with this formatter), not in another thread.
    """

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        data: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(record_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class OmitValues(logging.Filter):
    """A logging filter that takes the attribute values out of scimsync's audit
    records: the message names each changed attribute without its old and new value,
    and the ``changes`` field keeps each change's ``path`` and ``sensitive`` only.
    Other records pass unchanged.

    Put it on the handler (``handler.addFilter(OmitValues())``, or ``"filters"`` in
    ``logging.config``), so that every formatter sees the records without values. It
    changes the record itself, as logging filters do: handlers that see the record
    after this one see it without values too (put it on the ``scimsync.audit``
    logger to strip the values for every handler).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip the values of an audit record; keep every record."""
        audit = getattr(record, "scimsync_audit", None)
        event = getattr(record, "scimsync_event", None)
        if isinstance(audit, dict) and "changes" in audit:
            record.scimsync_audit = {
                **audit,
                "changes": [
                    {"path": c.get("path"), "sensitive": c.get("sensitive", False)}
                    for c in audit["changes"]
                ],
            }
            if event is not None:
                record.msg, record.args = "%s", (event.message(values=False),)
        return True


def add_scimsync_fields(logger: object, method_name: str, event_dict: Any) -> Any:
    """A ``structlog`` processor adding :func:`record_fields` to the event.

    Give it to ``structlog.stdlib.ProcessorFormatter``'s ``foreign_pre_chain`` (for
    scimsync's records, which come through the standard library) and, to have the
    application's own log lines name the cycle they run in, to structlog's
    processors too. Fields the event has already are kept.
    """
    record = event_dict.get("_record")
    fields: dict[str, Any]
    if isinstance(record, logging.LogRecord):
        fields = record_fields(record)
    else:
        cycle_id = current_cycle_id()
        fields = {} if cycle_id is None else {"cycleId": cycle_id}
    for key, value in fields.items():
        event_dict.setdefault(key, value)
    return event_dict


def _utc(created: float) -> str:
    text = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
