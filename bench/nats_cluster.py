"""Node processes on a real nats-server vs the in-process cluster of the same N, in one run.

For each case (N node processes, a topology; 10 Hz ticks): one ``nats-server`` and N
``becomingone node --kind light`` processes (the CPS only, as the in-process cluster's cells)
joining one roster file, then

- start-up: the nodes are spawned at most ``os.cpu_count()`` at a time; a node's start-up is
  spawn → connected and subscribed (read from the server's ``/connz``). Each node is told
  (``--start-at``) to wait a budget (a few times the measured Python start-up) after its spawn
  before its first tick, and is SIGSTOPped as soon as it is up; once all are up and the last
  start time has passed, one SIGCONT each starts them together — the measured part never
  includes Python start-up, and no node couples to a peer before every node is there;
- packet age: :class:`~becomingone.runtime.PacketAges`, in a process of its own (like a
  receiving node; not in the observer's event loop, which parses every node's status each
  tick), hears every
  packet sent to ``--probe`` receivers (the first node and a seeded sample), verifies each on
  arrival (Ed25519 against the roster, as a member would) and keeps now − the packet's
  timestamp (stamped by the sender at its tick, just before signing): the age from publish to
  verified, p50 / p99 / max in ms, from tick 10 on: the first 10 ticks (1 s), when every
  node has just been continued at once and runs its first tick, are reported on a line of
  their own (a burst the bench's SIGSTOP/SIGCONT makes, not the steady state). A node itself
  takes what arrived at its next tick, so the phase it uses is older by up to one tick more;
- CPU % and RSS per node from ``/proc/<pid>/stat`` and ``status`` of the pids started here
  (CPU over the measured ticks; mean and max over the nodes), and the server's CPU %;
- ticks to SHARED from a :class:`~becomingone.runtime.ClusterObserver` sampling mid-tick, against
  ``LocalCluster`` in virtual time with the same members, start phases (the nodes'
  ``--seed``-derived ones), α, β and branching, measured just before.

Target (issue 8): 64 fractal nodes at 10 Hz with p99 packet age < 50 ms and ticks to SHARED
within 15 % of the in-process run. Timing on a shared machine is noisy: a missed target prints
MISS and is not an error; the load average is printed before and after each case.

Run: ``.venv/bin/python bench/nats_cluster.py [--quick] [--cases 16:mesh,64:fractal]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from becomingone.commands.node import _initial_theta  # the nodes' start phases, reused
from becomingone.core.phase import CoherenceBand
from becomingone.runtime import (
    ClusterObserver,
    LocalCluster,
    NodeProcesses,
    PacketAges,
    RosterFile,
    build_supervisors,
    node_name,
)
from becomingone.transport import MemoryBus, NatsServers, connect_nats

TICK = 0.1
SHARED = CoherenceBand.SHARED
BRANCHING = 4
CLUSTER = "local"  # the config default the nodes use
FULL = "16:mesh,16:hub,16:fractal,32:hub,32:fractal,64:hub,64:fractal"
QUICK = "8:fractal"
#: Ticks left out of the age figures: after the SIGCONT of every node, all of them run their
#: first tick and the client's backlog within one tick (reported on a line of their own).
WARMUP = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


@dataclass(slots=True)
class Measured:
    """What one case's node processes did."""

    startup: list[float] = field(default_factory=list)
    start_at: float = 0.0
    resumed: float = 0.0  # when the nodes were continued (the first tick)
    receivers: list[str] = field(default_factory=list)
    launch: float = 0.0
    late: int = 0
    ages: list[float] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)  # each age's packet timestamp
    probe: dict[str, int] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    ticks: int = 0
    to_shared: int | None = None
    rejected: int = 0
    heard: list[int] = field(default_factory=list)
    exits: list[int | None] = field(default_factory=list)


def in_process(n: int, topology: str, alpha: float, seed: int, max_ticks: int) -> int | None:
    """Ticks to SHARED of ``LocalCluster`` (virtual time) with the node processes' phases."""
    cells = build_supervisors(
        n, topology, alpha=alpha, seed=seed, branching=BRANCHING, cluster=CLUSTER
    )
    for i, cell in enumerate(cells):
        cell.theta = _initial_theta(seed, node_name(i)) % 1.0

    async def go() -> int | None:
        async with LocalCluster(cells, MemoryBus(maxsize=4096), cluster=CLUSTER) as cluster:
            summary = await cluster.run(max_ticks, TICK, until=CoherenceBand.SHARED)
        return summary.ticks_to_band[CoherenceBand.SHARED.value]

    return asyncio.run(go())


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ready_nodes(monitor_port: int) -> set[str]:
    """Names of the clients connected to the server and subscribed to their SSEP subject."""
    url = f"http://127.0.0.1:{monitor_port}/connz?subs=1&limit=4096"
    with urllib.request.urlopen(url, timeout=2.0) as page:
        doc = json.load(page)
    return {
        c["name"]
        for c in doc.get("connections") or []
        if any(s.startswith("ssep.") for s in c.get("subscriptions_list") or [])
    }


