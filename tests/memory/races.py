"""Thread races against compare-and-set records, shared by every adapter's race tests.

Rule: each helper bounds its waits and asserts what a linearizable record must show: in every
round exactly one writer wins, the others get ``CasConflict`` naming the revision they expected,
and a reader sees the winner's value at the winner's revision.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from becomingone.errors import CasConflict
from becomingone.memory.protocols import CasRecord

__all__ = ["one_round", "race", "race_rounds"]


def race(workers: list[threading.Thread]) -> None:
    """Start the threads together and wait for them (bounded)."""
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert not w.is_alive()


def one_round(
    kvs: Sequence[CasRecord], revision: int, tag: int, threads: int
) -> tuple[list[int], list[CasConflict]]:
    """``threads`` threads (adapter ``i % len(kvs)``) update "k" at ``revision`` together:
    the revisions the winners got and the conflicts the losers got."""
    barrier = threading.Barrier(threads)
    wins: list[int] = []
    losses: list[CasConflict] = []

    def contend(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            wins.append(kvs[i % len(kvs)].update("k", b"%d:%d" % (tag, i), revision))
        except CasConflict as err:
            losses.append(err)

    race([threading.Thread(target=contend, args=(i,)) for i in range(threads)])
    return wins, losses


def race_rounds(kvs: Sequence[CasRecord], *, rounds: int, threads: int) -> None:
    """Create "k", then ``rounds`` rounds of ``threads`` writers at one revision each."""
    revision = kvs[0].create("k", b"start")
    for tag in range(rounds):
        wins, losses = one_round(kvs, revision, tag, threads)
        assert len(wins) == 1 and len(losses) == threads - 1
        assert all(err.expected == revision for err in losses)
        revision = wins[0]
        stored = kvs[-1].get("k")
        assert stored is not None and stored.revision == revision
        assert stored.value.startswith(b"%d:" % tag)
