"""SSEP v2 packets: canonical round-trip, signatures, every counted rejection reason, epochs."""

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
    ValidatorState,
    decode_packet,
    encode_packet,
    next_epoch,
)

KEY = NodeKey.from_seed(b"a" * 32)
OTHER = NodeKey.from_seed(b"b" * 32)
ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
unit = st.floats(0.0, 1.0, allow_nan=False)
half = st.floats(-0.7, 0.7, allow_nan=False)

packets = st.builds(
    Packet,
    node_id=ids,
    cluster=ids,
    seq=st.integers(0, 2**64 - 1),
    epoch=st.integers(0, 2**64 - 1),
    t_sync=st.builds(complex, half, half),
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
        (b"SSEP\x01" + good[5:], Reject.BAD_VERSION),
        (good[:-1], Reject.MALFORMED),
    ]
    for data, reason in cases:
        with pytest.raises(ProtocolError) as info:
            v.validate(data, 10.0)
        assert info.value.reason == reason
    body = bytearray(make(seq=8).to_bytes())
    theta_at = len(body) - 1 - 8 * 6  # theta is the 4th of 9 doubles before the digest
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


def _v1_wire(packet: Packet, key: NodeKey) -> bytes:
    """The packet laid out as SSEP v1 (no epoch, no t_sync), signed."""
    node, cluster = packet.node_id.encode(), packet.cluster.encode()
    body = b"".join(
        (
            struct.pack(">4sBBB", b"SSEP", 1, 0, 0),
            bytes([len(node)]) + node + bytes([len(cluster)]) + cluster,
            struct.pack(">Q7d", packet.seq, packet.timestamp, 0, 0, packet.theta, 0, 0, 1.0),
            b"\x00",
        )
    )
    return body + key.sign(body)


def test_v1_packets_are_rejected_as_bad_version() -> None:
    """A correctly signed v1 packet is rejected (bad_version, counted) and says v2 only."""
    v = validator()
    with pytest.raises(ProtocolError, match="v2 only") as info:
        v.validate(_v1_wire(make(seq=1), KEY), 10.0)
    assert info.value.reason == Reject.BAD_VERSION
    assert v.rejected == {Reject.BAD_VERSION: 1}


def test_wire_layout_is_the_documented_one() -> None:
    """Epoch, seq and t_sync sit where the module docstring says, big-endian."""
    packet = make(seq=7, epoch=1234, t_sync=0.5 - 0.25j)
    body = packet.to_bytes()
    assert body[:7] == b"SSEP\x02\x00\x00" and body[7:11] == b"\x01a\x01c"
    epoch, seq, *floats = struct.unpack(">QQ9d", body[11 : 11 + 88])
    assert (epoch, seq) == (1234, 7)
    assert floats == [10.0, 0.0, 0.0, 0.25, 0.0, 0.0, 1.0, 0.5, -0.25]
    assert body[11 + 88 :] == b"\x00"


def test_epoch_then_seq_orders_each_signer() -> None:
    """A higher epoch is accepted with any seq; the same epoch needs a higher seq; a lower
    epoch is rejected as old_epoch even with a huge seq. Each rejection is counted once."""
    v = validator()
    assert v.validate(encode_packet(make(seq=50, epoch=3), KEY), 10.0).seq == 50
    restarted = encode_packet(make(seq=1, epoch=4), KEY)
    assert v.validate(restarted, 10.0).epoch == 4
    for data, reason in (
        (restarted, Reject.REPLAY),
        (encode_packet(make(seq=2**40, epoch=3), KEY), Reject.OLD_EPOCH),
        (encode_packet(make(seq=50, epoch=3), KEY), Reject.OLD_EPOCH),
    ):
        with pytest.raises(ProtocolError) as info:
            v.validate(data, 10.0)
        assert info.value.reason == reason
    assert v.validate(encode_packet(make(seq=2, epoch=4), KEY), 10.0).seq == 2
    assert v.rejected == {Reject.REPLAY: 1, Reject.OLD_EPOCH: 2}
    assert v.accepted == 3


def test_validator_state_resumes_the_replay_table() -> None:
    """A validator built from another's state() rejects what the first would reject."""
    v = validator()
    v.validate(encode_packet(make(seq=5, epoch=2), KEY), 10.0)
    with pytest.raises(ProtocolError):
        v.validate(b"junk", 10.0)
    state = v.state()
    assert state == ValidatorState(last=(("a", 2, 5),), accepted=1, rejected=(("malformed", 1),))
    w = PacketValidator(cluster="c", keys={"a": KEY.public_bytes}, max_skew=2.0, state=state)
    with pytest.raises(ProtocolError) as info:
        w.validate(encode_packet(make(seq=5, epoch=2), KEY), 10.0)
    assert info.value.reason == Reject.REPLAY
    assert w.rejected == {"malformed": 1, "replay": 1}
    with pytest.raises(InputError):
        ValidatorState(last=(("b", 1, 1), ("a", 1, 1)))
    with pytest.raises(InputError):
        ValidatorState(rejected=(("nonsense", 1),))


@pytest.mark.parametrize(
    ("t_sync", "reason"),
    [(complex(math.nan, 0.0), Reject.NON_FINITE), (0.8 + 0.8j, Reject.OUT_OF_RANGE)],
)
def test_t_sync_must_be_finite_and_inside_the_unit_disc(t_sync: complex, reason: Reject) -> None:
    """A signed packet whose t_sync is NaN or has modulus > 1 is rejected with its reason;
    building one locally raises InputError naming t_sync."""
    body = bytearray(make(seq=9).to_bytes())
    at = len(body) - 1 - 16
    body[at : at + 16] = struct.pack(">2d", t_sync.real, t_sync.imag)
    v = validator()
    with pytest.raises(ProtocolError) as info:
        v.validate(bytes(body) + KEY.sign(bytes(body)), 10.0)
    assert info.value.reason == reason
    with pytest.raises(InputError) as local:
        make(t_sync=t_sync)
    assert local.value.parameter == "t_sync"


def test_next_epoch_strictly_increases() -> None:
    """next_epoch is max(previous + 1, now_ms): above the wall clock and above the last epoch,
    even when the clock steps back; bad arguments raise InputError naming them."""
    assert next_epoch(None, 1_000) == 1_000
    assert next_epoch(1_000, 1_000) == 1_001
    assert next_epoch(5_000, 1_000) == 5_001  # clock stepped back
    assert next_epoch(5_000, 9_000) == 9_000  # counter lost part of its history
    with pytest.raises(InputError) as info:
        next_epoch(-1, 5)
    assert info.value.parameter == "previous"
    with pytest.raises(InputError) as info:
        next_epoch(None, 1.5)  # type: ignore[arg-type]
    assert info.value.parameter == "now_ms"
    with pytest.raises(InputError):
        next_epoch(2**64 - 1, 0)
