"""The per-cell glyph scheduler: which glyph fires when, measured on the cell's own phase.

Rule: sans-IO. The driver feeds the cell's Θ_local (cycles) each tick and gets back effects —
:class:`Fire` (run this glyph's handler now), :class:`Skip` (its firing this cycle was dropped)
and :class:`End` (it has no energy or lifetime left, or was cancelled) — and reports each run's
cost with :meth:`GlyphScheduler.complete`. No clocks, no handlers, no I/O here.

The rule (docs/glyphs.md):

- Position. Θ_local is unwrapped into a position in cycles (cycle number + phase; each tick is
  taken the short way round, so a driver ticks at least twice per cycle or calls
  :meth:`~GlyphScheduler.advance_to` with the unwrapped position). Only a new high-water mark
  fires anything: a phase that steps back and forward again never fires twice.
- Fire. Glyph g's fire point in cycle k is k + θ_g. When the high-water mark passes it the
  glyph fires, once, with lateness ΔΦ = position − (k + θ_g) ≥ 0 cycles. A tick that spans
  whole cycles (a stalled driver) evaluates only the latest point each glyph passed; the
  earlier ones are counted as ``missed``.
- κ. A firing runs iff ΔΦ < 1 and ΔΦ ≤ 1/(1 + κ); otherwise it is a ``Skip(LATE)``: κ = 0
  runs anything within the cycle, κ = 9 tolerates 0.1 cycle, κ = 99 tolerates 0.01.
- Busy. A glyph whose previous run has not been completed is skipped (``Skip(BUSY)``).
- Energy. :meth:`complete` spends the run's cost; at energy 0 the glyph ends (``End(ENERGY)``).
- Lifetime. Each cycle boundary the position crosses takes one from every glyph's lifetime;
  at 0 the glyph ends (``End(LIFETIME)``) at that boundary, before the next cycle's points.
- Measures. ΔΦ and coherence are exponentially weighted running means (weight
  :data:`RUNNING_WEIGHT` per firing) of the lateness and of e^{2πiφ} over the fire phases φ;
  coherence is the modulus (the order parameter), 0 until a glyph has fired.

Cost: per tick, two bisections into the θ-sorted glyphs plus the glyphs that fire; a cycle
boundary touches only the glyphs whose lifetime ends there. So the work per glyph per cycle
does not grow with the number of glyphs (bench/glyphs.py measures it).
"""

from __future__ import annotations

import bisect
import cmath
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

from becomingone.cluster.glyph import Glyph, evolve, glyph_digest, node_energy
from becomingone.errors import InputError

__all__ = [
    "RUNNING_WEIGHT",
    "End",
    "EndReason",
    "Fire",
    "GlyphScheduler",
    "SchedulerEffect",
    "Skip",
    "SkipReason",
    "late_limit",
]

#: Weight of the newest firing in the running ΔΦ and coherence (about the last 8 firings).
RUNNING_WEIGHT = 0.125
_BELOW_ONE = math.nextafter(1.0, 0.0)
TWO_PI = 2.0 * math.pi


def late_limit(kappa: float) -> float:
    """The latest a firing may run, in cycles after its θ: 1/(1 + κ).

    >>> late_limit(0.0), late_limit(9.0)
    (1.0, 0.1)
    """
    return 1.0 / (1.0 + kappa)


class SkipReason(enum.StrEnum):
    """Why a firing was dropped."""

    LATE = "late"  #: ΔΦ above 1/(1 + κ) (or a whole cycle)
    BUSY = "busy"  #: the previous run has not completed


class EndReason(enum.StrEnum):
    """Why a glyph left the scheduler."""

    ENERGY = "energy"
    LIFETIME = "lifetime"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fire:
    """Run ``glyph`` (its state as of this firing) for ``cycle``; it is ``lateness`` cycles
    after its θ. Report the run's cost with :meth:`GlyphScheduler.complete`."""

    glyph: Glyph
    cycle: int
    lateness: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    """Glyph ``glyph_id`` does not run in ``cycle`` (``lateness`` cycles after θ)."""

    glyph_id: str
    cycle: int
    lateness: float
    reason: SkipReason


@dataclass(frozen=True, slots=True, kw_only=True)
class End:
    """``glyph`` (its final state) left the scheduler during ``cycle``."""

    glyph: Glyph
    cycle: int
    reason: EndReason


#: Anything the scheduler returns.
SchedulerEffect = Fire | Skip | End


