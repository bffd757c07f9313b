"""Vectorised large-N simulation of cluster phase lock, its spectral prediction, and glyph
placement at scale.

Rule: NumPy over all cells at once, same update rule as the sans-IO CPS; no I/O.
"""

from becomingone.sim.dynamics import SimResult, simulate, slow_mode_variance
from becomingone.sim.placement import (
    Comparison,
    MigrationPolicy,
    PlacementResult,
    cell_loads,
    compare_placements,
    load_cv,
    migrate,
    power_of_two_placement,
    random_placement,
    skewed_placement,
)
from becomingone.sim.spectral import (
    UNIFORM_VARIANCE,
    contraction,
    predicted_rounds,
    spectral_gap,
)

__all__ = [
    "UNIFORM_VARIANCE",
    "Comparison",
    "MigrationPolicy",
    "PlacementResult",
    "SimResult",
    "cell_loads",
    "compare_placements",
    "contraction",
    "load_cv",
    "migrate",
    "power_of_two_placement",
    "predicted_rounds",
    "random_placement",
    "simulate",
    "skewed_placement",
    "slow_mode_variance",
    "spectral_gap",
]
