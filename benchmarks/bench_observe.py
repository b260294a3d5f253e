"""What metrics and traces cost: the no-change cycle, uninstrumented and instrumented, same run.

Against ScimTestServer in a subprocess with ``--latency`` seconds per answer (as
``bench_sync.py``), ``--users`` users are synced once; then the no-change cycle
forced to read the whole target (the listing GETs, planning, nothing written) is
timed ``--rounds`` times for each variant, the variants taking turns within each
round so that drift on a shared machine falls on all of them alike:

- off: no observer (the default), twice, as A and A': how far two identical runs
  differ is the noise floor, below which a difference is not measurable;
- metrics: :func:`scimsync.metrics.instrument` on a fresh registry;
- metrics + traces: that, and :func:`scimsync.tracing.instrument_tracing` with the
  OpenTelemetry SDK recording every span (a simple processor into memory).

Prints the median wall time of each and its difference from the off median, and
the same for the process's CPU time (what instrumentation adds is CPU work; the
wall time also carries the waits on the server, and on a shared machine the other
processes' share); then the cost of the observers' hooks alone, per HTTP request
and per cycle, without I/O, and what they add up to for one no-change cycle (its
requests, and one cycle), as a share of the off median: the overhead free of the
noise that end-to-end times carry on a busy machine.

    python benchmarks/bench_observe.py [--users 10000] [--latency 0.005] [--rounds 15]
    python benchmarks/bench_observe.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import machine, print_rows
from bench_sync import MAPPING, records, server
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from scimsync import Provisioner, __version__
from scimsync.client import AsyncScimClient, RequestDetails
from scimsync.metrics import Metrics, instrument
from scimsync.sources import MemorySource
from scimsync.sync import ApplyPolicy, Observer, SqliteStateStore, SyncReport
from scimsync.targets import ScimTarget
from scimsync.tracing import Tracing, instrument_tracing

if TYPE_CHECKING:
    from collections.abc import Callable

VARIANTS = ("off", "off (again)", "metrics", "metrics + traces")


def provisioner(url: str, users: int, state: SqliteStateStore, variant: str) -> Provisioner:
    """A provisioner of its own client, instrumented as ``variant`` says."""
    client = AsyncScimClient(url, max_concurrency=16)
    made = Provisioner(
        MemorySource(users=records(users)),
        MAPPING,
        ScimTarget(client, page_size=1000),
        state=state,
        apply_policy=ApplyPolicy(concurrency=16),
    )
    if variant.startswith("metrics"):
        instrument(made, registry=CollectorRegistry(), target="bench")
    if variant == "metrics + traces":
        tracer_provider = TracerProvider()
        exporter = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrument_tracing(made, tracer_provider=tracer_provider)
        made.on_report = lambda report: exporter.clear()  # keep memory flat
    return made


def cycles(url: str, users: int, rounds: int) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """(wall, CPU) seconds of each no-change full cycle, per variant; and the HTTP
    requests of one."""
    times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in VARIANTS}
    requests = 0
    with tempfile.TemporaryDirectory() as folder:
        state = SqliteStateStore(Path(folder) / "state.db")
        runners = {v: provisioner(url, users, state, v) for v in VARIANTS}
        first = runners["off"].run_once()
        if not first.ok:
            raise SystemExit(f"the initial sync did not succeed:\n{first}")
        for variant in VARIANTS:  # warm each client's connections and caches
            runners[variant].run_once(full=True)
        for round_number in range(rounds):
            order = VARIANTS[round_number % 4 :] + VARIANTS[: round_number % 4]
            for variant in order:
                start, cpu = time.perf_counter(), time.process_time()
                report = runners[variant].run_once(full=True)
                times[variant].append((time.perf_counter() - start, time.process_time() - cpu))
                if report.results:
                    raise SystemExit(f"the no-change cycle planned something:\n{report}")
                requests = report.requests
        for runner in runners.values():
            runner.close()
        state.close()
    return times, requests


def hook_costs(repeat: int) -> dict[str, float]:
    """Microseconds per call of each observer's request hook, and per cycle's
    observer calls (a cycle, four phases, a report), without I/O."""
    metrics = Metrics.on(CollectorRegistry()).for_target("bench")
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tracing = Tracing(tracer_provider.get_tracer("scimsync", __version__), target="bench")
    details = RequestDetails(
        method="GET",
        url="http://127.0.0.1:1/scim/v2/Users",
        attempt=1,
        status=200,
        error=None,
        elapsed_seconds=0.005,
    )
    report = SyncReport(
        cycle_id="bench",
        mode="full",
        started_at=datetime.now(timezone.utc),
        finished_at=datetime.now(timezone.utc),
        duration=0.5,
    )

    def per_call(call: Callable[[], Any]) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        return (time.perf_counter() - start) / repeat * 1e6

    def one_cycle(observer: Observer) -> Callable[[], None]:
        def run() -> None:
            with observer.cycle("bench", "run"):
                for phase in ("read_source", "list_target", "plan", "apply"):
                    with observer.phase(phase):  # type: ignore[arg-type]
                        pass
                observer.report(report)

        return run

    return {
        "metrics: per HTTP request (µs)": per_call(lambda: metrics.on_request(details)),
        "traces: per HTTP request (µs)": per_call(lambda: tracing.on_request(details)),
        "metrics: per cycle, without requests (µs)": per_call(one_cycle(metrics)),
        "traces: per cycle, without requests (µs)": per_call(one_cycle(tracing)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="500 users, 3 rounds")
    args = parser.parse_args()
    users, rounds = (500, 3) if args.quick else (args.users, args.rounds)

    print(machine())
    print(
        f"{users:,} users, ScimTestServer in a subprocess, {args.latency * 1000:g} ms per "
        f"answer; the no-change full cycle, median of {rounds} rounds per variant"
    )
    with server(args.latency) as url:
        times, requests = cycles(url, users, rounds)
    rows = []
    for index, what in ((0, "wall time"), (1, "CPU time")):
        medians = {v: statistics.median(t[index] for t in times[v]) for v in VARIANTS}
        off = medians["off"]
        rows.extend(
            (
                f"no-change cycle (full), {variant}: {what} (s)",
                f"{medians[variant]:.3f}",
                f"{off:.3f} (off)" if variant != "off" else "",
                f"{(medians[variant] / off - 1) * 100:+.1f}%" if variant != "off" else "",
            )
            for variant in VARIANTS
        )
    costs = hook_costs(2000 if args.quick else 20_000)
    rows.extend((measure, f"{value:.1f}", "", "") for measure, value in costs.items())
    off_wall = statistics.median(t[0] for t in times["off"])
    for name in ("metrics", "traces"):
        spent = requests * costs[f"{name}: per HTTP request (µs)"]
        spent += costs[f"{name}: per cycle, without requests (µs)"]
        rows.append(
            (
                f"{name}: hooks of one no-change cycle, {requests} requests (µs)",
                f"{spent:.0f}",
                f"{off_wall * 1e6:,.0f} (off, wall)",
                f"+{spent / (off_wall * 1e6) * 100:.3f}%",
            )
        )
    print_rows(f"Metrics and traces on the no-change cycle of {users:,} users", rows)


if __name__ == "__main__":
    main()
