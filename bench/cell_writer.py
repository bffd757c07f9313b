"""Where should a cell sign and commit? Same-run comparison at one batch size.

Modes (each a full cell, as in ``bench/cell.py``, fed the same batches):

* ``sync``: sign + commit inside ``Cell.ingest`` (``memory.write_queue: 0``).
* ``thread1``, ``thread2``: the :class:`~becomingone.runtime.writer.BatchWriter` thread with a
  queue of 1 or 2 batches.
* ``proc2``: a prototype writer *process* fed through a pipe (depth 2); it opens its own
  connection and key. Measurement only: no crash handling, no lock against a restarted cell.
* ``nullwrite``: records linked but never signed or stored (the ceiling of any offload; the
  chain is not verified in this mode).

Columns: µs per batch in each round; ratio = best bare engine / best of the mode.

Run: ``.venv/bin/python bench/cell_writer.py [--samples N] [--batch B] [--rounds R] [--modes ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from becomingone.config import BecomingOneConfig
from becomingone.core.stream import KairosEngine
from becomingone.keys import NodeKey
from becomingone.memory.store import TemporalMemory
from becomingone.runtime import Cell
from becomingone.runtime.sources import synthetic_phase
from becomingone.runtime.writer import BatchWrite, write_batch

DEPTH = {"sync": 0, "thread1": 1, "thread2": 2, "proc2": 0, "nullwrite": 0}


def _child(conn: Connection, db: str, key_path: str) -> None:
    """The prototype writer process: sign and commit each received batch, ack its count."""
    memory = TemporalMemory(Path(db))
    key = NodeKey.load_or_create(Path(key_path))
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            break
        if job is None:
            break
        write_batch(memory, key, job)
        conn.send(job.count)
    memory.close()


class ProcessWriter:
    """Prototype: ``depth`` batches in flight to a writer process over a pipe."""

    def __init__(self, cell: Cell, depth: int) -> None:
        ctx = mp.get_context("forkserver")
        self.conn, child = ctx.Pipe()
        args = (child, str(cell.data_dir / "memory.sqlite3"), str(cell.data_dir / "node.key"))
        self.proc = ctx.Process(target=_child, args=args, daemon=True)
        self.proc.start()
        self.conn.recv()  # the child is up (not timed)
        self.depth, self.inflight = depth, 0

    def submit(self, job: BatchWrite) -> Any:
        """Send ``job``, first collecting acks (waiting while ``depth`` are in flight)."""
        while self.inflight >= self.depth or (self.inflight and self.conn.poll()):
            self.conn.recv()
            self.inflight -= 1
        self.conn.send(job)
        self.inflight += 1

    def flush(self) -> None:
        """Wait for every ack."""
        while self.inflight:
            self.conn.recv()
            self.inflight -= 1

    def close(self) -> None:
        """Flush and stop the child."""
        self.flush()
        self.conn.send(None)
        self.proc.join()


def bare(x: np.ndarray, batch: int) -> float:
    """µs per batch of one bare engine (Master parameters)."""
    eng = KairosEngine(dt=0.01, lag=0.05, omega=0.0, window=3600.0)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        eng.update(x[i : i + batch])
    return (time.perf_counter() - t0) / (len(x) / batch) * 1e6


async def full(x: np.ndarray, batch: int, data_dir: Path, mode: str) -> float:
    """µs per batch of a full cell in ``mode`` (every batch committed when timing stops)."""
    config = BecomingOneConfig.model_validate(
        {
            "becomingone": {
                "memory": {
                    "flush_interval": batch * 0.01,
                    "signature_interval": 5.0,
                    "write_queue": DEPTH[mode],
                },
                "witnessing": {"meta_interval": 5.0},
            }
        }
    ).becomingone
    cell = Cell(config, data_dir)
    writer: Any = cell.writer
    proc = None
    if mode == "nullwrite":
        writer._run = lambda job: list(job.records)
    elif mode == "proc2":
        proc = ProcessWriter(cell, 2)
        writer.submit, writer.wait_idle = proc.submit, proc.flush
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        await cell.ingest(x[i : i + batch], now=time.perf_counter())
    cell.flush()
    us = (time.perf_counter() - t0) / (len(x) / batch) * 1e6
    if mode != "nullwrite":
        assert cell.verify_chain().ok and cell.memory.witness_count() == cell.chain.count
    if proc is not None:
        proc.close()
    cell.close()
    return us


def main() -> None:
    """Print µs per batch of each mode per round, and each mode's ratio to the bare engine."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["sync", "thread2", "proc2", "nullwrite"])
    args = ap.parse_args()
    x = synthetic_phase(0, args.samples, dt=0.01)
    res: dict[str, list[float]] = {m: [] for m in ["bare", *args.modes]}
    for _ in range(args.rounds):
        res["bare"].append(bare(x, args.batch))
        for mode in args.modes:
            with tempfile.TemporaryDirectory() as tmp:
                res[mode].append(asyncio.run(full(x, args.batch, Path(tmp), mode)))
    best = min(res["bare"])
    print(f"batch {args.batch}, {args.samples} samples, {args.rounds} rounds (µs/batch)")
    for mode, values in res.items():
        rounds = " ".join(f"{v:7,.0f}" for v in values)
        print(f"  {mode:10} {rounds}   ratio {best / min(values):.2f}")


if __name__ == "__main__":
    main()
