"""One cell per process on a NATS bus: the roster file, the node loop and its status messages.

Rule: a thin asyncio loop around the sans-IO supervisor (:mod:`becomingone.sync`). Every tick
(``cluster.tick`` of wall time) it hands the supervisor the bytes its subscription received,
ticks it at the wall clock (processes on one machine, or machines kept in step by NTP, share
it; ``cluster.max_skew`` bounds the difference), publishes the packets the topology plan routes
and one status message. Time is the wall clock in seconds (``time.time()``), never stepped back.

Membership (the :class:`~becomingone.sync.KeyRoster`) comes from a :class:`RosterSource`: the
cluster's JetStream KV bucket (:class:`~becomingone.transport.roster_kv.RosterWatch`, written by
admins, watched live), or a roster file that every node of a cluster on one machine reads (JSON,
written atomically under a lock)::

    {"members": {"cell-0000": "<64 hex digits: Ed25519 public key>", ...}}

A node started with ``join`` adds its own (name, key) if the name is absent (a name already
held by another key is refused); without ``join`` it must already be listed. Each node reads
the file again when it changes (one ``stat`` per tick) and rebuilds its plan over the
sorted member names, so all nodes agree on one order. Packets from a signer not in the roster
are rejected and counted (``unknown_signer``).

Subjects::

    ssep.<cluster>.<node>     SSEP packets to <node> (each node subscribes to its own)
    status.<cluster>.<node>   the node's status, JSON (NodeStatus): at a tick where something
                              discrete in it changed (see ``status_key``), else at least every
                              STATUS_PERIOD seconds
    partifacts.<cluster>      node --roles: :mod:`becomingone.runtime.node_partifacts`

The status messages are what an observer (``becomingone cluster --bus nats``) measures the
cluster from; they are not signed and carry nothing a peer acts on. Between two of them an
observer carries a node's phase forward with its frequency (θ + f·(now − t)), so a status at
every tick (ten a second per node, most of what the server and an observer handle) is not
needed: a node sends one when something an observer counts or shows changed (stable, members,
peers heard, rejections, cluster collapses, its cell's outcome, glyph or partifact row), and
otherwise every ``STATUS_PERIOD`` seconds (or half the peer timeout). With 64 node processes
on two cores this took the p99 packet age from 84–103 ms to 19–23 ms (docs/nats.md).
"""

from __future__ import annotations

import asyncio
import cmath
import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from becomingone.cluster import LifecycleStage, PartifactState, Role
from becomingone.errors import InputError, StorageError
from becomingone.keys import NodeKey
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.node_feed import FedMember
from becomingone.runtime.partifacts import event_subject, fire_event
from becomingone.runtime.status_glyphs import parse_status_glyphs, status_glyphs
from becomingone.sync.cps import PhaseSupervisor
from becomingone.sync.roster import NODE_ID_PATTERN, KeyRoster
from becomingone.sync.topology import Plan, Topology
from becomingone.transport.base import Bus, Subscription

if TYPE_CHECKING:
    from becomingone.runtime.node_glyphs import NodeGlyphs
    from becomingone.runtime.node_partifacts import NodePartifacts

__all__ = [
    "STATUS_PERIOD",
    "CellReading",
    "NodeSettings",
    "NodeStatus",
    "RosterFile",
    "RosterSource",
    "SupervisedNode",
    "partifact_row",
    "status_key",
    "status_subject",
]


_TWO_PI_I = 2j * math.pi

#: Longest time between two status messages of a node whose discrete state did not change
#: (seconds; half the peer timeout if that is shorter, so an observer, which counts a node
#: heard within the peer timeout, always holds one; a node ticking slower sends one a tick).
STATUS_PERIOD = 0.5


def status_subject(cluster: str, node_id: str) -> str:
    """The subject a node publishes its status on."""
    return f"status.{cluster}.{node_id}"


class RosterSource(Protocol):
    """Where a node's membership comes from: read it, and learn cheaply when it changed."""

    @property
    def where(self) -> str:
        """Where the roster lives, for messages."""
        ...

    def changed(self) -> bool:
        """True the first time and whenever the roster changed since the last call."""
        ...

    def read(self) -> KeyRoster:
        """The roster now."""
        ...


