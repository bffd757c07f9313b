"""``becomingone node``: run one cell in this process on a NATS bus (one cell per process).

Rule: argument checks, then library calls (:mod:`becomingone.runtime.node`) and printing only.
SIGTERM and SIGINT end the loop; the cell (its chain verified and closed) and the bus are
closed on the way out. A relay (``--kind relay``) has no cell: it locks its data dir, runs its
site's leaf server (:mod:`becomingone.runtime.relay`) and stops it by pid on the way out.

Membership: without ``--roster`` the node reads the cluster's JetStream KV bucket
(``roster_<cluster>``) and watches it; ``--roster FILE`` uses a roster file instead (one
machine). ``--certs DIR [--cert NAME]`` connects with mutual TLS (``--cert`` defaults to the
node's name). ``--serve [HOST:]PORT`` (any kind but a relay) serves the read-only cluster view
of what the node hears (:mod:`becomingone.commands._node_serve`). ``--glyphs`` (a full node on
its own rhythm) runs the cell's glyphs with ownership records in the cluster's JetStream KV
bucket and migrations over NATS (:mod:`becomingone.runtime.node_glyphs`); with ``--serve`` the
node also serves the glyph routes of its own cell (writes need a token of its data dir); a
witness with ``--glyphs --serve`` serves the cluster's glyph list read from that bucket (no
glyph of its own, no write route).
``--roles`` (a full or light node) runs the partifact protocol on the node: proposals and
signed votes on ``partifacts.<cluster>``, decisions on the JetStream stream
``LOG_consensus_<cluster>`` (:mod:`becomingone.runtime.node_partifacts`); with ``--serve`` the
node serves the roles and proposal routes of its view (writes need a token of its data dir).
A witness with ``--roles --serve`` serves the same read routes of an observer's view (a
``NodePartifacts`` without a key: it hears ``partifacts.<cluster>`` and reads the log, never
proposes, votes, appends or signs); every write there answers 405 ``read_only``.
With ``--certs``, ``--glyphs`` and ``--roles`` take a node certificate bound to the cluster
(``certs issue NAME --cluster C``) on servers that grant it (``nats up --tls --cluster C``);
a refused one ends the node with one line saying so.
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
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from becomingone.api.settings import parse_listen
from becomingone.certs import TlsFiles
from becomingone.commands._node_serve import cluster_view
from becomingone.commands.certs import add_tls_options, tls_files
from becomingone.commands.cluster import cluster_settings
from becomingone.config import CellConfig, load_config
from becomingone.errors import InputError, StorageError
from becomingone.runtime.cell import Cell, default_data_dir
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.datadir import DataDirLock
from becomingone.runtime.fire_log import FIRE_LOG_NAME, FireLog
from becomingone.runtime.glyph_desk import GlyphDesk
from becomingone.runtime.logs import setup_logging
from becomingone.runtime.metrics import NodeCollector, node_registry, serve_metrics
from becomingone.runtime.node import NodeSettings, RosterFile, RosterSource, SupervisedNode
from becomingone.runtime.node_feed import node_member
from becomingone.runtime.node_glyphs import NodeGlyphs, glyph_bucket
from becomingone.runtime.node_partifacts import NodePartifacts, consensus_log_name
from becomingone.runtime.proposal_desk import ProposalDesk
from becomingone.runtime.relay import Relay
from becomingone.runtime.sources import Source, open_source
from becomingone.runtime.status_glyphs import record_glyphs
from becomingone.runtime.witness_node import ClusterWitness
from becomingone.sync.roster import NODE_ID_PATTERN
from becomingone.sync.topology import Topology
from becomingone.transport.base import Bus
from becomingone.transport.jetstream import (
    JetStreamAppendLog,
    JetStreamCasRecord,
    JetStreamConnection,
)
from becomingone.transport.nats import NatsBus, connect_nats
from becomingone.transport.natsleaf import LeafServer, parse_leaf_urls
from becomingone.transport.roster_kv import DEV_MODE_WARNING, RosterBucket, RosterWatch

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``node`` subcommand."""
    p = sub.add_parser("node", help="run one cell in this process on a NATS bus")
    p.add_argument(
        "--bus",
        required=True,
        help="NATS server URLs: nats://HOST:PORT[,...]; for a relay the cluster's leafnode "
        "URLs, nats-leaf://HOST:PORT[,...] (shown by `nats status`)",
    )
    p.add_argument("--name", help="node id (default: the data dir's folder name)")
    p.add_argument(
        "--kind",
        default="full",
        choices=["full", "light", "witness", "relay"],
        help="full: Master + Emissary + Sync + CPS on a stream; light: Emissary + CPS on a "
        "stream; witness: no engine, verifies every packet and keeps a signed log; relay: a "
        "NATS leaf node bridging a site into the cluster (prints the site's URL)",
    )
    p.add_argument("--topology", choices=["mesh", "hub", "ring", "fractal"])
    p.add_argument("--tick", type=float, help="tick period in ms (default: cluster.tick)")
    p.add_argument("--alpha", type=float, help="CPS phase gain α (default: cluster.alpha)")
    p.add_argument("--beta", type=float, help="PLL frequency gain β (default: cluster.beta)")
    p.add_argument("--branching", type=int, help="fractal branching b")
    p.add_argument(
        "--roster",
        type=Path,
        help="a roster file (nodes on one machine); default: the cluster's JetStream KV "
        "bucket roster_<cluster>, watched live",
    )
    p.add_argument(
        "--join",
        action="store_true",
        help="add this cell's (name, key) to the roster (a KV roster: refused with TLS unless "
        "the certificate is an admin's)",
    )
    add_tls_options(p, "the node's --name")
    p.add_argument("--data-dir", type=Path, help="the cell's data dir (default ~/.becomingone)")
    p.add_argument("--config", type=Path, help="becomingone.yaml (its cluster: section too)")
    p.add_argument(
        "--source",
        help="what the engine reads (full, light): synthetic, csv:PATH, stdin or text:PATH, as "
        "`becomingone up --source`; files are played in real time. Default: the node's own "
        "synthetic rhythm (its offset and jitter from --seed and the name)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the node's synthetic rhythm")
    p.add_argument(
        "--glyphs",
        action="store_true",
        help="run the cell's glyphs (full node on its own rhythm): ownership records in the "
        "JetStream KV bucket glyphs_<cluster>, migrations over NATS, fire log in the data dir; "
        "a witness with --serve: list the cluster's glyphs from those records",
    )
    p.add_argument(
        "--glyph-takeover",
        type=float,
        metavar="SECONDS",
        help="with --glyphs: seconds a glyph's owner may stay silent, its record unchanged, "
        "before a live node takes the glyph over (default: glyphs.takeover in the config, 15)",
    )
    p.add_argument(
        "--roles",
        action="store_true",
        help="run the partifact protocol (full, light): votes on NATS, decisions on the "
        "JetStream stream LOG_consensus_<cluster>; with --serve the proposal routes too. A "
        "witness with --serve: a read-only view of that consensus (roles, proposals)",
    )
    p.add_argument(
        "--genesis-timeout",
        type=float,
        default=1.0,
        help="--roles: seconds a silent cell keeps its role (failover bound; default 1)",
    )
    p.add_argument("--duration", type=float, help="seconds to run (default: until a signal)")
    p.add_argument(
        "--start-at",
        type=float,
        help="wall-clock time (Unix seconds) of the first tick: connect, then wait (full, light)",
    )
    p.add_argument("--json", action="store_true", help="one JSON status line per second")
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the read-only cluster view of what this node hears (GET /api/v1/cluster, "
        "its history and event stream, and the dashboard; loopback unless api.allow_remote); "
        "not for a relay",
    )
    p.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="serve the node's Prometheus metrics at http://HOST:PORT/metrics (default host "
        "127.0.0.1; beyond loopback only with api.allow_remote; port 0: a free one); see "
        "docs/operations.md. With --serve the API serves /metrics too; not for a relay",
    )
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    if args.kind in ("relay", "witness") and args.source is not None:
        raise InputError("--source", f"a {args.kind} has no engine to feed; drop --source")
    if args.kind == "relay":
        for flag, given in (("--join", args.join), ("--roster", args.roster)):
            if given:
                raise InputError(flag, "a relay is not a member (it bridges a site); drop it")
    if args.kind == "relay" and args.serve is not None:
        raise InputError("--serve", "a relay hears no cluster of its own; serve from a node")
    if args.kind == "relay" and args.metrics is not None:
        raise InputError(
            "--metrics", "a relay runs no cell; its leaf server's monitoring port has the figures"
        )
    if args.glyphs and args.kind == "witness" and args.serve is None:
        raise InputError("--glyphs", "a witness only serves the glyph list: add --serve")
    if args.glyphs and (args.kind not in ("full", "witness") or args.source is not None):
        raise InputError("--glyphs", "glyphs run on a full node on its own rhythm (no --source)")
    if args.glyph_takeover is not None and not args.glyphs:
        raise InputError("--glyph-takeover", "only with --glyphs")
    if args.glyph_takeover is not None and not (
        math.isfinite(args.glyph_takeover) and args.glyph_takeover > 0
    ):
        raise InputError(
            "--glyph-takeover", f"must be a finite number > 0, got {args.glyph_takeover}"
        )
    if args.roles and args.kind == "witness" and args.serve is None:
        raise InputError("--roles", "a witness only serves its view of the consensus: add --serve")
    if args.roles and args.kind not in ("full", "light", "witness"):
        raise InputError("--roles", f"a {args.kind} holds no role; run a full or light node")
    if not (math.isfinite(args.genesis_timeout) and args.genesis_timeout > 0):
        raise InputError(
            "--genesis-timeout", f"must be a finite number > 0, got {args.genesis_timeout}"
        )
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
    listen = None
    if args.serve is not None:
        listen = parse_listen(args.serve, allow_remote=config.api.allow_remote)
    if args.metrics is not None:
        args.metrics = parse_listen(
            args.metrics, allow_remote=config.api.allow_remote, parameter="--metrics"
        )
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
    log_file = config.logging.file
    setup_logging(
        level=config.logging.level,
        fmt=config.logging.format,
        cell=name,
        file=None if log_file is None else data_dir / log_file,
    )
    if args.kind == "relay":
        return _run_relay(args, cs.name, data_dir, name)
    tls = tls_files(args, name)
    roster: RosterSource = (
        RosterFile(args.roster) if args.roster is not None else RosterWatch(settings.cluster)
    )
    source = _source(args.source, config)
    channels = source.channels if source and source.channels != config.kairos.channels else None
    cell = Cell(config.model_copy(update={"name": name}), data_dir, channels=channels)
    ok = False
    try:
        serve = functools.partial(
            _serve,
            args,
            name=name,
            tls=tls,
            roster=roster,
            public_key=cell.key.public_bytes,
            view=cluster_view(listen, config, cs, name),
        )
        views = functools.partial(cluster_view, listen, config, cs, name, tokens=data_dir)
        if args.kind == "witness":
            witness = ClusterWitness(
                cell, cluster=settings.cluster, roster=roster, max_skew=settings.max_skew
            )
            last = _run_witness(args, witness, settings.cluster, serve, views, tls)
            ticks = None
        else:
            if args.join and isinstance(roster, RosterFile):
                roster.join(name, cell.key.public_bytes)
            last, ticks = _run_member(args, cell, settings, roster, source, serve, views, tls)
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


