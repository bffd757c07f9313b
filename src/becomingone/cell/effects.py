"""The effects a :class:`~becomingone.cell.core.CellCore` asks its driver to perform, and the
outcome of a batch.

Rule: plain frozen values; no behaviour. A driver answers :class:`FireHook` with a
:class:`HookOutcome`, :class:`VerifyRecent` with a ``VerifyReport`` and :class:`Commit` with
``None`` (or by throwing the storage error into the core's generator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from becomingone.sync.layer import ActionEvent, SyncDecision
from becomingone.witnessing import ChainHead, WitnessRecord

__all__ = [
    "COUNTERS",
    "Commit",
    "Effect",
    "FireHook",
    "HookOutcome",
    "IngestOutcome",
    "VerifyRecent",
]

#: The running counts a cell keeps (stored with every batch, restored at start).
COUNTERS = ("collapses", "dissipations", "realigns", "rejected", "vetoed", "hook_failures")


@dataclass(frozen=True, slots=True, kw_only=True)
class FireHook:
    """Run the handlers of ``event`` (and ``before_<event>``) with this payload."""

    event: str
    time: float
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class HookOutcome:
    """The driver's answer to :class:`FireHook`: vetoed, and each failure as a JSON object."""

    vetoed: bool = False
    failures: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyRecent:
    """Verify the newest ``window`` stored witness records (the meta self-check)."""

    window: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """Store one batch in one transaction.

    A coherence point at stream time ``t`` (the three |T|², Δ_phase and the phase of T_sync in
    radians), the witness ``records`` with the signed chain ``head``, the raw ``samples`` for the
    replay log or fresh engine ``signatures`` (role → (samples, state bytes)), the running
    ``counters`` and the wall time.
    """

    t: float
    master: float
    emissary: float
    sync: float
    delta_phase: float
    phase: float
    records: tuple[WitnessRecord, ...]
    head: ChainHead
    samples: NDArray[Any] | None = None
    signatures: Mapping[str, tuple[int, bytes]] | None = None
    counters: Mapping[str, int] = field(default_factory=dict)
    wall: float | None = None


#: Anything the core yields.
Effect = FireHook | VerifyRecent | Commit


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestOutcome:
    """What one batch decided (``decision`` None: no evaluation in this batch; ``rejected``:
    why the engines refused the whole batch)."""

    decision: SyncDecision | None
    action: ActionEvent | None
    rejected: str | None = None
