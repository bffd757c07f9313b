"""One cell per process over NATS, with real ``nats-server`` and ``becomingone node`` processes.

Every wait is bounded in time; every process is started by the test (servers by
:class:`NatsServers`, nodes by :class:`NodeProcesses`) and stopped by pid, and the tests assert
the pids are gone. Fast settings (50 ms ticks, α = 0.3) keep each test to seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from becomingone.config import CellConfig
from becomingone.core.phase import CoherenceBand
from becomingone.keys import NodeKey
from becomingone.runtime.cell import Cell
from becomingone.runtime.launcher import NodeProcesses, node_name
from becomingone.runtime.observer import ClusterObserver
from becomingone.sync.ssep import decode_packet, encode_packet
from becomingone.transport import NatsBus, connect_nats
from becomingone.transport.natsd import NatsServers
from tests.helpers import gone
from tests.natshelpers import node_cluster

pytestmark = pytest.mark.timeout(180)

TICK = 0.05
FLAGS = ["--topology", "mesh", "--tick", "50", "--alpha", "0.3"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[NatsServers, NodeProcesses]]:
    """A nats-server and a node launcher on it; everything stopped by pid afterwards."""
    with node_cluster(tmp_path, FLAGS) as started:
        yield started


async def until(obs: ClusterObserver, check: Callable[[], bool], seconds: float) -> float:
    """Step the observer every tick until ``check()``; seconds it took, or fail."""
    start = time.monotonic()
    for _ in range(int(seconds / TICK) + 1):
        obs.step()
        if check():
            return time.monotonic() - start
        await asyncio.sleep(TICK)
    seen = {n: dict(s.rejected) for n, s in obs.latest.items()}
    raise AssertionError(f"not reached within {seconds} s: {obs.history[-1:]}, rejected {seen}")


async def observe(urls: list[str]) -> tuple[NatsBus, ClusterObserver]:
    bus = await connect_nats(urls, name="test-observer")
    obs = ClusterObserver(bus, cluster="local", peer_timeout=1.0)
    await obs.start()
    return bus, obs


def start_all(procs: NodeProcesses, n: int) -> None:
    for i in range(n):
        procs.start(node_name(i))


async def test_three_node_processes_reach_shared(
    cluster: tuple[NatsServers, NodeProcesses],
) -> None:
    """3 full cells, one process each, on one server: the observer sees all three, the
    cluster reaches SHARED, no packet is rejected once the roster is complete, and each cell's
    witness chain verifies after a clean SIGTERM stop."""
    servers, procs = cluster
    start_all(procs, 3)
    bus, obs = await observe(servers.urls)
    try:
        await until(obs, lambda: len(obs.live(time.time())) == 3, 60)
        took = await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        print(f"3 processes: SHARED {took:.2f} s after all were heard")
        assert all(s.members == 3 for s in obs.latest.values())
    finally:
        await bus.aclose()
    codes = procs.stop()
    assert codes == dict.fromkeys(procs.pids, 0)
    for i in range(3):
        cell = Cell(CellConfig(), procs.base / node_name(i))
        try:
            assert cell.verify_chain().ok
        finally:
            cell.close()


async def test_kill9_one_of_four_then_restart(cluster: tuple[NatsServers, NodeProcesses]) -> None:
    """kill -9 of one cell of 4: the other three flag the network unstable within the peer
    timeout and stay SHARED; restarted on the same data dir (same key, higher epoch) it is
    heard by every peer within 2 ticks of its first packet (none of its packets rejected), the
    cluster is SHARED again, and its witness chain continues and verifies."""
    servers, procs = cluster
    start_all(procs, 4)
    victim = node_name(3)
    others = [node_name(i) for i in range(3)]
    bus, obs = await observe(servers.urls)
    try:
        await until(obs, lambda: len(obs.live(time.time())) == 4, 60)
        await until(
            obs,
            lambda: (
                obs.history[-1].band is CoherenceBand.SHARED
                and all(obs.latest[n].stable for n in others)
            ),
            30,
        )
        old_epoch = obs.latest[victim].epoch
        procs.kill(victim)  # SIGKILL, reaped
        assert gone(procs.pids[victim])
        took = await until(obs, lambda: not any(obs.latest[n].stable for n in others), 5)
        print(f"kill -9: peers unstable after {took:.2f} s (timeout 1 s)")
        assert took <= 1.0 + 0.5
        assert obs.history[-1].band is CoherenceBand.SHARED
        assert obs.rejected() == {}
        procs.start(victim)
        back: dict[str, float] = {}

        def accepted_again() -> bool:
            v = obs.latest[victim]
            if v.epoch <= old_epoch:
                return False
            back.setdefault("first", v.time)  # its first packet goes out with this status
            first = back["first"]
            return all(obs.latest[n].heard == 3 and obs.latest[n].time > first for n in others)

        await until(obs, accepted_again, 60)
        ticks = (max(obs.latest[n].time for n in others) - back["first"]) / TICK
        print(f"restart: all peers hear it {ticks:.1f} ticks after its first packet")
        assert ticks <= 2 + 1  # 2 ticks, +1 for the observer's own sampling
        assert obs.rejected() == {}  # no replay, no old epoch, no unknown signer
        took = await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        print(f"restart: SHARED again after {took:.2f} s")
    finally:
        await bus.aclose()
    procs.stop()
    cell = Cell(CellConfig(), procs.base / victim)
    try:
        assert cell.verify_chain().ok
    finally:
        cell.close()


async def test_raw_client_attacks_are_rejected_and_counted(
    cluster: tuple[NatsServers, NodeProcesses],
) -> None:
    """A raw NATS client publishes forged (bad signature; unknown signer), replayed, 1 MB and
    garbage messages to every node's subject: every node rejects and counts each kind, no
    process exits, the cluster stays SHARED, and a witness process counts the same rejections
    (once per copy) and keeps a verified chain."""
    servers, procs = cluster
    start_all(procs, 3)
    procs.start("witness", kind="witness")
    names = [node_name(i) for i in range(3)]
    bus, obs = await observe(servers.urls)
    raw = await connect_nats(servers.urls, name="attacker")
    try:
        await until(obs, lambda: len(obs.live(time.time())) == 3, 60)
        await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        spy = await raw.subscribe(f"ssep.local.{names[0]}")
        real = await spy.next_msg(timeout=5)
        packet, _, _ = decode_packet(real)
        stranger = dataclasses.replace(packet, node_id="intruder")
        intruder = encode_packet(stranger, NodeKey.generate())
        forged = real[:-1] + bytes([real[-1] ^ 1])
        attacks = [real, forged, intruder, os.urandom(1_000_000), b"\x00garbage", b""]
        for name in names:
            await raw.publish_many([(f"ssep.local.{name}", a) for a in attacks])
        await raw.publish("status.local.cell-0000", b"{not json")
        await raw.flush()

        def counted() -> bool:
            # its own packet played back is a replay to the sender too (never sent to itself)
            return all(all(obs.latest[n].rejected.get(r, 0) >= 1 for r in WANT) for n in names)

        await until(obs, counted, 10)
        assert all(p.poll() is None for p in procs.procs.values())
        assert obs.stats["bad_status"] >= 1
        await asyncio.sleep(0.5)
        obs.step()
        assert obs.history[-1].band is CoherenceBand.SHARED
        print("rejected:", dict(obs.rejected()))
    finally:
        await raw.aclose()
        await bus.aclose()
    assert procs.stop() == dict.fromkeys(procs.pids, 0)
    last = json.loads((procs.base / "witness.log").read_text().strip().splitlines()[-1])
    # the witness hears every packet once per receiver: the replayed bytes are a copy to it
    assert all(last["rejected"].get(r, 0) >= 3 for r in WANT - {"replay"}), last
    assert last["chain_verified"] and last["records"] >= 1 and last["copies"] > 0


#: What every receiver must count.
WANT = frozenset({"replay", "bad_signature", "unknown_signer", "oversize", "malformed"})


def test_launcher_command_with_a_roster_file_or_the_kv_roster(tmp_path: Path) -> None:
    """A launched node joins the launcher's roster file (a witness reads it without joining);
    with ``kv_roster`` neither ``--roster`` nor ``--join`` is given: it reads the KV bucket."""
    urls = ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]
    plain = NodeProcesses(tmp_path, urls)
    cmd = plain.command("cell-0000", "light", server=1)
    assert cmd[cmd.index("--bus") + 1] == "nats://127.0.0.1:2,nats://127.0.0.1:1"
    assert cmd[cmd.index("--roster") + 1] == str(tmp_path / "roster.json") and "--join" in cmd
    witness = plain.command("w", "witness")
    assert "--roster" in witness and "--join" not in witness
    kv = NodeProcesses(tmp_path, urls, ["--certs", "C"], kv_roster=True).command("cell-0000")
    assert "--roster" not in kv and "--join" not in kv
    assert kv[kv.index("--kind") + 1] == "full" and kv[-2:] == ["--certs", "C"]
