"""The sans-IO core of a cell: validate → transducers → sync decision → witness records.

Rule: no I/O, no clocks, no ``await``. :meth:`CellCore.ingest` is a generator: it yields the
effects it needs done — :class:`FireHook` (run the hooks of an event; the driver sends back a
:class:`~becomingone.cell.effects.HookOutcome`), :class:`VerifyRecent` (verify the newest stored
records; the driver sends back a :class:`~becomingone.witnessing.VerifyReport`) and
:class:`Commit` (store one batch atomically; the driver sends back ``None`` or throws the
storage error into the generator, which rolls the chain back and re-raises) — and returns the
batch's :class:`IngestOutcome`. Time arrives as ``now`` (wall seconds, for witness records and
cadences). The asyncio driver :class:`becomingone.runtime.Cell` performs the effects.

Cadence (docs/cell.md): one micro witness per ingest batch, one meso witness per transducer per
batch in which an integration cycle completed, one macro witness per collapse, one meta witness
every ``meta_interval`` wall seconds. Every record is written through the cell's
:class:`~becomingone.witnessing.WitnessingLayer` by the name of its level
(``witness_operation``, ``witness_transducer``, ``witness_system``, ``witness_self``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.cell.effects import (
    COUNTERS,
    Commit,
    Effect,
    FireHook,
    HookOutcome,
    IngestOutcome,
    VerifyRecent,
)
from becomingone.errors import InputError, StorageError
from becomingone.sync.layer import (
    ActionEvent,
    RealignRequest,
    SyncDecision,
    SyncLayer,
    action_from,
)
from becomingone.transducers import EmissaryTransducer, MasterTransducer, Reading, ingest_pair
from becomingone.witnessing import (
    Level,
    VerifyReport,
    WitnessChain,
    WitnessingLayer,
    WitnessRecord,
)

__all__ = ["CellCore", "CoreSettings", "Ingest"]

#: What :meth:`CellCore.ingest` returns: a generator of effects ending in an outcome.
Ingest = Generator[Effect, Any, IngestOutcome]


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSettings:
    """Cadences of the core, in wall seconds (``meta_interval``, ``signature_interval``),
    records (``meta_window``) and samples (``max_log``: replay-log bound before signatures)."""

    meta_interval: float
    meta_window: int
    signature_interval: float
    max_log: int

    def __post_init__(self) -> None:
        for name in ("meta_interval", "signature_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(name, f"must be a finite number > 0, got {value!r}")
        for name in ("meta_window", "max_log"):
            if getattr(self, name) < 1:
                raise InputError(name, f"must be >= 1, got {getattr(self, name)!r}")


class CellCore:
    """Transducers + Sync layer + witness chain + running counts of one cell, without I/O.

    ``listening`` lists the hook events (``collapse``, ``before_collapse``, …) some handler
    listens to: the core yields :class:`FireHook` only for those, and builds their payloads
    only then.
    """

    def __init__(
        self,
        *,
        master: MasterTransducer,
        emissary: EmissaryTransducer,
        sync: SyncLayer,
        chain: WitnessChain,
        settings: CoreSettings,
        counts: Mapping[str, int] | None = None,
        listening: Iterable[str] = (),
    ) -> None:
        self.master, self.emissary, self.sync, self.chain = master, emissary, sync, chain
        self.witnessing = WitnessingLayer(chain)
        self.settings = settings
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.counts.update({k: int(v) for k, v in (counts or {}).items() if k in self.counts})
        self.listening = frozenset(listening)
        self.chain_ok: bool | None = None
        self._last_signature: float | None = None
        self._last_meta: float | None = None
        self._logged = 0

    # -- reading ---------------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        """Channels per sample."""
        return self.master.engine.channels

    @property
    def samples(self) -> int:
        """Samples ingested over the cell's whole life (across restarts)."""
        return self.master.engine.samples

    def listens(self, event: str) -> bool:
        """True iff a handler listens to ``event`` or ``before_<event>``."""
        return event in self.listening or f"before_{event}" in self.listening

    def signature_states(self) -> dict[str, tuple[int, bytes]]:
        """Role → (samples, engine state bytes) of both transducers."""
        return {
            t.role: (t.engine.samples, t.engine.state_bytes()) for t in (self.master, self.emissary)
        }

    # -- one batch -------------------------------------------------------------------------------

    def clean(self, batch: Any) -> tuple[NDArray[Any], NDArray[np.complex128], int]:
        """(rows to log, the same rows as a complex128 (k, C) chunk, count of dropped rows).

        The one validation of a batch: the transducers get the chunk on their trusted path.
        Rows with NaN or inf are dropped (and counted by the caller).
        """
        try:
            x = np.asarray(batch)
            if x.dtype.kind not in "fciu":
                raise TypeError(f"dtype {x.dtype}")
            x = x.astype(np.complex128 if x.dtype.kind == "c" else np.float64, copy=False)
        except (TypeError, ValueError) as exc:
            raise InputError("samples", f"cannot be read as numbers: {exc}") from exc
        if x.ndim == 1 and self.channels > 1 and x.shape[0] == self.channels:
            x = x[None, :]
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise InputError("samples", f"need shape (k,) or (k, {self.channels}), got {x.shape}")
        finite = np.isfinite(x)
        good = finite[:, 0] if self.channels == 1 else np.all(finite, axis=1)
        bad = int(x.shape[0] - np.count_nonzero(good))
        if bad:
            x = x[good]
        chunk = x.astype(np.complex128, copy=False)
        return (x if self.channels > 1 else x[:, 0]), chunk, bad

    def refusal(self, chunk: NDArray[np.complex128]) -> str | None:
        """Why the engines would refuse ``chunk`` (finite values too large to ingest), or None."""
        try:
            for t in (self.master, self.emissary):
                t.engine.check_samples(chunk)
        except InputError as exc:
            return exc.message
        return None

    def ingest(self, batch: Any, *, now: float) -> Ingest:
        """Ingest one batch (shape (k,) or (k, C)) at wall time ``now``: a generator of effects.

        Raises ``InputError`` (before any effect) when the batch cannot be read. Rows with NaN
        or inf are dropped, counted and witnessed. A batch the engines refuse (finite values
        whose velocity terms would overflow) is rejected whole: counted, witnessed with the
        reason, kept out of the replay log; the engines keep their previous state.
        """
        x, chunk, bad = self.clean(batch)
        refused = self.refusal(chunk)
        if refused is not None:
            return self._reject(len(x) + bad, refused, now, [], [])
        return self._ingest(x, chunk, bad, now)

    def _reject(
        self,
        rows: int,
        reason: str,
        now: float,
        records: list[WitnessRecord],
        failures: list[Mapping[str, Any]],
    ) -> Ingest:
        """Reject a whole batch of ``rows`` rows: count, witness, commit without its samples."""
        self.counts["rejected"] += rows
        payload = {"rows": rows, "reason": reason}
        records.append(self.witnessing.witness_operation("input.rejected", payload, now=now))
        records.extend(self._failure_witnesses(failures, now))
        yield from self._commit(None, None, records, None, now)
        yield from self._after_commit(records)
        return IngestOutcome(decision=None, action=None, rejected=reason)

    def _ingest(
        self, x: NDArray[Any], chunk: NDArray[np.complex128], bad: int, now: float
    ) -> Ingest:
        records: list[WitnessRecord] = []
        failures: list[Mapping[str, Any]] = []
        if bad:
            self.counts["rejected"] += bad
            rejected = {"rows": bad}
            records.append(self.witnessing.witness_operation("input.rejected", rejected, now=now))
        if self._meta_due(now):
            report = yield VerifyRecent(window=self.settings.meta_window)
            records.append(self._meta_witness(report, now))
        t = self.master.engine.time_of(self.samples + len(x) - 1) if len(x) else 0.0
        payload = partial(_received, t, len(x))
        vetoed = yield from self._fire("signal.received", t, payload, failures)
        if vetoed or len(x) == 0:
            if vetoed:
                self.counts["vetoed"] += 1
                n_vetoed = {"n": len(x)}
                w = self.witnessing
                records.append(w.witness_operation("signal.vetoed", n_vetoed, now=now))
            records.extend(self._failure_witnesses(failures, now))
            if records:
                yield from self._commit(None, None, records, None, now)
            yield from self._after_commit(records)
            return IngestOutcome(decision=None, action=None)
        try:
            readings = ingest_pair(self.master, self.emissary, chunk)
        except InputError as exc:  # the engines' own check of the terms: neither changed
            return (yield from self._reject(len(x), exc.message, now, records, failures))
        decision, action = yield from self._decide(readings, failures)
        records.extend(self._batch_witnesses(readings, decision, action, len(x), now))
        records.extend(self._failure_witnesses(failures, now))
        yield from self._commit(x, decision, records, self._signatures_due(len(x), now), now)
        yield from self._after_commit(records)
        return IngestOutcome(decision=decision, action=action)

    def _fire(
        self,
        event: str,
        t: float,
        payload: Callable[[], dict[str, Any]],
        failures: list[Mapping[str, Any]],
    ) -> Generator[Effect, Any, bool]:
        """Fire ``event`` if a handler listens (payload built only then); True iff vetoed."""
        if not self.listens(event):
            return False
        outcome: HookOutcome = yield FireHook(event=event, time=t, payload=payload())
        failures.extend(outcome.failures)
        return outcome.vetoed

    def _decide(
        self, readings: tuple[Reading, Reading], failures: list[Mapping[str, Any]]
    ) -> Generator[Effect, Any, tuple[SyncDecision, ActionEvent | None]]:
        master, emissary = readings
        decision = self.sync.evaluate(
            master.resonance, emissary.resonance, now=master.resonance.time
        )
        action = None
        if decision.collapsed:
            phase, freq = self.emissary.extract()
            action = action_from(decision, phase=phase, frequency_hz=freq)
            fields_of = partial(_fields, action)
            if (yield from self._fire("collapse", decision.time, fields_of, failures)):
                self.counts["vetoed"] += 1
                decision, action = self.sync.veto(decision), None
        if decision.collapsed:
            self.counts["collapses"] += 1
            return decision, action
        self.counts["dissipations"] += 1
        t = decision.time
        payload = partial(decision_payload, decision)
        vetoed = yield from self._fire("dissipate", t, payload, failures)
        realign = decision.realign
        if not vetoed and realign is not None:
            realign_payload = partial(_realign_payload, realign)
            vetoed = yield from self._fire("realign", t, realign_payload, failures)
            self.counts["realigns"] += not vetoed
        return decision, action

    def _batch_witnesses(
        self,
        readings: tuple[Reading, Reading],
        decision: SyncDecision,
        action: ActionEvent | None,
        n: int,
        now: float,
    ) -> list[WitnessRecord]:
        w = self.witnessing
        out = [w.witness_operation("ingest", {"n": n, **decision_payload(decision)}, now=now)]
        for r in readings:
            if r.cycles:
                payload = {
                    "cycle": r.cycle,
                    "cycles": r.cycles,
                    "coherence": r.resonance.coherence,
                    "terms": r.resonance.terms,
                    "t": r.resonance.time,
                }
                out.append(w.witness_transducer(r.role, payload, now=now))
        if action is not None:
            out.append(w.witness_system("collapse", _fields(action), now=now))
        return out

    def _commit(
        self,
        x: NDArray[Any] | None,
        decision: SyncDecision | None,
        records: list[WitnessRecord],
        signatures: dict[str, tuple[int, bytes]] | None,
        now: float,
    ) -> Generator[Effect, Any, None]:
        d = decision
        master = self.master.engine.last
        emissary = self.emissary.engine.last
        commit = Commit(
            t=d.time if d else master.time,
            master=abs(d.master) ** 2 if d else master.coherence,
            emissary=abs(d.emissary) ** 2 if d else emissary.coherence,
            sync=d.coherence if d else 0.0,
            delta_phase=d.delta_phase if d else 0.0,
            phase=math.atan2(d.t_sync.imag, d.t_sync.real) if d else 0.0,
            records=tuple(records),
            head=self.chain.head(),
            samples=x,
            signatures=signatures,
            counters=dict(self.counts),
            wall=now,
        )
        try:
            yield commit
        except StorageError:
            self.chain.rollback()
            raise
        self.chain.commit()
        if signatures:
            self._logged = 0
        elif x is not None:
            self._logged += len(x)

    def _after_commit(self, records: list[WitnessRecord]) -> Generator[Effect, Any, None]:
        if not self.listens("witness"):
            return
        for record in records:
            failures: list[Mapping[str, Any]] = []
            yield from self._fire("witness", record.time, record.summary, failures)
            if failures:
                failed = self._failure_witnesses(failures, record.time)
                yield from self._commit(None, None, failed, None, record.time)

    # -- witnessing helpers ----------------------------------------------------------------------

    def _named(self, level: Level, kind: str, payload: dict[str, Any], now: float) -> WitnessRecord:
        """A driver's record through the layer's name for its level."""
        w = self.witnessing
        match level:
            case Level.MICRO:
                return w.witness_operation(kind, payload, now=now)
            case Level.MESO if isinstance(payload.get("transducer"), str):
                return w.witness_transducer(payload["transducer"], payload, now=now, kind=kind)
            case Level.MACRO:
                return w.witness_system(kind, payload, now=now)
            case Level.META:
                return w.witness_self(payload, now=now, kind=kind)
        return w.record(level, kind, payload, now=now)  # meso events of no transducer

    def witness(self, level: Level, kind: str, payload: dict[str, Any], now: float) -> Ingest:
        """Witness one record on its own (driver events such as a start): commit and hooks."""
        records = [self._named(level, kind, payload, now)]
        yield from self._commit(None, None, records, None, now)
        yield from self._after_commit(records)
        return IngestOutcome(decision=None, action=None)

    def _failure_witnesses(
        self, failures: list[Mapping[str, Any]], now: float
    ) -> list[WitnessRecord]:
        w = self.witnessing
        out = [w.witness_operation("hook.failed", dict(f), now=now) for f in failures]
        self.counts["hook_failures"] += len(failures)
        return out

    def _meta_due(self, now: float) -> bool:
        if self._last_meta is None:
            self._last_meta = now
            return False
        return now - self._last_meta >= self.settings.meta_interval

    def _meta_witness(self, report: VerifyReport, now: float) -> WitnessRecord:
        self._last_meta = now
        self.chain_ok = report.ok
        return self.witnessing.witness_self(report, now=now)

    def _signatures_due(self, n: int, now: float) -> dict[str, tuple[int, bytes]] | None:
        if self._last_signature is None:
            self._last_signature = now
        interval = self.settings.signature_interval
        if now - self._last_signature < interval and self._logged + n < self.settings.max_log:
            return None
        self._last_signature = now
        return self.signature_states()

    def logged_reset(self) -> None:
        """Signatures were stored outside a batch (at close): the replay log is empty."""
        self._logged = 0


def _received(t: float, n: int) -> dict[str, Any]:
    return {"t": t, "n": n}


def _fields(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` for a flat dataclass (scalar fields only), without deep copies."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _realign_payload(r: RealignRequest) -> dict[str, Any]:
    return _fields(r) | {"reason": r.reason.value}


def decision_payload(d: SyncDecision) -> dict[str, Any]:
    """The JSON payload of a decision (witness records and hook events)."""
    return {
        "t": d.time,
        "master": abs(d.master) ** 2,
        "emissary": abs(d.emissary) ** 2,
        "sync": d.coherence,
        "delta_phase": d.delta_phase,
        "outcome": d.outcome.value,
        "reason": d.reason.value if d.reason else None,
    }
