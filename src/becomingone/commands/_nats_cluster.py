"""``becomingone cluster --bus nats``: nats-servers, N node processes and an observer.

Rule: start, observe, stop exactly what was started. The servers are
:class:`~becomingone.transport.natsd.NatsServers` (``--servers``: 1, or a routed cluster; node
``i`` connects first to server ``i mod servers``), the nodes
:class:`~becomingone.runtime.launcher.NodeProcesses` (stopped by pid), the measurement a
:class:`~becomingone.runtime.observer.ClusterObserver` on its own connection: the rows and
summary are those of the in-process cluster, computed from what the observer hears.

With ``--tls`` the run makes its own CA in ``<base>/certs`` (a server certificate ``nats``, one
node certificate per node, bound to the cluster, one for the observer and an ``admin`` one): the
server requires them (mutual TLS) and grants the bound node certificates the cluster's glyph
and consensus subjects (:func:`~becomingone.runtime.node_grants.cluster_grant`), and every node
connects with ``--certs``. Membership is then the cluster's KV
roster, as in a deployment: the command creates each node's key in its data dir and, with the
admin certificate, writes the public keys to ``roster_<cluster>`` before it starts the nodes,
which read and watch the bucket (no ``--roster``). Without TLS the nodes join the launcher's
roster file (every node on this machine).

With ``--glyphs N`` every node runs ``--glyphs``; the N probe glyphs are written as ownership
records before the nodes start and the totals counted from the records and the fire logs
after the run (:mod:`becomingone.commands._nats_glyphs`; with ``--tls`` through the admin
certificate).

With ``--serve`` the cluster API and the dashboard listen from before the nodes start: every
observed tick, with the statuses it measured, becomes a frame
(:meth:`~becomingone.api.ServedCluster.record_heard`). SIGTERM or SIGINT ends the run early
and cleanly: the summary of the ticks so far, then every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from becomingone.certs import TlsFiles, init_ca, issue_certificate
from becomingone.commands._cluster_serve import served_cluster
from becomingone.commands._cluster_view import (
    SPARK,
    SYNC_COLUMNS,
    Progress,
    phase_circle,
    t_global_line,
)
from becomingone.commands._nats_glyphs import count_glyphs, load_glyphs
from becomingone.config import CellConfig, ClusterConfig, load_config
from becomingone.errors import TransportError
from becomingone.runtime.cell_glyphs import GlyphTotals
from becomingone.runtime.cluster import ClusterSummary, TickReport
from becomingone.runtime.datadir import load_key
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.node_grants import cluster_grant
from becomingone.runtime.observer import ClusterObserver
from becomingone.transport.nats import connect_nats
from becomingone.transport.natsd import NatsServers
from becomingone.transport.roster_kv import RosterBucket

if TYPE_CHECKING:
    from becomingone.api.cluster import ServedCluster

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
    args: argparse.Namespace, config: CellConfig, settings: ClusterConfig, ticks: int
) -> tuple[ClusterSummary, list[TickReport], GlyphTotals | None]:
    """Start ``args.servers`` servers and ``args.nodes`` node processes spread over them,
    observe ``ticks`` ticks (serving them with ``--serve``), stop all; the nodes' I_c
    (``config.kairos.threshold``) is the threshold of the cluster collapses the observer
    counts. With ``args.glyphs`` also the glyph totals (printed glyphs per owner)."""
    with contextlib.ExitStack() as stack:
        base = args.data_dir
        if base is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="b1-nats-")))
        flags = node_flags(args, settings)
        tls = observer = admin = certs = None
        grants = []
        if args.tls:
            certs = _make_certs(Path(base) / "certs", args.nodes, settings.name)
            tls, observer = TlsFiles.named(certs, "nats"), TlsFiles.named(certs, OBSERVER)
            admin = TlsFiles.named(certs, ADMIN)
            grants = [cluster_grant(settings.name)]
            flags += ["--certs", str(certs)]
        servers = stack.enter_context(
            NatsServers(base, servers=args.servers, tls=tls, grants=grants)
        )
        nodes_dir = Path(base) / "nodes"
        names = [node_name(i) for i in range(args.nodes)]
        ids: list[str] = []
        first_cycle = int(time.time()) - 1
        if args.glyphs:
            flags.append("--glyphs")
            ids = load_glyphs(servers.urls, settings.name, args.glyphs, names, tls=admin)
        if certs is not None:
            keys = _node_keys(nodes_dir, args.nodes, load_config(args.config).security.key_file)
            asyncio.run(_write_roster(servers.urls, settings.name, keys, certs))
        procs = NodeProcesses(nodes_dir, servers.urls, flags, kv_roster=certs is not None)
        stack.enter_context(procs)
        for i in range(args.nodes):
            procs.start(node_name(i), server=i)
        observe = _observe(args, config, settings, servers.urls, ticks, procs, observer)
        summary, history, statuses = asyncio.run(observe)
        if not args.glyphs:
            return summary, history, None
        totals, owners = count_glyphs(
            servers.urls,
            settings.name,
            ids,
            nodes_dir,
            statuses,
            first_cycle=first_cycle,
            tls=admin,
        )
        print(f"becomingone cluster: glyphs per owner {owners}", file=sys.stderr, flush=True)
        return summary, history, totals
    raise AssertionError("unreachable")  # pragma: no cover


#: Keys of a status glyph row that are not in the in-process ``--json`` rows' per-cell
#: ``glyphs`` (which glyphs; the ownership counters go into the row's ``migrations``).
STATUS_ONLY = frozenset({"list", "more", "gone", "migrations"})


def migration_counts(obs: ClusterObserver) -> dict[str, int]:
    """The ownership counters of every node heard, summed (its latest status's; a node that
    went silent keeps its last counts): the ``migrations`` of a ``--json`` row."""
    total: Counter[str] = Counter()
    for status in obs.latest.values():
        if status.glyphs is not None:
            total.update(status.glyphs.get("migrations", {}))
    return dict(sorted(total.items()))


#: Certificate name of the observer's connection with ``--tls``.
OBSERVER = "observer"


#: Certificate name of the connection that writes the KV roster with ``--tls``.
ADMIN = "admin"


def _make_certs(folder: Path, nodes: int, cluster: str) -> Path:
    """A CA for this run with the server, observer, admin and node certificates (replacing
    any); the nodes' are bound to ``cluster`` (``certs issue NAME --cluster``)."""
    init_ca(folder, force=True)
    issue_certificate(folder, "nats", server=True, force=True)
    issue_certificate(folder, ADMIN, admin=True, force=True)
    issue_certificate(folder, OBSERVER, force=True)
    for name in (node_name(i) for i in range(nodes)):
        issue_certificate(folder, name, cluster=cluster, force=True)
    return folder


