"""``becomingone up``: run one cell on a data dir until the source ends, Ctrl-C or --duration.

Rule: argument handling and presentation only; the cell is :class:`becomingone.runtime.Cell`.
The API (FastAPI, uvicorn) is imported only with ``--serve``: a cell that serves nothing does
not pay for it (the small profile, docs/deployment.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from numpy.typing import NDArray
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.live import Live

from becomingone.api.settings import DEFAULT_HOST, DEFAULT_PORT, api_tls, parse_listen
from becomingone.config import CellConfig, load_config
from becomingone.errors import InputError
from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, run_cell
from becomingone.runtime.logs import setup_logging
from becomingone.runtime.metrics import MetricsServer, cell_registry, serve_metrics
from becomingone.runtime.sources import Source, open_source
from becomingone.runtime.view import json_line, status_table, summary, summary_text

__all__ = ["data_dir_arg", "progress_line", "register", "run_up"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``."""
    p = sub.add_parser("up", help="run a cell (transducers, sync, witnessing, memory)")
    p.add_argument("--config", type=Path, help="becomingone.yaml (default: embedded defaults)")
    p.add_argument("--data-dir", help="data dir (default: memory.path or ~/.becomingone)")
    p.add_argument(
        "--source",
        default="synthetic",
        help="synthetic (default), csv:PATH, stdin (one sample per line), text:PATH, or api "
        "(only samples POSTed to --serve); a file source resumes after the rows this data dir "
        "has already read",
    )
    p.add_argument(
        "--serve",
        nargs="?",
        const=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        metavar="[HOST:]PORT",
        help=f"serve the HTTP + WebSocket API beside the cell (default {DEFAULT_HOST}:"
        f"{DEFAULT_PORT}; beyond loopback only with api.allow_remote); see docs/api.md",
    )
    p.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default host 127.0.0.1; "
        "beyond loopback only with api.allow_remote; port 0: a free one); see "
        "docs/operations.md. With --serve the API serves /metrics too",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object per second")
    p.add_argument(
        "--summary", action="store_true", help="print collapses, dissipations, chain check at exit"
    )
    p.add_argument(
        "--accept-broken-chain",
        action="store_true",
        help="start even if the stored witness chain does not verify; the break is witnessed "
        "(META chain.break_accepted) as the first new record",
    )
    p.set_defaults(handler=run_up)


def data_dir_arg(value: str | None, config: CellConfig) -> Path:
    """The data dir from ``--data-dir`` (an empty value is an error), config, or the default."""
    if value is not None:
        if not value.strip():
            raise InputError("--data-dir", "must not be empty")
        return Path(value).expanduser()
    if config.memory.path is not None:
        return config.memory.path.expanduser()
    return default_data_dir()


def run_up(args: argparse.Namespace) -> int:
    """Handler of ``becomingone up``."""
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration", f"must be > 0 seconds, got {args.duration}")
    config = load_config(args.config)
    listen = (
        None
        if args.serve is None
        else parse_listen(args.serve, allow_remote=config.api.allow_remote)
    )
    metrics = (
        None
        if args.metrics is None
        else parse_listen(args.metrics, allow_remote=config.api.allow_remote, parameter="--metrics")
    )
    if listen is not None:
        api_tls(config.api)  # a bad certificate is refused before the cell starts
    if args.source == "api" and listen is None:
        raise InputError("--source", "api needs --serve (samples arrive as POST /api/v1/signals)")
    data_dir = data_dir_arg(args.data_dir, config)
    setup_logging(
        level=config.logging.level,
        fmt=config.logging.format,
        cell=config.name,
        file=None if config.logging.file is None else data_dir / config.logging.file,
    )
    flush = config.memory.flush_interval
    source = (
        Source("api", config.kairos.channels, _no_batches())
        if args.source == "api"
        else open_source(args.source, dt=config.kairos.step, flush_interval=flush)
    )
    channels = source.channels if source.channels != config.kairos.channels else None
    cell = Cell(config, data_dir, channels=channels, accept_broken_chain=args.accept_broken_chain)
    try:
        if args.source == "synthetic":
            source = open_source(
                "synthetic", dt=config.kairos.step, flush_interval=flush, start=cell.samples
            )
        if source.cursor is not None:
            source.cursor.resume(cell.source_position(source.cursor.key))
            cell.track(source.cursor)
        registry = cell_registry(cell)
        with _metrics_server(registry, metrics):
            _, data = asyncio.run(_serve(cell, source, args, listen, registry))
    finally:
        cell.close()
    if args.summary:
        _print_summary(data, args.json)
    return 0 if data["chain_verified"] else 1


def _print_summary(data: dict[str, Any], as_json: bool) -> None:
    try:
        if as_json:
            print(json.dumps({"summary": data}), flush=True)
        else:
            console = Console()
            console.print()
            summary_text(data, console)
    except BrokenPipeError:
        _drop_stdout()


