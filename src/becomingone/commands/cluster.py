"""``becomingone cluster``: run an in-process phase-locked cluster with a live view.

Rule: argument checks, then library calls (:mod:`becomingone.runtime`) and display only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live

from becomingone.api.settings import parse_listen
from becomingone.commands._cluster_serve import metrics_server, served_cluster
from becomingone.commands._cluster_view import (
    Progress,
    glyph_rows,
    live_view,
    summary_table,
)
from becomingone.commands._partifacts import (
    add_summary_rows,
    check_roles_args,
    partifact_driver,
    roles_summary,
    roles_view,
    step_driver,
)
from becomingone.commands._plots import check_plot_path
from becomingone.config import CellConfig, ClusterConfig, load_config
from becomingone.errors import InputError
from becomingone.runtime import (
    ClusterMember,
    ClusterSummary,
    LocalCluster,
    PartifactDriver,
    TickReport,
    build_supervisors,
    estimate_tick_seconds,
    packets_per_tick,
)
from becomingone.runtime.cell_glyphs import (
    DEMO_CELLS,
    GlyphTotals,
    glyph_totals,
    probe_glyphs,
    spread_glyphs,
)
from becomingone.runtime.cell_member import (
    CellMember,
    CellTotals,
    build_cell_members,
    cell_totals,
)
from becomingone.runtime.glyph_migrate import GlyphMigrator
from becomingone.runtime.logs import setup_logging
from becomingone.runtime.metrics import cluster_registry
from becomingone.sync import PhaseSupervisor, VerifyCache
from becomingone.transport import MemoryBus

if TYPE_CHECKING:
    from becomingone.api.cluster import ServedCluster

_DEFAULT = ClusterConfig()
#: Flags that override the ``cluster:`` section: flag dest → (config key, flag → config value).
_OVERRIDES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "topology": ("topology", str),
    "alpha": ("alpha", float),
    "beta": ("beta", float),
    "tick": ("tick", lambda ms: ms / 1000.0),
    "branching": ("branching", int),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cluster`` subcommand."""
    d = _DEFAULT
    p = sub.add_parser("cluster", help="run an in-process phase-locked cluster (live view)")
    p.add_argument("--nodes", type=int, default=16, help="number of cells (default 16)")
    p.add_argument(
        "--bus",
        default="memory",
        choices=["memory", "nats"],
        help="memory: every cell in this process; nats: starts a nats-server and one "
        "`becomingone node` process (a full cell) per cell, and observes them",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="with --bus nats: mutual TLS, with a CA and server, node and observer "
        "certificates made for this run (under --data-dir/certs)",
    )
    p.add_argument(
        "--servers",
        type=int,
        default=1,
        help="with --bus nats: nats-servers to start, 1 to 9 (default 1; 3 for a routed "
        "cluster, the nodes spread over them)",
    )
    p.add_argument(
        "--topology",
        choices=["mesh", "hub", "ring", "fractal"],
        help=f"default: cluster.topology ({d.topology})",
    )
    p.add_argument("--duration", type=float, default=15.0, help="seconds to run (default 15)")
    p.add_argument(
        "--tick", type=float, help=f"tick period in ms (default: cluster.tick, {d.tick * 1000:g})"
    )
    p.add_argument("--alpha", type=float, help=f"CPS phase gain α (default {d.alpha})")
    p.add_argument("--beta", type=float, help=f"PLL frequency gain β (default {d.beta})")
    p.add_argument("--drift", type=float, default=0.0, help="clock drift spread in ppm")
    p.add_argument("--loss", type=float, default=0.0, help="packet loss probability on the bus")
    p.add_argument("--branching", type=int, help=f"fractal branching b (default {d.branching})")
    p.add_argument("--spread", type=float, default=None, help="initial phase spread, cycles")
    p.add_argument("--seed", type=int, default=0, help="seed of phases, drifts, keys and loss")
    p.add_argument("--fast", action="store_true", help="virtual time: do not wait between ticks")
    p.add_argument("--json", action="store_true", help="one JSON object per tick, then summary")
    p.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="with --bus memory: serve Prometheus metrics of the cluster at "
        "http://HOST:PORT/metrics while it runs (default host 127.0.0.1; port 0: a free one); "
        "see docs/operations.md",
    )
    p.add_argument(
        "--roles",
        action="store_true",
        help="run the partifact protocol (WSP 28): each cell's state and role, golden-ratio "
        "consensus and the lifecycle with its conditions (in-process bus; with --data-dir the "
        "decisions are kept in consensus.db there and replayed by the next run)",
    )
    p.add_argument("--plot", type=Path, help="save phase circle + coherence timeline (PNG)")
    p.add_argument(
        "--cells",
        choices=["cps", "full"],
        help="cps (default): each cell is its phase supervisor only; full (the default with "
        "--glyphs): a living cell (transducers, sync layer, witness chain, SQLite memory, "
        "glyphs) on its own stream, with its supervisor",
    )
    p.add_argument(
        "--glyphs",
        type=int,
        default=0,
        help=f"load N load-average probe glyphs, θ spread evenly, round-robin on the first "
        f"{DEMO_CELLS} cells (full cells; with --bus nats: node --glyphs processes, the "
        "probes written as KV ownership records, at most 1000; default 0)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="with --cells full: keep the cells' data here (one folder per cell); "
        "default: a temporary folder removed at the end",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="becomingone.yaml: its cluster: section gives the defaults (flags win); "
        "with --cells full also the cells' configuration",
    )
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the cluster API (GET /api/v1/cluster, its history and the "
        "/api/v1/cluster/events stream) and the dashboard while the cluster runs "
        "(loopback unless api.allow_remote); with --bus nats, of what the observer hears",
    )
    p.add_argument(
        "--silence-genesis",
        type=float,
        metavar="SECONDS",
        help="with --roles: the Genesis stops being heard at this time (as after kill -9); "
        "the summary shows how long its replacement by consensus took",
    )
    p.set_defaults(handler=run)


