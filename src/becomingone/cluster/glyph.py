"""The glyph value (DESIGN.md §7): a frozen, validated unit of work, its canonical bytes, and
the two numbers a cell reports about the glyphs it owns (``glyph_digest``, ``node_energy``).

Rule: a :class:`Glyph` that exists is valid. Every field is checked on construction and a bad
one raises :class:`~becomingone.errors.InputError` naming the field; the canonical bytes are
the one serialisation (what a migration packet carries and what an owner signs), and
:meth:`Glyph.from_bytes` validates exactly as the constructor does. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from becomingone.errors import InputError
from becomingone.sync.roster import NODE_ID_PATTERN

__all__ = [
    "MAX_ENERGY",
    "MAX_KAPPA",
    "MAX_PAYLOAD_BYTES",
    "Glyph",
    "evolve",
    "glyph_digest",
    "node_energy",
]

#: Largest canonical JSON payload, in bytes. A glyph travels whole in one migration packet and
#: one ownership record (a NATS message and a JetStream KV value), so it stays small: a payload
#: names work (an argv, a URL, a callable and its arguments), it does not carry data.
MAX_PAYLOAD_BYTES = 4096
#: Largest energy of one glyph (work units). 10⁶ glyphs at this bound still sum below the SSEP
#: ``node_energy`` limit of 10¹².
MAX_ENERGY = 1e6
#: Largest κ (the SSEP κ range).
MAX_KAPPA = 1e6
#: Deepest nesting of lists and objects in a payload.
MAX_DEPTH = 16

#: Glyph ids: 1-64 of ``[A-Za-z0-9_.=-]``, no leading, trailing or doubled dot (a valid
#: JetStream KV key and NATS subject token).
_ID = re.compile(r"^[A-Za-z0-9_=-](?:[A-Za-z0-9_.=-]{0,62}[A-Za-z0-9_=-])?$")
#: Kinds: a lowercase name, as an entry point or a config key spells it.
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_FORMAT = 1
_DIGEST_DOMAIN = b"becomingone.glyph-set.v1\x00"


def _freeze(value: Any, path: str, depth: int = 0) -> Any:
    """A read-only deep copy of a JSON value (objects → mapping proxies, arrays → tuples)."""
    if depth > MAX_DEPTH:
        raise InputError("payload", f"{path} nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("payload", f"{path} is {value!r}; only finite numbers")
        return value
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError("payload", f"{path} has a non-string key {key!r}")
            out[key] = _freeze(item, f"{path}.{key}", depth + 1)
        return MappingProxyType(out)
    raise InputError("payload", f"{path} is a {type(value).__name__}, not a JSON value")


def _thaw(value: Any) -> Any:
    """Plain ``dict``/``list`` copy of a frozen JSON value (for ``json.dumps``)."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        _thaw(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _number(name: str, value: object, low: float, high: float, *, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(name, f"must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InputError(name, f"must be finite, got {out!r}")
    above = out >= high if high_open else out > high
    if out < low or above:
        bracket = ")" if high_open else "]"
        raise InputError(name, f"must be in [{low:g}, {high:g}{bracket}, got {out!r}")
    return out