def _node_keys(base: Path, nodes: int, key_file: str) -> dict[str, bytes]:
    """name → public key of each node, its key created in its data dir ``base/<name>`` unless
    there (a node opens it as its cell's identity)."""
    return {
        name: load_key(base / name / key_file).public_bytes
        for name in (node_name(i) for i in range(nodes))
    }


async def _write_roster(urls: list[str], cluster: str, keys: dict[str, bytes], certs: Path) -> None:
    """Make ``roster_<cluster>`` hold exactly this run's nodes and keys (a ``--data-dir`` of an
    earlier run keeps its bucket), written with the admin certificate."""
    tls = TlsFiles.named(certs, ADMIN)
    bucket = await RosterBucket.connect(urls, cluster=cluster, tls=tls, name=ADMIN)
    try:
        for name in set(await bucket.members()) - set(keys):
            await bucket.remove(name)
        for name, public_key in keys.items():
            await bucket.put(name, public_key)
        members = len(await bucket.members())
    finally:
        await bucket.aclose()
    print(
        f"becomingone cluster: {members} node keys written to {bucket.bucket} (KV, admin "
        "certificate)",
        file=sys.stderr,
        flush=True,
    )


async def _observe(
    args: argparse.Namespace,
    config: CellConfig,
    settings: ClusterConfig,
    urls: list[str],
    ticks: int,
    procs: NodeProcesses,
    tls: TlsFiles | None = None,
) -> tuple[ClusterSummary, list[TickReport], dict[str, Any]]:
    """The observed run: summary, history and each node's latest status ``glyphs`` row."""
    bus = await connect_nats(urls, name=OBSERVER, tls=tls)
    try:
        ring = settings.topology == "ring"
        obs = ClusterObserver(
            bus,
            cluster=settings.name,
            peer_timeout=settings.peer_timeout,
            ring=ring,
            threshold=config.kairos.threshold,
        )
        await obs.start()
        async with contextlib.AsyncExitStack() as stack:
            stop = _stop_on_signals(stack)
            served = await stack.enter_async_context(served_cluster(args, config, settings))
            if served is not None and args.glyphs:  # glyph top's migrations, as in process
                served.extra = lambda: {"migrations": migration_counts(obs)}
            await _wait_for_nodes(obs, args.nodes, settings.tick, procs, stop)
            obs.restart()
            with _reporter(args, obs, ticks, served) as show:
                await _run_ticks(obs, ticks, settings.tick, show, stop)
        rows = {name: status.glyphs for name, status in obs.latest.items()}
        return obs.summary(), list(obs.history), rows
    finally:
        await bus.aclose()


