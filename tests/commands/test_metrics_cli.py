"""`becomingone up --metrics` and `cluster --metrics` as real processes on free loopback
ports, scraped while they run and stopped by PID; `up --serve` answers /metrics on the API;
a bad [HOST:]PORT is one line and exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from becomingone.cli import main

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "becomingone.cli"]
CONFIG = """\
becomingone:
  name: metrics-e2e
  master: {tau_max: 30.0, witness_interval: 5.0}
  memory: {flush_interval: 0.25}
  witnessing: {meta_interval: 1.0, meta_window: 50}
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def values(text: str) -> dict[str, float]:
    """``name{labels}`` → value, labels sorted, from Prometheus exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def poll(url: str, key: str, proc: subprocess.Popen[str], at_least: float = 0.0) -> float:
    """Scrape ``url`` until ``key`` is present and ≥ ``at_least`` (bounded: 60 s)."""
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            got = values(httpx.get(url, timeout=5.0).text)
        except httpx.TransportError:
            got = {}
        if got.get(key, -1.0) >= at_least:
            return got[key]
        time.sleep(0.2)
    raise AssertionError(f"{key} never reached {at_least} at {url}")


@pytest.fixture
def process(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; each stopped by its PID at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def start(args: list[str], started: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """Start the CLI with ``args`` (stdout to /dev/null, stderr kept)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    started.append(proc)
    return proc


def test_up_metrics_serves_a_running_cell(
    tmp_path: Path, process: list[subprocess.Popen[str]]
) -> None:
    """`up --metrics 127.0.0.1:PORT`: the collapse counter of a collapsing stream grows between
    two scrapes, the chain gauge reads verified, and SIGTERM ends the cell with status 0."""
    config = tmp_path / "cell.yaml"
    config.write_text(CONFIG)
    port = free_port()
    args = ["up", "--config", str(config), "--data-dir", str(tmp_path / "d"), "--json"]
    proc = start([*args, "--metrics", f"127.0.0.1:{port}"], process)
    url = f"http://127.0.0.1:{port}/metrics"
    key = '{cell="metrics-e2e"}'
    first = poll(url, f"becomingone_collapses_total{key}", proc, at_least=1.0)
    poll(url, f"becomingone_collapses_total{key}", proc, at_least=first + 2.0)
    assert poll(url, f"becomingone_witness_chain_verified{key}", proc) == 1.0
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"metrics at {url}" in err


def test_up_serve_answers_metrics_on_the_api(
    tmp_path: Path, process: list[subprocess.Popen[str]]
) -> None:
    """`up --serve` exposes the same metrics at /metrics beside /api/v1."""
    port = free_port()
    data = str(tmp_path / "d")
    proc = start(["up", "--data-dir", data, "--serve", f"127.0.0.1:{port}"], process)
    samples = poll(
        f"http://127.0.0.1:{port}/metrics", 'becomingone_samples_total{cell="cell"}', proc, 1.0
    )
    assert samples >= 1.0
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_cluster_metrics_serves_a_running_cluster(
    tmp_path: Path, process: list[subprocess.Popen[str]]
) -> None:
    """`cluster --metrics`: ticks, C_cluster, every cell's received packets and the band are
    scraped while the cluster runs; the ticks counter grows."""
    port = free_port()
    proc = start(
        ["cluster", "--nodes", "4", "--duration", "30", "--json", "--metrics", str(port)], process
    )
    url = f"http://127.0.0.1:{port}/metrics"
    ticks = poll(url, 'becomingone_cluster_ticks_total{cluster="local"}', proc, at_least=5.0)
    poll(url, 'becomingone_cluster_ticks_total{cluster="local"}', proc, at_least=ticks + 5.0)
    got = values(httpx.get(url, timeout=5.0).text)
    for i in range(4):
        assert got[f'becomingone_ssep_packets_received_total{{cell="cell-{i:04d}"}}'] > 0
    assert 'becomingone_cluster_coherence{cluster="local"}' in got
    assert sum(v for k, v in got.items() if k.startswith("becomingone_cluster_band")) == 1.0
    proc.kill()


def test_cluster_serve_answers_metrics_beside_the_cluster_api(
    process: list[subprocess.Popen[str]],
) -> None:
    """`cluster --serve`: /metrics on the cluster API gives the same cluster metrics."""
    port = free_port()
    proc = start(["cluster", "--nodes", "3", "--duration", "30", "--serve", str(port)], process)
    url = f"http://127.0.0.1:{port}/metrics"
    ticks = poll(url, 'becomingone_cluster_ticks_total{cluster="local"}', proc, at_least=3.0)
    assert ticks >= 3.0
    got = values(httpx.get(url, timeout=5.0).text)
    assert got['becomingone_ssep_packets_received_total{cell="cell-0002"}'] > 0
    proc.kill()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--metrics", "nine"], "--metrics: 'nine': the port must be a number"),
        (["up", "--metrics", "70000"], "--metrics: '70000': the port must be in 0..65535"),
        (["up", "--metrics", "10.1.2.3:9100"], "--metrics: 10.1.2.3 is not a loopback address"),
        (["cluster", "--metrics", "x:y"], "--metrics: 'x:y': the port must be a number"),
        (
            ["cluster", "--bus", "nats", "--metrics", "9100"],
            "--metrics: is for the in-process bus",
        ),
        (
            ["node", "--bus", "nats://127.0.0.1:1", "--metrics", "nine"],
            "--metrics: 'nine': the port must be a number",
        ),
        (
            ["node", "--bus", "nats://127.0.0.1:1", "--metrics", "10.1.2.3:9100"],
            "--metrics: 10.1.2.3 is not a loopback address",
        ),
        (
            ["node", "--bus", "nats://127.0.0.1:1", "--kind", "relay", "--metrics", "9100"],
            "--metrics: a relay runs no cell",
        ),
    ],
)
def test_a_bad_metrics_address_is_one_line_and_status_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad [HOST:]PORT (or --metrics where it does not apply) is refused before anything
    starts: one line on stderr naming --metrics, exit status 2."""
    assert main([*argv, "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
