"""Big values keep a short repr: logs and debuggers get one line, not the whole cycle."""

from __future__ import annotations

from scimsync import Provisioner
from scimsync.engine import Plan, Policy
from scimsync.mapping import Mapping
from scimsync.sources import MemorySource
from scimsync.sync import Execution, OperationResult
from scimsync.targets import MemoryTarget

PEOPLE = 200


def _provisioner(count: int = PEOPLE) -> tuple[MemorySource, Provisioner]:
    source = MemorySource(
        users=[{"id": f"e{i}", "email": f"user{i}@example.com"} for i in range(count)]
    )
    mapping = Mapping(users={"userName": "email"})
    cycles = iter(f"c{n}" for n in range(1, 100))
    provisioner = Provisioner(
        source, mapping, MemoryTarget(), Policy(), cycle_ids=lambda: next(cycles)
    )
    return source, provisioner


def test_a_report_of_200_operations_has_a_short_repr() -> None:
    """The repr of a 200-operation report names the cycle, mode, outcome and counts in
    under 300 characters; ``str()`` and ``to_json()`` still hold every result."""
    _, provisioner = _provisioner()
    report = provisioner.run_once()
    assert PEOPLE == len(report.results)
    assert "<SyncReport 'c1' full ok: applied=200 failed=0 skipped=0>" == repr(report)
    assert len(repr(report)) < 300
    assert PEOPLE == report.to_json().count('"outcome": "applied"')


def test_a_blocked_report_says_so_and_how_many_were_held() -> None:
    """A report whose guard held operations shows the outcome and the held count."""
    source, provisioner = _provisioner(3)
    provisioner.run_once()
    source.users.clear()
    report = provisioner.run_once()
    assert "<SyncReport 'c2' full blocked: applied=0 failed=0 skipped=0 held=3>" == repr(report)


def test_a_plan_of_200_operations_has_a_short_repr() -> None:
    """A plan's repr is its summary (kinds and counts, blocked or not); ``render()``
    and ``to_json()`` hold the operations."""
    source, provisioner = _provisioner()
    plan = provisioner.plan()
    assert "<Plan create=200>" == repr(plan)
    assert "<Plan empty>" == repr(Plan())
    provisioner.apply(plan)
    source.users.clear()
    assert "<Plan held=200 blocked>" == repr(provisioner.plan())


def test_an_execution_has_a_short_repr() -> None:
    """An execution's repr counts its results by outcome and says why writing
    stopped, whatever the number of results."""
    results = tuple(
        OperationResult(
            index=i, kind="create", resource_type="User", source_key=f"e{i}",
            target_id=f"id{i}", outcome="applied" if i else "failed",
        )
        for i in range(PEOPLE)
    )  # fmt: skip
    execution = Execution(
        results=results, resolved={}, quarantine="too many failures", requests=201
    )
    expected = "<Execution applied=199 failed=1 skipped=0 quarantined, requests=201 retries=0>"
    assert expected == repr(execution)


def test_an_explanation_has_a_short_repr() -> None:
    """An explanation's repr names the identity, the number of steps and the outcome;
    ``str()`` holds the steps."""
    _, provisioner = _provisioner()
    explanation = provisioner.provision_one("e7")
    assert "<Explanation 'e7': 6 steps, ok>" == repr(explanation)
    assert "user7@example.com" in str(explanation)
