"""``becomingone cluster``: run an in-process phase-locked cluster with a live view.

Rule: argument checks, then library calls (:mod:`becomingone.runtime`) and display only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from becomingone.config import load_config
from becomingone.errors import InputError
from becomingone.runtime import (
    ClusterMember,
    ClusterSummary,
    LocalCluster,
    TickReport,
    build_supervisors,
)
from becomingone.runtime.cell_member import CellTotals, build_cell_members, cell_totals
from becomingone.sync import PhaseSupervisor
from becomingone.transport import MemoryBus

SPARK = " ▁▂▃▄▅▆▇█"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cluster`` subcommand."""
    p = sub.add_parser("cluster", help="run an in-process phase-locked cluster (live view)")
    p.add_argument("--nodes", type=int, default=16, help="number of cells (default 16)")
    p.add_argument("--topology", default="mesh", choices=["mesh", "hub", "ring", "fractal"])
    p.add_argument("--duration", type=float, default=15.0, help="seconds to run (default 15)")
    p.add_argument("--tick", type=float, default=50.0, help="tick period in ms (default 50)")
    p.add_argument("--alpha", type=float, default=0.01, help="CPS phase gain α (default 0.01)")
    p.add_argument("--beta", type=float, default=0.0, help="PLL frequency gain β (default 0)")
    p.add_argument("--drift", type=float, default=0.0, help="clock drift spread in ppm")
    p.add_argument("--loss", type=float, default=0.0, help="packet loss probability on the bus")
    p.add_argument("--branching", type=int, default=4, help="fractal branching b (default 4)")
    p.add_argument("--spread", type=float, default=None, help="initial phase spread, cycles")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="virtual time: do not wait between ticks")
    p.add_argument("--json", action="store_true", help="one JSON object per tick, then summary")
    p.add_argument("--plot", type=Path, help="save phase circle + coherence timeline (PNG)")
    p.add_argument(
        "--cells",
        default="cps",
        choices=["cps", "full"],
        help="cps: each cell is its phase supervisor only; full: a living cell (transducers, "
        "sync layer, witness chain, SQLite memory) on its own stream, with its supervisor",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="with --cells full: keep the cells' data here (one folder per cell); "
        "default: a temporary folder removed at the end",
    )
    p.add_argument("--config", type=Path, help="with --cells full: the cells' becomingone.yaml")
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= 2000:
        raise InputError("--nodes", f"must be in [1, 2000], got {args.nodes}")
    for name in ("duration", "tick"):
        value = getattr(args, name)
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"--{name}", f"must be a finite number > 0, got {value}")
    if not 0.0 < args.alpha < 1.0:
        raise InputError("--alpha", f"must be in (0, 1), got {args.alpha}")
    if not 0.0 <= args.loss < 1.0:
        raise InputError("--loss", f"must be in [0, 1), got {args.loss}")


def run(args: argparse.Namespace) -> int:
    """Run the cluster and print the view, JSON lines and the summary."""
    _check(args)
    spread = args.spread if args.spread is not None else (0.5 if args.topology == "ring" else 1.0)
    cells = build_supervisors(
        args.nodes,
        args.topology,
        alpha=args.alpha,
        beta=args.beta,
        drift_ppm=args.drift,
        spread=spread,
        seed=args.seed,
        branching=args.branching,
    )
    ticks = max(1, round(args.duration * 1000.0 / args.tick))
    if args.cells == "full":
        summary, history, totals = _run_full(args, cells, ticks)
    else:
        summary, history = asyncio.run(_drive(args, cells, ticks, cells))
        totals = None
    if args.json:
        doc = summary.to_json()
        if totals is not None:
            doc["cells"] = totals.to_json()
        print(json.dumps(doc))
    else:
        console = Console()
        if not console.is_terminal:
            console.print()  # the live view's last frame ends without a newline off a terminal
        console.print(_summary_table(summary, totals))
    if args.plot is not None:
        from becomingone.commands._plots import save_phase_and_timeline

        save_phase_and_timeline(
            args.plot,
            history[-1].thetas,
            [h.c_cluster for h in history],
            f"{args.nodes} cells, {args.topology}",
            r_series=[h.r for h in history],
        )
    return 0


def _run_full(
    args: argparse.Namespace, cells: list[PhaseSupervisor], ticks: int
) -> tuple[ClusterSummary, list[TickReport], CellTotals]:
    """Run with a full cell behind every supervisor; close (and verify) every cell after."""
    config = load_config(args.config)
    with contextlib.ExitStack() as stack:
        base = args.data_dir
        if base is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="b1-cluster-")))
        members = build_cell_members(cells, base, config, seed=args.seed)
        try:
            summary, history = asyncio.run(
                _drive(args, [m.supervisor for m in members], ticks, members)
            )
        finally:
            verified = [m.close() for m in members]
        return summary, history, cell_totals(members, verified)


async def _drive(
    args: argparse.Namespace,
    cells: list[PhaseSupervisor],
    ticks: int,
    members: Sequence[ClusterMember],
) -> tuple[ClusterSummary, list[TickReport]]:
    bus = MemoryBus(loss=args.loss, seed=args.seed)
    async with LocalCluster(members, bus, ring=args.topology == "ring") as cluster:
        if args.json:

            def emit(report: TickReport) -> None:
                print(json.dumps(report.to_json()), flush=True)

            summary = await cluster.run(
                ticks, args.tick / 1000.0, realtime=not args.fast, on_tick=emit
            )
        else:
            with Live(refresh_per_second=8, transient=False) as live:

                def show(report: TickReport) -> None:
                    live.update(_view(report, cluster, cells))

                summary = await cluster.run(
                    ticks, args.tick / 1000.0, realtime=not args.fast, on_tick=show
                )
        return summary, cluster.history


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
    table = Table("cell", "θ (cycles)", "f (Hz)", "last err", "steps", "stable", "rejected")
    for cell in cells[:16]:
        s = cell.snapshot()
        table.add_row(
            s.node_id,
            f"{s.theta:.4f}",
            f"{s.frequency:.6f}",
            f"{s.last_error:+.4f}",
            str(s.steps),
            "yes" if s.stable else "no",
            str(sum(s.rejected.values())),
        )
    if len(cells) > 16:
        table.caption = f"first 16 of {len(cells)} cells"
    return Group(head, phase_circle(report.thetas), Text(f"C over time │{spark}│"), table)


def _summary_table(summary: ClusterSummary, totals: CellTotals | None = None) -> Table:
    table = Table("summary", "value", title="cluster run")
    for band, tick in summary.ticks_to_band.items():
        table.add_row(f"ticks to {band}", "never" if tick is None else str(tick))
    table.add_row("final C_cluster", f"{summary.c_cluster:.4f}")
    table.add_row("final R", f"{summary.r:.4f}")
    table.add_row("final band", summary.band.value)
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(summary.rejected.items())) or "none"
    table.add_row("rejected packets", rejected)
    table.add_row("twisted ring", "yes" if summary.twisted else "no")
    table.add_row("bus", ", ".join(f"{k}={v}" for k, v in sorted(summary.bus.items())))
    if totals is not None:
        table.add_row(
            "full cells",
            f"{totals.cells} cells, {totals.samples} samples, {totals.collapses} collapses, "
            f"{totals.dissipations} dissipations, {totals.witnessed} witnessed",
        )
        table.add_row("chains verified", f"{totals.chains_verified}/{totals.cells}")
    return table
