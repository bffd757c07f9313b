"""Vectorised large-N simulation of the CPS phase-lock dynamics (DESIGN.md §6).

Rule: one NumPy pass per round over all cells, never a Python loop over cells; the update is
the CPS law itself, :func:`becomingone.sync.law.cps_step` (Θ ← Θ + f·dt + α·err,
f ← f + β·err with err = wrap(Θ_cluster − Θ)), with the same topology rules as
:mod:`becomingone.sync.topology`. One round is one tick (dt = 1, so f is in cycles per
round). Deterministic for a given ``seed``.

Loss model: each round, each cell misses its round's cluster phase (the hub broadcast, its
predecessor's packet, the global phase from its parent, its mesh round) with probability
``loss`` and then holds its phase; this is the 1/(1 − p) slowdown. A real mesh loses packets
per link and still hears most peers, so it converges at least this fast.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import finite_array, finite_float, positive_int
from becomingone.core.phase import circular_mean, wrap
from becomingone.errors import InputError
from becomingone.sync.law import cps_step
from becomingone.sync.topology import Topology, fractal_levels

__all__ = ["SimResult", "simulate", "slow_mode_variance"]

TWO_PI = 2.0 * math.pi
F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Outcome of :func:`simulate`: per-round coherence C and order parameter R.

    ``c[t]`` and ``r[t]`` are measured before round ``t`` (``c[0]`` is the start, ``c[-1]``
    after the last round). ``windings`` (ring only) is the winding number at the same instants;
    ``chord_rounds`` counts rounds in which temporary chords were active (``break_twist``).
    """

    topology: Topology
    n: int
    alpha: float
    beta: float
    c: F64
    r: F64
    theta: F64
    frequency: F64
    windings: NDArray[np.int64] | None
    chord_rounds: int

    @property
    def rounds(self) -> int:
        """Number of simulated rounds."""
        return int(self.c.size - 1)

    @property
    def winding(self) -> int | None:
        """Final winding number (ring), else ``None``."""
        return None if self.windings is None else int(self.windings[-1])

    @property
    def twisted(self) -> bool:
        """True iff the ring ended in a twisted state (winding ≠ 0)."""
        return bool(self.windings is not None and self.windings[-1] != 0)

    def rounds_to(self, c: float) -> int | None:
        """First round after which C ≥ ``c``; ``None`` if never reached."""
        level = finite_float("c", c)
        hits = np.flatnonzero(self.c >= level)
        return None if hits.size == 0 else int(hits[0])


def slow_mode_variance(theta: ArrayLike) -> float:
    """Linearised circular variance (rad²) carried by the ring's slowest modes k = ±1.

    Deviations from the circular mean are Fourier-transformed along the ring; by Parseval
    the modes k = 1 and k = N − 1 carry (|X₁|² + |X_{N−1}|²)/N² of the mean square. Scaled by
    N/(N − 1) like the bias-corrected R² that C is computed from.
    """
    th = np.atleast_1d(finite_array("theta", theta, allow_complex=False)).ravel()
    n = th.size
    if n < 3:
        return 0.0
    mean = circular_mean(th)
    x = wrap(th - (0.0 if mean is None else mean))
    spec = np.fft.fft(x)
    share = (abs(spec[1]) ** 2 + abs(spec[-1]) ** 2) / n**2
    return float(TWO_PI**2 * share * n / (n - 1))


@dataclass(slots=True)
class _State:
    theta: F64
    freq: F64 | None
    ang: F64
    cos: F64
    sin: F64
    err: F64

    def phasors(self) -> tuple[float, float]:
        np.multiply(self.theta, TWO_PI, out=self.ang)
        np.cos(self.ang, out=self.cos)
        np.sin(self.ang, out=self.sin)
        return float(self.cos.sum()), float(self.sin.sum())

    def toward(self, target: float) -> None:
        """err ← wrap(target − θ)."""
        np.subtract(target, self.theta, out=self.err)
        self.err -= np.rint(self.err)