def _stop_on_signals(stack: contextlib.AsyncExitStack) -> asyncio.Event:
    """An event SIGTERM and SIGINT set (their handlers removed when ``stack`` closes)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
        stack.callback(loop.remove_signal_handler, sig)
    return stop


async def _run_ticks(
    obs: ClusterObserver,
    ticks: int,
    tick: float,
    show: Callable[[TickReport], None],
    stop: asyncio.Event,
) -> None:
    """``ticks`` observer steps, one per ``tick`` seconds, until ``stop`` is set."""
    start = time.monotonic()
    for i in range(ticks):
        if stop.is_set():
            print(
                f"becomingone cluster: stopped by a signal after {i} ticks",
                file=sys.stderr,
                flush=True,
            )
            return
        show(obs.step())
        delay = start + (i + 1) * tick - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, delay))


async def _wait_for_nodes(
    obs: ClusterObserver, n: int, tick: float, procs: NodeProcesses, stop: asyncio.Event
) -> None:
    """Until every node's status is heard (or ``stop`` is set); a node that exited, or a slow
    start, is an error."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while len(obs.live(time.time())) < n and not stop.is_set():
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
    if not stop.is_set():
        print(f"becomingone cluster: {n} node processes heard", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _reporter(
    args: argparse.Namespace, obs: ClusterObserver, ticks: int, served: ServedCluster | None
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, a live view on a terminal, or a progress line about once a second; each
    tick also becomes a frame of the served cluster API when there is one."""
    with _reporter_only(args, obs, ticks) as show:
        if served is None:
            yield show
            return

        def both(report: TickReport) -> None:
            served.record_heard(report, obs.live(report.time), obs.rejected())
            show(report)

        yield both


@contextlib.contextmanager
def _reporter_only(
    args: argparse.Namespace, obs: ClusterObserver, ticks: int
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, a live view on a terminal, or a progress line about once a second. With
    ``--glyphs`` a JSON line carries each node's glyph row as its last status said (the
    in-process rows' ``glyphs``: glyphs owned, fires, failed, ended, energy, value, kairos,
    rejected) and ``migrations``, the nodes' ownership counters summed
    (:func:`migration_counts`)."""
    if args.json:

        def line(report: TickReport) -> None:
            doc = report.to_json()
            if args.glyphs:
                doc["glyphs"] = {
                    s.node: {k: v for k, v in s.glyphs.items() if k not in STATUS_ONLY}
                    for s in obs.live(report.time)
                    if s.glyphs is not None
                }
                doc["migrations"] = migration_counts(obs)
            print(json.dumps(doc), flush=True)

        yield line
    elif Console().is_terminal:
        with Live(refresh_per_second=8, transient=False) as live:
            yield lambda r: live.update(_view(r, obs))
    else:
        yield Progress(ticks)


def _view(report: TickReport, obs: ClusterObserver) -> Group:
    series = [h.c_cluster for h in obs.history[-60:]]
    spark = "".join(SPARK[min(8, int(c * 8.999))] for c in series)
    line = (
        f"tick {report.tick}  nodes heard {len(report.thetas)}  C_cluster "
        f"{report.c_cluster:.4f}  R {report.r:.4f}  band {report.band.value}  "
        f"rejected {report.rejected}"
    )
    table = Table(
        "node", "θ (cycles)", "f (Hz)", "heard", "C seen", "stable", "rejected", *SYNC_COLUMNS
    )
    for s in obs.live(report.time)[:16]:
        table.add_row(
            s.node,
            f"{s.theta:.4f}",
            f"{s.frequency:.6f}",
            str(s.heard),
            f"{s.c_seen:.4f}",
            "yes" if s.stable else "no",
            str(sum(s.rejected.values())),
            f"{min(1.0, abs(s.t_sync) ** 2):.4f}",
            f"{min(1.0, abs(s.t_global) ** 2):.4f}",
        )
    if len(obs.latest) > 16:
        table.caption = f"first 16 of {len(obs.latest)} nodes"
    mesh = t_global_line(report, obs.collapses.threshold, obs.collapses.fired)
    circle = phase_circle(report.thetas)
    return Group(Text(line), mesh, circle, Text(f"C over time │{spark}│"), table)