def _run_member(
    args: argparse.Namespace,
    cell: Cell,
    settings: NodeSettings,
    roster: RosterSource,
    source: Source | None,
    serve: Any,
    views: Any,
    tls: TlsFiles | None,
) -> tuple[dict[str, Any], int]:
    """Run a full or light node on ``cell`` until a signal or the end; (last status, ticks).
    With ``--glyphs`` the cell's glyphs run too, with ``--roles`` the partifact protocol (both:
    one cell, its glyph runner and its partifact view side by side); ``--serve`` serves the
    routes of each."""
    if args.source == "synthetic":  # the shared rhythm continues from the cell's count
        source = _source("synthetic", cell.config, start=cell.samples)
    member = node_member(
        args.kind,
        cell,
        topology=settings.topology,
        cluster=settings.cluster,
        seed=args.seed,
        source=source,
    )
    node = SupervisedNode(
        settings,
        member=member,
        key=cell.key,
        epoch=cell.boot_epoch(),
        roster=roster,
        kind=args.kind,
        theta=_initial_theta(args.seed, settings.name),
    )
    runner = functools.partial(node.run, start_at=args.start_at)
    serve = functools.partial(
        serve, collector=NodeCollector(settings.name, settings.cluster, node=node)
    )
    view: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if args.glyphs:
            assert isinstance(member, CellMember)  # _check: a full node without --source
            records = _granted(
                "--glyphs",
                tls,
                lambda: JetStreamCasRecord(
                    JetStreamConnection(args.bus, tls=tls), glyph_bucket(settings.cluster)
                ),
            )
            stack.callback(records.connection.close)
            node.glyphs = NodeGlyphs(
                member,
                records=records,
                fire_log=FireLog(cell.data_dir / FIRE_LOG_NAME, settings.name),
                cluster=settings.cluster,
                takeover=args.glyph_takeover or cell.config.glyphs.takeover,
            )
            desk = GlyphDesk([member])
            view.update(desk=desk, listing=functools.partial(_cluster_glyphs, records, desk))
        if args.roles:
            node.partifacts = _node_partifacts(args, node, tls, stack)
            if args.glyphs:  # the tasks delegated to this cell run as its glyphs
                assert isinstance(member, CellMember)
                node.partifacts.run_tasks(member)
            view["partifacts"] = ProposalDesk(node.partifacts, clock=node.now)
        if view:
            serve = functools.partial(serve, view=views(**view))
        last = asyncio.run(serve(runner)).to_json()
    return last, node.ticks


