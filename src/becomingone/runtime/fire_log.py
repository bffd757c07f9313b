"""The fire log of a node process: every glyph firing, keyed (glyph, cycle), in SQLite.

Rule: one table ``fires`` in the node's data dir (:data:`FIRE_LOG_NAME`), primary key
(glyph, cycle). A firing is claimed — inserted and committed, its own transaction, WAL — before
its handler runs, so a ``kill -9`` after the claim keeps it; a claim of a key already there
writes nothing and says so. The union of the logs of every node is what proves that no glyph
fired twice in one cycle across processes (:mod:`becomingone.runtime.node_glyphs`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from becomingone.errors import StorageError

__all__ = ["FIRE_LOG_NAME", "FireLog", "read_fires"]

#: The fire log's file in a node's data dir.
FIRE_LOG_NAME = "glyph_fires.sqlite3"


class FireLog:
    """The firings of one node: SQLite table ``fires`` with the unique key (glyph, cycle).

    Each :meth:`claim` is its own committed transaction (WAL), so a firing entered before its
    run survives a ``kill -9`` of the process.
    """

    def __init__(self, path: Path, node_id: str) -> None:
        self.path, self.node_id = Path(path), node_id
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS fires (glyph TEXT NOT NULL, cycle INTEGER NOT NULL,"
                " node TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (glyph, cycle))"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the fire log {self.path}: {exc}") from exc

    def claim(self, glyph_id: str, cycle: int, at: float) -> bool:
        """Enter (glyph, cycle); False iff the key is there already (nothing written)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO fires VALUES (?, ?, ?, ?)", (glyph_id, cycle, self.node_id, at)
        )
        return cur.rowcount == 1

    def last(self, glyph_id: str) -> int | None:
        """The latest cycle ``glyph_id`` fired in here (None: never)."""
        row = self._db.execute("SELECT MAX(cycle) FROM fires WHERE glyph = ?", (glyph_id,))
        value = row.fetchone()[0]
        return None if value is None else int(value)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def read_fires(path: Path) -> list[tuple[str, int, str]]:
    """(glyph, cycle, node) of every firing in the fire log at ``path`` (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT glyph, cycle, node FROM fires").fetchall()
        return [(str(g), int(c), str(n)) for g, c, n in rows]
    finally:
        db.close()
