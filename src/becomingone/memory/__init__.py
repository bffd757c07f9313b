"""Temporal memory: signatures, coherence history, witness log and mesh snapshots in SQLite.

Rule: the only layer that touches the database file.
"""

from becomingone.memory.store import DB_NAME, Coherence, CoherencePoint, TemporalMemory

__all__ = ["DB_NAME", "Coherence", "CoherencePoint", "TemporalMemory"]
