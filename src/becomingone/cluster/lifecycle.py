"""The cluster lifecycle (WSP 28 §4, §7; DESIGN.md §7): PRE_CLUSTER → FORMING → ACTIVE →
CONVERGING → EMERGING → AUTONOMOUS, each stage behind named, measured conditions.

Rule: sans-IO. :class:`Lifecycle` takes one :class:`Measurements` value per evaluation and
returns a :class:`LifecycleReport` (the stage and every condition with its value and
threshold). Promotion is one stage per evaluation, and only when every condition of that
stage and the ones below holds; demotion is immediate, to the highest stage whose
conditions still hold. The allowed moves are :data:`LIFECYCLE_TRANSITIONS`.

=========== =================================================================================
stage       conditions (cumulative)
=========== =================================================================================
FORMING     ``genesis``: a Genesis exists
ACTIVE      ``roles_filled`` (every role held), ``redundancy_high`` (≥ 2 in Ø2Ø1 roles),
            ``redundancy_low`` (≥ 2 in Ø1Ø2 roles)
CONVERGING  ``coherence_converging``: C_cluster ≥ 0.60
EMERGING    ``coherence_shared``: C_cluster ≥ 0.75; ``consensus_rate``: ≥ 1/φ of the last K
            decided proposals passed (at least K decided)
AUTONOMOUS  the five WSP 28 §4.1 conditions: ``coherence_ic`` (C_cluster ≥ I_c),
            ``consensus_stable`` (the pass rate of the K before the last K also ≥ 1/φ, and the
            two differ by ≤ 0.25), ``role_ratio`` (Ø1Ø2 : Ø2Ø1 within 25 % of φ),
            ``memory_synced`` (the memory digests of every cell holding a role are equal: a
            crashed role holder holds it back until it is back and synced or replaced),
            ``coherence_trend`` (least-squares slope of C over the last evaluations
            ≥ −0.001 per evaluation)
=========== =================================================================================
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from becomingone.cluster.partifact import PHI, QUORUM
from becomingone.errors import InputError

__all__ = [
    "LIFECYCLE_TRANSITIONS",
    "RATIO_TOLERANCE",
    "Condition",
    "Lifecycle",
    "LifecycleReport",
    "LifecycleStage",
    "Measurements",
    "conditions",
    "ratio_near_phi",
]

#: How far the Ø1Ø2 : Ø2Ø1 ratio may be from φ, relative (0.25: within 25 %).
RATIO_TOLERANCE = 0.25
#: Least slope of C_cluster per evaluation that counts as a non-negative trend.
TREND_FLOOR = -0.001
#: Largest change of the pass rate between two windows that counts as stable.
DENSITY_DRIFT = 0.25


class LifecycleStage(enum.StrEnum):
    """The cluster's stage, lowest first."""

    PRE_CLUSTER = "pre_cluster"
    FORMING = "forming"
    ACTIVE = "active"
    CONVERGING = "converging"
    EMERGING = "emerging"
    AUTONOMOUS = "autonomous"

    @property
    def level(self) -> int:
        """0 (PRE_CLUSTER) to 5 (AUTONOMOUS)."""
        return _ORDER.index(self)


_ORDER = list(LifecycleStage)
#: (from, to) pairs allowed: one stage up, or down to any lower stage.
LIFECYCLE_TRANSITIONS: frozenset[tuple[LifecycleStage, LifecycleStage]] = frozenset(
    {(a, b) for i, a in enumerate(_ORDER) for j, b in enumerate(_ORDER) if j == i + 1 or j < i}
)