def _check_args(
    n: int, rounds: int, alpha: float, beta: float, jitter: float, loss: float, branching: int
) -> None:
    positive_int("n", n)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise InputError("rounds", f"must be an integer >= 0, got {rounds!r}")
    if not 0.0 < finite_float("alpha", alpha) < 1.0:
        raise InputError("alpha", f"must be in (0, 1), got {alpha!r}")
    if not 0.0 <= finite_float("beta", beta) < 1.0:
        raise InputError("beta", f"must be in [0, 1), got {beta!r}")
    if finite_float("jitter", jitter) < 0.0:
        raise InputError("jitter", f"must be >= 0, got {jitter!r}")
    if not 0.0 <= finite_float("loss", loss) < 1.0:
        raise InputError("loss", f"must be in [0, 1), got {loss!r}")
    if isinstance(branching, bool) or not isinstance(branching, int) or branching < 2:
        raise InputError("branching", f"must be an integer >= 2, got {branching!r}")


def _initial(n: int, rng: np.random.Generator, theta0: ArrayLike | None) -> F64:
    if theta0 is None:
        return rng.random(n)
    th = np.atleast_1d(finite_array("theta0", theta0, allow_complex=False)).ravel()
    if th.size != n:
        raise InputError("theta0", f"must have n = {n} phases, got {th.size}")
    out: F64 = np.mod(th, 1.0)
    return out


class _Fractal:
    """Pipelined b-ary aggregation: one level up and one level down per round."""

    def __init__(self, state: _State, branching: int) -> None:
        n = state.theta.size
        self.b = branching
        self.levels = fractal_levels(n, branching) if n > 1 else 1
        state.phasors()
        self.up: list[tuple[F64, F64]] = []
        c, s = state.cos, state.sin
        for _ in range(self.levels):
            c, s = self._group(c), self._group(s)
            self.up.append((c, s))
        top = self._phase(*self.up[-1])
        self.down: deque[float | None] = deque([top] * self.levels, maxlen=self.levels)

    def _group(self, x: F64) -> F64:
        out: F64 = np.add.reduceat(x, np.arange(0, x.size, self.b))
        return out

    @staticmethod
    def _phase(c: F64, s: F64) -> float | None:
        zc, zs = float(c[0]), float(s[0])
        if math.hypot(zc, zs) < 1e-9:
            return None
        return math.atan2(zs, zc) / TWO_PI

    def target(self, state: _State) -> float | None:
        """Advance the pipelines one round; the global phase now reaching the cells."""
        for k in range(self.levels - 1, 0, -1):
            lc, ls = self.up[k - 1]
            self.up[k] = (self._group(lc), self._group(ls))
        self.up[0] = (self._group(state.cos), self._group(state.sin))
        arriving = self.down[0]
        self.down.append(self._phase(*self.up[-1]))
        return arriving


def _ring_error(state: _State) -> int:
    """err ← wrap(θ_pred − θ); returns the winding number of the current phases."""
    th, err = state.theta, state.err
    np.subtract(th[:-1], th[1:], out=err[1:])
    err[0] = th[-1] - th[0]
    err -= np.rint(err)
    return -round(float(err.sum()))


def _chord_error(state: _State, rng: np.random.Generator) -> None:
    """err toward the mean of own, predecessor and one random chord partner per cell."""
    n = state.theta.size
    partner = rng.integers(0, n, n)
    zc = state.cos + np.roll(state.cos, 1) + state.cos[partner]
    zs = state.sin + np.roll(state.sin, 1) + state.sin[partner]
    np.arctan2(zs, zc, out=state.err)
    state.err /= TWO_PI
    state.err -= state.theta
    state.err -= np.rint(state.err)


