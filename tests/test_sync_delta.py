"""Delta reads in the runner: incremental cycles read only what changed (merged into the
stored snapshot), full cycles read everything and find departures, and a read with an
issue never advances the watermark."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from _sync_helpers import Clock, memory_target
from scimsync import Provisioner
from scimsync.mapping import Mapping
from scimsync.sources import ChangeRead, IssueCode, Record, RecordIssue, SqlSource
from scimsync.sync import MemoryStateStore, SourceSnapshot, SqliteStateStore
from scimsync.sync._delta import source_for_cycle

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from scimsync.sources import SourceItem

MAPPING = Mapping(users={"userName": "email", "displayName": "name"})


class Recorded(SqlSource):
    """A SqlSource noting the watermark each read started from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[str | None] = []

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        self.reads.append(since)
        return super().read_changes(since, previous)


@pytest.fixture
def hr(tmp_path: Path) -> Path:
    path = tmp_path / "hr.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE staff (id TEXT, email TEXT, name TEXT, version INTEGER)")
        db.executemany(
            "INSERT INTO staff VALUES (?, ?, ?, ?)",
            [(f"E{i}", f"user{i}@example.com", f"User {i}", i) for i in range(1, 21)],
        )
    db.close()
    return path


def change(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql)
    db.close()


def provisioner(hr: Path, state: Any, clock: Clock) -> tuple[Provisioner, Recorded, Any]:
    source = Recorded(
        lambda: sqlite3.connect(hr), "SELECT * FROM staff", key="id", watermark="version"
    )
    target = memory_target()
    made = Provisioner(
        source, MAPPING, target, state=state, clock=clock, full_cycle_every=timedelta(hours=24)
    )
    return made, source, target


def names(target: Any) -> dict[str | None, tuple[str | None, bool]]:
    """externalId -> (displayName, not deactivated)."""
    return {u.external_id: (u.display_name, u.active is not False) for u in target.state().users}


def test_incremental_cycles_read_only_changes_and_full_cycles_find_leavers(hr: Path) -> None:
    """The first cycle reads the source whole; later ones read from the watermark and
    apply the change; a deleted row is not taken for a leaver until the next full
    cycle, which deactivates it (one of twenty: within the guards)."""
    clock = Clock()
    made, source, target = provisioner(hr, MemoryStateStore(), clock)
    first = made.run_once()
    assert first.ok
    assert "full" == first.source_read
    assert 20 == len(target.state().users)
    change(hr, "UPDATE staff SET name = 'Renamed', version = 99 WHERE id = 'E2'")
    clock.advance(60)
    report = made.run_once()
    assert (None, '{"value": 20}') == tuple(source.reads)
    assert report.ok
    assert ("delta", "delta") == (report.source_read, report.to_dict()["sourceRead"])
    assert "delta source read" in str(report).splitlines()[0]
    assert ("Renamed", True) == names(target)["E2"]
    change(hr, "DELETE FROM staff WHERE id = 'E4'")
    clock.advance(60)
    assert made.run_once().ok
    assert ("User 4", True) == names(target)["E4"]  # a delta read sees no deletion
    clock.advance(60)
    full = made.run_once(full=True)
    assert (True, "full") == (full.ok, full.source_read)
    assert None is source.reads[-1]
    assert ("User 4", False) == names(target)["E4"]
    assert 19 == sum(1 for _, active in names(target).values() if active)


def test_the_snapshot_survives_a_restart_in_sqlite(hr: Path, tmp_path: Path) -> None:
    """A SqliteStateStore keeps the watermark and the records: a new process's
    incremental cycle reads only the changes, and plans against every record."""
    clock = Clock()
    with SqliteStateStore(tmp_path / "state.db") as store:
        made, _, target = provisioner(hr, store, clock)
        assert made.run_once().ok
        made.close()
    change(hr, "UPDATE staff SET name = 'Later', version = 77 WHERE id = 'E1'")
    clock.advance(60)
    with SqliteStateStore(tmp_path / "state.db") as store:
        again, source, _ = provisioner(hr, store, clock)
        again.target = target
        report = again.run_once()
        again.close()
    assert ['{"value": 20}'] == source.reads
    assert report.ok
    assert ("Later", True) == names(target)["E1"]
    assert 20 == sum(1 for _, active in names(target).values() if active)


class Scripted:
    """A delta source yielding scripted items and watermark per read."""

    source_id = "scripted"

    def __init__(self) -> None:
        self.script: list[tuple[list[SourceItem], str | None, tuple[str, ...]]] = []
        self.reads: list[tuple[str | None, int]] = []

    def read(self) -> Iterator[SourceItem]:
        return iter(self.read_changes(None))

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        self.reads.append((since, len(previous)))
        items, watermark, kinds = self.script.pop(0)

        def produce(read: ChangeRead) -> Iterator[SourceItem]:
            yield from items
            read.watermark = watermark

        return ChangeRead(produce, since=since, full_kinds=kinds)  # type: ignore[arg-type]


