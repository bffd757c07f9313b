"""Master and Emissary: one stream read at two time scales (DESIGN.md §5).

Rule: a transducer is a windowed :class:`~becomingone.core.stream.KairosEngine` (window =
``tau_max``, lag = ``kairos.tau_scale``, ω = ``kairos.omega``) plus its integration-cycle clock
(``witness_interval`` seconds of stream time). It counts cycles; it does not witness, store or
call anything — the cell does that with what :meth:`Transducer.ingest` returns. No I/O, no clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core.kairos import Resonance
from becomingone.core.stream import KairosEngine, KairosState
from becomingone.errors import InputError

__all__ = ["EmissaryTransducer", "MasterTransducer", "Reading", "Transducer", "ingest_pair"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """What one ingest did to a transducer.

    ``cycles`` is the number of integration cycles (``witness_interval`` seconds of stream) that
    completed during this ingest: the cell writes a meso witness when it is > 0.
    """

    role: str
    resonance: Resonance
    samples: int
    cycles: int
    cycle: int


class _KairosSettings(Protocol):
    @property
    def step(self) -> float: ...
    @property
    def tau_scale(self) -> float: ...
    @property
    def omega(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def channels(self) -> int: ...


class _WindowSettings(Protocol):
    @property
    def tau_max(self) -> float: ...
    @property
    def witness_interval(self) -> float: ...


class _CellSettings(Protocol):
    """What :meth:`Transducer.from_config` reads: the shape of ``config.CellConfig``, named here
    so this layer takes plain parameters and never imports ``becomingone.config``."""

    @property
    def kairos(self) -> _KairosSettings: ...
    @property
    def master(self) -> _WindowSettings: ...
    @property
    def emissary(self) -> _WindowSettings: ...


class Transducer:
    """A windowed KAIROS engine with an integration-cycle clock."""

    role: ClassVar[str] = "transducer"

    def __init__(self, engine: KairosEngine, witness_interval: float) -> None:
        if not (math.isfinite(witness_interval) and witness_interval > 0):
            raise InputError("witness_interval", f"must be > 0 seconds, got {witness_interval}")
        self._engine = engine
        self._interval = float(witness_interval)

    @classmethod
    def from_config(cls, config: _CellSettings, *, channels: int | None = None) -> Self:
        """Build from the cell config (``channels`` overrides ``kairos.channels``)."""
        part = config.master if cls.role == "master" else config.emissary
        engine = KairosEngine(
            dt=config.kairos.step,
            lag=config.kairos.tau_scale,
            omega=config.kairos.omega,
            window=part.tau_max,
            threshold=config.kairos.threshold,
            channels=channels or config.kairos.channels,
        )
        return cls(engine, part.witness_interval)

    @property
    def engine(self) -> KairosEngine:
        """The underlying engine (read it, do not feed it directly)."""
        return self._engine

    @property
    def witness_interval(self) -> float:
        """Seconds of stream per integration cycle."""
        return self._interval

    @property
    def cycle(self) -> int:
        """Integration cycles completed so far."""
        return self._cycle_at(self._engine.samples)

    def _cycle_at(self, samples: int) -> int:
        return math.floor(samples * self._engine.dt / self._interval + 1e-9)

    def ingest(self, samples: ArrayLike) -> Reading:
        """Feed a batch (shape (k,) or (k, C), finite) and report the new resonance."""
        before = self.cycle
        return self._reading(before, self._engine.update(samples))

    def ingest_trusted(self, chunk: NDArray[np.complex128]) -> Reading:
        """Feed a batch already cleaned by the caller (complex128, shape (k, C), finite).

        The cell's fast path: it validates once for both transducers
        (:meth:`KairosEngine.update_trusted`). Same result as :meth:`ingest`.
        """
        before = self.cycle
        return self._reading(before, self._engine.update_trusted(chunk))

    def _reading(self, before: int, res: Resonance) -> Reading:
        after = self.cycle
        return Reading(
            role=self.role,
            resonance=res,
            samples=self._engine.samples,
            cycles=after - before,
            cycle=after,
        )

    def snapshot(self) -> KairosState:
        """The engine state, to persist as a temporal signature."""
        return self._engine.snapshot()

    def restore(self, state: KairosState) -> None:
        """Resume from a temporal signature; its parameters must match this transducer's."""
        current = self._engine.snapshot()
        for name in ("dt", "lag", "omega", "window", "threshold", "channels"):
            old, new = getattr(state, name), getattr(current, name)
            if not math.isclose(float(old), float(new), rel_tol=1e-12, abs_tol=0.0):
                raise InputError(
                    f"{self.role}.{name}",
                    f"stored signature has {old}, config has {new}; use a fresh data dir",
                )
        self._engine = KairosEngine.restore(state)


