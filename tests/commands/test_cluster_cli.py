"""The ``cluster`` and ``simulate`` commands, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "becomingone.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI and capture its output."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False)


def test_cluster_json_lines_summary_and_plot(tmp_path: Path) -> None:
    """--json prints one object per tick with the required keys, then a summary; --plot saves."""
    png = tmp_path / "cluster.png"
    out = run(
        "cluster",
        "--nodes",
        "8",
        "--topology",
        "hub",
        "--duration",
        "12",
        "--tick",
        "50",
        "--fast",
        "--json",
        "--drift",
        "100",
        "--plot",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    assert len(ticks) == 240
    assert {"tick", "c_cluster", "r", "band", "rejected"} <= set(ticks[0])
    assert summary["summary"] and summary["band"] == "SHARED"
    assert summary["ticks_to_band"]["SHARED"] is not None
    assert png.stat().st_size > 10_000


def test_cluster_live_view_prints_summary() -> None:
    """Without --json, the live view ends with a summary table."""
    out = run("cluster", "--nodes", "4", "--topology", "ring", "--duration", "1", "--fast")
    assert out.returncode == 0, out.stderr
    assert "ticks to SHARED" in out.stdout and "C_cluster" in out.stdout


def test_bad_cli_values_exit_2_naming_the_option() -> None:
    """A bad --alpha or --loss exits with status 2 and names the option."""
    out = run("cluster", "--alpha", "3")
    assert out.returncode == 2 and "--alpha" in out.stderr
    out = run("simulate", "--loss", "1.5")
    assert out.returncode == 2 and "loss" in out.stderr


def test_simulate_table_and_json(tmp_path: Path) -> None:
    """simulate prints rounds to each level next to the prediction, and JSON on request."""
    out = run("simulate", "--nodes", "2000", "--rounds", "400", "--plot", str(tmp_path / "s.png"))
    assert out.returncode == 0, out.stderr
    assert "rounds to C >= 0.99" in out.stdout
    data = json.loads(run("simulate", "--nodes", "500", "--topology", "ring", "--json").stdout)
    assert data["topology"] == "ring" and isinstance(data["winding"], int)
    assert (tmp_path / "s.png").stat().st_size > 10_000
