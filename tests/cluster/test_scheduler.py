"""The per-cell glyph scheduler: crossings, wrap-around, κ, busy, energy, lifetime, measures,
against a slow reference model and as properties (Hypothesis)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.cluster import (
    End,
    EndReason,
    Fire,
    Glyph,
    GlyphScheduler,
    Skip,
    SkipReason,
    late_limit,
)
from becomingone.errors import InputError


def g(gid: str, theta: float, **kw: object) -> Glyph:
    """A probe glyph with plenty of energy and lifetime unless told otherwise."""
    args: dict[str, object] = {"energy": 1e6, "lifetime": 10**6, **kw}
    return Glyph(id=gid, kind="probe", theta=theta, **args)  # type: ignore[arg-type]


def fires(effects: list[object]) -> list[tuple[str, int]]:
    return [(e.glyph.id, e.cycle) for e in effects if isinstance(e, Fire)]


def test_fires_once_when_theta_is_crossed() -> None:
    """A glyph fires in the tick whose step crosses its θ, with lateness = position − θ."""
    s = GlyphScheduler(position=0.0)
    s.add(g("a", 0.3))
    assert s.tick(0.29) == []
    out = s.tick(0.35)
    assert fires(out) == [("a", 0)]
    assert out[0].lateness == pytest.approx(0.05)
    s.complete("a", 0, cost=0.0)
    assert s.tick(0.9) == []


def test_wrap_around_fires_end_and_start_of_cycle_in_order() -> None:
    """A tick from 0.9 to 0.1 fires θ=0.95 in cycle 0, then θ=0.05 in cycle 1."""
    s = GlyphScheduler(position=0.9)
    s.add_many([g("late", 0.95), g("early", 0.05), g("mid", 0.5)])
    assert fires(s.tick(0.1)) == [("late", 0), ("early", 1)]
    assert s.cycle == 1


def test_backward_step_never_refires() -> None:
    """Phase stepping back across θ and forward again does not fire a second time."""
    s = GlyphScheduler(position=0.0)
    s.add(g("a", 0.3))
    assert fires(s.tick(0.31)) == [("a", 0)]
    s.complete("a", 0, cost=0.0)
    assert s.tick(0.28) == []
    assert s.tick(0.32) == []
    assert fires(s.tick(0.31 + 0.3)) == []
    assert fires(s.advance_to(1.31)) == [("a", 1)]


def test_kappa_skips_late_firings() -> None:
    """A firing later than 1/(1+κ) cycles is a Skip(LATE); κ = 0 runs it late instead."""
    s = GlyphScheduler(position=0.0)
    s.add_many([g("strict", 0.1, kappa=9.0), g("lax", 0.1, kappa=0.0)])
    out = s.advance_to(0.35)  # 0.25 cycle late
    assert fires(out) == [("lax", 0)]
    (skip,) = [e for e in out if isinstance(e, Skip)]
    assert (skip.glyph_id, skip.reason, skip.cycle) == ("strict", SkipReason.LATE, 0)
    assert late_limit(9.0) == pytest.approx(0.1)


def test_busy_glyph_is_skipped_until_completed() -> None:
    """A glyph whose previous run was not completed is skipped (BUSY) next cycle."""
    s = GlyphScheduler(position=0.0)
    s.add(g("a", 0.5))
    assert fires(s.advance_to(0.6)) == [("a", 0)]
    (skip,) = s.advance_to(1.6)
    assert isinstance(skip, Skip) and skip.reason is SkipReason.BUSY
    with pytest.raises(InputError):
        s.complete("a", 1, cost=1.0)
    s.complete("a", 0, cost=1.0)
    assert fires(s.advance_to(2.6)) == [("a", 2)]


def test_energy_is_spent_and_ends_the_glyph() -> None:
    """complete() spends the cost; at 0 energy the glyph ends with End(ENERGY)."""
    s = GlyphScheduler(position=0.0)
    s.add(g("a", 0.5, energy=2.5))
    s.advance_to(0.6)
    assert s.complete("a", 0, cost=1.0) == []
    assert s.glyph("a").energy == 1.5
    s.advance_to(1.6)
    (end,) = s.complete("a", 1, cost=2.0)
    assert isinstance(end, End) and end.reason is EndReason.ENERGY and end.glyph.energy == 0.0
    assert "a" not in s and s.counts["energy"] == 1
    assert s.complete("a", 1, cost=1.0) == [] and s.counts["stale"] == 1
    with pytest.raises(InputError):
        s.complete("a", 1, cost=math.nan)


def test_lifetime_counts_cycles_and_ends_at_the_boundary() -> None:
    """lifetime = cycles left; a glyph added in cycle 0 with lifetime 2 fires in cycles 0
    and 1 and ends at the boundary into cycle 2, before cycle 2's points."""
    s = GlyphScheduler(position=0.1)
    s.add(g("a", 0.05, lifetime=2))
    s.add(g("b", 0.5, lifetime=2))
    seen: list[object] = []
    for p in (0.6, 1.01, 1.06, 1.6, 2.01, 2.06, 2.6):
        out = s.advance_to(p)
        for e in out:
            if isinstance(e, Fire):
                s.complete(e.glyph.id, e.cycle, cost=0.0)
        seen.extend(out)
        if "b" in s:
            assert s.glyph("b").lifetime == 2 - math.floor(p)
    assert [(e.glyph.id, e.cycle) for e in seen if isinstance(e, Fire)] == [
        ("b", 0),
        ("a", 1),
        ("b", 1),
    ]
    ends = [(e.glyph.id, e.cycle, e.reason) for e in seen if isinstance(e, End)]
    assert ends == [("a", 2, EndReason.LIFETIME), ("b", 2, EndReason.LIFETIME)]