def cluster_settings(args: argparse.Namespace, config: CellConfig) -> ClusterConfig:
    """The ``cluster:`` section of ``config`` with the flags given on the command line."""
    values = config.cluster.model_dump()
    given = []
    for dest, (key, convert) in _OVERRIDES.items():
        flag = getattr(args, dest, None)
        if flag is not None:
            values[key] = convert(flag)
            given.append(key)
    try:
        return ClusterConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "cluster"
        where = f"--{key}" if key in given else f"cluster.{key}"
        raise InputError(where, f"{err['msg'].removeprefix('Value error, ')}") from None


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= 2000:
        raise InputError("--nodes", f"must be in [1, 2000], got {args.nodes}")
    for name in ("duration", "tick"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise InputError(f"--{name}", f"must be a finite number > 0, got {value}")
    if args.alpha is not None and not 0.0 < args.alpha < 1.0:
        raise InputError("--alpha", f"must be in (0, 1), got {args.alpha}")
    if not 0.0 <= args.loss < 1.0:
        raise InputError("--loss", f"must be in [0, 1), got {args.loss}")
    if not math.isfinite(args.drift) or not 0.0 <= args.drift <= 1e6:
        raise InputError("--drift", f"must be in [0, 1e6] ppm, got {args.drift}")
    if args.spread is not None and not 0.0 <= args.spread <= 1.0:
        raise InputError("--spread", f"must be in [0, 1] cycles, got {args.spread}")
    if not 0 <= args.seed < 2**32:
        raise InputError("--seed", f"must be in [0, 2**32), got {args.seed}")
    if args.duration > 86_400 * 365:
        raise InputError("--duration", f"must be at most a year of seconds, got {args.duration}")
    if args.plot is not None:
        check_plot_path(args.plot)  # before the run, not after it
    if args.tls and args.bus != "nats":
        raise InputError("--tls", "is for --bus nats (the in-process bus has no network)")
    if args.bus == "nats":
        for flag, given in (("--fast", args.fast), ("--loss", args.loss), ("--drift", args.drift)):
            if given:
                raise InputError(flag, "is for the in-process bus; node processes run in real time")
        if args.nodes > 64:
            raise InputError("--nodes", f"with --bus nats at most 64 processes, got {args.nodes}")
        if not 1 <= args.servers <= 9:
            raise InputError("--servers", f"must be 1 to 9, got {args.servers}")
    elif args.servers != 1:
        raise InputError("--servers", "is for --bus nats (the in-process bus has no servers)")
    if not 0 <= args.glyphs <= 100_000:
        raise InputError("--glyphs", f"must be in [0, 100000], got {args.glyphs}")
    if args.metrics is not None and args.bus == "nats":
        raise InputError(
            "--metrics",
            "is for the in-process bus (--bus memory); a node process serves its own "
            "(node --metrics)",
        )
    check_roles_args(args)
    if args.bus == "nats" and args.glyphs > NATS_GLYPHS:
        raise InputError("--glyphs", f"with --bus nats at most {NATS_GLYPHS}, got {args.glyphs}")
    if args.glyphs and args.cells == "cps":
        raise InputError("--glyphs", "needs full cells (--cells full): glyphs live on a cell")
    if args.cells is None:
        args.cells = "full" if args.glyphs else "cps"


#: Most probe glyphs ``--bus nats`` loads (each is one KV record written before the nodes start).
NATS_GLYPHS = 1000


def run(args: argparse.Namespace) -> int:
    """Run the cluster and print the view (or progress lines), JSON lines and the summary."""
    _check(args)
    config = load_config(args.config)
    if args.metrics is not None:
        allow = config.api.allow_remote
        args.metrics = parse_listen(args.metrics, allow_remote=allow, parameter="--metrics")
    args.listen = None
    if args.serve is not None:
        from becomingone.api.settings import api_tls

        args.listen = parse_listen(args.serve, allow_remote=config.api.allow_remote)
        api_tls(config.api)  # a bad certificate is refused before the cluster starts
    settings = cluster_settings(args, config)
    setup_logging(level=config.logging.level, fmt=config.logging.format, cell=settings.name)
    ticks = max(1, round(args.duration / settings.tick))
    if ticks > 10_000_000:
        raise InputError("--duration", f"{ticks} ticks of {settings.tick} s is too many (> 1e7)")
    _warn_if_too_slow(args.nodes, settings, ticks)
    spread = (
        args.spread if args.spread is not None else (0.5 if settings.topology == "ring" else 1.0)
    )
    cells = build_supervisors(
        args.nodes,
        settings.topology,
        alpha=settings.alpha,
        beta=settings.beta,
        drift_ppm=args.drift,
        spread=spread,
        seed=args.seed,
        cluster=settings.name,
        branching=settings.branching,
        max_skew=settings.max_skew,
        peer_timeout=settings.peer_timeout,
        stable_ticks=settings.stable_ticks,
    )
    if args.bus == "nats":
        from becomingone.commands._nats_cluster import run_nats

        summary, history, glyphs = run_nats(args, config, settings, ticks)
        totals, cache, roles = None, None, None
    elif args.cells == "full":
        summary, history, totals, glyphs, roles = _run_full(args, config, settings, cells, ticks)
        cache = cells[0].validator.cache
    else:
        summary, history, roles = asyncio.run(_drive(args, config, settings, cells, ticks, cells))
        totals, cache, glyphs = None, cells[0].validator.cache, None
    _print_summary(args, summary, totals, cache, glyphs, roles)
    if args.plot is not None:
        from becomingone.commands._plots import save_phase_and_timeline

        save_phase_and_timeline(
            args.plot,
            history[-1].thetas,
            [h.c_cluster for h in history],
            f"{args.nodes} cells, {settings.topology}",
            r_series=[h.r for h in history],
        )
    return 0


def _print_summary(
    args: argparse.Namespace,
    summary: ClusterSummary,
    totals: CellTotals | None,
    cache: VerifyCache | None,
    glyphs: GlyphTotals | None = None,
    roles: dict[str, Any] | None = None,
) -> None:
    """The summary as one JSON object (with cell totals, glyph totals, the partifacts and
    cache counters) or a table."""
    if args.json:
        doc = summary.to_json()
        if roles is not None:
            doc["partifacts"] = roles
        if totals is not None:
            doc["cells"] = totals.to_json()
        if glyphs is not None:
            doc["glyphs"] = glyphs.to_json()
        if cache is not None:
            doc["verify_cache"] = cache.stats().to_json()
        print(json.dumps(doc))
    else:
        t_sync = args.bus == "nats" or args.cells == "full"
        table = summary_table(summary, totals, glyphs, t_sync=t_sync)
        if roles is not None:
            add_summary_rows(table, roles)
        Console().print(table)


def _warn_if_too_slow(nodes: int, settings: ClusterConfig, ticks: int) -> None:
    """One line on stderr when the run cannot keep its tick at the measured packet costs."""
    per_tick = estimate_tick_seconds(nodes, settings.topology, settings.branching)
    if per_tick <= settings.tick:
        return
    deliveries, _ = packets_per_tick(nodes, settings.topology, settings.branching)
    hint = "" if settings.topology in ("fractal", "hub") else "; try --topology fractal or hub"
    print(
        f"becomingone cluster: warning: {nodes} cells on {settings.topology} deliver "
        f"~{deliveries} packets per tick (~{per_tick:.3g} s of CPU); {ticks} ticks of "
        f"{settings.tick * 1000:g} ms need ~{per_tick * ticks:.3g} s, not "
        f"{settings.tick * ticks:.3g} s{hint}",
        file=sys.stderr,
        flush=True,
    )


def _run_full(
    args: argparse.Namespace,
    config: CellConfig,
    settings: ClusterConfig,
    cells: list[PhaseSupervisor],
    ticks: int,
) -> tuple[ClusterSummary, list[TickReport], CellTotals, GlyphTotals | None, dict[str, Any] | None]:
    """Run with a full cell behind every supervisor (``--glyphs`` probes on the first
    cells; virtual time awaits each tick's runs); close (and verify) every cell after."""
    with contextlib.ExitStack() as stack:
        base = args.data_dir
        if base is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="b1-cluster-")))
        members = build_cell_members(cells, base, config, seed=args.seed, wait_runs=args.fast)
        migrator = GlyphMigrator(members) if args.glyphs or args.listen else None
        try:
            spread_glyphs([m.glyphs for m in members], probe_glyphs(args.glyphs))
            supervisors = [m.supervisor for m in members]  # rebuilt with the cells' own keys
            summary, history, roles = asyncio.run(
                _drive(args, config, settings, supervisors, ticks, members, migrator)
            )
        finally:
            verified = [m.close() for m in members]
        glyphs = None
        if migrator is not None:
            glyphs = glyph_totals([m.glyphs for m in members], migrator.counts)
        return summary, history, cell_totals(members, verified), glyphs, roles


