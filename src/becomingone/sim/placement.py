"""Glyph placement at scale: the migration policy against random placement and
power-of-two-choices, on loads of 10⁴ cells and 10⁶ glyphs (DESIGN.md §7).

Rule: NumPy over all glyphs and cells at once, one pass per round, no Python loop over cells or
glyphs — except :func:`power_of_two_placement`, the sequential greedy anchor, which is
sequential by definition. No I/O; deterministic for a given ``seed``.

A cell's load is Σ energy of its glyphs (its SSEP ``node_energy``). The migration policy
(:func:`migrate`) moves glyphs between cells in rounds. A round is allowed iff the cluster
coherence that round is above :data:`~becomingone.core.phase.MIGRATION_ABOVE` (0.65) and the
network is stable. In an allowed round, a cell whose load exceeds the mean by more than
the band — ``hysteresis`` × the mean, and never less than the largest glyph — is a donor: it
sends its eligible glyphs (energy > ``threshold``), largest first, while the middle of each
one's energy fits in its excess over the mean, so it ends within half a glyph of the mean. The
glyphs go to the least-loaded cells first, each receiver filled up to the mean (a glyph goes
where the middle of its energy lands). So a receiver ends at most half a glyph above the mean
and, the band being at least a glyph wide, never becomes a donor: glyphs do not bounce, each
moves about once, and few large glyphs move rather than many small ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import finite_array, positive_int
from becomingone.core.phase import MIGRATION_ABOVE
from becomingone.errors import InputError

__all__ = [
    "Comparison",
    "MigrationPolicy",
    "PlacementResult",
    "cell_loads",
    "compare_placements",
    "load_cv",
    "migrate",
    "power_of_two_placement",
    "random_placement",
    "skewed_placement",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPolicy:
    """When and how glyphs move: above ``coherence`` (C_cluster), for glyphs with energy above
    ``threshold``, from cells loaded above the mean by more than ``hysteresis`` × the mean (and
    by more than the largest glyph)."""

    coherence: float = MIGRATION_ABOVE
    threshold: float = 0.0
    hysteresis: float = 0.02

    def __post_init__(self) -> None:
        for name in ("coherence", "threshold", "hysteresis"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(name, f"must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementResult:
    """Where each glyph ended (``cell``), the loads, their coefficient of variation, the number
    of glyph moves (a glyph moved twice counts twice) and the rounds that moved anything."""

    name: str
    cell: I64
    loads: F64
    cv: float
    migrations: int
    active_rounds: int = 0


def _check(cell: ArrayLike, energy: ArrayLike, n: int) -> tuple[I64, F64, int]:
    n = positive_int("n", n)
    where = np.asarray(cell)
    if where.ndim != 1 or not np.issubdtype(where.dtype, np.integer):
        raise InputError("cell", "must be a 1-D integer array")
    e = finite_array("energy", energy, allow_complex=False).astype(np.float64).ravel()
    if e.shape != where.shape:
        raise InputError("energy", f"has {e.size} values for {where.size} glyphs")
    if e.size and (e.min() < 0):
        raise InputError("energy", "must be >= 0")
    if where.size and (where.min() < 0 or where.max() >= n):
        raise InputError("cell", f"cell indices must be in [0, {n})")
    return where.astype(np.int64), e, n


def cell_loads(cell: ArrayLike, energy: ArrayLike, n: int) -> F64:
    """Σ energy per cell (length ``n``)."""
    where, e, n = _check(cell, energy, n)
    return np.bincount(where, weights=e, minlength=n).astype(np.float64)


def load_cv(loads: ArrayLike) -> float:
    """Coefficient of variation of loads: std / mean (0 when the mean is 0).

    >>> load_cv([1.0, 1.0, 1.0]), round(load_cv([0.0, 2.0]), 6)
    (0.0, 1.0)
    """
    arr = finite_array("loads", loads, allow_complex=False).astype(np.float64).ravel()
    mean = float(arr.mean()) if arr.size else 0.0
    return 0.0 if mean <= 0 else float(arr.std() / mean)


def skewed_placement(
    n: int, m: int, *, hot_share: float = 0.5, hot_cells: float = 0.01, seed: int = 0
) -> I64:
    """Where ``m`` glyphs start: ``hot_share`` of them on a random ``hot_cells`` fraction of the
    ``n`` cells (where work is submitted), the rest uniformly."""
    n, m = positive_int("n", n), positive_int("m", m)
    for name, value in (("hot_share", hot_share), ("hot_cells", hot_cells)):
        if not 0.0 <= value <= 1.0:
            raise InputError(name, f"must be in [0, 1], got {value!r}")
    rng = np.random.default_rng(seed)
    hot = rng.choice(n, size=max(1, round(hot_cells * n)), replace=False)
    cell = rng.integers(0, n, size=m)
    is_hot = rng.random(m) < hot_share
    cell[is_hot] = hot[rng.integers(0, hot.size, size=int(is_hot.sum()))]
    return cell.astype(np.int64)


def random_placement(n: int, m: int, *, seed: int = 0) -> I64:
    """Each glyph on a uniformly random cell."""
    n, m = positive_int("n", n), positive_int("m", m)
    return np.random.default_rng(seed).integers(0, n, size=m).astype(np.int64)


def power_of_two_placement(energy: ArrayLike, n: int, *, seed: int = 0) -> I64:
    """Power-of-two-choices: glyph by glyph, on the less loaded of two random cells (the
    sequential greedy of the load-balancing literature and of Ray/Dask-style schedulers)."""
    n = positive_int("n", n)
    e = finite_array("energy", energy, allow_complex=False).astype(np.float64).ravel()
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size=e.size).tolist()
    b = rng.integers(0, n, size=e.size).tolist()
    loads = [0.0] * n
    out = [0] * e.size
    for i, (x, y, w) in enumerate(zip(a, b, e.tolist())):
        pick = x if loads[x] <= loads[y] else y
        loads[pick] += w
        out[i] = pick
    return np.asarray(out, dtype=np.int64)


def _round(cell: I64, energy: F64, n: int, policy: MigrationPolicy) -> int:
    """One allowed round of the policy, in place on ``cell``; returns the glyphs moved."""
    loads = np.bincount(cell, weights=energy, minlength=n)
    mean = float(loads.mean())
    band = max(policy.hysteresis * mean, float(energy.max(initial=0.0)))
    excess = np.where(loads > mean + band, loads - mean, 0.0)
    if not excess.any():
        return 0
    idx = np.flatnonzero((excess[cell] > 0) & (energy > policy.threshold))
    idx = idx[np.lexsort((-energy[idx], cell[idx]))]  # by donor, largest glyph first
    owner = cell[idx]
    total = np.cumsum(energy[idx])
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    before = np.repeat(np.r_[0.0, total[starts[1:] - 1]], np.diff(np.r_[starts, idx.size]))
    # a glyph goes while the middle of its energy fits in the donor's excess, so the donor
    # ends within half a glyph of the mean (above or below) instead of up to a glyph above
    shipped = idx[(total - before) - energy[idx] / 2.0 <= excess[owner]]
    receivers = np.flatnonzero(loads < mean)
    receivers = receivers[np.argsort(loads[receivers], kind="stable")]  # least loaded first
    room = np.cumsum(mean - loads[receivers])
    middle = np.cumsum(energy[shipped]) - energy[shipped] / 2.0
    slot = np.searchsorted(room, middle, side="right")
    moving = slot < receivers.size
    cell[shipped[moving]] = receivers[slot[moving]]
    return int(moving.sum())


def migrate(
    cell: ArrayLike,
    energy: ArrayLike,
    n: int,
    *,
    coherence: ArrayLike,
    stable: ArrayLike | None = None,
    policy: MigrationPolicy | None = None,
) -> PlacementResult:
    """Run the migration policy for ``len(coherence)`` rounds from the placement ``cell``.

    ``coherence[t]`` is C_cluster in round t (for instance :func:`becomingone.sim.simulate`'s
    ``c``); ``stable[t]`` whether the network is stable (default: always). A round moves glyphs
    only when C_cluster > ``policy.coherence`` and the network is stable.
    """
    where, e, n = _check(cell, energy, n)
    policy = policy or MigrationPolicy()
    c = finite_array("coherence", coherence, allow_complex=False).astype(np.float64).ravel()
    ok = np.ones(c.size, dtype=bool) if stable is None else np.asarray(stable, dtype=bool).ravel()
    if ok.shape != c.shape:
        raise InputError("stable", f"has {ok.size} rounds; coherence has {c.size}")
    where = where.copy()
    moves = active = 0
    for allowed in (c > policy.coherence) & ok:
        if not allowed:
            continue
        moved = _round(where, e, n, policy)
        if moved == 0:
            break
        moves += moved
        active += 1
    loads = np.bincount(where, weights=e, minlength=n).astype(np.float64)
    return PlacementResult(
        name="migration policy",
        cell=where,
        loads=loads,
        cv=load_cv(loads),
        migrations=moves,
        active_rounds=active,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """The three placements of one run from the same start: ``start_cv`` and each result."""

    n: int
    m: int
    start_cv: float
    policy: PlacementResult
    random: PlacementResult
    two_choices: PlacementResult

    @property
    def target_met(self) -> bool:
        """CV within 10% of power-of-two-choices with fewer migrations."""
        return (
            self.policy.cv <= 1.1 * self.two_choices.cv
            and self.policy.migrations < self.two_choices.migrations
        )


def _placed(name: str, start: I64, cell: I64, energy: F64, n: int) -> PlacementResult:
    loads = np.bincount(cell, weights=energy, minlength=n).astype(np.float64)
    moved = int(np.count_nonzero(cell != start))
    return PlacementResult(name=name, cell=cell, loads=loads, cv=load_cv(loads), migrations=moved)


def compare_placements(
    energy: ArrayLike,
    start: ArrayLike,
    n: int,
    *,
    coherence: ArrayLike,
    policy: MigrationPolicy | None = None,
    seed: int = 0,
) -> Comparison:
    """From the placement ``start``: the migration policy (gated by ``coherence`` per round),
    random placement and power-of-two-choices. For the two placements a migration is a glyph
    whose cell differs from its start."""
    where, e, n = _check(start, energy, n)
    moved = migrate(where, e, n, coherence=coherence, policy=policy)
    rand = random_placement(n, where.size, seed=seed + 1)
    two = power_of_two_placement(e, n, seed=seed + 2)
    return Comparison(
        n=n,
        m=int(where.size),
        start_cv=load_cv(np.bincount(where, weights=e, minlength=n)),
        policy=moved,
        random=_placed("random", where, rand, e, n),
        two_choices=_placed("power of two choices", where, two, e, n),
    )
