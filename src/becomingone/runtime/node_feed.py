"""What a node process's engine reads (``becomingone node --source``) and what its packets say.

Rule: glue only, like :mod:`becomingone.runtime.cell_member`. A :class:`FedMember` pumps a
stream of batches into its engine in a task of its own, concurrently with the node's tick
loop, and each tick copies the engine's latest reading into its supervisor's SSEP field:

- a full node (:class:`FullFeed`): the batches go into its :class:`~becomingone.runtime.Cell`
  (Master + Emissary + Sync, witnessed and stored with the source's read position, so a file
  source resumes where the data dir stopped reading it); the field is the cell's last Sync
  decision: T_sync, Δφ = Δ_phase, coherence = |T_sync|².
- a light node (:class:`LightFeed`, DESIGN.md §10: Emissary + CPS): the batches go into an
  Emissary alone (in memory; no Master, no witness records); the field is Emissary-only:
  T_sync = T_emissary, coherence = |T_emissary|², Δφ = 0 (there is no Master to differ from).

File sources (``csv:``, ``text:``) are played in real time, one sample per ``kairos.dt`` of
wall time from the node's start, so a recorded stream moves with the cluster's clock;
``synthetic`` and ``stdin`` pace themselves. A batch the engine refuses (bad input) is counted
and skipped; a storage error ends the node. When the source ends, the engine keeps its last
reading and the node stays in the cluster.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from becomingone.errors import InputError
from becomingone.runtime.cell import Cell
from becomingone.runtime.cell_member import CellMember, CollapseWitness, Stream
from becomingone.runtime.sources import Source, synthetic_phase
from becomingone.sync.cps import PhaseSupervisor
from becomingone.sync.topology import Plan, Topology
from becomingone.transducers import EmissaryTransducer

__all__ = ["FedMember", "FullFeed", "LightFeed", "node_member", "node_stream", "paced"]

log = logging.getLogger("becomingone.node")


async def paced(
    stream: Stream, *, dt: float, batch: int, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[NDArray[Any]]:
    """Batches of a pure-function ``stream`` (first index, count → samples) in real time."""
    began, sent = clock(), 0
    while True:
        await asyncio.sleep(max(0.0, began + (sent + batch) * dt - clock()))
        yield stream(sent, batch)
        sent += batch


class FedMember(abc.ABC):
    """An engine fed by ``batches`` in a task of its own; the supervisor's field follows it.

    ``dt`` paces the batches in real time when ``pace`` is set (file sources). ``samples``
    counts the samples fed, ``rejected`` the batches refused, ``ended`` turns True when the
    source has no more batches.
    """

    def __init__(
        self,
        supervisor: PhaseSupervisor,
        batches: AsyncIterator[NDArray[Any]],
        *,
        dt: float,
        pace: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.supervisor = supervisor
        self.batches = batches
        self.dt = dt
        self.pace = pace
        self.clock = clock
        self.samples = 0
        self.rejected = 0
        self.ended = False
        self._task: asyncio.Task[None] | None = None
        self._ingesting: asyncio.Future[None] | None = None
        #: (supervisor, reading) last handed to set_field: a tick between two batches skips it
        self._set: tuple[object, ...] | None = None

    @abc.abstractmethod
    async def ingest(self, batch: NDArray[Any], now: float) -> None:
        """Feed one batch to the engine (``now``: the node's seconds since start)."""

    @abc.abstractmethod
    def field(self) -> tuple[complex, float, float]:
        """(T_sync, coherence, Δφ) of the engine's latest reading."""

    @property
    def cluster_collapses(self) -> int:
        """Cluster collapses witnessed (only a full cell witnesses them)."""
        return 0

    async def after_tick(self, now: float) -> None:
        """After the supervisor's tick: nothing, unless the engine has a chain to witness on."""
        return None

    async def _pump(self) -> None:
        began = self.clock()
        async for batch in self.batches:
            rows = int(np.shape(batch)[0]) if np.ndim(batch) else 1
            if self.pace:
                await asyncio.sleep(
                    max(0.0, began + (self.samples + rows) * self.dt - self.clock())
                )
            # shielded: stopping the pump never cuts a batch in half (aclose waits for it)
            self._ingesting = asyncio.ensure_future(self.ingest(batch, self.clock() - began))
            try:
                await asyncio.shield(self._ingesting)
            except InputError as exc:
                self.rejected += 1
                log.warning("batch rejected: %s", exc)
            self.samples += rows
        self.ended = True

    async def advance(self, now: float) -> None:
        """Start the pump on the first call; re-raise what ended it; refresh the field."""
        if self._task is None:
            self._task = asyncio.create_task(self._pump())
        elif self._task.done() and not self._task.cancelled():
            self._task.result()  # a storage error ends the node here
        reading = (self.supervisor, *self.field())
        if reading == self._set:  # the engine has not read a batch since: the field stands
            return
        sup, t_sync, coherence, delta = reading
        if abs(t_sync) > 1.0:  # |T| <= 1 up to rounding (Cauchy-Schwarz); pull it inside
            t_sync *= (1.0 - 1e-12) / abs(t_sync)
        sup.set_field(
            delta_phi=min(delta, 1.0),
            coherence=min(coherence, 1.0),
            t_sync=t_sync,
            kappa=sup.alpha,
            node_energy=0.0,
        )
        self._set = reading

    async def aclose(self) -> None:
        """Stop the pump (after the batch being ingested, if any) and close the source."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._ingesting is not None:  # the batch being ingested completes first
            with contextlib.suppress(Exception):
                await self._ingesting
        aclose = getattr(self.batches, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class FullFeed(FedMember):
    """A full cell (Master + Emissary + Sync) fed from its source."""

    def __init__(
        self,
        cell: Cell,
        supervisor: PhaseSupervisor,
        batches: AsyncIterator[NDArray[Any]],
        *,
        pace: bool,
    ) -> None:
        if supervisor.key.public_bytes != cell.key.public_bytes:
            raise InputError("supervisor", f"{supervisor.node_id!r} does not sign with the key")
        super().__init__(supervisor, batches, dt=cell.dt, pace=pace)
        self.cell = cell
        self.collapses = CollapseWitness(cell)

    @property
    def cluster_collapses(self) -> int:
        """Cluster collapses this cell witnessed since the node started."""
        return self.collapses.fired

    async def after_tick(self, now: float) -> None:
        """Witness a cluster collapse if this tick's T_global crossed I_c."""
        await self.collapses.after_tick(self.supervisor, now)

    async def ingest(self, batch: NDArray[Any], now: float) -> None:
        """Into the cell: witnessed and stored with the source position."""
        await self.cell.ingest(batch, now=time.time())

    def field(self) -> tuple[complex, float, float]:
        """The cell's last Sync decision, evaluated again from the engines' latest readings."""
        master, emissary = self.cell.master.engine.last, self.cell.emissary.engine.last
        d = self.cell.sync.evaluate(master, emissary, now=master.time)
        return d.t_sync, d.coherence, d.delta_phase


class LightFeed(FedMember):
    """A light node's Emissary (DESIGN.md §10) fed from its source, in memory."""

    def __init__(
        self,
        emissary: EmissaryTransducer,
        supervisor: PhaseSupervisor,
        batches: AsyncIterator[NDArray[Any]],
        *,
        pace: bool,
    ) -> None:
        super().__init__(supervisor, batches, dt=emissary.engine.dt, pace=pace)
        self.emissary = emissary
        self.dropped = 0

    async def ingest(self, batch: NDArray[Any], now: float) -> None:
        """Into the Emissary; non-finite rows are dropped first (counted in ``dropped``)."""
        x = np.asarray(batch)
        x = x.reshape(len(x), -1) if x.ndim else x.reshape(1, 1)
        keep = np.all(np.isfinite(x), axis=1)
        self.dropped += int(np.count_nonzero(~keep))
        if np.any(keep):
            self.emissary.ingest(x[keep])

    def field(self) -> tuple[complex, float, float]:
        """Emissary-only: T_sync = T_emissary, coherence = |T_emissary|², Δφ = 0."""
        last = self.emissary.engine.last
        return last.value, last.coherence, 0.0


def node_stream(cell: Cell, name: str, seed: int) -> Stream:
    """The synthetic rhythm a node reads without ``--source``: its own offset into the rhythm
    and its own jitter seed, from ``seed`` and its name (as in the in-process cluster)."""
    cell_seed = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4])
    offset, dt = cell_seed % 600, cell.dt

    def stream(start: int, count: int) -> NDArray[Any]:
        return synthetic_phase(offset + start, count, dt=dt, seed=cell_seed)

    return stream


