"""The glyphs of one living cell: its scheduler on the cell's Θ_local, its runner, witnessed.

Rule: glue only, and a handler can never hurt the cell. Each cluster tick the member hands
:meth:`CellGlyphs.step` its Θ_local after the CPS step; completed runs are reported to the
:class:`~becomingone.cluster.GlyphScheduler` first (their cost spent, so a glyph out of energy
ends before it could fire again), then the scheduler advances and each
:class:`~becomingone.cluster.Fire` becomes a run of the :class:`~becomingone.runtime.GlyphRunner`
(at most ``max_running`` at once per cell; each bounded by the runner's deadline). In real time
runs go on in the background and are collected at a later tick, so a slow handler never holds
the cluster's tick; in virtual time (``wait_runs``) each tick awaits its runs, because wall
time then has no relation to the cluster's time.

Witnessed on the cell's chain (MICRO): ``glyph.fired`` per completed run — glyph id, kind,
cycle, lateness (cycles), cost, ``ok``, the SHA-256 of its value's canonical JSON, the value
itself for a probe or a command (:data:`WITNESSED_VALUES`), the error of a failed or timed-out
run — and ``glyph.ended`` with the reason (energy, lifetime,
cancelled). ``glyph.fired`` hooks run for every run (a ``before_glyph.fired`` veto is recorded,
not obeyed: the run happened). A fire log on the (glyph, cycle) key counts double fires as
runs are witnessed — counted, never assumed to be zero. Runs of one glyph never overlap (the
scheduler skips a busy glyph), so they complete in cycle order and the log keeps, per glyph,
the latest cycle witnessed: a run whose cycle is not above it repeats a key. One integer per
glyph id, however long the cell runs.

A run's numeric value (a probe's reading) is kept per glyph (:attr:`CellGlyphs.values`) and
shown (:meth:`CellGlyphs.row`). A probe's reading also feeds that glyph's self-observation
KAIROS engine (:class:`~becomingone.runtime.probe_kairos.ProbeStreams`, one sample per firing,
``dt`` one cycle): its state goes into the run's ``glyph.fired`` record (``kairos``), the
cell's row and the desk's glyph rows; a reading the engine refuses (NaN, inf, beyond its
sample limit) is counted ``rejected`` and witnessed, never fed.

Hooks for a node process (:mod:`becomingone.runtime.node_glyphs`), all ``None`` in process:
``anchor`` maps Θ_local to the unwrapped position the scheduler advances to (a cycle count
shared by processes), ``claim`` enters a firing in a durable fire log before it runs (False:
the (glyph, cycle) key is there already; the run is skipped and counted as a double fire),
``on_submit`` stores a new glyph's ownership record (raising refuses the glyph), ``on_end``
removes an ended glyph's record and ``fence`` says the node may no longer presume it owns its
glyphs (True: a firing is skipped, counted ``fenced``; see takeover in node_glyphs).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from becomingone.cluster import End, Fire, Glyph, GlyphScheduler, Skip, evolve
from becomingone.config.schema import GlyphsConfig
from becomingone.errors import InputError
from becomingone.events import HookEvent
from becomingone.runtime.cell import Cell
from becomingone.runtime.glyph_handlers import build_registry
from becomingone.runtime.glyph_runner import GlyphRunner, RunOutcome
from becomingone.runtime.probe_kairos import ProbeStreams
from becomingone.witnessing import Level

__all__ = [
    "DEMO_CELLS",
    "CellGlyphs",
    "GlyphTotals",
    "glyph_totals",
    "probe_glyphs",
    "spread_glyphs",
    "value_digest",
]

log = logging.getLogger("becomingone.glyphs")

#: Kinds whose run's value is small and fixed in shape, so the ``glyph.fired`` record carries
#: it whole (a probe's reading; a command's exit code, output digest and size) beside its digest.
WITNESSED_VALUES = frozenset({"probe", "command"})

#: Ended glyphs a cell remembers (so a late cancel can say the glyph had ended).
KEEP_ENDED = 10_000


def value_digest(value: Any) -> str:
    """SHA-256 (hex) of a run's value as canonical JSON (sorted keys, compact); the value of a
    failed run (``None``) digests as ``null``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _witnessed_value(outcome: RunOutcome) -> Any:
    """The value a ``glyph.fired`` record carries whole: a successful probe's or command's,
    if it is plain JSON (no NaN or inf: a refused reading is in the record's ``kairos``) of
    at most 1 KiB; else ``None`` (the digest ``result`` is always there)."""
    if not outcome.ok or outcome.kind not in WITNESSED_VALUES:
        return None
    try:
        text = json.dumps(outcome.value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return outcome.value if len(text) <= 1024 else None


class CellGlyphs:
    """The glyphs owned by one cell (``node_id``), fired on its phase and witnessed on ``cell``.

    Parameters
    ----------
    cell : Cell
        The cell whose chain witnesses the runs and whose hooks hear ``glyph.fired``.
    node_id : str
        The cell's node id: the owner of every glyph it accepts.
    position : float
        The cell's Θ_local (cycles) now: the scheduler starts there.
    config : GlyphsConfig, optional
        Handler kinds, timeout and failure cost (default: the built-ins).
    max_running : int
        Runs in progress at once (default 8); further firings wait for a slot.
    wait_runs : bool
        Await each tick's runs within the tick (virtual time) instead of collecting them later.
    cycle : float
        The cluster cycle in seconds: the ``dt`` of the probes' KAIROS engines (default 1).
    """

    def __init__(
        self,
        cell: Cell,
        node_id: str,
        *,
        position: float = 0.0,
        config: GlyphsConfig | None = None,
        max_running: int = 8,
        wait_runs: bool = False,
        cycle: float = 1.0,
    ) -> None:
        if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1:
            raise InputError("max_running", f"must be an integer >= 1, got {max_running!r}")
        config = config or GlyphsConfig()
        registry = build_registry(config)
        self.cell, self.node_id, self.wait_runs = cell, node_id, wait_runs
        self.scheduler = GlyphScheduler(position=position, kinds=registry.kinds)
        self.runner = GlyphRunner(
            registry, cell=node_id, timeout=config.timeout, failure_cost=config.failure_cost
        )
        self.max_running = max_running
        self._slots: asyncio.Semaphore | None = None  # made inside the running loop
        self._running: dict[asyncio.Task[RunOutcome], None] = {}  # in start order
        self._lateness: dict[tuple[str, int], float] = {}
        self.fire_log: dict[str, int] = {}  # glyph id → latest cycle witnessed
        self.counts: Counter[str] = Counter()
        self.ended: Counter[str] = Counter()
        self.values: dict[str, float] = {}  # the latest numeric value of each glyph's runs
        self.last_value: float | None = None  # the latest numeric value of any run here
        self.probes = ProbeStreams(cycle)  # the cell observing itself through its probes
        self.held: dict[str, Glyph] = {}  # glyphs in flight to another cell (not scheduled)
        #: The newest :data:`KEEP_ENDED` glyphs that ended here: id → (last state, reason).
        self.finished: OrderedDict[str, tuple[Glyph, str]] = OrderedDict()
        self.anchor: Callable[[float], float] | None = None
        self.claim: Callable[[str, int], bool] | None = None
        self.on_submit: Callable[[Glyph], None] | None = None
        self.on_end: Callable[[Glyph], None] | None = None
        self.fence: Callable[[], bool] | None = None

    # -- the set -------------------------------------------------------------------------------

    def submit(self, glyph: Glyph) -> Glyph:
        """Own ``glyph`` (its owner set to this cell) and schedule it from the next θ it meets;
        returns the glyph as owned. ``InputError`` for another cell's glyph, a duplicate id, an
        unknown kind or a glyph with no energy or lifetime left."""
        if glyph.owner not in ("", self.node_id):
            raise InputError("owner", f"glyph {glyph.id!r} is owned by {glyph.owner!r}")
        owned = evolve(glyph, owner=self.node_id)
        self.scheduler.add(owned)
        try:
            self.probes.open(owned)  # a probe's lag or window out of range refuses the glyph
            if self.on_submit is not None:
                self.on_submit(owned)
        except BaseException:
            self.scheduler.remove(owned.id)
            self.probes.close(owned.id)
            raise
        self.counts["submitted"] += 1
        return owned

    def __len__(self) -> int:
        return len(self.scheduler)

    # -- migration (the effects of becomingone.cluster.Migration) ------------------------------

    def holds(self, glyph_id: str) -> bool:
        """Whether this cell schedules ``glyph_id`` or holds it in flight."""
        return glyph_id in self.scheduler or glyph_id in self.held

    def hold(self, glyph_id: str) -> Glyph:
        """Take ``glyph_id`` out of the scheduler and keep it aside while it is offered."""
        glyph = self.scheduler.remove(glyph_id)
        self.held[glyph_id] = glyph
        return glyph

    def install(self, glyph: Glyph, fired_cycle: int | None) -> bool:
        """Schedule ``glyph`` (owned here), not again in ``fired_cycle`` (this cell's cycle
        numbers); a no-op if it is scheduled already. The fire log learns ``fired_cycle`` so a
        repeat in that cycle counts as a double fire. True iff it was added."""
        if glyph.id in self.scheduler:
            return False
        self.held.pop(glyph.id, None)
        self.scheduler.add(glyph, fired_cycle=fired_cycle)
        if glyph.id not in self.probes.engines:  # an aborted offer keeps its stream
            try:
                self.probes.open(glyph)  # a fresh stream: the engine is this cell's
            except InputError as exc:  # checked where it was submitted; never stop a move
                log.warning("glyph %s: no KAIROS stream: %s", glyph.id, exc)
        if fired_cycle is not None:
            self.fire_log[glyph.id] = max(self.fire_log.get(glyph.id, fired_cycle), fired_cycle)
        return True

    async def cancel(self, glyph_id: str, now: float) -> Glyph:
        """End a scheduled glyph here (an operator's cancel): witnessed as ``glyph.ended`` with
        reason ``cancelled``; returns its last state. ``InputError`` if it is not scheduled
        here (held glyphs are moving and cannot be cancelled)."""
        if glyph_id not in self.scheduler:
            raise InputError("glyph_id", f"glyph {glyph_id!r} is not scheduled on {self.node_id}")
        end = self.scheduler.cancel(glyph_id)
        self.counts["cancelled"] += 1
        await self._ended(end, now)
        return end.glyph

    def drop(self, glyph_id: str) -> None:
        """Forget ``glyph_id`` (held or scheduled): another cell owns it now."""
        if self.held.pop(glyph_id, None) is None and glyph_id in self.scheduler:
            self.scheduler.remove(glyph_id)
        self.values.pop(glyph_id, None)
        self.probes.close(glyph_id)

    def kairos(self, glyph_id: str) -> dict[str, Any] | None:
        """The state of ``glyph_id``'s self-observation stream (``None``: not a probe here)."""
        return self.probes.state(glyph_id)

    def node_energy(self) -> float:
        """Σ energy of the glyphs owned (SSEP ``node_energy``)."""
        return self.scheduler.node_energy()

    def digest(self) -> bytes:
        """Digest of the set of glyphs owned (SSEP ``glyph_digest``)."""
        return self.scheduler.digest()

    @property
    def running(self) -> int:
        """Runs started and not yet collected."""
        return len(self._running)

    # -- time ----------------------------------------------------------------------------------

    async def step(self, theta: float, now: float) -> None:
        """Collect finished runs, advance the scheduler to Θ_local = ``theta`` (cycles) and
        start the runs it fires; ``now`` is the cluster time the records carry."""
        await self._collect(now)
        if self.anchor is None:
            effects = self.scheduler.tick(theta)
        else:
            effects = self.scheduler.advance_to(self.anchor(theta))
        for effect in effects:
            match effect:
                case Fire():
                    self._start(effect)
                case Skip():
                    self.counts[f"skipped_{effect.reason.value}"] += 1
                case End():
                    await self._ended(effect, now)
        if self.wait_runs and self._running:
            await asyncio.wait(list(self._running))
            await self._collect(now)

    async def drain(self, now: float) -> None:
        """Wait for every run in progress (each ends by its deadline) and witness it."""
        while self._running:
            await asyncio.wait(list(self._running))
            await self._collect(now)

    def _start(self, fire: Fire) -> None:
        if self.fence is not None and self.fence():
            self.counts["fenced"] += 1  # ownership unconfirmed for too long: not run
            self.scheduler.complete(fire.glyph.id, fire.cycle, cost=0.0)
            return
        if self.claim is not None and not self.claim(fire.glyph.id, fire.cycle):
            self.counts["double_fires"] += 1  # the durable fire log has this key: not run
            log.warning("fire log has (%s, %d) already: not run again", fire.glyph.id, fire.cycle)
            self.scheduler.complete(fire.glyph.id, fire.cycle, cost=0.0)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_running)
        self._lateness[(fire.glyph.id, fire.cycle)] = fire.lateness
        task = asyncio.get_running_loop().create_task(self._run(self._slots, fire))
        self._running[task] = None

    async def _run(self, slots: asyncio.Semaphore, fire: Fire) -> RunOutcome:
        async with slots:
            return await self.runner.run(fire)

    async def _collect(self, now: float) -> None:
        """Report each finished run to the scheduler (in start order) and witness it."""
        for task in [t for t in self._running if t.done()]:
            del self._running[task]
            outcome = task.result()  # the runner never raises for what a handler does
            ends = self.scheduler.complete(outcome.glyph_id, outcome.cycle, cost=outcome.cost)
            await self._fired(outcome, now)
            for end in ends:
                if isinstance(end, End):
                    await self._ended(end, now)

    async def _fired(self, outcome: RunOutcome, now: float) -> None:
        key = (outcome.glyph_id, outcome.cycle)
        self.counts["fired"] += 1
        last = self.fire_log.get(outcome.glyph_id)
        if last is not None and outcome.cycle <= last:
            self.counts["double_fires"] += 1
        self.fire_log[outcome.glyph_id] = (
            outcome.cycle if last is None else max(last, outcome.cycle)
        )
        if not outcome.ok:
            self.counts["timeouts" if outcome.timed_out else "errors"] += 1
        value = outcome.value
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if outcome.ok and numeric and math.isfinite(value):
            self.values[outcome.glyph_id] = self.last_value = float(value)
        kairos: dict[str, Any] | None = None
        if outcome.ok and outcome.glyph_id in self.probes.engines:
            try:
                kairos = self.probes.feed(outcome.glyph_id, value)
            except InputError as exc:
                kairos = {"rejected": str(exc)}
                log.warning("probe %s: reading refused: %s", outcome.glyph_id, exc)
        payload: dict[str, Any] = {
            "glyph": outcome.glyph_id,
            "kind": outcome.kind,
            "cycle": outcome.cycle,
            "lateness": self._lateness.pop(key, 0.0),
            "cost": outcome.cost,
            "ok": outcome.ok,
            "result": value_digest(value),
            "value": _witnessed_value(outcome),
            "elapsed": outcome.elapsed,
            "error": outcome.error,
            "timed_out": outcome.timed_out,
            "kairos": kairos,
        }
        await self._witness(HookEvent.GLYPH_FIRED.value, payload, now, hook=True)

    async def _ended(self, end: End, now: float) -> None:
        if self.on_end is not None:
            self.on_end(end.glyph)
        self.ended[end.reason.value] += 1
        self.finished[end.glyph.id] = (end.glyph, end.reason.value)
        while len(self.finished) > KEEP_ENDED:
            self.finished.popitem(last=False)
        self.values.pop(end.glyph.id, None)
        self.probes.close(end.glyph.id)
        g = end.glyph
        payload = {
            "glyph": g.id,
            "kind": g.kind,
            "cycle": end.cycle,
            "reason": end.reason.value,
            "energy": g.energy,
            "lifetime": g.lifetime,
            "coherence": g.coherence,
            "delta_phi": g.delta_phi,
        }
        await self._witness("glyph.ended", payload, now, hook=False)

    async def _witness(self, kind: str, payload: dict[str, Any], now: float, *, hook: bool) -> None:
        if hook:
            result = await self.cell.hooks.fire(HookEvent.GLYPH_FIRED, now, payload)
            payload["vetoed"] = None if result.veto is None else result.veto.reason
            failures = result.failures
        else:
            failures = ()
        await self.cell.witness(Level.MICRO, kind, payload, now)
        for failure in failures:
            log.warning("hook %s on %s failed: %s", failure.hook, failure.event, failure.error)
            await self.cell.witness(Level.MICRO, "hook.failed", asdict(failure), now)

    def totals(self) -> GlyphTotals:
        """This cell's counts."""
        return glyph_totals([self])

    def row(self) -> dict[str, Any]:
        """This cell's line in a ``--json`` tick row: glyphs owned, runs, failures, ends, load,
        the latest numeric value a run returned (a probe's reading; ``None`` before), |T̂|² of
        the probe stream fed last (``kairos``; ``None`` before) and the probe readings its
        engines refused (``rejected``)."""
        return {
            "glyphs": len(self),
            "fires": self.counts["fired"],
            "failed": self.counts["errors"] + self.counts["timeouts"],
            "ended": sum(self.ended.values()),
            "energy": self.node_energy(),
            "value": self.last_value,
            "kairos": self.probes.latest_coherence(),
            "rejected": self.probes.rejected,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GlyphTotals:
    """What the glyphs of one or more cells did in a run.

    ``lost`` = submitted − owned − ended: a glyph neither held by a cell nor ended is lost
    (0 unless something is wrong; a glyph held in flight by a migration counts as owned).
    """

    submitted: int
    owned: int
    ended: int
    fires: int
    double_fires: int
    errors: int
    timeouts: int
    skipped: int
    migrations: int = 0
    migrations_rejected: int = 0

    @property
    def lost(self) -> int:
        """Glyphs submitted that are neither owned nor ended."""
        return self.submitted - self.owned - self.ended

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict (``glyphs_lost`` included)."""
        return {
            "glyphs": self.submitted,
            "owned": self.owned,
            "ended": self.ended,
            "fires": self.fires,
            "double_fires": self.double_fires,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "skipped": self.skipped,
            "migrations": self.migrations,
            "migrations_rejected": self.migrations_rejected,
            "glyphs_lost": self.lost,
        }


def glyph_totals(
    cells: Sequence[CellGlyphs], migrations: Mapping[str, int] | None = None
) -> GlyphTotals:
    """Sum the counts of ``cells`` (and a migrator's ``migrations`` counts, if given)."""
    moved = dict(migrations or {})
    c: Counter[str] = Counter()
    for g in cells:
        c.update(g.counts)
    return GlyphTotals(
        submitted=c["submitted"],
        owned=sum(len(g) + len(g.held) for g in cells),
        ended=sum(sum(g.ended.values()) for g in cells),
        fires=c["fired"],
        double_fires=c["double_fires"],
        errors=c["errors"],
        timeouts=c["timeouts"],
        skipped=c["skipped_late"] + c["skipped_busy"],
        migrations=moved.get("migrations", 0),
        migrations_rejected=sum(n for k, n in moved.items() if k.startswith("rejected_")),
    )


#: How many cells ``becomingone cluster --glyphs N`` puts its probe glyphs on (the first ones).
DEMO_CELLS = 3


def probe_glyphs(n: int, *, energy: float = 1000.0, lifetime: int = 100_000) -> list[Glyph]:
    """``n`` load-average probes ``probe-0000`` … with θ spread evenly, (i + ½)/n cycles.

    >>> [(g.id, g.theta) for g in probe_glyphs(2)]
    [('probe-0000', 0.25), ('probe-0001', 0.75)]
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 100_000:
        raise InputError("glyphs", f"must be an integer in [0, 100000], got {n!r}")
    return [
        Glyph(
            id=f"probe-{i:04d}",
            kind="probe",
            payload={"probe": "loadavg"},
            theta=(i + 0.5) / n,
            energy=energy,
            lifetime=lifetime,
        )
        for i in range(n)
    ]


def spread_glyphs(
    cells: Sequence[CellGlyphs], glyphs: Sequence[Glyph], *, over: int = DEMO_CELLS
) -> None:
    """Submit ``glyphs`` round-robin to the first ``over`` of ``cells`` (all if fewer)."""
    if not cells:
        raise InputError("cells", "needs at least one cell")
    if isinstance(over, bool) or not isinstance(over, int) or over < 1:
        raise InputError("over", f"must be an integer >= 1, got {over!r}")
    first = cells[: min(over, len(cells))]
    for i, glyph in enumerate(glyphs):
        first[i % len(first)].submit(glyph)
