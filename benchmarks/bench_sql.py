"""Stream a large table through SqlSource, next to a bare DB-API loop over the same query.

An SQLite file of ``--rows`` people (six columns, one of them split into a list) is
written first; then, in the same run, the same query is read by a hand-written
``fetchmany`` loop that only counts tuples (the floor), and by ``SqlSource`` (dicts,
value normalisation, the split, record objects), with the growth of the process's
peak RSS during each read: memory stays flat, rows are never accumulated. A delta
read (``watermark``) after ``--changes`` rows were updated shows what an incremental
cycle reads instead. With ``--postgres``, the same figures from a throwaway PostgreSQL
(as the tests start it), read through psycopg's server-side cursor.

    python benchmarks/bench_sql.py [--rows 1000000] [--changes 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, print_rows

from scimsync.sources import Record, SqlSource

HERE = Path(__file__).parent
QUERY = "SELECT employee_id, email, first_name, last_name, teams, version FROM staff"


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(fn: Any) -> tuple[float, int, int]:
    """Wall time, result and peak-RSS growth of one run of ``fn``."""
    gc.collect()
    before = max_rss()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result, max_rss() - before


def write(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE staff (employee_id TEXT PRIMARY KEY, email TEXT, first_name TEXT,"
            " last_name TEXT, teams TEXT, version INTEGER)"
        )
        db.executemany(
            "INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?)",
            (
                (f"E{i}", f"user{i}@example.com", "User", f"Number {i}", "eng;ops", i)
                for i in range(rows)
            ),
        )
    db.close()


def figures(
    label: str, connect: Any, rows: int, changes: int, update: Any
) -> list[tuple[str, str, str, str]]:
    source = SqlSource(
        connect,
        QUERY,
        key="employee_id",
        multi_valued={"teams": ";"},
        watermark="version",
        batch_size=1000,
    )

    def bare() -> int:
        connection = connect()
        cursor = (
            connection.cursor(name="bench")
            if type(connection).__module__.startswith("psycopg")
            else connection.cursor()
        )
        cursor.execute(QUERY)
        count = 0
        while batch := cursor.fetchmany(1000):
            count += len(batch)
        connection.close()
        return count

    def ours() -> tuple[int, str | None]:
        read = source.read_changes(None)
        return sum(1 for item in read if isinstance(item, Record)), read.watermark

    t_bare, n_bare, grew_bare = measured(bare)
    t_ours, (n_ours, watermark), grew_ours = measured(ours)
    assert n_bare == n_ours == rows, (n_bare, n_ours, rows)
    update(changes, rows)
    start = time.perf_counter()
    n_delta = sum(1 for item in source.read_changes(watermark) if isinstance(item, Record))
    t_delta = time.perf_counter() - start
    return [
        (
            f"{label}: read {rows} rows (s)",
            f"{t_ours:.2f}",
            f"{t_bare:.2f}",
            f"{t_ours / t_bare:.2f}x the bare loop's time",
        ),
        (f"{label}: rows per second", f"{rows / t_ours:,.0f}", f"{rows / t_bare:,.0f}", ""),
        (
            f"{label}: peak RSS growth (MB)",
            f"{grew_ours / 1e6:.1f}",
            f"{grew_bare / 1e6:.1f}",
            f"{grew_ours / rows:.1f} bytes per row",
        ),
        (
            f"{label}: delta read, {changes} changed (s)",
            f"{t_delta:.3f}",
            f"{t_ours:.2f}",
            f"{t_ours / t_delta:.0f}x faster than the full read; {n_delta} rows",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "hr.db"
        write(path, args.rows)

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(path)

        def update(changes: int, total: int) -> None:
            with sqlite3.connect(path) as db:
                db.execute(
                    "UPDATE staff SET version = version + ? WHERE version % ? = 0",
                    (total, max(1, total // changes)),
                )
            db.close()

        rows += figures("SQLite", connect, args.rows, args.changes, update)
    if args.postgres:
        rows += postgres_figures(args.rows, args.changes)
    print(f"# bench_sql: {args.rows} rows; {machine()}")
    print_rows("SqlSource: stream a query (peer: a bare fetchmany loop, same query)", rows)


def postgres_figures(count: int, changes: int) -> list[tuple[str, str, str, str]]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    import psycopg

    from _postgres import running_postgres

    with running_postgres() as server:
        with psycopg.connect(server.conninfo, autocommit=True) as db:
            db.execute(
                "CREATE TABLE staff (employee_id text PRIMARY KEY, email text, first_name text,"
                " last_name text, teams text, version bigint)"
            )
            db.execute(
                "INSERT INTO staff SELECT 'E' || i, 'user' || i || '@example.com', 'User',"
                " 'Number ' || i, 'eng;ops', i FROM generate_series(0, %s - 1) AS i",
                (count,),
            )

        def update(changes: int, total: int) -> None:
            with psycopg.connect(server.conninfo, autocommit=True) as db:
                db.execute(
                    "UPDATE staff SET version = version + %s WHERE version %% %s = 0",
                    (total, max(1, total // changes)),
                )

        return figures(
            "PostgreSQL", lambda: psycopg.connect(server.conninfo), count, changes, update
        )


if __name__ == "__main__":
    main()