def node_member(
    kind: str,
    cell: Cell,
    *,
    topology: Topology,
    cluster: str,
    seed: int = 0,
    source: Source | None = None,
) -> CellMember | FedMember:
    """The engine of a ``full`` or ``light`` node on ``cell``'s identity, with a one-member
    supervisor that the node replaces on its first roster read (the cell's key signs from
    the start).

    Without ``source``: a full node is today's :class:`CellMember` on :func:`node_stream`, a
    light node's Emissary reads the same stream. With one: a file source resumes after the
    rows ``cell`` already read (full) and is played in real time (both kinds).
    """
    name = cell.config.name
    alone = PhaseSupervisor(
        key=cell.key,
        plan=Plan(topology=topology, members=(name,), index=0),
        keys={name: cell.key.public_bytes},
        cluster=cluster,
    )
    if kind == "full" and source is None:
        return CellMember(cell, alone, node_stream(cell, name, seed))
    if kind == "full":
        assert source is not None
        if source.cursor is not None:
            source.cursor.resume(cell.source_position(source.cursor.key))
            cell.track(source.cursor)
        return FullFeed(cell, alone, source.batches, pace=source.cursor is not None)
    if kind != "light":
        raise InputError("kind", f"a node engine is full or light, got {kind!r}")
    emissary = EmissaryTransducer.from_config(cell.config, channels=cell.channels)
    if source is None:
        batch = max(1, round(cell.config.memory.flush_interval / cell.dt))
        batches = paced(node_stream(cell, name, seed), dt=cell.dt, batch=batch)
        return LightFeed(emissary, alone, batches, pace=False)
    return LightFeed(emissary, alone, source.batches, pace=source.cursor is not None)
