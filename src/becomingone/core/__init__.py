"""Pure math on NumPy: phase statistics, field merge, the KAIROS engine and its encoders.

Rule: nothing in ``core`` does I/O or reads a clock; time arrives as arguments.
"""

from becomingone.core.encoders import (
    phase_from_embeddings,
    phase_from_events,
    phase_from_samples,
    phase_from_signal,
)
from becomingone.core.field import FieldState, merge_fields
from becomingone.core.kairos import (
    Resonance,
    false_alarm_probability,
    lag_samples,
    phase_velocity,
    temporal_resonance,
)
from becomingone.core.phase import (
    CoherenceBand,
    circular_mean,
    circular_midpoint,
    circular_variance,
    cluster_coherence,
    coherence_band,
    harmonic_mean,
    order_parameter,
    r2_unbiased,
    wrap,
)
from becomingone.core.resmap import ResonanceMap, resonance_map
from becomingone.core.stream import KairosEngine, KairosState

__all__ = [
    "CoherenceBand",
    "FieldState",
    "KairosEngine",
    "KairosState",
    "Resonance",
    "ResonanceMap",
    "circular_mean",
    "circular_midpoint",
    "circular_variance",
    "cluster_coherence",
    "coherence_band",
    "false_alarm_probability",
    "harmonic_mean",
    "lag_samples",
    "merge_fields",
    "order_parameter",
    "phase_from_embeddings",
    "phase_from_events",
    "phase_from_samples",
    "phase_from_signal",
    "phase_velocity",
    "r2_unbiased",
    "resonance_map",
    "temporal_resonance",
    "wrap",
]
