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
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from becomingone.commands._partifacts import (
    add_summary_rows,
    check_roles_args,
    partifact_driver,
    progress_suffix,
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
from becomingone.sync import PhaseSupervisor, VerifyCache
from becomingone.transport import MemoryBus

SPARK = " ▁▂▃▄▅▆▇█"


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
        f"{DEMO_CELLS} cells (full cells; default 0)",
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
    check_roles_args(args)
    if args.glyphs and args.bus == "nats":
        raise InputError("--glyphs", "runs on the in-process bus only (for now)")
    if args.glyphs and args.cells == "cps":
        raise InputError("--glyphs", "needs full cells (--cells full): glyphs live on a cell")
    if args.cells is None:
        args.cells = "full" if args.glyphs else "cps"


def run(args: argparse.Namespace) -> int:
    """Run the cluster and print the view (or progress lines), JSON lines and the summary."""
    _check(args)
    config = load_config(args.config)
    settings = cluster_settings(args, config)
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

        summary, history = run_nats(args, settings, ticks, config.kairos.threshold)
        totals, cache, glyphs, roles = None, None, None, None
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
        table = _summary_table(summary, totals, glyphs, t_sync=t_sync)
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
        migrator = GlyphMigrator(members) if args.glyphs else None
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
    async with LocalCluster(
        members, bus, cluster=settings.name, ring=ring, threshold=threshold
    ) as cluster:
        with partifact_driver(args, members, cells, threshold, settings.tick) as driver:
            summary = await _run_ticks(args, settings, cluster, cells, ticks, migrator, driver)
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
) -> ClusterSummary:
    """Run the cluster's ticks with the glyph migrator and the partifact driver after each."""
    on_tick = _reporter(args, cluster, cells, ticks, migrator, driver)

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
) -> Iterator[Callable[[TickReport], None]]:
    """JSON lines, the live view on a terminal, or a progress line about once a second."""
    if args.json:
        glyphs = args.glyphs > 0

        def emit(report: TickReport) -> None:
            row = report.to_json()
            if glyphs:
                row["glyphs"] = _glyph_rows(cluster)
            if migrator is not None:
                row["migrations"] = migrator.row()
            if driver is not None and driver.history:
                row.update(driver.history[-1].to_json())
            print(json.dumps(row), flush=True)

        yield emit
    elif Console().is_terminal:
        with Live(refresh_per_second=8, transient=False) as live:

            def show(report: TickReport) -> None:
                view = _view(report, cluster, cells)
                if driver is not None and driver.history:
                    view = Group(*roles_view(driver.history[-1]), view)
                live.update(view)

            yield show
    else:
        yield _Progress(ticks, t_sync=args.cells == "full", driver=driver)


