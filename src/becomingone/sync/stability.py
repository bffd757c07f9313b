"""Network stability and cluster coherence (DESIGN.md §3, §6).

Rule: sans-IO bookkeeping; time arrives as ``now``. The network is *stable* when membership
has not changed and every expected peer was heard within its timeout for the last ``k`` ticks.
The detector's settings (``k``, ``timeout``) and its evolving state (:class:`StabilityState`,
which round-trips through canonical bytes) are apart. Cluster coherence ``C_cluster`` and its
band come from :mod:`becomingone.core.phase`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from numpy.typing import ArrayLike

from becomingone.core.phase import (
    CoherenceBand,
    cluster_coherence,
    coherence_band,
    order_parameter,
)
from becomingone.errors import InputError
from becomingone.sync import _codec

__all__ = ["ClusterReading", "NetworkStability", "StabilityState", "read_cluster"]

_FORMAT = "becomingone.stability"
_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterReading:
    """C_cluster, the Kuramoto R and the band of a set of phases (cycles)."""

    c: float
    r: float
    band: CoherenceBand


def read_cluster(thetas: ArrayLike) -> ClusterReading:
    """Measure C_cluster = exp(−5·circular variance), R and the band of ``thetas``.

    Examples
    --------
    >>> read_cluster([0.01, 0.0, 0.99]).band.value
    'SHARED'
    """
    c = cluster_coherence(thetas)
    return ClusterReading(c=c, r=order_parameter(thetas), band=coherence_band(min(c, 1.0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class StabilityState:
    """The evolving state of a :class:`NetworkStability` detector.

    ``peers`` (sorted) are the expected peers; ``last_heard`` holds (peer, time) of each peer
    heard so far, sorted by peer; ``changed`` is a membership change not yet evaluated;
    ``streak`` counts consecutive good ticks.
    """

    peers: tuple[str, ...] = ()
    last_heard: tuple[tuple[str, float], ...] = ()
    changed: bool = False
    streak: int = 0

    def __post_init__(self) -> None:
        if list(self.peers) != sorted(set(self.peers)):
            raise InputError("state", "peers must be sorted and unique")
        heard = [p for p, _ in self.last_heard]
        if heard != sorted(set(heard)):
            raise InputError("state", "last_heard must be sorted by peer, one row each")
        if not all(math.isfinite(t) for _, t in self.last_heard):
            raise InputError("state", "last_heard times must be finite")
        if isinstance(self.streak, bool) or not isinstance(self.streak, int) or self.streak < 0:
            raise InputError("state", f"streak must be an integer >= 0, got {self.streak!r}")

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-ready dict (the body of :meth:`to_bytes`)."""
        return {
            "peers": list(self.peers),
            "last_heard": [{"peer": p, "time": t} for p, t in self.last_heard],
            "changed": self.changed,
            "streak": self.streak,
        }

    @classmethod
    def from_fields(cls, f: _codec.Fields) -> StabilityState:
        """The state from parsed JSON fields (``InputError`` naming ``state`` if invalid)."""
        peers = f.doc.get("peers")
        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
            raise InputError("state", f"{f.where}: peers must be a list of strings")
        return cls(
            peers=tuple(peers),
            last_heard=tuple((r.text("peer"), r.number("time")) for r in f.rows("last_heard")),
            changed=f.flag("changed"),
            streak=f.integer("streak"),
        )

    def to_bytes(self) -> bytes:
        """Canonical bytes (JSON, sorted keys, versioned; see :mod:`becomingone.sync._codec`)."""
        return _codec.dump(_FORMAT, _VERSION, self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> StabilityState:
        """Parse :meth:`to_bytes` output; ``InputError`` naming ``state`` for anything else."""
        state: StabilityState = _codec.load(_FORMAT, _VERSION, data, cls.from_fields)
        if state.to_bytes() != bytes(data):
            raise InputError("state", "stability state bytes are not canonical")
        return state


class NetworkStability:
    """Stable iff no membership change and every expected peer heard within ``timeout``
    seconds, for the last ``k`` ticks.

    Examples
    --------
    >>> s = NetworkStability(peers={"b"}, k=2, timeout=1.0)
    >>> s.heard("b", 0.0); s.tick(0.1), s.tick(0.2)
    (False, True)
    """

    def __init__(self, *, peers: Iterable[str], k: int = 5, timeout: float = 1.0) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError("k", f"must be an integer >= 1, got {k!r}")
        if not math.isfinite(timeout) or timeout <= 0.0:
            raise InputError("timeout", f"must be a finite number > 0, got {timeout!r}")
        self.k = k
        self.timeout = float(timeout)
        self._peers = frozenset(peers)
        self._last_heard: dict[str, float] = {}
        self._changed = False
        self._streak = 0

    def state(self) -> StabilityState:
        """The evolving state as a value."""
        return StabilityState(
            peers=tuple(sorted(self._peers)),
            last_heard=tuple(sorted(self._last_heard.items())),
            changed=self._changed,
            streak=self._streak,
        )

    @classmethod
    def restore(
        cls, state: StabilityState, *, k: int = 5, timeout: float = 1.0
    ) -> NetworkStability:
        """A detector with settings ``k`` and ``timeout`` resuming from ``state``."""
        out = cls(peers=state.peers, k=k, timeout=timeout)
        out._last_heard = dict(state.last_heard)
        out._changed = state.changed
        out._streak = state.streak
        return out

    @property
    def peers(self) -> frozenset[str]:
        """The peers expected to be heard."""
        return self._peers

    @property
    def stable(self) -> bool:
        """True iff the last ``k`` ticks were all good."""
        return self._streak >= self.k

    def heard(self, peer: str, now: float) -> None:
        """Record a valid message from ``peer`` at ``now`` (seconds, finite)."""
        self._last_heard[peer] = float(now)

    def heard_many(self, peers: Iterable[str], now: float) -> None:
        """:meth:`heard` for each of ``peers`` at the same ``now``."""
        self._last_heard.update(dict.fromkeys(peers, float(now)))

    def heard_within(self, now: float) -> int:
        """How many of the expected peers were heard within the timeout of ``now``."""
        last, timeout = self._last_heard.get, self.timeout
        return sum(1 for peer in self._peers if now - last(peer, -math.inf) <= timeout)

    def set_peers(self, peers: Iterable[str]) -> None:
        """Replace the expected peers; a change resets the streak at the next tick."""
        new = frozenset(peers)
        if new != self._peers:
            self._peers = new
            self._changed = True

    def tick(self, now: float) -> bool:
        """Evaluate this tick; returns :attr:`stable`."""
        # every peer heard within the timeout iff the oldest one is (t ↦ now − t is monotone
        # in floating point too); one C-level pass over the peers
        oldest = min(map(self._last_heard.get, self._peers, repeat(-math.inf)), default=math.inf)
        fresh = now - oldest <= self.timeout
        if fresh and not self._changed:
            self._streak += 1
        else:
            self._streak = 0
        self._changed = False
        return self.stable
