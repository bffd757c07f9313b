"""The witness node: no engine; verifies every packet of a cluster and keeps a signed log of it.

Rule: a thin asyncio loop around :class:`~becomingone.sync.ssep.PacketValidator`. The witness
subscribes to ``ssep.<cluster>.*`` (every packet to every node), so the same bytes arrive once
per receiver: a copy of bytes it already accepted is counted as ``copies`` and nothing else.
Every other message is validated against the roster file (reread when it changes, as for a
node) and accepted or rejected by reason, exactly as a member would.

Once per ``window`` seconds with traffic it appends one record to the witness chain of its own
data dir (signed with its own key, verifiable with ``becomingone witness verify``)::

    level MESO, kind "cluster.heard", payload {
        "cluster", "from", "to",                     the window, wall-clock seconds
        "nodes": {id: {"epoch", "first_seq", "last_seq", "packets", "digest"}},
        "rejected": {reason: count}, "copies": n}

where ``digest`` is SHA-256 (hex) over the accepted packets' bytes of that node in arrival
order, so the log pins exactly which packets the cluster exchanged. The data dir is a cell's
(key, chain, memory) whose transducers are never fed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from becomingone.errors import ProtocolError
from becomingone.runtime.cell import Cell
from becomingone.runtime.node import RosterSource
from becomingone.sync.ssep import PacketValidator
from becomingone.transport.base import Bus
from becomingone.witnessing.record import Level

__all__ = ["ClusterWitness"]

#: Digests of accepted packets remembered to recognise copies.
SEEN_MAX = 65_536


class ClusterWitness:
    """Verifies a cluster's packets and witnesses them, window by window, in ``cell``'s chain."""

    def __init__(
        self,
        cell: Cell,
        *,
        cluster: str,
        roster: RosterSource,
        max_skew: float,
        window: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cell = cell
        self.cluster = cluster
        self.roster_file = roster
        self.window = window
        self.clock = clock
        self.validator = PacketValidator(cluster=cluster, keys=roster.read(), max_skew=max_skew)
        self.copies = 0
        self.records = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._nodes: dict[str, dict[str, Any]] = {}
        self._digests: dict[str, Any] = {}
        self._rejected: Counter[str] = Counter()
        self._window_copies = 0
        self._from = clock()

    def reload_roster(self) -> None:
        """Take a changed roster file (the replay table and counters carry over)."""
        if not self.roster_file.changed():
            return
        roster = self.roster_file.read()
        if roster != self.validator.roster:
            old = self.validator
            self.validator = PacketValidator(
                cluster=self.cluster, keys=roster, max_skew=old.max_skew, state=old.state()
            )

    def hear(self, data: bytes, now: float) -> bool:
        """Take one message; True iff it was a new, valid packet."""
        digest = hashlib.sha256(data).digest()
        if digest in self._seen:
            self.copies += 1
            self._window_copies += 1
            return False
        before = Counter(self.validator.rejected)
        try:
            packet = self.validator.validate(data, now)
        except ProtocolError:
            self._rejected.update(Counter(self.validator.rejected) - before)
            return False
        self._seen[digest] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        node = self._nodes.get(packet.node_id)
        if node is None or node["epoch"] != packet.epoch:
            node = self._nodes[packet.node_id] = {
                "epoch": packet.epoch,
                "first_seq": packet.seq,
                "last_seq": packet.seq,
                "packets": 0,
            }
            self._digests[packet.node_id] = hashlib.sha256()
        node["last_seq"] = packet.seq
        node["packets"] += 1
        self._digests[packet.node_id].update(data)
        return True

    async def flush(self, now: float) -> bool:
        """Witness the window ending at ``now`` if anything happened in it; True iff written."""
        start, self._from = self._from, now
        if not (self._nodes or self._rejected or self._window_copies):
            return False
        nodes = {
            n: {**v, "digest": self._digests[n].hexdigest()} for n, v in sorted(self._nodes.items())
        }
        payload = {
            "cluster": self.cluster,
            "from": round(start, 6),
            "to": round(now, 6),
            "nodes": nodes,
            "rejected": dict(sorted(self._rejected.items())),
            "copies": self._window_copies,
        }
        self._nodes, self._digests, self._rejected = {}, {}, Counter()
        self._window_copies = 0
        await self.cell.witness(Level.MESO, "cluster.heard", payload, now)
        self.records += 1
        return True

    def status(self, now: float) -> dict[str, Any]:
        """A JSON-ready status line."""
        return {
            "node": self.cell.config.name,
            "kind": "witness",
            "time": round(now, 6),
            "members": len(self.validator.roster),
            "accepted": self.validator.accepted,
            "copies": self.copies,
            "rejected": dict(self.validator.rejected),
            "records": self.records,
        }

    async def run(
        self,
        bus: Bus,
        *,
        duration: float | None,
        stop: asyncio.Event,
        on_second: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Listen until ``stop`` or ``duration``; flush the last window; returns the status."""
        sub = await bus.subscribe(f"ssep.{self.cluster}.*")
        started = self._from = self.clock()
        while not stop.is_set():
            now = self.clock()
            if duration is not None and now - started >= duration:
                break
            self.reload_roster()
            for data in sub.drain():
                self.hear(data, self.clock())
            if now - self._from >= self.window:
                await self.flush(now)
                if on_second is not None:
                    on_second(self.status(now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.05)
        for data in sub.drain():
            self.hear(data, self.clock())
        await self.flush(self.clock())
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        return self.status(self.clock())
