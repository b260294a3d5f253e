"""State stores: what cycles remember, in SQLite and PostgreSQL (crash-safe, migrated,
locked) and memory. The contract tests run on all three; PostgreSQL is a real server on
127.0.0.1 (``tests/_postgres.py``)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from scimsync.engine import Ledger, SyncState
from scimsync.engine._state import CONFIRMATIONS, Unkept
from scimsync.errors import CycleInProgressError, PlanError, StateError
from scimsync.sync import (
    POSTGRES_SCHEMA_VERSION,
    SCHEMA_VERSION,
    CycleRecord,
    JournalEntry,
    MemoryStateStore,
    PendingFailure,
    PostgresStateStore,
    SnapshotStore,
    SourceSnapshot,
    SqliteStateStore,
    StateStore,
    StoredState,
)
from scimsync.sync import _state as state_module

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from _postgres import Postgres

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


@pytest.fixture(params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.database)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Each store, empty: PostgreSQL's is a target of its own in the session's server."""
    if request.param == "memory":
        yield MemoryStateStore()
        return
    if request.param == "sqlite":
        with SqliteStateStore(tmp_path / "state.db") as sqlite_store:
            yield sqlite_store
        return
    server = request.getfixturevalue("postgres")
    with PostgresStateStore(server.conninfo, target=f"t-{uuid.uuid4()}") as pg_store:
        yield pg_store


def test_every_store_implements_the_protocol(store: StateStore) -> None:
    """SqliteStateStore, PostgresStateStore and MemoryStateStore are StateStores (and
    SnapshotStores: delta reads work with each)."""
    assert (True, True) == (isinstance(store, StateStore), isinstance(store, SnapshotStore))


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


def test_a_file_that_is_not_a_state_database_is_refused(tmp_path: Path) -> None:
    """A foreign file raises StateError and is left as it was."""
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="not a scimsync state database"):
        SqliteStateStore(path)
    assert b"not a database at all" * 100 == path.read_bytes()


def test_an_empty_state_file_is_refused_with_the_way_to_recover(tmp_path: Path) -> None:
    """A 0-byte file where state was expected is no new state: the error says how to
    recover (a backup, deleting it, or new=True) and what starting over forgets."""
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    with pytest.raises(StateError) as raised:
        SqliteStateStore(path)
    message = str(raised.value)
    assert (True, True, True, True) == (
        "empty (0 bytes)" in message,
        "backup" in message,
        "new=True" in message and "--new-state" in message,
        "owns only the accounts that carry its externalId" in message,
    )
    assert b"" == path.read_bytes()


def test_new_makes_a_state_database_in_an_empty_file(tmp_path: Path) -> None:
    """new=True turns an existing empty file into a new, empty state database."""
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    with SqliteStateStore(path, new=True) as store:
        store.save(stored())
    with SqliteStateStore(path) as again:
        assert (SCHEMA_VERSION, stored()) == (again.schema_version, again.load())


def test_new_never_wipes_a_file_holding_state(tmp_path: Path) -> None:
    """new=True on a file that holds state is refused, and the state stays."""
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as store:
        store.save(stored())
    with pytest.raises(StateError, match="holds a state database already"):
        SqliteStateStore(path, new=True)
    with SqliteStateStore(path) as again:
        assert stored() == again.load()


