"""Witnessing: four-level records in an append-only, Ed25519-signed hash chain.

Rule: records are created only by :class:`WitnessChain` (through :class:`WitnessingLayer`, the
seed's four names, one per level) and checked only by :func:`verify`; storing them is the
memory layer's job.
"""

from becomingone.witnessing.chain import VerifyReport, WitnessChain, verify
from becomingone.witnessing.layer import WitnessingLayer, report_payload
from becomingone.witnessing.record import (
    GENESIS_HASH,
    ChainHead,
    Level,
    WitnessRecord,
    canonical_payload,
    head_message,
    record_hash,
)

__all__ = [
    "GENESIS_HASH",
    "ChainHead",
    "Level",
    "VerifyReport",
    "WitnessChain",
    "WitnessRecord",
    "WitnessingLayer",
    "canonical_payload",
    "head_message",
    "record_hash",
    "report_payload",
    "verify",
]
