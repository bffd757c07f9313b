"""Faults of node processes: ``kill -9`` of one cell of 8 and its restart, ``SIGSTOP`` of a
cell for 5 s. Real ``nats-server`` and ``becomingone node`` processes; every wait bounded;
every pid started is stopped by the test and checked gone. ``pytest -s`` prints the figures
quoted in docs/nats.md ("Faults").
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from becomingone.core.phase import CoherenceBand
from becomingone.runtime.launcher import node_name
from becomingone.transport.natsd import NatsServers
from tests.faults.helpers import (
    PEER_TIMEOUT,
    TICK,
    Fleet,
    chain_length,
    gone,
    locked,
    observe,
    until,
    witness_verify,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
async def one_server(tmp_path: Path) -> AsyncIterator[tuple[NatsServers, Fleet]]:
    """A nats-server and a fleet of nodes on it; all stopped by pid afterwards."""
    with NatsServers(tmp_path, servers=1) as servers:
        fleet = Fleet(tmp_path / "nodes", [servers.urls])
        try:
            yield servers, fleet
        finally:
            fleet.stop()
    assert all(gone(pid) for pid in servers.pids)


async def test_kill9_one_cell_of_eight_then_restart(one_server: tuple[NatsServers, Fleet]) -> None:
    """kill -9 of one cell of 8: each of the 7 others flags the network unstable within the
    peer timeout (plus a tick) and hears 6 peers, and the 7 stay SHARED throughout; restarted
    on the same data dir it keeps its identity (same key in the roster, higher boot epoch),
    every peer hears it within 2 ticks of its first packet with nothing rejected (no replay,
    no old epoch), and ``becomingone witness verify`` passes on its chain, which has grown
    past the records it held when it was killed."""
    servers, fleet = one_server
    names = [node_name(i) for i in range(8)]
    victim, others = names[-1], names[:-1]
    for name in names:
        fleet.start(name)
    bus, obs = await observe(servers.urls)
    try:
        await locked(obs, names)
        roster_before = fleet.roster_text()
        old_epoch = obs.latest[victim].epoch
        fleet.signal(victim, signal.SIGKILL)
        killed = time.time()
        flagged: dict[str, float] = {}

        def all_flagged() -> bool:
            for n in others:
                s = obs.latest[n]
                if not s.stable and s.time > killed:
                    flagged.setdefault(n, s.time - killed)
            assert obs.history[-1].band is CoherenceBand.SHARED  # the 7 stay locked
            return len(flagged) == len(others)

        await until(obs, all_flagged, 10, "every peer flags it")
        worst = max(flagged.values())
        print(
            f"\nkill -9 of 1 of 8: peers unstable after {min(flagged.values()):.2f}-{worst:.2f} s"
        )
        assert worst <= PEER_TIMEOUT + 2 * TICK + 0.3  # timeout, a tick, scheduling
        await until(obs, lambda: all(obs.latest[n].heard == 6 for n in others), 5, "heard 6")
        assert obs.rejected() == {}
        at_kill = chain_length(fleet.base / victim)

        fleet.start(victim)
        first: list[float] = []

        def heard_again() -> bool:
            v = obs.latest[victim]
            if v.epoch <= old_epoch:
                return False
            first[:] = first or [v.time]  # its first packet goes out with this status
            return all(obs.latest[n].heard == 7 and obs.latest[n].time > first[0] for n in others)

        await until(obs, heard_again, 60, "peers hear it again")
        ticks = (max(obs.latest[n].time for n in others) - first[0]) / TICK
        print(f"restart: all 7 peers hear it {ticks:.1f} ticks after its first packet")
        assert ticks <= 2 + 1  # 2 ticks, +1 for the observer's own sampling
        assert obs.rejected() == {}  # no replay, no old epoch, no unknown signer
        assert fleet.roster_text() == roster_before  # same name, same key
        took = await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 30)
        print(f"restart: SHARED with 8 again {took:.2f} s after they all hear it")
        await until(obs, lambda: chain_length(fleet.base / victim) > at_kill, 30, "chain grows")
    finally:
        await bus.aclose()
    assert fleet.stop() == dict.fromkeys(names, 0)
    after = witness_verify(fleet.base / victim)
    assert after["ok"] and after["exit"] == 0, after
    assert after["checked"] > at_kill  # the records before the kill, and more, all linked


async def test_sigstop_five_seconds_then_sigcont(one_server: tuple[NatsServers, Fleet]) -> None:
    """SIGSTOP of one cell of 3 for 5 s: its peers flag it unstable; after SIGCONT it catches
    up: it hears both peers and both hear it again, the cluster is SHARED and every node
    stable, and over the next 2 s it accepts its peers' packets at their rate (2 peers × 10
    a second, at least 80 % of it); a packet older than ``max_skew`` that waited in its inbox
    may be rejected as skew, but nothing else and nothing after the catch-up (it is not
    rejected forever, and rejects nothing forever)."""
    servers, fleet = one_server
    names = [node_name(i) for i in range(3)]
    victim, others = names[0], names[1:]
    for name in names:
        fleet.start(name)
    bus, obs = await observe(servers.urls)
    try:
        await locked(obs, names)
        fleet.signal(victim, signal.SIGSTOP)
        stopped = time.time()
        await until(obs, lambda: not any(obs.latest[n].stable for n in others), 5, "flagged")
        assert obs.latest[victim].time < stopped + TICK  # it is silent
        await until(obs, lambda: time.time() - stopped >= 5.0, 6)
        before = obs.latest[victim].accepted
        fleet.signal(victim, signal.SIGCONT)
        resumed = time.time()

        def caught_up() -> bool:
            v = obs.latest[victim]
            return (
                v.time > resumed and v.heard == 2 and all(obs.latest[n].heard == 2 for n in others)
            )

        took = await until(obs, caught_up, 10, "caught up")
        shared = await until(obs, lambda: obs.history[-1].band is CoherenceBand.SHARED, 10)
        then = obs.latest[victim]
        await until(obs, lambda: obs.latest[victim].time >= then.time + 2.0, 5)
        v = obs.latest[victim]
        rate = (v.accepted - then.accepted) / (v.time - then.time)
        print(
            f"\nSIGSTOP 5 s: caught up {took:.2f} s after SIGCONT ({then.accepted - before} "
            f"packets taken by then, SHARED {shared:.2f} s later), then accepting "
            f"{rate:.1f} packets/s; rejected {dict(v.rejected) or 'none'}"
        )
        assert rate >= 0.8 * 2 / TICK  # both peers' packets, each tick
        assert set(v.rejected) <= {"skew"}
        assert dict(v.rejected) == dict(then.rejected)  # none after the catch-up
        assert all(not obs.latest[n].rejected for n in others)
        assert all(obs.latest[n].stable for n in names)
    finally:
        await bus.aclose()
    assert fleet.stop() == dict.fromkeys(names, 0)