class _Slot:
    """The mutable state of one scheduled glyph."""

    __slots__ = ("dsum", "end_cycle", "energy", "glyph", "last_cycle", "pending", "w", "z")

    def __init__(self, glyph: Glyph, cycle: int, fired_cycle: int | None) -> None:
        self.glyph = glyph
        self.energy = glyph.energy
        self.end_cycle = cycle + glyph.lifetime
        self.last_cycle = cycle - 1 if fired_cycle is None else fired_cycle
        self.pending: int | None = None
        seeded = glyph.coherence > 0.0
        self.w = 1.0 if seeded else 0.0
        self.z = glyph.coherence * cmath.exp(2j * math.pi * glyph.theta) if seeded else 0j
        self.dsum = glyph.delta_phi * self.w

    def record(self, lateness: float, phase: float) -> None:
        """Fold one firing into the running ΔΦ and coherence."""
        keep = 1.0 - RUNNING_WEIGHT
        self.w = keep * self.w + RUNNING_WEIGHT
        self.z = keep * self.z + RUNNING_WEIGHT * cmath.exp(2j * math.pi * phase)
        self.dsum = keep * self.dsum + RUNNING_WEIGHT * lateness

    def snapshot(self, cycle: int) -> Glyph:
        """The glyph value as of ``cycle``."""
        g = self.glyph
        if self.w > 0.0:
            delta, coherence = min(self.dsum / self.w, _BELOW_ONE), min(abs(self.z) / self.w, 1.0)
        else:
            delta, coherence = g.delta_phi, g.coherence
        return evolve(
            g,
            energy=self.energy,
            lifetime=max(0, self.end_cycle - cycle),
            delta_phi=delta,
            coherence=coherence,
        )


