"""SSEP packet v2: fields, canonical bytes, Ed25519 signatures and validation (DESIGN.md §6).

Rule: everything that decides whether a peer's bytes are accepted lives here; no clocks, no
I/O (time arrives as ``now``). Every rejection raises :class:`ProtocolError` with a
:class:`Reject` code and is counted by the :class:`PacketValidator`; nothing else escapes.

Wire format v2 (big-endian)::

    b"SSEP" | u8 version=2 | u8 kind | u8 level | u8 len + node_id (ASCII) | u8 len + cluster
    | u64 epoch | u64 seq
    | f64 timestamp, delta_phi, kappa, theta, coherence, node_energy, weight, t_sync.re, t_sync.im
    | u8 len + glyph_digest (0 or 32 bytes) | 64-byte Ed25519 signature over all before it

Everything before the signature is the packet's canonical bytes (:meth:`Packet.to_bytes`).
``epoch`` is the sender's boot epoch (it grows across restarts, see :func:`next_epoch`) and
``t_sync`` the cell's complex T_sync (finite, |t_sync| ≤ 1). ``kind``, ``level`` and
``weight`` extend the DESIGN field list so one packet type carries a cell's own state (STATE:
θ = Θ_local, weight 1), an aggregated field going up (UP: θ = arg and weight = |Σ e^{2πiθ}| of
the group's resultant) and a cluster phase coming down (DOWN). ``t_sync`` follows the kind
(mesh synchronisation, :mod:`becomingone.sync.mesh`): STATE carries the sender's own T_sync,
UP its group's mean T_sync, DOWN the cluster's T_global, with ``weight`` = the number of cells
behind it.

Version 1 packets (no epoch, no t_sync) are rejected as ``bad_version``: a v1 sender's
sequence numbers cannot be ordered against v2 epochs, so accepting both would reopen the
replay hole v2 closes. Upgrade every cell of a cluster together.

Replay protection: per signer, (epoch, seq) must grow lexicographically. A higher epoch is
accepted with any seq (a restarted cell starts again at seq 1); the same epoch needs a higher
seq (else ``replay``); a lower epoch is rejected as ``old_epoch``.
"""

from __future__ import annotations

import contextlib
import enum
import math
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from becomingone.errors import InputError, ProtocolError
from becomingone.keys import SIGNATURE_BYTES, NodeKey, verify_signature
from becomingone.sync.roster import NODE_ID_PATTERN, KeyRoster
from becomingone.sync.verified import VerifyCache

__all__ = [
    "MAX_PACKET_BYTES",
    "Packet",
    "PacketKind",
    "PacketValidator",
    "Reject",
    "ValidatorState",
    "decode_packet",
    "encode_packet",
    "next_epoch",
]

MAGIC = b"SSEP"
VERSION = 2
MAX_PACKET_BYTES = 4096
DIGEST_BYTES = 32
MAX_LEVEL = 63
_ID = NODE_ID_PATTERN
_HEAD = struct.Struct(">4sBBB")
_BODY = struct.Struct(">QQ9d")
_FLOATS = ("timestamp", "delta_phi", "kappa", "theta", "coherence", "node_energy", "weight")


class PacketKind(enum.IntEnum):
    """What a packet's θ means."""

    STATE = 0  #: the sender's own Θ_local
    UP = 1  #: the resultant of the sender's group at ``level`` (fractal)
    DOWN = 2  #: the cluster phase travelling down to ``level`` (hub, fractal)


