"""Cluster Phase Supervisor (CPS): one cell's side of the phase lock (DESIGN.md §6).

Rule: sans-IO. ``tick(now)`` advances the local phase Θ by f·dt, steps it α of the way toward
the cluster phase the topology gives (f ← f + β·err with the PLL term) and returns the signed
packets to send; ``receive(data, now)`` validates a peer's bytes and stores what was heard.
Bad packets are counted by reason and dropped; they never raise out of ``receive``.

Phases heard are extrapolated to ``now`` with the cell's own frequency, so a packet in flight
for d seconds is compared as the sender's phase plus f·d.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from becomingone.core._checks import finite_float
from becomingone.core.phase import wrap
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import NodeKey
from becomingone.sync.ssep import Packet, PacketKind, PacketValidator, encode_packet
from becomingone.sync.stability import NetworkStability
from becomingone.sync.topology import Plan, Topology
from becomingone.sync.verified import VerifyCache

__all__ = ["CpsState", "Outgoing", "PhaseSupervisor"]

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


@dataclass(slots=True)
class _Heard:
    theta: float
    weight: float
    timestamp: float
    fresh: bool = True


class PhaseSupervisor:
    """The CPS of one cell.

    Parameters
    ----------
    key : the cell's Ed25519 key; its public bytes must be ``keys[plan.node_id]``.
    plan : routing of this cell (:class:`~becomingone.sync.topology.Plan`).
    keys : node id → public key of every member (unknown signers are rejected).
    cluster : cluster name carried in every packet.
    alpha, beta : phase gain (0 < α < 1) and PLL frequency gain (β ≥ 0, per tick).
    frequency : natural frequency f in cycles per second.
    theta : initial phase Θ in cycles.
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
        max_skew: float = 5.0,
        peer_timeout: float = 1.0,
        stable_ticks: int = 5,
        cache: VerifyCache | None = None,
    ) -> None:
        if keys.get(plan.node_id) != key.public_bytes:
            raise InputError("key", f"is not the registered key of {plan.node_id!r}")
        self.alpha = finite_float("alpha", alpha)
        if not 0.0 < self.alpha < 1.0:
            raise InputError("alpha", f"must be in (0, 1), got {alpha!r}")
        self.beta = finite_float("beta", beta)
        if not 0.0 <= self.beta < 1.0:
            raise InputError("beta", f"must be in [0, 1), got {beta!r}")
        self.key, self.plan, self.cluster = key, plan, cluster
        self.frequency = finite_float("frequency", frequency)
        self.theta = finite_float("theta", theta) % 1.0
        self.validator = PacketValidator(cluster=cluster, keys=keys, max_skew=max_skew, cache=cache)
        self.stability = NetworkStability(peers=plan.hears(), k=stable_ticks, timeout=peer_timeout)
        self.last_error = 0.0
        self.steps = 0
        self.seq = 0
        self._last_now: float | None = None
        self._inbox: dict[tuple[PacketKind, int, str], _Heard] = {}
        self._field = {"delta_phi": 0.0, "kappa": self.alpha, "coherence": 0.0, "node_energy": 0.0}
        self._digest = b""

    @property
    def node_id(self) -> str:
        """This cell's id."""
        return self.plan.node_id

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
        glyph_digest: bytes | None = None,
    ) -> None:
        """Update what the cell reports in its packets (Δφ, κ, |T_sync|², glyph load, digest)."""
        new = dict(self._field)
        for name, value in (
            ("delta_phi", delta_phi),
            ("kappa", kappa),
            ("coherence", coherence),
            ("node_energy", node_energy),
        ):
            if value is not None:
                new[name] = finite_float(name, value)
        digest = self._digest if glyph_digest is None else bytes(glyph_digest)
        # Validate exactly as a packet would, so a bad value fails here and not in tick().
        Packet(
            node_id=self.node_id,
            cluster=self.cluster,
            seq=0,
            timestamp=0.0,
            glyph_digest=digest,
            delta_phi=new["delta_phi"],
            kappa=new["kappa"],
            coherence=new["coherence"],
            node_energy=new["node_energy"],
        )
        self._field, self._digest = new, digest

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
        )

    # Events -----------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Outgoing]:
        """Take a peer's wire bytes at ``now``; invalid ones are counted and dropped."""
        try:
            packet = self.validator.validate(data, now)
        except ProtocolError:
            return []
        self.stability.heard(packet.node_id, now)
        slot = (packet.kind, packet.level, packet.node_id)
        self._inbox[slot] = _Heard(packet.theta, packet.weight, packet.timestamp)
        return []

    def tick(self, now: float) -> list[Outgoing]:
        """Advance to ``now``: drift, step toward the cluster phase, return packets to send."""
        t = finite_float("now", now)
        if self._last_now is not None and t < self._last_now:
            raise InputError("now", f"went backwards: {t} < {self._last_now}")
        dt = 0.0 if self._last_now is None else t - self._last_now
        self._last_now = t
        self.theta = (self.theta + self.frequency * dt) % 1.0
        target, out = self._route(t)
        if target is not None:
            err = float(wrap(target - self.theta))
            self.theta = (self.theta + self.alpha * err) % 1.0
            self.frequency += self.beta * err
            self.last_error = err
            self.steps += 1
        self.stability.tick(t)
        return out

    # Topology rules ---------------------------------------------------------------------

    def _phasor(self, heard: _Heard, now: float) -> complex:
        phase = heard.theta + self.frequency * (now - heard.timestamp)
        return heard.weight * cmath.exp(1j * TWO_PI * phase)

    def _fresh(self, kind: PacketKind, level: int) -> dict[str, _Heard]:
        return {
            s: h for (k, lv, s), h in self._inbox.items() if k is kind and lv == level and h.fresh
        }

    def _latest(self, kind: PacketKind, level: int) -> dict[str, _Heard]:
        return {s: h for (k, lv, s), h in self._inbox.items() if k is kind and lv == level}

    def _resultant(self, heard: Collection[_Heard], now: float) -> complex:
        """Σ weight·e^{2πi(θ + f·(now − t))} over ``heard`` (vectorised for a mesh's N)."""
        if len(heard) < 16:
            return sum((self._phasor(h, now) for h in heard), 0j)
        n = len(heard)
        theta = np.fromiter((h.theta for h in heard), np.float64, n)
        stamp = np.fromiter((h.timestamp for h in heard), np.float64, n)
        weight = np.fromiter((h.weight for h in heard), np.float64, n)
        phase = theta + self.frequency * (now - stamp)
        return complex(np.dot(weight, np.exp(1j * TWO_PI * phase)))

    def _mean(self, heard: Mapping[str, _Heard], now: float, own: bool = True) -> float | None:
        z = self._resultant(heard.values(), now)
        if own:
            z += cmath.exp(1j * TWO_PI * self.theta)
        if abs(z) < 1e-12:
            return None
        return (cmath.phase(z) / TWO_PI) % 1.0

    def _route(self, now: float) -> tuple[float | None, list[Outgoing]]:
        plan = self.plan
        consumed = [h for h in self._inbox.values() if h.fresh]
        match plan.topology:
            case Topology.MESH:
                states = self._fresh(PacketKind.STATE, 0)
                target = self._mean(states, now) if states else None
                others = tuple(m for m in plan.members if m != self.node_id)
                out = self._send(PacketKind.STATE, 0, self.theta, 1.0, others, now)
            case Topology.RING:
                pred = self._fresh(PacketKind.STATE, 0).get(plan.predecessor)
                target = None if pred is None else self._mean({"p": pred}, now)
                out = self._send(PacketKind.STATE, 0, self.theta, 1.0, (plan.successor,), now)
            case Topology.HUB:
                target, out = self._hub(now)
            case Topology.FRACTAL:
                target, out = self._fractal(now)
        for heard in consumed:  # copies this tick delivered to itself stay fresh
            heard.fresh = False
        return target, out

    def _hub(self, now: float) -> tuple[float | None, list[Outgoing]]:
        plan = self.plan
        if self.node_id != plan.hub:
            down = self._fresh(PacketKind.DOWN, 0).get(plan.hub)
            target = None if down is None else down.theta + self.frequency * (now - down.timestamp)
            return target, self._send(PacketKind.STATE, 0, self.theta, 1.0, (plan.hub,), now)
        target = self._mean(self._fresh(PacketKind.STATE, 0), now)
        others = tuple(m for m in plan.members if m != self.node_id)
        out = self._send(PacketKind.DOWN, 0, target, 1.0, others, now) if target is not None else []
        return target, out

    def _fractal(self, now: float) -> tuple[float | None, list[Outgoing]]:
        plan, out = self.plan, []
        down0 = self._fresh(PacketKind.DOWN, 0)
        target = None
        if down0:
            heard = next(iter(down0.values()))
            target = heard.theta + self.frequency * (now - heard.timestamp)
        ups: list[tuple[int, complex]] = [(0, cmath.exp(1j * TWO_PI * self.theta))]
        for level in range(1, plan.levels + 1):
            if not plan.is_head(level):
                break
            children = self._latest(PacketKind.UP, level - 1)
            z = self._resultant(children.values(), now)
            ups.append((level, z))
            fresh_down = self._fresh(PacketKind.DOWN, level)
            if level == plan.levels and abs(z) > 1e-12:
                phase = (cmath.phase(z) / TWO_PI) % 1.0
                out += self._deliver(
                    PacketKind.DOWN, level - 1, phase, 1.0, plan.children(level), now
                )
            elif fresh_down:
                heard = next(iter(fresh_down.values()))
                phase = (heard.theta + self.frequency * (now - heard.timestamp)) % 1.0
                out += self._deliver(
                    PacketKind.DOWN, level - 1, phase, 1.0, plan.children(level), now
                )
        for level, z in ups:
            if level < plan.levels:
                phase = (cmath.phase(z) / TWO_PI) % 1.0
                out += self._deliver(
                    PacketKind.UP, level, phase, abs(z), (plan.head(level + 1),), now
                )
        return target, out

    def _deliver(
        self,
        kind: PacketKind,
        level: int,
        theta: float,
        weight: float,
        to: tuple[str, ...],
        now: float,
    ) -> list[Outgoing]:
        """Send to peers; a copy addressed to this cell is stored directly for the next tick."""
        if self.node_id in to:
            self._inbox[(kind, level, self.node_id)] = _Heard(theta % 1.0, weight, now)
            to = tuple(m for m in to if m != self.node_id)
        return self._send(kind, level, theta, weight, to, now) if to else []

    def _send(
        self,
        kind: PacketKind,
        level: int,
        theta: float,
        weight: float,
        to: tuple[str, ...],
        now: float,
    ) -> list[Outgoing]:
        if not to:
            return []
        self.seq += 1
        theta = theta % 1.0
        packet = Packet(
            node_id=self.node_id,
            cluster=self.cluster,
            seq=self.seq,
            timestamp=now,
            theta=0.0 if theta >= 1.0 else theta,
            glyph_digest=self._digest,
            kind=kind,
            level=level,
            weight=weight,
            delta_phi=self._field["delta_phi"],
            kappa=self._field["kappa"],
            coherence=self._field["coherence"],
            node_energy=self._field["node_energy"],
        )
        cache = self.validator.cache
        if cache is None:
            return [Outgoing(to=to, data=encode_packet(packet, self.key))]
        body = packet.to_bytes()  # encode_packet, with the signature recorded as verified
        signature = cache.sign(self.key, body)
        data = body + signature
        cache.remember_parse(data, (packet, body, signature))  # = decode_packet(data)
        return [Outgoing(to=to, data=data)]