def _glyph_rows(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    """Per full cell of ``cluster``: glyphs owned, runs, failures, ends and load."""
    return {m.node_id: m.glyphs.row() for m in cluster.members if isinstance(m, CellMember)}


class _Progress:
    """Plain progress lines for a pipe or a log file: the first tick, then about one per
    second of wall time, and the last tick."""

    def __init__(
        self,
        ticks: int,
        every: float = 1.0,
        *,
        t_sync: bool = True,
        driver: PartifactDriver | None = None,
    ) -> None:
        self.ticks, self.every = ticks, every
        self.t_sync = t_sync  # False: cps-only cells, which share no T_sync
        self.driver = driver
        self._next = 0.0

    def __call__(self, report: TickReport) -> None:
        now = time.monotonic()
        if now < self._next and report.tick + 1 < self.ticks:
            return
        self._next = now + self.every
        t_global = f"{report.t_global_sq:.4f}" if self.t_sync else "-"
        print(
            f"tick {report.tick + 1}/{self.ticks}  C_cluster {report.c_cluster:.4f}  "
            f"R {report.r:.4f}  band {report.band.value}  |T_global|² {t_global}  "
            f"rejected {report.rejected}"
            + (
                progress_suffix(self.driver.history[-1])
                if self.driver and self.driver.history
                else ""
            ),
            flush=True,
        )


def phase_circle(thetas: tuple[float, ...], size: int = 11) -> Text:
    """A text phase circle: each cell a dot on a circle of ``size`` rows (0 at the right)."""
    width = size * 2 + 1
    grid = [[" "] * width for _ in range(size)]
    for k in range(64):
        a = 2 * math.pi * k / 64
        r, c = _cell_pos(a, size)
        grid[r][c] = "·"
    for t in thetas:
        r, c = _cell_pos(2 * math.pi * t, size)
        grid[r][c] = "●"
    return Text("\n".join("".join(row) for row in grid))


def _cell_pos(angle: float, size: int) -> tuple[int, int]:
    half = (size - 1) / 2
    row = round(half - half * math.sin(angle))
    col = round(size + size * math.cos(angle) * 0.95)
    return row, min(col, size * 2)


def _view(report: TickReport, cluster: LocalCluster, cells: list[PhaseSupervisor]) -> Group:
    series = [h.c_cluster for h in cluster.history[-60:]]
    spark = "".join(SPARK[min(8, int(c * 8.999))] for c in series)
    line = (
        f"tick {report.tick}  C_cluster {report.c_cluster:.4f}  R {report.r:.4f}  "
        f"band {report.band.value}  rejected {report.rejected}"
    )
    if report.winding is not None:
        line += f"  winding {report.winding}" + ("  TWISTED" if report.winding else "")
    head = Text(line)
    table = Table(
        "cell", "θ (cycles)", "f (Hz)", "last err", "steps", "stable", "rejected", *SYNC_COLUMNS
    )
    for cell in cells[:16]:
        s = cell.snapshot()
        own = 0.0 if s.mesh is None else s.mesh.coherence
        table.add_row(
            s.node_id,
            f"{s.theta:.4f}",
            f"{s.frequency:.6f}",
            f"{s.last_error:+.4f}",
            str(s.steps),
            "yes" if s.stable else "no",
            str(sum(s.rejected.values())),
            f"{abs(s.t_sync) ** 2:.4f}",
            f"{own:.4f}",
        )
    if len(cells) > 16:
        table.caption = f"first 16 of {len(cells)} cells"
    mesh = t_global_line(report, cluster.collapses.threshold, cluster.collapses.fired)
    parts: list[Text | Table] = [
        head,
        mesh,
        phase_circle(report.thetas),
        Text(f"C over time │{spark}│"),
        table,
    ]
    rows = _glyph_rows(cluster)
    if any(r["glyphs"] or r["ended"] for r in rows.values()):
        cells_line = "  ".join(
            f"{c} {r['glyphs']} ({r['fires']} fires)" for c, r in rows.items() if r["glyphs"]
        )
        parts.insert(2, Text(f"glyphs: {cells_line or 'none left'}"))
    return Group(*parts)


#: Per-cell columns of the live views: |T_sync|² and the cell's own |T_global|².
SYNC_COLUMNS = ("|T_sync|²", "own |T_global|²")


def t_global_line(report: TickReport, threshold: float, collapses: int) -> Text:
    """The mesh synchronisation line of a live view: T_global, |T_global|² against I_c and the
    cluster collapses counted so far (green at or above I_c)."""
    z = report.t_global
    style = "bold green" if report.t_global_sq >= threshold else ""
    line = Text(f"T_global {z.real:+.4f}{z.imag:+.4f}i  |T_global|² ")
    line.append(f"{report.t_global_sq:.4f}", style=style)
    line.append(f"  I_c {threshold:g}  cluster collapses {collapses}")
    if report.cluster_collapse:
        line.append("  CLUSTER COLLAPSE", style="bold green")
    return line


def _summary_table(
    summary: ClusterSummary,
    totals: CellTotals | None = None,
    glyphs: GlyphTotals | None = None,
    *,
    t_sync: bool = True,
) -> Table:
    table = Table("summary", "value", title="cluster run")
    for band, tick in summary.ticks_to_band.items():
        table.add_row(f"ticks to {band}", "never" if tick is None else str(tick))
    table.add_row("final C_cluster", f"{summary.c_cluster:.4f}")
    table.add_row("final R", f"{summary.r:.4f}")
    table.add_row("final band", summary.band.value)
    if t_sync:
        table.add_row("final |T_global|²", f"{summary.t_global_sq:.4f}")
        table.add_row("cluster collapses", str(summary.cluster_collapses))
    else:
        table.add_row("T_global", "- (cps cells share no T_sync; --cells full)")
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(summary.rejected.items())) or "none"
    table.add_row("rejected packets", rejected)
    table.add_row("twisted ring", "yes" if summary.twisted else "no")
    table.add_row("bus", ", ".join(f"{k}={v}" for k, v in sorted(summary.bus.items())))
    if totals is not None:
        table.add_row(
            "full cells",
            f"{totals.cells} cells, {totals.samples} samples, {totals.collapses} collapses, "
            f"{totals.dissipations} dissipations, {totals.witnessed} witnessed, "
            f"{totals.cluster_collapses} cluster collapses witnessed",
        )
        table.add_row("chains verified", f"{totals.chains_verified}/{totals.cells}")
    if glyphs is not None:
        g = glyphs
        table.add_row(
            "glyphs",
            f"{g.submitted} submitted, {g.owned} owned, {g.ended} ended, {g.fires} fires "
            f"({g.errors} errors, {g.timeouts} timeouts, {g.skipped} skipped)",
        )
        table.add_row("migrations", f"{g.migrations} ({g.migrations_rejected} rejected)")
        table.add_row("double fires / glyphs lost", f"{g.double_fires} / {g.lost}")
    return table
