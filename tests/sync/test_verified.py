"""The shared verification cache: never accepts a changed byte, never changes a counter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.sync import Packet, PacketValidator, Reject, decode_packet, encode_packet
from becomingone.sync.verified import VerifyCache

KEYS = {name: NodeKey.from_seed(name.encode() * 32) for name in ("a", "b", "c")}
ROSTER = {name: key.public_bytes for name, key in KEYS.items() if name != "c"}  # c: unknown
FORGER = NodeKey.from_seed(b"f" * 32)


def wire(node: str, seq: int, timestamp: float = 10.0, key: NodeKey | None = None) -> bytes:
    """A packet from ``node`` signed by its own key (or by ``key``)."""
    packet = Packet(node_id=node, cluster="x", seq=seq, timestamp=timestamp, theta=0.25)
    return encode_packet(packet, key or KEYS[node])


def validator(cache: VerifyCache | None) -> PacketValidator:
    """A validator of cluster 'x' knowing a and b."""
    return PacketValidator(cluster="x", keys=ROSTER, max_skew=2.0, cache=cache)


def flip(data: bytes, pos: int) -> bytes:
    """``data`` with one bit of byte ``pos`` flipped."""
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("where", ["body", "signature"])
def test_changed_byte_after_a_cached_good_verification_is_rejected(where: str) -> None:
    """Once a packet verified (and is cached), the same packet with one flipped bit in the
    signed body (theta field) or in the signature is rejected as a bad signature."""
    cache = VerifyCache(maxsize=8)
    good = wire("a", 1)
    assert validator(cache).validate(good, 10.0).seq == 1
    pos = len(good) - 10 if where == "signature" else len(good) - 64 - 1 - 20
    bad = flip(good, pos)
    fresh = validator(cache)
    with pytest.raises(ProtocolError) as info:
        fresh.validate(bad, 10.0)
    assert info.value.reason is Reject.BAD_SIGNATURE
    assert fresh.rejected == {"bad_signature": 1}
    assert fresh.validate(good, 10.0).seq == 1  # the genuine packet still passes
    assert cache.stats().hits == 1


def test_bad_signature_cached_as_bad_is_counted_by_each_receiver() -> None:
    """A forgery verified once is rejected (and counted) by every validator sharing the cache."""
    cache = VerifyCache()
    forged = wire("a", 1, key=FORGER)
    receivers = [validator(cache) for _ in range(3)]
    for v in receivers:
        with pytest.raises(ProtocolError):
            v.validate(forged, 10.0)
    assert [v.rejected["bad_signature"] for v in receivers] == [1, 1, 1]
    assert (cache.hits, cache.misses) == (2, 1)


def test_replay_is_rejected_per_receiver_even_when_the_signature_is_cached() -> None:
    """Caching the signature does not share replay state: each receiver accepts a packet once
    and rejects its replay."""
    cache = VerifyCache()
    data = wire("b", 7)
    first, second = validator(cache), validator(cache)
    for v in (first, second):
        v.validate(data, 10.0)
        with pytest.raises(ProtocolError) as info:
            v.validate(data, 10.0)
        assert info.value.reason is Reject.REPLAY
    assert first.rejected == second.rejected == {"replay": 1}


def test_cache_bound_holds_and_evicts_least_recent() -> None:
    """Neither memo grows past maxsize; the least recently used entry is evicted first."""
    cache = VerifyCache(maxsize=3)
    packets = [wire("a", seq) for seq in range(1, 7)]
    for data in packets:
        validator(cache).validate(data, 10.0)
        assert len(cache) <= 3 and cache.stats().size <= 3
    assert cache.misses == 6 and cache.parse_misses == 6
    validator(cache).validate(packets[-1], 10.0)  # newest is still there
    assert cache.hits == 1 and cache.parse_hits == 1
    validator(cache).validate(packets[0], 10.0)  # oldest was evicted: verified again
    assert cache.misses == 7


def test_malformed_bytes_are_parsed_and_counted_every_time() -> None:
    """A parse that fails is not cached: each delivery is rejected and counted again."""
    cache = VerifyCache()
    v = validator(cache)
    for _ in range(3):
        with pytest.raises(ProtocolError):
            v.validate(b"not an SSEP packet", 10.0)
    assert v.rejected == {"malformed": 3}
    assert cache.parse_misses == 3 and cache.parse_hits == 0
    assert decode_packet(wire("a", 1))[0].seq == 1


def test_bad_maxsize_names_the_parameter() -> None:
    """maxsize must be an integer >= 1."""
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="maxsize"):
            VerifyCache(maxsize=bad)  # type: ignore[arg-type]


# Property: the same deliveries give the same decisions and counters with and without a cache.
POOL = [wire(n, s) for n in ("a", "b") for s in range(1, 9)]
EXTRA = [wire("a", 50, key=FORGER), wire("c", 3), wire("b", 60, timestamp=100.0)]
events = st.lists(
    st.tuples(
        st.integers(0, 2),  # receiver
        st.integers(0, len(POOL) + len(EXTRA) - 1),  # which packet
        st.one_of(st.none(), st.integers(0, 200)),  # flipped byte position
        st.sampled_from([10.0, 11.5, 13.0]),  # receiver's now
    ),
    max_size=60,
)


def outcomes(cache: VerifyCache | None, run: list[tuple[int, int, int | None, float]]) -> object:
    """Per receiver: accepted (node, seq) in order and rejection counters."""
    receivers = [validator(cache) for _ in range(3)]
    accepted: list[list[tuple[str, int]]] = [[], [], []]
    for who, which, pos, now in run:
        data = (POOL + EXTRA)[which]
        if pos is not None:
            data = flip(data, pos % len(data))
        try:
            packet = receivers[who].validate(data, now)
        except ProtocolError:
            continue
        accepted[who].append((packet.node_id, packet.seq))
    return accepted, [dict(v.rejected) for v in receivers], [v.accepted for v in receivers]


@given(events, st.integers(1, 6))
@settings(max_examples=120, deadline=None)
def test_counters_equal_the_uncached_run(
    run: list[tuple[int, int, int | None, float]], maxsize: int
) -> None:
    """Random genuine, replayed, forged, unknown, skewed and bit-flipped deliveries to three
    receivers give identical accepts and per-reason counters with a (small) shared cache."""
    assert outcomes(VerifyCache(maxsize=maxsize), run) == outcomes(None, run)


def test_own_signatures_are_recorded_but_still_checked_against_the_roster() -> None:
    """cache.sign records a signature made here as good, so a receiver with the signer's key
    needs no verification; a receiver whose roster holds another key for the same node id
    still verifies, and rejects it."""
    cache = VerifyCache()
    packet = Packet(node_id="a", cluster="x", seq=1, timestamp=10.0)
    body = packet.to_bytes()
    data = body + cache.sign(KEYS["a"], body)
    assert data == encode_packet(packet, KEYS["a"])  # the same bytes as encode_packet
    assert validator(cache).validate(data, 10.0).seq == 1
    assert (cache.signed, cache.hits, cache.misses) == (1, 1, 0)
    impostor_roster = PacketValidator(
        cluster="x", keys={"a": FORGER.public_bytes}, max_skew=2.0, cache=cache
    )
    with pytest.raises(ProtocolError) as info:
        impostor_roster.validate(data, 10.0)
    assert info.value.reason is Reject.BAD_SIGNATURE and cache.misses == 1


def test_a_supervisors_own_packets_are_remembered_exactly_as_decoded() -> None:
    """A supervisor sharing a cache records each packet it sends; the recorded parse equals
    decode_packet of the wire bytes, so receivers that take it from the cache see the same."""
    from becomingone.runtime import build_supervisors

    cache = VerifyCache()
    cells = build_supervisors(3, "mesh", seed=2, cache=cache)
    sent = [msg.data for t in range(3) for c in cells for msg in c.tick(t * 0.05)]
    assert len(sent) == 9 and cache.signed == 9
    for data in sent:
        assert cache.parse(data, lambda _: pytest.fail("not remembered")) == decode_packet(data)
    assert cache.parse_misses == 0 and cache.parse_hits == 9


def test_restore_from_settings_keeps_sharing_the_cache() -> None:
    """settings() carries the shared cache, so restore(state, **settings()) gives a supervisor
    that still shares it and sends the same bytes as the uninterrupted one (recorded once)."""
    from becomingone.runtime import build_supervisors
    from becomingone.sync import PhaseSupervisor

    cache = VerifyCache()
    cells = build_supervisors(3, "mesh", seed=5, cache=cache)
    for t in range(3):
        for c in cells:
            c.tick(t * 0.05)
    restored = PhaseSupervisor.restore(cells[0].state(), **cells[0].settings())
    assert restored.validator.cache is cache
    signed = cache.signed
    sent, again = cells[0].tick(0.2), restored.tick(0.2)
    assert [m.data for m in sent] == [m.data for m in again]
    assert cache.signed == signed + 2
    data = sent[0].data
    assert cache.parse(data, lambda _: pytest.fail("not remembered")) == decode_packet(data)


def test_batch_lookups_equal_one_call_per_item() -> None:
    """parse_many and verify_many give the results, memo contents and counters of one
    parse / verify per item, including uncacheable buffers, malformed bytes and bad
    signatures, and an eviction inside the batch."""
    good, other = wire("a", 1), wire("b", 2)
    forged = flip(other, len(other) - 1)  # parses; its signature fails
    # a 2-entry memo: the hit on `good` keeps it, so `forged` evicts `other` and not `good`
    items = [good, bytearray(good), b"SSEP junk", other, good, forged, good]
    one, many = VerifyCache(maxsize=2), VerifyCache(maxsize=2)
    singles: list[object] = []
    for data in items:
        try:
            singles.append(one.parse(data, decode_packet))
        except ProtocolError as exc:
            singles.append(exc.reason)
    batch = many.parse_many(items, decode_packet, ProtocolError)
    assert [x.reason if isinstance(x, ProtocolError) else x for x in batch] == singles
    triples = [
        (ROSTER[p[0].node_id], p[1], p[2]) for p in batch if not isinstance(p, ProtocolError)
    ]
    triples.append((bytearray(triples[0][0]), triples[0][1], triples[0][2]))
    verdicts = [one.verify(*t) for t in triples]
    assert many.verify_many(triples) == verdicts
    assert verdicts.count(False) == 1  # the forged one
    assert many.stats() == one.stats()