T = TypeVar("T")


def _granted(flag: str, tls: TlsFiles | None, open_store: Callable[[], T]) -> T:
    """``open_store()``; a store the servers refuse to this certificate says what it takes."""
    try:
        return open_store()
    except StorageError as exc:
        if tls is None or "refused by the server" not in str(exc):
            raise
        raise StorageError(
            f"{exc}: {flag} with --certs takes a node certificate bound to the cluster "
            "(certs issue NAME --cluster CLUSTER) on servers that grant it (nats up --tls "
            "--cluster CLUSTER)"
        ) from None


def _run_witness(
    args: argparse.Namespace,
    witness: ClusterWitness,
    cluster: str,
    serve: Any,
    views: Any,
    tls: TlsFiles | None,
) -> dict[str, Any]:
    """Run a witness until a signal or the end; its last status. With ``--glyphs`` its served
    view lists the cluster's glyphs from the ownership records (none of them its own); with
    ``--roles`` it serves the roles and proposals of an observer's view of the consensus
    (the partifact messages and the consensus log, read only)."""
    serve = functools.partial(
        serve, collector=NodeCollector(witness.cell.config.name, cluster, witness=witness)
    )
    if not (args.glyphs or args.roles):
        return dict(asyncio.run(serve(witness.run)))
    with contextlib.ExitStack() as stack:
        view: dict[str, Any] = {}
        if args.glyphs:
            records = JetStreamCasRecord(
                JetStreamConnection(args.bus, tls=tls), glyph_bucket(cluster)
            )
            stack.callback(records.connection.close)
            view["listing"] = functools.partial(record_glyphs, records, ())
        if args.roles:
            if tls is not None and not tls.bound_to(cluster):
                raise StorageError(
                    f"{tls.cert.name} is not bound to cluster {cluster}, so the servers refuse "
                    f"it partifacts.{cluster}: --roles with --certs takes a node certificate "
                    f"bound to the cluster (certs issue NAME --cluster {cluster}) on servers "
                    f"that grant it (nats up --tls --cluster {cluster})"
                )
            log = _granted(
                "--roles",
                tls,
                lambda: JetStreamAppendLog(
                    JetStreamConnection(args.bus, tls=tls), consensus_log_name(cluster)
                ),
            )
            stack.callback(log.connection.close)
            observer = NodePartifacts(
                None,
                witness.cell.config.name,
                cluster=cluster,
                log=log,
                genesis_timeout=args.genesis_timeout,
            )
            view["observer"] = (observer, lambda: witness.validator.roster)
        return dict(asyncio.run(serve(witness.run, view=views(**view))))


