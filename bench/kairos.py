"""KAIROS engine benchmarks: streaming throughput vs a naive re-computing engine, and the map.

Run: ``.venv/bin/python bench/kairos.py [--quick] [--json]``. Every figure is paired with a
baseline measured in the same run, so ratios (not absolute times) are what to compare:

- streaming: samples/s of ``KairosEngine.update`` for 1 and 8 channels, chunks of 1 and 4096,
  windows of 1 s, 60 s and 3600 s (dt = 10 ms), and the ratio to a naive engine that recomputes
  ``temporal_resonance`` over the whole window for every new sample (how a naive engine works);
- map: ``resonance_map`` of 1 million samples × 64 lags, and its ratio to one complex FFT of the
  same length.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from becomingone.core.kairos import temporal_resonance
from becomingone.core.resmap import resonance_map
from becomingone.core.stream import KairosEngine

DT = 0.01
LAG = 0.05


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def streaming_rate(channels: int, chunk: int, window: float, total: int) -> float:
    """Samples per second through update() in chunks, timed after the window is full."""
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(size=(total, channels)), axis=0)
    warm = np.cumsum(rng.normal(size=(round(window / DT) + 10, channels)), axis=0)
    best = float("inf")
    for _ in range(3):
        eng = KairosEngine(dt=DT, lag=LAG, omega=0.0, window=window, channels=channels)
        eng.update(warm)  # not timed: the window is full before the clock starts
        start = time.perf_counter()
        if chunk == 1 and channels == 1:
            for x in data[:, 0]:
                eng.update(float(x))
        else:
            for i in range(0, total, chunk):
                eng.update(data[i : i + chunk])
        best = min(best, time.perf_counter() - start)
    return total / best


def naive_rate(channels: int, window: float, samples: int) -> float:
    """Samples per second of recomputing T̂ over the whole window for each new sample."""
    w = round(window / DT) + round(LAG / DT) + 1
    rng = np.random.default_rng(1)
    data = np.cumsum(rng.normal(size=(w + samples, channels)), axis=0)

    def run() -> None:
        for i in range(samples):
            temporal_resonance(data[i : i + w], DT, LAG, 0.0)

    return samples / _best(run, repeat=2)


def bench_streaming(quick: bool) -> list[dict[str, float]]:
    rows = []
    windows = (1.0, 60.0, 3600.0)
    for channels in (1, 8):
        for window in windows:
            naive = naive_rate(channels, window, 20 if window > 100 else 200)
            for chunk in (1, 4096):
                if chunk == 1:
                    total = 5_000 if quick else 40_000
                else:
                    total = 4096 * (40 if quick else 400) // channels
                rate = streaming_rate(channels, chunk, window, total)
                rows.append(
                    {
                        "channels": channels,
                        "window_s": window,
                        "chunk": chunk,
                        "samples_per_s": rate,
                        "naive_samples_per_s": naive,
                        "speedup_vs_naive": rate / naive,
                    }
                )
    return rows


def bench_map(quick: bool) -> dict[str, float]:
    n = 200_000 if quick else 1_000_000
    rng = np.random.default_rng(2)
    phi = np.cumsum(rng.normal(size=n))
    lags = np.arange(1, 65) * DT
    t_map = _best(lambda: resonance_map(phi, DT, lags), repeat=1 if not quick else 2)
    z = np.exp(1j * phi)
    t_fft = _best(lambda: np.fft.fft(z))
    return {
        "samples": n,
        "lags": 64,
        "seconds": t_map,
        "fft_seconds": t_fft,
        "ratio_to_one_fft": t_map / t_fft,
        "target_seconds": 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    rows = bench_streaming(args.quick)
    rmap = bench_map(args.quick)
    if args.json:
        print(json.dumps({"streaming": rows, "map": rmap}, indent=2))
        return
    print("streaming KairosEngine.update (dt = 10 ms, lag 50 ms, omega 0)")
    print(f"{'ch':>3} {'window':>8} {'chunk':>6} {'samples/s':>14} {'naive/s':>10} {'speedup':>9}")
    for r in rows:
        print(
            f"{r['channels']:>3} {r['window_s']:>7g}s {r['chunk']:>6} "
            f"{r['samples_per_s']:>14,.0f} {r['naive_samples_per_s']:>10,.0f} "
            f"{r['speedup_vs_naive']:>8,.0f}x"
        )
    print(
        f"\nresonance_map: {rmap['samples']:,} samples x {rmap['lags']} lags in "
        f"{rmap['seconds']:.2f} s (target < {rmap['target_seconds']:g} s for 1M); "
        f"{rmap['ratio_to_one_fft']:.0f}x one FFT of the same length ({rmap['fft_seconds']:.3f} s)"
    )


if __name__ == "__main__":
    main()