def test_stalled_driver_evaluates_only_the_latest_point() -> None:
    """A jump of 3.5 cycles fires each glyph at most once (its latest passed point); the
    other passed points are counted as missed."""
    s = GlyphScheduler(position=0.0)
    s.add_many([g("a", 0.2), g("b", 0.8)])
    out = s.advance_to(3.5)
    assert sorted(fires(out)) == [("a", 3), ("b", 2)]
    assert s.counts["missed"] == 3 + 2


def test_fired_cycle_blocks_a_second_firing_after_a_move() -> None:
    """A glyph added with fired_cycle=k (it fired elsewhere in k) does not fire again in k."""
    s = GlyphScheduler(position=0.1)
    s.add(g("a", 0.5), fired_cycle=0)
    assert s.advance_to(0.9) == []
    assert fires(s.advance_to(1.9)) == [("a", 1)]


def test_add_rejects_duplicates_unknown_kinds_and_spent_glyphs() -> None:
    """add() names what is wrong: id, kind, energy, lifetime."""
    s = GlyphScheduler(kinds={"probe"})
    s.add(g("a", 0.1))
    for glyph, param in [
        (g("a", 0.2), "id"),
        (Glyph(id="c", kind="command", energy=1.0, lifetime=1), "kind"),
        (g("d", 0.1, energy=0.0), "energy"),
        (g("e", 0.1, lifetime=0), "lifetime"),
    ]:
        with pytest.raises(InputError) as info:
            s.add(glyph)
        assert info.value.parameter == param
    with pytest.raises(InputError) as info:
        s.add(g("f", 0.1), fired_cycle=1.5)  # type: ignore[arg-type]
    assert info.value.parameter == "fired_cycle"
    with pytest.raises(InputError):
        s.tick(1.0)
    with pytest.raises(InputError):
        s.advance_to(math.inf)


