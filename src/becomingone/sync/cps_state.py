"""The Cluster Phase Supervisor's state as a value: what it is, its bytes and its checks.

Rule: values only. :class:`SupervisorState` holds everything a
:class:`~becomingone.sync.cps.PhaseSupervisor` changes as it runs (phase, frequency, counters,
the inbox, the replay table, the stability detector, the reported field); its canonical bytes
are versioned JSON (:mod:`becomingone.sync._codec`) that refuse NaN and infinity. Settings
(keys, gains, plan, timeouts) are not state: they are passed again on restore. No I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any

from becomingone.errors import InputError
from becomingone.sync import _codec
from becomingone.sync.ssep import Packet, PacketKind, Reject, ValidatorState
from becomingone.sync.stability import StabilityState

__all__ = ["CellField", "HeardPhase", "SupervisorState"]

_FORMAT = "becomingone.cps"
_VERSION = 2  # 2: inbox slots keep the T_sync each packet carried


@dataclass(frozen=True, slots=True, kw_only=True)
class CellField:
    """What a cell reports in its packets: Δφ, κ, |T_sync|², glyph load, T_sync, glyph digest.

    Validated exactly as a packet's fields are (``InputError`` naming the field).
    """

    delta_phi: float = 0.0
    kappa: float = 0.0
    coherence: float = 0.0
    node_energy: float = 0.0
    t_sync: complex = 0j
    glyph_digest: bytes = b""

    def __post_init__(self) -> None:
        Packet(node_id="x", cluster="x", seq=0, timestamp=0.0, **self.packet_fields())

    def packet_fields(self) -> dict[str, Any]:
        """The packet keyword arguments this field fills."""
        return {
            "delta_phi": self.delta_phi,
            "kappa": self.kappa,
            "coherence": self.coherence,
            "node_energy": self.node_energy,
            "t_sync": self.t_sync,
            "glyph_digest": self.glyph_digest,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HeardPhase:
    """One slot of the inbox: the latest phase heard from ``sender`` as (``kind``, ``level``),
    with the T_sync its packet carried (see :mod:`becomingone.sync.mesh`)."""

    kind: PacketKind
    level: int
    sender: str
    theta: float
    weight: float
    timestamp: float
    fresh: bool
    t_sync: complex = 0j


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorState:
    """Everything a :class:`PhaseSupervisor` changes as it runs.

    ``inbox`` keeps arrival order (it decides the order of floating-point sums, so a restored
    supervisor adds in the same order). ``epoch`` and ``seq`` number the packets it sends.
    """

    node_id: str
    epoch: int
    seq: int
    theta: float
    frequency: float
    last_error: float = 0.0
    steps: int = 0
    last_now: float | None = None
    inbox: tuple[HeardPhase, ...] = ()
    validator: ValidatorState = dataclasses.field(default_factory=ValidatorState)
    stability: StabilityState = dataclasses.field(default_factory=StabilityState)
    field: CellField = dataclasses.field(default_factory=CellField)

    def __post_init__(self) -> None:
        for name in ("epoch", "seq", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
                raise InputError("state", f"{name} must be an integer in [0, 2**64)")
        for name in ("theta", "frequency", "last_error", "last_now"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError("state", f"{name} must be finite, got {value!r}")
        if not 0.0 <= self.theta < 1.0:
            raise InputError("state", f"theta must be in [0, 1), got {self.theta!r}")
        slots = [(h.kind, h.level, h.sender) for h in self.inbox]
        if len(set(slots)) != len(slots):
            raise InputError("state", "inbox holds one slot twice")
        if not all(_finite_slot(h) for h in self.inbox):
            raise InputError("state", "inbox values must be finite")

    def rebooted(self, epoch: int) -> SupervisorState:
        """This state for a restart under the higher boot ``epoch``.

        The sequence starts again at 0 and the session's time base is dropped (last ``now``,
        the inbox, when peers were last heard); the phase, frequency, field, replay table and
        counters are kept.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not epoch > self.epoch:
            raise InputError("epoch", f"must be an integer > {self.epoch}, got {epoch!r}")
        stability = replace(self.stability, last_heard=(), changed=False, streak=0)
        return replace(self, epoch=epoch, seq=0, last_now=None, inbox=(), stability=stability)

    def to_bytes(self) -> bytes:
        """Canonical bytes: versioned JSON with sorted keys (floats exact, no NaN/inf)."""
        return _codec.dump(_FORMAT, _VERSION, _state_json(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> SupervisorState:
        """Parse :meth:`to_bytes` output; ``InputError`` naming ``state`` for anything else."""
        state: SupervisorState = _codec.load(_FORMAT, _VERSION, data, _state_from)
        if state.to_bytes() != bytes(data):
            raise InputError("state", "CPS state bytes are not canonical")
        return state


def _finite_slot(h: HeardPhase) -> bool:
    z = h.t_sync
    return math.isfinite(h.theta + h.weight + h.timestamp + z.real + z.imag) and abs(z) <= 1.0


def _state_json(s: SupervisorState) -> dict[str, Any]:
    v, f = s.validator, s.field
    return {
        "node_id": s.node_id,
        "epoch": s.epoch,
        "seq": s.seq,
        "theta": s.theta,
        "frequency": s.frequency,
        "last_error": s.last_error,
        "steps": s.steps,
        "last_now": s.last_now,
        "inbox": [
            {"kind": int(h.kind), "level": h.level, "sender": h.sender, "theta": h.theta}
            | {"weight": h.weight, "timestamp": h.timestamp, "fresh": h.fresh}
            | {"t_sync_re": h.t_sync.real, "t_sync_im": h.t_sync.imag}
            for h in s.inbox
        ],
        "validator": {
            "last": [{"signer": n, "epoch": e, "seq": q} for n, e, q in v.last],
            "accepted": v.accepted,
            "rejected": [{"reason": r, "count": c} for r, c in v.rejected],
        },
        "stability": s.stability.to_json(),
        "field": {
            "delta_phi": f.delta_phi,
            "kappa": f.kappa,
            "coherence": f.coherence,
            "node_energy": f.node_energy,
            "t_sync_re": f.t_sync.real,
            "t_sync_im": f.t_sync.imag,
            "glyph_digest": f.glyph_digest.hex(),
        },
    }


def _heard_from(r: _codec.Fields) -> HeardPhase:
    kind = r.integer("kind")
    if kind not in PacketKind._value2member_map_:
        raise InputError("state", f"inbox kind {kind} is unknown")
    return HeardPhase(
        kind=PacketKind(kind),
        level=r.integer("level"),
        sender=r.text("sender"),
        theta=r.number("theta"),
        weight=r.number("weight"),
        timestamp=r.number("timestamp"),
        fresh=r.flag("fresh"),
        t_sync=complex(r.number("t_sync_re"), r.number("t_sync_im")),
    )


def _state_from(f: _codec.Fields) -> SupervisorState:
    v, c = f.obj("validator"), f.obj("field")
    last = [(r.text("signer"), r.integer("epoch"), r.integer("seq")) for r in v.rows("last")]
    reasons = [(r.text("reason"), r.integer("count")) for r in v.rows("rejected")]
    if not {r for r, _ in reasons} <= set(Reject):
        raise InputError("state", f"unknown rejection reason in {reasons}")
    return SupervisorState(
        node_id=f.text("node_id"),
        epoch=f.integer("epoch"),
        seq=f.integer("seq"),
        theta=f.number("theta"),
        frequency=f.number("frequency"),
        last_error=f.number("last_error"),
        steps=f.integer("steps"),
        last_now=f.opt_number("last_now"),
        inbox=tuple(_heard_from(r) for r in f.rows("inbox")),
        validator=ValidatorState(
            last=tuple(last),
            accepted=v.integer("accepted"),
            rejected=tuple(reasons),
        ),
        stability=StabilityState.from_fields(f.obj("stability")),
        field=CellField(
            delta_phi=c.number("delta_phi"),
            kappa=c.number("kappa"),
            coherence=c.number("coherence"),
            node_energy=c.number("node_energy"),
            t_sync=complex(c.number("t_sync_re"), c.number("t_sync_im")),
            glyph_digest=c.hex("glyph_digest"),
        ),
    )
