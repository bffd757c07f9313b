"""Takeover: a glyph whose owner is presumed dead gets a new owner, exactly once.

Rule: sans-IO, like :mod:`becomingone.cluster.migrate_machine`: values in, decisions and
effects out; no clock, no store. The driver (:mod:`becomingone.runtime.node_glyphs`) feeds
what it heard (seconds since each peer's last status, their loads) and what it read
(records and revisions, observed over time by a :class:`RecordWatch`).

- **Presumed dead.** The owner of a record has not been heard for ``timeout`` seconds (by
  the observing node's clock, counting from its own start when it never heard it) *and* the
  record's revision has not changed for ``timeout`` seconds as observed by that node — a
  live owner rewrites its records every few seconds (its write-back), so both together mean
  it neither speaks nor writes. An offered record whose owner (the source) is presumed dead
  is taken over like an owned one: the target's commit, if it ever comes, loses the CAS.
- **Who takes it.** The least-loaded live node (this node and the peers heard within the
  peer timeout, by the glyph load they report, ties by node id) — the ranking migration
  uses — so all nodes that hear alike choose alike. A node that does not hear alike may
  disagree; after ``2 × timeout`` of an unchanged record any live node that judges the owner
  dead takes it, so a glyph is never stuck on a disagreement.
- **Exactly once.** The takeover is one compare-and-set of the record, at the revision that
  was observed unchanged, to ``owned by taker`` with epoch + 1. Of two nodes that try, one
  write wins; the loser reads the record again and sees a live owner.
- **No fire twice.** The taker schedules the glyph not again in the later of the record's
  last fired cycle and its own fire log's; the dead owner fired nothing for ``timeout``
  seconds (> one cycle), so the cycles the taker fires in are after the owner's last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from becomingone.cluster.glyph import evolve
from becomingone.cluster.migrate_machine import Install, MigrationEffect, Witness, WriteRecord
from becomingone.cluster.migration import OwnerRecord, record_key
from becomingone.errors import InputError

__all__ = ["DEFAULT_TAKEOVER", "RecordWatch", "should_take", "takeover", "taker"]

#: Default seconds of silence (and of an unchanged record) before an owner is presumed dead:
#: 15 peer timeouts of the default cluster, 3 write-back periods.
DEFAULT_TAKEOVER = 15.0


class RecordWatch:
    """Since when each record has been seen at its current revision (the observer's clock).

    >>> w = RecordWatch()
    >>> w.observe("glyph.a", 4, now=10.0), w.observe("glyph.a", 4, now=13.5)
    (0.0, 3.5)
    >>> w.observe("glyph.a", 5, now=14.0)
    0.0
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float]] = {}

    def observe(self, key: str, revision: int, now: float) -> float:
        """Note ``key`` at ``revision`` at ``now``; seconds it has been at that revision."""
        was = self._seen.get(key)
        if was is None or was[0] != revision:
            self._seen[key] = (revision, now)
            return 0.0
        return now - was[1]

    def keep(self, keys: Iterable[str]) -> None:
        """Forget every key but ``keys`` (records gone, or owners heard again)."""
        wanted = set(keys)
        self._seen = {k: v for k, v in self._seen.items() if k in wanted}

    def __len__(self) -> int:
        return len(self._seen)


def taker(loads: Mapping[str, float]) -> str | None:
    """The node that takes a dead owner's glyph: least load, ties by node id; ``None`` for
    no live node.

    >>> taker({"b": 2.0, "a": 2.0, "c": 5.0}), taker({})
    ('a', None)
    """
    return min(loads, key=lambda n: (loads[n], n), default=None)


def should_take(
    record: OwnerRecord,
    *,
    node_id: str,
    silent_for: float,
    unchanged_for: float,
    loads: Mapping[str, float],
    timeout: float = DEFAULT_TAKEOVER,
) -> bool:
    """Whether ``node_id`` takes over ``record``'s glyph now.

    ``silent_for``: seconds since the owner was last heard; ``unchanged_for``: seconds the
    record has been observed at its revision; ``loads``: the live nodes (``node_id``
    included) and their glyph loads.

    >>> from becomingone.cluster import Glyph
    >>> rec = OwnerRecord(glyph=Glyph(id="g", kind="probe", owner="dead", epoch=2))
    >>> loads = {"a": 3.0, "b": 1.0}
    >>> [should_take(rec, node_id=n, silent_for=20, unchanged_for=16, loads=loads) for n in "ab"]
    [False, True]
    >>> should_take(rec, node_id="a", silent_for=40, unchanged_for=31, loads=loads)
    True
    >>> should_take(rec, node_id="b", silent_for=20, unchanged_for=3, loads=loads)
    False
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise InputError("timeout", f"must be a finite number > 0, got {timeout}")
    if record.owner == node_id or node_id not in loads or record.owner in loads:
        return False
    if silent_for < timeout or unchanged_for < timeout:
        return False
    return taker(loads) == node_id or unchanged_for >= 2 * timeout


def takeover(
    record: OwnerRecord, revision: int, node_id: str, *, silent_for: float
) -> list[MigrationEffect]:
    """Effects of ``node_id`` taking ``record``'s glyph (read at ``revision``) from its dead
    owner: CAS the record to owned by ``node_id`` with epoch + 1, schedule it (not again in
    its last fired cycle), witness ``glyph.takeover``. A lost CAS stops the list.

    >>> from becomingone.cluster import Glyph
    >>> rec = OwnerRecord(glyph=Glyph(id="g", kind="probe", owner="dead", epoch=2), fired_cycle=9)
    >>> w, i, s = takeover(rec, 7, "b", silent_for=16.0)
    >>> w.expected_revision, OwnerRecord.from_bytes(w.value).owner, i.glyph.epoch, i.fired_cycle
    (7, 'b', 3, 9)
    >>> s.kind, s.payload["from"], s.payload["epoch"]
    ('glyph.takeover', 'dead', 3)
    """
    taken = evolve(record.glyph, owner=node_id, epoch=record.epoch + 1)
    owned = OwnerRecord(glyph=taken, fired_cycle=record.fired_cycle)
    facts = {
        "glyph": taken.id,
        "from": record.owner,
        "epoch": taken.epoch,
        "was": record.state.value,
        "fired_cycle": record.fired_cycle,
        "silent_for": round(silent_for, 3),
    }
    return [
        WriteRecord(
            cell=node_id,
            key=record_key(taken.id),
            value=owned.to_bytes(),
            expected_revision=revision,
        ),
        Install(cell=node_id, glyph=taken, fired_cycle=record.fired_cycle),
        Witness(cell=node_id, kind="glyph.takeover", payload=facts),
    ]
