"""State stores: what cycles remember, in SQLite (crash-safe, migrated, locked) and memory."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from scimsync.engine import Ledger, SyncState
from scimsync.errors import CycleInProgressError, StateError
from scimsync.sync import (
    SCHEMA_VERSION,
    CycleRecord,
    JournalEntry,
    MemoryStateStore,
    PendingFailure,
    SqliteStateStore,
    StateStore,
    StoredState,
)
from scimsync.sync import _state as state_module

if TYPE_CHECKING:
    from pathlib import Path

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def stored(**overrides: object) -> StoredState:
    values: dict[str, object] = {
        "state": SyncState(
            users=Ledger(
                links={"e1": "u1", "e2": "u2"},
                owned=["u1", "u2", "u9"],
                last_source_count=2,
                deactivated_at={"u9": WHEN},
            ),
            groups=Ledger(links={"g1": "G1"}, last_source_count=1),
        ),
        "fingerprints": {"User": {"e1": "f1", "e2": "f2"}, "Group": {"g1": "fg"}},
        "failures": [
            PendingFailure(
                resource_type="User",
                kind="update",
                source_key="e2",
                target_id="u2",
                error="HTTP 503",
                attempts=2,
                first_failed_at=WHEN - timedelta(hours=1),
                last_failed_at=WHEN,
            )
        ],
        "clean": True,
        "settings": "digest",
        "last_full_at": WHEN,
    }
    values.update(overrides)
    return StoredState(**values)  # type: ignore[arg-type]


def cycle(number: int, outcome: str = "ok") -> CycleRecord:
    return CycleRecord(
        cycle_id=f"c{number}",
        started_at=WHEN + timedelta(minutes=number),
        finished_at=WHEN + timedelta(minutes=number, seconds=5),
        mode="full",
        outcome=outcome,
        summary={"applied": number},
        detail=f"cycle {number}",
    )


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore()
    return SqliteStateStore(tmp_path / "state.db")


def test_both_stores_implement_the_protocol(store: StateStore) -> None:
    """SqliteStateStore and MemoryStateStore are StateStores."""
    assert isinstance(store, StateStore)


def test_a_new_store_is_empty(store: StateStore) -> None:
    """Nothing stored yet: an empty state, never clean, no history."""
    assert (StoredState(), ()) == (store.load(), store.history())


def test_what_is_saved_is_what_is_loaded(store: StateStore) -> None:
    """Links, ownership, counts, deactivations, fingerprints, failures and flags round-trip."""
    value = stored()
    store.save(value)
    assert value == store.load()


def test_saving_again_replaces_everything(store: StateStore) -> None:
    """A second save leaves exactly the new state: gone links and failures are gone."""
    store.save(stored())
    smaller = stored(
        state=SyncState(users=Ledger(links={"e1": "u1"}, last_source_count=1)),
        fingerprints={"User": {"e1": "f1b"}},
        failures=[],
        clean=False,
        settings=None,
    )
    store.save(smaller)
    assert smaller == store.load()


def test_the_journal_is_kept_until_a_save_clears_it(store: StateStore) -> None:
    """Journal entries survive loads; a save without them clears them."""
    store.save(stored())
    entries = [
        JournalEntry(
            event="intent",
            resource_type="User",
            source_key="e3",
            target_id="urn:scimsync:placeholder:User:e3",
            identity={"externalId": "e3", "userName": "cy"},
            at=WHEN,
        ),
        JournalEntry(
            event="created", resource_type="User", source_key="e3", target_id="u3", at=WHEN
        ),
    ]
    store.append_journal(entries[:1])
    store.append_journal(entries[1:])
    assert tuple(entries) == store.load().journal
    store.save(stored())
    assert () == store.load().journal


def test_the_history_keeps_the_latest_cycles_newest_first(store: StateStore) -> None:
    """Cycles come back newest first, as many as asked; old ones are dropped at the cap."""
    for number in range(5):
        store.save(stored(), cycle(number))
    assert ["c4", "c3"] == [c.cycle_id for c in store.history(2)]
    assert cycle(4) == store.history(1)[0]


def test_history_is_capped(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The history never grows past its length."""
    monkeypatch.setattr(state_module, "HISTORY_LENGTH", 3)
    for number in range(6):
        store.save(stored(), cycle(number))
    assert ["c5", "c4", "c3"] == [c.cycle_id for c in store.history(10)]


def test_the_lock_refuses_a_second_cycle_in_the_same_process(store: StateStore) -> None:
    """While one cycle holds the lock, another is refused at once, not queued."""
    with store.lock(), pytest.raises(CycleInProgressError), store.lock():
        pass  # pragma: no cover
    with store.lock():
        pass  # free again


# -- SQLite specifics ------------------------------------------------------------------------


def test_the_database_is_in_wal_mode_and_versioned(tmp_path: Path) -> None:
    """WAL journal mode; the schema version is the current one."""
    store = SqliteStateStore(tmp_path / "state.db")
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    assert ("wal", SCHEMA_VERSION) == (
        db.execute("PRAGMA journal_mode").fetchone()[0],
        db.execute("PRAGMA user_version").fetchone()[0],
    )
    db.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    """What one store saved, a new store on the same file reads."""
    first = SqliteStateStore(tmp_path / "state.db")
    first.save(stored(), cycle(1))
    first.append_journal([JournalEntry(event="deleted", resource_type="User", target_id="u9")])
    first.close()
    second = SqliteStateStore(tmp_path / "state.db")
    assert stored(
        journal=[JournalEntry(event="deleted", resource_type="User", target_id="u9")]
    ) == (second.load())
    assert [cycle(1)] == list(second.history())