def ratio_near_phi(low: int, high: int, tolerance: float = RATIO_TOLERANCE) -> bool:
    """True iff ``low / high`` is within ``tolerance`` (relative) of φ.

    >>> ratio_near_phi(10, 6), ratio_near_phi(3, 2), ratio_near_phi(2, 2)
    (True, True, False)
    """
    return high > 0 and abs(low / high / PHI - 1.0) <= tolerance


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurements:
    """What the lifecycle is judged on, measured once per evaluation.

    ``pass_rates`` are the fractions of proposals passed in the last K decided and in the K
    before those (``None`` while fewer were decided); ``digests`` are the memory digests of the
    cells holding a role; ``c_history`` the recent C_cluster values, oldest first (for the trend).
    """

    genesis: bool
    roles_filled: bool
    high: int
    low: int
    c_cluster: float
    threshold: float
    pass_rate: float | None
    previous_pass_rate: float | None
    digests: Sequence[str]
    c_history: Sequence[float]

    def __post_init__(self) -> None:
        for name in ("c_cluster", "threshold"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InputError(name, f"must be in [0, 1], got {value!r}")
        if self.high < 0 or self.low < 0:
            raise InputError("high", "role counts must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One named condition: its measured ``value``, the ``threshold`` and whether it is met."""

    name: str
    stage: LifecycleStage
    value: float
    threshold: float
    met: bool

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        value = self.value if math.isfinite(self.value) else None
        return {
            "stage": self.stage.value,
            "value": value,
            "threshold": self.threshold,
            "met": self.met,
        }


def _slope(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def conditions(m: Measurements) -> tuple[Condition, ...]:
    """Every lifecycle condition measured on ``m``, lowest stage first."""
    s = LifecycleStage
    nan = math.nan
    rate = nan if m.pass_rate is None else m.pass_rate
    prev = nan if m.previous_pass_rate is None else m.previous_pass_rate
    ratio = m.low / m.high if m.high else nan
    synced = bool(m.digests) and len(set(m.digests)) == 1
    trend = _slope(m.c_history)
    stable = (
        m.pass_rate is not None
        and m.previous_pass_rate is not None
        and m.previous_pass_rate >= QUORUM - 1e-12
        and abs(m.pass_rate - m.previous_pass_rate) <= DENSITY_DRIFT
    )

    def c(name: str, stage: LifecycleStage, value: float, threshold: float, met: bool) -> Condition:
        return Condition(name=name, stage=stage, value=value, threshold=threshold, met=met)

    return (
        c("genesis", s.FORMING, float(m.genesis), 1.0, m.genesis),
        c("roles_filled", s.ACTIVE, float(m.roles_filled), 1.0, m.roles_filled),
        c("redundancy_high", s.ACTIVE, m.high, 2, m.high >= 2),
        c("redundancy_low", s.ACTIVE, m.low, 2, m.low >= 2),
        c("coherence_converging", s.CONVERGING, m.c_cluster, 0.60, m.c_cluster >= 0.60),
        c("coherence_shared", s.EMERGING, m.c_cluster, 0.75, m.c_cluster >= 0.75),
        c(
            "consensus_rate",
            s.EMERGING,
            rate,
            QUORUM,
            m.pass_rate is not None and rate >= QUORUM - 1e-12,
        ),
        c("coherence_ic", s.AUTONOMOUS, m.c_cluster, m.threshold, m.c_cluster >= m.threshold),
        c("consensus_stable", s.AUTONOMOUS, prev, QUORUM, stable),
        c("role_ratio", s.AUTONOMOUS, ratio, PHI, ratio_near_phi(m.low, m.high)),
        c("memory_synced", s.AUTONOMOUS, float(len(set(m.digests))), 1.0, synced),
        c("coherence_trend", s.AUTONOMOUS, trend, TREND_FLOOR, trend >= TREND_FLOOR),
    )


def _reachable(conds: Sequence[Condition]) -> LifecycleStage:
    """The highest stage whose conditions, and all below, hold."""
    best = LifecycleStage.PRE_CLUSTER
    for stage in _ORDER[1:]:
        if all(c.met for c in conds if c.stage.level <= stage.level):
            best = stage
        else:
            break
    return best


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleReport:
    """The stage after one evaluation, the one before, and every condition."""

    stage: LifecycleStage
    previous: LifecycleStage
    conditions: tuple[Condition, ...]

    @property
    def changed(self) -> bool:
        """True iff the stage moved in this evaluation."""
        return self.stage is not self.previous

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: the stage and the conditions by name."""
        return {
            "stage": self.stage.value,
            "conditions": {c.name: c.to_json() for c in self.conditions},
        }


class Lifecycle:
    """The lifecycle machine: one :meth:`evaluate` per measurement.

    Examples
    --------
    >>> life = Lifecycle()
    >>> m = Measurements(genesis=True, roles_filled=False, high=1, low=0, c_cluster=0.1,
    ...                  threshold=0.95, pass_rate=None, previous_pass_rate=None,
    ...                  digests=(), c_history=())
    >>> life.evaluate(m).stage, life.evaluate(m).stage
    (<LifecycleStage.FORMING: 'forming'>, <LifecycleStage.FORMING: 'forming'>)
    """

    def __init__(self) -> None:
        self.stage = LifecycleStage.PRE_CLUSTER

    def evaluate(self, m: Measurements) -> LifecycleReport:
        """Judge ``m``: up one stage if the next one's conditions hold, down if lost."""
        conds = conditions(m)
        target = _reachable(conds)
        before = self.stage
        nxt = _ORDER[before.level + 1] if target.level > before.level else target
        if nxt is not before:
            assert (before, nxt) in LIFECYCLE_TRANSITIONS
            self.stage = nxt
        return LifecycleReport(stage=self.stage, previous=before, conditions=conds)