def user(key: str, name: str = "x") -> Record:
    return Record(key=key, attributes={"name": name})


def group(key: str, *members: str) -> Record:
    return Record(key=key, kind="group", members=members)


def read_once(source: Scripted, store: MemoryStateStore, *, full: bool = False) -> list[Any]:
    view: Any = source_for_cycle(source, store, full=full, clock=Clock())
    return list(view.read())


def test_a_delta_is_merged_into_the_snapshot() -> None:
    """A changed record replaces its stored version, unchanged ones are kept, and a kind
    the read gave whole (groups) replaces all of that kind."""
    source, store = Scripted(), MemoryStateStore()
    source.script = [
        ([user("A"), user("B"), group("G1", "A"), group("G2", "B")], "w1", ()),
        ([user("B", "new"), group("G1", "A", "B")], "w2", ("group",)),
    ]
    read_once(source, store)
    merged = read_once(source, store)
    assert [(None, 0), ("w1", 4)] == source.reads
    assert {("user", "A", "x"), ("user", "B", "new"), ("group", "G1", None)} == {
        (r.kind, r.key, r.get("name")) for r in merged
    }
    snapshot = store.load_snapshot("scripted")
    assert snapshot is not None
    assert ("w2", 3) == (snapshot.watermark, len(snapshot.records))


def test_an_issue_keeps_the_old_watermark_and_protects_the_key() -> None:
    """A delta read with an issue for key B yields the issue instead of B's stored
    record (so the mapping protects B) and leaves the snapshot as it was: the next read
    starts from the same watermark."""
    source, store = Scripted(), MemoryStateStore()
    problem = RecordIssue(code=IssueCode.INVALID_VALUE, reason="bad", key="B")
    source.script = [
        ([user("A"), user("B")], "w1", ()),
        ([problem], "w2", ()),
        ([], "w3", ()),
    ]
    read_once(source, store)
    merged = read_once(source, store)
    assert [problem, user("A")] == merged
    read_once(source, store)
    assert ("w1", "w1") == (source.reads[1][0], source.reads[2][0])


def test_a_full_read_with_an_issue_forgets_the_snapshot() -> None:
    """A full read that is not clean (a record without key) stores nothing: the next
    cycle reads whole again, never merging into a read that could not be trusted."""
    source, store = Scripted(), MemoryStateStore()
    store.save_snapshot("scripted", SourceSnapshot(watermark="w0", records=[user("A")]))
    source.script = [
        ([user("A"), Record(key=None, attributes={})], "w1", ()),
        ([user("A")], "w2", ()),
    ]
    read_once(source, store, full=True)
    assert None is store.load_snapshot("scripted")
    read_once(source, store)
    assert [(None, 0), (None, 0)] == source.reads


def test_duplicate_keys_are_passed_on_and_not_stored() -> None:
    """Two records with one key reach the mapping (which reports the duplicate); such a
    read is not stored."""
    source, store = Scripted(), MemoryStateStore()
    source.script = [([user("A"), user("A", "again")], "w1", ())]
    assert 2 == len(read_once(source, store))
    assert None is store.load_snapshot("scripted")


def test_a_plain_source_or_store_is_read_as_it_is() -> None:
    """A source that cannot read deltas, or a store without snapshots, is left alone."""
    plain_store = object()
    source = Scripted()
    assert source is source_for_cycle(source, plain_store, full=False, clock=Clock())
    records: Any = [user("A")]
    assert records is source_for_cycle(records, MemoryStateStore(), full=False, clock=Clock())


def test_sqlite_snapshots_are_saved_and_loaded_whole(tmp_path: Path) -> None:
    """The SQLite store keeps each source's watermark and records (members, origin, line
    included), separately per source, and forgets one on None."""
    with SqliteStateStore(tmp_path / "s.db") as store:
        first = SourceSnapshot(
            watermark="w1",
            records=[
                Record(key="A", attributes={"mail": ["a@x", "b@x"], "n": 1}, line=3, origin="o"),
                group("G", "A"),
            ],
        )
        store.save_snapshot("one", first)
        store.save_snapshot("two", SourceSnapshot(watermark="v", records=[user("Z")]))
        store.save_snapshot("one", SourceSnapshot(watermark="w2", records=[first.records[0]]))
        loaded = store.load_snapshot("one")
        assert loaded is not None
        assert ("w2", (first.records[0],)) == (loaded.watermark, loaded.records)
        store.save_snapshot("two", None)
        assert None is store.load_snapshot("two")
