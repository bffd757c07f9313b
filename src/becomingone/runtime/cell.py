"""One living cell (DESIGN.md §5): the asyncio driver of the sans-IO cell core.

Rule: the decisions live in :class:`becomingone.cell.CellCore` (no I/O); :class:`Cell` opens the
data dir, builds the core from config, resumes it, and performs the effects it yields — one
SQLite transaction per batch (with the source's read position), hooks, the meta self-check.
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
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from becomingone.cell import (
    COUNTERS,
    CellCore,
    Commit,
    CoreSettings,
    Effect,
    FireHook,
    HookOutcome,
    Ingest,
    IngestOutcome,
    VerifyRecent,
)
from becomingone.config.schema import CellConfig
from becomingone.core.stream import KairosState
from becomingone.errors import InputError, StorageError
from becomingone.events import BEFORE, HookEvent
from becomingone.memory.sqlite import SqliteProtocolState
from becomingone.memory.store import DB_NAME, Coherence, TemporalMemory
from becomingone.runtime.datadir import (
    DataDirLock,
    check_chain,
    open_identity,
    resume_point,
    verify_tail,
)
from becomingone.runtime.hooks import HookRegistry
from becomingone.runtime.sources import SourceCursor
from becomingone.sync.layer import ActionEvent, SyncDecision, SyncLayer
from becomingone.sync.ssep import next_epoch
from becomingone.transducers import EmissaryTransducer, MasterTransducer
from becomingone.witnessing import Level, VerifyReport, WitnessChain, WitnessRecord, verify

__all__ = ["Cell", "CellStatus", "default_data_dir", "run_cell"]

log = logging.getLogger("becomingone.cell")

#: The logger that mirrors stored witness records when ``logging.witness_logs`` is on.
witness_log = logging.getLogger("becomingone.witness")

#: Name of the persisted SSEP boot epoch in the data dir's protocol state.
EPOCH_STATE = "ssep.epoch"

#: Every hook name a handler can listen to: each event and its ``before_`` variant.
_HOOK_NAMES = tuple(n for e in HookEvent for n in (e.value, f"{BEFORE}{e.value}"))


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
    """The asyncio driver of one cell: a :class:`~becomingone.cell.CellCore` on a data dir.

    The core decides (transducers, Sync layer, witness records); this class owns the data dir
    (its writer lock, key and memory) and performs what the core asks. Opening a data dir that
    already holds a cell resumes it: engines from the newest temporal signature plus the replay
    log, the witness chain from its signed head, the counts. Use ``async with`` or call
    :meth:`aclose` (or :meth:`close` outside a loop).
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
        self.source: SourceCursor | None = None
        self.mirror_witnesses = config.logging.witness_logs
        self.lock = DataDirLock.acquire(self.data_dir)
        try:
            self.hooks = hooks if hooks is not None else HookRegistry.from_config(config.hooks)
            retention = config.memory.retention.to_retention()
            self.memory = TemporalMemory(self.data_dir / DB_NAME, retention)
        except BaseException:
            self.lock.release()
            raise
        try:
            self.core = self._open(config, channels, accept_broken_chain)
        except BaseException:
            self.memory.close()
            self.lock.release()
            raise

    def _open(self, config: CellConfig, channels: int | None, accept_broken: bool) -> CellCore:
        self.key = open_identity(self.data_dir, self.memory, config.security)
        master = MasterTransducer.from_config(config, channels=channels)
        emissary = EmissaryTransducer.from_config(config, channels=channels)
        broken = check_chain(
            self.memory,
            self.key.public_bytes,
            window=config.witnessing.meta_window,
            accept_broken=accept_broken,
        )
        count, last_hash = resume_point(self.memory, broken)
        self._restore(master, emissary)
        windows = config.memory.replay_windows  # replay log bound, in Master windows
        core = CellCore(
            master=master,
            emissary=emissary,
            sync=SyncLayer(
                threshold=config.kairos.threshold, phase_threshold=config.sync.phase_threshold
            ),
            chain=WitnessChain(self.key, count=count, last_hash=last_hash),
            settings=CoreSettings(
                meta_interval=config.witnessing.meta_interval,
                meta_window=config.witnessing.meta_window,
                signature_interval=config.memory.signature_interval,
                max_log=windows * max(master.engine.window_terms, 1),
            ),
            counts=self.memory.counters(),
        )
        if broken is not None:
            self._record_break(core, broken)
        return core

    def _restore(self, master: MasterTransducer, emissary: EmissaryTransducer) -> None:
        """Engines from the newest signatures, then the replay log after them."""
        signatures = self.memory.latest_signatures()
        if signatures:
            if set(signatures) != {"master", "emissary"}:
                raise StorageError(
                    f"{self.memory.path}: incomplete signatures {sorted(signatures)}"
                )
            if signatures["master"][0] != signatures["emissary"][0]:
                raise StorageError(f"{self.memory.path}: master and emissary signatures disagree")
            master.restore(KairosState.from_bytes(signatures["master"][1]))
            emissary.restore(KairosState.from_bytes(signatures["emissary"][1]))
        for batch in self.memory.replay_log():
            master.ingest(batch)
            emissary.ingest(batch)

    def _record_break(self, core: CellCore, report: VerifyReport) -> None:
        """Witness an accepted break as the first record of this run (META chain.break_accepted).

        No hook listens yet (the core's ``listening`` is empty), so the core yields one commit.
        """
        payload = {
            "first_bad": report.first_bad,
            "reason": report.reason,
            "checked": report.checked,
        }
        steps = core.witness(Level.META, "chain.break_accepted", payload, time.time())
        commit = next(steps)
        assert isinstance(commit, Commit)
        try:
            self._store(commit)
        except StorageError as exc:
            steps.throw(exc)
        with contextlib.suppress(StopIteration):
            steps.send(None)
        core.chain_ok = False

    # -- the parts, as the core holds them -------------------------------------------------------

    @property
    def master(self) -> MasterTransducer:
        """The slow transducer."""
        return self.core.master

    @property
    def emissary(self) -> EmissaryTransducer:
        """The fast transducer."""
        return self.core.emissary

    @property
    def sync(self) -> SyncLayer:
        """The Sync layer."""
        return self.core.sync

    @property
    def chain(self) -> WitnessChain:
        """The witness chain (its head is the stored head plus pending records)."""
        return self.core.chain

    @property
    def counts(self) -> dict[str, int]:
        """Running counts (collapses, dissipations, realigns, rejected, vetoed, hook failures)."""
        return self.core.counts

    @property
    def chain_ok(self) -> bool | None:
        """The result of the newest self-check (None before the first)."""
        return self.core.chain_ok

    @property
    def channels(self) -> int:
        """Channels per sample."""
        return self.core.channels

    @property
    def samples(self) -> int:
        """Samples ingested over the cell's whole life (across restarts)."""
        return self.core.samples

    @property
    def dt(self) -> float:
        """Sample step in seconds."""
        return self.master.engine.dt

    # -- performing the core's effects -----------------------------------------------------------

    async def ingest(self, batch: Any, *, now: float) -> CellStatus:
        """Ingest one batch (shape (k,) or (k, C)) at wall time ``now``; commit; fire hooks.

        Rows with NaN or inf are dropped, counted and witnessed, never fed to the engines. A
        batch the engines refuse (finite values whose velocity terms would overflow) is
        rejected whole: counted, witnessed with the reason, kept out of the replay log; the
        engines keep their previous state.
        """
        self.core.listening = self._listening()
        outcome = await self._drive(self.core.ingest(batch, now=now))
        if outcome.rejected is not None:
            log.warning("batch rejected: %s", outcome.rejected)
        return self.status(outcome.decision, outcome.action)

    async def witness(self, level: Level, kind: str, payload: dict[str, Any], now: float) -> None:
        """Witness a driver event on its own (committed, then the ``witness`` hooks)."""
        self.core.listening = self._listening()
        await self._drive(self.core.witness(level, kind, payload, now))

    def _listening(self) -> frozenset[str]:
        return frozenset(name for name in _HOOK_NAMES if self.hooks.has(name))

    async def _drive(self, steps: Ingest) -> IngestOutcome:
        """Run the core's generator to its end, performing each effect it yields."""
        reply: Any = None
        error: StorageError | None = None
        while True:
            try:
                effect = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                outcome: IngestOutcome = done.value
                return outcome
            reply, error = None, None
            try:
                reply = await self._perform(effect)
            except StorageError as exc:
                error = exc

    async def _perform(self, effect: Effect) -> Any:
        match effect:
            case Commit():
                self._store(effect)
                return None
            case FireHook():
                result = await self.hooks.fire(effect.event, effect.time, effect.payload)
                for f in result.failures:
                    log.warning("hook %s on %s failed: %s", f.hook, f.event, f.error)
                failures = tuple(asdict(f) for f in result.failures)
                return HookOutcome(vetoed=result.veto is not None, failures=failures)
            case VerifyRecent():
                report = self.verify_recent(effect.window)
                if not report.ok:
                    log.error("witness chain failed self-verification: %s", report)
                return report

    def _store(self, c: Commit) -> None:
        """One transaction: the batch, its records and head, counters and the source position."""
        coherence = Coherence(
            master=c.master, emissary=c.emissary, sync=c.sync, delta_phase=c.delta_phase
        )
        self.memory.snapshot(
            c.t,
            coherence,
            c.phase,
            c.records,
            head=c.head,
            samples=c.samples,
            signatures=c.signatures,
            counters=c.counters,
            wall=c.wall,
            source=None if self.source is None else self.source.stored(),
        )
        if self.mirror_witnesses:
            self._mirror(c.records)

    def _mirror(self, records: tuple[WitnessRecord, ...]) -> None:
        """Log each stored record (``logging.witness_logs``): seq, level, kind, hash prefix."""
        name = self.config.name
        for r in records:
            witness_log.info(
                "witness %d %s %s %s",
                r.seq,
                r.level,
                r.kind,
                r.hash[:16],
                extra={
                    "event": "witness",
                    "cell": name,
                    "seq": r.seq,
                    "witness_level": r.level,
                    "kind": r.kind,
                    "hash": r.hash[:16],
                },
            )

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
            **{k: self.counts[k] for k in COUNTERS},
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

    def boot_epoch(self, now_ms: int | None = None) -> int:
        """A new SSEP boot epoch for this identity, persisted before it is used.

        :func:`~becomingone.sync.ssep.next_epoch` of the epoch the data dir stored at the last
        boot and the wall clock (``now_ms``, default now), so epochs strictly increase across
        restarts even when the clock steps back; stored in the data dir's protocol state
        (``ssep.epoch``, 8 bytes big-endian) before any packet carries it.
        """
        now = int(time.time() * 1000) if now_ms is None else now_ms
        store = SqliteProtocolState(self.data_dir / DB_NAME)
        try:
            raw = store.get(EPOCH_STATE)
            previous = None if raw is None else int.from_bytes(raw, "big")
            epoch = next_epoch(previous, now)
            store.put(EPOCH_STATE, epoch.to_bytes(8, "big"))
        finally:
            store.close()
        return epoch

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Store final engine signatures (so a restart needs no replay), close the file and
        release the data-dir lock."""
        try:
            if self.samples:
                self.memory.checkpoint(self.master.engine.last.time, self.core.signature_states())
                self.core.logged_reset()
        finally:
            try:
                self.memory.close()
            finally:
                self.lock.release()

    async def aclose(self) -> None:
        """:meth:`close`, for ``async with`` and asyncio code."""
        self.close()

    async def __aenter__(self) -> Cell:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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
