"""Benchmark: node-updates per second of becomingone.sim.simulate at N = 10⁶, per topology.

Prints, for each topology, the time of one round against a NumPy baseline measured in the same
run (one ``np.exp(2j*np.pi*theta)`` over the same array). Targets: round ≤ 2.5× baseline and
≥ 1e7 node-updates/s (float64). Run: ``.venv/bin/python bench/sim.py [N] [ROUNDS]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from becomingone.sim import simulate


def best_of(repeats: int, fn: object) -> float:
    """Smallest wall time in seconds of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    """Run the benchmark and print one line per topology; exit 1 if a target is missed."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    theta = np.random.default_rng(0).random(n)
    baseline = best_of(5, lambda: np.exp(2j * np.pi * theta))
    print(f"N = {n}, {rounds} rounds; baseline np.exp(2j*pi*theta): {baseline * 1e3:.1f} ms")
    print(f"{'topology':<9} {'round ms':>9} {'ratio':>6} {'updates/s':>11}  target")
    ok = True
    for topo in ("mesh", "hub", "ring", "fractal"):
        setup = best_of(2, lambda t=topo: simulate(n, t, 0, seed=1))
        total = best_of(2, lambda t=topo: simulate(n, t, rounds, seed=1))
        per_round = max(total - setup, 1e-12) / rounds
        ratio = per_round / baseline
        rate = n / per_round
        good = ratio <= 2.5 and rate >= 1e7
        ok &= good
        verdict = "ok" if good else "MISSED"
        print(f"{topo:<9} {per_round * 1e3:9.1f} {ratio:6.2f} {rate:11.3e}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
