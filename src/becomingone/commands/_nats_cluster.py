"""``becomingone cluster --bus nats``: nats-servers, N node processes and an observer.

Rule: start, observe, stop exactly what was started. The servers are
:class:`~becomingone.transport.natsd.NatsServers` (``--servers``: 1, or a routed cluster; node
``i`` connects first to server ``i mod servers``), the nodes
:class:`~becomingone.runtime.launcher.NodeProcesses` (stopped by pid), the measurement a
:class:`~becomingone.runtime.observer.ClusterObserver` on its own connection: the rows and
summary are those of the in-process cluster, computed from what the observer hears.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from becomingone.commands.cluster import SPARK, _Progress, phase_circle
from becomingone.config import ClusterConfig
from becomingone.errors import TransportError
from becomingone.runtime.cluster import ClusterSummary, TickReport
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.observer import ClusterObserver
from becomingone.transport.nats import connect_nats
from becomingone.transport.natsd import NatsServers

__all__ = ["run_nats"]

#: Seconds to wait for every node to be heard before the measured run starts.
STARTUP_SECONDS = 60.0


def node_flags(args: argparse.Namespace, settings: ClusterConfig) -> list[str]:
    """The flags every node process gets: the cluster settings this run resolved."""
    flags = [
        "--topology",
        settings.topology,
        "--tick",
        repr(settings.tick * 1000.0),
        "--alpha",
        repr(settings.alpha),
        "--beta",
        repr(settings.beta),
        "--branching",
        str(settings.branching),
        "--seed",
        str(args.seed),
    ]
    if args.config is not None:
        flags += ["--config", str(Path(args.config).absolute())]
    return flags


def run_nats(
    args: argparse.Namespace, settings: ClusterConfig, ticks: int
) -> tuple[ClusterSummary, list[TickReport]]:
    """Start ``args.servers`` servers and ``args.nodes`` node processes spread over them,
    observe ``ticks`` ticks, stop all."""
    with contextlib.ExitStack() as stack:
        base = args.data_dir
        if base is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="b1-nats-")))
        servers = stack.enter_context(NatsServers(base, servers=args.servers))
        procs = stack.enter_context(
            NodeProcesses(base / "nodes", servers.urls, node_flags(args, settings))
        )
        for i in range(args.nodes):
            procs.start(node_name(i), server=i)
        return asyncio.run(_observe(args, settings, servers.urls, ticks, procs))
    raise AssertionError("unreachable")  # pragma: no cover


async def _observe(
    args: argparse.Namespace,
    settings: ClusterConfig,
    urls: list[str],
    ticks: int,
    procs: NodeProcesses,
) -> tuple[ClusterSummary, list[TickReport]]:
    bus = await connect_nats(urls, name="observer")
    try:
        ring = settings.topology == "ring"
        obs = ClusterObserver(
            bus, cluster=settings.name, peer_timeout=settings.peer_timeout, ring=ring
        )
        await obs.start()
        await _wait_for_nodes(obs, args.nodes, settings.tick, procs)
        obs.history.clear()
        with _reporter(args, obs, ticks) as show:
            start = time.monotonic()
            for i in range(ticks):
                show(obs.step())
                delay = start + (i + 1) * settings.tick - time.monotonic()
                await asyncio.sleep(max(0.0, delay))
        return obs.summary(), list(obs.history)
    finally:
        await bus.aclose()


async def _wait_for_nodes(obs: ClusterObserver, n: int, tick: float, procs: NodeProcesses) -> None:
    """Until every node's status is heard; a node that exited, or a slow start, is an error."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while len(obs.live(time.time())) < n:
        exited = [name for name, p in procs.procs.items() if p.poll() is not None]
        if exited:
            log = procs.base / f"{exited[0]}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise TransportError(f"node {exited[0]} exited: {' '.join(tail) or 'no output'}")
        if time.monotonic() > deadline:
            raise TransportError(
                f"only {len(obs.live(time.time()))} of {n} nodes heard after {STARTUP_SECONDS} s"
            )
        await asyncio.sleep(tick)
        obs.step()
    print(f"becomingone cluster: {n} node processes heard", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _reporter(
    args: argparse.Namespace, obs: ClusterObserver, ticks: int
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, a live view on a terminal, or a progress line about once a second."""
    if args.json:
        yield lambda r: print(json.dumps(r.to_json()), flush=True)
    elif Console().is_terminal:
        with Live(refresh_per_second=8, transient=False) as live:
            yield lambda r: live.update(_view(r, obs))
    else:
        yield _Progress(ticks)


def _view(report: TickReport, obs: ClusterObserver) -> Group:
    series = [h.c_cluster for h in obs.history[-60:]]
    spark = "".join(SPARK[min(8, int(c * 8.999))] for c in series)
    line = (
        f"tick {report.tick}  nodes heard {len(report.thetas)}  C_cluster "
        f"{report.c_cluster:.4f}  R {report.r:.4f}  band {report.band.value}  "
        f"rejected {report.rejected}"
    )
    table = Table("node", "θ (cycles)", "f (Hz)", "heard", "C seen", "stable", "rejected")
    for s in obs.live(report.time)[:16]:
        table.add_row(
            s.node,
            f"{s.theta:.4f}",
            f"{s.frequency:.6f}",
            str(s.heard),
            f"{s.c_seen:.4f}",
            "yes" if s.stable else "no",
            str(sum(s.rejected.values())),
        )
    if len(obs.latest) > 16:
        table.caption = f"first 16 of {len(obs.latest)} nodes"
    return Group(Text(line), phase_circle(report.thetas), Text(f"C over time │{spark}│"), table)
