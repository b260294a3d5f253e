"""Read a directory of many entries through LdapSource, next to ldapsearch on the same one.

A throwaway OpenLDAP ``slapd`` is started on 127.0.0.1 (as the tests do: see
``tests/_directory.py``) and loaded with ``--entries`` people (eight attributes each,
two of them multi-valued). Then, in the same run:

- ``ldapsearch`` (the OpenLDAP command-line client, written in C) reads them all with
  the same filter, attributes and page size (``-E pr=<size>/noprompt``), its output
  thrown away: the anchor;
- ``LdapSource`` reads them all into records, paged (each read ``--repeat`` times,
  alternately, the best time kept); then the peak of Python's
  allocations (tracemalloc) while it reads a tenth of them, and all of them: the two
  are alike, memory stays flat (a page at a time, plus one DN and key per user when
  groups are read, to name their members);
- a delta read (``delta="modifyTimestamp"``) after ``--changes`` entries were modified,
  alone and merged into the stored snapshot of the full read (what an incremental
  cycle of the Provisioner reads), next to the full read it replaces.

    python benchmarks/bench_directory.py [--entries 100000] [--page-size 500]
                                         [--changes 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, peak_memory, print_rows

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from _directory import (  # noqa: E402 - the tests' helpers, found above
    ADMIN_DN,
    ADMIN_PASSWORD,
    READER_DN,
    READER_PASSWORD,
    SUFFIX,
    find_slapd,
    ldif,
    running_slapd,
)
from scimsync.sources import LdapSource, Record  # noqa: E402
from scimsync.sync import MemoryStateStore  # noqa: E402
from scimsync.sync._delta import source_for_cycle  # noqa: E402

ATTRIBUTES = ["uid", "cn", "givenName", "sn", "mail", "title", "employeeNumber", "ou"]
FILTER = "(objectClass=inetOrgPerson)"


def entries(count: int) -> str:
    """``count`` people, each modified one second after the one before (in 2020)."""
    parts = []
    for i in range(count):
        stamp = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(1577836800 + i))
        parts.append(
            ldif(
                f"uid=user{i},ou=People,{SUFFIX}",
                ("objectClass", "inetOrgPerson"),
                ("uid", f"user{i}"),
                ("cn", f"User {i}"),
                ("givenName", "User"),
                ("sn", f"Number {i}"),
                ("mail", f"user{i}@example.com"),
                ("mail", f"u{i}@corp.example.com"),
                ("title", "Engineer"),
                ("employeeNumber", str(100000 + i)),
                ("ou", "Engineering"),
                ("ou", "Staff"),
                ("modifyTimestamp", stamp),
            )
        )
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="full reads of each, best kept")
    args = parser.parse_args()
    count, page = args.entries, args.page_size
    install = find_slapd()
    if isinstance(install, str):
        print(f"# bench_directory: skipped: {install}")
        return
    if install.ldapsearch is None:
        print("# bench_directory: skipped: ldapsearch (ldap-utils) is not installed")
        return
    with tempfile.TemporaryDirectory(prefix="bench-slapd-") as temp:
        loading = time.perf_counter()
        with running_slapd(install, entries(count), tls=False, directory=Path(temp)) as server:
            loaded = time.perf_counter() - loading
            source = LdapSource(
                server.url,
                base_dn=f"ou=People,{SUFFIX}",
                bind_dn=READER_DN,
                password=READER_PASSWORD,
                user_filter=FILTER,
                group_filter=None,
                attributes=ATTRIBUTES,
                page_size=page,
                delta="modifyTimestamp",
            )

            def ldapsearch(search_filter: str = FILTER) -> int:
                command = [
                    *(install.ldapsearch or "ldapsearch", "-x", "-LLL", "-H", server.url),
                    *("-D", READER_DN, "-w", READER_PASSWORD, "-b", f"ou=People,{SUFFIX}"),
                    *("-E", f"pr={page}/noprompt", search_filter, *ATTRIBUTES, "entryUUID"),
                ]
                done = subprocess.run(
                    command,
                    stdout=subprocess.PIPE,
                    check=True,
                )
                return done.stdout.count(b"\ndn: ") + done.stdout.startswith(b"dn: ")

            # Best of three each, alternating (the machine may be shared).
            t_peer = t_ours = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                n_peer = ldapsearch()
                t_peer = min(t_peer, time.perf_counter() - start)
                gc.collect()
                start = time.perf_counter()
                n_ours = sum(1 for item in source.read() if isinstance(item, Record))
                t_ours = min(t_ours, time.perf_counter() - start)
                assert n_ours == n_peer == count, (n_ours, n_peer, count)
            tenth = max(1, count // 10)
            traced_tenth = peak_memory(
                lambda: sum(1 for _ in itertools.islice(source.read(), tenth))
            )
            traced_all = peak_memory(lambda: sum(1 for _ in source.read()))

            # The snapshot an incremental cycle merges into: the full read's records.
            store = MemoryStateStore()
            view = source_for_cycle(source, store, full=True, clock=lambda: None)  # type: ignore[arg-type,return-value]
            assert sum(1 for _ in view.read()) == count  # type: ignore[union-attr]
            snapshot = store.load_snapshot(source.source_id)
            assert snapshot is not None

            import ldap3

            admin = ldap3.Connection(
                ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE),
                user=ADMIN_DN,
                password=ADMIN_PASSWORD,
                auto_bind=True,
            )
            step = max(1, count // args.changes)
            for i in range(0, step * args.changes, step):
                admin.modify(
                    f"uid=user{i},ou=People,{SUFFIX}", {"title": [(ldap3.MODIFY_REPLACE, ["Lead"])]}
                )
            admin.unbind()

            start = time.perf_counter()
            change = source.read_changes(snapshot.watermark, snapshot.records)
            n_delta = sum(1 for item in change if isinstance(item, Record))
            t_delta = time.perf_counter() - start
            # The server's share: ldapsearch with the same filter.
            start = time.perf_counter()
            n_delta_peer = ldapsearch(f"(&{FILTER}(modifyTimestamp>={snapshot.watermark}))")
            t_delta_peer = time.perf_counter() - start
            assert n_delta == n_delta_peer, (n_delta, n_delta_peer)
            view = source_for_cycle(source, store, full=False, clock=lambda: None)  # type: ignore[arg-type,return-value]
            start = time.perf_counter()
            n_merged = sum(1 for _ in view.read())  # type: ignore[union-attr]
            t_merged = time.perf_counter() - start
            assert n_merged == count, (n_merged, count)

    print(
        f"# bench_directory: {count} entries in slapd (loaded in {loaded:.0f} s), "
        f"page size {page}, best of {args.repeat} full reads, {args.changes} changed; {machine()}"
    )
    print_rows(
        "LdapSource: a paged read of the directory (peer: ldapsearch, same filter and page size)",
        [
            (
                f"read {count} entries (s)",
                f"{t_ours:.2f}",
                f"{t_peer:.2f}",
                f"{t_ours / t_peer:.2f}x the peer's time",
            ),
            ("entries per second", f"{count / t_ours:,.0f}", f"{count / t_peer:,.0f}", ""),
            (
                f"peak traced memory, reading {tenth} / {count} entries (MB)",
                f"{traced_tenth / 1e6:.1f} / {traced_all / 1e6:.1f}",
                "",
                "flat" if traced_all < 2 * traced_tenth else "grows",
            ),
        ],
    )
    print_rows(
        "Delta reads: only what changed (peer: the full read they replace)",
        [
            (
                f"delta read, {args.changes} changed (s)",
                f"{t_delta:.3f}",
                f"{t_ours:.2f}",
                f"{t_ours / t_delta:.0f}x faster; {n_delta} entries read",
            ),
            (
                "the same delta search by ldapsearch (s)",
                f"{t_delta:.3f}",
                f"{t_delta_peer:.3f}",
                "the server's share of the delta read",
            ),
            (
                f"delta merged into the {count}-record snapshot (s)",
                f"{t_merged:.3f}",
                f"{t_ours:.2f}",
                f"{t_ours / t_merged:.0f}x faster",
            ),
        ],
    )


if __name__ == "__main__":
    main()
