"""Transducers: the Master (slow, long window) and the Emissary (fast) of a cell.

Rule: engines and cycle clocks only; witnessing, storage and hooks belong to the cell.
"""

from becomingone.transducers.transducer import (
    EmissaryTransducer,
    MasterTransducer,
    Reading,
    Transducer,
    ingest_pair,
)

__all__ = ["EmissaryTransducer", "MasterTransducer", "Reading", "Transducer", "ingest_pair"]