class RosterFile:
    """The roster file of a cluster: read, join (locked, atomic), reread when changed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self._where = str(self.path)
        self._stamp: tuple[int, int] | None = None

    @property
    def where(self) -> str:
        """The file's path, for messages."""
        return self._where

    def read(self) -> KeyRoster:
        """The roster in the file (empty if the file does not exist yet)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return KeyRoster()
        except OSError as exc:
            raise StorageError(f"cannot read roster {self.path}: {exc}") from exc
        try:
            doc = json.loads(text)
            members = doc["members"]
            keys = {str(n): bytes.fromhex(k) for n, k in members.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                "--roster", f"{self.path} is not a roster file ({{'members': {{name: hex}}}})"
            ) from exc
        return KeyRoster(keys)

    def join(self, node_id: str, public_key: bytes) -> KeyRoster:
        """Add ``node_id`` with ``public_key`` unless present; refuse a name held by another
        key. Returns the roster after the change."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            roster = self.read()
            held = roster.get(node_id)
            if held == public_key:
                return roster
            if held is not None:
                raise InputError(
                    "--name", f"{node_id!r} is in {self.path} with another key (not this cell's)"
                )
            roster = roster.with_member(node_id, public_key)
            self._write(roster)
            return roster

    def _write(self, roster: KeyRoster) -> None:
        doc = {"members": {n: k.hex() for n, k in roster.items()}}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def changed(self) -> bool:
        """True the first time and whenever the file changed since the last call."""
        try:
            st = os.stat(self.where)  # every tick: the str path, not pathlib's wrapper
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class CellReading:
    """A full node's cell after its last batch, as its status carries it: the three |T|² in
    [0, 1], the last Sync decision and the collapses so far."""

    master: float
    emissary: float
    sync: float
    outcome: str
    collapses: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "master": self.master,
            "emissary": self.emissary,
            "sync": self.sync,
            "outcome": self.outcome,
            "collapses": self.collapses,
        }

    @classmethod
    def from_json(cls, doc: Any) -> CellReading | None:
        """Parse the ``cell`` of a status (null: none); ``ValueError`` for anything else."""
        if doc is None:
            return None
        values = [float(doc[k]) for k in ("master", "emissary", "sync")]
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"cell |T|² not in [0, 1]: {values}")
        outcome, collapses = str(doc["outcome"]), int(doc["collapses"])
        if len(outcome) > 32 or collapses < 0:
            raise ValueError(f"cell outcome {outcome[:40]!r} or collapses {collapses} out of range")
        master, emissary, sync = values
        return cls(
            master=master, emissary=emissary, sync=sync, outcome=outcome, collapses=collapses
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """What a node publishes on its status subject (JSON): when :func:`status_key` changed,
    else every ``STATUS_PERIOD`` seconds.

    ``members`` is the roster's size, ``heard`` how many of the peers its plan expects it
    heard within the peer timeout, ``c_seen`` C_cluster over its own phase and every phase it
    heard within the timeout (any packet kind, carried to ``time`` with its frequency), and
    ``accepted`` and ``rejected`` its validator's counts. ``t_sync`` is the cell's own T_sync,
    ``t_global`` its own T_global (:mod:`becomingone.sync.mesh`) and ``cluster_collapses`` how
    many cluster collapses it witnessed since it started.
    ``accepted`` and ``rejected`` its validator's counts; ``samples`` how many samples its
    engine has read (a full cell: over its whole life; a light node: since it started);
    ``cell`` a full node's Master/Emissary/Sync reading (None for other kinds and for nodes
    that do not send it); ``glyphs`` a ``node --glyphs`` node's glyph row (glyphs owned,
    fires, failed, ended, energy, latest value, and which glyphs it holds:
    :mod:`becomingone.runtime.status_glyphs`; absent otherwise); ``partifacts`` a
    ``node --roles`` node's partifact row (:meth:`~becomingone.runtime.node_partifacts.
    NodePartifacts.row`; absent otherwise; an observer reads back its ``state``, ``role``,
    ``lifecycle``, ``term``, ``genesis`` and ``head``: :func:`partifact_row`).
    """

    node: str
    kind: str
    time: float
    theta: float
    frequency: float
    stable: bool
    epoch: int
    seq: int
    members: int
    heard: int
    c_seen: float
    accepted: int
    rejected: Mapping[str, int] = field(default_factory=dict)
    t_sync: complex = 0j
    t_global: complex = 0j
    cluster_collapses: int = 0
    samples: int = 0
    cell: CellReading | None = None
    glyphs: Mapping[str, Any] | None = None
    partifacts: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "node": self.node,
            "kind": self.kind,
            "time": round(self.time, 6),
            "theta": self.theta,
            "frequency": self.frequency,
            "stable": self.stable,
            "epoch": self.epoch,
            "seq": self.seq,
            "members": self.members,
            "heard": self.heard,
            "c_seen": self.c_seen,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "t_sync": [self.t_sync.real, self.t_sync.imag],
            "t_global": [self.t_global.real, self.t_global.imag],
            "t_global_sq": min(1.0, abs(self.t_global) ** 2),
            "cluster_collapses": self.cluster_collapses,
            "samples": self.samples,
            "cell": None if self.cell is None else self.cell.to_json(),
            **({} if self.glyphs is None else {"glyphs": dict(self.glyphs)}),
            **({} if self.partifacts is None else {"partifacts": dict(self.partifacts)}),
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeStatus:
        """Parse a status message; ``InputError`` naming ``status`` for anything else."""
        try:
            doc = json.loads(data)
            out = cls(
                node=str(doc["node"]),
                kind=str(doc["kind"]),
                time=float(doc["time"]),
                theta=float(doc["theta"]),
                frequency=float(doc["frequency"]),
                stable=bool(doc["stable"]),
                epoch=int(doc["epoch"]),
                seq=int(doc["seq"]),
                members=int(doc["members"]),
                heard=int(doc["heard"]),
                c_seen=float(doc["c_seen"]),
                accepted=int(doc["accepted"]),
                rejected={str(k): int(v) for k, v in dict(doc["rejected"]).items()},
                t_sync=_unit_complex(doc["t_sync"]),
                t_global=_unit_complex(doc["t_global"]),
                cluster_collapses=int(doc["cluster_collapses"]),
                samples=int(doc.get("samples", 0)),
                cell=CellReading.from_json(doc.get("cell")),
                glyphs=_glyph_row(doc.get("glyphs")),
                partifacts=partifact_row(doc.get("partifacts")),
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InputError("status", f"not a node status message: {exc}") from None
        if not NODE_ID_PATTERN.match(out.node):
            raise InputError("status", f"bad node id {out.node!r}")
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSettings:
    """How a node joins its cluster (the ``cluster:`` section and the command line)."""

    name: str
    cluster: str
    topology: Topology
    tick: float
    alpha: float
    beta: float
    branching: int
    max_skew: float
    peer_timeout: float
    stable_ticks: int


class SupervisedNode:
    """One process's cell: a :class:`PhaseSupervisor` (and the engine feeding its field: a
    full cell's :class:`CellMember` on its own synthetic stream, or a
    :class:`~becomingone.runtime.node_feed.FedMember` on a source — a full cell or a light
    node's Emissary) on a bus, over the roster file's membership.

    ``member`` is ``None`` for a node without an engine of its own (its field stays at rest);
    ``theta`` is the initial phase in cycles, ``epoch`` this boot's SSEP epoch; ``glyphs``
    (a full cell's, :mod:`becomingone.runtime.node_glyphs`) runs the node's glyph ownership
    and migrations after each tick.
    """

    def __init__(
        self,
        settings: NodeSettings,
        *,
        member: CellMember | FedMember | None,
        key: NodeKey,
        epoch: int,
        roster: RosterSource,
        kind: str = "full",
        theta: float = 0.0,
        clock: Callable[[], float] = time.time,
        glyphs: NodeGlyphs | None = None,
    ) -> None:
        self.settings = settings
        self.member = member
        self.glyphs = glyphs
        self.partifacts: NodePartifacts | None = None  # node --roles
        self.key = key
        self.kind = kind
        self.roster_file = roster
        self.clock = clock
        self.supervisor: PhaseSupervisor | None = None
        self._epoch = epoch
        self._theta = theta
        self._last_now = -float("inf")
        self.ticks = 0
        #: The status of the latest tick (replaced whole each tick: a metrics scrape on another
        #: thread reads it without a lock); None before the first tick.
        self.last_status: NodeStatus | None = None
        #: (status_key, time) of the last status published; None before the first
        self._published: tuple[tuple[Any, ...], float] | None = None
        self._inbox: Subscription | None = None

    @property
    def queue_depth(self) -> int:
        """Packets waiting in the node's inbox (0 before it subscribed)."""
        inbox = self._inbox
        return 0 if inbox is None else inbox.pending

    @property
    def node_id(self) -> str:
        """This node's name."""
        return self.settings.name

    def now(self) -> float:
        """The wall clock, never stepping back."""
        self._last_now = max(self._last_now, self.clock())
        return self._last_now

    def reload_roster(self) -> bool:
        """Rebuild the supervisor when the roster file changed; True iff it was rebuilt."""
        if not self.roster_file.changed():
            return False
        roster = self.roster_file.read()
        if self.supervisor is not None and roster == self.supervisor.roster:
            return False
        if roster.get(self.node_id) != self.key.public_bytes:
            if self.supervisor is None:
                raise InputError(
                    "--roster",
                    f"{self.node_id!r} is not in {self.roster_file.where} with its key "
                    f"{self.key.public_bytes.hex()}",
                )
            return False  # removed or re-keyed while running: keep the last roster we were in
        members = tuple(roster)
        s = self.settings
        plan = Plan(
            topology=s.topology,
            members=members,
            index=members.index(self.node_id),
            branching=s.branching,
        )
        common: dict[str, Any] = {
            "key": self.key,
            "plan": plan,
            "keys": roster,
            "cluster": s.cluster,
            "alpha": s.alpha,
            "beta": s.beta,
            "max_skew": s.max_skew,
            "peer_timeout": s.peer_timeout,
            "stable_ticks": s.stable_ticks,
        }
        if self.supervisor is None:
            sup = PhaseSupervisor(epoch=self._epoch, theta=self._theta, **common)
        else:
            sup = PhaseSupervisor.restore(self.supervisor.state(), **common)
            sup.stability.set_peers(plan.hears())
        self.supervisor = sup
        if self.member is not None:
            self.member.supervisor = sup
        return True

    async def step(self, bus: Bus, inbox: Subscription, started: float) -> NodeStatus:
        """One tick: advance the cell, take what arrived, tick, publish packets and status."""
        sup = self.supervisor
        assert sup is not None, "reload_roster() first"
        now = self.now()
        if self.member is not None:
            await self.member.advance(now - started)
        for data in inbox.drain():
            sup.receive(data, now)
        now = self.now()  # the work above took time: packets leave stamped with their phase now
        out = sup.tick(now)
        if self.member is not None:
            await self.member.after_tick(now - started)  # a cluster collapse is witnessed
        if self.glyphs is not None:
            c_seen, stable = _c_seen(sup, now), sup.stability.stable
            await self.glyphs.step(now - started, c_cluster=c_seen, stable=stable)
        if self.partifacts is not None:
            t_sq = abs(sup.field.t_sync) ** 2
            view = await self.partifacts.step(
                now,
                collapsed=sup.stability.stable or t_sq >= self.partifacts.threshold,
                c_cluster=_c_seen(sup, now),
                roster=sup.roster,
            )
            cell = getattr(self.member, "cell", None)
            if cell is not None:  # the role.* / proposal.* hooks of this node's own cell
                for name, payload in view.events:
                    if event_subject(name, payload) == self.node_id:
                        await fire_event(cell, name, payload, now)
        s = self.settings
        batch = [(f"ssep.{s.cluster}.{dest}", m.data) for m in out for dest in m.to]
        status = self.status(now)
        key, sent = status_key(status), self._published
        period = min(STATUS_PERIOD, s.peer_timeout / 2)  # an observer's window holds two
        if sent is None or key != sent[0] or now - sent[1] >= period:
            batch.append((status_subject(s.cluster, self.node_id), _dumps(status.to_json())))
            self._published = (key, now)
        await bus.publish_many(batch)
        self.ticks += 1
        self.last_status = status
        return status

    def status(self, now: float) -> NodeStatus:
        """The node's status at ``now``."""
        sup = self.supervisor
        assert sup is not None
        return NodeStatus(
            node=self.node_id,
            kind=self.kind,
            time=now,
            theta=sup.theta,
            frequency=sup.frequency,
            stable=sup.stability.stable,
            epoch=sup.epoch,
            seq=sup.seq,
            members=len(sup.roster),
            heard=_heard(sup, now),
            c_seen=_c_seen(sup, now),
            accepted=sup.validator.accepted,
            rejected=sup.rejected,
            t_sync=sup.field.t_sync,
            t_global=sup.mesh.value,
            cluster_collapses=0 if self.member is None else self.member.cluster_collapses,
            samples=_samples(self.member),
            cell=_reading(self.member),
            glyphs=None
            if self.glyphs is None
            else status_glyphs(self.glyphs.glyphs, self.glyphs.row()),
            partifacts=None if self.partifacts is None else self.partifacts.row(),
        )

    async def run(
        self,
        bus: Bus,
        *,
        duration: float | None,
        stop: asyncio.Event,
        on_second: Callable[[NodeStatus], None] | None = None,
        start_at: float | None = None,
    ) -> NodeStatus:
        """Tick until ``stop`` is set or ``duration`` seconds passed; returns the last status.

        With ``start_at`` (wall-clock seconds) the node subscribes, then waits until that time
        before its first tick, so processes started one after another tick together.
        """
        self.reload_roster()
        inbox = self._inbox = await bus.subscribe(f"ssep.{self.settings.cluster}.{self.node_id}")
        if self.glyphs is not None:
            await self.glyphs.start(bus, 0.0)
        if self.partifacts is not None:
            await self.partifacts.start(bus)
        if start_at is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, start_at - self.clock()))
        tick = self.settings.tick
        started = self.now()
        next_print = started
        status = self.status(started)
        i = 0
        # one task waits for ``stop`` for the whole run; each tick waits on it with a timeout
        # (a timer and a callback, where wait_for would start and cancel a task every tick)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if duration is not None and self.now() - started >= duration:
                    break
                self.reload_roster()  # one stat() unless the file changed
                status = await self.step(bus, inbox, started)
                if on_second is not None and status.time >= next_print:
                    on_second(status)
                    next_print += 1.0
                i += 1
                delay = started + i * tick - self.now()
                if delay < -tick:  # fell behind: skip the missed ticks rather than bursting
                    i = int((self.now() - started) / tick) + 1
                    delay = started + i * tick - self.now()
                await asyncio.wait((stopping,), timeout=max(0.0, delay))
        finally:
            stopping.cancel()
        with contextlib.suppress(Exception):
            await inbox.unsubscribe()
        if self.glyphs is not None:
            await self.glyphs.aclose()
        if self.partifacts is not None:
            await self.partifacts.aclose()
        if isinstance(self.member, FedMember):
            await self.member.aclose()
        return status


