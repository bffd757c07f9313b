"""Witness records and the signed chain head: their fields, canonical bytes and hashes.

Rule (DESIGN.md §5): a record is ``seq, level, time, kind, payload, prev_hash, hash, signer,
signature``; ``hash`` is the SHA-256 of the canonical bytes of every other field but the
signature, and ``signature`` is the signer's Ed25519 signature of that hash. So any changed byte
makes the record fail at its own index. Pure functions and values; no I/O.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from becomingone.errors import InputError

__all__ = [
    "GENESIS_HASH",
    "ChainHead",
    "Level",
    "WitnessRecord",
    "canonical_payload",
    "head_message",
    "record_hash",
]

#: ``prev_hash`` of the first record.
GENESIS_HASH = "0" * 64

_HEAD_DOMAIN = b"becomingone-chain-head-v1\x00"

# One encoder each, built once: the same output as ``json.dumps`` with these options (which
# builds a new encoder per call), at a fraction of the per-record cost.
_PAYLOAD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_BODY_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class Level(enum.Enum):
    """The four witnessing levels."""

    MICRO = "micro"  # each ingest batch
    MESO = "meso"  # each integration cycle of a transducer
    MACRO = "macro"  # each collapse
    META = "meta"  # the log verifying itself


def canonical_payload(payload: Mapping[str, Any]) -> str:
    """Payload as canonical JSON text (sorted keys, no spaces); rejects NaN and inf."""
    try:
        return _PAYLOAD_JSON.encode(payload)
    except (TypeError, ValueError) as exc:
        raise InputError("payload", f"cannot be witnessed: {exc}") from exc


def record_hash(
    *, seq: int, level: str, time: float, kind: str, payload: str, prev_hash: str, signer: str
) -> str:
    """Hex SHA-256 of a record's canonical bytes (all fields but hash and signature)."""
    body = _BODY_JSON.encode([seq, level, repr(float(time)), kind, payload, prev_hash, signer])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessRecord:
    """One link of the chain, exactly as stored."""

    seq: int
    level: str
    time: float
    kind: str
    payload: str
    prev_hash: str
    hash: str
    signer: str
    signature: bytes

    def __post_init__(self) -> None:
        if not math.isfinite(self.time):
            raise InputError("time", f"must be finite, got {self.time!r}")

    def computed_hash(self) -> str:
        """The hash these fields should have."""
        return record_hash(
            seq=self.seq,
            level=self.level,
            time=self.time,
            kind=self.kind,
            payload=self.payload,
            prev_hash=self.prev_hash,
            signer=self.signer,
        )

    def data(self) -> dict[str, Any]:
        """The payload parsed back from JSON ({} if it is not a JSON object)."""
        try:
            value = json.loads(self.payload)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def summary(self) -> dict[str, Any]:
        """A JSON-able view (signature as hex) for display and hooks."""
        return {
            "seq": self.seq,
            "level": self.level,
            "time": self.time,
            "kind": self.kind,
            "payload": self.data(),
            "hash": self.hash,
            "prev_hash": self.prev_hash,
            "signer": self.signer,
            "signature": self.signature.hex(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """The signed claim "the chain has ``count`` records and the last one hashes to ``hash``".

    Stored beside the records and rewritten with every commit, so removing records from the
    end of the chain is detected too (an attacker without the key cannot sign a shorter head).
    """

    count: int
    hash: str
    signature: bytes


def head_message(count: int, last_hash: str) -> bytes:
    """The bytes a chain head's signature covers."""
    return _HEAD_DOMAIN + f"{count}:{last_hash}".encode("ascii")
