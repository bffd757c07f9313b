"""Temporal memory: signatures, coherence history, witness log and mesh snapshots in SQLite.

Rule: the only layer that touches the database file; it takes plain parameters
(:class:`Retention`) and never imports ``becomingone.config``.
"""

from becomingone.memory.retention import Retention
from becomingone.memory.store import DB_NAME, Coherence, CoherencePoint, TemporalMemory

__all__ = ["DB_NAME", "Coherence", "CoherencePoint", "Retention", "TemporalMemory"]