def status_key(status: NodeStatus) -> tuple[Any, ...]:
    """What of a status an observer counts or shows as it is, not carried forward: a node
    publishes its status at once when this changes (else every ``STATUS_PERIOD`` seconds).
    Phase, frequency, C seen, T_sync, T_global, counts of accepted packets and samples move
    every tick and are left out."""
    cell = status.cell
    return (
        status.stable,
        status.epoch,
        status.members,
        status.heard,
        tuple(sorted(status.rejected.items())),
        status.cluster_collapses,
        None if cell is None else (cell.outcome, cell.collapses),
        None if status.glyphs is None else _dumps(status.glyphs),
        None if status.partifacts is None else _dumps(status.partifacts),
    )


def _samples(member: CellMember | FedMember | None) -> int:
    """Samples the node's engine has read (0 without one)."""
    if isinstance(member, CellMember):
        return member.cell.samples
    return 0 if member is None else member.samples


def _reading(member: CellMember | FedMember | None) -> CellReading | None:
    """A full node's Master/Emissary/Sync after its last batch (None without a cell)."""
    if not isinstance(member, CellMember):
        return None
    st = member.status
    return CellReading(
        master=st.master,
        emissary=st.emissary,
        sync=st.sync,
        outcome=st.outcome,
        collapses=st.collapses,
    )