async def _drive(
    args: argparse.Namespace,
    config: CellConfig,
    settings: ClusterConfig,
    cells: list[PhaseSupervisor],
    ticks: int,
    members: Sequence[ClusterMember],
    migrator: GlyphMigrator | None = None,
) -> tuple[ClusterSummary, list[TickReport], dict[str, Any] | None]:
    bus = MemoryBus(loss=args.loss, seed=args.seed, maxsize=max(1024, 2 * len(members)))
    ring = settings.topology == "ring"
    threshold = config.kairos.threshold  # I_c of the cells: the cluster collapse's too
    async with contextlib.AsyncExitStack() as stack:
        cluster = await stack.enter_async_context(
            LocalCluster(members, bus, cluster=settings.name, ring=ring, threshold=threshold)
        )
        driver = stack.enter_context(
            partifact_driver(args, members, cells, threshold, settings.tick)
        )
        registry = cluster_registry(cluster, migrator=migrator, driver=driver)
        stack.enter_context(metrics_server(args.metrics, registry))
        served = await stack.enter_async_context(
            served_cluster(args, config, settings, members, migrator, registry, driver)
        )
        summary = await _run_ticks(args, settings, cluster, cells, ticks, migrator, driver, served)
        roles = roles_summary(driver) if driver is not None else None
        end = cluster.history[-1].time if cluster.history else 0.0
        for m in members:
            if isinstance(m, CellMember):
                await m.drain(end)  # runs still in progress finish (by their deadline)
        return summary, cluster.history, roles


