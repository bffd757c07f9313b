"""Hypothesis strategies for φ sequences shared by the KAIROS tests.

A case is drawn as parameters (N, C, dt, L, ω, t0, real/complex, kind) plus a seed; the samples
come from a seeded NumPy generator so large cases stay cheap to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

KINDS = ("walk", "oscillator", "sticky", "ticks")


@dataclass(frozen=True)
class Case:
    """One drawn φ with its engine parameters (lag = L·dt seconds)."""

    phi: np.ndarray
    dt: float
    big_l: int
    omega: float
    t0: float

    @property
    def lag(self) -> float:
        """τ̄ in seconds."""
        return self.big_l * self.dt


def make_phi(
    rng: np.random.Generator, n: int, channels: int | None, complex_: bool, kind: str
) -> np.ndarray:
    """A φ of n samples (1-D when channels is None) of the given kind."""
    c = 1 if channels is None else channels
    if kind == "walk":  # random-walk phase: white-noise velocity
        v = rng.normal(size=(n, c)) * rng.uniform(0.1, 10.0)
    elif kind == "oscillator":  # steady rotation plus a little noise
        v = rng.uniform(-5.0, 5.0, size=(1, c)) + 0.05 * rng.normal(size=(n, c))
    elif kind == "sticky":  # many exact zero velocities (phase holds still)
        v = rng.normal(size=(n, c)) * (rng.uniform(size=(n, c)) < 0.3)
    else:  # ticks: the phase advances in jumps
        v = (rng.uniform(size=(n, c)) < 0.2) * rng.uniform(0.5, 2.0)
    phi: Any = np.cumsum(v, axis=0) + rng.uniform(-3.0, 3.0)
    if complex_:
        phi = np.exp(1j * phi) * rng.uniform(0.5, 2.0, size=(1, c))
    return phi[:, 0] if channels is None else phi


@st.composite
def cases(
    draw: st.DrawFn,
    min_n: int = 2,
    max_n: int = 60,
    complex_ok: bool = True,
    max_channels: int = 3,
) -> Case:
    """A random φ and parameters with L < M = N − 1 (so the sum has at least one term)."""
    n = draw(st.integers(min_n, max_n))
    channels = draw(st.one_of(st.none(), st.integers(1, max_channels)))
    complex_ = complex_ok and draw(st.booleans())
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**32 - 1))
    dt = draw(st.sampled_from([1e-3, 0.01, 0.1, 0.25, 1.0, 3.0]))
    big_l = draw(st.integers(0, max(0, n - 2)))
    omega = draw(st.one_of(st.just(0.0), st.floats(-20.0, 20.0)))
    t0 = draw(st.one_of(st.just(0.0), st.floats(-1e3, 1e3)))
    phi = make_phi(np.random.default_rng(seed), n, channels, complex_, kind)
    return Case(phi=phi, dt=dt, big_l=big_l, omega=omega, t0=t0)
