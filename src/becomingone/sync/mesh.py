"""Mesh synchronisation of the seed (DESIGN.md §6): T_global and the cluster collapse.

Rule (normative)::

    T_global = Σ_P w_P T_P / Σ_P w_P     over the peers heard within their timeout, own included
    cluster collapse  iff  |T_global|² ≥ I_c   (the cell's Sync threshold)

Each T_P is a cell's complex T_sync (|T_P| ≤ 1), so |T_global| ≤ 1. The weights are relative
(``w_P ≥ 0``; normalised over the entries counted, so Σ w_P = 1): equal (1 per cell) by
default; an entry that stands for an aggregate of k cells (a fractal group, a hub's mean)
weighs k. :class:`ClusterCollapseDetector` turns the readings into events **on the upward
crossing** (an edge), not on every reading above the threshold. Pure functions and a
two-state machine: no clocks, no I/O; ``now`` is an argument. The cell's CPS
(:mod:`becomingone.sync.cps`), the in-process cluster and the observer of node processes all
compute T_global with :func:`global_sync`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from becomingone.errors import InputError

__all__ = [
    "ClusterCollapse",
    "ClusterCollapseDetector",
    "CollapseEdge",
    "GlobalSync",
    "global_sync",
]


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(name, f"must be a finite number, got {value!r}")
    return float(value)


def _bounded(name: str, value: complex) -> complex:
    z = complex(value)
    if not (math.isfinite(z.real) and math.isfinite(z.imag)):
        raise InputError(name, f"must be finite, got {z!r}")
    if abs(z) > 1.0 + 1e-9:
        raise InputError(name, f"must have |{name}| <= 1, got {abs(z)!r}")
    return z


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalSync:
    """T_global at ``time``: the weighted mean ``value``, how many heard entries were counted
    (``peers``, own excluded) and the total weight behind it (``cells``: own included)."""

    time: float
    value: complex = 0j
    peers: int = 0
    cells: float = 0.0

    @property
    def coherence(self) -> float:
        """|T_global|², in [0, 1]."""
        return min(1.0, self.value.real**2 + self.value.imag**2)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: ``t_global`` as [re, im] and ``t_global_sq`` = |T_global|²."""
        return {
            "t_global": [self.value.real, self.value.imag],
            "t_global_sq": self.coherence,
            "peers": self.peers,
            "cells": self.cells,
        }


def global_sync(
    t_sync: ArrayLike,
    timestamps: ArrayLike,
    *,
    now: float,
    timeout: float,
    weights: ArrayLike | None = None,
    own: complex | None = None,
    own_weight: float = 1.0,
) -> GlobalSync:
    """T_global = Σ w_P T_P / Σ w_P over ``own`` (weight ``own_weight``) and every heard
    T_sync with ``now − timestamp ≤ timeout`` (seconds); 0 when nothing with weight counts.

    ``t_sync`` (complex, each |T| ≤ 1), ``timestamps`` and ``weights`` (default 1 each, all
    ≥ 0) are one entry per peer heard. A timestamp from the future (a peer's clock slightly
    ahead) counts: staleness is one-sided. Vectorised, so a mesh of N cells costs O(N) NumPy
    work per cell and tick.

    Examples
    --------
    >>> g = global_sync([1j, -1], [9.5, 5.0], now=10.0, timeout=1.0, own=1 + 0j)
    >>> g.value, g.peers, g.cells, round(g.coherence, 3)
    ((0.5+0.5j), 1, 2.0, 0.5)
    """
    t = _finite("now", now)
    if not _finite("timeout", timeout) > 0.0:
        raise InputError("timeout", f"must be > 0, got {timeout!r}")
    sums = _sums_small if isinstance(t_sync, list | tuple) and len(t_sync) < _SMALL else _sums
    try:
        total, weight, peers = sums(t_sync, timestamps, weights, t, timeout)
    except InputError:
        raise
    except (TypeError, ValueError) as exc:  # a value that is not a number at all
        raise InputError(
            "t_sync", f"values, timestamps and weights must be numbers: {exc}"
        ) from None
    if own is not None:
        if not _finite("own_weight", own_weight) >= 0.0:
            raise InputError("own_weight", f"must be >= 0, got {own_weight!r}")
        total += own_weight * _bounded("own", own)
        weight += own_weight
    if weight <= 0.0:
        return GlobalSync(time=t, peers=peers, cells=0.0)
    value = total / weight
    if abs(value) > 1.0:  # a mean of |T| <= 1 values, past 1 only by rounding
        value *= (1.0 - 1e-12) / abs(value)
    return GlobalSync(time=t, value=value, peers=peers, cells=weight)


#: Below this many entries given as a list or tuple, plain Python beats NumPy's call overhead.
_SMALL = 16


