"""The CPS update law (DESIGN.md §6), shared by the supervisor and the simulator.

Rule: one formula, one place. :class:`~becomingone.sync.cps.PhaseSupervisor` applies it to one
cell's floats each tick; :mod:`becomingone.sim.dynamics` applies it to NumPy arrays of all
cells each round. Pure arithmetic: no wrapping, no validation, no I/O.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["cps_step"]

Value = TypeVar("Value", float, NDArray[np.float64])


def cps_step(
    theta: Value, freq: Value | float, err: Value, alpha: float, beta: float, dt: float
) -> tuple[Value, Value | float]:
    """One CPS step: Θ ← Θ + f·dt + α·err and f ← f + β·err.

    Parameters
    ----------
    theta : phase Θ before the step, cycles (not wrapped here).
    freq : frequency f, cycles per second (per round in the simulator, where dt = 1); a
        float with array phases means one frequency for all.
    err : wrap(Θ_cluster − Θ_predicted), cycles, where Θ_predicted = Θ + f·dt is the phase the
        cell has reached by the time it measures the cluster phase.
    alpha, beta : phase gain α and PLL frequency gain β (per step).
    dt : seconds since the previous step.

    Returns
    -------
    (theta, freq) after the step; floats for floats, new arrays for arrays.

    Examples
    --------
    >>> cps_step(0.25, 1.0, 0.1, 0.5, 0.1, 0.5)
    (0.8, 1.01)
    """
    return theta + freq * dt + alpha * err, freq + beta * err