def _drop_stdout() -> None:
    """The reader went away (``| head``): send the rest of stdout to /dev/null, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def progress_line(status: CellStatus) -> str:
    """One plain line per report when stdout is not a terminal (and not ``--json``)."""
    chain = {None: "unchecked", True: "verified", False: "BROKEN"}[status.chain_ok]
    return (
        f"t={status.t:.2f}s samples={status.samples} master={status.master:.4f} "
        f"emissary={status.emissary:.4f} sync={status.sync:.4f} outcome={status.outcome} "
        f"collapses={status.collapses} dissipations={status.dissipations} "
        f"witnessed={status.witnessed} rejected={status.rejected} chain={chain}"
    )


def _reporter(
    cell: Cell, source_name: str, args: argparse.Namespace, stop: asyncio.Event
) -> tuple[Callable[[CellStatus], None], Live | None]:
    """The report callback for the output mode: JSON lines, plain lines, or the live table."""
    threshold, name = cell.config.kairos.threshold, cell.config.name
    live = None
    if not args.json and sys.stdout.isatty():
        live = Live(console=Console(stderr=False), auto_refresh=False)
    shown: list[CellStatus] = []

    def report(status: CellStatus) -> None:
        if shown and shown[-1] is status:
            return
        shown[:] = [status]
        if live is not None:
            live.update(status_table(name, source_name, status, threshold), refresh=True)
            return
        try:
            if args.json:
                json_line(status, sys.stdout)
            else:
                print(progress_line(status), flush=True)
        except BrokenPipeError:
            _drop_stdout()
            stop.set()

    return report, live


async def _aclose(batches: AsyncIterator[NDArray[Any]]) -> None:
    """Close a source's generator (its files, threads)."""
    close = getattr(batches, "aclose", None)
    if close is not None:
        await close()


async def _no_batches() -> AsyncIterator[NDArray[Any]]:
    """The batches of ``--source api``: none. Its samples all arrive by ``POST /signals``
    through the API's inbox, which ``_api`` runs alone for this source (``merge_sources``
    gets no source stream), so this empty stream is what the source itself yields."""
    return
    yield  # pragma: no cover - makes this an async generator


@contextlib.contextmanager
def _metrics_server(
    registry: CollectorRegistry, listen: tuple[str, int] | None
) -> Iterator[MetricsServer | None]:
    """prometheus_client's server for ``registry`` on ``listen`` (None: no server)."""
    if listen is None:
        yield None
        return
    with serve_metrics(registry, *listen) as server:
        print(f"becomingone up: metrics at {server.url}", file=sys.stderr, flush=True)
        yield server


async def _serve(
    cell: Cell,
    source: Source,
    args: argparse.Namespace,
    listen: tuple[str, int] | None,
    registry: CollectorRegistry,
) -> tuple[CellStatus, dict[str, Any]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    report, live = _reporter(cell, source.name, args, stop)
    try:
        async with _api(cell, source, listen, registry) as batches:
            with live if live is not None else nullcontext():
                final = await run_cell(
                    cell, batches, stop=stop, duration=args.duration, report=report
                )
                report(final)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return final, summary(final, cell.verify_chain(), str(cell.data_dir))


@contextlib.asynccontextmanager
async def _api(
    cell: Cell, source: Source, listen: tuple[str, int] | None, registry: CollectorRegistry
) -> AsyncIterator[AsyncIterator[NDArray[Any]]]:
    """The batches to run: the source's, or (with ``--serve``) those merged with the API's
    inbox while the API serves beside the cell (the ``api`` source: the inbox alone); every
    generator is closed on the way out."""
    if listen is None:
        try:
            yield source.batches
        finally:
            await _aclose(source.batches)
        return
    from becomingone.api import (  # FastAPI loads here, only for a cell that serves
        PREFIX,
        ApiServer,
        ApiSettings,
        EventHub,
        ServedCell,
        SignalInbox,
        TokenStore,
        attach_events,
        create_app,
        merge_sources,
    )

    inbox = SignalInbox(cell.channels)
    hub = EventHub()
    attach_events(cell, hub)
    served = ServedCell.live(cell, inbox)
    tokens = TokenStore(cell.data_dir)
    settings = ApiSettings.from_config(cell.config.api)
    app = create_app(served, settings, tokens=tokens, hub=hub, registry=registry)
    server = ApiServer(app, *listen, tls=api_tls(cell.config.api))
    try:
        await server.start()
        print(
            f"becomingone up: API at {server.url}{PREFIX} (docs {server.url}{PREFIX}/docs)\n"
            f"becomingone up: dashboard at {server.url}/",
            file=sys.stderr,
            flush=True,
        )
        merged = merge_sources(None if source.name == "api" else source.batches, inbox)
        try:
            yield merged
        finally:
            await _aclose(merged)
    finally:
        await _aclose(source.batches)
        await server.aclose()
        tokens.close()
        served.close()
