"""Prometheus metrics of ``becomingone node`` processes (``--metrics``, and ``/metrics`` beside
``--serve``), scraped from real node processes on a real ``nats-server`` and parsed with
``prometheus_client.parser``; and the node collector read in one process for a node's glyphs.

Every process is started here on free loopback ports and stopped by pid; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from becomingone.runtime import build_supervisors
from becomingone.runtime.cell_member import CellMember, build_cell_members
from becomingone.runtime.metrics import NodeCollector, node_registry
from becomingone.runtime.node import RosterFile, SupervisedNode
from becomingone.transport import MemoryBus, connect_nats
from becomingone.transport.natsd import NatsServers
from tests.commands.test_metrics_cli import free_port, values
from tests.helpers import gone
from tests.runtime.test_glyph_migrate import _config, _probe
from tests.runtime.test_node import settings
from tests.runtime.test_node_glyphs import ListedRecords, _nodes

pytestmark = pytest.mark.timeout(180)

FLAGS = ["--topology", "mesh", "--tick", "50", "--alpha", "0.3"]
NAMES = ["cell-0000", "cell-0001", "cell-0002"]


def scrape_until(
    url: str, check: Callable[[dict[str, float]], bool], procs: dict[str, Any], seconds: float
) -> dict[str, float]:
    """Scrape ``url`` every 0.25 s until ``check(values)`` holds (bounded); the last values."""
    deadline = time.monotonic() + seconds
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited {proc.returncode}"
        try:
            got = values(httpx.get(url, timeout=5.0).text)
        except httpx.TransportError:
            got = {}
        if got and check(got):
            return got
        time.sleep(0.25)
    raise AssertionError(f"{url}: not within {seconds} s; last scrape {sorted(got.items())[:40]}")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[NatsServers, dict[str, subprocess.Popen[bytes]]]]:
    """A nats-server and the node processes a test starts (name → process); each stopped by
    pid afterwards (SIGTERM, then SIGKILL after 10 s) and checked gone."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        try:
            yield servers, procs
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            assert all(gone(p.pid) for p in procs.values())
    assert all(gone(pid) for pid in servers.pids)


