"""``becomingone up``: run one cell on a data dir until the source ends, Ctrl-C or --duration.

Rule: argument handling and presentation only; the cell is :class:`becomingone.runtime.Cell`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from becomingone.config import CellConfig, load_config
from becomingone.errors import InputError
from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, run_cell
from becomingone.runtime.sources import open_source
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
        help="synthetic (default), csv:PATH, stdin (one sample per line) or text:PATH; "
        "a file source resumes after the rows this data dir has already read",
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


def _logging(config: CellConfig, data_dir: Path) -> None:
    handler: logging.Handler
    if config.logging.file:
        data_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(data_dir / config.logging.file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("becomingone")
    root.handlers[:] = [handler]
    root.setLevel(config.logging.level)


def run_up(args: argparse.Namespace) -> int:
    """Handler of ``becomingone up``."""
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration", f"must be > 0 seconds, got {args.duration}")
    config = load_config(args.config)
    data_dir = data_dir_arg(args.data_dir, config)
    _logging(config, data_dir)
    flush = config.memory.flush_interval
    source = open_source(args.source, dt=config.kairos.step, flush_interval=flush)
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
        _, data = asyncio.run(_serve(cell, source.name, source.batches, args))
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


async def _serve(
    cell: Cell, source_name: str, batches: Any, args: argparse.Namespace
) -> tuple[CellStatus, dict[str, Any]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    report, live = _reporter(cell, source_name, args, stop)
    try:
        with live if live is not None else nullcontext():
            final = await run_cell(cell, batches, stop=stop, duration=args.duration, report=report)
            report(final)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await batches.aclose()
    return final, summary(final, cell.verify_chain(), str(cell.data_dir))
