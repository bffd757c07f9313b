"""A raw NATS client attacks a running cluster of node processes on its own subjects: forged,
replayed, oversized and garbage messages. Every receiver (each member and a witness) rejects
and counts each by reason, exactly once per message; a message above the server's
``max_payload`` never reaches anyone; no process exits; the cluster stays SHARED.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from becomingone.core.phase import CoherenceBand
from becomingone.errors import TransportError
from becomingone.keys import NodeKey
from becomingone.runtime.launcher import node_name
from becomingone.sync.ssep import MAX_PACKET_BYTES, decode_packet, encode_packet
from becomingone.transport import connect_nats
from becomingone.transport.natsd import NatsServers
from tests.faults.helpers import Fleet, gone, locked, observe, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: What each member must count for one round of attacks, and nothing else.
PER_MEMBER = Counter(
    {"replay": 1, "bad_signature": 1, "unknown_signer": 1, "oversize": 1, "malformed": 2}
)


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


def max_payload(monitor_port: int) -> int:
    """The server's ``max_payload`` (its ``/varz`` page)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{monitor_port}/varz", timeout=5.0) as reply:
        return int(json.loads(reply.read())["max_payload"])


async def test_raw_client_attacks_are_rejected_and_counted(
    one_server: tuple[NatsServers, Fleet],
) -> None:
    """Once the 3 members are SHARED (nothing rejected yet), a raw client sends to each
    member's subject: a packet it captured (a replay; to the member it was sent to, a copy of
    what it accepted; a node's own packet played back is a replay too), the same with one
    signature byte flipped (bad_signature), a packet re-signed by a key not in the roster
    (unknown_signer), 1,000,000 random bytes (under the server's 1 MiB max_payload: it reaches
    the node, which counts it oversize without parsing), 8 bytes of garbage and an empty
    message (malformed). Each member counts exactly that; 2 MB is refused by the client
    library before it leaves (max_payload) and reaches nobody; a witness process counts the
    same rejections; no process exits; the cluster stays SHARED."""
    servers, fleet = one_server
    names = [node_name(i) for i in range(3)]
    for name in names:
        fleet.start(name)
    fleet.start("witness", kind="witness")
    bus, obs = await observe(servers.urls)
    raw = await connect_nats(servers.urls, name="attacker")
    try:
        await locked(obs, names)
        assert obs.rejected() == {}
        limit = max_payload(servers.specs[0].monitor_port)
        assert limit == 1024 * 1024  # the nats-server default; nodes take at most 4 KiB
        spy = await raw.subscribe(f"ssep.local.{names[0]}")
        real = await spy.next_msg(timeout=10)
        await spy.unsubscribe()
        packet, _, _ = decode_packet(real)
        intruder = encode_packet(
            dataclasses.replace(packet, node_id="intruder"), NodeKey.generate()
        )
        forged = real[:-1] + bytes([real[-1] ^ 1])
        big = os.urandom(1_000_000)
        assert MAX_PACKET_BYTES < len(big) < limit
        attacks = [real, forged, intruder, big, b"\x00garbage", b""]
        for name in names:
            await raw.publish_many([(f"ssep.local.{name}", a) for a in attacks])
            with pytest.raises(TransportError, match="payload"):
                await raw.publish(f"ssep.local.{name}", os.urandom(2 * limit))
        await raw.flush()

        def counted() -> bool:
            return all(Counter(obs.latest[n].rejected) == PER_MEMBER for n in names)

        await until(obs, counted, 15, "every member counted each attack")
        await asyncio.sleep(0.5)  # anything more (the 2 MB message) would show now
        await until(obs, lambda: obs.latest[names[0]].time > time.time() - 0.2, 5)
        assert all(Counter(obs.latest[n].rejected) == PER_MEMBER for n in names)
        assert fleet.running() == [*names, "witness"]
        assert obs.history[-1].band is CoherenceBand.SHARED
        print("\nrejected by each member:", dict(PER_MEMBER))
    finally:
        await raw.aclose()
        await bus.aclose()
    assert fleet.stop() == dict.fromkeys([*names, "witness"], 0)
    last = json.loads((fleet.base / "witness.log").read_text().strip().splitlines()[-1])
    # it hears each attack once per member subject; replayed bytes it already accepted are a
    # copy to it (not a rejection)
    want = {r: 3 * n for r, n in PER_MEMBER.items() if r != "replay"}
    assert {r: n for r, n in last["rejected"].items() if r != "replay"} == want, last
    assert last["chain_verified"] and last["copies"] > 0
