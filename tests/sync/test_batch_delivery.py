"""Batch delivery (``validate_many`` / ``receive_many``) decides exactly as one call per packet.

The batch path is only a faster way of running the same checks: for any sequence of genuine,
replayed, forged, unknown, skewed, wrong-cluster, own, old-epoch and bit-flipped wire bytes,
split into batches at any receivers' clocks, the accepted packets, the per-reason rejection
counters, the replay table and the shared cache's counters equal the per-packet run's.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.errors import ProtocolError
from becomingone.keys import NodeKey
from becomingone.sync import Packet, PacketValidator, PhaseSupervisor, encode_packet
from becomingone.sync.topology import Plan, Topology
from becomingone.sync.verified import VerifyCache

KEYS = {name: NodeKey.from_seed(name.encode() * 32) for name in ("a", "b", "r", "c")}
ROSTER = {name: key.public_bytes for name, key in KEYS.items() if name != "c"}  # c: unknown
FORGER = NodeKey.from_seed(b"f" * 32)


def wire(
    node: str,
    seq: int,
    *,
    timestamp: float = 10.0,
    epoch: int = 5,
    cluster: str = "x",
    key: NodeKey | None = None,
) -> bytes:
    """A packet from ``node`` signed by its own key (or by ``key``)."""
    packet = Packet(
        node_id=node, cluster=cluster, seq=seq, epoch=epoch, timestamp=timestamp, theta=0.25
    )
    return encode_packet(packet, key or KEYS[node])


def flip(data: bytes, pos: int) -> bytes:
    """``data`` with one bit of byte ``pos`` flipped."""
    out = bytearray(data)
    out[pos % len(out)] ^= 0x01
    return bytes(out)


POOL = [wire(n, s) for n in ("a", "b") for s in range(1, 7)] + [
    wire("a", 50, key=FORGER),  # bad signature
    wire("c", 3),  # unknown signer
    wire("b", 60, timestamp=100.0),  # skewed at every now used here
    wire("a", 70, cluster="y"),  # wrong cluster
    wire("r", 80),  # the receiver's own id played back to it
    wire("b", 90, epoch=4),  # an old epoch once b's epoch-5 packets are in
    wire("a", 1, epoch=6),  # a restarted a: new epoch, seq from 1
    b"SSEP\x01junk",  # malformed / bad version
]
deliveries = st.lists(
    st.tuples(
        st.integers(0, len(POOL) - 1),  # which packet
        st.one_of(st.none(), st.integers(0, 200)),  # flipped byte position
    ),
    max_size=20,
)
batches = st.lists(
    st.tuples(st.integers(0, 1), deliveries, st.sampled_from([10.0, 11.5, 13.0])), max_size=8
)


def _data(which: int, pos: int | None) -> bytes:
    data = POOL[which]
    return data if pos is None else flip(data, pos)


def run_validators(
    run: list[tuple[int, list[tuple[int, int | None]], float]], *, batch: bool, cache: bool
) -> object:
    """Two receivers (own id ``r``) take ``run`` as batches or one packet at a time."""
    shared = VerifyCache(maxsize=4) if cache else None
    receivers = [
        PacketValidator(cluster="x", keys=ROSTER, max_skew=2.0, cache=shared, own_id="r")
        for _ in range(2)
    ]
    accepted: list[list[tuple[str, int, int]]] = [[], []]
    for who, items, now in run:
        datas = [_data(which, pos) for which, pos in items]
        if batch:
            got = receivers[who].validate_many(datas, now)
        else:
            got = []
            for data in datas:
                with contextlib.suppress(ProtocolError):
                    got.append(receivers[who].validate(data, now))
        accepted[who] += [(p.node_id, p.epoch, p.seq) for p in got]
    stats = None if shared is None else shared.stats()
    return accepted, [v.state() for v in receivers], stats


@given(batches)
@settings(max_examples=150, deadline=None)
def test_validate_many_equals_one_validate_per_packet(
    run: list[tuple[int, list[tuple[int, int | None]], float]],
) -> None:
    """Accepted packets (in order), per-reason counters, replay tables and cache counters of
    the batch path equal the per-packet path's, with a small shared cache and without one."""
    for cache in (True, False):
        assert run_validators(run, batch=True, cache=cache) == run_validators(
            run, batch=False, cache=cache
        )


def test_validate_many_counts_each_reason_once() -> None:
    """One batch holding one packet of each kind of fault counts each reason exactly once
    and accepts only the genuine ones, in order."""
    v = PacketValidator(cluster="x", keys=ROSTER, max_skew=2.0, cache=VerifyCache(), own_id="r")
    good = [wire("a", 1), wire("b", 1)]
    batch = [good[0], good[1], *POOL[12:], good[0], flip(good[1], len(good[1]) - 1)]
    accepted = v.validate_many(batch, 10.0)
    assert [(p.node_id, p.epoch, p.seq) for p in accepted] == [
        ("a", 5, 1),
        ("b", 5, 1),
        ("a", 6, 1),
    ]
    assert dict(v.rejected) == {
        "bad_signature": 2,  # the forger's and the flipped copy of b's
        "unknown_signer": 1,
        "skew": 1,
        "wrong_cluster": 1,
        "replay": 1,  # r's own packet played back to it
        "old_epoch": 2,  # b's epoch 4 after its epoch 5, a's epoch 5 after its epoch 6
        "bad_version": 1,
    }


def _supervisor(index: int, cache: VerifyCache | None) -> PhaseSupervisor:
    members = ("a", "b", "r")
    plan = Plan(topology=Topology.MESH, members=members, index=index)
    return PhaseSupervisor(
        key=KEYS[members[index]], plan=plan, keys=ROSTER, cluster="x", cache=cache, epoch=5
    )


@given(batches)
@settings(max_examples=60, deadline=None)
def test_receive_many_stores_what_one_receive_per_packet_stores(
    run: list[tuple[int, list[tuple[int, int | None]], float]],
) -> None:
    """A supervisor fed batches ends in the same state (inbox, replay table, counters,
    stability) with the same peer loads as one fed the same packets one at a time."""
    cache = VerifyCache()
    one, many = _supervisor(2, cache), _supervisor(2, cache)
    for _, items, now in run:
        datas = [_data(which, pos) for which, pos in items]
        for data in datas:
            one.receive(data, now)
        many.receive_many(datas, now)
    assert many.to_bytes() == one.to_bytes()
    assert many.peer_loads == one.peer_loads
