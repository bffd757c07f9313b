"""Coherence-history arithmetic every adapter shares: bucket folding and interpolation.

Rule: pure functions on :class:`~becomingone.memory.store.CoherencePoint` values, no I/O; the
SQLite adapters do the same in SQL (``CAST(t / step AS INTEGER)``: truncation toward zero), and
the conformance suite checks the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from becomingone.memory.retention import Retention
from becomingone.memory.store import Coherence, CoherencePoint

__all__ = ["compact_points", "interpolate", "raw_cut"]

_FIELDS = ("master", "emissary", "sync", "delta_phase")


def raw_cut(now: float, retention: Retention) -> float:
    """Raw points older than this stream time are folded into buckets at ``now``."""
    step = retention.coarse_step
    return math.floor((now - retention.raw_seconds) / step) * step


def _bucket(points: list[CoherencePoint], index: int, step: float) -> CoherencePoint:
    mean = {k: sum(getattr(p.coherence, k) for p in points) / len(points) for k in _FIELDS}
    return CoherencePoint(
        t=(index + 0.5) * step,
        coherence=Coherence(**mean),
        phase=sum(p.phase for p in points) / len(points),
        step=step,
        n=sum(p.n for p in points),
    )


def compact_points(
    points: Iterable[CoherencePoint], now: float, retention: Retention
) -> list[CoherencePoint]:
    """``points`` after retention at stream time ``now``: raw points before :func:`raw_cut`
    replaced by one mean per ``coarse_step`` bucket (appended after the others), then every
    bucket older than ``now - coarse_seconds`` dropped. Order is otherwise kept.

    >>> from becomingone.memory.store import Coherence
    >>> c = Coherence(master=0.5, emissary=0.5, sync=0.5, delta_phase=0.0)
    >>> pts = [CoherencePoint(t=float(t), coherence=c, phase=0.0) for t in range(30)]
    >>> out = compact_points(pts, 30.0, Retention(raw_seconds=10, coarse_step=10))
    >>> [(p.t, p.step, p.n) for p in out if p.step]
    [(5.0, 10, 10), (15.0, 10, 10)]
    """
    cut = raw_cut(now, retention)
    step = retention.coarse_step
    kept: list[CoherencePoint] = []
    groups: dict[int, list[CoherencePoint]] = {}
    for p in points:
        if p.step == 0 and p.t < cut:
            groups.setdefault(int(p.t / step), []).append(p)
        else:
            kept.append(p)
    kept += [_bucket(group, index, step) for index, group in groups.items()]
    oldest = now - retention.coarse_seconds
    return [p for p in kept if not (p.step > 0 and p.t < oldest)]


def interpolate(before: CoherencePoint, after: CoherencePoint, t: float) -> CoherencePoint:
    """Coherence at ``t`` between two stored neighbours (``before.t <= t <= after.t``), linear
    in every field; ``before`` itself when the two share a time. ``step`` is -1 (computed)."""
    if after.t == before.t:
        return before
    w = (t - before.t) / (after.t - before.t)
    mix = {
        k: (1 - w) * getattr(before.coherence, k) + w * getattr(after.coherence, k) for k in _FIELDS
    }
    phase = (1 - w) * before.phase + w * after.phase
    return CoherencePoint(t=t, coherence=Coherence(**mix), phase=phase, step=-1.0, n=0)
