"""The cell API under load: a real ``becomingone up --serve`` subprocess on a loopback port.

(a) Requests: 50 concurrent clients (one ``httpx.AsyncClient`` each, keep-alive), each sending
``--requests`` requests one after the other; p50/p99 latency and requests/s for ``GET
/coherence/now``, ``GET /node`` (the app's cheapest route) and ``POST /signals`` (10 samples as
JSON, with a token). The baseline, measured in the same run with the same clients: a raw
loopback HTTP round trip to a minimal asyncio server in another process that answers ``{}`` to
everything, so the ratios show what the app adds over the client, the loopback and one event
loop. A POST the cell's inbox cannot take (64 batches waiting) answers 503 ``inbox_full``; the
statuses are counted.
(b) WebSocket fan-out: ``--clients`` clients subscribed to ``/api/v1/events?types=tick``.
The event rate is driven by posting: the cell runs ``--source api``, so every POSTed batch is
one ingest, one witness record and one ``tick`` event; the bench posts one 10-sample batch
every 0.1 s, so each client gets 10 events/s. Delivered latency = when a client received the
tick minus when the bench started the POST of that batch (it spans the POST, the inbox, the
ingest and its witness record, the fan-out and the WebSocket); the tick's stream time ``t``
names its batch. Spread = arrival minus the first client's arrival of the same tick (the
fan-out alone). Drops: the largest ``dropped`` counter each client was sent, and ticks that
never arrived. Baseline in the same run: the same stream to one client.

Timing on a shared machine is noisy: figures are printed, nothing is asserted.
Run: ``.venv/bin/python bench/api.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import connect

PREFIX = "/api/v1"
CLI = [sys.executable, "-m", "becomingone.cli"]
#: The rate limit is lifted (writes per token) so the bench measures the API, not the bucket.
CONFIG = """\
becomingone:
  name: api-bench
  api: {rate_per_second: 100000, rate_burst: 1000000}
"""
#: A minimal HTTP/1.1 server (keep-alive, answers {} to anything): the baseline round trip.
RAW_SERVER = r"""
import asyncio
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""
BATCH = 10  # samples per POST
RATE = 10.0  # posted batches (tick events) per second in (b)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process we started (by its PID); SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def cell_server(tmp: Path) -> Iterator[tuple[str, Path]]:
    """``up --source api --serve 127.0.0.1:0`` on a fresh data dir; yields (URL, data dir)."""
    config, data, log = tmp / "cell.yaml", tmp / "data", tmp / "up.log"
    config.write_text(CONFIG)
    args = ["up", "--config", str(config), "--data-dir", str(data), "--source", "api"]
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, *args, "--serve", "127.0.0.1:0", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60.0
        while "API at " not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"becomingone up did not start:\n{log.read_text()}")
            time.sleep(0.05)
        url = log.read_text().split("API at ", 1)[1].split()[0].removesuffix(PREFIX)
        yield url, data
    finally:
        stop(proc)
    if proc.returncode != 0:
        raise SystemExit(f"becomingone up exited {proc.returncode}:\n{log.read_text()}")


@contextlib.contextmanager
def raw_server() -> Iterator[str]:
    """The baseline server in its own process; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-c", RAW_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        stop(proc)


def create_token(data: Path) -> str:
    """A write token made by ``becomingone tokens create`` (printed on stdout alone)."""
    out = subprocess.run(
        [*CLI, "tokens", "create", "bench", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


@dataclass(slots=True)
class Load:
    """Latencies (seconds) and statuses of one load run, and its wall time."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    def row(self, name: str, baseline: Load | None) -> str:
        """One table line: p50, p99 (ms), requests/s, p50 ratio to the baseline, statuses."""
        p50, p99 = np.percentile(self.latencies, [50, 99]) * 1e3
        rate = len(self.latencies) / self.seconds
        ratio = "" if baseline is None else f"{p50 / baseline.p50_ms:.1f}x"
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return f"    {name:<24}{p50:>8.2f}{p99:>9.2f}{rate:>9,.0f}{ratio:>8}   {statuses}"

    @property
    def p50_ms(self) -> float:
        """Median latency in milliseconds."""
        return float(np.percentile(self.latencies, 50) * 1e3)


