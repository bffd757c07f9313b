"""A full cell as a cluster member: a living :class:`Cell` plus its Cluster Phase Supervisor.

Rule: glue only. One identity per cell (DESIGN.md §5): the supervisor signs SSEP packets with
the key in the cell's data dir (the key that signs its witness records), and the roster is
made of the cells' public keys, so cells are opened first and supervisors built from them.

Each tick the cluster driver first calls :meth:`CellMember.advance`, which feeds the cell its
own stream up to the tick's time (in batches of ``memory.flush_interval`` stream seconds, so
witnessing and storage keep the cell's own cadence) and copies the state of the cell's last
Sync decision into the supervisor's SSEP field: T_sync (complex), Δφ = Δ_phase, coherence =
|T_sync|², κ = the coupling gain α, node energy = Σ energy of the cell's glyphs and glyph
digest = the digest of their set (:class:`~becomingone.runtime.cell_glyphs.CellGlyphs`). Then
the driver ticks the supervisor as for any member, and after the tick calls
:meth:`CellMember.after_tick`: the glyphs advance on the new Θ_local (runs started, finished
runs witnessed), and the supervisor's T_global reading goes through the cell's
:class:`~becomingone.sync.ClusterCollapseDetector` (I_c = the cell's Sync threshold) and a
crossing is a **cluster collapse**: the ``cluster.collapse`` hooks fire (a
``before_cluster.collapse`` veto is recorded, not obeyed: the reading happened) and a MACRO
witness record ``cluster.collapse`` goes on the cell's chain. Protocol decisions stay in
:mod:`becomingone.sync`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from numpy.typing import NDArray

from becomingone.config.schema import CellConfig
from becomingone.errors import InputError
from becomingone.events import HookEvent
from becomingone.runtime.cell import Cell, CellStatus
from becomingone.runtime.cell_glyphs import CellGlyphs
from becomingone.runtime.sources import synthetic_phase
from becomingone.sync.cps import CpsState, Outgoing, PhaseSupervisor
from becomingone.sync.layer import SyncDecision
from becomingone.sync.mesh import ClusterCollapse, ClusterCollapseDetector
from becomingone.sync.roster import KeyRoster
from becomingone.witnessing import Level

__all__ = [
    "CellMember",
    "CellTotals",
    "LivingMember",
    "build_cell_members",
    "cell_totals",
    "open_cells",
]

log = logging.getLogger("becomingone.cluster")

#: A stream as a pure function of (first sample index, count) → samples.
Stream = Callable[[int, int], NDArray[Any]]


@runtime_checkable
class LivingMember(Protocol):
    """A member with a life of its own between ticks (the driver awaits ``advance`` first)."""

    async def advance(self, now: float) -> None: ...

    async def after_tick(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class CellTotals:
    """What the full cells did during a cluster run."""

    cells: int
    samples: int
    collapses: int
    dissipations: int
    witnessed: int
    chains_verified: int
    cluster_collapses: int = 0

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {
            "cells": self.cells,
            "cluster_collapses": self.cluster_collapses,
            "samples": self.samples,
            "collapses": self.collapses,
            "dissipations": self.dissipations,
            "witnessed": self.witnessed,
            "chains_verified": self.chains_verified,
        }


class CollapseWitness:
    """One cell's cluster collapses: the edge detector on its supervisor's T_global, the hook
    and the MACRO witness record (shared by the in-process member and the node feeds)."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.detector = ClusterCollapseDetector(threshold=cell.sync.threshold)
        self.ticks = 0

    @property
    def fired(self) -> int:
        """Cluster collapses witnessed so far."""
        return self.detector.fired

    async def after_tick(self, supervisor: PhaseSupervisor, now: float) -> ClusterCollapse | None:
        """Witness a cluster collapse if this tick's T_global crossed I_c. A cell with peers
        needs at least one of them counted."""
        self.detector.min_peers = 1 if supervisor.stability.peers else 0
        event = self.detector.update(supervisor.mesh, tick=self.ticks)
        self.ticks += 1
        if event is None:
            return None
        payload = event.payload()
        result = await self.cell.hooks.fire(HookEvent.CLUSTER_COLLAPSE, now, payload)
        payload["vetoed"] = None if result.veto is None else result.veto.reason
        await self.cell.witness(Level.MACRO, HookEvent.CLUSTER_COLLAPSE.value, payload, now)
        for failure in result.failures:
            log.warning("hook %s on %s failed: %s", failure.hook, failure.event, failure.error)
            await self.cell.witness(Level.MICRO, "hook.failed", asdict(failure), now)
        return event