def _sums(
    t_sync: ArrayLike, timestamps: ArrayLike, weights: ArrayLike | None, t: float, timeout: float
) -> tuple[complex, float, int]:
    """(Σ w·T, Σ w, count) over the entries heard within ``timeout`` of ``t``, with NumPy."""
    z = np.asarray(t_sync, dtype=np.complex128).ravel()
    stamps = np.asarray(timestamps, dtype=np.float64).ravel()
    if stamps.shape != z.shape:
        raise InputError("timestamps", f"needs one per T_sync ({z.size}), got {stamps.size}")
    if not (np.abs(z) <= 1.0 + 1e-9).all():  # NaN and inf fail the comparison too
        raise InputError("t_sync", "every value must be finite with |T_sync| <= 1")
    if not np.isfinite(stamps).all():
        raise InputError("timestamps", "must be finite")
    live = (t - stamps) <= timeout
    if weights is None:
        w = live.astype(np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != z.shape:
            raise InputError("weights", f"needs one per T_sync ({z.size}), got {w.size}")
        if not (w >= 0.0).all() or not np.isfinite(w).all():
            raise InputError("weights", "must be finite and >= 0")
        w = np.where(live, w, 0.0)
    return complex(w @ z), float(w.sum()), int(np.count_nonzero(live))


def _sums_small(
    t_sync: Any, timestamps: Any, weights: Any, t: float, timeout: float
) -> tuple[complex, float, int]:
    """The same sums as :func:`_sums`, with the same checks, in plain Python."""
    z = [complex(v) for v in t_sync]
    stamps = [float(v) for v in timestamps]
    if len(stamps) != len(z):
        raise InputError("timestamps", f"needs one per T_sync ({len(z)}), got {len(stamps)}")
    w = [1.0] * len(z) if weights is None else [float(v) for v in weights]
    if len(w) != len(z):
        raise InputError("weights", f"needs one per T_sync ({len(z)}), got {len(w)}")
    if not all(abs(v) <= 1.0 + 1e-9 for v in z):  # NaN and inf fail the comparison too
        raise InputError("t_sync", "every value must be finite with |T_sync| <= 1")
    if not all(math.isfinite(a) for a in stamps):
        raise InputError("timestamps", "must be finite")
    if not all(math.isfinite(b) and b >= 0.0 for b in w):
        raise InputError("weights", "must be finite and >= 0")
    total, weight, peers = 0j, 0.0, 0
    for v, stamp, wv in zip(z, stamps, w):
        if t - stamp <= timeout:
            total += wv * v
            weight += wv
            peers += 1
    return total, weight, peers


class CollapseEdge(enum.Enum):
    """Where the last reading was: below I_c (or too few peers) or at/above it."""

    BELOW = "below"
    ABOVE = "above"


#: (state, reading at/above I_c with enough peers) → (next state, fire a cluster collapse).
_EDGES: dict[tuple[CollapseEdge, bool], tuple[CollapseEdge, bool]] = {
    (CollapseEdge.BELOW, False): (CollapseEdge.BELOW, False),
    (CollapseEdge.BELOW, True): (CollapseEdge.ABOVE, True),
    (CollapseEdge.ABOVE, True): (CollapseEdge.ABOVE, False),
    (CollapseEdge.ABOVE, False): (CollapseEdge.BELOW, False),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterCollapse:
    """A cluster collapse: |T_global|² crossed I_c upward at ``tick`` (``time`` seconds)."""

    tick: int
    time: float
    t_global: complex
    coherence: float
    peers: int
    cells: float
    threshold: float

    def payload(self) -> dict[str, object]:
        """The witness record's payload (JSON-able)."""
        return {
            "tick": self.tick,
            "time": self.time,
            "t_global": [self.t_global.real, self.t_global.imag],
            "t_global_sq": self.coherence,
            "peers": self.peers,
            "cells": self.cells,
            "threshold": self.threshold,
        }


class ClusterCollapseDetector:
    """Fires a :class:`ClusterCollapse` when |T_global|² ≥ ``threshold`` (I_c) with at least
    ``min_peers`` peers counted, on the crossing only; it re-arms when a reading falls below
    (or counts fewer peers).

    ``min_peers`` is 1 for a cell with peers (its own T_sync alone is not a cluster) and 0 for
    a cluster of one.

    Examples
    --------
    >>> d = ClusterCollapseDetector(threshold=0.9)
    >>> [d.update(GlobalSync(time=t, value=v, peers=2, cells=3.0), tick=t) is not None
    ...  for t, v in enumerate([0.5, 0.99, 0.99, 0.2, 0.97])]
    [False, True, False, False, True]
    """

    def __init__(self, *, threshold: float, min_peers: int = 1) -> None:
        if not 0.0 < _finite("threshold", threshold) <= 1.0:
            raise InputError("threshold", f"must be in (0, 1], got {threshold!r}")
        if isinstance(min_peers, bool) or not isinstance(min_peers, int) or min_peers < 0:
            raise InputError("min_peers", f"must be an integer >= 0, got {min_peers!r}")
        self.threshold = float(threshold)
        self.min_peers = min_peers
        self.state = CollapseEdge.BELOW
        self.fired = 0

    def update(self, reading: GlobalSync, *, tick: int) -> ClusterCollapse | None:
        """Take one reading; the collapse it starts, or ``None``."""
        above = reading.coherence >= self.threshold and reading.peers >= self.min_peers
        self.state, fire = _EDGES[(self.state, above)]
        if not fire:
            return None
        self.fired += 1
        return ClusterCollapse(
            tick=tick,
            time=reading.time,
            t_global=reading.value,
            coherence=reading.coherence,
            peers=reading.peers,
            cells=reading.cells,
            threshold=self.threshold,
        )
