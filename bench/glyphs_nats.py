"""Benchmark part: glyph migrations over NATS between three ``becomingone node --glyphs``
processes (used by ``bench/glyphs.py``; runs alone too: ``bench/glyphs_nats.py [--quick]``).

One ``nats-server`` (JetStream) and three node processes (mesh, 100 ms ticks, α = 0.3) on
loopback. Before the nodes start, K glyph records owned by ``cell-0000`` are written to the
cluster's KV bucket, so ``cell-0000`` takes them up at start and the policy spreads them once
the cluster locks. The KV bucket is polled every 20 ms: each change of a record's owner is a
migration. Reported: migrations, the seconds from the first to the last, migrations/s, and the
latency from an offer (record ``offered``) to its commit (owner changed) as seen by the poll.
Every process started is stopped by its pid.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from becomingone.cluster import Glyph, OwnerRecord, OwnerState, record_key
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.transport.jetstream import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers

FLAGS = ("--topology", "mesh", "--tick", "100", "--alpha", "0.3", "--glyphs")


def nats_migrations(k: int, timeout: float = 120.0) -> dict[str, float]:
    """Spread ``k`` glyphs from one of 3 node processes; the figures (see the module)."""
    names = [node_name(i) for i in range(3)]
    with tempfile.TemporaryDirectory(prefix="bo-glyph-bench-") as tmp:
        base = Path(tmp)
        with NatsServers(base / "nats", servers=1) as servers:
            kv = JetStreamCasRecord(servers.urls, "glyphs_local")
            for i in range(k):
                g = Glyph(
                    id=f"b{i:03d}",
                    kind="probe",
                    payload={"probe": "loadavg"},
                    theta=(i + 0.5) / k,
                    energy=1000.0,
                    lifetime=100_000,
                    owner=names[0],
                )
                kv.create(record_key(g.id), OwnerRecord(glyph=g).to_bytes())
            nodes = NodeProcesses(base / "nodes", servers.urls, FLAGS)
            try:
                for name in names:
                    nodes.start(name)
                return _watch(kv, k, names[0], timeout)
            finally:
                nodes.stop(timeout=30)
                kv.close()


def _watch(kv: JetStreamCasRecord, k: int, first: str, timeout: float) -> dict[str, float]:
    """Poll the records until the spread stops (no change for 5 s after a move)."""
    keys = [record_key(f"b{i:03d}") for i in range(k)]
    owner = dict.fromkeys(keys, first)
    offered: dict[str, float] = {}
    moves: list[float] = []
    latency: list[float] = []
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        now = time.monotonic()
        for key in keys:
            got = kv.get(key)
            if got is None:
                continue
            rec = OwnerRecord.from_bytes(got.value)
            if rec.state is OwnerState.OFFERED:
                offered.setdefault(key, now)
            elif rec.owner != owner[key]:
                owner[key] = rec.owner
                moves.append(now)
                if key in offered:
                    latency.append(now - offered.pop(key))
        if moves and now - moves[-1] > 5.0:
            break
        time.sleep(0.02)
    span = moves[-1] - moves[0] if len(moves) > 1 else 0.0
    rate = (len(moves) - 1) / span if span > 0 else 0.0
    latency.sort()
    return {
        "migrations": len(moves),
        "seconds": span,
        "per_second": rate,
        "latency_p50": latency[len(latency) // 2] if latency else float("nan"),
        "owners": len(set(owner.values())),
    }


def report(quick: bool) -> None:
    """Print the figures of one run."""
    k = 12 if quick else 30
    got = nats_migrations(k)
    print(
        f"over NATS, 3 node processes, {k} glyphs spread from one: {got['migrations']:.0f} "
        f"migrations in {got['seconds']:.2f} s = {got['per_second']:.2f} migrations/s; "
        f"offer→commit p50 {got['latency_p50'] * 1000:.0f} ms (polled every 20 ms); "
        f"glyphs on {got['owners']:.0f} nodes"
    )


if __name__ == "__main__":
    report("--quick" in sys.argv[1:])