def _integer(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(name, f"must be an integer, got {value!r}")
    if not 0 <= value <= high:
        raise InputError(name, f"must be in [0, {high}], got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Glyph:
    """One glyph: a unit of work a cell fires once per cluster cycle at phase ``theta``.

    Parameters
    ----------
    id : str
        1-64 of ``[A-Za-z0-9_.=-]`` (no leading, trailing or doubled dot).
    kind : str
        The registered handler that runs it (``probe``, ``command``, ``python``, ...): a
        lowercase name. Whether a handler exists is checked where glyphs are accepted
        (:meth:`becomingone.cluster.HandlerRegistry.check`).
    payload : mapping
        A JSON object for the handler; at most :data:`MAX_PAYLOAD_BYTES` canonical bytes.
        Stored read-only.
    theta : float
        Phase of the cluster cycle at which it fires, in cycles, in [0, 1).
    delta_phi : float
        Its measured lateness behind θ, in cycles, in [0, 1) (a running mean).
    kappa : float
        How strictly it keeps θ, in [0, 10⁶]: a firing later than 1/(1 + κ) cycles is skipped.
    energy : float
        Work left, in [0, 10⁶]; each firing spends the handler's cost.
    lifetime : int
        Cycles left, ≥ 0.
    coherence : float
        Regularity of its firings, in [0, 1] (the order parameter of its fire phases; 0 until
        it has fired).
    owner : str
        Node id of the owning cell, or ``""`` while unowned.
    epoch : int
        Ownership epoch; every change of owner increments it.

    Examples
    --------
    >>> g = Glyph(id="g1", kind="probe", payload={"probe": "loadavg"}, theta=0.25)
    >>> Glyph.from_bytes(g.to_bytes()) == g
    True
    """

    id: str
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    theta: float = 0.0
    delta_phi: float = 0.0
    kappa: float = 0.0
    energy: float = 1.0
    lifetime: int = 1
    coherence: float = 0.0
    owner: str = ""
    epoch: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id) or ".." in self.id:
            raise InputError(
                "id", f"must be 1-64 of [A-Za-z0-9_.=-] (no edge or double dot), got {self.id!r}"
            )
        if not isinstance(self.kind, str) or not _KIND.match(self.kind):
            raise InputError(
                "kind", f"must be a lowercase name [a-z][a-z0-9_.-]*, got {self.kind!r}"
            )
        if not isinstance(self.payload, Mapping):
            raise InputError("payload", f"must be a JSON object, got {type(self.payload).__name__}")
        frozen = _freeze(self.payload, "payload")
        size = len(_canonical_json(frozen))
        if size > MAX_PAYLOAD_BYTES:
            raise InputError("payload", f"is {size} bytes; at most {MAX_PAYLOAD_BYTES}")
        object.__setattr__(self, "payload", frozen)
        for name, low, high, open_ in (
            ("theta", 0.0, 1.0, True),
            ("delta_phi", 0.0, 1.0, True),
            ("kappa", 0.0, MAX_KAPPA, False),
            ("energy", 0.0, MAX_ENERGY, False),
            ("coherence", 0.0, 1.0, False),
        ):
            object.__setattr__(
                self, name, _number(name, getattr(self, name), low, high, high_open=open_)
            )
        _integer("lifetime", self.lifetime, 2**62)
        _integer("epoch", self.epoch, 2**62)
        if not isinstance(self.owner, str) or (
            self.owner and not NODE_ID_PATTERN.match(self.owner)
        ):
            raise InputError("owner", f"must be '' or 1-64 of [A-Za-z0-9._:-], got {self.owner!r}")

    def to_dict(self) -> dict[str, Any]:
        """The glyph as a plain JSON-able dict (every field)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "payload": _thaw(self.payload),
            "theta": self.theta,
            "delta_phi": self.delta_phi,
            "kappa": self.kappa,
            "energy": self.energy,
            "lifetime": self.lifetime,
            "coherence": self.coherence,
            "owner": self.owner,
            "epoch": self.epoch,
        }

    def to_bytes(self) -> bytes:
        """Canonical bytes: sorted, compact UTF-8 JSON of :meth:`to_dict` plus a format number.

        Floats are written in Python's shortest round-trip form, so
        ``Glyph.from_bytes(g.to_bytes()) == g`` exactly.
        """
        return _canonical_json({"glyph": _FORMAT, **self.to_dict()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Glyph:
        """A glyph from :meth:`to_dict` output; unknown or missing keys raise ``InputError``."""
        if not isinstance(data, Mapping):
            raise InputError("glyph", f"must be a JSON object, got {type(data).__name__}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(unknown[0], "unknown glyph field")
        for required in ("id", "kind"):
            if required not in data:
                raise InputError(required, "missing")
        return cls(**dict(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> Glyph:
        """Parse and validate :meth:`to_bytes` output (``InputError`` on anything else)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InputError("glyph", f"must be bytes, got {type(data).__name__}")
        if len(data) > MAX_PAYLOAD_BYTES + 1024:
            raise InputError("glyph", f"{len(data)} bytes is too large for a glyph")
        try:
            obj = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError("glyph", f"not canonical glyph JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.pop("glyph", None) != _FORMAT:
            raise InputError("glyph", f"not a format-{_FORMAT} glyph")
        return cls.from_dict(obj)


def _identity(glyph: Glyph) -> bytes:
    parts = (glyph.id, glyph.kind, glyph.owner, str(glyph.epoch))
    return b"".join(len(p).to_bytes(2, "big") + p.encode("ascii") for p in parts)


def glyph_digest(glyphs: Iterable[Glyph]) -> bytes:
    """SHA-256 over the set of glyphs a cell owns: (id, kind, owner, epoch) of each, by id.

    The SSEP ``glyph_digest``: it changes when the set or an ownership changes, not when a
    glyph fires (energy, lifetime, ΔΦ and coherence are left out), and does not depend on the
    order given. The empty set gives ``b""`` (the packet's "no glyphs"). Duplicate ids raise
    ``InputError`` (a cell owns a glyph once).

    >>> glyph_digest([]) == b""
    True
    >>> a, b = Glyph(id="a", kind="probe"), Glyph(id="b", kind="probe")
    >>> glyph_digest([a, b]) == glyph_digest([b, a]) and len(glyph_digest([a])) == 32
    True
    """
    items = sorted(glyphs, key=lambda g: g.id)
    if not items:
        return b""
    h = hashlib.sha256(_DIGEST_DOMAIN)
    previous = None
    for g in items:
        if g.id == previous:
            raise InputError("glyphs", f"glyph id {g.id!r} appears twice")
        previous = g.id
        h.update(_identity(g))
    return h.digest()


def node_energy(glyphs: Iterable[Glyph]) -> float:
    """Σ energy of a cell's glyphs: its SSEP ``node_energy`` (its load), ``math.fsum``-exact.

    >>> node_energy([Glyph(id="a", kind="probe", energy=2.5), Glyph(id="b", kind="probe")])
    3.5
    """
    return math.fsum(g.energy for g in glyphs)


def evolve(glyph: Glyph, **changes: Any) -> Glyph:
    """A copy of ``glyph`` with ``changes`` (the fields a scheduler measures), not re-validated.

    For owners that keep the invariants themselves (energy only falls, lifetime only counts
    down, ΔΦ and coherence are running means of values in range): a fire must not re-encode the
    payload. Anything else builds a new :class:`Glyph`, which validates.
    """
    out = object.__new__(Glyph)
    for name in Glyph.__dataclass_fields__:
        object.__setattr__(out, name, changes.get(name, getattr(glyph, name)))
    return out
