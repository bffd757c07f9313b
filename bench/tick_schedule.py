"""Ticks to SHARED of ``bench/nats_cluster.py``'s cells on a node-like schedule, in one process.

The sans-IO supervisors of the benchmark's case (same members, start phases, α, β = 0 and
branching) driven by an event schedule instead of ``LocalCluster``'s lock-step: cell i ticks
at (k + offset_i)·T and takes the packets that arrived by then; each packet arrives after a
latency drawn per copy. Rows:

- ``in-process``: ``LocalCluster`` in virtual time (what the benchmark compares against);
- ``delay d tick``: every cell ticks at the same instant and every packet arrives just before
  the receiver's tick d ticks later — phases exactly d ticks older than in process, one packet
  from each sender every tick;
- ``node schedule``: offsets i/n of a tick (the benchmark's start spread) and latency
  ``--latency`` ms + an exponential of mean ``--jitter`` ms, so a packet lands before or after
  its receiver's tick by chance, as between node processes.

For each: ticks to SHARED (sampled mid-tick, phases carried to then with f, as the observer
does) and the share of ticks after the 10th in which a cell did not step. No processes, no
network: it separates what the schedule does to the lock from what CPU and NATS do.

Run: ``.venv/bin/python bench/tick_schedule.py [--cases 64:fractal] [--latency 2 --jitter 5]``
"""

from __future__ import annotations

import argparse
import heapq
import random
from collections.abc import Callable
from functools import partial

from becomingone.commands.node import _initial_theta
from becomingone.core.phase import CoherenceBand
from becomingone.runtime import build_supervisors, node_name
from becomingone.sync.stability import read_cluster
from nats_cluster import BRANCHING, CLUSTER, TICK, in_process, parse_cases

START = 1000.0  # wall-clock seconds of tick 0 (any positive time)


def schedule(
    n: int,
    topology: str,
    alpha: float,
    seed: int,
    offsets: list[float],
    latency: Callable[[], float],
    max_ticks: int = 3000,
) -> tuple[int | None, float]:
    """(ticks to SHARED or None, share of cell-ticks after the 10th without a step)."""
    cells = build_supervisors(
        n, topology, alpha=alpha, seed=seed, branching=BRANCHING, cluster=CLUSTER
    )
    for i, cell in enumerate(cells):
        cell.theta = _initial_theta(seed, node_name(i)) % 1.0
    index = {c.node_id: i for i, c in enumerate(cells)}
    order = sorted(range(n), key=lambda i: offsets[i])
    inbox: list[list[tuple[float, int, bytes]]] = [[] for _ in cells]
    sent = missed = 0
    for k in range(max_ticks):
        for i in order:
            cell, now = cells[i], START + (k + offsets[i]) * TICK
            batch = []
            while inbox[i] and inbox[i][0][0] <= now:
                batch.append(heapq.heappop(inbox[i])[2])
            cell.receive_many(batch, now)
            steps = cell.steps
            for msg in cell.tick(now):
                for dest in msg.to:
                    sent += 1
                    heapq.heappush(inbox[index[dest]], (now + latency(), sent, msg.data))
            missed += k > 10 and cell.steps == steps
        mid = START + (k + 0.5) * TICK
        thetas = [
            c.theta + c.frequency * (mid - START - (k + offsets[i]) * TICK)
            for i, c in enumerate(cells)
        ]
        if read_cluster(thetas).band is CoherenceBand.SHARED:
            return k, missed / (n * max(1, k - 10))
    return None, missed / (n * (max_ticks - 11))


def main() -> None:
    """Print one row per schedule and case."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="64:fractal", help="N:topology,... (default 64:fractal)")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency", type=float, default=2.0, help="fixed latency, ms")
    ap.add_argument("--jitter", type=float, default=5.0, help="mean exponential extra, ms")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lat, jit = float(args.latency) / 1000, float(args.jitter) / 1000

    def node_latency() -> float:
        return lat + (rng.expovariate(1 / jit) if jit > 0 else 0.0)

    for n, topology in parse_cases(args.cases):
        base = in_process(n, topology, args.alpha, args.seed, 3000)
        print(f"{topology} {n}, alpha {args.alpha}: in-process SHARED after {base} ticks")
        rows: list[tuple[str, list[float], Callable[[], float]]] = [
            (f"delay {d} tick", [0.0] * n, partial(float, d * TICK - 1e-6)) for d in (1, 2)
        ]
        label = f"node schedule ({args.latency:g} ms + exp {args.jitter:g} ms)"
        rows.append((label, [i / n for i in range(n)], node_latency))
        for label, offsets, latency in rows:
            ticks, skipped = schedule(n, topology, args.alpha, args.seed, offsets, latency)
            ratio = f"{ticks / base:.2f}" if ticks is not None and base else "-"
            print(f"  {label:<36} SHARED after {ticks} ticks (ratio {ratio}), "
                  f"{100 * skipped:.1f} % of cell-ticks without a step")  # fmt: skip


if __name__ == "__main__":
    main()