def simulate(
    n: int,
    topology: Topology | str,
    rounds: int,
    alpha: float = 0.01,
    beta: float = 0.0,
    seed: int = 0,
    freq_spread: float = 0.0,
    jitter: float = 0.0,
    loss: float = 0.0,
    branching: int = 16,
    *,
    theta0: ArrayLike | None = None,
    freq0: ArrayLike | None = None,
    break_twist: bool = False,
) -> SimResult:
    """Simulate ``rounds`` CPS rounds of ``n`` cells on ``topology``.

    Parameters
    ----------
    n, topology, rounds : cells, one of mesh/hub/ring/fractal, rounds (ticks) to run.
    alpha, beta : phase gain and PLL frequency gain (per round).
    seed : seeds initial phases (uniform in [0, 1) unless ``theta0``), frequencies and noise.
    freq_spread : standard deviation of the natural frequencies, cycles per round.
    jitter : standard deviation of per-round phase noise, cycles.
    loss : probability that a cell misses its round's cluster phase.
    branching : fractal branching factor b.
    theta0 : explicit initial phases (cycles).
    freq0 : explicit initial frequencies (cycles per round); replaces ``freq_spread``.
    break_twist : ring only; while the ring is twisted each cell also hears one random
        peer per round (temporary chords), which unwinds the twist.

    Examples
    --------
    >>> res = simulate(1000, "mesh", 400)
    >>> res.rounds_to(0.99) is not None
    True
    """
    _check_args(n, rounds, alpha, beta, jitter, loss, branching)
    topo = Topology.parse(topology)
    spread = finite_float("freq_spread", freq_spread)
    if spread < 0.0:
        raise InputError("freq_spread", f"must be >= 0, got {spread!r}")
    rng = np.random.default_rng(seed)
    theta = _initial(n, rng, theta0)
    freq = rng.normal(0.0, spread, n) if spread > 0.0 else None
    if freq0 is not None:
        freq = np.array(np.atleast_1d(finite_array("freq0", freq0, allow_complex=False)).ravel())
        if freq.size != n:
            raise InputError("freq0", f"must have n = {n} frequencies, got {freq.size}")
    if freq is None and beta > 0.0:
        freq = np.zeros(n)
    state = _State(theta, freq, *(np.empty(n) for _ in range(4)))
    return _run(state, topo, rounds, alpha, beta, rng, jitter, loss, branching, break_twist)


def _run(
    state: _State,
    topo: Topology,
    rounds: int,
    alpha: float,
    beta: float,
    rng: np.random.Generator,
    jitter: float,
    loss: float,
    branching: int,
    break_twist: bool,
) -> SimResult:
    n = state.theta.size
    power = np.empty(rounds + 1)
    windings = np.zeros(rounds + 1, dtype=np.int64) if topo is Topology.RING else None
    fractal = _Fractal(state, branching) if topo is Topology.FRACTAL else None
    chord_rounds = 0
    for t in range(rounds + 1):
        zc, zs = state.phasors()
        power[t] = zc * zc + zs * zs
        if windings is not None:
            windings[t] = _ring_error(state) if n > 1 else 0
        if t == rounds:
            break
        if windings is not None:
            if break_twist and windings[t] != 0:
                _chord_error(state, rng)
                chord_rounds += 1
            else:
                state.err *= 0.5
        else:
            target = fractal.target(state) if fractal is not None else _mean_phase(zc, zs, n)
            if target is None:
                state.err.fill(0.0)
            else:
                state.toward(target)
        _step(state, alpha, beta, rng, jitter, loss)
        if t % 256 == 255:
            state.theta -= np.floor(state.theta)
    return _result(state, topo, alpha, beta, power, windings, chord_rounds)


def _mean_phase(zc: float, zs: float, n: int) -> float | None:
    if math.hypot(zc, zs) <= 1e-12 * n:
        return None
    return math.atan2(zs, zc) / TWO_PI


def _step(
    state: _State, alpha: float, beta: float, rng: np.random.Generator, jitter: float, loss: float
) -> None:
    err = state.err
    if loss > 0.0:
        err *= rng.random(err.size) >= loss
    if state.freq is None:  # no drift and no PLL: f stays 0
        state.theta, _ = cps_step(state.theta, 0.0, err, alpha, 0.0, 1.0)
    else:
        state.theta, freq = cps_step(state.theta, state.freq, err, alpha, beta, 1.0)
        state.freq = np.asarray(freq, dtype=np.float64)
    if jitter > 0.0:
        state.theta += rng.normal(0.0, jitter, err.size)


def _result(
    state: _State,
    topo: Topology,
    alpha: float,
    beta: float,
    power: F64,
    windings: NDArray[np.int64] | None,
    chord_rounds: int,
) -> SimResult:
    n = state.theta.size
    r = np.minimum(np.sqrt(power) / n, 1.0)
    if n == 1:
        c = np.ones_like(power)
    else:
        r2u = np.clip((power - n) / (n * (n - 1.0)), 0.0, 1.0)
        c = r2u**5
    freq: Any = state.freq if state.freq is not None else np.zeros(n)
    return SimResult(
        topology=topo,
        n=n,
        alpha=alpha,
        beta=beta,
        c=c,
        r=r,
        theta=np.mod(state.theta, 1.0),
        frequency=freq,
        windings=windings,
        chord_rounds=chord_rounds,
    )
