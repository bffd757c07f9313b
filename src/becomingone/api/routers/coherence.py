"""``/api/v1/coherence``: the newest decision, and history over a time range, downsampled.

Rule: a history answer never holds more than ``points`` (≤ the app's ``max_points``) points:
the range is cut into equal time buckets and each non-empty bucket is the ``n``-weighted mean
of the stored points in it.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query

from becomingone.api.deps import Cell, Reader, Settings
from becomingone.api.errors import ApiProblem, responses
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import CoherenceHistory, CoherenceNow, CoherencePointPublic
from becomingone.api.settings import MAX_POINTS
from becomingone.errors import InputError
from becomingone.memory.store import CoherencePoint

__all__ = ["downsample", "router"]

router = APIRouter(prefix="/coherence", tags=["coherence"], responses=responses(*READ_STATUSES))

_FIELDS = ("master", "emissary", "sync", "delta_phase")


def downsample(
    points: list[CoherencePoint], start: float, end: float, count: int
) -> list[CoherencePointPublic]:
    """At most ``count`` points: one ``n``-weighted mean per non-empty equal-width bucket.

    >>> from becomingone.memory.store import Coherence
    >>> c = Coherence(master=1.0, emissary=0.5, sync=0.5, delta_phase=0.0)
    >>> pts = [CoherencePoint(t=float(t), coherence=c, phase=0.0) for t in range(10)]
    >>> [(p.t, p.n) for p in downsample(pts, 0.0, 10.0, 2)]
    [(2.0, 5), (7.0, 5)]
    """
    if len(points) <= count:
        return [_public(p.t, [p]) for p in points]
    width = (end - start) / count if end > start else 1.0
    buckets: dict[int, list[CoherencePoint]] = {}
    for p in points:
        buckets.setdefault(min(count - 1, int((p.t - start) / width)), []).append(p)
    return [
        _public(sum(p.t * p.n for p in g) / sum(p.n for p in g), g)
        for _, g in sorted(buckets.items())
    ]


def _public(t: float, group: list[CoherencePoint]) -> CoherencePointPublic:
    n = sum(p.n for p in group)
    mean = {k: sum(getattr(p.coherence, k) * p.n for p in group) / n for k in _FIELDS}
    phase = sum(p.phase * p.n for p in group) / n
    return CoherencePointPublic(t=t, phase=phase, n=n, **mean)


@router.get("/now", responses=responses(404))
def now(cell: Cell, _: Reader) -> CoherenceNow:
    """The newest Sync decision (404 before the cell has made one)."""
    latest = cell.now()
    if latest is None:
        raise ApiProblem(404, "no_data", "the cell has made no decision yet")
    return CoherenceNow(**{k: latest[k] for k in CoherenceNow.model_fields})


@router.get("/history", responses=responses(422))
def history(
    cell: Cell,
    settings: Settings,
    _: Reader,
    start: Annotated[float | None, Query(description="Stream seconds; default end − 60")] = None,
    end: Annotated[float | None, Query(description="Stream seconds; default the newest")] = None,
    points: Annotated[
        int | None,
        Query(ge=1, le=MAX_POINTS, description="At most this many points; default the app's limit"),
    ] = None,
) -> CoherenceHistory:
    """Stored coherence between ``start`` and ``end`` (none when start > end), downsampled to
    at most ``points``."""
    points = settings.max_points if points is None else points
    if points > settings.max_points:
        raise InputError("points", f"at most {settings.max_points}, got {points}")
    if end is None:
        latest = cell.now()
        end = float(latest["t"]) if latest else 0.0
    start = end - 60.0 if start is None else start
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError("start", f"start and end must be finite, got {start}, {end}")
    stored = cell.history(start, end) if start <= end else []
    return CoherenceHistory(
        start=start, end=end, stored=len(stored), points=downsample(stored, start, end, points)
    )