def _cluster_glyphs(records: JetStreamCasRecord, desk: GlyphDesk) -> list[dict[str, Any]]:
    """``GET /cluster/glyphs`` of a node: its own glyphs and every other one's record."""
    return record_glyphs(records, desk.glyphs())


def _node_partifacts(
    args: argparse.Namespace,
    node: SupervisedNode,
    tls: TlsFiles | None,
    stack: contextlib.ExitStack,
) -> NodePartifacts:
    """The partifact protocol of ``node`` on the cluster's JetStream consensus log (closed by
    ``stack``)."""
    settings = node.settings
    log = _granted(
        "--roles",
        tls,
        lambda: JetStreamAppendLog(
            JetStreamConnection(args.bus, tls=tls), consensus_log_name(settings.cluster)
        ),
    )
    stack.callback(log.connection.close)
    return NodePartifacts(
        node.key,
        settings.name,
        cluster=settings.cluster,
        log=log,
        genesis_timeout=args.genesis_timeout,
    )


def _source(spec: str | None, config: CellConfig, start: int = 0) -> Source | None:
    """The source named by ``--source`` (None without one), batched like ``up``."""
    if spec is None:
        return None
    flush = config.memory.flush_interval
    return open_source(spec, dt=config.kairos.step, flush_interval=flush, start=start)