def import_seconds() -> float:
    """Wall time of one ``becomingone node --help`` (Python start-up and the imports)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "becomingone.cli", "node", "--help"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return time.perf_counter() - t0


def launch(
    procs: NodeProcesses, n: int, monitor_port: int, flags: list[str], budget: float
) -> Measured:
    """Spawn ``n`` light nodes, at most CORES starting at once, each told to start ticking
    ``budget`` s after its spawn (``start_at``: the last of these times); SIGSTOP each
    a second after it is connected and subscribed (its start-up), so none ticks before all are
    up (not at once: its subscribe still waits for the server's PONG then). Returns
    the start-ups (``late``: nodes not up within their budget, which ticked alone first)."""
    spawned: dict[str, float] = {}
    ready: dict[str, float] = {}
    out = Measured()
    t0 = time.monotonic()
    deadline = t0 + 120.0 + 10.0 * n
    stopped: set[str] = set()
    while len(stopped) < n:
        while len(spawned) < n and len(spawned) - len(ready) < CORES:
            name = node_name(len(spawned))
            out.start_at = max(out.start_at, time.time() + budget)
            procs.extra = [*flags, "--start-at", repr(out.start_at)]
            procs.start(name, kind="light")
            spawned[name] = time.monotonic()
        time.sleep(0.05)
        now = time.monotonic()
        for name in ready_nodes(monitor_port) & spawned.keys() - ready.keys():
            ready[name] = now
            out.late += now - spawned[name] > budget
        for name in [k for k, t in ready.items() if now - t >= 1.0 and k not in stopped]:
            procs.kill(name, signal.SIGSTOP)  # a second after its SUB: its PONG is in
            stopped.add(name)
        exited = [k for k, p in procs.procs.items() if p.poll() is not None]
        if exited or now > deadline:
            log = procs.base / f"{(exited or ['cell-0000'])[0]}.log"
            tail = log.read_text(errors="replace").splitlines()[-1:] if log.exists() else []
            raise SystemExit(f"nodes did not start ({len(ready)}/{n} ready): {' '.join(tail)}")
    out.startup = [ready[k] - spawned[k] for k in spawned]
    out.launch = time.monotonic() - t0
    return out


def resume(procs: NodeProcesses, spread: float = 0.0) -> None:
    """SIGCONT every node still running, the i-th of n ``i/n·spread`` s after the first (each
    starts ticking when resumed: 0 makes every tick a burst of all nodes at once)."""
    first, live = time.monotonic(), list(procs.procs.values())
    for i, proc in enumerate(live):
        time.sleep(max(0.0, first + i / len(live) * spread - time.monotonic()))
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)


def sample(n: int, k: int, seed: int) -> list[str]:
    """``k`` node names drawn from ``n`` (always the first: a fractal's root, a hub's hub)."""
    rest = random.Random(seed).sample(range(1, n), min(k, n) - 1)
    return [node_name(i) for i in sorted([0, *rest])]


async def probe(
    urls: list[str], roster: str, receivers: list[str], conn: Connection
) -> tuple[list[float], list[float], dict[str, int]]:
    """:class:`PacketAges` on its own connection: says ``ready`` on ``conn`` once subscribed,
    records until anything arrives on ``conn``."""
    bus = await connect_nats(urls, name="bench-probe", maxsize=65536)
    stop = asyncio.Event()
    try:
        ages = PacketAges(
            bus, cluster=CLUSTER, roster=RosterFile(Path(roster)), receivers=receivers
        )
        subscribed = asyncio.Event()
        task = asyncio.create_task(ages.run(stop, subscribed))
        await asyncio.wait_for(subscribed.wait(), 30.0)
        conn.send("ready")
        while not conn.poll():
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return ages.ages, ages.stamps, dict(ages.stats)
    finally:
        await bus.aclose()


def probe_process(urls: list[str], roster: str, receivers: list[str], conn: Connection) -> None:
    """:func:`probe` in a process of its own (a receiver, not sharing the observer's event
    loop, which parses every node's status each tick); sends (ages, stats) on ``conn``."""
    conn.send(asyncio.run(probe(urls, roster, receivers, conn)))
    conn.close()


@contextlib.contextmanager
def prober(urls: list[str], roster: Path, receivers: list[str]) -> Iterator[Connection]:
    """A :func:`probe_process`, subscribed when this enters; stopped (by pid if it must be)
    when it exits. Send anything on the connection to stop it, then receive its result."""
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=probe_process, args=(urls, str(roster), receivers, theirs))
    proc.start()
    try:
        if not mine.poll(60.0) or mine.recv() != "ready":
            raise SystemExit("the packet-age probe did not subscribe within 60 s")
        yield mine
    finally:
        proc.join(timeout=30.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10.0)


async def observe(
    urls: list[str], start_at: float, ticks: int, out: Measured, n: int, ages: Connection
) -> None:
    """Observe ``ticks`` ticks sampled mid-tick from ``start_at``, then stop the packet-age
    probe (``ages``) and take its ages."""
    obs_bus = await connect_nats(urls, name="bench-observer", maxsize=65536)
    try:
        obs = ClusterObserver(obs_bus, cluster=CLUSTER, peer_timeout=1.0)
        await obs.start()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        obs.step()
        obs.history.clear()
        for i in range(ticks):
            await asyncio.sleep(max(0.0, start_at + (i + 0.5) * TICK - time.time()))
            obs.step()
        summary = obs.summary()
        out.ticks = summary.ticks
        # SHARED counts once every node is in the measurement (one phase alone reads C = 1)
        out.to_shared = next(
            (r.tick for r in obs.history if len(r.thetas) == n and r.band is SHARED), None
        )
        out.rejected = sum(summary.rejected.values())
        out.heard = [len(r.thetas) for r in obs.history[10:]]
        ages.send("stop")
        if await asyncio.to_thread(ages.poll, 60.0):
            out.ages, out.stamps, out.probe = ages.recv()
        out.resumed = start_at
    finally:
        await obs_bus.aclose()


def node_flags(topology: str, args: argparse.Namespace) -> list[str]:
    """The flags every node process of a case gets (``--start-at`` is added per node)."""
    return [
        "--topology", topology, "--tick", repr(TICK * 1000), "--alpha", repr(args.alpha),
        "--beta", "0", "--branching", str(BRANCHING), "--seed", str(args.seed),
    ]  # fmt: skip


async def measure(
    servers: NatsServers,
    procs: NodeProcesses,
    start_at: float,
    ticks: int,
    out: Measured,
    ages: Connection,
) -> None:
    """Observe the run and read every process's CPU time at ``start_at`` and at the end."""
    pids, server = list(procs.pids.values()), servers.pids[0]
    n = len(procs.procs)
    waiter = asyncio.create_task(observe(servers.urls, start_at, ticks, out, n, ages))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    cpu0 = {pid: cpu_seconds(pid) for pid in [*pids, server]}
    await waiter
    wall = time.time() - t0
    out.cpu = [100 * (cpu_seconds(p) - cpu0[p]) / wall for p in pids]
    out.rss_mb = [rss_mb(p) for p in pids]
    out.server_cpu = 100 * (cpu_seconds(server) - cpu0[server]) / wall


def processes(n: int, topology: str, args: argparse.Namespace, ticks: int) -> Measured:
    """Run one case with node processes; everything started here is stopped by pid."""
    with (
        tempfile.TemporaryDirectory(prefix="b1-bench-") as tmp,
        NatsServers(tmp, servers=1) as servers,
        NodeProcesses(Path(tmp) / "nodes", servers.urls) as procs,
    ):
        try:
            budget = 10.0 + 4.0 * args.import_s
            flags = node_flags(topology, args)
            out = launch(procs, n, servers.specs[0].monitor_port, flags, budget)
            out.receivers = sample(n, args.probe, args.seed)
            with prober(servers.urls, procs.roster, out.receivers) as ages:
                time.sleep(max(0.0, out.start_at - time.time()))  # every node's start passed
                started = time.time()
                resume(procs, 0.0 if args.together else TICK)
                asyncio.run(measure(servers, procs, started, ticks, out, ages))
        finally:
            resume(procs)  # a stopped process cannot act on SIGTERM
        out.exits = list(procs.stop(timeout=60.0).values())
        for name, code in zip(procs.procs, out.exits, strict=True):
            if code != 0:  # keep the log of a node that failed, for a look afterwards
                kept = Path(tempfile.gettempdir()) / f"b1-bench-failed-{name}.log"
                shutil.copy(procs.base / f"{name}.log", kept)
                print(f"{name} exited {code}: log kept in {kept}", file=sys.stderr)
    return out


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def report(n: int, topology: str, inproc: int | None, m: Measured, together: bool) -> str:
    """One case as text lines, with the verdict against the target."""
    steady = m.resumed + WARMUP * TICK
    ms = [a * 1000 for a, t in zip(m.ages, m.stamps, strict=True) if t >= steady]
    warm = [a * 1000 for a, t in zip(m.ages, m.stamps, strict=True) if t < steady]
    every = [a * 1000 for a in m.ages]
    p50, p99 = (pct(ms, 0.5), pct(ms, 0.99)) if ms else (float("nan"), float("nan"))
    ratio = m.to_shared / inproc if m.to_shared is not None and inproc else None
    lock_ok = ratio is not None and abs(ratio - 1.0) <= 0.15
    verdict = "ok" if p99 < 50.0 and lock_ok else "MISS"
    shared = "never" if m.to_shared is None else str(m.to_shared)
    bad = {k: v for k, v in m.probe.items() if k != "verified"}
    return "\n".join(
        [
            f"{topology} {n} nodes, {m.ticks} ticks of {TICK * 1000:.0f} ms, started "
            f"{'together' if together else 'spread over one tick'} "
            f"(load {Path('/proc/loadavg').read_text().split()[0]})",
            f"  start-up   p50 {statistics.median(m.startup):.2f} s, max {max(m.startup):.2f} s "
            f"per node ({CORES} at a time); all {n} up in {m.launch:.1f} s"
            + (f"  LATE: {m.late} ticked before all were up" if m.late else ""),
            f"  age        p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {max(ms, default=0):.1f} ms "
            f"over {len(ms)} copies to {len(m.receivers)} receivers from tick {WARMUP}"
            + (f"  not verified {bad}" if bad else ""),
            f"  warm-up    ticks 0-{WARMUP - 1} (every node continued at once): "
            + (
                f"p99 {pct(warm, 0.99):.1f} ms  max {max(warm):.1f} ms over {len(warm)} copies"
                if warm
                else "no copies"
            )
            + (f"; all copies: p99 {pct(every, 0.99):.1f} ms" if every else ""),
            f"  per node   CPU {statistics.mean(m.cpu):.1f} % (max {max(m.cpu):.1f})  "
            f"RSS {statistics.mean(m.rss_mb):.0f} MB (max {max(m.rss_mb):.0f}); "
            f"nats-server CPU {m.server_cpu:.1f} %",
            f"  SHARED     after {shared} ticks vs {inproc} in-process"
            + (f"  ratio {ratio:.2f}" if ratio is not None else "")
            + f"; nodes heard within 1 s after tick 10: median {statistics.median(m.heard or [0])}"
            f", min {min(m.heard, default=0)}; rejected {m.rejected}; exits "
            f"{sorted(set(m.exits), key=str)}",
            f"  target p99 < 50 ms and ratio within 15 %: {verdict}",
        ]
    )


def parse_cases(text: str) -> list[tuple[int, str]]:
    """``16:mesh,64:fractal`` → [(16, 'mesh'), (64, 'fractal')]."""
    cases = []
    for item in text.split(","):
        n, _, topology = item.partition(":")
        if not n.isdigit() or topology not in ("mesh", "hub", "ring", "fractal"):
            raise SystemExit(f"--cases: expected N:topology, got {item!r}")
        cases.append((int(n), topology))
    return cases


def main() -> None:
    """Run every case: in-process first, then the node processes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {QUICK} (CI, < 60 s)")
    ap.add_argument("--cases", default=FULL, help=f"N:topology,... (default {FULL})")
    ap.add_argument(
        "--alpha", type=float, help="CPS gain (default cluster.alpha 0.01; --quick 0.05)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe", type=int, default=8, help="receivers whose packets are timed")
    ap.add_argument(
        "--together",
        action="store_true",
        help="start every node at the same instant (default: spread over one tick)",
    )
    ap.add_argument("--after", type=int, default=50, help="ticks observed after in-process SHARED")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C: the nodes and the server are stopped by pid on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases = parse_cases(QUICK if args.quick else args.cases)
    if args.alpha is None:
        args.alpha = 0.05 if args.quick else 0.01
    args.import_s = import_seconds()
    print(f"{CORES} cores; Python start-up + imports of one node: {args.import_s:.2f} s")
    for n, topology in cases:
        inproc = in_process(n, topology, args.alpha, args.seed, 3000)
        ticks = (inproc or 3000) + args.after
        measured = processes(n, topology, args, ticks)
        print(report(n, topology, inproc, measured, args.together), flush=True)


if __name__ == "__main__":
    main()