def _heard(sup: PhaseSupervisor, now: float) -> int:
    """How many of the peers the plan expects were heard within the peer timeout."""
    return sup.stability.heard_within(now)


def _c_seen(sup: PhaseSupervisor, now: float) -> float:
    """C_cluster of the node's own phase and the phases it heard within the peer timeout."""
    timeout, f = sup.stability.timeout, sup.frequency
    phases = [sup.theta] + [
        theta + f * (now - at) for theta, at in sup.heard() if now - at <= timeout
    ]
    return _coherence(phases)


def _coherence(phases: list[float]) -> float:
    """:func:`~becomingone.core.phase.cluster_coherence` of a few finite phases, in plain Python.

    A node reads a handful of phases every tick; NumPy's per-call overhead costs more than the
    sums. Same formula: R2u = (|Σ e^{2πiθ}|² − N) / (N(N−1)), C = exp(5·ln R2u) (0 if R2u ≤ 0).
    """
    n = len(phases)
    if n == 1:
        return 1.0
    z = sum(cmath.exp(_TWO_PI_I * (theta % 1.0)) for theta in phases)
    r2u = (abs(z) ** 2 - n) / (n * (n - 1))
    if r2u <= 0.0:
        return 0.0
    return math.exp(-5.0 * max(0.0, -math.log(min(r2u, 1.0))))


