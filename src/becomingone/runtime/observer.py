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
Malformed status messages are counted (``bad_status``) and dropped. ``keep`` bounds the tick
reports kept in ``history`` for an observer that runs for days (a node serving its view); the
tick number counts on regardless.

:class:`PacketAges` listens to the packets themselves (``ssep.<cluster>.*``, every copy to
every receiver): it verifies each on arrival against the roster file (Ed25519, as a member
would) and records its age, now − the packet's timestamp, i.e. publish → verified on one
machine's clock (the sender stamps a packet at its tick, just before signing and publishing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence

from becomingone.core.phase import CoherenceBand
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import verify_signature
from becomingone.runtime.cluster import ClusterSummary, TickReport, summarize
from becomingone.runtime.node import NodeStatus, RosterFile
from becomingone.sync.mesh import ClusterCollapseDetector, global_sync
from becomingone.sync.ssep import decode_packet
from becomingone.sync.stability import read_cluster
from becomingone.sync.topology import winding_number
from becomingone.transport.base import Bus, Subscription

__all__ = ["ClusterObserver", "PacketAges"]


class ClusterObserver:
    """Measures a cluster from its nodes' status messages; call :meth:`start` then
    :meth:`step` once per tick. ``threshold`` is I_c (the nodes' ``kairos.threshold``);
    ``keep`` (None: all) the newest tick reports kept in ``history``."""

    def __init__(
        self,
        bus: Bus,
        *,
        cluster: str,
        peer_timeout: float,
        ring: bool = False,
        threshold: float = 0.95,
        clock: Callable[[], float] = time.time,
        keep: int | None = None,
    ) -> None:
        if keep is not None and keep < 1:
            raise InputError("keep", f"must be at least 1 (or None: all), got {keep}")
        self.bus = bus
        self.cluster = cluster
        self.keep = keep
        #: Ticks measured since the start (or the last :meth:`restart`).
        self.ticks = 0
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

    def restart(self) -> None:
        """Forget the tick reports and count ticks from 0 again (what was heard stays)."""
        self.history.clear()
        self.ticks = 0

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
        tick = self.ticks
        report = TickReport(
            tick=tick,
            time=now,
            c_cluster=reading.c if thetas else 0.0,
            r=reading.r if thetas else 0.0,
            band=reading.band if thetas else CoherenceBand.LOOSE,
            rejected=sum(self.rejected().values()),
            winding=winding_number(thetas) if self.ring and thetas else None,
            thetas=thetas,
            t_global=mesh.value,
            cluster_collapse=self.collapses.update(mesh, tick=tick) is not None,
        )
        self.ticks += 1
        self.history.append(report)
        if self.keep is not None and len(self.history) >= 2 * self.keep:
            del self.history[: -self.keep]  # amortised: once every `keep` ticks
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


class PacketAges:
    """Ages (seconds) of a cluster's packets, verified on arrival; :meth:`run` until stopped.

    It listens to the packets sent to ``receivers`` (node ids; ``"*"``, the default: every
    node). A sample of receivers costs a fraction of the work of hearing every copy.

    ``ages`` holds every verified copy's age, oldest first, up to ``limit`` (``stamps``: the
    packet's timestamp of each, in the same order; later ones are
    counted in ``stats["not_kept"]``); packets that do not parse or verify are counted by
    reason (``malformed``, ``oversize``, ..., ``unknown_signer``, ``bad_signature``). A packet
    sent to k receivers arrives k times with the same bytes: its signature is checked once
    (the verdict is kept for the last ``SEEN`` distinct packets), each copy is timed.
    """

    #: Distinct packets whose verdict is remembered.
    SEEN = 4096

    def __init__(
        self,
        bus: Bus,
        *,
        cluster: str,
        roster: RosterFile,
        receivers: Sequence[str] = ("*",),
        limit: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not receivers:
            raise InputError("receivers", "needs at least one node id (or '*')")
        self.bus = bus
        self.cluster = cluster
        self.roster_file = roster
        self.receivers = tuple(receivers)
        self.limit = limit
        self.clock = clock
        self.ages: list[float] = []
        #: the sender's timestamp of each age kept, same order (to leave out a warm-up)
        self.stamps: list[float] = []
        self.stats: Counter[str] = Counter()
        self._keys = roster.read()
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()

    def record(self, data: bytes) -> float | None:
        """Verify one message and keep its age; ``None`` (counted) if it is not a packet of a
        member of this cluster."""
        try:
            packet, body, signature = decode_packet(data)
        except ProtocolError as exc:
            self.stats[str(exc.reason)] += 1
            return None
        key = self._keys.get(packet.node_id)
        if key is None and self.roster_file.changed():
            self._keys = self.roster_file.read()
            key = self._keys.get(packet.node_id)
        if key is None or packet.cluster != self.cluster:
            self.stats["unknown_signer" if key is None else "wrong_cluster"] += 1
            return None
        seen = key + data
        good = self._verdicts.get(seen)
        if good is None:
            good = self._verdicts[seen] = verify_signature(key, body, signature)
            if len(self._verdicts) > self.SEEN:
                self._verdicts.popitem(last=False)
        if not good:
            self.stats["bad_signature"] += 1
            return None
        age = self.clock() - packet.timestamp
        self.stats["verified"] += 1
        if len(self.ages) < self.limit:
            self.ages.append(age)
            self.stamps.append(packet.timestamp)
        else:
            self.stats["not_kept"] += 1
        return age

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Subscribe to the packets to ``receivers`` (then set ``ready``, if given) and record
        each as it arrives until ``stop`` is set."""
        subs = [await self.bus.subscribe(f"ssep.{self.cluster}.{r}") for r in self.receivers]
        if ready is not None:
            ready.set()
        try:
            await asyncio.gather(*(self._listen(sub, stop) for sub in subs))
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _listen(self, sub: Subscription, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.record(await sub.next_msg(timeout=0.1))
                for i, data in enumerate(sub.drain(), 1):
                    self.record(data)
                    if i % 32 == 0:  # let the rest of the process run
                        await asyncio.sleep(0)
