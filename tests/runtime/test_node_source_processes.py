"""``becomingone node --source`` and light nodes with real processes on a real nats-server.

A full node and a light node read the same CSV file, a third (full, no source) reads its own
synthetic rhythm; a raw client captures the packets the third node receives and verifies their
signatures against the roster. Every wait is bounded; every process is stopped by pid.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from becomingone.config import CellConfig
from becomingone.keys import verify_signature
from becomingone.runtime.cell import Cell
from becomingone.runtime.launcher import NodeProcesses
from becomingone.sync.ssep import decode_packet
from becomingone.transport.natsd import NatsServers

from .test_node_processes import FLAGS, gone, observe, until

pytestmark = pytest.mark.timeout(180)

ROWS = 250  # 2.5 s of samples at the default dt = 0.01 s


def csv_file(path: Path) -> Path:
    """A steady 2 Hz phase ramp (radians) with a time column: a stream that resonates."""
    t = np.arange(ROWS) * 0.01
    phase = 2 * math.pi * 2.0 * t
    path.write_text("time,phase\n" + "".join(f"{a:.2f},{b:.9f}\n" for a, b in zip(t, phase)))
    return path


async def test_csv_source_across_processes(tmp_path: Path) -> None:
    """A full node and a light node on ``--source csv:F`` and a plain full node, one process
    each: every packet the plain node receives verifies against the roster; the full node's
    packets carry its Sync decision on the file (T_sync ≠ 0, coherence = |T_sync|²), the light
    node's are Emissary-only (Δφ = 0, coherence = |T_sync|² high on the steady ramp); after
    SIGTERM both report every row read (played in real time: part of it one second in), the
    full cell
    stored the file's read position (ROWS rows) and its chain verifies."""
    source = csv_file(tmp_path / "ramp.csv")
    with NatsServers(tmp_path / "srv", servers=1) as servers:
        base = tmp_path / "nodes"
        plain = NodeProcesses(base, servers.urls, FLAGS)
        fed = NodeProcesses(base, servers.urls, [*FLAGS, "--source", f"csv:{source}"])
        bus, obs = await observe(servers.urls)
        try:
            spy = await bus.subscribe("ssep.local.plain")
            started = time.monotonic()
            plain.start("plain")
            fed.start("csvfull")
            fed.start("light", kind="light")
            await until(obs, lambda: len(obs.live(time.time())) == 3, 60)
            await until(obs, lambda: all(s.heard == 2 for s in obs.latest.values()), 30)
            roster = json.loads((base / "roster.json").read_text())["members"]
            packets = {}
            deadline = time.monotonic() + 30
            while len(packets) < 2 or not all(p.t_sync for p in packets.values()):
                assert time.monotonic() < deadline, packets
                data = await spy.next_msg(timeout=5)
                packet, body, signature = decode_packet(data)
                assert verify_signature(bytes.fromhex(roster[packet.node_id]), body, signature)
                packets[packet.node_id] = packet
            await until(
                obs,
                lambda: all(s.samples >= ROWS for n, s in obs.latest.items() if n != "plain"),
                30,
            )
            took = time.monotonic() - started
        finally:
            await bus.aclose()
            codes = {**plain.stop(), **fed.stop()}
        assert codes == {"plain": 0, "csvfull": 0, "light": 0}
        assert all(gone(pid) for pid in {**plain.pids, **fed.pids}.values())
    full, light = packets["csvfull"], packets["light"]
    assert full.t_sync != 0 and math.isclose(full.coherence, abs(full.t_sync) ** 2, rel_tol=1e-6)
    assert light.delta_phi == 0.0 and abs(light.t_sync) ** 2 > 0.9
    assert math.isclose(light.coherence, abs(light.t_sync) ** 2, rel_tol=1e-6)
    assert took >= ROWS * 0.01
    cell = Cell(CellConfig(name="csvfull"), base / "csvfull", channels=1)
    try:
        assert cell.samples == ROWS and cell.verify_chain().ok
        position = cell.source_position(f"csv:{source.resolve()}")
        assert position is not None and position["rows"] == ROWS
    finally:
        cell.close()
    for name in ("csvfull", "light"):
        lines = [json.loads(x) for x in (base / f"{name}.log").read_text().splitlines()]
        assert 0 < lines[1]["samples"] < ROWS  # one second in: played in real time
        assert lines[-1]["summary"] and lines[-1]["samples"] == ROWS
