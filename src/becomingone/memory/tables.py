"""The SQLite table layouts of a cell's ``memory.sqlite3``: defined once, used by
:class:`~becomingone.memory.store.TemporalMemory` and by the per-aggregate SQLite adapters.

Rule: DDL only (``CREATE ... IF NOT EXISTS``); both readers of a cell's file create and read
the same tables, so an adapter can open a cell's database and the cell can open an adapter's.
"""

from __future__ import annotations

__all__ = ["CHAIN_HEAD", "COHERENCE", "SIGNATURE", "WITNESS"]

WITNESS = """
CREATE TABLE IF NOT EXISTS witness (
    pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, level TEXT NOT NULL, time REAL NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    signer TEXT NOT NULL, signature BLOB NOT NULL);
"""

CHAIN_HEAD = """
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, hash TEXT NOT NULL,
    signature BLOB NOT NULL);
"""

COHERENCE = """
CREATE TABLE IF NOT EXISTS coherence (
    t REAL NOT NULL, step REAL NOT NULL, master REAL NOT NULL, emissary REAL NOT NULL,
    sync REAL NOT NULL, delta_phase REAL NOT NULL, phase REAL NOT NULL, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS coherence_t ON coherence (t);
"""

SIGNATURE = """
CREATE TABLE IF NOT EXISTS signature (
    id INTEGER PRIMARY KEY, transducer TEXT NOT NULL, t REAL NOT NULL, samples INTEGER NOT NULL,
    state BLOB NOT NULL);
"""
