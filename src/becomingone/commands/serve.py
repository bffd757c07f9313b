"""``becomingone serve --data-dir D``: serve a stopped cell's history over the API, read-only.

Rule: argument handling only; reads go through :class:`becomingone.api.ServedCell` (SQLite
``mode=ro``, no data-dir lock, the private key never read), every write answers 405, and the
event stream replays the stored chain (there are no live events). Runs until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from becomingone.api import PREFIX, ApiServer, ApiSettings, ServedCell, create_app
from becomingone.api.settings import DEFAULT_HOST, DEFAULT_PORT, api_tls, parse_listen
from becomingone.commands.up import data_dir_arg
from becomingone.config import load_config
from becomingone.errors import StorageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``."""
    p = sub.add_parser("serve", help="serve a stopped cell's history read-only over the API")
    p.add_argument("--data-dir", help="data dir (default: memory.path or ~/.becomingone)")
    p.add_argument("--config", type=Path, help="becomingone.yaml (default: embedded defaults)")
    p.add_argument(
        "--listen",
        default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        metavar="[HOST:]PORT",
        help=f"address (default {DEFAULT_HOST}:{DEFAULT_PORT}; beyond loopback only with "
        "api.allow_remote)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``becomingone serve``."""
    config = load_config(args.config)
    host, port = parse_listen(args.listen, allow_remote=config.api.allow_remote)
    tls = api_tls(config.api)
    data_dir = data_dir_arg(args.data_dir, config)
    if not data_dir.is_dir():
        raise StorageError(f"data dir {data_dir} does not exist")
    cell = ServedCell.stopped(config, data_dir)
    try:
        settings = ApiSettings.from_config(config.api, read_only=True)
        server = ApiServer(create_app(cell, settings), host, port, tls=tls)
        asyncio.run(_serve(server, args.duration))
    finally:
        cell.close()
    return 0


async def _serve(server: ApiServer, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        print(
            f"becomingone serve: read-only API at {server.url}{PREFIX}\n"
            f"becomingone serve: dashboard at {server.url}/",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    finally:
        await server.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
