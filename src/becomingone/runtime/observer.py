"""An observer of a cluster of node processes: the in-process cluster's measurements, computed
from what it hears on the bus.

Rule: it listens only (``status.<cluster>.*``, see :mod:`becomingone.runtime.node`), never
reaches into a process. Each tick it takes the newest status of every node heard within the
cluster's peer timeout, carries each phase forward to the observer's clock with the node's own
frequency (θ + f·(now − t)) and measures them with
:func:`~becomingone.sync.stability.read_cluster` into the same :class:`TickReport` rows and
:class:`ClusterSummary` as :class:`~becomingone.runtime.cluster.LocalCluster`; T_global is the
equal-weight mean of the T_sync in those statuses (:func:`~becomingone.sync.global_sync`) and
its upward crossings of I_c are the cluster collapses the observer counts (each node witnesses
its own, from what it hears). A node not heard within the timeout leaves the measurement (its
last rejection counts stay in the totals).
Malformed status messages are counted (``bad_status``) and dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from becomingone.core.phase import CoherenceBand
from becomingone.errors import InputError
from becomingone.runtime.cluster import ClusterSummary, TickReport, summarize
from becomingone.runtime.node import NodeStatus
from becomingone.sync.mesh import ClusterCollapseDetector, global_sync
from becomingone.sync.stability import read_cluster
from becomingone.sync.topology import winding_number
from becomingone.transport.base import Bus, Subscription

__all__ = ["ClusterObserver"]


class ClusterObserver:
    """Measures a cluster from its nodes' status messages; call :meth:`start` then
    :meth:`step` once per tick. ``threshold`` is I_c (the nodes' ``kairos.threshold``)."""

    def __init__(
        self,
        bus: Bus,
        *,
        cluster: str,
        peer_timeout: float,
        ring: bool = False,
        threshold: float = 0.95,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.cluster = cluster
        self.peer_timeout = peer_timeout
        self.ring = ring
        self.clock = clock
        self.latest: dict[str, NodeStatus] = {}
        self.history: list[TickReport] = []
        self.stats: Counter[str] = Counter()
        self.collapses = ClusterCollapseDetector(threshold=threshold)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to every node's status subject."""
        self._sub = await self.bus.subscribe(f"status.{self.cluster}.*")

    def live(self, now: float) -> list[NodeStatus]:
        """The newest status of each node heard within the peer timeout, by node id."""
        return [s for _, s in sorted(self.latest.items()) if now - s.time <= self.peer_timeout]

    def step(self) -> TickReport:
        """Take what arrived and measure the cluster now."""
        assert self._sub is not None, "start() first"
        for data in self._sub.drain():
            try:
                status = NodeStatus.from_bytes(data)
            except InputError:
                self.stats["bad_status"] += 1
                continue
            self.stats["status"] += 1
            old = self.latest.get(status.node)
            if old is None or (status.epoch, status.seq) >= (old.epoch, old.seq):
                self.latest[status.node] = status
        now = self.clock()
        heard = self.live(now)
        thetas = tuple((s.theta + s.frequency * (now - s.time)) % 1.0 for s in heard)
        reading = read_cluster(thetas if thetas else (0.0,))
        mesh = global_sync(
            [s.t_sync for s in heard],
            [s.time for s in heard],
            now=now,
            timeout=self.peer_timeout,
        )
        report = TickReport(
            tick=len(self.history),
            time=now,
            c_cluster=reading.c if thetas else 0.0,
            r=reading.r if thetas else 0.0,
            band=reading.band if thetas else CoherenceBand.LOOSE,
            rejected=sum(self.rejected().values()),
            winding=winding_number(thetas) if self.ring and thetas else None,
            thetas=thetas,
            t_global=mesh.value,
            cluster_collapse=self.collapses.update(mesh, tick=len(self.history)) is not None,
        )
        self.history.append(report)
        return report

    def rejected(self) -> Counter[str]:
        """Rejected packets by reason, over the newest status of every node ever heard."""
        total: Counter[str] = Counter()
        for s in self.latest.values():
            total.update(s.rejected)
        return total

    def summary(self) -> ClusterSummary:
        """The run so far, as the in-process cluster reports it."""
        if not self.history:
            self.step()
        return summarize(self.history, self.rejected(), self.stats)
