"""Vectorised large-N simulation of cluster phase lock and its spectral prediction.

Rule: NumPy over all cells at once, same update rule as the sans-IO CPS; no I/O.
"""

from becomingone.sim.dynamics import SimResult, simulate, slow_mode_variance
from becomingone.sim.spectral import (
    UNIFORM_VARIANCE,
    contraction,
    predicted_rounds,
    spectral_gap,
)

__all__ = [
    "UNIFORM_VARIANCE",
    "SimResult",
    "contraction",
    "predicted_rounds",
    "simulate",
    "slow_mode_variance",
    "spectral_gap",
]