def _glyph_row(doc: Any) -> dict[str, Any] | None:
    """The ``glyphs`` row of a status (absent: None); ``ValueError`` for anything else."""
    if doc is None:
        return None
    counts = {k: int(doc[k]) for k in ("glyphs", "fires", "failed", "ended")}
    energy = float(doc["energy"])
    value = None if doc["value"] is None else float(doc["value"])
    numbers = [energy] if value is None else [energy, value]
    if min(counts.values()) < 0 or energy < 0 or not all(map(math.isfinite, numbers)):
        raise ValueError(f"glyph row out of range: {counts}, energy {energy}, value {value}")
    kairos = None if doc.get("kairos") is None else float(doc["kairos"])
    rejected = int(doc.get("rejected", 0))
    if rejected < 0 or not (kairos is None or 0.0 <= kairos <= 1.0):
        raise ValueError(f"glyph row out of range: kairos {kairos}, rejected {rejected}")
    return {
        **counts,
        "energy": energy,
        "value": value,
        "kairos": kairos,
        "rejected": rejected,
        **parse_status_glyphs(doc),
    }


def partifact_row(doc: Any) -> dict[str, Any] | None:
    """The ``partifacts`` row of a status as an observer keeps it (absent: None): the node's
    ``state``, ``role``, its view's ``lifecycle``, ``term``, ``genesis`` and log ``head``;
    ``ValueError`` for anything out of shape."""
    if doc is None:
        return None
    role, genesis = doc["role"], doc["genesis"]
    term, head = int(doc["term"]), int(doc["head"])
    if genesis is not None and not NODE_ID_PATTERN.match(str(genesis)):
        raise ValueError(f"partifact genesis {str(genesis)[:70]!r} is not a node id")
    if term < 0 or head < 0:
        raise ValueError(f"partifact term {term}, head {head}: must be >= 0")
    return {
        "state": PartifactState(doc["state"]).value,
        "role": None if role is None else Role(role).value,
        "lifecycle": LifecycleStage(doc["lifecycle"]).value,
        "term": term,
        "genesis": None if genesis is None else str(genesis),
        "head": head,
    }


def _unit_complex(pair: Any) -> complex:
    """[re, im] of a finite complex number with modulus at most 1 (else ``ValueError``)."""
    re, im = (float(x) for x in pair)
    z = complex(re, im)
    if not (math.isfinite(re) and math.isfinite(im)) or abs(z) > 1.0 + 1e-9:
        raise ValueError(f"{pair!r} is not a complex number with |z| <= 1")
    return z


def _dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
