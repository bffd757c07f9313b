"""Network stability and cluster coherence (DESIGN.md §3, §6).

Rule: sans-IO bookkeeping; time arrives as ``now``. The network is *stable* when membership
has not changed and every expected peer was heard within its timeout for the last ``k`` ticks.
Cluster coherence ``C_cluster`` and its band come from :mod:`becomingone.core.phase`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from numpy.typing import ArrayLike

from becomingone.core.phase import (
    CoherenceBand,
    cluster_coherence,
    coherence_band,
    order_parameter,
)
from becomingone.errors import InputError

__all__ = ["ClusterReading", "NetworkStability", "read_cluster"]


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

    @property
    def peers(self) -> frozenset[str]:
        """The peers expected to be heard."""
        return self._peers

    @property
    def stable(self) -> bool:
        """True iff the last ``k`` ticks were all good."""
        return self._streak >= self.k

    def heard(self, peer: str, now: float) -> None:
        """Record a valid message from ``peer`` at ``now``."""
        self._last_heard[peer] = now

    def set_peers(self, peers: Iterable[str]) -> None:
        """Replace the expected peers; a change resets the streak at the next tick."""
        new = frozenset(peers)
        if new != self._peers:
            self._peers = new
            self._changed = True

    def tick(self, now: float) -> bool:
        """Evaluate this tick; returns :attr:`stable`."""
        fresh = all(
            now - self._last_heard.get(peer, -math.inf) <= self.timeout for peer in self._peers
        )
        if fresh and not self._changed:
            self._streak += 1
        else:
            self._streak = 0
        self._changed = False
        return self.stable
