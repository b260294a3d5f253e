"""``scimsync run``: cycles every interval until stopped, for a service manager or a container.

Each cycle's report goes to the logs (and, with ``--json``, one JSON report per line
on stdout); ``--metrics-port`` serves the Prometheus metrics of :mod:`scimsync.metrics`
while it runs. SIGTERM or Ctrl-C stops it cleanly: a running cycle starts no new
write, finishes those in flight and saves the state; a second Ctrl-C abandons it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from . import EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from ..sync import Provisioner, SyncReport
    from ._config import Config
    from ._console import Console

__all__ = ["run_command"]

# The command's own lines go through the logs, so that --log-format json keeps one
# object per line on stderr.
_log = logging.getLogger("scimsync.cli")


def run_command(args: argparse.Namespace, console: Console) -> int:
    """``scimsync run``: cycles every ``--every`` until stopped (or ``--cycles`` ran);
    the exit code is the last cycle's (0 when none ran)."""
    from ._config import load_config

    config = load_config(args.config)
    reports: list[SyncReport] = []

    def reported(report: SyncReport) -> None:
        reports.append(report)
        console.json(report.to_dict(), one_line=True)

    with _metrics_server(args) as registry:
        asyncio.run(_run(config, args, console, registry, reported))
    return reports[-1].exit_code if reports else EXIT_OK


async def _run(
    config: Config, args: argparse.Namespace, console: Console, registry: Any, reported: Any
) -> None:
    from ._runtime import connect

    async with connect(config) as runtime:
        provisioner = await runtime.provisioner(create_state=True, new_state=args.new_state)
        provisioner.on_report = reported
        if registry is not None:
            from ..metrics import instrument

            instrument(provisioner, registry=registry)
        with _stop_on_signals(provisioner):
            await provisioner.arun_forever(args.every, max_cycles=args.cycles)


@contextlib.contextmanager
def _metrics_server(args: argparse.Namespace) -> Iterator[Any]:
    """With ``--metrics-port``: a registry (scimsync's metrics, and the process's) served
    while the command runs; else None."""
    if args.metrics_port is None:
        yield None
        return
    try:
        import prometheus_client

        from ..metrics import serve_metrics
    except ImportError:
        raise ConfigurationError(
            "--metrics-port needs prometheus-client: pip install 'scimsync[prometheus]'"
        ) from None
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    with serve_metrics(
        args.metrics_port, address=args.metrics_address, registry=registry
    ) as server:
        where = f"port {server.port} on every interface" if server.every_interface else ""
        _log.info(
            "serving metrics at %s%s", server.url, f" (listening on {where})" if where else ""
        )
        yield registry


@contextlib.contextmanager
def _stop_on_signals(provisioner: Provisioner) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C stop the loop cleanly; a second Ctrl-C abandons the
    cycle's writes in flight."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stops = 0

    def stop() -> None:
        nonlocal stops
        stops += 1
        if stops == 1:
            provisioner.stop()
            _log.warning("stopping: no new write, those in flight finish")
        elif task is not None:
            task.cancel()

    added = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            continue
        added.append(number)
    try:
        yield
    finally:
        for number in added:
            loop.remove_signal_handler(number)