async def load(
    pool: list[httpx.AsyncClient], method: str, url: str, each: int, **request: Any
) -> Load:
    """Every client of ``pool`` at once, each sending ``each`` requests in turn."""
    out = Load()

    async def client(http: httpx.AsyncClient) -> None:
        for _ in range(each):
            t0 = time.perf_counter()
            answer = await http.request(method, url, **request)
            out.latencies.append(time.perf_counter() - t0)
            out.statuses[answer.status_code] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(http) for http in pool))
    out.seconds = time.perf_counter() - t0
    return out


def samples(k: int, n: int = BATCH) -> list[float]:
    """``n`` phase samples (a slow ramp), the k-th batch."""
    return [round(0.05 * (k * n + i) % 6.28, 4) for i in range(n)]


async def requests(url: str, token: str, clients: int, each: int) -> None:
    """Print (a): the latency table of three routes against the raw baseline."""
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{url}{PREFIX}"
    pool = [httpx.AsyncClient(timeout=30.0) for _ in range(clients)]  # made outside the timing
    try:
        first = await pool[0].post(f"{api}/signals", json={"samples": samples(0)}, headers=auth)
        first.raise_for_status()  # a first decision for /coherence/now
        for _ in range(200):
            if (await pool[0].get(f"{api}/coherence/now")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        with raw_server() as raw_url:
            await load(pool, "GET", raw_url, 2)  # connections open, both servers warm
            await load(pool, "GET", f"{api}/node", 2)
            raw = await load(pool, "GET", raw_url, each)
        runs = {
            "GET /node": await load(pool, "GET", f"{api}/node", each),
            "GET /coherence/now": await load(pool, "GET", f"{api}/coherence/now", each),
            f"POST /signals ({BATCH} JSON)": await load(
                pool, "POST", f"{api}/signals", each, json={"samples": samples(1)}, headers=auth
            ),
        }
    finally:
        for http in pool:
            await http.aclose()
    print(f"(a) {clients} concurrent clients x {each} requests (httpx.AsyncClient, keep-alive)")
    print(f"    {'route':<24}{'p50 ms':>8}{'p99 ms':>9}{'req/s':>9}{'p50/raw':>8}   statuses")
    print(raw.row("raw loopback HTTP", None))
    for name, run in runs.items():
        print(run.row(name, raw))


@dataclass(slots=True)
class Listener:
    """One WebSocket client's arrivals: stream time ``t`` → perf_counter, and its drops."""

    arrivals: dict[float, float] = field(default_factory=dict)
    dropped: int = 0


async def listen(url: str, who: Listener, ready: asyncio.Event, done: asyncio.Event) -> None:
    """Subscribe to ticks; record each arrival until ``done``."""
    ws_url = url.replace("http://", "ws://") + f"{PREFIX}/events?types=tick"
    async with connect(ws_url, max_queue=None) as ws:
        while not done.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.perf_counter()
            message = json.loads(raw)
            who.dropped = max(who.dropped, message["dropped"])
            if message["type"] == "resumed":
                ready.set()
            elif message["type"] == "tick":
                who.arrivals[round(message["data"]["t"], 6)] = now


async def fan_out(url: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    """Post one batch per 1/RATE s for ``seconds`` to ``clients`` subscribers; the figures."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        state = await _idle_state(http)
        who = [Listener() for _ in range(clients)]
        readies = [asyncio.Event() for _ in range(clients)]
        done = asyncio.Event()
        tasks = [asyncio.ensure_future(listen(url, w, r, done)) for w, r in zip(who, readies)]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60.0)
            sent = await _post_ticks(http, state, seconds)
            deadline = time.perf_counter() + 10.0
            while time.perf_counter() < deadline and any(len(w.arrivals) < len(sent) for w in who):
                await asyncio.sleep(0.05)
            done.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return _figures(sent, who)


async def _post_ticks(
    http: httpx.AsyncClient, state: dict[str, Any], seconds: float
) -> dict[float, float]:
    """POST one batch every 1/RATE s; the stream time ``t`` of each batch's tick → when its
    POST started (the cell's ``t`` is that of the batch's last sample)."""
    sent: dict[float, float] = {}
    total, start = state["samples"], time.perf_counter()
    for k in range(round(seconds * RATE)):
        await asyncio.sleep(max(0.0, start + k / RATE - time.perf_counter()))
        total += BATCH
        sent[round((total - 1) * state["dt"], 6)] = time.perf_counter()
        answer = await http.post(f"{PREFIX}/signals", json={"samples": samples(k)})
        if answer.status_code != 202:
            raise SystemExit(f"POST /signals answered {answer.status_code}: {answer.text}")
    return sent


async def _idle_state(http: httpx.AsyncClient) -> dict[str, Any]:
    """``/node/state`` once the inbox is empty and the sample count stands still."""
    last: dict[str, Any] = {}
    for _ in range(400):
        state: dict[str, Any] = (await http.get(f"{PREFIX}/node/state")).json()
        if state["inbox"]["queued"] == 0 and state["samples"] == last.get("samples"):
            return state
        last = state
        await asyncio.sleep(0.1)
    raise SystemExit("the cell did not go idle within 40 s")


def _figures(sent: dict[float, float], who: list[Listener]) -> dict[str, float]:
    """Delivered latency (p50, p99 ms), spread behind the first client (p99 ms), drops."""
    latency, spread = [], []
    for t, posted in sent.items():
        arrived = [w.arrivals[t] for w in who if t in w.arrivals]
        latency += [a - posted for a in arrived]
        spread += [a - min(arrived) for a in arrived]
    expected = len(sent) * len(who)
    if not latency:
        raise SystemExit(f"none of the {expected} tick events arrived")
    return {
        "events": expected,
        "p50": float(np.percentile(latency, 50) * 1e3),
        "p99": float(np.percentile(latency, 99) * 1e3),
        "spread99": float(np.percentile(spread, 99) * 1e3),
        "dropped": sum(w.dropped for w in who),
        "missing": expected - len(latency),
    }


async def websockets_bench(url: str, token: str, clients: int, seconds: float) -> None:
    """Print (b): one client, then ``clients`` clients, at RATE events/s each."""
    print(
        f"(b) fan-out of tick events at {RATE:g}/s per client for {seconds:g} s "
        f"(one POST of {BATCH} samples per tick)"
    )
    print(
        f"    {'clients':<9}{'events':>8}{'p50 ms':>8}{'p99 ms':>8}{'spread p99':>11}"
        f"{'dropped':>8}{'missing':>8}"
    )
    for n in (1, clients):
        f = await fan_out(url, token, n, seconds)
        print(
            f"    {n:<9}{f['events']:>8,.0f}{f['p50']:>8.2f}{f['p99']:>8.2f}"
            f"{f['spread99']:>11.2f}{f['dropped']:>8.0f}{f['missing']:>8.0f}"
        )


def main() -> None:
    """Run (a) and (b) at full or --quick sizes against one fresh cell."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for CI (< 30 s)")
    ap.add_argument("--clients", type=int, default=100, help="WebSocket clients in (b)")
    args = ap.parse_args()
    each, seconds = (10, 3.0) if args.quick else (100, 20.0)
    with tempfile.TemporaryDirectory() as tmp, cell_server(Path(tmp)) as (url, data):
        token = create_token(data)
        asyncio.run(requests(url, token, 50, each))
        asyncio.run(websockets_bench(url, token, args.clients, seconds))


if __name__ == "__main__":
    main()