class MasterTransducer(Transducer):
    """The slow transducer: long window (``master.tau_max``, up to an hour)."""

    role: ClassVar[str] = "master"


class EmissaryTransducer(Transducer):
    """The fast transducer (``emissary.tau_max``, about a second); it acts on collapses.

    Besides the engine it keeps the latest window of raw samples, to extract the stream's phase
    (cycles, [0, 1)) and mean frequency (Hz) when a collapse becomes an action.
    """

    role: ClassVar[str] = "emissary"

    def __init__(self, engine: KairosEngine, witness_interval: float) -> None:
        super().__init__(engine, witness_interval)
        self._recent: NDArray[np.complex128] | None = None

    def ingest(self, samples: ArrayLike) -> Reading:
        """Feed a batch; also keep the latest window of samples for :meth:`extract`."""
        reading = super().ingest(samples)
        x = np.asarray(samples, dtype=np.complex128)
        self._keep(x.reshape(-1, self._engine.channels) if x.ndim < 2 else x)
        return reading

    def ingest_trusted(self, chunk: NDArray[np.complex128]) -> Reading:
        """Feed a cleaned batch (see :meth:`Transducer.ingest_trusted`); keep its tail."""
        reading = super().ingest_trusted(chunk)
        self._keep(chunk)
        return reading

    def _keep(self, x: NDArray[np.complex128]) -> None:
        keep = self._engine.window_terms + self._engine.lag_samples + 1
        tail = x[-keep:]
        joined = tail if self._recent is None else np.concatenate([self._recent, tail])
        self._recent = joined[-keep:].copy()

    def extract(self) -> tuple[float, float]:
        """(phase in cycles in [0, 1), mean frequency in Hz) of the latest window.

        A real φ is an unwrapped phase in radians; a complex φ is a phasor. Channels are
        combined by circular mean (phase) and plain mean (frequency). (0, 0) before any input.
        """
        x = self._recent
        if x is None or x.shape[0] == 0:
            return 0.0, 0.0
        is_real = bool(np.all(x.imag == 0.0))
        if is_real:
            angles = x.real
            steps = np.diff(angles, axis=0)
        else:
            angles = np.angle(x)
            steps = np.angle(x[1:] * np.conj(x[:-1]))
        last = np.exp(1j * angles[-1])
        phase = float(np.angle(np.mean(last)) / (2 * np.pi)) % 1.0
        if steps.shape[0] == 0:
            return phase, 0.0
        freq = float(np.mean(steps) / self._engine.dt / (2 * np.pi))
        return phase, freq


def ingest_pair(
    master: Transducer, emissary: EmissaryTransducer, chunk: NDArray[np.complex128]
) -> tuple[Reading, Reading]:
    """Feed one cleaned batch (complex128, shape (k, C), finite) to both transducers.

    The velocity products are computed once, by the Master's engine, when both engines read
    the stream with the same dt, lag and ω (:meth:`KairosEngine.update_pair`); otherwise each
    engine computes its own. The readings equal ``master.ingest(x), emissary.ingest(x)``.
    """
    before = master.cycle, emissary.cycle
    res_m, res_e = master.engine.update_pair(chunk, emissary.engine)
    emissary._keep(chunk)
    return master._reading(before[0], res_m), emissary._reading(before[1], res_e)
