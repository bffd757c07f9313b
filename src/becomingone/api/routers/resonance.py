"""``/api/v1/resonance``: the resonance map |T̂|² (lags × ω) of the cell's recent stream.

Rule: the map is :func:`~becomingone.core.resmap.resonance_map` over the newest ``samples``
samples of the replay log (what the cell ingested since its newest engine signatures), with
``lags`` lags from one sample to a quarter of that span and ``omegas`` frequencies from 0 to
48 resolution steps (2π / span), capped at the Nyquist rate — the grid ``becomingone analyze``
draws. It is computed in a worker thread, so a map never stalls the cell's event loop.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from numpy.typing import NDArray
from starlette.concurrency import run_in_threadpool

from becomingone.api.deps import Cell, Reader
from becomingone.api.errors import responses
from becomingone.api.routers.node import READ_STATUSES
from becomingone.api.schemas import PeakPublic, ResonancePublic

__all__ = ["MIN_SAMPLES", "map_of", "router"]

#: Fewer recent samples than this give an empty map (``peak`` null): a cell that has just
#: started, or has just stored signatures (which clear the replay log), is not an error.
MIN_SAMPLES = 16

router = APIRouter(prefix="/resonance", tags=["resonance"], responses=responses(*READ_STATUSES))


def map_of(samples: NDArray[Any], dt: float, lags: int, omegas: int) -> ResonancePublic:
    """The map of ``samples`` (≥ :data:`MIN_SAMPLES`, step ``dt``) on the dashboard's grid.

    >>> t = np.arange(400) * 0.01
    >>> m = map_of(2 * np.pi * 4.0 * t, 0.01, 4, 8)
    >>> len(m.lags), len(m.omegas), round(m.peak.power, 6), m.peak.omega
    (4, 8, 1.0, 0.0)
    """
    from becomingone.core.resmap import resonance_map  # numpy/scipy work: only when asked

    n = samples.shape[0]
    top_lag = max(1, (n - 2) // 4)
    lag_steps = np.unique(np.rint(np.linspace(1, top_lag, lags))).astype(np.int64)
    top = min(math.pi / dt, 48 * 2 * math.pi / (n * dt))
    result = resonance_map(samples, dt, lag_steps * dt, np.linspace(0.0, top, omegas))
    lag, omega, power = result.peak()
    return ResonancePublic(
        samples=n,
        dt=dt,
        lags=[float(v) for v in result.lags],
        omegas=[float(v) for v in result.omegas],
        power=np.round(result.power, 6).tolist(),
        peak=PeakPublic(lag=lag, omega=omega, power=power),
    )


@router.get("", responses=responses(422))
async def resonance(
    cell: Cell,
    _: Reader,
    samples: Annotated[
        int, Query(ge=MIN_SAMPLES, le=20_000, description="Newest samples to map")
    ] = 2000,
    lags: Annotated[int, Query(ge=1, le=64, description="Lags (rows) of the map")] = 24,
    omegas: Annotated[int, Query(ge=2, le=256, description="ω values (columns)")] = 64,
) -> ResonancePublic:
    """|T̂|² of the recent stream over lags × ω (an empty map, ``peak`` null, while fewer than
    16 recent samples are kept)."""
    recent = await run_in_threadpool(cell.recent_samples, samples)
    dt = float(cell.config.kairos.step if cell.cell is None else cell.cell.dt)
    if recent.shape[0] < MIN_SAMPLES:
        return ResonancePublic(
            samples=recent.shape[0], dt=dt, lags=[], omegas=[], power=[], peak=None
        )
    return await run_in_threadpool(map_of, recent, dt, lags, omegas)
