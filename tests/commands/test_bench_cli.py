"""``becomingone bench``: the small profile runs a real pinned ``up`` process and reports real
figures (not the budget: timing on a shared machine is noisy); the cluster profile's command is
the NATS benchmark's largest case; bad input is one line and exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from becomingone.cli import main
from becomingone.runtime.profile import (
    LARGEST_CLUSTER,
    Budget,
    SmallProfile,
    cluster_bench_argv,
    process_cpu_seconds,
)

CLI = [sys.executable, "-m", "becomingone.cli"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_small_profile_reports_real_figures() -> None:
    """A 4 s run pinned to one core: the JSON has every field; RSS and CPU are > 0 and
    consistent (CPU seconds over wall seconds), the cell saw ~100 samples a second, and each
    verdict is PASS or MISS as the figure against the budget says."""
    out = subprocess.run(
        [*CLI, "bench", "--profile", "small", "--duration", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=170,
        check=True,
    ).stdout
    data = json.loads(out)
    assert data["profile"] == "small" and data["duration"] == 4.0
    assert data["rss_mb"] > 10.0 and data["cpu_seconds"] > 0.0
    assert data["wall_seconds"] >= 4.0
    assert data["cpu_percent"] == pytest.approx(100 * data["cpu_seconds"] / data["wall_seconds"])
    assert 250 <= data["samples"] <= 450  # 100 Hz for up to 4 s (first status after start-up)
    assert data["steady_cpu_percent"] is not None and data["steady_cpu_percent"] > 0.0
    budget, verdict = data["budget"], data["verdict"]
    assert verdict["cpu"] == ("PASS" if data["cpu_percent"] < budget["cpu_percent"] else "MISS")
    assert verdict["rss"] == ("PASS" if data["rss_mb"] < budget["rss_mb"] else "MISS")


def test_verdicts_compare_each_figure_with_its_budget() -> None:
    """PASS strictly under the budget, MISS at or over it, per figure."""
    base = dict(duration=1.0, core=0, wall_seconds=1.0, cpu_seconds=0.1, steady_cpu_percent=1.0)
    fits = SmallProfile(**base, cpu_percent=9.9, rss_mb=149.0, samples=1, exit_code=0)  # type: ignore[arg-type]
    over = SmallProfile(**base, cpu_percent=10.0, rss_mb=151.0, samples=1, exit_code=0)  # type: ignore[arg-type]
    assert fits.verdicts(Budget()) == {"cpu": True, "rss": True}
    assert over.verdicts(Budget()) == {"cpu": False, "rss": False}


def test_process_cpu_seconds_grows_with_work() -> None:
    """``/proc`` accounting of this process rises after a busy loop."""
    import os

    before = process_cpu_seconds(os.getpid())
    total = 0
    for i in range(3_000_000):
        total += i * i
    assert total > 0
    assert process_cpu_seconds(os.getpid()) > before


def test_cluster_profile_runs_the_largest_case_of_the_nats_benchmark() -> None:
    """The cluster command is bench/nats_cluster.py with the last (largest) case of its FULL
    list, or its --quick case."""
    text = (ROOT / "bench" / "nats_cluster.py").read_text()
    full = re.search(r'^FULL = "([^"]+)"', text, re.M)
    assert full is not None
    assert full.group(1).split(",")[-1] == LARGEST_CLUSTER
    argv = cluster_bench_argv(quick=False)
    assert Path(argv[1]) == ROOT / "bench" / "nats_cluster.py"
    assert argv[2:] == ["--cases", LARGEST_CLUSTER]
    assert cluster_bench_argv(quick=True)[2:] == ["--quick"]


@pytest.mark.timeout(300)
def test_cluster_profile_quick_runs_node_processes_on_nats() -> None:
    """`bench --profile cluster --quick` really runs the benchmark's quick case (8 fractal
    node processes on a nats-server): exit 0 (a MISS is a finding), and the report has each
    figure — start-up, packet age, per-node CPU and RSS, ticks to SHARED against the
    in-process run — with every node exiting 0 and no packet rejected."""
    run = subprocess.run(
        [*CLI, "bench", "--profile", "cluster", "--quick"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "fractal 8 nodes" in out, out
    assert re.search(r"age\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms", out), out
    assert re.search(r"per node\s+CPU [\d.]+ %.*RSS \d+ MB", out), out
    shared = re.search(r"SHARED\s+after (\d+) ticks vs (\d+) in-process", out)
    assert shared is not None and int(shared.group(1)) > 0 and int(shared.group(2)) > 0, out
    assert "rejected 0; exits [0]" in out
    assert re.search(r"target p99 < 50 ms and ratio within 15 %: (ok|MISS)", out), out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--profile", "small", "--duration", "0"], "--duration: must be > 0"),
        (["--profile", "small", "--quick"], "--quick: only for --profile cluster"),
        (["--profile", "cluster", "--json"], "--json: only for --profile small"),
        (["--profile", "small", "--core", "4096"], "--core: core 4096 is not one of"),
        (["--profile", "small", "--config", "/nonexistent.yaml"], "--config: /nonexistent.yaml"),
        (["--profile", "cluster", "--config", "x.yaml"], "--config: only for --profile small"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad combination names its flag on one stderr line; nothing is started."""
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