class GlyphScheduler:
    """The glyphs one cell owns, kept sorted by θ, fired as its phase advances.

    Parameters
    ----------
    position : float
        The cell's unwrapped phase at start, in cycles (its Θ_local, or cycle + Θ_local).
    kinds : iterable of str, optional
        The handler kinds this cell can run; :meth:`add` rejects any other. ``None``: any.

    Examples
    --------
    >>> s = GlyphScheduler(position=0.0)
    >>> s.add(Glyph(id="g", kind="probe", theta=0.3, energy=2.0, lifetime=5))
    >>> [type(e).__name__ for e in s.tick(0.2)], [type(e).__name__ for e in s.tick(0.4)]
    ([], ['Fire'])
    >>> [e.reason.value for e in s.complete("g", 0, cost=2.0)]
    ['energy']
    """

    def __init__(self, *, position: float = 0.0, kinds: Iterable[str] | None = None) -> None:
        if isinstance(position, bool) or not isinstance(position, int | float):
            raise InputError("position", f"must be a number, got {position!r}")
        if not math.isfinite(position):
            raise InputError("position", f"must be finite, got {position!r}")
        self._high = float(position)
        self._unwrapped = float(position)
        self._last_theta = float(position) % 1.0
        self.kinds = None if kinds is None else frozenset(kinds)
        self._slots: dict[str, _Slot] = {}
        self._thetas: list[float] = []
        self._order: list[_Slot] = []  # parallel to _thetas
        self._ending: dict[int, set[str]] = {}
        self.counts = dict.fromkeys(
            ("fired", "late", "busy", "missed", "energy", "lifetime", "cancelled", "stale"), 0
        )

    # -- reading -----------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """The high-water mark of the unwrapped phase, in cycles."""
        return self._high

    @property
    def cycle(self) -> int:
        """The current cycle number (integer part of :attr:`position`)."""
        return math.floor(self._high)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, glyph_id: object) -> bool:
        return glyph_id in self._slots

    def glyph(self, glyph_id: str) -> Glyph:
        """The current state of one glyph (``InputError`` if it is not here)."""
        return self._slot(glyph_id).snapshot(self.cycle)

    def busy(self, glyph_id: str) -> bool:
        """Whether ``glyph_id`` has a run fired and not yet completed."""
        return self._slot(glyph_id).pending is not None

    def last_cycle(self, glyph_id: str) -> int:
        """The last cycle in which ``glyph_id`` fired or may no longer fire here (what
        :meth:`add`'s ``fired_cycle`` takes where it moves to)."""
        return self._slot(glyph_id).last_cycle

    def glyphs(self) -> list[Glyph]:
        """Current states of every glyph, by θ."""
        cycle = self.cycle
        return [slot.snapshot(cycle) for slot in self._order]

    def node_energy(self) -> float:
        """Σ energy of the glyphs here (the cell's SSEP ``node_energy``)."""
        return node_energy(self.glyphs())

    def digest(self) -> bytes:
        """:func:`~becomingone.cluster.glyph_digest` of the glyphs here."""
        return glyph_digest(s.glyph for s in self._slots.values())

    # -- changing the set --------------------------------------------------------------------

    def add(self, glyph: Glyph, *, fired_cycle: int | None = None) -> None:
        """Schedule ``glyph``; it first fires at its next θ after :attr:`position`.

        ``fired_cycle``: the last cycle it already fired in elsewhere (a migrated glyph), so it
        does not fire again in that cycle here. Raises ``InputError`` for a duplicate id, an
        unknown kind, no energy or no lifetime.
        """
        self._check_new(glyph)
        if fired_cycle is not None and (
            isinstance(fired_cycle, bool) or not isinstance(fired_cycle, int)
        ):
            raise InputError("fired_cycle", f"must be an integer or None, got {fired_cycle!r}")
        slot = _Slot(glyph, self.cycle, fired_cycle)
        self._slots[glyph.id] = slot
        i = bisect.bisect_right(self._thetas, glyph.theta)
        self._thetas.insert(i, glyph.theta)
        self._order.insert(i, slot)
        self._ending.setdefault(slot.end_cycle, set()).add(glyph.id)

    def add_many(self, glyphs: Iterable[Glyph]) -> None:
        """Schedule many glyphs at once (one sort instead of one insertion each)."""
        batch = list(glyphs)
        ids = [g.id for g in batch]
        if len(set(ids)) != len(ids):
            raise InputError("glyphs", "the same glyph id appears twice in the batch")
        for g in batch:
            self._check_new(g)
        cycle = self.cycle
        for g in sorted(batch, key=lambda x: x.theta):  # allocated in firing order: cache-friendly
            slot = _Slot(g, cycle, None)
            self._slots[g.id] = slot
            self._ending.setdefault(slot.end_cycle, set()).add(g.id)
        order = sorted(self._slots.values(), key=lambda s: s.glyph.theta)
        self._thetas = [s.glyph.theta for s in order]
        self._order = order

    def cancel(self, glyph_id: str) -> End:
        """Remove a glyph and return its ``End(CANCELLED)``."""
        glyph = self._drop(glyph_id)
        self.counts["cancelled"] += 1
        return End(glyph=glyph, cycle=self.cycle, reason=EndReason.CANCELLED)

    def remove(self, glyph_id: str) -> Glyph:
        """Remove a glyph without ending it (it lives on elsewhere); returns its state."""
        return self._drop(glyph_id)

    def complete(self, glyph_id: str, cycle: int, *, cost: float) -> list[SchedulerEffect]:
        """Report that the run of ``glyph_id`` for ``cycle`` cost ``cost`` (≥ 0, finite).

        Spends the cost; returns ``[End(ENERGY)]`` when no energy is left. A completion for a
        glyph that has since ended or left is ignored (counted ``stale``); one for a cycle that
        is not the glyph's pending run raises ``InputError``.
        """
        if (
            isinstance(cost, bool)
            or not isinstance(cost, int | float)
            or not (math.isfinite(cost) and cost >= 0)
        ):
            raise InputError("cost", f"must be a finite number >= 0, got {cost!r}")
        slot = self._slots.get(glyph_id)
        if slot is None:
            self.counts["stale"] += 1
            return []
        if slot.pending != cycle:
            raise InputError("cycle", f"{glyph_id!r} has no pending run for cycle {cycle}")
        slot.pending = None
        slot.energy = max(0.0, slot.energy - float(cost))
        if slot.energy > 0.0:
            return []
        self.counts["energy"] += 1
        return [End(glyph=self._drop(glyph_id), cycle=self.cycle, reason=EndReason.ENERGY)]

    # -- time ----------------------------------------------------------------------------------

    def tick(self, theta: float) -> list[SchedulerEffect]:
        """Feed the cell's Θ_local (cycles, in [0, 1)); the step is taken the short way round."""
        if isinstance(theta, bool) or not isinstance(theta, int | float):
            raise InputError("theta", f"must be a number, got {theta!r}")
        if not (math.isfinite(theta) and 0.0 <= theta < 1.0):
            raise InputError("theta", f"must be in [0, 1), got {theta!r}")
        step = (theta - self._last_theta + 0.5) % 1.0 - 0.5
        self._last_theta = float(theta)
        return self.advance_to(self._unwrapped + step)

    def advance_to(self, position: float) -> list[SchedulerEffect]:
        """Move to the unwrapped ``position`` (cycles); fire what a new high-water mark passes."""
        if isinstance(position, bool) or not isinstance(position, int | float):
            raise InputError("position", f"must be a number, got {position!r}")
        if not math.isfinite(position):
            raise InputError("position", f"must be finite, got {position!r}")
        self._unwrapped = float(position)
        self._last_theta = self._unwrapped % 1.0
        old, new = self._high, self._unwrapped
        if new <= old:
            return []
        self._high = new
        if new - old >= 1.0:
            return self._sweep(old, new)
        effects: list[SchedulerEffect] = []
        start = math.floor(old)
        boundary = start + 1
        if new < boundary:
            self._segment(effects, start, old - start, new - start, new)
        else:
            self._segment(effects, start, old - start, 1.0, new)
            self._end_lifetimes(effects, boundary)
            self._segment(effects, boundary, -1.0, new - boundary, new)
        return effects

    # -- internals -----------------------------------------------------------------------------

    def _check_new(self, glyph: Glyph) -> None:
        if not isinstance(glyph, Glyph):
            raise InputError("glyph", f"must be a Glyph, got {type(glyph).__name__}")
        if glyph.id in self._slots:
            raise InputError("id", f"glyph {glyph.id!r} is already scheduled")
        if self.kinds is not None and glyph.kind not in self.kinds:
            known = ", ".join(sorted(self.kinds)) or "none"
            raise InputError("kind", f"unknown kind {glyph.kind!r}; known: {known}")
        if glyph.energy <= 0.0:
            raise InputError("energy", f"glyph {glyph.id!r} has no energy left")
        if glyph.lifetime < 1:
            raise InputError("lifetime", f"glyph {glyph.id!r} has no lifetime left")

    def _slot(self, glyph_id: str) -> _Slot:
        slot = self._slots.get(glyph_id)
        if slot is None:
            raise InputError("glyph_id", f"no glyph {glyph_id!r} here")
        return slot

    def _drop(self, glyph_id: str) -> Glyph:
        slot = self._slot(glyph_id)
        glyph = slot.snapshot(self.cycle)
        del self._slots[glyph_id]
        i = bisect.bisect_left(self._thetas, slot.glyph.theta)
        while self._order[i] is not slot:
            i += 1
        del self._thetas[i], self._order[i]
        ending = self._ending[slot.end_cycle]
        ending.discard(glyph_id)
        if not ending:
            del self._ending[slot.end_cycle]
        return glyph

    def _segment(
        self, out: list[SchedulerEffect], cycle: int, lo: float, hi: float, now: float
    ) -> None:
        """Fire the glyphs with lo < θ ≤ hi in ``cycle``, the position being ``now``."""
        a = bisect.bisect_right(self._thetas, lo)
        b = bisect.bisect_right(self._thetas, hi)
        for slot in self._order[a:b]:
            self._evaluate(out, slot, cycle, now)

    def _evaluate(self, out: list[SchedulerEffect], slot: _Slot, cycle: int, now: float) -> None:
        """Fire or skip ``slot`` for ``cycle`` at position ``now``."""
        if cycle <= slot.last_cycle or cycle >= slot.end_cycle:
            return
        slot.last_cycle = cycle
        glyph_id = slot.glyph.id
        lateness = now - (cycle + slot.glyph.theta)
        if lateness >= 1.0 or lateness > late_limit(slot.glyph.kappa):
            self.counts["late"] += 1
            out.append(
                Skip(glyph_id=glyph_id, cycle=cycle, lateness=lateness, reason=SkipReason.LATE)
            )
            return
        if slot.pending is not None:
            self.counts["busy"] += 1
            out.append(
                Skip(glyph_id=glyph_id, cycle=cycle, lateness=lateness, reason=SkipReason.BUSY)
            )
            return
        slot.pending = cycle
        slot.record(lateness, now % 1.0)
        self.counts["fired"] += 1
        out.append(Fire(glyph=slot.snapshot(math.floor(now)), cycle=cycle, lateness=lateness))

    def _end_lifetimes(self, out: list[SchedulerEffect], boundary: int) -> None:
        for glyph_id in sorted(self._ending.get(boundary, ())):
            self.counts["lifetime"] += 1
            out.append(End(glyph=self._drop(glyph_id), cycle=boundary, reason=EndReason.LIFETIME))

    def _sweep(self, old: float, new: float) -> list[SchedulerEffect]:
        """A step of a whole cycle or more: each glyph's latest passed point, then the ends."""
        effects: list[SchedulerEffect] = []
        for slot in list(self._order):
            theta = slot.glyph.theta
            first = max(math.floor(old - theta) + 1, slot.last_cycle + 1)
            last = min(math.floor(new - theta), slot.end_cycle - 1)
            if last >= first:
                self.counts["missed"] += last - first
                self._evaluate(effects, slot, last, new)
        for boundary in sorted(b for b in self._ending if b <= math.floor(new)):
            self._end_lifetimes(effects, boundary)
        return effects