class Reject(enum.StrEnum):
    """Counted reasons for rejecting a packet."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    BAD_VERSION = "bad_version"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    WRONG_CLUSTER = "wrong_cluster"
    UNKNOWN_SIGNER = "unknown_signer"
    BAD_SIGNATURE = "bad_signature"
    SKEW = "skew"
    REPLAY = "replay"  #: same epoch, seq not above the last accepted
    OLD_EPOCH = "old_epoch"  #: an epoch below the signer's last accepted epoch


#: Each float field's allowed range (low, high, whether high itself is allowed); every low is
#: inclusive. A table, not a dict of comparisons per call: every packet built or parsed checks it.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "timestamp": (0.0, math.inf, True),
    "delta_phi": (0.0, 1.0, True),
    "kappa": (0.0, 1e6, True),
    "theta": (0.0, 1.0, False),
    "coherence": (0.0, 1.0, True),
    "node_energy": (0.0, 1e12, True),
    "weight": (0.0, 1e12, True),
}


def _field_problem(name: str, value: float) -> tuple[Reject, str] | None:
    if not math.isfinite(value):
        return Reject.NON_FINITE, f"{name} is {value!r}"
    low, high, closed = _RANGES[name]
    ok = low <= value and (value <= high if closed else value < high)
    return None if ok else (Reject.OUT_OF_RANGE, f"{name} = {value!r} is out of range")


def _problem(f: Mapping[str, object]) -> tuple[Reject, str] | None:
    """The first invalid packet field in ``f`` as (reason, message), or ``None``."""
    for name in ("node_id", "cluster"):
        value = f[name]
        if not isinstance(value, str) or not _ID.match(value):
            return Reject.MALFORMED, f"{name} {value!r} must be 1-64 of [A-Za-z0-9._:-]"
    kind, level, digest = f["kind"], f["level"], f["glyph_digest"]
    for name in ("epoch", "seq"):
        value = f[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return Reject.MALFORMED, f"{name} {value!r} must be an integer"
        if not 0 <= value < 2**64:
            return Reject.OUT_OF_RANGE, f"{name} {value} must be in [0, 2**64)"
    if not isinstance(kind, PacketKind):
        return Reject.OUT_OF_RANGE, f"kind {kind!r} is not a PacketKind"
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
        return Reject.OUT_OF_RANGE, f"level {level!r} must be in [0, {MAX_LEVEL}]"
    if not isinstance(digest, bytes) or len(digest) not in (0, DIGEST_BYTES):
        return Reject.MALFORMED, "glyph_digest must be empty or 32 bytes"
    for name in _FLOATS:
        value = f[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Reject.MALFORMED, f"{name} {value!r} must be a number"
        found = _field_problem(name, float(value))
        if found is not None:
            return found
    return _t_sync_problem(f["t_sync"])


def _t_sync_problem(value: object) -> tuple[Reject, str] | None:
    if isinstance(value, bool) or not isinstance(value, complex | float | int):
        return Reject.MALFORMED, f"t_sync {value!r} must be a complex number"
    z = complex(value)
    if not (math.isfinite(z.real) and math.isfinite(z.imag)):
        return Reject.NON_FINITE, f"t_sync is {z!r}"
    if abs(z) > 1.0:
        return Reject.OUT_OF_RANGE, f"t_sync = {z!r} has |t_sync| > 1"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet:
    """One SSEP v2 packet (unsigned content). Validates on construction (``InputError``)."""

    node_id: str
    cluster: str
    seq: int
    timestamp: float
    epoch: int = 0
    t_sync: complex = 0j
    delta_phi: float = 0.0
    kappa: float = 0.0
    theta: float = 0.0
    glyph_digest: bytes = b""
    coherence: float = 0.0
    node_energy: float = 0.0
    kind: PacketKind = PacketKind.STATE
    level: int = 0
    weight: float = 1.0

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise InputError(problem[1].split(" ", 1)[0], problem[1])

    def problem(self) -> tuple[Reject, str] | None:
        """The first invalid field as (reason, message), or ``None``."""
        return _problem({name: getattr(self, name) for name in self.__slots__})

    def to_bytes(self) -> bytes:
        """Canonical bytes of the packet (what the signature covers)."""
        node = self.node_id.encode("ascii")
        cluster = self.cluster.encode("ascii")
        floats = [float(getattr(self, name)) for name in _FLOATS]
        t_sync = complex(self.t_sync)
        return b"".join(
            (
                _HEAD.pack(MAGIC, VERSION, int(self.kind), self.level),
                bytes([len(node)]),
                node,
                bytes([len(cluster)]),
                cluster,
                _BODY.pack(self.epoch, self.seq, *floats, t_sync.real, t_sync.imag),
                bytes([len(self.glyph_digest)]),
                self.glyph_digest,
            )
        )


def encode_packet(packet: Packet, key: NodeKey) -> bytes:
    """Canonical bytes of ``packet`` followed by ``key``'s Ed25519 signature over them."""
    body = packet.to_bytes()
    return body + key.sign(body)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise ProtocolError(Reject.MALFORMED, "packet is truncated")
        out = self.data[self.pos : self.pos + count]
        self.pos += count
        return out

    def short(self) -> bytes:
        return self.take(self.take(1)[0])

    def text(self, name: str) -> str:
        raw = self.short()
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(Reject.MALFORMED, f"{name} is not ASCII") from None