def start_node(
    base: Path, urls: list[str], name: str, extra: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``becomingone node`` ``name`` on the shared roster file, its output in ``name.log``
    (``env``: the process's environment, default this one's)."""
    base.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "becomingone.cli",
        "node",
        "--bus",
        ",".join(urls),
        "--name",
        name,
        "--data-dir",
        str(base / name),
        "--roster",
        str(base / "roster.json"),
        "--json",
        *FLAGS,
        *extra,
    ]
    with open(base / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )


def test_node_processes_serve_their_cell_view_bus_and_consensus(
    tmp_path: Path, nodes: tuple[NatsServers, dict[str, subprocess.Popen[bytes]]]
) -> None:
    """Three full ``--roles`` nodes and a witness, each with ``--metrics``: a node's scrape
    shows its cell (samples, Master coherence), its view (both peers heard, three members,
    ticks), its NATS connection (up, messages published), and its consensus (a lifecycle stage,
    a decision recorded); a malformed packet sent to one node is counted under
    ``reason="malformed"`` there and at the witness; ``--serve`` answers the same metrics at
    ``/metrics``; every process exits 0 on SIGTERM."""
    servers, procs = nodes
    base = tmp_path / "nodes"
    ports = {name: free_port() for name in [*NAMES, "witness"]}
    serve_port = free_port()
    for i, name in enumerate(NAMES):
        extra = ["--kind", "full", "--join", "--roles", "--metrics", f"127.0.0.1:{ports[name]}"]
        if i == 0:
            extra += ["--serve", f"127.0.0.1:{serve_port}"]
        procs[name] = start_node(base, servers.urls, name, extra)
    procs["witness"] = start_node(
        base, servers.urls, "witness", ["--kind", "witness", "--metrics", str(ports["witness"])]
    )
    first = NAMES[0]
    url = f"http://127.0.0.1:{ports[first]}/metrics"
    cell = f'cell="{first}"'
    got = scrape_until(
        url,
        lambda v: (
            v.get(f"becomingone_cps_peers_heard{{{cell}}}") == 2
            and v.get(f"becomingone_samples_total{{{cell}}}", 0) > 0
            and v.get(f"becomingone_node_members{{{cell}}}") == 3
            and v.get('becomingone_consensus_decisions_total{cluster="local",outcome="passed"}', 0)
            >= 1
        ),
        procs,
        90,
    )
    assert got[f"becomingone_samples_total{{{cell}}}"] > 0
    assert 0.0 <= got[f"becomingone_master_coherence{{{cell}}}"] <= 1.0
    assert got[f"becomingone_node_ticks_total{{{cell}}}"] > 0
    assert 0.0 <= got[f"becomingone_cps_coherence_seen{{{cell}}}"] <= 1.0
    assert got[f"becomingone_nats_connected{{{cell}}}"] == 1
    assert got[f"becomingone_nats_messages_published_total{{{cell}}}"] > 0
    assert got[f"becomingone_nats_messages_delivered_total{{{cell}}}"] > 0
    stages = [k for k, v in got.items() if k.startswith("becomingone_lifecycle_stage{") and v == 1]
    assert len(stages) == 1, stages
    assert sum(v for k, v in got.items() if k.startswith("becomingone_roles{")) >= 1
    for event in ("conflicts", "errors", "stale"):  # the log's refusals, counted per node
        assert got[f'becomingone_consensus_log_total{{cluster="local",event="{event}"}}'] >= 0
    assert got.get(f'becomingone_ssep_packets_rejected_total{{{cell},reason="malformed"}}', 0) == 0

    async def forge() -> None:
        bus = await connect_nats(servers.urls, name="test-forger")
        try:
            await bus.publish(f"ssep.local.{first}", b"\x00 not a packet")
        finally:
            await bus.aclose()

    asyncio.run(forge())
    malformed = f'becomingone_ssep_packets_rejected_total{{{cell},reason="malformed"}}'
    scrape_until(url, lambda v: v.get(malformed) == 1, procs, 30)
    at_witness = 'becomingone_ssep_packets_rejected_total{cell="witness",reason="malformed"}'
    seen = scrape_until(
        f"http://127.0.0.1:{ports['witness']}/metrics",
        lambda v: v.get(at_witness) == 1,
        procs,
        30,
    )
    assert seen['becomingone_witness_records_total{cell="witness"}'] >= 1
    assert seen['becomingone_ssep_packets_received_total{cell="witness"}'] > 1
    served = scrape_until(
        f"http://127.0.0.1:{serve_port}/metrics",
        lambda v: f"becomingone_node_ticks_total{{{cell}}}" in v,
        procs,
        30,
    )
    assert served[malformed] == 1
    err = (base / f"{first}.log").read_text()
    assert f"{first}: metrics at http://127.0.0.1:{ports[first]}/metrics" in err
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    assert {name: proc.wait(timeout=20) for name, proc in procs.items()} == dict.fromkeys(procs, 0)


def test_the_node_collector_counts_a_migrated_glyph(tmp_path: Path) -> None:
    """In one process: a glyph migrated from node a to node b over an in-memory bus shows as
    b's glyph (count and energy), a's ``migrations`` event and b's ``accepted`` event, beside
    each node's cell; before any tick there is no status to read and nothing fails."""
    sups = build_supervisors(2, "mesh", seed=5, spread=0.0)
    members: list[CellMember] = build_cell_members(
        sups, tmp_path, _config(), seed=5, wait_runs=True
    )
    try:
        glyphs = _nodes(members, ListedRecords(), tmp_path)
        a, b = glyphs

        async def go() -> None:
            bus = MemoryBus()
            for n in glyphs:
                await n.start(bus.connect(n.node_id), 0.0)
            a.glyphs.submit(_probe(0))
            assert await a.offer("g0", b.node_id, 0.0)
            for _ in range(3):
                for n in (b, a):
                    await asyncio.sleep(0)
                    await n.step(0.0, c_cluster=0.0, stable=False)

        asyncio.run(go())
        scraped = {}
        for n, m in zip(glyphs, members, strict=True):
            node = SupervisedNode(
                settings(m.node_id),
                member=m,
                key=m.cell.key,
                epoch=1,
                roster=RosterFile(tmp_path / "roster.json"),
                glyphs=n,
            )
            collector = NodeCollector(m.node_id, "t", node=node)
            scraped.update(values(generate_latest(node_registry(collector)).decode()))
        b_cell = f'cell="{b.node_id}"'
        assert scraped[f"becomingone_glyphs{{{b_cell}}}"] == 1
        assert scraped[f"becomingone_glyph_energy{{{b_cell}}}"] > 0
        assert scraped[f'becomingone_glyphs{{cell="{a.node_id}"}}'] == 0
        assert (
            scraped[f'becomingone_glyph_node_events_total{{cell="{a.node_id}",event="migrations"}}']
            == 1
        )
        assert scraped[f'becomingone_glyph_node_events_total{{{b_cell},event="accepted"}}'] == 1
        assert f"becomingone_master_coherence{{{b_cell}}}" in scraped
        assert f"becomingone_node_ticks_total{{{b_cell}}}" in scraped
        assert f"becomingone_cps_peers_heard{{{b_cell}}}" not in scraped  # no tick yet
    finally:
        for m in members:
            m.close()


def test_a_collector_needs_exactly_one_node_or_witness() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        NodeCollector("x", "t")
