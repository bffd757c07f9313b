"""Benchmark: golden-ratio consensus in process (issue 10).

1. Decision latency and throughput for 5, 16 and 64 cells: the Validators a role plan gives
   N cells (about N/(1+φ) − 1), one proposal at a time — the proposer signs it, the cluster
   validates and opens it, each Validator judges, signs and casts its vote (routed by the
   signal authority, verified), until the quorum 1/φ decides; the decision is appended to an
   SQLite append-only log. p50/p99 of the wall time from signing the proposal to the appended
   decision, and proposals/s. Baseline in the same run: one Ed25519 sign + verify; the ratio
   says how many of those one decision costs.
2. The partifact driver on an in-process 16-cell mesh (virtual time, 10 ms ticks): ticks and
   seconds from start to AUTONOMOUS, then from a silenced Genesis to a new one (failover).
3. Over NATS (skipped with ``--no-nats``): a ``nats-server`` and 5 ``becomingone node --roles``
   processes (50 ms ticks) on free loopback ports. Seconds from start to the first passed
   intent; decision latency p50/p99 of the Genesis' intents (wall seconds from the proposal's
   signing to the proposer's decision, both on the proposer's clock, read from the JetStream
   consensus log; ratio against the in-process 5-cell p50 of this run); then ``kill -9`` of
   the Genesis and the seconds to the passed failover plan (its decision time minus the
   kill). Every process is stopped by its pid.

Run: ``.venv/bin/python bench/consensus.py [--quick] [--no-nats]`` (quick: 100 proposals per
size instead of 1000, 10 s of NATS decisions instead of 60). No targets; the figures go in
docs/partifacts.md.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from becomingone.cluster import (
    Decision,
    LifecycleStage,
    PartifactCluster,
    PartifactState,
    Proposal,
    RolePlan,
    Vote,
)
from becomingone.keys import NodeKey, verify_signature
from becomingone.memory import SqliteAppendLog
from becomingone.runtime import (
    LocalCluster,
    NodeProcesses,
    PartifactDriver,
    build_supervisors,
    node_name,
)
from becomingone.runtime.node_partifacts import consensus_log_name
from becomingone.transport import MemoryBus, NatsServers
from becomingone.transport.jetstream import JetStreamAppendLog

TICK = 0.01


def sign_verify_seconds(rounds: int = 2000) -> float:
    """Wall seconds of one Ed25519 sign + verify of a vote-sized message (the baseline)."""
    key = NodeKey.from_seed(bytes(32))
    msg = b'{"at":0.5,"proposal":"0123456789abcdef","voter":"cell-0001","yes":true}'
    t0 = time.perf_counter()
    for _ in range(rounds):
        assert verify_signature(key.public_bytes, msg, key.sign(msg))
    return (time.perf_counter() - t0) / rounds


def _operational_cluster(n: int) -> tuple[PartifactCluster, dict[str, NodeKey]]:
    keys = {f"cell-{i:04d}": NodeKey.from_seed(bytes([i % 256, i // 256]) * 16) for i in range(n)}
    pc = PartifactCluster({c: k.public_bytes for c, k in keys.items()}, genesis_timeout=1e9)
    for c, p in pc.partifacts.items():
        p.state = PartifactState.OPERATIONAL
        pc.heard[c] = 0.0
    pc.distribute_roles(0.0)
    return pc, keys


def decisions(n: int, count: int, db: Path) -> tuple[list[float], float, int]:
    """Latencies (s) of ``count`` proposals on ``n`` cells, proposals/s, and eligible voters."""
    pc, keys = _operational_cluster(n)
    log = SqliteAppendLog(db, f"bench{n}")
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        now = float(i)
        t0 = time.perf_counter()
        who = pc.proposer(now)
        assert who is not None
        p = Proposal.create(
            keys[who], kind="intent", subject=f"i{i}", payload={"what": "probe", "n": i},
            proposer=who, created=now, deadline=now + 0.5, eligible=pc.validators(),
        )  # fmt: skip
        pc.propose(p, now)
        for v in p.eligible:
            vote = Vote.create(keys[v], proposal_id=p.id, voter=v, yes=pc.judge(v, p), at=now)
            d = pc.vote(vote, now)
            if d is not None:
                entry, _ = pc.settle(d)
                log.append(entry, expected_last=i)
                break
        latencies.append(time.perf_counter() - t0)
    rate = count / (time.perf_counter() - start)
    log.close()
    return latencies, rate, len(pc.validators())


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


async def lifecycle(n: int = 16) -> tuple[int, int]:
    """Ticks from start to AUTONOMOUS, then from a silenced Genesis to a new Genesis."""
    cells = build_supervisors(n, "mesh", alpha=0.3, seed=3)
    driver = PartifactDriver(
        cells, {c.node_id: c.key for c in cells}, genesis_timeout=0.3, vote_seconds=0.2
    )
    autonomous = failover = -1
    old = None
    async with LocalCluster(cells, MemoryBus(maxsize=4096)) as cluster:
        for i in range(3000):
            tick = driver.step(await cluster.step(i * TICK))
            if autonomous < 0 and tick.lifecycle.stage is LifecycleStage.AUTONOMOUS:
                autonomous, old = i, driver.cluster.genesis
                assert old is not None
                driver.crash(old)
            elif autonomous >= 0 and driver.cluster.genesis not in (None, old):
                failover = i - autonomous
                break
    return autonomous, failover


NODE_FLAGS = ["--topology", "mesh", "--tick", "50", "--alpha", "0.3", "--roles"]


def _wait(check: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"bench: not reached within {seconds} s")


def nats_figures(seconds: float) -> tuple[float, list[float], float]:
    """5 ``node --roles`` processes on a nats-server: seconds to the first passed intent,
    the intents' decision latencies over ``seconds``, seconds from a Genesis kill -9 to the
    passed failover plan."""
    with (
        tempfile.TemporaryDirectory(prefix="b1-bench-consensus-nats-") as tmp,
        NatsServers(Path(tmp), servers=1) as servers,
    ):
        procs = NodeProcesses(Path(tmp) / "nodes", servers.urls, NODE_FLAGS)
        try:
            started = time.time()
            for i in range(5):
                procs.start(node_name(i))
            log = JetStreamAppendLog(servers.urls, consensus_log_name("local"))
            try:
                return _measure(procs, log, started, seconds)
            finally:
                log.close()
        finally:
            procs.stop()


def _measure(
    procs: NodeProcesses, log: JetStreamAppendLog, started: float, seconds: float
) -> tuple[float, list[float], float]:
    def intents(start: int = 1) -> list[Decision]:
        return [
            d
            for d in map(Decision.from_entry, log.read(start))
            if d.passed and d.proposal.kind == "intent"
        ]

    first = _wait(lambda: intents(), 120)
    assert isinstance(first, list)
    formed = first[0].decided_at - started
    mark = log.last_index()
    time.sleep(seconds)
    window = intents(mark + 1)
    if len(window) < 2:
        raise SystemExit(f"bench: only {len(window)} intents passed in {seconds} s")
    latencies = [d.decided_at - d.proposal.created for d in window]
    genesis = window[-1].proposal.proposer  # the Genesis proposes the intents
    killed = time.time()
    procs.kill(genesis)
    mark = log.last_index()

    def failover() -> float | None:
        for d in map(Decision.from_entry, log.read(mark + 1)):
            if d.passed and d.proposal.kind == "roles":
                roles = RolePlan.from_payload(d.proposal.payload).roles
                if any(r.value == "genesis" and c != genesis for c, r in roles.items()):
                    return d.decided_at - killed
        return None

    took = _wait(failover, 60)
    assert isinstance(took, float)
    return formed, latencies, took


def main() -> int:
    """Print the figures."""
    quick = "--quick" in sys.argv[1:]
    count = 100 if quick else 1000
    base = sign_verify_seconds(500 if quick else 5000)
    print(f"baseline: one Ed25519 sign + verify {base * 1e6:.0f} µs")
    print(f"{'cells':>5} {'voters':>6} {'need':>4} {'p50 ms':>8} {'p99 ms':>8} {'props/s':>8} "
          f"{'p50/baseline':>12}")  # fmt: skip
    in_process = 0.0
    with tempfile.TemporaryDirectory(prefix="b1-bench-consensus-") as tmp:
        for n in (5, 16, 64):
            lat, rate, voters = decisions(n, count, Path(tmp) / "consensus.db")
            need = -(-voters * 1000 // 1618) if voters else 0
            p50, p99 = _pct(lat, 50), _pct(lat, 99)
            print(f"{n:>5} {voters:>6} {need:>4} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} "
                  f"{rate:>8.0f} {p50 / base:>12.1f}")  # fmt: skip
            in_process = p50 if n == 5 else in_process
    autonomous, failover = asyncio.run(lifecycle())
    print(
        f"16 cells, mesh, α 0.3, {TICK * 1e3:g} ms ticks: AUTONOMOUS at tick {autonomous} "
        f"({autonomous * TICK:.2f} s virtual); Genesis silenced there, new Genesis after "
        f"{failover} ticks ({failover * TICK:.2f} s; genesis_timeout 0.3 s + vote)"
    )
    if "--no-nats" in sys.argv[1:]:
        return 0
    formed, lat, took = nats_figures(10.0 if quick else 60.0)
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    print(
        f"NATS, 5 node processes, 50 ms ticks: first intent passed {formed:.2f} s after start; "
        f"{len(lat)} intents: decision p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms "
        f"({p50 / in_process:.0f}x the in-process 5-cell p50); Genesis kill -9 to passed "
        f"failover plan {took:.2f} s (genesis_timeout 1 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