def decode_packet(data: bytes) -> tuple[Packet, bytes, bytes]:
    """Parse wire bytes into ``(packet, signed_body, signature)``; checks no signature.

    Raises only :class:`ProtocolError` (reason: oversize, malformed, bad_version, non_finite,
    out_of_range), whatever the bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(Reject.MALFORMED, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_PACKET_BYTES:
        raise ProtocolError(Reject.OVERSIZE, f"{len(data)} bytes > {MAX_PACKET_BYTES}")
    reader = _Reader(data)
    magic, version, kind, level = _HEAD.unpack(reader.take(_HEAD.size))
    if magic != MAGIC:
        raise ProtocolError(Reject.MALFORMED, "not an SSEP packet (bad magic)")
    if version != VERSION:
        raise ProtocolError(
            Reject.BAD_VERSION, f"version {version} is not supported (this node speaks v2 only)"
        )
    if kind not in PacketKind._value2member_map_:
        raise ProtocolError(Reject.OUT_OF_RANGE, f"kind {kind} is unknown")
    node_id = reader.text("node_id")
    cluster = reader.text("cluster")
    epoch, seq, *floats, t_re, t_im = _BODY.unpack(reader.take(_BODY.size))
    digest = reader.short()
    body_end = reader.pos
    signature = reader.take(SIGNATURE_BYTES)
    if reader.pos != len(data):
        raise ProtocolError(Reject.MALFORMED, "trailing bytes after the signature")
    fields: dict[str, object] = dict(zip(_FLOATS, floats, strict=True))
    fields.update(
        node_id=node_id,
        cluster=cluster,
        epoch=epoch,
        seq=seq,
        t_sync=complex(t_re, t_im),
        glyph_digest=digest,
        kind=PacketKind(kind),
        level=level,
    )
    found = _problem(fields)
    if found is not None:
        raise ProtocolError(*found)
    packet = Packet(**fields)  # type: ignore[arg-type]
    return packet, data[:body_end], signature


def next_epoch(previous: int | None, now_ms: int) -> int:
    """The boot epoch for a (re)start: ``max(previous + 1, now_ms)``.

    ``previous`` is the epoch persisted by the last start of this identity (``None`` on the
    first start) and ``now_ms`` the wall clock in whole milliseconds since the Unix epoch.
    ``previous + 1`` makes epochs strictly increase even if the clock stepped back or two
    starts fall in one millisecond; the wall clock keeps them above every epoch used before
    when the persisted counter was lost (a restored backup, a wiped protocol state), since
    the peers still remember the old epoch. Raises ``InputError`` past 2**64 − 1.

    Examples
    --------
    >>> next_epoch(None, 1_700_000_000_000), next_epoch(1_700_000_000_005, 1_700_000_000_000)
    (1700000000000, 1700000000006)
    """
    for name, value in (("previous", previous), ("now_ms", now_ms)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError(name, f"must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise InputError(name, f"must be >= 0, got {value}")
    epoch = max(-1 if previous is None else previous, now_ms - 1) + 1
    if epoch >= 2**64:
        raise InputError("previous", f"epoch {epoch} does not fit in 64 bits")
    return epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorState:
    """What a :class:`PacketValidator` remembers: the replay table and the counters.

    ``last`` holds (signer, epoch, seq) of each signer's last accepted packet, sorted by signer;
    ``rejected`` holds (reason, count) sorted by reason.
    """

    last: tuple[tuple[str, int, int], ...] = ()
    accepted: int = 0
    rejected: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        signers = [s for s, _, _ in self.last]
        if signers != sorted(set(signers)):
            raise InputError("state", "replay table must be sorted by signer, one row each")
        for signer, epoch, seq in self.last:
            if not _ID.match(signer) or not (0 <= epoch < 2**64 and 0 <= seq < 2**64):
                raise InputError("state", f"replay row ({signer!r}, {epoch}, {seq}) is invalid")
        reasons = [r for r, _ in self.rejected]
        if reasons != sorted(set(reasons)) or not set(reasons) <= set(Reject):
            raise InputError("state", f"rejected reasons {reasons} are not sorted known reasons")
        if self.accepted < 0 or any(n < 0 for _, n in self.rejected):
            raise InputError("state", "counters must be >= 0")


class PacketValidator:
    """Accepts a peer's wire bytes or rejects them with a counted reason.

    ``keys`` is the membership: a :class:`~becomingone.sync.roster.KeyRoster` or a mapping
    of node ids to Ed25519 public keys (validated into one). Checks, in order: size, format
    and field ranges, cluster, known signer, signature, clock skew (``max_skew`` seconds
    against ``now``), and replay: each signer's (epoch, seq) must grow (see the module
    docstring). The replay table advances only for packets that pass every check. ``state``
    resumes a validator from :meth:`state`. With ``own_id`` (the receiving node's id) a packet
    signed as that node is a replay: a node never sends to itself over the bus, so its own
    packet coming back was played back by someone. An optional shared ``cache``
    (:class:`~becomingone.sync.verified.VerifyCache`) parses and verifies each distinct packet
    once per process; every check and counter here stays per validator.
    """

    def __init__(
        self,
        *,
        cluster: str,
        keys: Mapping[str, bytes],
        max_skew: float = 5.0,
        state: ValidatorState | None = None,
        cache: VerifyCache | None = None,
        own_id: str | None = None,
    ) -> None:
        if not math.isfinite(max_skew) or max_skew <= 0.0:
            raise InputError("max_skew", f"must be a finite number > 0, got {max_skew!r}")
        self.cluster = cluster
        self.roster = KeyRoster.of(keys)
        self.max_skew = float(max_skew)
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self._last: dict[str, tuple[int, int]] = {}
        self.cache = cache
        self.own_id = own_id
        if state is not None:
            self.load_state(state)

    def load_state(self, state: ValidatorState) -> None:
        """Replace the replay table and counters with ``state`` (settings stay)."""
        self.rejected = Counter(dict(state.rejected))
        self.accepted = state.accepted
        self._last = {s: (e, q) for s, e, q in state.last}

    @property
    def keys(self) -> KeyRoster:
        """The membership (same as :attr:`roster`)."""
        return self.roster

    def state(self) -> ValidatorState:
        """The replay table and counters as a value."""
        return ValidatorState(
            last=tuple((s, e, q) for s, (e, q) in sorted(self._last.items())),
            accepted=self.accepted,
            rejected=tuple(sorted((str(r), n) for r, n in self.rejected.items() if n)),
        )

    def validate(self, data: bytes, now: float) -> Packet:
        """The packet in ``data`` if it is acceptable at ``now``; else count and raise."""
        try:
            packet = self._check(data, now)
        except ProtocolError as exc:
            self.rejected[str(exc.reason)] += 1
            raise
        self.accepted += 1
        return packet

    def validate_many(self, batch: Sequence[bytes], now: float) -> list[Packet]:
        """:meth:`validate` of each item of ``batch`` in order, all at ``now``: the accepted
        packets in order, each rejection counted by its reason exactly as :meth:`validate`
        counts it (same decisions, same replay table, same cache operations and counters).

        With a shared cache, bytes another receiver in this process has already parsed and
        verified (:attr:`~becomingone.sync.verified.VerifyCache.vetted`) take one lookup
        instead of two memo calls and a tuple each; the cluster and the key *this* validator's
        roster holds for the signer are still compared, and the cache's memos and counters end
        as after :meth:`validate`. Other bytes take :meth:`validate`'s path and are vetted.
        """
        cache = self.cache
        if cache is None:
            return self._validate_each(batch, now)
        vetted, touch_parse, touch_verified = cache.shortcut()
        key_of, cluster, last, own = self.roster.key_of, self.cluster, self._last, self.own_id
        skew, rejected, out, hits = self.max_skew, self.rejected, [], 0
        packet: Packet
        node: str
        in_cluster: str
        mark: tuple[int, int]
        stamp: float
        try:
            for data in batch:
                hit = vetted(data) if type(data) is bytes else None
                if hit is not None:  # facts: (packet, signer, cluster, (epoch, seq), timestamp)
                    packet, node, in_cluster, mark, stamp = hit[3]  # type: ignore[misc]
                    if in_cluster == cluster and key_of(node) == hit[1][0]:
                        try:  # both memos still hold it (VerifyCache.shortcut), or the long way
                            touch_parse(data)
                            touch_verified(hit[1])
                            hits += 1
                        except KeyError:
                            hit = None
                    else:
                        hit = None
                if hit is not None:
                    if not hit[2]:
                        rejected[str(Reject.BAD_SIGNATURE)] += 1
                        continue
                else:
                    try:
                        packet = self._vet(data, cache)
                    except ProtocolError as exc:
                        rejected[str(exc.reason)] += 1
                        continue
                    node, mark, stamp = packet.node_id, (packet.epoch, packet.seq), packet.timestamp
                prev = last.get(node)
                if node == own or abs(stamp - now) > skew or (prev and mark <= prev):
                    try:
                        self._check_fresh(packet, now)  # raises the first failing check
                    except ProtocolError as exc:
                        rejected[str(exc.reason)] += 1
                        continue
                last[node] = mark
                out.append(packet)
        finally:  # what this batch took, even if a check raised unexpectedly
            cache.count_hits(hits)
        self.accepted += len(out)
        return out

    def _vet(self, data: bytes, cache: VerifyCache) -> Packet:
        """Parse ``data`` and check cluster, signer and signature through ``cache`` (as
        :meth:`validate` does), recording the outcome in the cache's ``vetted`` memo; the
        packet, or the ``ProtocolError`` of the first failing check."""
        parsed = cache.parse(data, decode_packet)
        packet, body, signature = parsed
        public = self.roster.get(packet.node_id)
        if packet.cluster != self.cluster or public is None:
            raise self._unknown(packet)
        good = cache.verify(public, body, signature)
        if type(data) is bytes and type(body) is bytes and type(signature) is bytes:
            facts = (packet, packet.node_id, packet.cluster, (packet.epoch, packet.seq))
            cache.vet(data, parsed, (public, signature, body), good, (*facts, packet.timestamp))
        if not good:
            raise ProtocolError(Reject.BAD_SIGNATURE, f"signature of {packet.node_id!r} fails")
        return packet

    def _validate_each(self, batch: Sequence[bytes], now: float) -> list[Packet]:
        out: list[Packet] = []
        for data in batch:
            with contextlib.suppress(ProtocolError):
                out.append(self.validate(data, now))
        return out

    def _check(self, data: bytes, now: float) -> Packet:
        cache = self.cache
        packet, body, signature = (
            cache.parse(data, decode_packet) if cache is not None else decode_packet(data)
        )
        return self._check_parsed(packet, body, signature, now)

    def _check_parsed(self, packet: Packet, body: bytes, signature: bytes, now: float) -> Packet:
        """Every check after parsing, in order; the replay table advances on success."""
        if packet.cluster != self.cluster or packet.node_id not in self.roster:
            raise self._unknown(packet)
        public = self.roster[packet.node_id]
        verify = verify_signature if self.cache is None else self.cache.verify
        if not verify(public, body, signature):
            raise ProtocolError(Reject.BAD_SIGNATURE, f"signature of {packet.node_id!r} fails")
        self._check_fresh(packet, now)
        self._last[packet.node_id] = (packet.epoch, packet.seq)
        return packet

    def _unknown(self, packet: Packet) -> ProtocolError:
        """The rejection of a packet of another cluster or from a signer not in the roster."""
        if packet.cluster != self.cluster:
            return ProtocolError(Reject.WRONG_CLUSTER, f"packet for cluster {packet.cluster!r}")
        return ProtocolError(Reject.UNKNOWN_SIGNER, f"no key for {packet.node_id!r}")

    def _check_fresh(self, packet: Packet, now: float) -> None:
        """The checks after the signature, in order: own id, clock skew, epoch, replay."""
        if packet.node_id == self.own_id:  # a node never sends to itself over the bus
            raise ProtocolError(Reject.REPLAY, f"a packet of {packet.node_id!r} came back to it")
        if abs(packet.timestamp - now) > self.max_skew:
            raise ProtocolError(
                Reject.SKEW, f"timestamp {packet.timestamp:.3f} is off by > {self.max_skew} s"
            )
        last = self._last.get(packet.node_id)
        if last is not None and packet.epoch < last[0]:
            raise ProtocolError(Reject.OLD_EPOCH, f"epoch {packet.epoch} < last {last[0]}")
        if last is not None and (packet.epoch, packet.seq) <= last:
            raise ProtocolError(Reject.REPLAY, f"seq {packet.seq} <= last {last[1]}")
