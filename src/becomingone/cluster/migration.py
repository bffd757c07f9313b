"""Glyph migration, the values (DESIGN.md §7): the policy, the signed packet, the ownership
record and the receiver's field fold.

Rule: pure values and checks, no I/O and no clocks. The policy decides *whether* and *where*
a glyph moves; a :class:`MigrationPacket` is what the owner signs with its Ed25519 node key
and the target verifies (:class:`MigrationVerifier` counts every rejection by reason); an
:class:`OwnerRecord` is the one value stored under a glyph's key in a compare-and-set record
(the linearizable truth of who owns it). The state machine that moves a glyph is in
:mod:`becomingone.cluster.migrate_machine`.

Hysteresis (the band): a glyph of energy e moves from a source of load L_s to the
least-loaded peer (load L_t) only if L_s − L_t > e + h·L_s (``hysteresis`` h, default 0.1).
After the move the target leads the source by (L_t + e) − (L_s − e) < e − h·L_s, below the
e + h·L the reverse move would need: a glyph never bounces straight back (a test checks it).
Moves stop when every peer is within e + h·L_s of the source; a move that leaves the two
cells equal (a gap of 2e) is made.
"""

from __future__ import annotations

import cmath
import enum
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from becomingone.cluster.glyph import Glyph
from becomingone.errors import InputError, ProtocolError
from becomingone.keys import SIGNATURE_BYTES, NodeKey, verify_signature
from becomingone.sync.roster import NODE_ID_PATTERN, KeyRoster

__all__ = [
    "MIGRATION_COHERENCE",
    "GlyphField",
    "MigrationPacket",
    "MigrationPolicy",
    "MigrationReject",
    "MigrationVerifier",
    "OwnerRecord",
    "OwnerState",
    "glyph_field",
    "record_key",
]

#: C_cluster above which glyphs may migrate (DESIGN.md §7).
MIGRATION_COHERENCE = 0.65
_PACKET_DOMAIN = "becomingone.glyph-migrate.v1"
_RECORD_FORMAT = 1
_MAX_BYTES = 8192


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _node(name: str, value: object) -> str:
    if not isinstance(value, str) or not NODE_ID_PATTERN.match(value):
        raise InputError(name, f"must be a node id, got {value!r}")
    return value


