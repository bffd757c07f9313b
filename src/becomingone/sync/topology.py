"""Cluster topologies (DESIGN.md §6): who a cell hears, whom it tells, and ring twists.

Rule: pure functions and frozen plans, no I/O and no clocks. A :class:`Plan` is computed once
from the ordered member list and answers routing questions for one cell; the CPS
(:mod:`becomingone.sync.cps`) and the simulator (:mod:`becomingone.sim`) use the same rules.

- mesh: every cell hears every cell.
- hub: every cell reports to the hub (the first member), which broadcasts the mean.
- ring: cell ``i`` hears cell ``i - 1`` (mod N) and tells ``i + 1``.
- fractal: groups of ``b`` cells form local fields, groups of ``b`` local fields regional
  fields, and so on up to the global field. A group's head is its first member; complex
  resultants go up one level per tick and the global phase comes down one level per tick.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from becomingone.core.phase import wrap
from becomingone.errors import InputError

__all__ = ["Plan", "Topology", "fractal_levels", "is_twisted", "winding_number"]


class Topology(enum.Enum):
    """The four cluster topologies."""

    MESH = "mesh"
    HUB = "hub"
    RING = "ring"
    FRACTAL = "fractal"

    @classmethod
    def parse(cls, value: str | Topology) -> Topology:
        """The topology named ``value`` (case-insensitive); ``InputError`` naming the choices."""
        if isinstance(value, Topology):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise InputError("topology", f"must be one of {choices}, got {value!r}") from None


def fractal_levels(n: int, branching: int) -> int:
    """Number of aggregation levels above the cells: the smallest L with b^L >= n (>= 1)."""
    if n < 1:
        raise InputError("n", f"must be >= 1, got {n}")
    if branching < 2:
        raise InputError("branching", f"must be >= 2, got {branching}")
    levels, span = 1, branching
    while span < n:
        levels += 1
        span *= branching
    return levels


def winding_number(thetas: ArrayLike) -> int:
    """Winding number of phases (cycles) around a ring: round(Σ wrap(θ[i+1] − θ[i])), cyclic.

    Examples
    --------
    >>> winding_number([0.0, 0.25, 0.5, 0.75])
    1
    >>> winding_number([0.1, 0.2, 0.15])
    0
    """
    th = np.asarray(thetas, dtype=np.float64).ravel()
    if th.size < 2:
        return 0
    if not np.all(np.isfinite(th)):
        raise InputError("thetas", "must be finite")
    steps = wrap(np.roll(th, -1) - th)
    return round(float(np.sum(steps)))


def is_twisted(thetas: ArrayLike) -> bool:
    """True iff the ring phases wind around the circle (winding number ≠ 0)."""
    return winding_number(thetas) != 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Routing of one cell in a topology over an ordered member list.

    ``members`` is the agreed order (the same list on every cell); ``index`` is this cell's
    position. ``branching`` is used by the fractal topology only.
    """

    topology: Topology
    members: tuple[str, ...]
    index: int
    branching: int = 16

    def __post_init__(self) -> None:
        if not self.members:
            raise InputError("members", "needs at least one member")
        if len(set(self.members)) != len(self.members):
            raise InputError("members", "member ids must be unique")
        if not 0 <= self.index < len(self.members):
            raise InputError("index", f"must be in [0, {len(self.members)}), got {self.index}")
        if self.branching < 2:
            raise InputError("branching", f"must be >= 2, got {self.branching}")

    @classmethod
    def for_member(
        cls, topology: Topology | str, members: Sequence[str], node_id: str, branching: int = 16
    ) -> Plan:
        """The plan of ``node_id`` within ``members``."""
        members_t = tuple(members)
        if node_id not in members_t:
            raise InputError("node_id", f"{node_id!r} is not a member")
        return cls(
            topology=Topology.parse(topology),
            members=members_t,
            index=members_t.index(node_id),
            branching=branching,
        )

    @property
    def n(self) -> int:
        """Number of members."""
        return len(self.members)

    @property
    def node_id(self) -> str:
        """This cell's id."""
        return self.members[self.index]

    @property
    def hub(self) -> str:
        """The hub of a hub topology (the first member)."""
        return self.members[0]

    @property
    def levels(self) -> int:
        """Fractal aggregation levels above the cells."""
        return fractal_levels(self.n, self.branching)

    @property
    def predecessor(self) -> str:
        """The ring predecessor (the cell this one hears)."""
        return self.members[(self.index - 1) % self.n]

    @property
    def successor(self) -> str:
        """The ring successor (the cell this one tells)."""
        return self.members[(self.index + 1) % self.n]

    def hears(self) -> frozenset[str]:
        """Peers this cell expects to hear from every tick (for the stability detector)."""
        me = self.node_id
        if self.n == 1:
            return frozenset()
        match self.topology:
            case Topology.MESH:
                return frozenset(m for m in self.members if m != me)
            case Topology.HUB:
                others = frozenset(m for m in self.members if m != me)
                return others if me == self.hub else frozenset({self.hub})
            case Topology.RING:
                return frozenset({self.predecessor})
            case Topology.FRACTAL:
                peers = set(self.children(1)) if self.is_head(1) else set()
                for level in range(2, self.levels + 1):
                    if self.is_head(level):
                        peers.update(self.children(level))
                if self.index != 0:
                    top = max(k for k in range(self.levels + 1) if self.is_head(k))
                    peers.add(self.head(top + 1))
                peers.discard(me)
                return frozenset(peers)
        raise AssertionError(self.topology)  # pragma: no cover

    # Fractal structure -------------------------------------------------------------------

    def _span(self, level: int) -> int:
        return int(self.branching) ** int(level) if level > 0 else 1

    def is_head(self, level: int) -> bool:
        """True iff this cell heads its level-``level`` group (level 0: every cell)."""
        return self.index % self._span(level) == 0

    def head(self, level: int) -> str:
        """Head of this cell's level-``level`` group (the group's first member)."""
        span = self._span(level)
        return self.members[(self.index // span) * span]

    def children(self, level: int) -> tuple[str, ...]:
        """Heads of the level-``level − 1`` groups inside this cell's level-``level`` group."""
        span = self._span(level)
        step = self._span(level - 1)
        start = (self.index // span) * span
        stop = min(start + span, self.n)
        return tuple(self.members[i] for i in range(start, stop, step))

    def subtree_size(self, level: int) -> int:
        """Number of cells in this cell's level-``level`` group."""
        span = self._span(level)
        start = (self.index // span) * span
        return min(start + span, self.n) - start

    def child_sizes(self, level: int) -> dict[str, int]:
        """Each child of this cell's level-``level`` group → the number of cells in its
        level-``level − 1`` group (O(b), no search)."""
        span = self._span(level)
        step = self._span(level - 1)
        start = (self.index // span) * span
        stop = min(start + span, self.n)
        return {self.members[i]: min(i + step, stop) - i for i in range(start, stop, step)}
