"""How ``becomingone cluster`` shows a run: the live view, progress lines and the summary table.

Rule: presentation only: it reads tick reports, supervisors' snapshots, cell and glyph totals
and the partifact driver's history, and builds rich renderables or lines; it runs nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from becomingone.commands._partifacts import progress_suffix
from becomingone.runtime import ClusterSummary, LocalCluster, PartifactDriver, TickReport
from becomingone.runtime.cell_glyphs import GlyphTotals
from becomingone.runtime.cell_member import CellMember, CellTotals
from becomingone.sync import PhaseSupervisor

__all__ = [
    "SPARK",
    "SYNC_COLUMNS",
    "Progress",
    "glyph_rows",
    "live_view",
    "phase_circle",
    "summary_table",
    "t_global_line",
]

SPARK = " ▁▂▃▄▅▆▇█"


def glyph_rows(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    """Per full cell of ``cluster``: glyphs owned, runs, failures, ends and load."""
    return {m.node_id: m.glyphs.row() for m in cluster.members if isinstance(m, CellMember)}


class Progress:
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


def live_view(report: TickReport, cluster: LocalCluster, cells: list[PhaseSupervisor]) -> Group:
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
    rows = glyph_rows(cluster)
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


def summary_table(
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
