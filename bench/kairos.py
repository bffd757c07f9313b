"""KAIROS engine benchmarks: streaming throughput vs a naive re-computing engine, and the map.

Run: ``.venv/bin/python bench/kairos.py [--quick] [--json]``. Every figure is paired with a
baseline measured in the same run, so ratios (not absolute times) are what to compare:

- streaming: samples/s of ``KairosEngine.update`` for 1 and 8 channels, chunks of 1 and 4096,
  windows of 1 s, 60 s and 3600 s (dt = 10 ms), and the ratio to a naive engine that recomputes
  ``temporal_resonance`` over the whole window for every new sample (how a naive engine works);
- map: ``resonance_map`` of 1 million samples × 64 lags, and its ratio to one complex FFT of the
  same length;
- one-shot at ω = 0: ``temporal_resonance`` of real and complex φ against ``np.vdot`` of the same
  velocity arrays (as complex128: the target is ≤ 3× one complex vdot), with the compiled kernel
  (``core.kernels.COMPILED``; as chosen at import and its portable loops) and on the NumPy
  fallback, and at ω = 2 rad/s;
- rotation: streaming samples/s at ω = 0 against ω = 2 rad/s (ω = 0 must cost no rotation).

The script sets ``OPENBLAS_NUM_THREADS=1`` (unless it is already set) before NumPy loads: the
kernels under test run on one core, so the baseline does too; a threaded BLAS vdot is up to 2×
faster on an idle 2-core machine and up to 100× slower on a loaded one. The one-shot section
times each kernel and its vdot in alternating repeats, so a change of machine load between
them moves both.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads (module docstring)

import argparse
import json
import time
import timeit
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np

from becomingone.core import kernels
from becomingone.core.kairos import phase_velocity, temporal_resonance
from becomingone.core.resmap import resonance_map
from becomingone.core.stream import KairosEngine

DT = 0.01
LAG = 0.05
SECTIONS = ("streaming", "map", "oneshot", "rotation")


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
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


def _per_call(fns: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """Best seconds per call of each of ``fns`` on n samples (enough calls for ~20 ms per
    repeat), the functions timed in turn within each of 7 repeats (module docstring)."""
    number = max(1, 2_000_000 // n)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(7):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number)
    return best


def _numpy_path() -> Any:
    """A context in which ``kernels`` runs its NumPy path, as if the extension were not built."""
    return mock.patch.object(kernels, "_KERNEL", None)


def bench_oneshot(quick: bool) -> list[dict[str, Any]]:
    """temporal_resonance at ω = 0 (compiled and NumPy) and ω = 2 against np.vdot."""
    rows: list[dict[str, Any]] = []
    big_l = round(LAG / DT)
    rng = np.random.default_rng(3)
    for n in (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000):
        walk = np.cumsum(rng.normal(size=n))
        for kind, phi in (("real", walk), ("complex", np.exp(1j * walk))):
            v = phase_velocity(phi, DT).astype(np.complex128)
            now, past = v[big_l:], v[:-big_l]
            one = _per_call(
                {
                    "vdot": lambda: np.vdot(past, now),  # noqa: B023 (timed now)
                    "zero": lambda: temporal_resonance(phi, DT, LAG, 0.0),  # noqa: B023
                },
                n,
            )
            t_vdot, t_zero = one["vdot"], one["zero"]
            with _numpy_path():
                t_numpy = _per_call({"numpy": lambda: temporal_resonance(phi, DT, LAG, 0.0)}, n)[  # noqa: B023
                    "numpy"
                ]
            t_portable = float("nan")
            if kernels.COMPILED:  # the loops a CPU without AVX2 (or an aarch64 one) runs
                from becomingone.core import _fused

                with mock.patch.object(kernels, "_KERNEL", _fused.lagged_sums_portable):
                    t_portable = _per_call(
                        {"portable": lambda: temporal_resonance(phi, DT, LAG, 0.0)},  # noqa: B023
                        n,
                    )["portable"]
            t_rot = _per_call({"rot": lambda: temporal_resonance(phi, DT, LAG, 2.0)}, n)["rot"]  # noqa: B023
            rows.append(
                {
                    "samples": n,
                    "phi": kind,
                    "kernel": kernels.ISA,
                    "omega0_us": t_zero * 1e6,
                    "numpy_us": t_numpy * 1e6,
                    "portable_us": t_portable * 1e6,
                    "vdot_us": t_vdot * 1e6,
                    "ratio_to_vdot": t_zero / t_vdot,
                    "numpy_ratio_to_vdot": t_numpy / t_vdot,
                    "portable_ratio_to_vdot": t_portable / t_vdot,
                    "omega2_ratio_to_vdot": t_rot / t_vdot,
                }
            )
    return rows


def bench_rotation(quick: bool) -> dict[str, float]:
    """Streaming samples/s (1 channel, chunks of 4096, 60 s window) at ω = 0 and ω = 2 rad/s."""
    total = 4096 * (40 if quick else 200)
    rates = {}
    for omega in (0.0, 2.0):
        rng = np.random.default_rng(4)
        data = np.cumsum(rng.normal(size=total))
        best = float("inf")
        for _ in range(3):
            eng = KairosEngine(dt=DT, lag=LAG, omega=omega, window=60.0)
            eng.update(data[:6100])
            start = time.perf_counter()
            for i in range(6100, total, 4096):
                eng.update(data[i : i + 4096])
            best = min(best, time.perf_counter() - start)
        rates[omega] = (total - 6100) / best
    return {
        "omega0_per_s": rates[0.0],
        "omega2_per_s": rates[2.0],
        "ratio": rates[0.0] / rates[2.0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable)"
    )
    args = parser.parse_args()
    run = set(args.only or SECTIONS)
    rows = bench_streaming(args.quick) if "streaming" in run else []
    rmap = bench_map(args.quick) if "map" in run else None
    oneshot = bench_oneshot(args.quick) if "oneshot" in run else []
    rotation = bench_rotation(args.quick) if "rotation" in run else None
    if args.json:
        out = {"streaming": rows, "map": rmap, "oneshot": oneshot, "rotation": rotation}
        print(json.dumps(out, indent=2))
        return
    if rows:
        print_streaming(rows)
    if rmap:
        print(
            f"\nresonance_map: {rmap['samples']:,} samples x {rmap['lags']} lags in "
            f"{rmap['seconds']:.2f} s (target < {rmap['target_seconds']:g} s for 1M); "
            f"{rmap['ratio_to_one_fft']:.0f}x one FFT of the same length "
            f"({rmap['fft_seconds']:.3f} s)"
        )
    if oneshot:
        print_oneshot(oneshot)
    if rotation:
        print(
            f"\nstreaming at omega 0: {rotation['omega0_per_s']:,.0f} samples/s; at omega 2: "
            f"{rotation['omega2_per_s']:,.0f} samples/s ({rotation['ratio']:.2f}x)"
        )


def print_streaming(rows: list[dict[str, float]]) -> None:
    """The streaming table."""
    print("streaming KairosEngine.update (dt = 10 ms, lag 50 ms, omega 0)")
    print(f"{'ch':>3} {'window':>8} {'chunk':>6} {'samples/s':>14} {'naive/s':>10} {'speedup':>9}")
    for r in rows:
        print(
            f"{r['channels']:>3} {r['window_s']:>7g}s {r['chunk']:>6} "
            f"{r['samples_per_s']:>14,.0f} {r['naive_samples_per_s']:>10,.0f} "
            f"{r['speedup_vs_naive']:>8,.0f}x"
        )


def print_oneshot(oneshot: list[dict[str, Any]]) -> None:
    """The one-shot table: ω = 0 with the compiled kernel (as chosen at import, and its
    portable loops) and on NumPy, each / one vdot."""
    print(
        "\ntemporal_resonance, lag 50 ms, vs np.vdot of the same velocity arrays (complex128); "
        f"compiled kernel: {oneshot[0]['kernel']}"
    )
    print(
        f"{'samples':>9} {'phi':>8} {'compiled':>9} {'numpy':>9} {'vdot':>8} "
        f"{'compiled/vdot':>14} {'portable/vdot':>14} {'numpy/vdot':>11} {'omega 2/vdot':>13}"
    )
    for r in oneshot:
        print(
            f"{r['samples']:>9,} {r['phi']:>8} {r['omega0_us']:>7.1f}us {r['numpy_us']:>7.1f}us "
            f"{r['vdot_us']:>6.1f}us {r['ratio_to_vdot']:>13.1f}x "
            f"{r['portable_ratio_to_vdot']:>13.1f}x "
            f"{r['numpy_ratio_to_vdot']:>10.1f}x {r['omega2_ratio_to_vdot']:>12.1f}x"
        )


if __name__ == "__main__":
    main()