def test_coherence_and_delta_phi_measure_regularity() -> None:
    """A glyph fired at the same phase every cycle has coherence → 1 and ΔΦ = its lateness;
    one fired at scattered phases has low coherence."""
    s = GlyphScheduler(position=0.0)
    s.add_many([g("steady", 0.25), g("jitter", 0.0)])
    scattered = [0.01, 0.5, 0.26, 0.76, 0.13, 0.63, 0.38, 0.88] * 6
    for k, late in enumerate(scattered):
        out = s.advance_to(k + 0.3)  # steady: 0.05 late every cycle
        out += s.advance_to(k + 0.3 + 0.0)  # no-op
        for e in out:
            if isinstance(e, Fire):
                s.complete(e.glyph.id, e.cycle, cost=0.0)
        # jitter fires at the start of the next cycle's step: vary its phase by the step size
        out = s.advance_to(k + 1 + late * 0.27)
        for e in out:
            if isinstance(e, Fire):
                s.complete(e.glyph.id, e.cycle, cost=0.0)
    steady = s.glyph("steady")
    assert steady.coherence == pytest.approx(1.0)
    assert steady.delta_phi == pytest.approx(0.05)
    assert s.glyph("jitter").coherence < 0.95


def test_cancel_remove_digest_and_energy() -> None:
    """cancel() ends a glyph (CANCELLED); remove() drops it silently; digest and node_energy
    follow the set."""
    s = GlyphScheduler()
    s.add_many([g("a", 0.1, energy=2.0), g("b", 0.1, energy=3.0), g("c", 0.9, energy=1.0)])
    assert s.node_energy() == 6.0
    before = s.digest()
    end = s.cancel("b")
    assert end.reason is EndReason.CANCELLED and end.glyph.id == "b"
    assert s.remove("c").id == "c"
    assert [x.id for x in s.glyphs()] == ["a"] and s.node_energy() == 2.0
    assert s.digest() != before and len(s.digest()) == 32
    with pytest.raises(InputError):
        s.cancel("b")


# -- properties against a reference -------------------------------------------------------------

steps = st.lists(st.floats(-0.3, 0.45, allow_nan=False), min_size=1, max_size=60)
jumps = st.lists(
    st.one_of(steps.map(lambda xs: ("tick", xs)), st.floats(0.0, 3.2).map(lambda x: ("jump", x))),
    min_size=1,
    max_size=6,
)
specs = st.lists(
    st.tuples(
        st.floats(0.0, 1.0, exclude_max=True),
        st.sampled_from([0.0, 1.0, 9.0, 1e6]),
        st.floats(0.5, 6.0),
        st.integers(1, 6),
    ),
    min_size=1,
    max_size=12,
)


def run_schedule(
    specs_: list[tuple[float, float, float, int]], plan: list[tuple[str, object]], start: float
) -> tuple[GlyphScheduler, list[object], list[tuple[float, float]], list[dict[str, Glyph]]]:
    """Drive a scheduler: ticks and jumps, each Fire completed at once with cost 1."""
    s = GlyphScheduler(position=start)
    s.add_many(
        g(f"g{i}", th, kappa=k, energy=e, lifetime=life)
        for i, (th, k, e, life) in enumerate(specs_)
    )
    effects: list[object] = []
    spans: list[tuple[float, float]] = []
    states: list[dict[str, Glyph]] = [{x.id: x for x in s.glyphs()}]
    theta = start % 1.0
    for kind, arg in plan:
        moves = arg if kind == "tick" else [arg]
        for m in moves:  # type: ignore[union-attr]
            before = s.position
            if kind == "tick":
                theta = (theta + m) % 1.0
                if theta >= 1.0:
                    theta = 0.0
                out = s.tick(theta)
            else:
                out = s.advance_to(s.position + m)
                theta = s.position % 1.0
            spans.append((before, s.position))
            for e in out:
                effects.append((e, before, s.position))
                if isinstance(e, Fire):
                    effects.extend(
                        (x, before, s.position) for x in s.complete(e.glyph.id, e.cycle, cost=1.0)
                    )
            states.append({x.id: x for x in s.glyphs()})
    return s, effects, spans, states


