"""Ed25519 identities: a cell's signing key, key files, signatures and key ids.

Shared by witnessing (signed hash chain) and sync (signed SSEP packets). The only module that
signs or verifies: key files and key objects come from ``cryptography``; signatures are made
and checked by libsodium (PyNaCl's bindings), which on this project's machines signs 2.6× and
verifies 3.9× faster than OpenSSL. Ed25519 signing is deterministic (RFC 8032), so both give
the same signature bytes (a test checks it). libsodium refuses small-order and non-canonical
public keys and small-order R; :func:`weak_public_key` refuses the same keys up front. It reads
and writes key files and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from becomingone.errors import InputError, StorageError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "NodeKey",
    "key_id",
    "read_public_key",
    "verify_signature",
    "weak_public_key",
    "write_public_key",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def key_id(public_key: bytes) -> str:
    """Short stable id of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``.

    Never raises on malformed keys or signatures: they simply do not verify. A weak key
    (:func:`weak_public_key`) verifies nothing: OpenSSL accepts, e.g., the all-zero key with
    the all-zero signature for about a quarter of all messages.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    if weak_public_key(public_key):
        return False
    try:
        nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


# Ed25519's curve (RFC 8032 §5.1): -x² + y² = 1 + d·x²·y² over GF(p).
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(encoded: bytes) -> tuple[int, int] | None:
    """The point of a 32-byte encoding (RFC 8032 §5.1.3), None if it is not a canonical one."""
    n = int.from_bytes(encoded, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    return (_P - x if x & 1 != sign else x), y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """a + b on the curve (the affine formula is complete for Ed25519: d is not a square)."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    return (
        (x1 * y2 + x2 * y1) * pow(1 + t, -1, _P) % _P,
        (y1 * y2 + x1 * x2) * pow(1 - t, -1, _P) % _P,
    )


@functools.lru_cache(maxsize=4096)
def weak_public_key(public_key: bytes) -> bool:
    """True if ``public_key`` must not be trusted: not a canonical point encoding, or a point of
    small order (8·A is the identity), for which forged signatures verify (libsodium refuses
    the same keys). Cached: a roster's keys are checked once.

    >>> weak_public_key(bytes(32)), weak_public_key(NodeKey.from_seed(bytes(32)).public_bytes)
    (True, False)
    """
    point = _decode_point(public_key) if len(public_key) == PUBLIC_KEY_BYTES else None
    if point is None:
        return True
    for _ in range(3):
        point = _add(point, point)
    return point == (0, 1)


def write_public_key(path: Path, public_key: bytes) -> None:
    """Write ``public_key`` to ``path`` as one line of 64 hex digits (mode 0644, atomically)."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InputError("public_key", f"must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(public_key.hex() + "\n", encoding="ascii")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write public key {path}: {exc.strerror or exc}") from exc


def read_public_key(path: Path) -> bytes:
    """The 32-byte public key in ``path`` (64 hex digits, surrounding space ignored)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise StorageError(f"cannot read public key {path}: {exc.strerror or exc}") from exc
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InputError("public_key", f"{path} is not {PUBLIC_KEY_BYTES} bytes of hex")
    return raw


class NodeKey:
    """An Ed25519 private key with its public bytes and id.

    Examples
    --------
    >>> k = NodeKey.generate()
    >>> verify_signature(k.public_bytes, b"hello", k.sign(b"hello"))
    True
    """

    __slots__ = ("_private", "_secret", "id", "public_bytes")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_bytes: bytes = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.id: str = key_id(self.public_bytes)
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        # libsodium's 64-byte secret key (seed ‖ public key), for sign()
        self._secret: bytes = seed + self.public_bytes

    @classmethod
    def generate(cls) -> NodeKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        """A deterministic key from 32 seed bytes (tests and simulations)."""
        if len(seed) != 32:
            raise InputError("seed", f"must be 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load_or_create(cls, path: Path) -> NodeKey:
        """Load the key at ``path`` or create it there (mode 0600, parent created)."""
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        key.save(path)
        return key

    @classmethod
    def load(cls, path: Path) -> NodeKey:
        """Load a raw 32-byte private key file."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read key file {path}: {exc}") from exc
        if len(raw) != 32:
            raise InputError("key_file", f"{path} is not a 32-byte Ed25519 private key")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def save(self, path: Path) -> None:
        """Write the private key to ``path`` with permissions 0600 (atomically)."""
        raw = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"cannot write key file {path}: {exc}") from exc

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (libsodium; the same bytes as
        ``cryptography``'s, Ed25519 being deterministic)."""
        return nacl.bindings.crypto_sign(bytes(message), self._secret)[:SIGNATURE_BYTES]
