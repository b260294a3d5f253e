"""Helpers shared by the benchmark scripts: timing, peak memory, the result table."""

from __future__ import annotations

import gc
import os
import platform
import time
import tracemalloc
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Run ``fn`` ``repeat`` times; return the best wall time in seconds and a result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``fn`` runs (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return peak


def machine() -> str:
    """One line describing the machine the figures come from."""
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


def print_rows(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Print a table of (measure, scimsync, peer, ratio) rows."""
    header = ("measure", "scimsync", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"\n## {title}\n")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
