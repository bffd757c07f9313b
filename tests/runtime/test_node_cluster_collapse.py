"""Mesh synchronisation across processes: three ``becomingone node`` processes on a real
``nats-server`` each compute T_global from the packets they hear and witness the cluster
collapse on their own chains; the observer computes its own T_global from their statuses.

Every wait is bounded; every process is started here and stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from becomingone.config import CellConfig
from becomingone.runtime.cell import Cell
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.observer import ClusterObserver
from becomingone.transport import connect_nats
from becomingone.transport.natsd import NatsServers
from tests.natshelpers import node_cluster

pytestmark = pytest.mark.timeout(240)

TICK = 0.05
FLAGS = ["--topology", "mesh", "--tick", "50", "--alpha", "0.3"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[NatsServers, NodeProcesses]]:
    """A nats-server and a node launcher on it; everything stopped by pid afterwards."""
    with node_cluster(tmp_path, FLAGS) as started:
        yield started


async def test_three_processes_witness_the_cluster_collapse(
    cluster: tuple[NatsServers, NodeProcesses],
) -> None:
    """3 full cells, one process each: every node reports a cluster collapse it computed
    itself (status ``cluster_collapses`` ≥ 1), the observer's rows carry T_global and count
    crossings, and after a clean stop each node's chain verifies and holds as many MACRO
    ``cluster.collapse`` records (|T_global|² ≥ I_c, with the 1 or 2 peers it had heard: the
    processes start one after another, so two may lock before the third joins) as it
    reported."""
    servers, procs = cluster
    names = [node_name(i) for i in range(3)]
    for name in names:
        procs.start(name)
    bus = await connect_nats(servers.urls, name="test-observer")
    obs = ClusterObserver(bus, cluster="local", peer_timeout=1.0, threshold=0.95)
    await obs.start()
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            obs.step()
            latest = [obs.latest.get(n) for n in names]
            if all(s is not None and s.cluster_collapses >= 1 for s in latest):
                break
            await asyncio.sleep(TICK)
        else:
            raise AssertionError(f"not every node collapsed: {obs.latest}")
        rows = [r.to_json() for r in obs.history]
        assert all(isinstance(r["t_global"], list) and len(r["t_global"]) == 2 for r in rows)
        assert max(r.t_global_sq for r in obs.history) > 0.5
        reported = {n: obs.latest[n].cluster_collapses for n in names}
    finally:
        await bus.aclose()
    assert procs.stop() == dict.fromkeys(procs.pids, 0)
    for name in names:
        cell = Cell(CellConfig(), procs.base / name)
        try:
            assert cell.verify_chain().ok
            found = [r for r in cell.memory.witnesses() if r.kind == "cluster.collapse"]
        finally:
            cell.close()
        assert len(found) >= reported[name] >= 1, name
        for record in found:
            payload = json.loads(record.payload)
            assert record.level == "macro"
            # a node may lock with the first peer before the third process has joined
            assert payload["t_global_sq"] >= 0.95 and payload["peers"] in (1, 2), payload
