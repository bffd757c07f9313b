"""The cell an API app serves: a running :class:`~becomingone.runtime.Cell`, or the data dir
of a stopped one (read-only).

Rule: every read goes through one read-only connection to the cell's database (beside the
running writer, SQLite WAL), so the API can never change the chain or the history; writes
reach a running cell only through its :class:`~becomingone.api.inbox.SignalInbox`. Whole-chain
verification runs in a worker thread on its own connection, so a long chain never stalls the
cell's event loop. Secrets in the config are shown as ``"***"``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone import __version__
from becomingone.api.inbox import SignalInbox
from becomingone.config.schema import CellConfig
from becomingone.errors import StorageError
from becomingone.keys import key_id
from becomingone.memory.store import DB_NAME, CoherencePoint, TemporalMemory
from becomingone.runtime.cell import Cell
from becomingone.runtime.datadir import public_key
from becomingone.witnessing import VerifyReport, WitnessRecord, verify

__all__ = ["SECRET_KEYS", "ServedCell", "redact"]

#: Config keys whose values are never shown (matched anywhere in the key's name).
SECRET_KEYS = re.compile(r"(secret|password|passwd|token|credential|private)", re.IGNORECASE)
REDACTED = "***"


def redact(value: Any) -> Any:
    """``value`` with every mapping entry whose key looks secret replaced by ``"***"``.

    >>> redact({"a": 1, "nats": {"password": "x", "token_file": "t"}})
    {'a': 1, 'nats': {'password': '***', 'token_file': '***'}}
    """
    if isinstance(value, Mapping):
        return {k: REDACTED if SECRET_KEYS.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class ServedCell:
    """What the routers read and write: identity, config, state, history, the chain.

    Build with :meth:`live` (a running cell and its inbox) or :meth:`stopped` (a data dir).
    """

    def __init__(
        self,
        config: CellConfig,
        data_dir: Path,
        public_key: bytes,
        *,
        cell: Cell | None = None,
        inbox: SignalInbox | None = None,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.public_key = public_key
        self.cell = cell
        self.inbox = inbox
        self.memory = TemporalMemory.open_read_only(self.data_dir / DB_NAME)
        #: FastAPI runs reads in worker threads; one read (or read transaction) at a time.
        self.lock = threading.Lock()

    @classmethod
    def live(cls, cell: Cell, inbox: SignalInbox) -> ServedCell:
        """The running ``cell``; posted samples go to ``inbox``."""
        return cls(cell.config, cell.data_dir, cell.key.public_bytes, cell=cell, inbox=inbox)

    @classmethod
    def stopped(cls, config: CellConfig, data_dir: Path) -> ServedCell:
        """The data dir of a stopped cell (``StorageError`` if it holds none)."""
        data_dir = Path(data_dir).expanduser()
        if not (data_dir / DB_NAME).is_file():
            raise StorageError(f"data dir {data_dir} holds no cell database ({DB_NAME})")
        return cls(config, data_dir, public_key(data_dir, config.security.key_file))

    def close(self) -> None:
        """Close the read connection."""
        with self.lock:
            self.memory.close()

    @property
    def channels(self) -> int:
        """Channels per sample (what a posted sample must have)."""
        return self.cell.channels if self.cell is not None else self.config.kairos.channels

    @property
    def running(self) -> bool:
        """True when a running cell is behind this app."""
        return self.cell is not None

    def identity(self) -> dict[str, Any]:
        """Name, public key and its id, data dir, whether it runs, the package version."""
        return {
            "name": self.config.name,
            "public_key": self.public_key.hex(),
            "key_id": key_id(self.public_key),
            "data_dir": str(self.data_dir),
            "running": self.running,
            "version": __version__,
        }

    def redacted_config(self) -> dict[str, Any]:
        """The cell's config as JSON, secrets shown as ``"***"``."""
        out: dict[str, Any] = redact(self.config.model_dump(mode="json"))
        return out

    def state(self) -> dict[str, Any]:
        """Counts, samples, chain length and self-check; the inbox when running."""
        if self.cell is not None:
            c = self.cell
            out: dict[str, Any] = {
                "samples": c.samples,
                "witnessed": c.chain.count,
                "chain_ok": c.chain_ok,
                "counts": dict(c.counts),
                "channels": c.channels,
                "dt": c.dt,
            }
            if self.inbox is not None:
                out["inbox"] = {
                    "queued": self.inbox.queue.qsize(),
                    "accepted_batches": self.inbox.accepted_batches,
                    "accepted_samples": self.inbox.accepted_samples,
                }
            return out
        with self.lock:
            witnessed, counts = self.memory.witness_count(), self.memory.counters()
        return {
            "samples": None,
            "witnessed": witnessed,
            "chain_ok": None,
            "counts": counts,
            "channels": self.config.kairos.channels,
            "dt": self.config.kairos.step,
        }

    # -- history ---------------------------------------------------------------------------------

    def now(self, scan: int = 1024, first_page: int = 8) -> dict[str, Any] | None:
        """The newest decision: the payload of the newest ``ingest`` witness record (stream
        time ``t``, the three |T|², Δ_phase, outcome) with its ``seq``; None if there is none
        among the newest ``scan`` records.

        Pages back from the newest record, ``first_page`` records first and each page four
        times the last, so the usual case (an ingest among the newest few) decodes a handful
        of records however long the chain is."""
        with self.lock, self.memory.read_snapshot():
            end = self.memory.witness_count()
            floor, size = max(0, end - scan), first_page
            while end > floor:
                start = max(floor, end - size)
                page = list(self.memory.witnesses(start=start, limit=end - start))
                for record in reversed(page):
                    if record.kind == "ingest":
                        return {"seq": record.seq, **record.data()}
                end, size = start, size * 4
        return None

    def history(self, start: float, end: float) -> list[CoherencePoint]:
        """Stored points with ``start <= t <= end`` (raw and bucketed), oldest first."""
        with self.lock:
            return self.memory.retrieve(start, end)

    def records(self, start: int, limit: int) -> tuple[list[WitnessRecord], int]:
        """Up to ``limit`` witness records from position ``start``, and the stored total."""
        with self.lock, self.memory.read_snapshot():
            total = self.memory.witness_count()
            return list(self.memory.witnesses(start=start, limit=limit)), total

    def recent_samples(self, limit: int) -> NDArray[Any]:
        """The newest ``limit`` samples the cell ingested since its newest engine signatures
        (the replay log), as one array of shape (N,) or (N, channels); empty if none."""
        with self.lock, self.memory.read_snapshot():
            batches = [np.asarray(b) for b in self.memory.replay_log()]
        if not batches:
            return np.empty(0)
        return np.concatenate(batches)[-limit:]

    def witness_count(self) -> int:
        """Number of stored witness records."""
        with self.lock:
            return self.memory.witness_count()

    def verify_chain(self) -> tuple[VerifyReport, str]:
        """SQLite's integrity check (``"ok"`` or what it found), then the whole stored chain
        walked against the signed head (call it in a worker thread)."""
        memory = TemporalMemory.open_read_only(self.data_dir / DB_NAME)
        try:
            integrity = memory.integrity_check()
            with memory.read_snapshot():
                report = verify(memory.witnesses(), self.public_key, head=memory.chain_head())
            return report, integrity
        finally:
            memory.close()