class CellMember:
    """A :class:`Cell` fed by ``stream`` whose phase lock is run by ``supervisor``.

    ``now`` given to :meth:`advance` is the cluster's time in seconds since the run started;
    the cell's stream time follows it (``now / dt`` samples have arrived by then).
    """

    def __init__(
        self,
        cell: Cell,
        supervisor: PhaseSupervisor,
        stream: Stream,
        *,
        wait_runs: bool = False,
    ) -> None:
        if supervisor.key.public_bytes != cell.key.public_bytes:
            raise InputError(
                "supervisor", f"{supervisor.node_id!r} does not sign with the cell's key"
            )
        self.cell = cell
        self.supervisor = supervisor
        self.stream = stream
        self.status: CellStatus = cell.status(None, None)
        self._batch = max(1, round(cell.config.memory.flush_interval / cell.dt))
        self._origin = cell.samples  # a resumed cell continues its stream from here
        self._fed = 0
        self.collapses = CollapseWitness(cell)
        self.glyphs = CellGlyphs(
            cell,
            supervisor.node_id,
            position=supervisor.theta,
            config=cell.config.glyphs,
            wait_runs=wait_runs,
            cycle=1.0 / supervisor.frequency if supervisor.frequency > 0 else 1.0,
        )

    @property
    def node_id(self) -> str:
        """The supervisor's node id."""
        return self.supervisor.node_id

    @property
    def theta(self) -> float:
        """Θ_local in cycles."""
        return self.supervisor.theta

    async def advance(self, now: float) -> None:
        """Ingest the samples that arrived up to ``now`` and refresh the SSEP field."""
        due = int(now / self.cell.dt) + 1
        while due - self._fed >= self._batch:
            start = self._origin + self._fed
            self.status = await self.cell.ingest(self.stream(start, self._batch), now=now)
            self._fed += self._batch
        decision = self.last_decision()
        t_sync = decision.t_sync
        if abs(t_sync) > 1.0:  # |T_sync| <= 1 up to rounding (Cauchy-Schwarz); pull it inside
            t_sync *= (1.0 - 1e-12) / abs(t_sync)
        self.supervisor.set_field(
            delta_phi=min(decision.delta_phase, 1.0),
            coherence=decision.coherence,
            t_sync=t_sync,
            kappa=self.supervisor.alpha,
            node_energy=self.glyphs.node_energy(),
            glyph_digest=self.glyphs.digest(),
        )

    def last_decision(self) -> SyncDecision:
        """The cell's last Sync decision, evaluated again from the engines' latest readings
        (the same values the cell decided on; warming up before any input)."""
        master, emissary = self.cell.master.engine.last, self.cell.emissary.engine.last
        return self.cell.sync.evaluate(master, emissary, now=master.time)

    def tick(self, now: float) -> list[Outgoing]:
        """The supervisor's tick."""
        return self.supervisor.tick(now)

    @property
    def cluster_collapses(self) -> int:
        """Cluster collapses this cell witnessed in this run."""
        return self.collapses.fired

    async def after_tick(self, now: float) -> ClusterCollapse | None:
        """Advance the glyphs to the new Θ_local, then witness a cluster collapse if this tick's
        T_global crossed I_c (``now``: the time given to :meth:`advance`)."""
        await self.glyphs.step(self.supervisor.theta, now)
        return await self.collapses.after_tick(self.supervisor, now)

    def receive(self, data: bytes, now: float) -> list[Outgoing]:
        """The supervisor's receive."""
        return self.supervisor.receive(data, now)

    def receive_many(self, batch: Sequence[bytes], now: float) -> list[Outgoing]:
        """The supervisor's batch receive (one call per tick for the driver)."""
        return self.supervisor.receive_many(batch, now)

    def snapshot(self) -> CpsState:
        """The supervisor's state."""
        return self.supervisor.snapshot()

    async def drain(self, now: float) -> None:
        """Wait for the glyph runs in progress and witness them (call before :meth:`close`)."""
        await self.glyphs.drain(now)

    def close(self) -> bool:
        """Verify the cell's chain, store final signatures and close; True iff it verified."""
        ok = self.cell.verify_chain().ok
        self.cell.close()
        return ok