def _run_relay(args: argparse.Namespace, cluster: str, data_dir: Path, name: str) -> int:
    """Lock the data dir, start the site's leaf server (linked over mutual TLS with ``--certs``:
    an admin certificate), report the link until a signal, stop the leaf server by pid (exit 0
    once it is stopped)."""
    remotes = parse_leaf_urls(args.bus)
    lock = DataDirLock.acquire(data_dir)
    leaf = LeafServer(data_dir / "leaf", remotes, name=name, tls=tls_files(args, name))
    try:
        leaf.start()
        relay = Relay(name, cluster=cluster, leaf=leaf)
        serve = _serve(args, relay.run, name, tls=None, roster=None, public_key=b"", urls=leaf.url)
        last = asyncio.run(serve).to_json()
    finally:
        leaf.stop()
        lock.release()
    if args.json:
        print(json.dumps({"summary": True, **last, "stopped": True}))
    else:
        print(f"stopped {_line(last)}  leaf server stopped", flush=True)
    return 0


async def _serve(
    args: argparse.Namespace,
    runner: Any,
    name: str,
    *,
    tls: TlsFiles | None,
    roster: RosterSource | None,
    public_key: bytes,
    urls: str | None = None,
    view: Callable[[Bus, CollectorRegistry | None], AbstractAsyncContextManager[Any]] | None = None,
    collector: NodeCollector | None = None,
) -> Any:
    """Connect (to ``urls``, default ``--bus``, with the node's certificate); on a KV roster
    join it if asked, then watch it; serve the node's metrics (``collector``) with
    ``--metrics``; serve the cluster ``view`` on the connection if given (with ``/metrics``
    too); run ``runner(bus, duration=, stop=, on_second=)`` until a signal; close
    everything."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            stack.callback(loop.remove_signal_handler, sig)
        watch = roster if isinstance(roster, RosterWatch) else None
        if watch is not None and args.join:
            await _join_kv(args.bus, watch.cluster, name, public_key, tls)
        bus = await connect_nats(urls or args.bus, name=name, tls=tls)
        stack.push_async_callback(_close_quietly, bus)
        if watch is not None:
            if tls is None:
                print(f"{name}: {DEV_MODE_WARNING}", file=sys.stderr, flush=True)
            stack.push_async_callback(watch.aclose)
            await watch.start(bus)
        registry = None
        if collector is not None:
            collector.bus = bus
            registry = node_registry(collector)
            if args.metrics is not None:
                server = stack.enter_context(serve_metrics(registry, *args.metrics))
                print(f"{name}: metrics at {server.url}", file=sys.stderr, flush=True)
        if view is not None:
            await stack.enter_async_context(view(bus, registry))

        def show(status: Any) -> None:
            doc = status if isinstance(status, dict) else status.to_json()
            print(json.dumps(doc) if args.json else _line(doc), flush=True)

        return await runner(bus, duration=args.duration, stop=stop, on_second=show)


async def _join_kv(
    urls: str, cluster: str, name: str, public_key: bytes, tls: TlsFiles | None
) -> None:
    """``--join`` on a KV roster, on a short connection of its own (the servers refuse a node
    certificate's write, and the error says so at once)."""
    bucket = await RosterBucket.connect(urls, cluster=cluster, tls=tls, name=f"{name}-join")
    try:
        await bucket.join(name, public_key)
    finally:
        await bucket.aclose()


async def _close_quietly(bus: NatsBus) -> None:
    with contextlib.suppress(Exception):
        await bus.aclose()


def _line(doc: dict[str, Any]) -> str:
    """One status as a plain line (nodes and witnesses). ``θ@sec`` is the phase carried back
    to the last whole second of the wall clock, so lines of different processes compare."""
    if doc["kind"] == "relay":
        link = doc["link"]
        state = f"up to {link['hub']} rtt {link['rtt']}" if link["up"] else "DOWN"
        return (
            f"{doc['node']} (relay)  site {doc['url']}  link {state}  "
            f"in {link['in_msgs']} msgs  out {link['out_msgs']} msgs  "
            f"links {doc['links']}  restarts {doc['restarts']}"
        )
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