async def _run_ticks(
    args: argparse.Namespace,
    settings: ClusterConfig,
    cluster: LocalCluster,
    cells: list[PhaseSupervisor],
    ticks: int,
    migrator: GlyphMigrator | None,
    driver: PartifactDriver | None,
    served: ServedCluster | None = None,
) -> ClusterSummary:
    """Run the cluster's ticks with the glyph migrator and the partifact driver after each."""
    on_tick = _reporter(args, cluster, cells, ticks, migrator, driver, served)

    async def after(report: TickReport) -> None:
        if migrator is not None:
            await migrator.step(report.c_cluster, report.band, report.time)
        if driver is not None:
            await step_driver(driver, report, args.silence_genesis)

    with on_tick as show:
        return await cluster.run(
            ticks, settings.tick, realtime=not args.fast, on_tick=show, after=after
        )


@contextlib.contextmanager
def _reporter(
    args: argparse.Namespace,
    cluster: LocalCluster,
    cells: list[PhaseSupervisor],
    ticks: int,
    migrator: GlyphMigrator | None = None,
    driver: PartifactDriver | None = None,
    served: ServedCluster | None = None,
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, the live view on a terminal, or a progress line about once a second; each
    tick also goes to the served cluster API when there is one."""
    with _reporter_only(args, cluster, cells, ticks, migrator, driver) as show:
        if served is None:
            yield show
            return
        members = cluster.members

        def both(report: TickReport) -> None:
            served.record(report, members)
            show(report)

        yield both


@contextlib.contextmanager
def _reporter_only(
    args: argparse.Namespace,
    cluster: LocalCluster,
    cells: list[PhaseSupervisor],
    ticks: int,
    migrator: GlyphMigrator | None = None,
    driver: PartifactDriver | None = None,
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, the live view on a terminal, or a progress line about once a second."""
    if args.json:
        glyphs = args.glyphs > 0

        def emit(report: TickReport) -> None:
            row = report.to_json()
            if glyphs:
                row["glyphs"] = glyph_rows(cluster)
            if migrator is not None:
                row["migrations"] = migrator.row()
            if driver is not None and driver.history:
                row.update(driver.history[-1].to_json())
            print(json.dumps(row), flush=True)

        yield emit
    elif Console().is_terminal:
        with Live(refresh_per_second=8, transient=False) as live:

            def show(report: TickReport) -> None:
                view = live_view(report, cluster, cells)
                if driver is not None and driver.history:
                    view = Group(*roles_view(driver.history[-1]), view)
                live.update(view)

            yield show
    else:
        yield Progress(ticks, t_sync=args.cells == "full", driver=driver)
