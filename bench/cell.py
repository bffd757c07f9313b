"""Throughput of a full cell vs the bare KAIROS engine, measured in the same run.

A full cell = Master (1 h window) + Emissary (1 s) + Sync layer + witnessing (one signed micro
witness per batch, meso per cycle, macro per collapse, meta) + temporal memory (one SQLite
transaction per batch, replay log, engine signatures) + hook dispatch. The baseline is one bare
``KairosEngine`` with the Master's parameters fed the same batches. Target: ratio ≥ 0.25.
The cell validates each batch once and its Master and Emissary share the velocity products
(``KairosEngine.update_pair``); the baseline engine validates every batch (plain ``update``).
Columns: samples/s of each, their ratio, µs per batch of each, records and stored signatures.

Run: ``.venv/bin/python bench/cell.py [--samples N] [--batch B ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from becomingone.config import BecomingOneConfig
from becomingone.core.stream import KairosEngine
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase


def bare(x: np.ndarray, batch: int) -> float:
    """Samples/s through one bare engine (Master parameters)."""
    eng = KairosEngine(dt=0.01, lag=0.05, omega=0.0, window=3600.0)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        eng.update(x[i : i + batch])
    return len(x) / (time.perf_counter() - t0)


async def full(x: np.ndarray, batch: int, data_dir: Path) -> tuple[float, Cell]:
    """Samples/s through a full cell writing to ``data_dir``."""
    config = BecomingOneConfig.model_validate(
        {
            "becomingone": {
                "memory": {"flush_interval": batch * 0.01, "signature_interval": 5.0},
                "witnessing": {"meta_interval": 5.0},
            }
        }
    ).becomingone
    cell = Cell(config, data_dir)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        await cell.ingest(x[i : i + batch], now=time.perf_counter())
    rate = len(x) / (time.perf_counter() - t0)
    return rate, cell


def main() -> None:
    """Print bare and full-cell throughput and their ratio for each batch size."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, nargs="+", default=[50, 500, 2000, 10000])
    args = ap.parse_args()
    x = synthetic_phase(0, args.samples, dt=0.01)
    print(f"{args.samples} samples at 100 Hz (Master window 3600 s, Emissary 1 s)")
    print(
        f"{'batch':>7} {'bare /s':>12} {'cell /s':>12} {'ratio':>6} {'target':>6}"
        f" {'bare µs/b':>10} {'cell µs/b':>10}  records  signatures"
    )
    for batch in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            base = bare(x, batch)
            rate, cell = asyncio.run(full(x, batch, Path(tmp)))
            records = cell.chain.count
            sigs = cell.memory._exec("SELECT COUNT(*) FROM signature")[0][0]
            ok = cell.verify_chain().ok
            cell.close()
        flag = "" if ok else "  CHAIN FAILED"
        ratio = rate / base
        met = "met" if ratio >= 0.25 else "not"
        line = f"{batch:>7} {base:>12,.0f} {rate:>12,.0f} {ratio:>6.2f} {met:>6}"
        line += f" {batch / base * 1e6:>10,.0f} {batch / rate * 1e6:>10,.0f}"
        print(f"{line}  {records:>7}  {sigs:>10}{flag}")


if __name__ == "__main__":
    main()
