"""Stream a large CSV through CsvSource, and map records, next to the stdlib doing the same.

CSV: the file is written to a temporary directory first (8 columns, a multi-valued
``groups`` column, quoted fields, non-ASCII names), then read three ways in the same
run: ``csv.reader`` alone (the floor: no dicts, no checks), ``csv.DictReader`` plus
the split of ``groups`` (what a hand-written reader does), and ``CsvSource`` (dicts,
the split, record objects, per-row checks for field counts, blank rows and bad bytes,
line numbers). Memory: the growth of the process' peak RSS during the big read, and
the peak traced allocation (tracemalloc) while reading the first ``--memory-rows``
rows; both stay flat whatever the number of rows, since rows are never accumulated.

Mapping: ``Mapping.map`` over the first records (copies, lower, template, boolean,
an enterprise attribute, membership), next to a hand-written loop building the same
users with ``from_scim``.

    python benchmarks/bench_sources.py [--rows 1000000] [--map-rows 100000]
                                       [--memory-rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from _common import machine, peak_memory, print_rows, timed

from scimsync import User, from_scim
from scimsync.mapping import Mapping, boolean, lower, template
from scimsync.sources import CsvSource, Record

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HEADER = [
    "employee_id",
    "email",
    "first_name",
    "last_name",
    "department",
    "status",
    "groups",
    "note",
]
FIRST = ["Ann", "Zoë", "Łukasz", "太郎", "Bob", "Renée"]
LAST = ["Lee", "Ångström", "Smith, Jr.", "山田", "O'Neil", "Müller"]


def write_file(path: Path, rows: int) -> None:
    """Write ``rows`` people, streaming (the writer never holds the table)."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"E{i:07d}",
                    f"User.{i}@Example.com",
                    FIRST[i % len(FIRST)],
                    LAST[i % len(LAST)],
                    "Engineering" if i % 3 else "Sales",
                    "active" if i % 10 else "leave",
                    "eng; all" if i % 2 else "all",
                    'says "hi", twice' if i % 7 == 0 else "",
                ]
            )


def max_rss() -> int:
    """The process' peak resident set size so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_growth(fn: Any) -> tuple[float, int, int]:
    """Run ``fn`` once; return its wall time, its result and the growth of peak RSS."""
    gc.collect()
    before = max_rss()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    return elapsed, result, max_rss() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--map-rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    args = parser.parse_args()
    rows = args.rows

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "people.csv"
        write_file(path, rows)
        size = os.path.getsize(path)

        def read_ours() -> int:
            source = CsvSource(path, key="employee_id", multi_valued={"groups": ";"})
            return sum(1 for item in source.read() if isinstance(item, Record))

        def read_dictreader() -> int:
            count = 0
            with path.open(encoding="utf-8-sig", newline="") as stream:
                for row in csv.DictReader(stream):
                    row["groups"] = [g.strip() for g in row["groups"].split(";") if g.strip()]
                    count += 1
            return count

        def read_reader() -> int:
            with path.open(encoding="utf-8-sig", newline="") as stream:
                return sum(1 for _ in csv.reader(stream)) - 1

        # Memory first, on a fresh process high-water mark: ours, then the peer.
        t_ours, n_ours, grow_ours = rss_growth(read_ours)
        t_dict, n_dict, grow_dict = rss_growth(read_dictreader)
        t_reader, n_reader, _ = rss_growth(read_reader)
        assert n_ours == n_dict == n_reader == rows, (n_ours, n_dict, n_reader)

        small = Path(directory) / "small.csv"
        write_file(small, args.memory_rows)
        small_size = os.path.getsize(small)

        def read_small_ours() -> int:
            source = CsvSource(small, key="employee_id", multi_valued={"groups": ";"})
            return sum(1 for _ in source.read())

        def read_small_dictreader() -> int:
            with small.open(encoding="utf-8-sig", newline="") as stream:
                return sum(1 for _ in csv.DictReader(stream))

        traced_ours = peak_memory(read_small_ours)
        traced_dict = peak_memory(read_small_dictreader)

        mapping = Mapping(
            users={
                "userName": lower("email"),
                "name.givenName": "first_name",
                "name.familyName": "last_name",
                "displayName": template("{first_name} {last_name}"),
                f"{ENTERPRISE}:department": "department",
                "active": boolean("status", true={"active"}, false={"leave"}),
            },
            member_of="groups",
        )
        source = CsvSource(path, key="employee_id", multi_valued={"groups": ";"})
        records = list(islice(source.read(), args.map_rows))
        assert all(isinstance(r, Record) for r in records)

        def map_ours() -> int:
            return len(mapping.map(records).desired.users)

        def map_by_hand() -> int:
            users = []
            for record in records:
                assert isinstance(record, Record)
                a = record.attributes
                users.append(
                    from_scim(
                        {
                            "externalId": record.key,
                            "userName": a["email"].lower(),
                            "name": {"givenName": a["first_name"], "familyName": a["last_name"]},
                            "displayName": f"{a['first_name']} {a['last_name']}",
                            ENTERPRISE: {"department": a["department"]},
                            "active": a["status"] == "active",
                        },
                        User,
                    )
                )
            return len(users)

        t_map_ours, n_mapped = timed(map_ours, repeat=2)
        t_map_hand, n_hand = timed(map_by_hand, repeat=2)
        assert n_mapped == n_hand == len(records)

    mb = 1e6
    m = len(records)
    print(f"# bench_sources: {rows} CSV rows ({size / mb:.0f} MB), {m} mapped; {machine()}")
    print_rows(
        "CsvSource: stream a CSV (peer: the standard library's csv module)",
        [
            (
                f"read {rows} rows, peer csv.DictReader + split (s)",
                f"{t_ours:.2f}",
                f"{t_dict:.2f}",
                f"{t_ours / t_dict:.2f}x the peer's time",
            ),
            (
                "rows per second, peer csv.DictReader",
                f"{rows / t_ours:,.0f}",
                f"{rows / t_dict:,.0f}",
                "",
            ),
            (
                "rows per second, peer bare csv.reader",
                f"{rows / t_ours:,.0f}",
                f"{rows / t_reader:,.0f}",
                f"{t_ours / t_reader:.2f}x the peer's time",
            ),
            (
                f"peak RSS growth reading {rows} rows (MB; file {size / mb:.0f} MB)",
                f"{grow_ours / mb:.1f}",
                f"{grow_dict / mb:.1f}",
                "",
            ),
            (
                f"peak traced memory reading {args.memory_rows} rows"
                f" (KB; file {small_size / 1e3:,.0f} KB)",
                f"{traced_ours / 1e3:.0f}",
                f"{traced_dict / 1e3:.0f}",
                "",
            ),
        ],
    )
    print_rows(
        "Mapping.map (peer: a hand-written loop with from_scim)",
        [
            (
                f"map {m} records to desired users (s)",
                f"{t_map_ours:.2f}",
                f"{t_map_hand:.2f}",
                f"{t_map_ours / t_map_hand:.2f}x the peer's time",
            ),
            ("per record (µs)", f"{t_map_ours * 1e6 / m:.1f}", f"{t_map_hand * 1e6 / m:.1f}", ""),
        ],
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