def _cycle(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError("fired_cycle", f"must be an integer or None, got {value!r}")
    return value


def record_key(glyph_id: str) -> str:
    """The compare-and-set key of a glyph's ownership record: ``glyph.<id>``.

    >>> record_key("probe-0001")
    'glyph.probe-0001'
    """
    return f"glyph.{glyph_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPolicy:
    """When a glyph may move and where to (DESIGN.md §7; the band in the module docstring).

    Parameters
    ----------
    min_coherence : float
        C_cluster must be above this (default 0.65).
    energy_threshold : float
        The glyph's energy must be above this (work units, default 1).
    hysteresis : float
        The band h in [0, 1): the load gap must exceed e + h·L_s.

    Examples
    --------
    >>> p = MigrationPolicy()
    >>> g = Glyph(id="g", kind="probe", energy=10.0)
    >>> p.target(g, c_cluster=0.9, stable=True, own_load=100.0, peers={"b": 0.0, "c": 50.0})
    'b'
    >>> p.target(g, c_cluster=0.5, stable=True, own_load=100.0, peers={"b": 0.0}) is None
    True
    """

    min_coherence: float = MIGRATION_COHERENCE
    energy_threshold: float = 1.0
    hysteresis: float = 0.1

    def __post_init__(self) -> None:
        for name, high in (("min_coherence", 1.0), ("hysteresis", 1.0)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < high:
                raise InputError(name, f"must be a number in [0, {high:g}), got {value!r}")
        e = self.energy_threshold
        if not isinstance(e, int | float) or not (math.isfinite(e) and e >= 0.0):
            raise InputError("energy_threshold", f"must be a finite number >= 0, got {e!r}")

    def allowed(self, glyph: Glyph, *, c_cluster: float, stable: bool) -> bool:
        """C_cluster > ``min_coherence``, energy > ``energy_threshold`` and a stable network."""
        return (
            bool(stable) and c_cluster > self.min_coherence and glyph.energy > self.energy_threshold
        )

    def target(
        self,
        glyph: Glyph,
        *,
        c_cluster: float,
        stable: bool,
        own_load: float,
        peers: Mapping[str, float],
    ) -> str | None:
        """The peer ``glyph`` should move to (least loaded; ties by node id), or ``None``."""
        if not peers or not self.allowed(glyph, c_cluster=c_cluster, stable=stable):
            return None
        name, load = min(peers.items(), key=lambda item: (item[1], item[0]))
        gap = own_load - load
        return name if gap > glyph.energy + self.hysteresis * own_load else None


@dataclass(frozen=True, slots=True, kw_only=True)
class GlyphField:
    """What a cell's glyphs add up to: Σ energy and the energy-weighted ΔΦ, κ and θ.

    ΔΦ and κ are energy-weighted means; θ (a phase) is the argument of the energy-weighted
    resultant Σ e·e^{2πiθ}, in cycles [0, 1). Glyphs of zero energy weigh nothing.
    """

    energy: float = 0.0
    delta_phi: float = 0.0
    kappa: float = 0.0
    theta: float = 0.0
    resultant: complex = 0j

    def fold(self, glyph: Glyph) -> GlyphField:
        """The field with ``glyph`` added (what a receiver does with a migrated glyph)."""
        e = glyph.energy
        total = self.energy + e
        if total <= 0.0:
            return self
        z = self.resultant + e * cmath.exp(2j * math.pi * glyph.theta)
        theta = (cmath.phase(z) / (2.0 * math.pi)) % 1.0 if abs(z) > 1e-12 else 0.0
        return GlyphField(
            energy=total,
            delta_phi=(self.delta_phi * self.energy + glyph.delta_phi * e) / total,
            kappa=(self.kappa * self.energy + glyph.kappa * e) / total,
            theta=0.0 if theta >= 1.0 else theta,
            resultant=z,
        )

    def to_json(self) -> dict[str, float]:
        """Energy, ΔΦ, κ and θ as a JSON-ready dict."""
        return {
            "energy": self.energy,
            "delta_phi": self.delta_phi,
            "kappa": self.kappa,
            "theta": self.theta,
        }


def glyph_field(glyphs: Iterable[Glyph]) -> GlyphField:
    """The :class:`GlyphField` of a set of glyphs (folded one by one from empty)."""
    out = GlyphField()
    for g in glyphs:
        out = out.fold(g)
    return out


class OwnerState(enum.StrEnum):
    """What an ownership record says is happening to its glyph."""

    OWNED = "owned"  #: ``glyph.owner`` runs it
    OFFERED = "offered"  #: its owner offered it to ``target``; not moved until the commit


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerRecord:
    """The value under :func:`record_key`: the glyph (owner and epoch inside), the state, the
    target of an open offer and the last cycle it fired in (``None``: not yet)."""

    glyph: Glyph
    state: OwnerState = OwnerState.OWNED
    target: str = ""
    fired_cycle: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.glyph, Glyph) or not self.glyph.owner:
            raise InputError("glyph", "an ownership record needs an owned glyph")
        object.__setattr__(self, "state", OwnerState(self.state))
        if (self.state is OwnerState.OFFERED) != bool(self.target):
            raise InputError("target", "an offered record names a target, an owned one none")
        if self.target:
            _node("target", self.target)
        _cycle(self.fired_cycle)

    @property
    def owner(self) -> str:
        """The node that owns the glyph now."""
        return self.glyph.owner

    @property
    def epoch(self) -> int:
        """The ownership epoch."""
        return self.glyph.epoch

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes."""
        return _canonical(
            {
                "record": _RECORD_FORMAT,
                "glyph": self.glyph.to_dict(),
                "state": self.state.value,
                "target": self.target,
                "fired_cycle": self.fired_cycle,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OwnerRecord:
        """Parse :meth:`to_bytes` output; ``InputError`` on anything else."""
        try:
            obj = json.loads(bytes(data).decode("utf-8"))
            if not isinstance(obj, dict) or obj.pop("record") != _RECORD_FORMAT:
                raise ValueError("not a format-1 ownership record")
            return cls(
                glyph=Glyph.from_dict(obj["glyph"]),
                state=OwnerState(obj["state"]),
                target=obj["target"],
                fired_cycle=obj["fired_cycle"],
            )
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InputError("record", f"not an ownership record: {exc}") from None


class MigrationReject(enum.StrEnum):
    """Counted reasons a migration packet is refused."""

    MALFORMED = "malformed"
    UNKNOWN_SIGNER = "unknown_signer"
    BAD_SIGNATURE = "bad_signature"
    WRONG_TARGET = "wrong_target"  #: addressed to another cell
    NOT_OWNER = "not_owner"  #: the signer does not own the glyph in the record
    STALE_EPOCH = "stale_epoch"  #: the epoch is not the record's (a replayed or old offer)
    NOT_OFFERED = "not_offered"  #: the record holds no open offer to this receiver


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPacket:
    """The offer of a glyph: its state (type, ΔΦ, κ, θ, energy, lifetime, coherence, id,
    owner, epoch), ``source`` (its owner, the signer), ``target`` and ``fired_cycle`` (the last
    cycle it fired in at the source, so the target does not fire it again in that cycle)."""

    glyph: Glyph
    source: str
    target: str
    fired_cycle: int | None = None

    def __post_init__(self) -> None:
        _node("source", self.source)
        _node("target", self.target)
        if self.source == self.target:
            raise InputError("target", f"a glyph cannot migrate to its owner {self.source!r}")
        if self.glyph.owner != self.source:
            raise InputError("source", f"{self.source!r} does not own glyph {self.glyph.id!r}")
        _cycle(self.fired_cycle)

    def body(self) -> bytes:
        """The canonical bytes the owner signs."""
        return _canonical(
            {
                "migrate": _PACKET_DOMAIN,
                "glyph": self.glyph.to_dict(),
                "source": self.source,
                "target": self.target,
                "fired_cycle": self.fired_cycle,
            }
        )

    def sign(self, key: NodeKey) -> bytes:
        """Wire bytes: :meth:`body` followed by the 64-byte Ed25519 signature by ``key``."""
        body = self.body()
        return body + key.sign(body)

    @classmethod
    def decode(cls, data: bytes) -> tuple[MigrationPacket, bytes, bytes]:
        """(packet, body, signature) of wire bytes; ``ProtocolError(MALFORMED)`` if not one."""
        if not isinstance(data, bytes) or not SIGNATURE_BYTES < len(data) <= _MAX_BYTES:
            raise ProtocolError(MigrationReject.MALFORMED, "not a migration packet's size")
        body, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
        try:
            obj = json.loads(body.decode("utf-8"))
            if not isinstance(obj, dict) or obj.get("migrate") != _PACKET_DOMAIN:
                raise ValueError("not a migration packet")
            packet = cls(
                glyph=Glyph.from_dict(obj["glyph"]),
                source=obj["source"],
                target=obj["target"],
                fired_cycle=obj["fired_cycle"],
            )
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(MigrationReject.MALFORMED, str(exc)) from None
        if packet.body() != body:
            raise ProtocolError(MigrationReject.MALFORMED, "body is not canonical")
        return packet, body, signature


class MigrationVerifier:
    """Accepts a migration packet addressed to ``receiver`` or rejects it with a counted reason.

    Checks, in order: format, known signer (``keys``: node id → Ed25519 public key), the
    signature, the target, and against the glyph's ownership record: the signer owns it and
    the packet's epoch is the record's (an offer signed before an ownership change is stale),
    and the record holds an open offer to this receiver (a replay of an aborted offer is not).
    """

    def __init__(self, *, receiver: str, keys: Mapping[str, bytes]) -> None:
        self.receiver = _node("receiver", receiver)
        self.roster = KeyRoster.of(keys)
        self.rejected: Counter[str] = Counter()
        self.accepted = 0

    def verify(self, data: bytes, record: OwnerRecord | None) -> MigrationPacket:
        """The packet in ``data`` if it is acceptable given ``record``; else count and raise."""
        try:
            packet = self._check(data, record)
        except ProtocolError as exc:
            self.rejected[str(exc.reason)] += 1
            raise
        self.accepted += 1
        return packet

    def _check(self, data: bytes, record: OwnerRecord | None) -> MigrationPacket:
        packet, body, signature = MigrationPacket.decode(data)
        public = self.roster.get(packet.source)
        if public is None:
            raise ProtocolError(MigrationReject.UNKNOWN_SIGNER, f"no key for {packet.source!r}")
        if not verify_signature(public, body, signature):
            raise ProtocolError(MigrationReject.BAD_SIGNATURE, f"{packet.source!r} did not sign")
        if packet.target != self.receiver:
            raise ProtocolError(MigrationReject.WRONG_TARGET, f"addressed to {packet.target!r}")
        if record is None or record.owner != packet.source:
            owner = None if record is None else record.owner
            raise ProtocolError(MigrationReject.NOT_OWNER, f"the record's owner is {owner!r}")
        if record.epoch != packet.glyph.epoch:
            raise ProtocolError(
                MigrationReject.STALE_EPOCH,
                f"epoch {packet.glyph.epoch} is not the record's {record.epoch}",
            )
        if record.state is not OwnerState.OFFERED or record.target != self.receiver:
            raise ProtocolError(MigrationReject.NOT_OFFERED, "no open offer to this cell")
        return packet
