"""Structured logs: one JSON object per line, naming the cycle, the operation, the key."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import pytest

from _sync_helpers import memory_target
from scimsync import Provisioner
from scimsync._context import cycle_id_var
from scimsync.logs import JsonFormatter, OmitValues, add_scimsync_fields, record_fields
from scimsync.mapping import Mapping, lower
from scimsync.sources import MemorySource

if TYPE_CHECKING:
    from collections.abc import Iterator

PASSWORD = "Initial-Passw0rd!"
MAPPING = Mapping(
    users={"userName": lower("email"), "title": "title"},
    create_only={"password": lambda record: PASSWORD},
)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The scimsync loggers, at INFO, into a stream through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("scimsync")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_cycle_logs_one_json_object_per_line_each_naming_the_cycle(
    json_lines: io.StringIO,
) -> None:
    """Operational and audit records of a cycle: JSON lines with its id; the audit
    ones with operation, key, target id and outcome; the password nowhere."""
    source = MemorySource(
        users=[
            {"id": "E1", "email": "Ann@example.com", "title": "Lead"},
            {"id": "E2", "email": "bob@example.com", "title": "Dev"},
        ]
    )
    with Provisioner(source, MAPPING, memory_target()) as provisioner:
        report = provisioner.run_once()
    lines = parsed(json_lines)
    assert len(lines) == len(json_lines.getvalue().splitlines())
    assert {report.cycle_id} == {line["cycleId"] for line in lines}
    audit = [line for line in lines if line["logger"] == "scimsync.audit"]
    assert [
        ("create", "User", "E1", "id1", "applied"),
        ("create", "User", "E2", "id2", "applied"),
    ] == sorted(
        (a["operation"], a["resourceType"], a["key"], a["targetId"], a["outcome"]) for a in audit
    )
    [ann] = [a for a in audit if a["key"] == "E1"]
    changes = {c["path"]: c for c in ann["changes"]}
    assert "ann@example.com" == changes["userName"]["new"]
    assert changes["password"]["sensitive"]
    assert None is changes["password"]["new"]
    started = lines[0]
    assert ("INFO", "scimsync.sync") == (started["level"], started["logger"])
    assert f"cycle {report.cycle_id} started" == started["message"]
    assert started["time"].endswith("Z")
    assert PASSWORD not in json_lines.getvalue()


def test_omit_values_names_the_changed_attributes_without_their_values(
    json_lines: io.StringIO,
) -> None:
    """With OmitValues on the handler: the audit records still say what was done to
    whom and which attributes changed, and no attribute value appears anywhere."""
    handler = logging.getLogger("scimsync").handlers[-1]
    handler.addFilter(OmitValues())
    ann = {"id": "E1", "email": "Ann@example.com", "title": "Lead"}
    source = MemorySource(users=[ann])
    with Provisioner(source, MAPPING, memory_target()) as provisioner:
        provisioner.run_once()
        ann["title"] = "Chief"
        provisioner.run_once()
    audit = [line for line in parsed(json_lines) if line["logger"] == "scimsync.audit"]
    assert [("create", "E1"), ("update", "E1")] == [(a["operation"], a["key"]) for a in audit]
    assert [{"path": "title", "sensitive": False}] == audit[1]["changes"]
    assert audit[1]["message"].endswith(": title")
    text = json_lines.getvalue()
    for value in ("ann@example.com", "Lead", "Chief", PASSWORD):
        assert value not in text


def test_a_record_outside_a_cycle_has_no_cycle_id_and_exceptions_stay_on_one_line() -> None:
    """A record logged outside a cycle: no cycleId; its traceback is one JSON string."""
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert 1 == len(line.splitlines())
    data = json.loads(line)
    assert "cycleId" not in data
    assert "failed x" == data["message"]
    assert "ValueError: bad\nvalue" in data["exception"]


def test_the_applications_own_records_during_a_cycle_name_it() -> None:
    """record_fields reads the running cycle's id: any logger's records carry it."""
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", (), None)
    token = cycle_id_var.set("c42")
    try:
        assert {"cycleId": "c42"} == record_fields(record)
        assert {"event": "x", "cycleId": "c42"} == add_scimsync_fields(None, "info", {"event": "x"})
    finally:
        cycle_id_var.reset(token)
    assert {} == record_fields(record)


def test_the_structlog_processor_adds_the_audit_fields_of_a_stdlib_record() -> None:
    """add_scimsync_fields on a foreign record (structlog's ProcessorFormatter passes it
    as ``_record``): the event's fields are added, those present kept."""
    record = logging.LogRecord("scimsync.audit", logging.INFO, __file__, 1, "m", (), None)
    record.scimsync_audit = {
        "cycleId": "c1",
        "kind": "update",
        "sourceKey": "E1",
        "targetId": "7",
        "outcome": "failed",
    }
    event = add_scimsync_fields(None, "info", {"_record": record, "event": "m", "outcome": "x"})
    assert ("c1", "update", "E1", "7", "x") == (
        event["cycleId"],
        event["operation"],
        event["key"],
        event["targetId"],
        event["outcome"],
    )
