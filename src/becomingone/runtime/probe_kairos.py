"""A cell observing itself: one KAIROS engine per probe glyph, fed one reading per firing.

Rule: glue only, no I/O and no clock. Each ``probe`` glyph a cell owns gets its own
:class:`~becomingone.core.stream.KairosEngine` — the streaming engine the cell's transducers use,
not a second implementation — whose step ``dt`` is one cluster cycle (a probe fires at most once
per cycle) and whose lag and window are counted in cycles: the glyph's payload may set
``"lag"`` (default :data:`PROBE_LAG`) and ``"window"`` (default :data:`PROBE_WINDOW`,
at most :data:`MAX_WINDOW`). Every successful run feeds its reading as one sample; |T̂|² of the
stream says how regularly the reading *changes*: a value that repeats a pattern whose period
divides the lag (a file that grows and shrinks every other cycle, a steady ramp) tends to 1, a
value that jumps at random to about 1/window, a constant one to 0 (no change, no terms). The
default lag is 2 cycles, not 1: successive differences of noise are anti-correlated, so at
lag 1 a random reading scores about 0.25 rather than near 0.

A reading the engine refuses — NaN, ±inf, not a number, beyond its sample limit — is counted
(``rejected``) and changes nothing, like a cell's rejected input batch. The engines are the
cell's own: a glyph that migrates starts a fresh stream on its new owner (the target observes
itself from its own readings; nothing of the source's stream travels, so the migration packet
stays a glyph), and a glyph that ends or leaves takes its engine with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from becomingone.cluster import Glyph
from becomingone.core.stream import KairosEngine
from becomingone.errors import InputError

__all__ = ["MAX_WINDOW", "PROBE_LAG", "PROBE_WINDOW", "ProbeStreams", "probe_settings"]

#: Default lag of a probe's stream, cycles.
PROBE_LAG = 2
#: Default window of a probe's stream, cycles (readings).
PROBE_WINDOW = 32
#: Largest window a payload may ask for, cycles.
MAX_WINDOW = 4096
#: |T̂|² at or above which a probe's stream counts as collapsed (the cell's default I_c).
PROBE_THRESHOLD = 0.95


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Lag and window of one probe's stream, in cycles."""

    lag: int
    window: int


def _cycles(payload: Mapping[str, Any], key: str, default: int) -> int:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW:
        raise InputError(f"payload.{key}", f"must be an integer in [1, {MAX_WINDOW}] cycles")
    return value


def probe_settings(payload: Mapping[str, Any]) -> ProbeSettings:
    """The stream settings a probe's payload asks for; ``InputError`` naming the key that is
    out of range (or a lag longer than the window).

    >>> probe_settings({"probe": "loadavg"})
    ProbeSettings(lag=2, window=32)
    """
    lag = _cycles(payload, "lag", PROBE_LAG)
    window = _cycles(payload, "window", PROBE_WINDOW)
    if window <= lag:
        raise InputError("payload.window", f"must be longer than the lag ({lag}), got {window}")
    return ProbeSettings(lag, window)


class ProbeStreams:
    """The self-observation engines of one cell's probe glyphs, by glyph id.

    ``cycle`` is the cluster cycle in seconds (the engines' ``dt``; |T̂|² does not depend on
    it at ω = 0, the engines' times do).
    """

    def __init__(self, cycle: float = 1.0) -> None:
        if not (isinstance(cycle, int | float) and math.isfinite(cycle) and cycle > 0):
            raise InputError("cycle", f"must be a positive number of seconds, got {cycle!r}")
        self.cycle = float(cycle)
        self.engines: dict[str, KairosEngine] = {}
        self.rejected = 0
        self.latest: str | None = None  # the glyph whose stream was fed last

    def open(self, glyph: Glyph) -> None:
        """Start ``glyph``'s stream if it is a probe (a fresh one if it had one);
        ``InputError`` for a payload whose lag or window is out of range."""
        if glyph.kind != "probe":
            return
        s = probe_settings(glyph.payload)
        self.engines[glyph.id] = KairosEngine(
            dt=self.cycle,
            lag=s.lag * self.cycle,
            omega=0.0,
            window=s.window * self.cycle,
            threshold=PROBE_THRESHOLD,
        )

    def close(self, glyph_id: str) -> None:
        """Forget ``glyph_id``'s stream (it ended or moved to another cell)."""
        self.engines.pop(glyph_id, None)
        if self.latest == glyph_id:
            self.latest = None

    def feed(self, glyph_id: str, value: Any) -> dict[str, Any] | None:
        """Feed one reading of ``glyph_id`` and return its stream's state (:meth:`state`);
        ``None`` if it has no stream. ``InputError`` (counted in :attr:`rejected`, nothing
        fed) for a reading that is not a finite number within the engine's sample limit."""
        engine = self.engines.get(glyph_id)
        if engine is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.rejected += 1
            got = type(value).__name__
            raise InputError("value", f"a probe reading must be a number, got {got}")
        try:
            engine.update(float(value))
        except InputError:
            self.rejected += 1
            raise
        self.latest = glyph_id
        return self.state(glyph_id)

    def state(self, glyph_id: str) -> dict[str, Any] | None:
        """``coherence`` |T̂|², ``collapsed``, ``samples`` fed, ``terms`` in the window and
        ``lag``/``window`` (cycles) of ``glyph_id``'s stream; ``None`` without one."""
        engine = self.engines.get(glyph_id)
        if engine is None:
            return None
        last = engine.last
        return {
            "coherence": last.coherence,
            "collapsed": last.collapsed,
            "samples": engine.samples,
            "terms": last.terms,
            "lag": engine.lag_samples,
            "window": engine.window_terms,
        }

    def latest_coherence(self) -> float | None:
        """|T̂|² of the stream fed last (``None`` before any reading)."""
        if self.latest is None:
            return None
        return self.engines[self.latest].last.coherence
