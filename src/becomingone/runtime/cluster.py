"""Local cluster driver: N cells' CPS on one bus, ticked by an asyncio loop (DESIGN.md §6).

Rule: a thin loop. Each tick it hands every cell the bytes its subscription received (one
``drain``, given to the cell's ``receive_many`` in one call where it has one), calls
``tick(now)``, publishes what the cell returns (one ``publish_many`` per cell) and measures
C_cluster over all cells, and T_global over all cells' T_sync (equal weights,
:func:`~becomingone.sync.global_sync`) with its cluster collapses (upward crossings of
I_c): the driver's view of the whole cluster, beside each cell's own T_global. The
supervisors of one cluster share one :class:`~becomingone.sync.VerifyCache`, so each distinct
packet is verified once per process. Protocol decisions live in :mod:`becomingone.sync`; a
cell is anything with the :class:`ClusterMember` shape, so a full cell (transducers,
witnessing, glyphs) plugs in by exposing its CPS (and, if it lives between ticks,
``advance(now)`` before and ``after_tick(now)`` after each tick).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from becomingone.core.phase import CoherenceBand
from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.sync.cps import CpsState, Outgoing, PhaseSupervisor
from becomingone.sync.mesh import ClusterCollapseDetector, GlobalSync, global_sync
from becomingone.sync.roster import KeyRoster
from becomingone.sync.stability import read_cluster
from becomingone.sync.topology import Plan, Topology, winding_number
from becomingone.sync.verified import VerifyCache
from becomingone.transport.base import Bus, Subscription
from becomingone.transport.memory import MemoryBus

__all__ = [
    "DELIVERY_SECONDS",
    "SEND_SECONDS",
    "ClusterMember",
    "ClusterSummary",
    "LocalCluster",
    "TickReport",
    "build_supervisors",
    "estimate_tick_seconds",
    "packets_per_tick",
    "subject_for",
    "summarize",
]

#: CPU seconds per delivered packet (bus, parse and signature check from the shared cache,
#: skew/replay checks, storing the phase) and per packet sent (canonical bytes and one
#: Ed25519 signature), measured by ``bench/cluster.py`` on the project's 2-core machine.
DELIVERY_SECONDS = 4e-6
SEND_SECONDS = 1e-4


class ClusterMember(Protocol):
    """What the driver needs from a cell: the sans-IO CPS surface.

    A cell may also have ``receive_many(batch, now)`` (as
    :meth:`~becomingone.sync.PhaseSupervisor.receive_many` does): the driver then hands it
    each tick's packets in one call instead of one ``receive`` per packet.
    """

    @property
    def node_id(self) -> str: ...

    @property
    def theta(self) -> float: ...

    def tick(self, now: float) -> list[Outgoing]: ...

    def receive(self, data: bytes, now: float) -> list[Outgoing]: ...

    def snapshot(self) -> CpsState: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TickReport:
    """The cluster after one tick."""

    tick: int
    time: float
    c_cluster: float
    r: float
    band: CoherenceBand
    rejected: int
    winding: int | None
    thetas: tuple[float, ...]
    t_global: complex = 0j
    cluster_collapse: bool = False

    @property
    def t_global_sq(self) -> float:
        """|T_global|²."""
        return min(1.0, self.t_global.real**2 + self.t_global.imag**2)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (phases omitted); ``t_global`` as [re, im]."""
        return {
            "tick": self.tick,
            "time": round(self.time, 6),
            "c_cluster": self.c_cluster,
            "r": self.r,
            "band": self.band.value,
            "rejected": self.rejected,
            "winding": self.winding,
            "t_global": [self.t_global.real, self.t_global.imag],
            "t_global_sq": self.t_global_sq,
            "cluster_collapse": self.cluster_collapse,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSummary:
    """How a run went: first tick at or above each band, final C and R, rejections by reason."""

    ticks: int
    ticks_to_band: Mapping[str, int | None]
    c_cluster: float
    r: float
    band: CoherenceBand
    rejected: Mapping[str, int]
    twisted: bool
    bus: Mapping[str, int]
    t_global_sq: float = 0.0
    cluster_collapses: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "summary": True,
            "ticks": self.ticks,
            "ticks_to_band": dict(self.ticks_to_band),
            "c_cluster": self.c_cluster,
            "r": self.r,
            "band": self.band.value,
            "rejected": dict(self.rejected),
            "twisted": self.twisted,
            "bus": dict(self.bus),
            "t_global_sq": self.t_global_sq,
            "cluster_collapses": self.cluster_collapses,
        }


def subject_for(cluster: str, node_id: str) -> str:
    """The bus subject a cell listens on."""
    return f"ssep.{cluster}.{node_id}"


class _Subjects(dict[str, str]):
    """node id → subject, computed once per node id."""

    def __init__(self, cluster: str) -> None:
        super().__init__()
        self.cluster = cluster

    def __missing__(self, node_id: str) -> str:
        subject = self[node_id] = subject_for(self.cluster, node_id)
        return subject