def open_cells(node_ids: Sequence[str], base_dir: Path, config: CellConfig) -> list[Cell]:
    """One :class:`Cell` per node id in ``base_dir/<node id>`` (its key created on first
    start); if one cannot be opened, those already open are closed and the error raised."""
    cells: list[Cell] = []
    try:
        for node_id in node_ids:
            cells.append(Cell(config.model_copy(update={"name": node_id}), base_dir / node_id))
    except BaseException:
        for cell in cells:
            cell.close()
        raise
    return cells


def build_cell_members(
    supervisors: Sequence[PhaseSupervisor],
    base_dir: Path,
    config: CellConfig,
    *,
    seed: int = 0,
    epoch: int | None = None,
    wait_runs: bool = False,
) -> list[CellMember]:
    """One full cell per supervisor, each in ``base_dir/<node id>`` with its own stream.

    The cells are opened first; each supervisor is then rebuilt with the same settings and
    state but signing with its cell's key, over the roster of the cells' public keys, under
    boot ``epoch`` (default: each cell's :meth:`~becomingone.runtime.cell.Cell.boot_epoch`,
    persisted in its data dir, so a cell restarted on the same data dir is accepted by peers
    that heard it before, even if the wall clock stepped back).

    Every cell reads the synthetic rhythm (steady, then stalled) with its own jitter seed and
    its own offset into the rhythm, so cells collapse and dissipate at different times.
    ``wait_runs``: each tick awaits its glyph runs (virtual time; see
    :class:`~becomingone.runtime.cell_glyphs.CellGlyphs`).
    """
    cells = open_cells([s.node_id for s in supervisors], base_dir, config)
    try:
        rekeyed = _rekeyed(supervisors, cells, epoch)
    except BaseException:
        for cell in cells:
            cell.close()
        raise
    members = []
    for sup, cell in zip(rekeyed, cells, strict=True):
        cell_seed = int.from_bytes(hashlib.sha256(f"{seed}:{sup.node_id}".encode()).digest()[:4])
        offset = cell_seed % 600

        def stream(start: int, count: int, s: int = cell_seed, o: int = offset) -> NDArray[Any]:
            return synthetic_phase(o + start, count, dt=config.kairos.step, seed=s)

        members.append(CellMember(cell, sup, stream, wait_runs=wait_runs))
    return members


def _rekeyed(
    supervisors: Sequence[PhaseSupervisor], cells: Sequence[Cell], epoch: int | None
) -> list[PhaseSupervisor]:
    """The supervisors signing with their cells' keys, over the cells' roster, at ``epoch``."""
    pairs = list(zip(supervisors, cells, strict=True))
    roster = KeyRoster({s.node_id: c.key.public_bytes for s, c in pairs})
    out = []
    for sup, cell in pairs:
        boot = cell.boot_epoch() if epoch is None else epoch
        state = sup.state()
        if boot > state.epoch:
            state = state.rebooted(boot)
        out.append(
            PhaseSupervisor.restore(state, **{**sup.settings(), "key": cell.key, "keys": roster})
        )
    return out


def cell_totals(members: Sequence[CellMember], verified: Sequence[bool]) -> CellTotals:
    """Sum the cells' counts (``verified``: the result of each member's close())."""
    return CellTotals(
        cells=len(members),
        samples=sum(m.cell.samples for m in members),
        collapses=sum(m.status.collapses for m in members),
        dissipations=sum(m.status.dissipations for m in members),
        witnessed=sum(m.cell.chain.count for m in members),  # glyph and collapse records too
        chains_verified=sum(verified),
        cluster_collapses=sum(m.cluster_collapses for m in members),
    )
