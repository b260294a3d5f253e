"""Run every benchmark and print one table: each figure next to its peer's, same run.

    python benchmarks/run.py                 # full sizes (minutes)
    python benchmarks/run.py --quick         # small sizes, to check the scripts work
    python benchmarks/run.py --only models,engine
    python benchmarks/run.py --markdown docs/benchmarks.md

Each ``bench_*.py`` script runs in its own process (so one's caches and memory do not
colour another's figures) and prints its tables with ``_common.print_rows``; this
script reads those tables back and joins them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import machine

HERE = Path(__file__).parent

# Smaller sizes for --quick: enough to exercise every code path in seconds.
QUICK_ARGS: dict[str, list[str]] = {
    "models": ["--users", "2000"],
    "filter_patch": ["--users", "2000", "--repeat", "1"],
    "server": ["--requests", "200"],
    "client": ["--users", "100"],
    "sources": ["--rows", "20000", "--map-rows", "2000", "--memory-rows", "2000"],
    "engine": ["--sizes", "2000,20000"],
    "sync": ["--quick"],
    "targets": ["--users", "100"],
    "chaos": ["--users", "200", "--seeds", "1"],
    "directory": ["--entries", "5000", "--changes", "20"],
    "sql": ["--rows", "50000", "--changes", "50"],
    "observe": ["--quick"],
    "fanout": ["--targets", "3", "--users", "200"],
}

Row = tuple[str, str, str, str, str]


def parse_tables(output: str, benchmark: str) -> list[Row]:
    """Read back the rows ``print_rows`` printed: (benchmark: title, measure, ours, peer, ratio)."""
    rows: list[Row] = []
    title = ""
    in_table = False
    for line in output.splitlines():
        if line.startswith("## "):
            title, in_table = line[3:].strip(), False
            continue
        if "|" not in line:
            in_table = False
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if cells[0] == "measure":
            in_table = True
            continue
        if in_table and not set(line) <= set("-| "):
            cells += [""] * (4 - len(cells))
            rows.append((f"{benchmark}: {title}", *cells[:4]))  # type: ignore[arg-type]
    return rows


def run_one(name: str, quick: bool) -> tuple[list[Row], str, float]:
    """Run ``bench_<name>.py``; return its rows, its first line and its wall time."""
    command = [sys.executable, str(HERE / f"bench_{name}.py")]
    if quick:
        command += QUICK_ARGS.get(name, [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench_{name}.py failed:\n{done.stdout}\n{done.stderr}")
    first = next((line for line in done.stdout.splitlines() if line.strip()), "")
    return parse_tables(done.stdout, name), first, elapsed


def render(rows: list[Row]) -> str:
    """One Markdown table of every row."""
    header: Row = ("benchmark", "measure", "scimsync", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]

    def line(cells: Row) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", help="comma-separated names, e.g. models,engine")
    parser.add_argument("--markdown", type=Path, help="also write the results page here")
    args = parser.parse_args()

    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted]
    rows: list[Row] = []
    notes: list[str] = []
    for name in names:
        print(f"running bench_{name}.py ...", file=sys.stderr, flush=True)
        found, first, elapsed = run_one(name, args.quick)
        rows += found
        notes.append(f"- `bench_{name}.py` ({elapsed:.0f} s): {first.lstrip('# ')}")
    table = render(rows)
    print(f"# scimsync benchmarks\n\n{machine()}\n\n{table}\n")
    print("\n".join(notes))
    if args.markdown:
        args.markdown.write_text(
            "# Benchmarks\n\n"
            "Figures from `python benchmarks/run.py` (also `nox -s bench`). Every peer\n"
            "figure was measured in the same run, on the same machine, as the scimsync\n"
            "figure next to it; ratios are only meaningful within one run.\n\n"
            f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}.\n\n"
            + (
                "These are the *quick* sizes (`--quick`), a smoke run: the full sizes of\n"
                "each script give the figures quoted elsewhere.\n\n"
                if args.quick
                else ""
            )
            + f"{table}\n\n"
            + "\n".join(notes)
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
