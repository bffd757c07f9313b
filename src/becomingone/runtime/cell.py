"""One living cell (DESIGN.md §5) and its asyncio driver.

Rule: :class:`Cell` wires the sans-IO parts — transducers, Sync layer, witness chain — to the
temporal memory and the hooks; :meth:`Cell.ingest` handles one batch and commits it in one
transaction. Cadence (documented in docs/cell.md): one micro witness per ingest batch (not per
sample), one meso witness per transducer per batch in which an integration cycle completed, one
macro witness per collapse, one meta witness every ``witnessing.meta_interval`` wall seconds.
Opening a data dir is guarded (docs/cell.md, Data safety): the writer lock first, then the key
checked against ``node.pub`` (never re-created beside an existing chain), then the signed head
and the resumed tail verified — a broken chain is extended only when the caller accepts it, and
then the break is the first new record. :func:`run_cell` is the thin loop that pulls batches
from a source and reports status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.config.schema import CellConfig
from becomingone.core.stream import KairosState
from becomingone.errors import InputError, StorageError
from becomingone.memory.store import DB_NAME, Coherence, TemporalMemory
from becomingone.runtime.datadir import (
    DataDirLock,
    check_chain,
    open_identity,
    resume_point,
    verify_tail,
)
from becomingone.runtime.hooks import HookFailure, HookRegistry
from becomingone.runtime.sources import SourceCursor
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
    WitnessRecord,
    verify,
)

__all__ = ["Cell", "CellStatus", "default_data_dir", "run_cell"]

log = logging.getLogger("becomingone.cell")

_COUNTERS = ("collapses", "dissipations", "realigns", "rejected", "vetoed", "hook_failures")


def default_data_dir() -> Path:
    """``~/.becomingone`` (the data dir when neither config nor ``--data-dir`` names one)."""
    return Path.home() / ".becomingone"


@dataclass(frozen=True, slots=True, kw_only=True)
class CellStatus:
    """The cell after a batch: stream time, the three |T|², Δ_phase and running counts."""

    t: float
    samples: int
    master: float
    emissary: float
    sync: float
    delta_phase: float
    outcome: str
    collapses: int
    dissipations: int
    realigns: int
    witnessed: int
    rejected: int
    vetoed: int
    hook_failures: int
    chain_ok: bool | None
    action: ActionEvent | None = None

    def as_json(self) -> dict[str, Any]:
        """A JSON-able dict (the ``--json`` line)."""
        out = asdict(self)
        out["action"] = asdict(self.action) if self.action else None
        return out


class Cell:
    """Transducers + Sync layer + witnessing + temporal memory + hooks, on one data dir.

    Opening a data dir that already holds a cell resumes it: engines from the newest temporal
    signature plus the replay log, the witness chain from its signed head, the counts.
    """

    def __init__(
        self,
        config: CellConfig,
        data_dir: Path,
        *,
        hooks: HookRegistry | None = None,
        channels: int | None = None,
        accept_broken_chain: bool = False,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir).expanduser()
        self.lock = DataDirLock.acquire(self.data_dir)
        try:
            self.hooks = hooks if hooks is not None else HookRegistry.from_config(config.hooks)
            self.memory = TemporalMemory(
                self.data_dir / DB_NAME, config.memory.retention.to_retention()
            )
        except BaseException:
            self.lock.release()
            raise
        try:
            self._open(config, channels, accept_broken_chain)
        except BaseException:
            self.memory.close()
            self.lock.release()
            raise

    def _open(self, config: CellConfig, channels: int | None, accept_broken: bool) -> None:
        self.key = open_identity(self.data_dir, self.memory, config.security)
        self.master = MasterTransducer.from_config(config, channels=channels)
        self.emissary = EmissaryTransducer.from_config(config, channels=channels)
        self.sync = SyncLayer(
            threshold=config.kairos.threshold, phase_threshold=config.sync.phase_threshold
        )
        self.counts = dict.fromkeys(_COUNTERS, 0)
        self.chain_ok: bool | None = None
        self.source: SourceCursor | None = None
        self._last_signature: float | None = None
        self._last_meta: float | None = None
        self._logged = 0
        windows = config.memory.replay_windows  # replay log bound, in Master windows
        self._max_log = windows * max(self.master.engine.window_terms, 1)
        broken = check_chain(
            self.memory,
            self.key.public_bytes,
            window=config.witnessing.meta_window,
            accept_broken=accept_broken,
        )
        self.chain = self._resume(broken)
        if broken is not None:
            self._record_break(broken)

    # -- resume ----------------------------------------------------------------------------------

    def _resume(self, broken: VerifyReport | None) -> WitnessChain:
        count, last_hash = resume_point(self.memory, broken)
        chain = WitnessChain(self.key, count=count, last_hash=last_hash)
        self.counts.update({k: v for k, v in self.memory.counters().items() if k in self.counts})
        signatures = self.memory.latest_signatures()
        if signatures:
            self._restore(signatures)
        for batch in self.memory.replay_log():
            self.master.ingest(batch)
            self.emissary.ingest(batch)
        return chain

    def _record_break(self, report: VerifyReport) -> None:
        """Witness an accepted break as the first record of this run (META chain.break_accepted)."""
        payload = {
            "first_bad": report.first_bad,
            "reason": report.reason,
            "checked": report.checked,
        }
        now = time.time()
        record = self._witness(Level.META, "chain.break_accepted", payload, now)
        self._commit(None, None, [record], None, now)
        self.chain_ok = False

    def _restore(self, signatures: dict[str, tuple[int, bytes]]) -> None:
        if set(signatures) != {"master", "emissary"}:
            raise StorageError(f"{self.memory.path}: incomplete signatures {sorted(signatures)}")
        if signatures["master"][0] != signatures["emissary"][0]:
            raise StorageError(f"{self.memory.path}: master and emissary signatures disagree")
        self.master.restore(KairosState.from_bytes(signatures["master"][1]))
        self.emissary.restore(KairosState.from_bytes(signatures["emissary"][1]))

    @property
    def channels(self) -> int:
        """Channels per sample."""
        return self.master.engine.channels

    @property
    def samples(self) -> int:
        """Samples ingested over the cell's whole life (across restarts)."""
        return self.master.engine.samples

    @property
    def dt(self) -> float:
        """Sample step in seconds."""
        return self.master.engine.dt

    # -- one batch -------------------------------------------------------------------------------

    def _clean(self, batch: Any) -> tuple[NDArray[Any], NDArray[np.complex128], int]:
        """(rows to log, the same rows as a complex128 (k, C) chunk, count of dropped rows).

        The one validation of a batch: the transducers get the chunk on their trusted path.
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

    def _refusal(self, chunk: NDArray[np.complex128]) -> str | None:
        """Why the engines would refuse ``chunk`` (finite values too large to ingest), or None."""
        try:
            for t in (self.master, self.emissary):
                t.engine.check_samples(chunk)
        except InputError as exc:
            return exc.message
        return None

    async def ingest(self, batch: Any, *, now: float) -> CellStatus:
        """Ingest one batch (shape (k,) or (k, C)) at wall time ``now``; commit; fire hooks.

        Rows with NaN or inf are dropped, counted and witnessed, never fed to the engines. A
        batch the engines refuse (finite values whose velocity terms would overflow) is
        rejected whole: counted, witnessed with the reason, kept out of the replay log; the
        engines keep their previous state.
        """
        x, chunk, bad = self._clean(batch)
        records: list[WitnessRecord] = []
        failures: list[HookFailure] = []
        refused = self._refusal(chunk)
        if refused is not None:
            return await self._reject(len(x) + bad, refused, records, failures, now)
        if bad:
            self.counts["rejected"] += bad
            records.append(self._witness(Level.MICRO, "input.rejected", {"rows": bad}, now))
        if self._meta_due(now):
            records.append(self._meta_witness(now))
        t = self.master.engine.time_of(self.samples + len(x) - 1) if len(x) else 0.0
        veto = await self._fire("signal.received", t, lambda: {"t": t, "n": len(x)}, failures)
        if veto or len(x) == 0:
            return await self._skip(x, veto, records, failures, now)
        try:
            readings = ingest_pair(self.master, self.emissary, chunk)
        except InputError as exc:  # the engines' own check of the terms: neither changed
            return await self._reject(len(x), exc.message, records, failures, now)
        decision, action = await self._decide(readings, failures)
        records.extend(self._batch_witnesses(readings, decision, action, len(x), now))
        return await self._finish(x, decision, action, records, failures, now)

    async def _reject(
        self,
        rows: int,
        reason: str,
        records: list[WitnessRecord],
        failures: list[HookFailure],
        now: float,
    ) -> CellStatus:
        """Reject a whole batch of ``rows`` rows: count, witness, commit without its samples."""
        log.warning("batch of %d rows rejected: %s", rows, reason)
        self.counts["rejected"] += rows
        payload = {"rows": rows, "reason": reason}
        records.append(self._witness(Level.MICRO, "input.rejected", payload, now))
        return await self._skip(np.zeros(0), False, records, failures, now)

    async def _fire(
        self,
        event: str,
        t: float,
        payload: Callable[[], dict[str, Any]],
        failures: list[HookFailure],
    ) -> bool:
        """Fire ``event`` if any handler listens (payload built only then); True iff vetoed."""
        if not (self.hooks.has(event) or self.hooks.has(f"before_{event}")):
            return False
        result = await self.hooks.fire(event, t, payload())
        failures.extend(result.failures)
        return result.veto is not None

    async def _skip(
        self,
        x: NDArray[Any],
        vetoed: bool,
        records: list[WitnessRecord],
        failures: list[HookFailure],
        now: float,
    ) -> CellStatus:
        if vetoed:
            self.counts["vetoed"] += 1
            records.append(self._witness(Level.MICRO, "signal.vetoed", {"n": len(x)}, now))
        records.extend(self._failure_witnesses(failures, now))
        if records:
            self._commit(None, None, records, None, now)
        await self._after_commit(records)
        return self.status(None, None)

    async def _decide(
        self, readings: tuple[Reading, Reading], failures: list[HookFailure]
    ) -> tuple[SyncDecision, ActionEvent | None]:
        master, emissary = readings
        decision = self.sync.evaluate(
            master.resonance, emissary.resonance, now=master.resonance.time
        )
        action = None
        if decision.collapsed:
            phase, freq = self.emissary.extract()
            action = action_from(decision, phase=phase, frequency_hz=freq)
            if await self._fire("collapse", decision.time, lambda: _fields(action), failures):
                self.counts["vetoed"] += 1
                decision, action = self.sync.veto(decision), None
        if decision.collapsed:
            self.counts["collapses"] += 1
            return decision, action
        self.counts["dissipations"] += 1
        t = decision.time
        vetoed = await self._fire("dissipate", t, lambda: _decision_payload(decision), failures)
        realign = decision.realign
        if not vetoed and realign is not None:
            vetoed = await self._fire("realign", t, partial(_realign_payload, realign), failures)
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
        out = [self._witness(Level.MICRO, "ingest", {"n": n, **_decision_payload(decision)}, now)]
        for r in readings:
            if r.cycles:
                payload = {
                    "transducer": r.role,
                    "cycle": r.cycle,
                    "cycles": r.cycles,
                    "coherence": r.resonance.coherence,
                    "terms": r.resonance.terms,
                    "t": r.resonance.time,
                }
                out.append(self._witness(Level.MESO, "cycle", payload, now))
        if action is not None:
            out.append(self._witness(Level.MACRO, "collapse", _fields(action), now))
        return out

    async def _finish(
        self,
        x: NDArray[Any],
        decision: SyncDecision,
        action: ActionEvent | None,
        records: list[WitnessRecord],
        failures: list[HookFailure],
        now: float,
    ) -> CellStatus:
        records.extend(self._failure_witnesses(failures, now))
        self._commit(x, decision, records, self._signatures_due(len(x), now), now)
        await self._after_commit(records)
        return self.status(decision, action)

    def _commit(
        self,
        x: NDArray[Any] | None,
        decision: SyncDecision | None,
        records: list[WitnessRecord],
        signatures: dict[str, tuple[int, bytes]] | None,
        now: float,
    ) -> None:
        d = decision
        coherence = Coherence(
            master=abs(d.master) ** 2 if d else self.master.engine.last.coherence,
            emissary=abs(d.emissary) ** 2 if d else self.emissary.engine.last.coherence,
            sync=d.coherence if d else 0.0,
            delta_phase=d.delta_phase if d else 0.0,
        )
        t = d.time if d else self.master.engine.last.time
        phase = math.atan2(d.t_sync.imag, d.t_sync.real) if d else 0.0
        try:
            self.memory.snapshot(
                t,
                coherence,
                phase,
                records,
                head=self.chain.head(),
                samples=x,
                signatures=signatures,
                counters=self.counts,
                wall=now,
                source=None if self.source is None else self.source.stored(),
            )
        except StorageError:
            self.chain.rollback()
            raise
        self.chain.commit()
        if signatures:
            self._logged = 0
        elif x is not None:
            self._logged += len(x)

    async def _after_commit(self, records: list[WitnessRecord]) -> None:
        if not self.hooks.has("witness") and not self.hooks.has("before_witness"):
            return
        for record in records:
            result = await self.hooks.fire("witness", record.time, record.summary())
            if result.failures:
                failed = self._failure_witnesses(list(result.failures), record.time)
                self._commit(None, None, failed, None, record.time)

    # -- witnessing helpers ----------------------------------------------------------------------

    def _witness(
        self, level: Level, kind: str, payload: dict[str, Any], now: float
    ) -> WitnessRecord:
        return self.chain.append(level, kind, payload, now=now)

    def _failure_witnesses(self, failures: list[HookFailure], now: float) -> list[WitnessRecord]:
        out = []
        for f in failures:
            log.warning("hook %s on %s failed: %s", f.hook, f.event, f.error)
            out.append(self._witness(Level.MICRO, "hook.failed", asdict(f), now))
        self.counts["hook_failures"] += len(failures)
        return out

    def _meta_due(self, now: float) -> bool:
        if self._last_meta is None:
            self._last_meta = now
            return False
        return now - self._last_meta >= self.config.witnessing.meta_interval

    def _meta_witness(self, now: float) -> WitnessRecord:
        self._last_meta = now
        report = self.verify_recent(self.config.witnessing.meta_window)
        self.chain_ok = report.ok
        if not report.ok:
            log.error("witness chain failed self-verification: %s", report)
        payload = {
            "checked": report.checked,
            "ok": report.ok,
            "first_bad": report.first_bad,
            "reason": report.reason,
        }
        return self._witness(Level.META, "verify", payload, now)

    def _signatures_due(self, n: int, now: float) -> dict[str, tuple[int, bytes]] | None:
        if self._last_signature is None:
            self._last_signature = now
        interval = self.config.memory.signature_interval
        if now - self._last_signature < interval and self._logged + n < self._max_log:
            return None
        self._last_signature = now
        return self._signature_states()

    def _signature_states(self) -> dict[str, tuple[int, bytes]]:
        return {
            t.role: (t.engine.samples, t.engine.state_bytes()) for t in (self.master, self.emissary)
        }

    # -- reading ---------------------------------------------------------------------------------

    def verify_recent(self, window: int) -> VerifyReport:
        """Verify the newest ``window`` stored records (linked to the record before them)."""
        return verify_tail(self.memory, self.key.public_bytes, window)

    def verify_chain(self) -> VerifyReport:
        """Verify the whole stored chain against the signed head."""
        return verify(self.memory.witnesses(), self.key.public_bytes, head=self.memory.chain_head())

    def status(self, decision: SyncDecision | None, action: ActionEvent | None) -> CellStatus:
        """The current status (``decision`` None: no evaluation in this batch)."""
        d = decision
        return CellStatus(
            t=d.time if d else self.master.engine.last.time,
            samples=self.samples,
            master=abs(d.master) ** 2 if d else self.master.engine.last.coherence,
            emissary=abs(d.emissary) ** 2 if d else self.emissary.engine.last.coherence,
            sync=d.coherence if d else 0.0,
            delta_phase=d.delta_phase if d else 0.0,
            outcome=d.outcome.value if d else "none",
            witnessed=self.chain.count,
            chain_ok=self.chain_ok,
            action=action,
            **{k: self.counts[k] for k in _COUNTERS},
        )

    def track(self, cursor: SourceCursor | None) -> None:
        """Store ``cursor``'s position with every batch from now on (see ``sources``).

        The source advances the cursor as it yields a batch and the cell commits that batch
        before it asks for the next, so the stored position is always the end of the last
        stored batch, in the same transaction.
        """
        self.source = cursor

    def source_position(self, key: str) -> dict[str, Any] | None:
        """The stored read position of source ``key`` (None: never read by this cell)."""
        return self.memory.source_position(key)

    def close(self) -> None:
        """Store final engine signatures (so a restart needs no replay), close the file and
        release the data-dir lock."""
        try:
            if self.samples:
                self.memory.checkpoint(self.master.engine.last.time, self._signature_states())
        finally:
            try:
                self.memory.close()
            finally:
                self.lock.release()


def _fields(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` for a flat dataclass (scalar fields only), without deep copies."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _realign_payload(r: RealignRequest) -> dict[str, Any]:
    return _fields(r) | {"reason": r.reason.value}


def _decision_payload(d: SyncDecision) -> dict[str, Any]:
    return {
        "t": d.time,
        "master": abs(d.master) ** 2,
        "emissary": abs(d.emissary) ** 2,
        "sync": d.coherence,
        "delta_phase": d.delta_phase,
        "outcome": d.outcome.value,
        "reason": d.reason.value if d.reason else None,
    }


async def run_cell(
    cell: Cell,
    source: AsyncIterator[NDArray[Any]],
    *,
    stop: asyncio.Event,
    duration: float | None = None,
    report: Callable[[CellStatus], None] | None = None,
    report_every: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> CellStatus:
    """Feed ``source``'s batches to ``cell`` until the source ends, ``stop`` is set or
    ``duration`` wall seconds pass; call ``report`` about once per ``report_every`` seconds.

    A batch with bad input is counted and skipped (the cell goes on). Returns the last status.
    """
    started = clock()
    deadline = None if duration is None else started + duration
    next_report = started + report_every
    status = cell.status(None, None)
    async for batch in _until(source, stop, deadline, clock):
        now = clock()
        try:
            status = await cell.ingest(batch, now=now)
        except InputError as exc:
            cell.counts["rejected"] += 1
            log.warning("batch rejected: %s", exc)
        if report is not None and now >= next_report:
            next_report = max(next_report + report_every, now)
            report(status)
    return status


async def _until(
    source: AsyncIterator[NDArray[Any]],
    stop: asyncio.Event,
    deadline: float | None,
    clock: Callable[[], float],
) -> AsyncIterator[NDArray[Any]]:
    """Batches of ``source`` until it ends, ``stop`` is set or the ``deadline`` passes."""
    waiter = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            left = None if deadline is None else deadline - clock()
            if left is not None and left <= 0:
                break
            nxt = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait(
                {nxt, waiter}, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if nxt not in done:
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                break
            try:
                batch = nxt.result()
            except StopAsyncIteration:
                break
            yield batch
    finally:
        waiter.cancel()