def build_supervisors(
    n: int,
    topology: Topology | str,
    *,
    alpha: float = 0.01,
    beta: float = 0.0,
    drift_ppm: float = 0.0,
    spread: float = 1.0,
    seed: int = 0,
    cluster: str = "local",
    branching: int = 4,
    frequency: float = 1.0,
    max_skew: float = 5.0,
    peer_timeout: float = 1.0,
    stable_ticks: int = 5,
    cache: VerifyCache | bool = True,
    keys: Sequence[NodeKey] | None = None,
    epoch: int = 0,
) -> list[PhaseSupervisor]:
    """N supervisors with phases uniform over ``spread`` cycles (centred on 0) and natural
    frequencies ``frequency·(1 + drift_ppm·1e-6·u)``, u uniform in [−1, 1].

    ``keys`` are the cells' own keys, one per cell (default: deterministic keys from
    ``seed``, for runs without data dirs); the roster is made of their public keys. ``epoch``
    is the boot epoch of every supervisor. A ring started with ``spread`` ≤ 0.5 has winding
    number 0. All supervisors share one verification cache (``cache=True``: a new one; or the
    given one; ``False``: none), so each distinct packet is parsed and verified once, not once
    per receiver.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError("nodes", f"must be an integer >= 1, got {n!r}")
    if not 0.0 <= spread <= 1.0:
        raise InputError("spread", f"must be in [0, 1], got {spread!r}")
    rng = np.random.default_rng(seed)
    thetas = (rng.random(n) - 0.5) * spread
    drifts = rng.uniform(-1.0, 1.0, n) * drift_ppm * 1e-6
    if keys is None:
        seeds = (hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n))
        keys = [NodeKey.from_seed(s) for s in seeds]
    elif len(keys) != n:
        raise InputError("keys", f"needs one key per cell ({n}), got {len(keys)}")
    members = [f"cell-{i:04d}" for i in range(n)]
    registry = KeyRoster({m: k.public_bytes for m, k in zip(members, keys, strict=True)})
    topo = Topology.parse(topology)
    shared = VerifyCache() if cache is True else (None if cache is False else cache)
    return [
        PhaseSupervisor(
            key=keys[i],
            plan=Plan(topology=topo, members=tuple(members), index=i, branching=branching),
            keys=registry,
            cluster=cluster,
            alpha=alpha,
            beta=beta,
            frequency=frequency * (1.0 + drifts[i]),
            theta=float(thetas[i]),
            epoch=epoch,
            max_skew=max_skew,
            peer_timeout=peer_timeout,
            stable_ticks=stable_ticks,
            cache=shared,
        )
        for i in range(n)
    ]


def packets_per_tick(n: int, topology: Topology | str, branching: int = 4) -> tuple[int, int]:
    """About how many packets one tick of ``n`` cells delivers and sends: (deliveries, sends).

    mesh N(N−1) deliveries of N packets; hub 2(N−1) of N; ring N of N; fractal 2(N−1)
    deliveries (each cell but the root sends UP once and hears DOWN once) of about
    (N−1)·b/(b−1) packets (one UP each, one DOWN per group head to its b children).

    Examples
    --------
    >>> packets_per_tick(256, "mesh")
    (65280, 256)
    >>> packets_per_tick(1024, "fractal", 4)
    (2046, 1364)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError("nodes", f"must be an integer >= 1, got {n!r}")
    if isinstance(branching, bool) or not isinstance(branching, int) or branching < 2:
        raise InputError("branching", f"must be an integer >= 2, got {branching!r}")
    if n == 1:
        return 0, 0
    b = branching
    match Topology.parse(topology):
        case Topology.MESH:
            return n * (n - 1), n
        case Topology.HUB:
            return 2 * (n - 1), n
        case Topology.RING:
            return n, n
        case Topology.FRACTAL:
            return 2 * (n - 1), round((n - 1) * b / (b - 1))
    raise AssertionError(topology)  # pragma: no cover


def estimate_tick_seconds(n: int, topology: Topology | str, branching: int = 4) -> float:
    """CPU seconds one tick of the in-process cluster is expected to take (the costs above)."""
    deliveries, sends = packets_per_tick(n, topology, branching)
    return deliveries * DELIVERY_SECONDS + sends * SEND_SECONDS


