"""How a running cell shows itself: a live rich table, JSON lines, and the closing summary.

Rule: presentation only; it reads :class:`~becomingone.runtime.cell.CellStatus` values and
writes to the given console or stream.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from becomingone.runtime.cell import CellStatus
from becomingone.witnessing import VerifyReport

__all__ = ["json_line", "status_table", "summary", "summary_text"]


def json_line(status: CellStatus, stream: TextIO) -> None:
    """One JSON object per line, flushed (``becomingone up --json``)."""
    stream.write(json.dumps(status.as_json(), allow_nan=False) + "\n")
    stream.flush()


def _bar(value: float, width: int = 20) -> str:
    filled = max(0, min(width, round(value * width)))
    return "█" * filled + "·" * (width - filled)


def status_table(name: str, source: str, status: CellStatus, threshold: float) -> Table:
    """The live view: the three |T|², Δ_phase, the decision and the running counts."""
    table = Table(title=f"BecomingONE cell {name!r} · source {source}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_column("", no_wrap=True)
    table.add_row("stream time", f"{status.t:.2f} s", f"{status.samples} samples")
    for label, value in (
        ("Master |T|²", status.master),
        ("Emissary |T|²", status.emissary),
        ("Sync |T|²", status.sync),
    ):
        style = "green" if value >= threshold else "yellow"
        table.add_row(label, f"{value:.4f}", f"[{style}]{_bar(value)}[/]")
    table.add_row("Δ_phase", f"{status.delta_phase:.4f}", "")
    colour = "green" if status.outcome == "collapse" else "dim"
    table.add_row("last decision", f"[{colour}]{status.outcome}[/]", "")
    table.add_row("collapses", str(status.collapses), f"dissipations {status.dissipations}")
    chain = {None: "not yet checked", True: "verified", False: "[red]BROKEN[/]"}[status.chain_ok]
    table.add_row("witnessed", str(status.witnessed), f"chain {chain}")
    if status.rejected or status.hook_failures or status.vetoed:
        table.add_row(
            "rejected / vetoed",
            f"{status.rejected} / {status.vetoed}",
            f"hook failures {status.hook_failures}",
        )
    return table


def summary(status: CellStatus, report: VerifyReport, data_dir: str) -> dict[str, Any]:
    """The closing summary as a dict."""
    return {
        "data_dir": data_dir,
        "samples": status.samples,
        "collapses": status.collapses,
        "dissipations": status.dissipations,
        "realigns": status.realigns,
        "witnessed": status.witnessed,
        "rejected": status.rejected,
        "chain_verified": report.ok,
        "chain": str(report),
    }


def summary_text(data: dict[str, Any], console: Console) -> None:
    """Print the closing summary for people."""
    chain = "[green]yes[/]" if data["chain_verified"] else f"[red]NO[/] ({data['chain']})"
    console.print(
        f"cell summary ({data['data_dir']}): {data['samples']} samples, "
        f"{data['collapses']} collapses, {data['dissipations']} dissipations, "
        f"{data['witnessed']} witness records; chain verified: {chain}"
    )
