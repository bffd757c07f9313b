"""Temporal memory and storage: one small protocol per aggregate (witness log, signatures,
coherence history, protocol state, compare-and-set records, append-only log), each with an
in-memory and an SQLite adapter, and the cell's SQLite store :class:`TemporalMemory`.

Rule: the only layer that touches the database file; it takes plain parameters
(:class:`Retention`) and never imports ``becomingone.config``.
"""

from becomingone.memory.inmemory import (
    MemoryAppendLog,
    MemoryCasRecord,
    MemoryCoherenceHistory,
    MemoryProtocolState,
    MemorySignatureStore,
    MemoryWitnessLog,
)
from becomingone.memory.protocols import (
    AppendLog,
    CasRecord,
    CoherenceHistory,
    ProtocolStateStore,
    Signature,
    SignatureStore,
    Versioned,
    WitnessLog,
)
from becomingone.memory.retention import Retention
from becomingone.memory.sqlite import (
    SqliteAppendLog,
    SqliteCasRecord,
    SqliteCoherenceHistory,
    SqliteProtocolState,
    SqliteSignatureStore,
    SqliteWitnessLog,
)
from becomingone.memory.store import DB_NAME, Coherence, CoherencePoint, TemporalMemory

__all__ = [
    "DB_NAME",
    "AppendLog",
    "CasRecord",
    "Coherence",
    "CoherenceHistory",
    "CoherencePoint",
    "MemoryAppendLog",
    "MemoryCasRecord",
    "MemoryCoherenceHistory",
    "MemoryProtocolState",
    "MemorySignatureStore",
    "MemoryWitnessLog",
    "ProtocolStateStore",
    "Retention",
    "Signature",
    "SignatureStore",
    "SqliteAppendLog",
    "SqliteCasRecord",
    "SqliteCoherenceHistory",
    "SqliteProtocolState",
    "SqliteSignatureStore",
    "SqliteWitnessLog",
    "TemporalMemory",
    "Versioned",
    "WitnessLog",
]
