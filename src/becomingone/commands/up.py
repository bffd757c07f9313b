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
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from becomingone.config import CellConfig, load_config
from becomingone.runtime.cell import Cell, CellStatus, default_data_dir, run_cell
from becomingone.runtime.sources import open_source
from becomingone.runtime.view import json_line, status_table, summary, summary_text

__all__ = ["register", "run_up"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``."""
    p = sub.add_parser("up", help="run a cell (transducers, sync, witnessing, memory)")
    p.add_argument("--config", type=Path, help="becomingone.yaml (default: embedded defaults)")
    p.add_argument(
        "--data-dir", type=Path, help="data dir (default: memory.path or ~/.becomingone)"
    )
    p.add_argument(
        "--source",
        default="synthetic",
        help="synthetic (default), csv:PATH, stdin (one sample per line) or text:PATH",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object per second")
    p.add_argument(
        "--summary", action="store_true", help="print collapses, dissipations, chain check at exit"
    )
    p.set_defaults(handler=run_up)


def _data_dir(args: argparse.Namespace, config: CellConfig) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir).expanduser()
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
        from becomingone.errors import InputError

        raise InputError("--duration", f"must be > 0 seconds, got {args.duration}")
    config = load_config(args.config)
    data_dir = _data_dir(args, config)
    _logging(config, data_dir)
    flush = config.memory.flush_interval
    probe = open_source(args.source, dt=config.kairos.step, flush_interval=flush)
    channels = probe.channels if probe.channels != config.kairos.channels else None
    cell = Cell(config, data_dir, channels=channels)
    try:
        source = probe
        if args.source == "synthetic":
            source = open_source(
                "synthetic", dt=config.kairos.step, flush_interval=flush, start=cell.samples
            )
        _, data = asyncio.run(_serve(cell, source.name, source.batches, args))
    finally:
        cell.close()
    if args.summary:
        if args.json:
            print(json.dumps({"summary": data}), flush=True)
        else:
            console = Console()
            console.print()
            summary_text(data, console)
    return 0 if data["chain_verified"] else 1


async def _serve(
    cell: Cell, source_name: str, batches: Any, args: argparse.Namespace
) -> tuple[CellStatus, dict[str, Any]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    threshold = cell.config.kairos.threshold
    name = cell.config.name
    live = None if args.json else Live(console=Console(stderr=False), auto_refresh=False)

    shown: list[CellStatus] = []

    def report(status: CellStatus) -> None:
        if shown and shown[-1] is status:
            return
        shown.append(status)
        del shown[:-1]
        if live is None:
            try:
                json_line(status, sys.stdout)
            except BrokenPipeError:  # the reader went away (`| head`): stop cleanly
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                stop.set()
        else:
            live.update(status_table(name, source_name, status, threshold), refresh=True)

    try:
        with live if live is not None else nullcontext():
            final = await run_cell(cell, batches, stop=stop, duration=args.duration, report=report)
            report(final)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await batches.aclose()
    return final, summary(final, cell.verify_chain(), str(cell.data_dir))