@settings(max_examples=150)
@given(specs, jumps, st.floats(-5.0, 5.0))
def test_properties_never_twice_never_early_monotone(
    specs_: list[tuple[float, float, float, int]], plan: list[tuple[str, object]], start: float
) -> None:
    """Never fires a (glyph, cycle) twice; never before θ (the high-water mark has passed
    cycle + θ) nor later than the κ limit; energy and lifetime never grow; a glyph ends once."""
    _, effects, _, states = run_schedule(specs_, plan, start)
    seen: set[tuple[str, int]] = set()
    ended: set[str] = set()
    for e, before, after in effects:  # type: ignore[misc]
        if isinstance(e, Fire):
            key = (e.glyph.id, e.cycle)
            assert key not in seen
            seen.add(key)
            point = e.cycle + e.glyph.theta
            assert before < point + 1e-9 and point <= after + 1e-9
            assert 0.0 <= e.lateness <= late_limit(e.glyph.kappa) + 1e-12
        if isinstance(e, End):
            assert e.glyph.id not in ended
            ended.add(e.glyph.id)
    for prev, cur in itertools.pairwise(states):
        for gid, now in cur.items():
            assert now.energy <= prev[gid].energy
            assert now.lifetime <= prev[gid].lifetime


@settings(max_examples=150)
@given(specs, steps, st.floats(-5.0, 5.0))
def test_matches_slow_reference_for_small_steps(
    specs_: list[tuple[float, float, float, int]], deltas: list[float], start: float
) -> None:
    """With steps under half a cycle, the (glyph, cycle) pairs fired or skipped are exactly
    those whose point k + θ a new high-water mark crossed while the glyph was alive (a slow
    scan of every glyph and cycle), in the order the points were crossed."""
    s, effects, spans, _ = run_schedule(specs_, [("tick", deltas)], start)
    got = [
        (e.glyph.id if isinstance(e, Fire) else e.glyph_id, e.cycle)
        for e, _, _ in effects  # type: ignore[misc]
        if isinstance(e, Fire | Skip)
    ]
    # reference: walk the spans, ending glyphs by lifetime and (cost 1 per fire) energy
    c0 = math.floor(start)
    energy = {f"g{i}": e for i, (_, _, e, _) in enumerate(specs_)}
    end_cycle = {f"g{i}": c0 + life for i, (_, _, _, life) in enumerate(specs_)}
    theta = {f"g{i}": th for i, (th, _, _, _) in enumerate(specs_)}
    kappa = {f"g{i}": k for i, (_, k, _, _) in enumerate(specs_)}
    want: list[tuple[str, int]] = []
    for before, after in spans:
        if after <= before:
            continue
        points = []
        lo = (math.floor(before), before - math.floor(before))
        hi = (math.floor(after), after - math.floor(after))
        for gid in theta:
            for k in range(lo[0] - 1, hi[0] + 2):
                if lo < (k, theta[gid]) <= hi:  # compared as (cycle, phase): no rounding
                    points.append((k + theta[gid], gid, k))
        for p, gid, k in sorted(points):
            if energy[gid] <= 0 or k >= end_cycle[gid]:
                continue
            want.append((gid, k))
            lateness = after - p
            if lateness <= late_limit(kappa[gid]):
                energy[gid] -= 1.0
    assert sorted(got) == sorted(want)
    assert s.counts["fired"] + s.counts["late"] == len(want)


def test_work_per_cycle_touches_only_the_glyphs_that_fire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flat cost, counted rather than timed: over one cycle of 20 ticks, 20 000 glyphs are
    each evaluated exactly once (no tick scans the set), and ticks that cross no θ evaluate
    nothing."""
    calls = 0
    original = GlyphScheduler._evaluate

    def counting(self: GlyphScheduler, *args: object) -> None:
        nonlocal calls
        calls += 1
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GlyphScheduler, "_evaluate", counting)
    n = 20_000
    s = GlyphScheduler(position=0.0)
    s.add_many(g(f"g{i}", (i + 0.5) / n * 0.5) for i in range(n))  # θ in (0, 0.5)
    for k in range(1, 21):
        for e in s.tick(k / 20 % 1.0):
            assert isinstance(e, Fire)
            s.complete(e.glyph.id, e.cycle, cost=0.0)
        if k > 10:  # θ > 0.5: nothing to cross
            assert calls == n
    assert calls == n and s.counts["fired"] == n