def test_a_damaged_database_is_refused_with_the_way_to_recover(tmp_path: Path) -> None:
    """Bytes overwritten in the middle of a state database holding data are found on
    open (quick_check), and the error says how to recover, not "OK"."""
    path = tmp_path / "state.db"
    many = stored(
        state=SyncState(users=Ledger(links={f"e{i}": f"u{i}" for i in range(3000)})),
        fingerprints={"User": {f"e{i}": f"fingerprint-{i}" for i in range(3000)}},
    )
    with SqliteStateStore(path) as store:
        store.save(many, cycle(1))
    size = path.stat().st_size
    with path.open("r+b") as stream:
        stream.seek(size // 2)
        stream.write(bytes(range(256)) * 8)  # 2,048 bytes of garbage mid-file
    with pytest.raises(StateError) as raised:
        SqliteStateStore(path)
    message = str(raised.value)
    assert (True, True, True) == (
        "is damaged" in message,
        "backup" in message and "move it away" in message,
        "owns only the accounts that carry its externalId" in message,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_the_store_creates_are_owner_only(tmp_path: Path, umask: int) -> None:
    """The database, its -wal and -shm files and the lock file are created 0600,
    whatever the umask."""
    import os
    import stat

    path = tmp_path / "state.db"
    saved = os.umask(umask)
    try:
        store = SqliteStateStore(path)
        with store.lock():
            store.save(stored())
            modes = {
                name: stat.S_IMODE((tmp_path / name).stat().st_mode)
                for name in ("state.db", "state.db-wal", "state.db-shm", "state.db.lock")
            }
        store.close()
    finally:
        os.umask(saved)
    assert dict.fromkeys(modes, 0o600) == modes


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_an_existing_state_file_keeps_its_mode(tmp_path: Path) -> None:
    """A state file made earlier keeps the mode its owner gave it."""
    import os
    import stat

    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    os.chmod(path, 0o640)
    SqliteStateStore(path).close()
    assert 0o640 == stat.S_IMODE(path.stat().st_mode)


_FIRST_CYCLE = textwrap.dedent(
    """
    import sys
    from scimsync.errors import CycleInProgressError, StateError
    from scimsync.sync import SqliteStateStore, StoredState
    print("ready", flush=True)
    sys.stdin.readline()  # everyone starts together
    try:
        store = SqliteStateStore(sys.argv[1])
        with store.lock():
            store.save(StoredState(clean=True))
        print("ok", store.schema_version)
    except CycleInProgressError:
        print("busy")
    except StateError as exc:
        print("state error:", exc)
    """
)


def test_two_first_cycles_at_once_both_find_a_whole_database(tmp_path: Path) -> None:
    """Two processes opening a state file that does not exist yet, started together
    again and again: each gets the complete database (or the cycle lock message),
    never "not a scimsync state database"."""
    outcomes: set[str] = set()
    for attempt in range(6):
        path = tmp_path / f"state-{attempt}.db"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _FIRST_CYCLE, str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None
            assert "ready\n" == child.stdout.readline()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = child.communicate()
            assert ("", 0) == (err, child.returncode)
            outcomes.add(out.strip())
    assert outcomes <= {f"ok {SCHEMA_VERSION}", "busy"}, outcomes


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


# -- what the target does not keep ---------------------------------------------------------


def test_a_path_is_confirmed_once_seen_often_enough() -> None:
    """Each sighting counts; a path acts (ignored, or never cleared) once seen
    ``CONFIRMATIONS`` times, and keeps the time it was first seen."""
    later = WHEN + timedelta(hours=1)
    once = Ledger().learn([("title", "dropped"), ("name.givenName", "not_cleared")], WHEN)
    twice = once.learn([("title", "dropped"), ("name.givenName", "not_cleared")], later)
    assert (2, (), ()) == (CONFIRMATIONS, once.ignored_paths(), once.uncleared_paths())
    assert (Unkept(how="dropped", seen=2, since=WHEN), ("title",), ("name.givenName",)) == (
        twice.unkept["title"],
        twice.ignored_paths(),
        twice.uncleared_paths(),
    )


def test_two_writes_in_one_cycle_confirm_a_path() -> None:
    """Two writes seen dropping one path count twice, in one call as in two."""
    assert ("title",) == Ledger().learn([("title", "dropped")] * 2, WHEN).ignored_paths()


def test_seen_another_way_a_path_starts_counting_again() -> None:
    """A path seen changed after being seen dropped counts from one again, from now."""
    later = WHEN + timedelta(days=1)
    ledger = Ledger().learn([("title", "dropped")] * 2, WHEN).learn([("title", "changed")], later)
    assert (Unkept(how="changed", seen=1, since=later), ()) == (
        ledger.unkept["title"],
        ledger.ignored_paths(),
    )


def test_ignored_and_uncleared_paths_are_sorted_and_apart() -> None:
    """Dropped and changed paths are ignored, not-cleared ones never cleared; sorted."""
    ledger = Ledger(
        unkept={
            "title": Unkept(how="dropped", seen=2),
            "emails.type": Unkept(how="changed", seen=5),
            "nickName": Unkept(how="not_cleared", seen=2),
            "locale": Unkept(how="dropped"),
        }
    )
    assert (("emails.type", "title"), ("nickName",)) == (
        ledger.ignored_paths(),
        ledger.uncleared_paths(),
    )


def test_forgetting_paths_forgets_them_in_any_case() -> None:
    """``forget`` drops the paths named (case-insensitively), or all of them."""
    ledger = Ledger(
        links={"e1": "u1"},
        unkept={"title": Unkept(how="dropped", seen=2), "nickName": Unkept(how="dropped")},
    )
    assert (["nickName"], [], {"e1": "u1"}) == (
        list(ledger.forget(["TITLE"]).unkept),
        list(ledger.forget().unkept),
        dict(ledger.forget().links),
    )


def test_the_sync_state_learns_and_forgets_per_resource_type() -> None:
    """``SyncState.learn`` counts each triple into its type's ledger; nothing seen is the
    same state; ``forget`` takes one type's paths, or both types'."""
    state = SyncState().learn(
        [("User", "title", "dropped"), ("Group", "externalId", "dropped")] * 2, WHEN
    )
    assert state is state.learn([])
    assert (("title",), ("externalId",)) == (
        state.users.ignored_paths(),
        state.groups.ignored_paths(),
    )
    user_only = state.forget("Group")
    assert ((("title",), ()), ((), ())) == (
        (user_only.users.ignored_paths(), user_only.groups.ignored_paths()),
        (state.forget().users.ignored_paths(), state.forget().groups.ignored_paths()),
    )


def test_what_is_learned_survives_a_plan_applied() -> None:
    """``SyncState.after`` keeps what the ledgers learned."""
    from scimsync.engine import Plan

    state = SyncState(users=Ledger(unkept={"title": Unkept(how="dropped", seen=2, since=WHEN)}))
    assert state.users.unkept == state.after(Plan()).users.unkept


def test_unkept_paths_round_trip_through_plain_json() -> None:
    """``to_dict``/``from_dict`` keep every unkept path with how, how often and since."""
    state = SyncState(
        users=Ledger(
            unkept={
                "title": Unkept(how="dropped", seen=2, since=WHEN),
                "nickName": Unkept(how="not_cleared"),
            }
        ),
        groups=Ledger(unkept={"externalId": Unkept(how="changed", seen=3, since=WHEN)}),
    )
    data = json.loads(json.dumps(state.to_dict()))
    assert state == SyncState.from_dict(data)
    assert {"how": "dropped", "seen": 2, "since": "2026-03-01T09:00:00+00:00"} == (
        data["users"]["unkept"]["title"]
    )


@pytest.mark.parametrize(
    ("unkept", "problem"),
    [
        ({"title": {"how": "lost"}}, "$.users.unkept.title: expected how"),
        ({"title": "dropped"}, "$.users.unkept.title: expected how"),
        ({"title": {"how": "dropped", "seen": 0}}, "$.users.unkept.title.seen"),
        ({"title": {"how": "dropped", "seen": "2"}}, "$.users.unkept.title.seen"),
        (["title"], "$.users.unkept: expected an object"),
    ],
)
def test_corrupt_unkept_paths_are_a_plan_error(unkept: object, problem: str) -> None:
    """An unkept entry that is not what ``to_dict`` writes is named in a PlanError."""
    data = {"format": 1, "users": {"unkept": unkept}}
    with pytest.raises(PlanError, match=re.escape(problem)):
        SyncState.from_dict(data)


def test_unkept_paths_and_target_facts_are_saved_and_loaded(store: StateStore) -> None:
    """Unkept paths of both types and the target's facts round-trip through the store."""
    value = stored(
        state=SyncState(
            users=Ledger(
                links={"e1": "u1"},
                unkept={
                    "title": Unkept(how="dropped", seen=2, since=WHEN),
                    "emails.type": Unkept(how="changed"),
                },
            ),
            groups=Ledger(unkept={"externalId": Unkept(how="not_cleared", seen=4, since=WHEN)}),
        ),
        target_facts={"Group.patch": "put", "User.singular": "add", "note.no totals": ""},
    )
    store.save(value)
    assert value == store.load()
    forgotten = stored(target_facts={})
    store.save(forgotten)
    assert forgotten == store.load()


def test_unkept_paths_are_rows_of_their_own(tmp_path: Path) -> None:
    """In SQLite each unkept path is one row (type, path, how, seen, since) and the
    target's facts one settings row of sorted JSON."""
    store = SqliteStateStore(tmp_path / "state.db")
    store.save(
        stored(
            state=SyncState(
                users=Ledger(unkept={"title": Unkept(how="dropped", seen=2, since=WHEN)})
            ),
            target_facts={"User.singular": "add", "Group.patch": "put"},
        )
    )
    rows = store._db.execute("SELECT resource_type, path, how, seen FROM unkept").fetchall()
    facts = store._db.execute("SELECT value FROM settings WHERE name = 'target_facts'").fetchone()
    assert (
        [("User", "title", "dropped", 2)],
        '{"Group.patch": "put", "User.singular": "add"}',
    ) == (
        rows,
        facts[0],
    )


def test_a_database_from_before_unkept_paths_is_brought_forward(tmp_path: Path) -> None:
    """A version 1 database (no unkept table, no target facts) opens at the current
    version with its data kept, nothing learned and no target facts yet."""
    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    first.save(stored())
    first.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE unkept")
    db.execute("DROP TABLE source_watermarks")  # version 3's tables: not there in 1 either
    db.execute("DROP TABLE source_records")
    db.execute("DELETE FROM settings WHERE name = 'target_facts'")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    upgraded = SqliteStateStore(path)
    assert (SCHEMA_VERSION, stored()) == (upgraded.schema_version, upgraded.load())


def test_a_database_from_before_delta_reads_is_brought_forward(tmp_path: Path) -> None:
    """A version 2 database (no source snapshots) opens at the current version with its
    data kept and no snapshot, and then keeps one."""
    from scimsync.sources import Record
    from scimsync.sync import SourceSnapshot

    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    first.save(stored())
    first.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE source_watermarks")
    db.execute("DROP TABLE source_records")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    upgraded = SqliteStateStore(path)
    assert (SCHEMA_VERSION, stored(), None) == (
        upgraded.schema_version,
        upgraded.load(),
        upgraded.load_snapshot("ldap"),
    )
    snapshot = SourceSnapshot(watermark="w", records=[Record(key="A")])
    upgraded.save_snapshot("ldap", snapshot)
    assert snapshot == upgraded.load_snapshot("ldap")
    upgraded.close()


def test_source_snapshots_are_kept_replaced_and_forgotten(store: StateStore) -> None:
    """A delta source's snapshot round-trips, a smaller one replaces it whole, and None
    forgets it; each source has its own."""
    from scimsync.sources import Record

    assert isinstance(store, SnapshotStore)
    first = SourceSnapshot(
        watermark="w1",
        records=[
            Record(key="A", attributes={"n": 1}),
            Record(key="B"),
            Record(key="G", kind="group"),
        ],
        read_at=WHEN,
    )
    store.save_snapshot("hr", first)
    store.save_snapshot("other", SourceSnapshot(watermark="x"))
    assert first == store.load_snapshot("hr")
    second = SourceSnapshot(watermark="w2", records=[Record(key="B", attributes={"n": 2})])
    store.save_snapshot("hr", second)
    assert second == store.load_snapshot("hr")
    store.save_snapshot("hr", None)
    assert (None, "x") == (store.load_snapshot("hr"), store.load_snapshot("other").watermark)  # type: ignore[union-attr]


# -- PostgreSQL specifics -------------------------------------------------------------------


def pg_schema() -> str:
    """A schema name of its own for a test."""
    return f"s_{uuid.uuid4().hex[:12]}"


@pytest.mark.database
def test_targets_in_one_database_keep_their_state_apart(postgres: Postgres) -> None:
    """Two targets in one schema: each loads what it saved, its history and journal only."""
    schema = pg_schema()
    with (
        PostgresStateStore(postgres.conninfo, target="a", schema=schema) as a,
        PostgresStateStore(postgres.conninfo, target="b", schema=schema) as b,
    ):
        a.save(stored(), cycle(1))
        b.append_journal([JournalEntry(event="created", resource_type="User", target_id="x")])
        assert (stored(), StoredState(), (), 1) == (
            a.load(),
            attrs_evolve(b.load(), journal=()),
            b.history(),
            len(b.load().journal),
        )
    with PostgresStateStore(postgres.conninfo, target="a", schema=schema) as again:
        assert (stored(), [cycle(1)]) == (again.load(), list(again.history()))


def attrs_evolve(value: StoredState, **changes: object) -> StoredState:
    import attrs

    return attrs.evolve(value, **changes)  # type: ignore[arg-type]


@pytest.mark.database
def test_the_advisory_lock_keeps_another_worker_out_of_the_same_target(
    postgres: Postgres,
) -> None:
    """A second connection (another worker) is refused the lock of a target while one
    holds it, told who; another target's lock is free; once released, it is taken."""
    schema = pg_schema()
    with (
        PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as one,
        PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as two,
        PostgresStateStore(postgres.conninfo, target="crm", schema=schema) as other,
    ):
        with one.lock():
            with pytest.raises(CycleInProgressError) as refused, two.lock():
                pass  # pragma: no cover
            with other.lock():
                pass  # another target: never waits
        assert re.search(r"pid \d+ \(backend \d+\)", refused.value.holder or "")
        with two.lock():
            pass


@pytest.mark.database
def test_the_lock_goes_with_a_killed_worker(postgres: Postgres) -> None:
    """A process killed while it holds a target's lock releases it with its connection:
    another takes it (within a bounded wait for the server to notice)."""
    import os
    import signal
    import time

    schema = pg_schema()
    code = textwrap.dedent(
        f"""
        import sys, time
        from scimsync.sync import PostgresStateStore
        store = PostgresStateStore({postgres.conninfo!r}, target="hr", schema={schema!r})
        with store.lock():
            print("locked", flush=True)
            sys.stdin.readline()  # held until killed
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as child:
        try:
            assert child.stdout is not None
            assert "locked" == child.stdout.readline().strip()
            with PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as store:
                with pytest.raises(CycleInProgressError):
                    store._acquire()
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                deadline = time.monotonic() + 30
                while True:
                    try:
                        with store.lock():
                            break
                    except CycleInProgressError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
        finally:
            child.kill()
            child.wait(timeout=30)
    assert -signal.SIGKILL == child.returncode


@pytest.mark.database
def test_a_lost_connection_under_the_lock_is_never_silently_replaced(
    postgres: Postgres,
) -> None:
    """The connection holding the lock is cut: saves in that cycle fail (another worker
    may hold the target now); after the cycle, a new connection is opened and works."""
    import psycopg

    with PostgresStateStore(postgres.conninfo, target="hr", schema=pg_schema()) as store:
        store.save(stored())
        with store.lock():
            backend = store._connection().info.backend_pid
            with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            with pytest.raises(StateError):
                store.save(stored(clean=False))
            with pytest.raises(StateError, match="lock went with it"):
                store.save(stored(clean=False))
        assert stored() == store.load()  # reconnected: nothing of the cut cycle was saved
        with store.lock():
            store.save(stored(clean=False))
        assert stored(clean=False) == store.load()


@pytest.mark.database
def test_a_newer_postgres_schema_is_refused_untouched(postgres: Postgres) -> None:
    """A schema written by a newer scimsync raises StateError saying to upgrade."""
    import psycopg

    schema = pg_schema()
    PostgresStateStore(postgres.conninfo, schema=schema).close()
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f"UPDATE {schema}.meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StateError, match=r"version 99, newer .* upgrade scimsync"):
        PostgresStateStore(postgres.conninfo, schema=schema)


@pytest.mark.database
def test_a_schema_that_is_not_scimsyncs_is_refused(postgres: Postgres) -> None:
    """A schema of the same name holding someone else's tables is never written to."""
    import psycopg

    schema = pg_schema()
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.invoices (id int)")
    with pytest.raises(StateError, match="not a scimsync state schema"):
        PostgresStateStore(postgres.conninfo, schema=schema)


@pytest.mark.database
def test_postgres_migrations_bring_an_older_schema_forward(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema at an older version is migrated forward on open, its data kept."""
    from scimsync.sync import _postgres

    schema = pg_schema()
    with PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as old:
        old.save(stored())
    migrations = (*_postgres.POSTGRES_MIGRATIONS, ("ALTER TABLE {s}.stores ADD COLUMN note text",))
    monkeypatch.setattr(_postgres, "POSTGRES_MIGRATIONS", migrations)
    monkeypatch.setattr(_postgres, "POSTGRES_SCHEMA_VERSION", len(migrations))
    with PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as new:
        assert (len(migrations), stored()) == (new.schema_version, new.load())


@pytest.mark.database
def test_a_worker_killed_mid_save_leaves_the_old_state_in_postgres(postgres: Postgres) -> None:
    """A process killed inside a save's transaction leaves the state before it, whole,
    as SQLite does."""
    schema = pg_schema()
    with PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as store:
        store.save(stored())
    code = textwrap.dedent(
        f"""
        import os
        from scimsync.engine import Ledger, SyncState
        from scimsync.sync import PostgresStateStore, StoredState
        from scimsync.sync import _postgres
        store = PostgresStateStore({postgres.conninfo!r}, target="hr", schema={schema!r})
        original = _postgres._sync_table
        def dying(db, table, *args, **kwargs):
            original(db, table, *args, **kwargs)
            if table.endswith(".owned"):
                os._exit(9)  # killed between two writes of one save
        _postgres._sync_table = dying
        store.save(StoredState(state=SyncState(users=Ledger(links={{"x": "y"}}))))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert 9 == result.returncode, result.stderr
    with PostgresStateStore(postgres.conninfo, target="hr", schema=schema) as store:
        assert stored() == store.load()


@pytest.mark.database
def test_the_postgres_store_never_shows_its_connection_string(postgres: Postgres) -> None:
    """repr and errors name the target and schema, never the password in the conninfo."""
    with PostgresStateStore(postgres.conninfo, target="hr", schema=pg_schema()) as store:
        assert postgres.password not in repr(store)
    wrong = postgres.conninfo.replace(postgres.password, "not-the-password-42")
    with pytest.raises(StateError) as refused:
        PostgresStateStore(wrong, target="hr")
    assert "not-the-password-42" not in str(refused.value)


def test_postgres_names_are_checked_before_connecting() -> None:
    """A schema that is not a plain name, or an empty target, is refused up front."""
    with pytest.raises(StateError, match="schema"):
        PostgresStateStore("host=127.0.0.1 port=1", schema='x"; DROP TABLE y; --')
    with pytest.raises(StateError, match="target"):
        PostgresStateStore("host=127.0.0.1 port=1", target="")


@pytest.mark.database
def test_workers_opening_a_new_schema_at_once_all_find_it_whole(postgres: Postgres) -> None:
    """Four workers making the same new schema at once: one migrates, the others wait
    for it and find it done; each gets its target."""
    from concurrent.futures import ThreadPoolExecutor

    schema = pg_schema()

    def open_one(number: int) -> tuple[int, str]:
        with PostgresStateStore(postgres.conninfo, target=f"t{number}", schema=schema) as store:
            store.save(stored())
            return store.schema_version, store.target

    with ThreadPoolExecutor(4) as pool:
        opened = sorted(pool.map(open_one, range(4)))
    assert [(POSTGRES_SCHEMA_VERSION, f"t{n}") for n in range(4)] == opened


#: A path learned of one value a mapping selects by a filter: quotes, brackets, spaces.
HOME_EMAIL = 'emails[type eq "home"]'


def test_a_filtered_unkept_path_round_trips_through_every_store(store: StateStore) -> None:
    """``emails[type eq "home"]`` (the home email a target drops) is saved and loaded as
    written, next to a whole-attribute path of an older state, through plain JSON and
    each store; ``forget`` takes it by its text, in any case."""
    learned = SyncState(
        users=Ledger(
            unkept={
                HOME_EMAIL: Unkept(how="dropped", seen=2, since=WHEN),
                'phoneNumbers[type eq "work"]': Unkept(how="changed", seen=2, since=WHEN),
                "emails": Unkept(how="changed", seen=2, since=WHEN),
            }
        )
    )
    assert learned == SyncState.from_dict(json.loads(json.dumps(learned.to_dict())))
    store.save(stored(state=learned))
    loaded = store.load().state
    assert loaded == learned
    assert (
        ("emails", HOME_EMAIL, 'phoneNumbers[type eq "work"]'),
        {"emails", 'phoneNumbers[type eq "work"]'},
    ) == (
        loaded.users.ignored_paths(),
        set(loaded.forget("User", ['EMAILS[TYPE EQ "HOME"]']).users.unkept),
    )
