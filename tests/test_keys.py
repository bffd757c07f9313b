"""Ed25519 keys: weak public keys (small order, non-canonical) verify nothing."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.keys import (
    NodeKey,
    _add,
    _decode_point,
    verify_signature,
    weak_public_key,
)

_P = 2**255 - 19
#: The order of Ed25519's prime-order subgroup (RFC 8032 §5.1).
_L = 2**252 + 27742317777372353535851937790883648493


def _encode(point: tuple[int, int]) -> bytes:
    x, y = point
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _times(n: int, point: tuple[int, int]) -> tuple[int, int]:
    """n·point by double-and-add (slow, plain: the test's own reference)."""
    out, run = (0, 1), point
    while n:
        if n & 1:
            out = _add(out, run)
        run = _add(run, run)
        n >>= 1
    return out


def _some_point(seed: bytes) -> tuple[int, int]:
    """A point of the curve from ``seed`` (hash until an encoding decodes)."""
    for i in range(200):
        candidate = hashlib.sha256(seed + bytes([i])).digest()
        point = _decode_point(candidate)
        if point is not None:
            return point
    raise AssertionError("no point in 200 tries")


def test_the_all_zero_key_forges_nothing() -> None:
    """The all-zero key with the all-zero signature is refused for every message (OpenSSL
    alone accepts it for about a quarter of them; schemathesis found one)."""
    assert weak_public_key(bytes(32))
    accepted = [m for m in range(64) if verify_signature(bytes(32), bytes([m]), bytes(64))]
    assert accepted == []


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=16))
def test_torsion_points_are_weak_and_prime_order_points_are_not(seed: bytes) -> None:
    """L·P is a point of order dividing 8 for any curve point P: every such point's encoding
    is weak; 8·P (in the prime-order subgroup, not the identity) is not."""
    point = _some_point(seed)
    torsion = _times(_L, point)
    assert _times(8, torsion) == (0, 1)
    assert weak_public_key(_encode(torsion))
    strong = _times(8, point)
    if strong != (0, 1):
        assert not weak_public_key(_encode(strong))


def test_every_small_order_point_and_non_canonical_encoding_is_weak() -> None:
    """All eight points of order dividing 8 are found and refused, as are y ≥ p and a
    negative zero x (encodings libsodium refuses too)."""
    found = {_times(_L, _some_point(bytes([i]))) for i in range(64)}
    assert len(found) == 8
    assert all(weak_public_key(_encode(t)) for t in found)
    for y in (_P, _P + 1, 2**255 - 1):
        assert weak_public_key(y.to_bytes(32, "little"))
    assert weak_public_key((1 | (1 << 255)).to_bytes(32, "little"))  # x = 0 with sign 1


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_real_keys_still_sign_and_verify(seed: bytes) -> None:
    """Keys made by NodeKey are never weak and their signatures verify; a changed message
    does not."""
    key = NodeKey.from_seed(seed)
    assert not weak_public_key(key.public_bytes)
    assert verify_signature(key.public_bytes, b"m", key.sign(b"m"))
    assert not verify_signature(key.public_bytes, b"n", key.sign(b"m"))


def test_wrong_lengths_are_weak() -> None:
    """A key that is not 32 bytes is weak (and verifies nothing), without raising."""
    assert weak_public_key(b"") and weak_public_key(bytes(33))
    assert not verify_signature(bytes(31), b"m", bytes(64))


def _openssl_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """OpenSSL's decision (through ``cryptography``), the library the signatures used before."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300))
def test_signatures_are_the_bytes_openssl_makes(seed: bytes, message: bytes) -> None:
    """NodeKey signs with libsodium; Ed25519 is deterministic, so the signature is byte for
    byte the one OpenSSL makes with the same key (signed records and packets are unchanged)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = NodeKey.from_seed(seed)
    assert key.sign(message) == Ed25519PrivateKey.from_private_bytes(seed).sign(message)


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=200),
    st.sampled_from(["none", "signature", "message", "key"]),
    st.integers(0, 10_000),
)
def test_verification_decides_as_openssl_did(
    seed: bytes, message: bytes, change: str, position: int
) -> None:
    """For genuine signatures and copies with one bit flipped in the signature, the message
    or the key, libsodium's decision equals OpenSSL's (keys weak_public_key refuses aside)."""
    key = NodeKey.from_seed(seed)
    public, signature = bytearray(key.public_bytes), bytearray(key.sign(message))
    data = bytearray(message)
    target = {"signature": signature, "message": data, "key": public}.get(change)
    if target:
        target[position % len(target)] ^= 1 << (position % 8)
    args = bytes(public), bytes(data), bytes(signature)
    expected = _openssl_verifies(*args) and not weak_public_key(args[0])
    assert verify_signature(*args) is expected
    assert expected is (change == "none" or (change == "message" and not message))
