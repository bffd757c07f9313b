"""Compare-and-set and append-log throughput of every adapter, measured in the same run.

One writer, sequential calls: compare-and-set updates of one key (read nothing, use the
revision the last update returned), creates of new keys, appends without and with
``expected_last``, and one ``read()`` of the whole log. Adapters: in-memory, SQLite (a WAL file
in a temporary directory) and JetStream (a ``nats-server -js`` started on a free loopback port
for this run, file storage in a temporary directory, stopped by PID at the end). The ratio
column is JetStream / SQLite: what moving a store onto the network costs one writer. A last
line times bare ``nats-py`` JetStream publishes from one asyncio task (no adapter, no thread):
what the synchronous adapters' background-thread hop costs on top of the network.

Run: ``.venv/bin/python bench/storage.py [--ops N] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats

from becomingone.memory import MemoryAppendLog, MemoryCasRecord, SqliteAppendLog, SqliteCasRecord
from becomingone.transport import JetStreamAppendLog, JetStreamCasRecord

NATS_SERVER = os.path.join(sysconfig.get_path("scripts"), "nats-server")
OPS = ("cas update", "create", "append", "append expected", "read all")


@contextmanager
def nats_server(workdir: Path) -> Iterator[str]:
    """A ``nats-server -js`` on a free loopback port (ready within 20 s); yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (workdir / "nats.log").open("wb")
    proc = subprocess.Popen(
        [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(workdir / "js")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while b"Server is ready" not in (workdir / "nats.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nats-server did not start (see {workdir / 'nats.log'})")
            time.sleep(0.01)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def rate(n: int, step: Callable[[int], Any]) -> float:
    """Calls per second of ``step(i)`` for i in 0..n-1."""
    start = time.perf_counter()
    for i in range(n):
        step(i)
    return n / (time.perf_counter() - start)


def measure(kv: Any, log: Any, n: int) -> dict[str, float]:
    """Operations per second of one CasRecord and one AppendLog (closed afterwards)."""
    out: dict[str, float] = {}
    revision = [kv.create("counter", b"0")]

    def update(i: int) -> None:
        revision[0] = kv.update("counter", b"%d" % i, revision[0])

    out["cas update"] = rate(n, update)
    out["create"] = rate(n, lambda i: kv.create(f"key.{i}", b"v"))
    out["append"] = rate(n, lambda i: log.append(b"entry %d" % i))
    out["append expected"] = rate(n, lambda i: log.append(b"x", expected_last=n + i))
    start = time.perf_counter()
    assert len(log.read()) == 2 * n
    out["read all"] = 2 * n / (time.perf_counter() - start)
    for store in (kv, log):
        if hasattr(store, "close"):
            store.close()
    return out


def bare_publish_rate(url: str, n: int) -> float:
    """Acknowledged JetStream publishes per second from one asyncio task, no adapter."""

    async def run() -> float:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=5)
        await js.add_stream(name="BARE", subjects=["bare"])
        start = time.perf_counter()
        for i in range(n):
            await js.publish("bare", b"entry %d" % i)
        elapsed = time.perf_counter() - start
        await nc.close()
        return n / elapsed

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=2000, help="operations per measurement")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args()
    n = args.ops
    with tempfile.TemporaryDirectory(prefix="bo-bench-storage-") as tmp:
        work = Path(tmp)
        results = {"memory": measure(MemoryCasRecord(), MemoryAppendLog(), n)}
        db = work / "bench.sqlite3"
        results["sqlite"] = measure(SqliteCasRecord(db), SqliteAppendLog(db), n)
        with nats_server(work) as url:
            results["jetstream"] = measure(
                JetStreamCasRecord(url, "bench"), JetStreamAppendLog(url, "bench"), n
            )
            bare = bare_publish_rate(url, n)
    ratio = {op: results["jetstream"][op] / results["sqlite"][op] for op in OPS}
    if args.json:
        out = {"ops": n, "per_second": results, "jetstream_over_sqlite": ratio}
        print(json.dumps({**out, "bare_nats_py_publish": bare}))
        return
    print(f"{'operation':<16}" + "".join(f"{a:>12}" for a in results) + f"{'js/sqlite':>11}")
    for op in OPS:
        cells = "".join(f"{results[a][op]:>10.0f}/s" for a in results)
        print(f"{op:<16}{cells}{ratio[op]:>11.2f}")
    append = results["jetstream"]["append"]
    print(f"bare nats-py publish (asyncio, no thread): {bare:.0f}/s; adapter append / bare: "
          f"{append / bare:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
