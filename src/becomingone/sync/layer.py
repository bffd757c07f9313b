"""The Sync layer of a cell: Master and Emissary meet, and the input collapses or dissipates.

Rule (DESIGN.md §5, normative)::

    T_sync  = ½ (T_master + T_emissary)
    Δ_phase = | |T_master| − |T_emissary| |
    collapse  iff  |T_sync|² ≥ I_c  and  Δ_phase < sync.phase_threshold
    otherwise dissipate, and request realignment

Sans-IO: :meth:`SyncLayer.evaluate` takes two resonances and a ``now`` and returns a
:class:`SyncDecision` (with a :class:`RealignRequest` when it dissipates). The Emissary turns a
collapse into an :class:`ActionEvent` with :func:`action_from`. No clocks, no callbacks, no I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from becomingone.core.kairos import Resonance
from becomingone.errors import InputError

__all__ = [
    "ActionEvent",
    "DissipationReason",
    "RealignRequest",
    "SyncDecision",
    "SyncLayer",
    "SyncOutcome",
    "action_from",
]


class SyncOutcome(enum.Enum):
    """What the Sync layer decided for one evaluation."""

    COLLAPSE = "collapse"
    DISSIPATE = "dissipate"


class DissipationReason(enum.Enum):
    """Why an evaluation dissipated."""

    WARMING_UP = "warming_up"  # a transducer has no terms yet
    BELOW_THRESHOLD = "below_threshold"  # |T_sync|² < I_c
    PHASE_MISMATCH = "phase_mismatch"  # Δ_phase ≥ phase_threshold
    VETOED = "vetoed"  # a before_collapse hook vetoed the collapse


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InputError(name, f"must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RealignRequest:
    """Dissipation asks the transducers to realign: how far apart they were, and why."""

    time: float
    delta_phase: float
    master_coherence: float
    emissary_coherence: float
    reason: DissipationReason


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDecision:
    """One evaluation of the Sync layer at stream time ``time`` (seconds)."""

    time: float
    master: complex
    emissary: complex
    t_sync: complex
    coherence: float
    delta_phase: float
    outcome: SyncOutcome
    reason: DissipationReason | None = None
    realign: RealignRequest | None = None

    def __post_init__(self) -> None:
        _finite("time", self.time)
        _finite("coherence", self.coherence)
        _finite("delta_phase", self.delta_phase)
        if (self.outcome is SyncOutcome.COLLAPSE) != (self.reason is None):
            raise InputError("reason", "a collapse has no reason; a dissipation must have one")

    @property
    def collapsed(self) -> bool:
        """True iff this evaluation collapsed."""
        return self.outcome is SyncOutcome.COLLAPSE


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionEvent:
    """A collapse turned into action by the Emissary.

    ``phi_extracted`` is the stream's phase at the collapse in cycles, [0, 1); ``frequency_hz``
    its mean frequency over the Emissary window; ``coherence`` is |T_sync|² (the strength).
    """

    time: float
    phi_extracted: float
    frequency_hz: float
    coherence: float

    def __post_init__(self) -> None:
        _finite("time", self.time)
        _finite("frequency_hz", self.frequency_hz)
        if not 0.0 <= _finite("phi_extracted", self.phi_extracted) < 1.0:
            raise InputError("phi_extracted", f"must be in [0, 1) cycles, got {self.phi_extracted}")
        if not 0.0 <= _finite("coherence", self.coherence) <= 1.0:
            raise InputError("coherence", f"must be in [0, 1], got {self.coherence}")


class SyncLayer:
    """Compares the Master and Emissary resonances (DESIGN.md §5).

    Parameters
    ----------
    threshold : float
        I_c on |T_sync|², in (0, 1].
    phase_threshold : float
        Collapse needs Δ_phase = ||T_m| − |T_e|| strictly below this, in (0, 1].

    Examples
    --------
    >>> from becomingone.core.kairos import Resonance
    >>> r = Resonance(time=1.0, value=1 + 0j, coherence=1.0, terms=10, collapsed=True)
    >>> SyncLayer(threshold=0.95, phase_threshold=0.1).evaluate(r, r, now=1.0).outcome.value
    'collapse'
    """

    def __init__(self, *, threshold: float, phase_threshold: float) -> None:
        if not 0.0 < _finite("threshold", threshold) <= 1.0:
            raise InputError("threshold", f"must be in (0, 1], got {threshold}")
        if not 0.0 < _finite("phase_threshold", phase_threshold) <= 1.0:
            raise InputError("phase_threshold", f"must be in (0, 1], got {phase_threshold}")
        self.threshold = float(threshold)
        self.phase_threshold = float(phase_threshold)

    def evaluate(self, master: Resonance, emissary: Resonance, *, now: float) -> SyncDecision:
        """Decide for the latest resonances; ``now`` is the stream time of the evaluation."""
        t_sync = 0.5 * (master.value + emissary.value)
        coherence = min(1.0, t_sync.real**2 + t_sync.imag**2)
        delta = abs(abs(master.value) - abs(emissary.value))
        if master.terms == 0 or emissary.terms == 0:
            reason: DissipationReason | None = DissipationReason.WARMING_UP
        elif coherence < self.threshold:
            reason = DissipationReason.BELOW_THRESHOLD
        elif not delta < self.phase_threshold:
            reason = DissipationReason.PHASE_MISMATCH
        else:
            reason = None
        return self._decision(master, emissary, t_sync, coherence, delta, reason, now)

    @staticmethod
    def veto(decision: SyncDecision) -> SyncDecision:
        """The same evaluation turned into a dissipation because a hook vetoed the collapse."""
        if not decision.collapsed:
            raise InputError("decision", "only a collapse can be vetoed")
        return SyncDecision(
            time=decision.time,
            master=decision.master,
            emissary=decision.emissary,
            t_sync=decision.t_sync,
            coherence=decision.coherence,
            delta_phase=decision.delta_phase,
            outcome=SyncOutcome.DISSIPATE,
            reason=DissipationReason.VETOED,
            realign=_realign(decision, DissipationReason.VETOED),
        )

    @staticmethod
    def _decision(
        master: Resonance,
        emissary: Resonance,
        t_sync: complex,
        coherence: float,
        delta: float,
        reason: DissipationReason | None,
        now: float,
    ) -> SyncDecision:
        realign = None
        if reason is not None:
            realign = RealignRequest(
                time=now,
                delta_phase=delta,
                master_coherence=abs(master.value) ** 2,
                emissary_coherence=abs(emissary.value) ** 2,
                reason=reason,
            )
        return SyncDecision(
            time=now,
            master=master.value,
            emissary=emissary.value,
            t_sync=t_sync,
            coherence=coherence,
            delta_phase=delta,
            outcome=SyncOutcome.COLLAPSE if reason is None else SyncOutcome.DISSIPATE,
            reason=reason,
            realign=realign,
        )


def _realign(decision: SyncDecision, reason: DissipationReason) -> RealignRequest:
    return RealignRequest(
        time=decision.time,
        delta_phase=decision.delta_phase,
        master_coherence=abs(decision.master) ** 2,
        emissary_coherence=abs(decision.emissary) ** 2,
        reason=reason,
    )


def action_from(decision: SyncDecision, *, phase: float, frequency_hz: float) -> ActionEvent:
    """The Emissary's action for a collapse: extracted phase (cycles), frequency (Hz), strength."""
    if not decision.collapsed:
        raise InputError("decision", "only a collapse becomes an action")
    return ActionEvent(
        time=decision.time,
        phi_extracted=wrapped if (wrapped := phase % 1.0) < 1.0 else 0.0,
        frequency_hz=frequency_hz,
        coherence=decision.coherence,
    )
