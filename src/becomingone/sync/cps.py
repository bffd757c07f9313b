"""Cluster Phase Supervisor (CPS): one cell's side of the phase lock (DESIGN.md §6).

Rule: sans-IO. ``tick(now)`` advances the local phase Θ by f·dt, measures the cluster phase
the topology gives and applies the CPS law (:func:`~becomingone.sync.law.cps_step`:
Θ ← Θ + f·dt + α·err, f ← f + β·err), then returns the signed packets to send, which carry
the phase after the step; ``receive(data, now)`` validates a peer's bytes and stores what was
heard. Bad packets are counted by reason and dropped; they never raise out of ``receive``.

Each tick also computes T_global (mesh synchronisation, :mod:`becomingone.sync.mesh`) over the
T_sync values the cell heard within the peer timeout: mesh and ring over the STATE packets of
the peers it hears, own T_sync included; a hub over every report and sends the result down in
its DOWN packets (``t_sync`` = T_global, ``weight`` = cells counted), which the other cells
adopt; in a fractal each group head sends its group's mean T up (weighted by group sizes) and
the root's T_global comes down with the global phase. The reading is :attr:`PhaseSupervisor.mesh`.

Phases heard are extrapolated to ``now`` with the cell's own frequency, so a packet in flight
for d seconds is compared as the sender's phase plus f·d. A cell couples, every tick, to each
sender's latest phase heard within the peer timeout, new this tick or not: node processes tick
on their own clocks, so jitter brings a peer's packets two in one tick and none in the next,
and a cell that stepped only on new packets skipped a step in each empty tick (64 fractal
NATS nodes took 1.22× the in-process ticks to SHARED). A fractal head relays DOWN only when a
new one came from above, so a phase carried down is never older than one peer timeout.

Settings (key, plan, roster, cluster, α, β, max skew, timeouts, the shared verification
cache) are constructor arguments (:meth:`PhaseSupervisor.settings`); everything that evolves
is one value, :class:`SupervisorState` (:meth:`PhaseSupervisor.state`), which round-trips
through canonical bytes and :meth:`PhaseSupervisor.restore` exactly: a restored supervisor
given the same inputs sends the same bytes as the uninterrupted one.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from becomingone.core._checks import finite_float
from becomingone.core.phase import wrap
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.sync.cps_state import CellField, HeardPhase, SupervisorState
from becomingone.sync.law import cps_step
from becomingone.sync.mesh import GlobalSync, global_sync
from becomingone.sync.roster import KeyRoster
from becomingone.sync.ssep import Packet, PacketKind, PacketValidator, encode_packet
from becomingone.sync.stability import NetworkStability
from becomingone.sync.topology import Plan, Topology
from becomingone.sync.verified import VerifyCache

__all__ = ["CpsState", "Outgoing", "PeerLoad", "PhaseSupervisor"]

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """Bytes to deliver to each node id in ``to``."""

    to: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CpsState:
    """A read-only view of a supervisor for displays and tests."""

    node_id: str
    theta: float
    frequency: float
    last_error: float
    steps: int
    seq: int
    stable: bool
    rejected: Mapping[str, int] = field(default_factory=dict)
    t_sync: complex = 0j
    mesh: GlobalSync | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLoad:
    """What a peer's latest valid packet said about its glyphs: their energy (its load) and
    the digest of the set it owns, sent at ``timestamp`` (the sender's clock, seconds)."""

    node_energy: float
    glyph_digest: bytes
    timestamp: float


def _unit(x: float) -> float:
    """``x`` mod 1 in [0, 1) (``%`` gives 1.0 for tiny negative ``x``)."""
    y = x % 1.0
    return 0.0 if y >= 1.0 else y


@dataclass(frozen=True, slots=True)
class _Heard:
    """A phase held in the inbox that no packet carried as such (a copy a cell delivered to
    itself, or one restored from a state); a received packet is held as itself."""

    theta: float
    weight: float
    timestamp: float
    t_sync: complex = 0j


#: What the inbox holds per slot: a received :class:`Packet` (shared with every receiver in
#: the process, never copied) or a :class:`_Heard`; both carry these four fields.
_Phase = _Heard | Packet
_Slot = tuple[PacketKind, int, str]


@dataclass(frozen=True, slots=True)
class _Send:
    """A packet to build after the step; ``theta`` ``None`` means the cell's own new phase."""

    kind: PacketKind
    level: int
    theta: float | None
    weight: float
    to: tuple[str, ...]
    t_sync: complex | None = None  #: ``None``: the cell's own T_sync


class PhaseSupervisor:
    """The CPS of one cell.

    Parameters
    ----------
    key : the cell's Ed25519 key; its public bytes must be ``keys[plan.node_id]``.
    plan : routing of this cell (:class:`~becomingone.sync.topology.Plan`).
    keys : the membership, a :class:`~becomingone.sync.roster.KeyRoster` or a mapping of node
        ids to public keys (unknown signers are rejected).
    cluster : cluster name carried in every packet.
    alpha, beta : phase gain (0 < α < 1) and PLL frequency gain (β ≥ 0, per tick).
    frequency : natural frequency f in cycles per second.
    theta : initial phase Θ in cycles.
    epoch : this boot's epoch (see :func:`~becomingone.sync.ssep.next_epoch`); it must grow
        across restarts of the same identity, and packets are numbered (epoch, seq).
    max_skew : accepted |timestamp − now| in seconds.
    peer_timeout, stable_ticks : the network-stability detector's timeout (s) and k.
    cache : a verification cache shared with other supervisors of this process (optional).
    """

    def __init__(
        self,
        *,
        key: NodeKey,
        plan: Plan,
        keys: Mapping[str, bytes],
        cluster: str = "default",
        alpha: float = 0.01,
        beta: float = 0.0,
        frequency: float = 1.0,
        theta: float = 0.0,
        epoch: int = 0,
        max_skew: float = 5.0,
        peer_timeout: float = 1.0,
        stable_ticks: int = 5,
        cache: VerifyCache | None = None,
    ) -> None:
        roster = KeyRoster.of(keys)
        if roster.get(plan.node_id) != key.public_bytes:
            raise InputError("key", f"is not the registered key of {plan.node_id!r}")
        self.alpha = finite_float("alpha", alpha)
        if not 0.0 < self.alpha < 1.0:
            raise InputError("alpha", f"must be in (0, 1), got {alpha!r}")
        self.beta = finite_float("beta", beta)
        if not 0.0 <= self.beta < 1.0:
            raise InputError("beta", f"must be in [0, 1), got {beta!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**64:
            raise InputError("epoch", f"must be an integer in [0, 2**64), got {epoch!r}")
        self.key, self.plan, self.cluster = key, plan, cluster
        self._others = tuple(m for m in plan.members if m != plan.node_id)
        self.frequency = finite_float("frequency", frequency)
        self.theta = _unit(finite_float("theta", theta))
        self.epoch = epoch
        self.validator = PacketValidator(
            cluster=cluster, keys=roster, max_skew=max_skew, cache=cache, own_id=plan.node_id
        )
        self.stability = NetworkStability(peers=plan.hears(), k=stable_ticks, timeout=peer_timeout)
        self.last_error = 0.0
        self.steps = 0
        self.seq = 0
        self._last_now: float | None = None
        self._inbox: dict[_Slot, _Phase] = {}
        #: the slots filled since the cell last routed (a phase is "fresh" until consumed)
        self._fresh_slots: set[_Slot] = set()
        self._delivered: set[_Slot] = set()  #: copies to itself stored by the current route
        self.field = CellField(kappa=self.alpha)
        self.mesh = GlobalSync(time=0.0)
        #: node id → its latest valid packet, for :attr:`peer_loads`; not part of the state
        #: (each peer's next packet refreshes it), so it does not change the bytes a restored
        #: supervisor sends.
        self._peer_packets: dict[str, Packet] = {}

    @classmethod
    def restore(cls, state: SupervisorState, **settings: Any) -> PhaseSupervisor:
        """A supervisor with ``settings`` (the constructor's keywords except ``theta``,
        ``frequency`` and ``epoch``) resuming exactly from ``state``."""
        for name in ("theta", "frequency", "epoch"):
            if name in settings:
                raise InputError(name, "comes from the state, not from the settings")
        sup = cls(theta=state.theta, frequency=state.frequency, epoch=state.epoch, **settings)
        if state.node_id != sup.node_id:
            raise InputError("state", f"is the state of {state.node_id!r}, not {sup.node_id!r}")
        sup.theta, sup.seq, sup.steps = state.theta, state.seq, state.steps
        sup.last_error, sup._last_now, sup.field = state.last_error, state.last_now, state.field
        sup._inbox = {
            (h.kind, h.level, h.sender): _Heard(h.theta, h.weight, h.timestamp, h.t_sync)
            for h in state.inbox
        }
        sup._fresh_slots = {(h.kind, h.level, h.sender) for h in state.inbox if h.fresh}
        sup.validator.load_state(state.validator)
        sup.stability = NetworkStability.restore(
            state.stability, k=sup.stability.k, timeout=sup.stability.timeout
        )
        return sup

    def settings(self) -> dict[str, Any]:
        """The constructor keywords that are not state (``restore`` takes them with a state)."""
        return {
            "key": self.key,
            "plan": self.plan,
            "keys": self.roster,
            "cluster": self.cluster,
            "alpha": self.alpha,
            "beta": self.beta,
            "max_skew": self.validator.max_skew,
            "peer_timeout": self.stability.timeout,
            "stable_ticks": self.stability.k,
            "cache": self.validator.cache,
        }

    def state(self) -> SupervisorState:
        """Everything that evolves, as one value (:meth:`restore` takes it back)."""
        return SupervisorState(
            node_id=self.node_id,
            epoch=self.epoch,
            seq=self.seq,
            theta=self.theta,
            frequency=self.frequency,
            last_error=self.last_error,
            steps=self.steps,
            last_now=self._last_now,
            inbox=tuple(
                HeardPhase(
                    kind=k,
                    level=lv,
                    sender=s,
                    theta=h.theta,
                    weight=h.weight,
                    timestamp=h.timestamp,
                    fresh=(k, lv, s) in self._fresh_slots,
                    t_sync=h.t_sync,
                )
                for (k, lv, s), h in self._inbox.items()
            ),
            validator=self.validator.state(),
            stability=self.stability.state(),
            field=self.field,
        )

    def to_bytes(self) -> bytes:
        """Canonical bytes of :meth:`state`."""
        return self.state().to_bytes()

    @property
    def node_id(self) -> str:
        """This cell's id."""
        return self.plan.node_id

    @property
    def roster(self) -> KeyRoster:
        """The membership this supervisor accepts packets from."""
        return self.validator.roster

    @property
    def peer_loads(self) -> dict[str, PeerLoad]:
        """node id → the load its latest valid packet reported (built on demand, so
        receiving a packet costs no more than storing it)."""
        return {
            node: PeerLoad(
                node_energy=p.node_energy, glyph_digest=p.glyph_digest, timestamp=p.timestamp
            )
            for node, p in self._peer_packets.items()
        }

    def heard(self) -> list[tuple[float, float]]:
        """(θ, timestamp) of each phase held: every sender's latest of each kind and level."""
        return [(h.theta, h.timestamp) for h in self._inbox.values()]

    @property
    def rejected(self) -> Mapping[str, int]:
        """Rejected packets by reason."""
        return dict(self.validator.rejected)

    def set_field(
        self,
        *,
        delta_phi: float | None = None,
        kappa: float | None = None,
        coherence: float | None = None,
        node_energy: float | None = None,
        t_sync: complex | None = None,
        glyph_digest: bytes | None = None,
    ) -> None:
        """Update what the cell reports in its packets (Δφ, κ, |T_sync|², glyph load, T_sync,
        digest); a bad value raises ``InputError`` here, not later in ``tick``."""
        new: dict[str, Any] = {}
        for name, value in (
            ("delta_phi", delta_phi),
            ("kappa", kappa),
            ("coherence", coherence),
            ("node_energy", node_energy),
        ):
            if value is not None:
                new[name] = finite_float(name, value)
        if t_sync is not None:
            new["t_sync"] = complex(t_sync)
        if glyph_digest is not None:
            new["glyph_digest"] = bytes(glyph_digest)
        self.field = replace(self.field, **new)

    def snapshot(self) -> CpsState:
        """Current state, for displays and tests."""
        return CpsState(
            node_id=self.node_id,
            theta=self.theta,
            frequency=self.frequency,
            last_error=self.last_error,
            steps=self.steps,
            seq=self.seq,
            stable=self.stability.stable,
            rejected=self.rejected,
            t_sync=self.field.t_sync,
            mesh=self.mesh,
        )

    # Events -----------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Outgoing]:
        """Take a peer's wire bytes at ``now``; invalid ones are counted and dropped."""
        try:
            packet = self.validator.validate(data, now)
        except ProtocolError:
            return []
        self.stability.heard(packet.node_id, now)
        self._peer_packets[packet.node_id] = packet
        slot = (packet.kind, packet.level, packet.node_id)
        self._inbox[slot] = packet
        self._fresh_slots.add(slot)
        return []

    def receive_many(self, batch: Sequence[bytes], now: float) -> list[Outgoing]:
        """:meth:`receive` of each of ``batch`` in order, all at ``now``, in one call: the
        same checks, counters and stored phases as one ``receive`` per packet (the
        validator's batch path, :meth:`~becomingone.sync.ssep.PacketValidator.validate_many`,
        then one pass storing the accepted packets themselves)."""
        packets = self.validator.validate_many(batch, now)
        if not packets:
            return []
        self.stability.heard_many([p.node_id for p in packets], now)
        loads, inbox, fresh = self._peer_packets, self._inbox, self._fresh_slots.add
        for p in packets:
            node = p.node_id
            loads[node] = p
            slot = (p.kind, p.level, node)
            inbox[slot] = p
            fresh(slot)
        return []

    def tick(self, now: float) -> list[Outgoing]:
        """Advance to ``now``: drift, step toward the cluster phase, return packets to send."""
        t = finite_float("now", now)
        if self._last_now is not None and t < self._last_now:
            raise InputError("now", f"went backwards: {t} < {self._last_now}")
        dt = 0.0 if self._last_now is None else t - self._last_now
        self._last_now = t
        start = self.theta
        self.theta = _unit(start + self.frequency * dt)  # the phase reached by now
        target, sends = self._route(t)
        err = 0.0 if target is None else float(wrap(target - self.theta))
        theta, self.frequency = cps_step(start, self.frequency, err, self.alpha, self.beta, dt)
        self.theta = _unit(theta)
        if target is not None:
            self.last_error = err
            self.steps += 1
        self.stability.tick(t)
        return [self._packet(s, t) for s in sends]

    # Topology rules ---------------------------------------------------------------------

    def _phasor(self, heard: _Phase, now: float) -> complex:
        phase = heard.theta + self.frequency * (now - heard.timestamp)
        return heard.weight * cmath.exp(1j * TWO_PI * phase)

    def _fresh(self, kind: PacketKind, level: int) -> dict[str, _Phase]:
        fresh = self._fresh_slots
        return {
            s: h
            for (k, lv, s), h in self._inbox.items()
            if k is kind and lv == level and (k, lv, s) in fresh
        }

    def _held(self, kind: PacketKind, level: int, now: float) -> dict[str, _Phase]:
        """Every member's latest phase of ``kind`` at ``level`` heard within the peer timeout,
        fresh or not: what the cell couples to (a tick in which no new packet arrived steps
        toward the latest one, carried to ``now``, instead of not stepping). A sender removed
        from the roster no longer counts."""
        timeout, key_of = self.stability.timeout, self.roster.key_of
        return {
            s: h
            for (k, lv, s), h in self._inbox.items()
            if k is kind and lv == level and now - h.timestamp <= timeout and key_of(s)
        }

    def _mesh_route(self, now: float) -> tuple[float | None, GlobalSync]:
        """A mesh cell's target and T_global in one pass over its inbox, marking every phase
        consumed (a mesh cell stores no copy of its own while routing): the mesh's per-tick
        work is O(N) per cell, so one pass collecting plain lists, then NumPy (or plain sums
        below 16 entries) on them. Same values, in the same order, as
        ``_mean(_held(STATE, 0, now))`` and ``_global(_latest(STATE, 0), now)``."""
        timeout, key_of, state = self.stability.timeout, self.roster.key_of, PacketKind.STATE
        expected = self.stability.peers
        thetas: list[float] = []
        stamps: list[float] = []
        weights: list[float] = []
        t_syncs: list[complex] = []
        t_stamps: list[float] = []
        self._fresh_slots.clear()
        for (k, lv, s), h in self._inbox.items():
            if k is state and lv == 0:
                stamp = h.timestamp
                if s in expected:
                    t_syncs.append(h.t_sync)
                    t_stamps.append(stamp)
                if now - stamp <= timeout and key_of(s):
                    thetas.append(h.theta)
                    stamps.append(stamp)
                    weights.append(h.weight)
        target = None
        if thetas:
            z = self._sum_phasors(thetas, stamps, weights, now)
            z += cmath.exp(1j * TWO_PI * self.theta)
            if abs(z) >= 1e-12:
                target = (cmath.phase(z) / TWO_PI) % 1.0
        mesh = global_sync(t_syncs, t_stamps, now=now, timeout=timeout, own=self.field.t_sync)
        return target, mesh

    def _sum_phasors(
        self, thetas: list[float], stamps: list[float], weights: list[float], now: float
    ) -> complex:
        """Σ weight·e^{2πi(θ + f·(now − t))} over parallel lists (NumPy from 16 entries)."""
        f = self.frequency
        if len(thetas) < 16:
            return sum(
                (
                    w * cmath.exp(1j * TWO_PI * (theta + f * (now - t)))
                    for theta, t, w in zip(thetas, stamps, weights)
                ),
                0j,
            )
        phase = np.array(thetas) + f * (now - np.array(stamps))
        return complex(np.dot(np.array(weights), np.exp(1j * TWO_PI * phase)))

    def _latest(self, kind: PacketKind, level: int) -> dict[str, _Phase]:
        return {s: h for (k, lv, s), h in self._inbox.items() if k is kind and lv == level}

    def _resultant(self, heard: Collection[_Phase], now: float) -> complex:
        """Σ weight·e^{2πi(θ + f·(now − t))} over ``heard`` (vectorised for a mesh's N)."""
        if len(heard) < 16:
            return sum((self._phasor(h, now) for h in heard), 0j)
        return self._sum_phasors(
            [h.theta for h in heard],
            [h.timestamp for h in heard],
            [h.weight for h in heard],
            now,
        )

    def _mean(self, heard: Mapping[str, _Phase], now: float, own: bool = True) -> float | None:
        z = self._resultant(heard.values(), now)
        if own:
            z += cmath.exp(1j * TWO_PI * self.theta)
        if abs(z) < 1e-12:
            return None
        return (cmath.phase(z) / TWO_PI) % 1.0

    def _route(self, now: float) -> tuple[float | None, list[_Send]]:
        plan = self.plan
        if plan.topology is Topology.MESH:
            target, self.mesh = self._mesh_route(now)
            others = self._others
            return target, [_Send(PacketKind.STATE, 0, None, 1.0, others)] if others else []
        delivered: set[_Slot] = set()
        self._delivered = delivered  # _deliver adds the copies it stores for this cell
        match plan.topology:
            case Topology.RING:
                pred = self._held(PacketKind.STATE, 0, now).get(plan.predecessor)
                target = None if pred is None else self._mean({"p": pred}, now)
                self.mesh = self._global(self._latest(PacketKind.STATE, 0), now)
                out = [_Send(PacketKind.STATE, 0, None, 1.0, (plan.successor,))]
            case Topology.HUB:
                target, out = self._hub(now)
            case Topology.FRACTAL:
                target, out = self._fractal(now)
        self._fresh_slots = delivered  # what was fresh is consumed; these copies stay fresh
        return target, out

    # T_global (mesh synchronisation) --------------------------------------------------------

    def _global(
        self,
        heard: Mapping[str, _Phase],
        now: float,
        *,
        senders: Collection[str] | None = None,
        own: bool = True,
        weights: Callable[[str], float] | None = None,
    ) -> GlobalSync:
        """T_global over the T_sync carried by ``heard`` from ``senders`` (default: the peers
        this cell expects), ``weights``: sender → weight (default 1), and, if ``own``, its own
        T_sync."""
        expected = self.stability.peers if senders is None else senders
        slots = [(s, h) for s, h in heard.items() if s in expected]
        return global_sync(
            [h.t_sync for _, h in slots],
            [h.timestamp for _, h in slots],
            weights=None if weights is None else [weights(s) for s, _ in slots],
            now=now,
            timeout=self.stability.timeout,
            own=self.field.t_sync if own else None,
        )

    def _adopt(self, down: _Phase | None, now: float) -> GlobalSync:
        """T_global carried down by a hub or the fractal root (weight: the cells behind it)."""
        if down is None:
            return global_sync([], [], now=now, timeout=self.stability.timeout)
        return global_sync(
            [down.t_sync],
            [down.timestamp],
            weights=[down.weight],
            now=now,
            timeout=self.stability.timeout,
        )

    def _hub(self, now: float) -> tuple[float | None, list[_Send]]:
        plan = self.plan
        if self.node_id != plan.hub:
            self.mesh = self._adopt(self._latest(PacketKind.DOWN, 0).get(plan.hub), now)
            down = self._held(PacketKind.DOWN, 0, now).get(plan.hub)
            target = None if down is None else down.theta + self.frequency * (now - down.timestamp)
            return target, [_Send(PacketKind.STATE, 0, None, 1.0, (plan.hub,))]
        self.mesh = self._global(self._latest(PacketKind.STATE, 0), now)
        target = self._mean(self._held(PacketKind.STATE, 0, now), now)
        others = self._others
        if target is None or not others:
            return target, []
        m = self.mesh
        return target, [_Send(PacketKind.DOWN, 0, target, m.cells, others, m.value)]

    def _fractal(self, now: float) -> tuple[float | None, list[_Send]]:
        plan, out = self.plan, []
        down0 = self._held(PacketKind.DOWN, 0, now)
        carried = self._latest(PacketKind.DOWN, 0).values()
        self.mesh = self._adopt(max(carried, key=lambda h: h.timestamp, default=None), now)
        target = None
        if down0:  # one head sends level-0 DOWN; after a roster change, its newest
            heard = max(down0.values(), key=lambda h: h.timestamp)
            target = heard.theta + self.frequency * (now - heard.timestamp)
        own = cmath.exp(1j * TWO_PI * self.theta)
        ups: list[tuple[int, complex, complex]] = [(0, own, self.field.t_sync)]
        for level in range(1, plan.levels + 1):
            if not plan.is_head(level):
                break
            children = self._held(PacketKind.UP, level - 1, now)  # a silent child drops out
            z = self._resultant(children.values(), now)
            group = self._group_sync(children, level, now)
            ups.append((level, z, group.value))
            fresh_down = self._fresh(PacketKind.DOWN, level)
            below = plan.children(level)
            if level == plan.levels and abs(z) > 1e-12:
                phase = (cmath.phase(z) / TWO_PI) % 1.0
                down = _Send(PacketKind.DOWN, level - 1, phase, group.cells, below, group.value)
                out += self._deliver(down, now)
            elif fresh_down:
                heard = next(iter(fresh_down.values()))
                phase = (heard.theta + self.frequency * (now - heard.timestamp)) % 1.0
                down = _Send(PacketKind.DOWN, level - 1, phase, heard.weight, below, heard.t_sync)
                out += self._deliver(down, now)
        for level, z, t_group in ups:
            if level < plan.levels:
                phase = (cmath.phase(z) / TWO_PI) % 1.0
                up = _Send(PacketKind.UP, level, phase, abs(z), (plan.head(level + 1),), t_group)
                out += self._deliver(up, now)
        return target, out

    def _group_sync(self, children: Mapping[str, _Phase], level: int, now: float) -> GlobalSync:
        """The mean T_sync of this head's level-``level`` group: its children's group means
        heard within the timeout (its own copy included), each weighted by its group's size."""
        sizes = self.plan.child_sizes(level)
        return self._global(children, now, senders=sizes, own=False, weights=sizes.__getitem__)

    def _deliver(self, send: _Send, now: float) -> list[_Send]:
        """Send to peers; a copy addressed to this cell is stored directly for the next tick."""
        if self.node_id not in send.to:
            return [send] if send.to else []
        assert send.theta is not None and send.t_sync is not None
        slot = (send.kind, send.level, self.node_id)
        self._inbox[slot] = _Heard(_unit(send.theta), send.weight, now, send.t_sync)
        self._fresh_slots.add(slot)
        self._delivered.add(slot)
        own_id = self.node_id
        to = tuple(m for m in send.to if m != own_id)
        return [replace(send, to=to)] if to else []

    def _packet(self, send: _Send, now: float) -> Outgoing:
        """The signed packet of ``send`` (own phase: the phase after this tick's step)."""
        self.seq += 1
        fields = self.field.packet_fields()
        packet = Packet(
            node_id=self.node_id,
            cluster=self.cluster,
            epoch=self.epoch,
            seq=self.seq,
            timestamp=now,
            theta=self.theta if send.theta is None else _unit(send.theta),
            kind=send.kind,
            level=send.level,
            weight=send.weight,
            **(fields | ({} if send.t_sync is None else {"t_sync": send.t_sync})),
        )
        cache = self.validator.cache
        if cache is None:
            return Outgoing(to=send.to, data=encode_packet(packet, self.key))
        body = packet.to_bytes()  # encode_packet, with the signature recorded as verified
        signature = cache.sign(self.key, body)
        data = body + signature
        cache.remember_parse(data, (packet, body, signature))  # = decode_packet(data)
        return Outgoing(to=send.to, data=data)