class LocalCluster:
    """Runs cells on one bus. Use ``async with`` or call :meth:`start` and :meth:`aclose`.

    ``threshold`` is I_c for the cluster collapses the driver counts (the cells' Sync
    threshold, ``kairos.threshold``).
    """

    def __init__(
        self,
        members: Sequence[ClusterMember],
        bus: MemoryBus,
        *,
        cluster: str = "local",
        ring: bool = False,
        threshold: float = 0.95,
    ) -> None:
        if not members:
            raise InputError("members", "needs at least one cell")
        self.collapses = ClusterCollapseDetector(threshold=threshold)
        self.members = list(members)
        self.bus = bus
        self.cluster = cluster
        self.ring = ring
        self.history: list[TickReport] = []
        self._conns: dict[str, Bus] = {}
        self._subs: dict[str, Subscription] = {}
        self._subject = _Subjects(cluster)

    async def start(self) -> None:
        """Connect every cell and subscribe it to its subject."""
        for m in self.members:
            conn = self.bus.connect(m.node_id)
            self._conns[m.node_id] = conn
            self._subs[m.node_id] = await conn.subscribe(subject_for(self.cluster, m.node_id))

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in self._conns.values():
            await conn.aclose()

    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _publish(self, sender: str, out: list[Outgoing]) -> None:
        """Hand a cell's messages to the bus in one batch."""
        if not out:
            return
        subject = self._subject
        batch = [(subject[dest], msg.data) for msg in out for dest in msg.to]
        await self._conns[sender].publish_many(batch)

    async def step(self, now: float) -> TickReport:
        """One tick at ``now`` for every cell; returns the measurement after it.

        Members with a life of their own (full cells) first ``advance`` to ``now``.
        """
        for m in self.members:
            advance = getattr(m, "advance", None)
            if advance is not None:
                await advance(now)
        for m in self.members:
            batch = self._subs[m.node_id].drain()
            receive_many = getattr(m, "receive_many", None)
            if receive_many is not None:
                replies = receive_many(batch, now)
            else:
                receive, replies = m.receive, []
                for data in batch:
                    replies += receive(data, now)
            await self._publish(m.node_id, replies)
        for m in self.members:
            await self._publish(m.node_id, m.tick(now))
        for m in self.members:
            after_tick = getattr(m, "after_tick", None)
            if after_tick is not None:
                await after_tick(now)
        await asyncio.sleep(0)
        return self._measure(now)

    def _measure(self, now: float) -> TickReport:
        thetas = tuple(m.theta for m in self.members)
        snaps = [m.snapshot() for m in self.members]
        reading = read_cluster(thetas)
        t_global = self.t_global(snaps, now)
        rejected: Counter[str] = Counter()
        for s in snaps:
            rejected.update(s.rejected)
        report = TickReport(
            tick=len(self.history),
            time=now,
            c_cluster=reading.c,
            r=reading.r,
            band=reading.band,
            rejected=sum(rejected.values()),
            winding=winding_number(thetas) if self.ring else None,
            thetas=thetas,
            t_global=t_global.value,
            cluster_collapse=self.collapses.update(t_global, tick=len(self.history)) is not None,
        )
        self.history.append(report)
        return report

    @staticmethod
    def t_global(snaps: Sequence[CpsState], now: float) -> GlobalSync:
        """T_global over every cell's current T_sync, equal weights (the driver sees them all)."""
        return global_sync([s.t_sync for s in snaps], [now] * len(snaps), now=now, timeout=1.0)

    def queue_depths(self) -> dict[str, int]:
        """node id → messages waiting in its subscription (those whose bus reports it)."""
        out = {}
        for node_id, sub in list(self._subs.items()):
            pending = getattr(sub, "pending", None)
            if isinstance(pending, int):
                out[node_id] = pending
        return out

    def rejected(self) -> Counter[str]:
        """Rejected packets by reason, over all cells."""
        total: Counter[str] = Counter()
        for m in self.members:
            total.update(m.snapshot().rejected)
        return total

    async def run(
        self,
        ticks: int,
        tick_seconds: float,
        *,
        realtime: bool = False,
        on_tick: Callable[[TickReport], None] | None = None,
        until: CoherenceBand | None = None,
        after: Callable[[TickReport], Awaitable[None]] | None = None,
    ) -> ClusterSummary:
        """Run ``ticks`` ticks ``tick_seconds`` apart (virtual time unless ``realtime``).

        Stops early once the band ``until`` is reached, if given. ``after`` is awaited with
        each tick's report before ``on_tick`` sees it (glyph migration runs there).
        """
        start = time.monotonic()
        for i in range(ticks):
            now = (time.monotonic() - start) if realtime else i * tick_seconds
            report = await self.step(now)
            if after is not None:
                await after(report)
            if on_tick is not None:
                on_tick(report)
            if until is not None and report.band is until:
                break
            if realtime:
                await asyncio.sleep(max(0.0, start + (i + 1) * tick_seconds - time.monotonic()))
        return self.summary()

    def summary(self) -> ClusterSummary:
        """Summary of the run so far."""
        if not self.history:
            self._measure(0.0)
        return summarize(self.history, self.rejected(), self.bus.stats)


def summarize(
    history: Sequence[TickReport], rejected: Mapping[str, int], bus: Mapping[str, int]
) -> ClusterSummary:
    """The summary of a run from its tick reports (at least one), rejections and bus counts."""
    if not history:
        raise InputError("history", "needs at least one tick report")
    order = list(CoherenceBand)
    first: dict[str, int | None] = {b.value: None for b in order}
    for rep in history:
        for band in order[: order.index(rep.band) + 1]:
            if first[band.value] is None:
                first[band.value] = rep.tick
    last = history[-1]
    return ClusterSummary(
        t_global_sq=last.t_global_sq,
        cluster_collapses=sum(rep.cluster_collapse for rep in history),
        ticks=len(history),
        ticks_to_band=first,
        c_cluster=last.c_cluster,
        r=last.r,
        band=last.band,
        rejected=dict(rejected),
        twisted=bool(last.winding),
        bus=dict(bus),
    )