def test_saves_write_only_what_changed(tmp_path: Path) -> None:
    """Saving the same state again changes no row (the database's change counter)."""
    store = SqliteStateStore(tmp_path / "state.db")
    many = stored(
        state=SyncState(users=Ledger(links={f"e{i}": f"u{i}" for i in range(1000)})),
    )
    store.save(many)
    before = store._db.total_changes
    store.save(many)
    # The journal is emptied and the three settings rewritten; no link, no owner.
    assert store._db.total_changes - before <= 3


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer scimsync is not touched."""
    SqliteStateStore(tmp_path / "state.db").close()
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer than"):
        SqliteStateStore(tmp_path / "state.db")


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_not_a_state_database_is_refused(tmp_path: Path, content: bytes) -> None:
    """A foreign file raises StateError; an empty file becomes a new database."""
    path = tmp_path / "state.db"
    path.write_bytes(content)
    if content:
        with pytest.raises(StateError, match="not a scimsync state database"):
            SqliteStateStore(path)
    else:
        SqliteStateStore(path).close()


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    """An SQLite database with tables of its own is never migrated into."""
    db = sqlite3.connect(tmp_path / "app.db")
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not a scimsync state database"):
        SqliteStateStore(tmp_path / "app.db")


def test_migrations_bring_an_older_database_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a database of an older version applies the later migrations, data kept."""
    path = tmp_path / "state.db"
    old = SqliteStateStore(path)
    old.save(stored())
    old.close()
    later = (*state_module.MIGRATIONS, ("ALTER TABLE cycles ADD COLUMN host TEXT",))
    monkeypatch.setattr(state_module, "MIGRATIONS", later)
    monkeypatch.setattr(state_module, "SCHEMA_VERSION", len(later))
    upgraded = SqliteStateStore(path)
    assert (len(later), stored()) == (upgraded.schema_version, upgraded.load())
    columns = [row[1] for row in upgraded._db.execute("PRAGMA table_info(cycles)")]
    assert "host" in columns


def test_a_failing_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails is rolled back whole: the old version and data stay."""
    path = tmp_path / "state.db"
    old = SqliteStateStore(path)
    old.save(stored())
    old.close()
    broken = (
        *state_module.MIGRATIONS,
        ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(state_module, "MIGRATIONS", broken)
    monkeypatch.setattr(state_module, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StateError):
        SqliteStateStore(path)
    monkeypatch.undo()
    again = SqliteStateStore(path)
    tables = {row[0] for row in again._db.execute("SELECT name FROM sqlite_master")}
    assert (SCHEMA_VERSION, stored(), False) == (
        again.schema_version,
        again.load(),
        "extra" in tables,
    )


def test_synchronous_must_be_a_known_level(tmp_path: Path) -> None:
    """A typo in ``synchronous`` is refused before anything is opened."""
    with pytest.raises(StateError, match="synchronous"):
        SqliteStateStore(tmp_path / "state.db", synchronous="fast")


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks are POSIX")
def test_the_lock_keeps_another_process_out(tmp_path: Path) -> None:
    """A second process trying the lock while this one holds it is refused, and told who."""
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    code = textwrap.dedent(
        f"""
        from scimsync.errors import CycleInProgressError
        from scimsync.sync import SqliteStateStore
        store = SqliteStateStore({str(path)!r})
        try:
            with store.lock():
                print("acquired")
        except CycleInProgressError as exc:
            print("refused:", exc.holder)
        """
    )

    def other() -> str:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()

    import os

    with store.lock():
        assert f"refused: pid {os.getpid()}" == other()
    assert "acquired" == other()


def test_a_process_killed_mid_save_leaves_the_old_state(tmp_path: Path) -> None:
    """A process killed inside a save's transaction leaves the state before it, whole."""
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    store.save(stored())
    store.close()
    code = textwrap.dedent(
        f"""
        import os
        from scimsync.engine import Ledger, SyncState
        from scimsync.sync import SqliteStateStore, StoredState
        from scimsync.sync import _state
        store = SqliteStateStore({str(path)!r})
        original = _state._sync_table
        calls = []
        def dying(db, table, *args):
            original(db, table, *args)
            calls.append(table)
            if table == "owned":
                os._exit(9)  # killed between two writes of one save
        _state._sync_table = dying
        store.save(StoredState(state=SyncState(users=Ledger(links={{"x": "y"}}))))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert 9 == result.returncode
    assert stored() == SqliteStateStore(path).load()


def test_the_next_state_leaves_out_what_failed_however_it_is_passed() -> None:
    """``SyncState.after`` drops the links of failed creates, given as the plan's own
    operations or as equal copies (read back from JSON, say); the rest are linked."""
    from scimsync import User
    from scimsync.engine import Plan, Policy, plan
    from scimsync.models import DesiredState, DesiredUser, TargetState

    wanted = DesiredState(
        users=[
            DesiredUser(key=f"e{i}", user=User(user_name=f"u{i}", external_id=f"e{i}"))
            for i in range(3)
        ]
    )
    made = plan(wanted, TargetState(), Policy())
    ids = {op.target_id: f"id{i}" for i, op in enumerate(made.operations)}
    copies = Plan.from_json(made.to_json()).operations
    for failed in ([made.operations[1]], [copies[1]]):
        after = SyncState().after(made, ids, failed=failed)
        assert {"e0": "id0", "e2": "id2"} == dict(after.users.links)
