"""SSEP v1 packets: canonical round-trip, signatures and every counted rejection reason."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.sync import (
    MAX_PACKET_BYTES,
    Packet,
    PacketKind,
    PacketValidator,
    Reject,
    decode_packet,
    encode_packet,
)

KEY = NodeKey.from_seed(b"a" * 32)
OTHER = NodeKey.from_seed(b"b" * 32)
ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
unit = st.floats(0.0, 1.0, allow_nan=False)

packets = st.builds(
    Packet,
    node_id=ids,
    cluster=ids,
    seq=st.integers(0, 2**64 - 1),
    timestamp=st.floats(0.0, 1e12, allow_nan=False),
    delta_phi=unit,
    kappa=st.floats(0.0, 1e6),
    theta=st.floats(0.0, 1.0, exclude_max=True),
    glyph_digest=st.one_of(st.just(b""), st.binary(min_size=32, max_size=32)),
    coherence=unit,
    node_energy=st.floats(0.0, 1e12),
    kind=st.sampled_from(PacketKind),
    level=st.integers(0, 63),
    weight=st.floats(0.0, 1e12),
)


def make(seq: int = 1, timestamp: float = 10.0, **kw: object) -> Packet:
    """A valid packet from node 'a'."""
    return Packet(node_id="a", cluster="c", seq=seq, timestamp=timestamp, theta=0.25, **kw)  # type: ignore[arg-type]


def validator() -> PacketValidator:
    """A validator that knows node 'a'."""
    return PacketValidator(cluster="c", keys={"a": KEY.public_bytes}, max_skew=2.0)


@given(packets)
@settings(max_examples=150, deadline=None)
def test_round_trip(packet: Packet) -> None:
    """decode(encode(p)) == p, and the signed body is the canonical bytes."""
    wire = encode_packet(packet, KEY)
    got, body, sig = decode_packet(wire)
    assert got == packet
    assert body == packet.to_bytes()
    assert len(sig) == 64
    assert len(wire) <= MAX_PACKET_BYTES


@given(st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_random_bytes_only_raise_protocol_error(data: bytes) -> None:
    """Arbitrary bytes either validate or raise ProtocolError, never anything else."""
    v = validator()
    with pytest.raises(ProtocolError):
        v.validate(data, 10.0)
    assert sum(v.rejected.values()) == 1


@given(packets, st.integers(0, 400), st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_mutated_packets_only_raise_protocol_error(packet: Packet, pos: int, byte: int) -> None:
    """A valid packet with one byte changed is rejected with a ProtocolError (or is identical)."""
    wire = bytearray(encode_packet(packet, KEY))
    wire[pos % len(wire)] = byte
    v = PacketValidator(cluster=packet.cluster, keys={packet.node_id: KEY.public_bytes})
    try:
        v.validate(bytes(wire), packet.timestamp)
    except ProtocolError as exc:
        assert exc.reason in set(Reject)
    else:
        assert bytes(wire) == encode_packet(packet, KEY)


def test_each_rejection_reason_is_counted() -> None:
    """Oversize, unknown signer, bad signature, skew, replay, non-finite and range are counted."""
    v = validator()
    good = encode_packet(make(seq=5), KEY)
    assert v.validate(good, 10.0).seq == 5
    cases = [
        (b"x" * (MAX_PACKET_BYTES + 1), Reject.OVERSIZE),
        (
            encode_packet(Packet(node_id="z", cluster="c", seq=1, timestamp=10.0), OTHER),
            Reject.UNKNOWN_SIGNER,
        ),
        (encode_packet(make(seq=6), OTHER), Reject.BAD_SIGNATURE),
        (encode_packet(make(seq=7, timestamp=30.0), KEY), Reject.SKEW),
        (good, Reject.REPLAY),
        (encode_packet(make(seq=4), KEY), Reject.REPLAY),
        (
            encode_packet(Packet(node_id="a", cluster="d", seq=9, timestamp=10.0), KEY),
            Reject.WRONG_CLUSTER,
        ),
        (b"SSEP\x02" + good[5:], Reject.BAD_VERSION),
        (good[:-1], Reject.MALFORMED),
    ]
    for data, reason in cases:
        with pytest.raises(ProtocolError) as info:
            v.validate(data, 10.0)
        assert info.value.reason == reason
    body = bytearray(make(seq=8).to_bytes())
    theta_at = len(body) - 1 - 8 * 4  # theta is the 4th of 7 doubles before the digest
    body[theta_at : theta_at + 8] = struct.pack(">d", math.nan)
    with pytest.raises(ProtocolError) as info:
        v.validate(bytes(body) + KEY.sign(bytes(body)), 10.0)
    assert info.value.reason == Reject.NON_FINITE
    body[theta_at : theta_at + 8] = struct.pack(">d", 1.5)
    with pytest.raises(ProtocolError) as info:
        v.validate(bytes(body) + KEY.sign(bytes(body)), 10.0)
    assert info.value.reason == Reject.OUT_OF_RANGE
    assert v.rejected[Reject.REPLAY] == 2
    assert sum(v.rejected.values()) == len(cases) + 2
    assert v.validate(encode_packet(make(seq=6), KEY), 10.0).seq == 6  # forged seq 6 left no mark


def test_local_construction_names_the_field() -> None:
    """Building a bad packet locally raises InputError naming the field."""
    with pytest.raises(InputError) as info:
        make(coherence=float("inf"))
    assert info.value.parameter == "coherence"
    with pytest.raises(InputError):
        Packet(node_id="bad id", cluster="c", seq=1, timestamp=0.0)
