"""``becomingone node``: run one cell in this process on a NATS bus (one cell per process).

Rule: argument checks, then library calls (:mod:`becomingone.runtime.node`) and printing only.
SIGTERM and SIGINT end the loop; the cell (its chain verified and closed) and the bus are
closed on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import math
import signal
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from becomingone.commands.cluster import cluster_settings
from becomingone.config import load_config
from becomingone.errors import InputError
from becomingone.runtime.cell import Cell, default_data_dir
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.node import NodeSettings, RosterFile, SupervisedNode
from becomingone.runtime.sources import synthetic_phase
from becomingone.runtime.witness_node import ClusterWitness
from becomingone.sync import PhaseSupervisor
from becomingone.sync.roster import NODE_ID_PATTERN
from becomingone.sync.topology import Plan, Topology
from becomingone.transport.nats import connect_nats

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``node`` subcommand."""
    p = sub.add_parser("node", help="run one cell in this process on a NATS bus")
    p.add_argument("--bus", required=True, help="NATS server URLs: nats://HOST:PORT[,...]")
    p.add_argument("--name", help="node id (default: the data dir's folder name)")
    p.add_argument(
        "--kind",
        default="full",
        choices=["full", "light", "witness", "relay"],
        help="full: Master + Emissary + Sync + CPS on a stream; light: the CPS only (no "
        "stream); witness: no engine, verifies every packet and keeps a signed log "
        "(relay: not yet)",
    )
    p.add_argument("--topology", choices=["mesh", "hub", "ring", "fractal"])
    p.add_argument("--tick", type=float, help="tick period in ms (default: cluster.tick)")
    p.add_argument("--alpha", type=float, help="CPS phase gain α (default: cluster.alpha)")
    p.add_argument("--beta", type=float, help="PLL frequency gain β (default: cluster.beta)")
    p.add_argument("--branching", type=int, help="fractal branching b")
    p.add_argument("--roster", type=Path, required=True, help="the cluster's roster file")
    p.add_argument(
        "--join", action="store_true", help="add this cell's (name, key) to the roster file"
    )
    p.add_argument("--data-dir", type=Path, help="the cell's data dir (default ~/.becomingone)")
    p.add_argument("--config", type=Path, help="becomingone.yaml (its cluster: section too)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic stream")
    p.add_argument("--duration", type=float, help="seconds to run (default: until a signal)")
    p.add_argument(
        "--start-at",
        type=float,
        help="wall-clock time (Unix seconds) of the first tick: connect, then wait (full, light)",
    )
    p.add_argument("--json", action="store_true", help="one JSON status line per second")
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    if args.kind == "relay":
        raise InputError("--kind", "relay (a NATS leaf node) is not available yet; use full")
    if args.kind == "witness" and args.join:
        raise InputError("--join", "a witness is not a member (it sends no packets); drop --join")
    for name in ("duration", "tick", "start_at"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise InputError(
                f"--{name.replace('_', '-')}", f"must be a finite number > 0, got {value}"
            )
    if args.name is not None and not NODE_ID_PATTERN.match(args.name):
        raise InputError("--name", f"must be 1-64 of [A-Za-z0-9._:-], got {args.name!r}")
    if args.alpha is not None and not 0.0 < args.alpha < 1.0:
        raise InputError("--alpha", f"must be in (0, 1), got {args.alpha}")


def run(args: argparse.Namespace) -> int:
    """Open the cell, join the roster if asked, connect and tick until a signal or the end."""
    _check(args)
    config = load_config(args.config)
    cs = cluster_settings(args, config)
    data_dir = (args.data_dir or default_data_dir()).expanduser().absolute()
    name = args.name or data_dir.name
    if not NODE_ID_PATTERN.match(name):
        raise InputError("--name", f"{name!r} (from the data dir) is not a node id; give --name")
    settings = NodeSettings(
        name=name,
        cluster=cs.name,
        topology=Topology.parse(cs.topology),
        tick=cs.tick,
        alpha=cs.alpha,
        beta=cs.beta,
        branching=cs.branching,
        max_skew=cs.max_skew,
        peer_timeout=cs.peer_timeout,
        stable_ticks=cs.stable_ticks,
    )
    roster = RosterFile(args.roster)
    cell = Cell(config.model_copy(update={"name": name}), data_dir)
    ok = False
    try:
        if args.kind == "witness":
            witness = ClusterWitness(
                cell, cluster=settings.cluster, roster=roster, max_skew=settings.max_skew
            )
            last = asyncio.run(_serve(args, witness.run, name)).copy()
            ticks = None
        else:
            if args.join:
                roster.join(name, cell.key.public_bytes)
            node = SupervisedNode(
                settings,
                member=_member(cell, settings, args.seed) if args.kind == "full" else None,
                key=cell.key,
                epoch=cell.boot_epoch(),
                roster=roster,
                kind=args.kind,
                theta=_initial_theta(args.seed, name),
            )
            runner = functools.partial(node.run, start_at=args.start_at)
            last = asyncio.run(_serve(args, runner, name)).to_json()
            ticks = node.ticks
    finally:
        ok = cell.verify_chain().ok
        cell.close()
    if args.json:
        print(json.dumps({"summary": True, **last, "ticks": ticks, "chain_verified": ok}))
    else:
        print(f"stopped {_line(last)}  chain {'verified' if ok else 'BROKEN'}", flush=True)
    return 0 if ok else 1


def _initial_theta(seed: int, name: str) -> float:
    """A start phase in [-0.5, 0.5) cycles from the seed and the name (spread like the
    in-process cluster's phases, reproducible per node)."""
    digest = hashlib.sha256(f"theta:{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 - 0.5


def _member(cell: Cell, settings: NodeSettings, seed: int) -> CellMember:
    """The cell fed by its own synthetic stream, with a single-member supervisor replaced on the
    first roster read (the cell's key signs from the start)."""
    cell_seed = int.from_bytes(hashlib.sha256(f"{seed}:{settings.name}".encode()).digest()[:4])
    offset = cell_seed % 600
    dt = cell.dt

    def stream(start: int, count: int) -> NDArray[Any]:
        return synthetic_phase(offset + start, count, dt=dt, seed=cell_seed)

    alone = PhaseSupervisor(
        key=cell.key,
        plan=Plan(topology=settings.topology, members=(settings.name,), index=0),
        keys={settings.name: cell.key.public_bytes},
        cluster=settings.cluster,
    )
    return CellMember(cell, alone, stream)


async def _serve(args: argparse.Namespace, runner: Any, name: str) -> Any:
    """Connect, run ``runner(bus, duration=, stop=, on_second=)`` until a signal, close."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bus = await connect_nats(args.bus, name=name)
    try:

        def show(status: Any) -> None:
            doc = status if isinstance(status, dict) else status.to_json()
            print(json.dumps(doc) if args.json else _line(doc), flush=True)

        return await runner(bus, duration=args.duration, stop=stop, on_second=show)
    finally:
        with contextlib.suppress(Exception):
            await bus.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _line(doc: dict[str, Any]) -> str:
    """One status as a plain line (nodes and witnesses). ``θ@sec`` is the phase carried back
    to the last whole second of the wall clock, so lines of different processes compare."""
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(doc["rejected"].items())) or "none"
    if doc["kind"] == "witness":
        return (
            f"{doc['node']} (witness)  members {doc['members']}  accepted {doc['accepted']}  "
            f"copies {doc['copies']}  rejected {rejected}  records {doc['records']}"
        )
    at_second = (doc["theta"] - doc["frequency"] * (doc["time"] % 1.0)) % 1.0
    return (
        f"{doc['node']}  θ@sec {at_second:.4f}  C seen {doc['c_seen']:.4f}  "
        f"members {doc['members']}  heard {doc['heard']}  "
        f"accepted {doc['accepted']}  rejected {rejected}  "
        f"stable {'yes' if doc['stable'] else 'no'}  epoch {doc['epoch']}  seq {doc['seq']}"
    )
