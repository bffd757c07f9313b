"""Field state of a cell and the seed's field-merge operator (DESIGN.md §6).

Pure functions; no I/O. ΔΦ averages, κ merges by harmonic mean, θ by circular midpoint and the
merged coherence is C = exp(−(var_local + var_remote)/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from becomingone.core._checks import finite_float
from becomingone.core.phase import circular_midpoint, harmonic_mean
from becomingone.errors import InputError

__all__ = ["FieldState", "merge_fields"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldState:
    """A cell's field: phase lag ΔΦ, coupling κ, phase θ (cycles), coherence, energy, variance.

    ``variance`` is the circular variance in radians² (``inf`` allowed: no coherence).
    """

    delta_phi: float = 0.0
    kappa: float = 0.0
    theta: float = 0.0
    coherence: float = 1.0
    energy: float = 0.0
    variance: float = 0.0

    def __post_init__(self) -> None:
        for name in ("delta_phi", "kappa", "theta", "coherence", "energy"):
            object.__setattr__(self, name, finite_float(name, getattr(self, name)))
        object.__setattr__(self, "theta", self.theta % 1.0)
        if not 0.0 <= self.coherence <= 1.0:
            raise InputError("coherence", f"must be in [0, 1], got {self.coherence!r}")
        if self.kappa < 0.0:
            raise InputError("kappa", f"must be >= 0, got {self.kappa!r}")
        if self.energy < 0.0:
            raise InputError("energy", f"must be >= 0, got {self.energy!r}")
        var = float(self.variance)
        if math.isnan(var) or var < 0.0:
            raise InputError("variance", f"must be >= 0 (inf allowed), got {self.variance!r}")
        object.__setattr__(self, "variance", var)


def merge_fields(local: FieldState, remote: FieldState) -> FieldState:
    """Merge two fields with the seed's operator.

    Energy adds (the merged field carries both cells' load); the merged variance is the mean of
    the two, consistent with ``coherence = exp(-variance)``.

    Examples
    --------
    >>> m = merge_fields(FieldState(delta_phi=0.19, kappa=0.11, theta=0.24, variance=0.2),
    ...                  FieldState(delta_phi=0.1, kappa=0.18, theta=0.81, variance=0.4))
    >>> round(m.coherence, 6)
    0.740818
    """
    variance = (local.variance + remote.variance) / 2.0
    return FieldState(
        delta_phi=(local.delta_phi + remote.delta_phi) / 2.0,
        kappa=harmonic_mean(local.kappa, remote.kappa),
        theta=circular_midpoint(local.theta, remote.theta),
        coherence=math.exp(-variance),
        energy=local.energy + remote.energy,
        variance=variance,
    )
