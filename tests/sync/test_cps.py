"""The sans-IO Cluster Phase Supervisor: the CPS step, PLL, and rejection of bad packets."""

from __future__ import annotations

import pytest

from becomingone.core.phase import wrap
from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.sync import Packet, PhaseSupervisor, Plan, Reject, encode_packet

KEYS = {name: NodeKey.from_seed(bytes([i + 1]) * 32) for i, name in enumerate(("a", "b"))}
REGISTRY = {name: k.public_bytes for name, k in KEYS.items()}


def pair(**kw: float) -> tuple[PhaseSupervisor, PhaseSupervisor]:
    """Two mesh supervisors a (θ = 0.1) and b (θ = 0.3)."""
    out = []
    for name, theta in (("a", 0.1), ("b", 0.3)):
        plan = Plan.for_member("mesh", ["a", "b"], name)
        out.append(
            PhaseSupervisor(key=KEYS[name], plan=plan, keys=REGISTRY, theta=theta, **kw)  # type: ignore[arg-type]
        )
    return out[0], out[1]


def exchange(a: PhaseSupervisor, b: PhaseSupervisor, now: float) -> None:
    """One tick of both, delivering each one's packets to the other."""
    for src, dst in ((a, b), (b, a)):
        for msg in src.tick(now):
            assert msg.to == (dst.node_id,)
            dst.receive(msg.data, now)


def test_step_is_alpha_times_error_to_the_mean() -> None:
    """After hearing b, a moves α·wrap(Θ_cluster − θ_a) with Θ_cluster the mean of both; b's
    packet carries b's phase after its own step (b heard a first: 0.3 − 0.1·0.1)."""
    a, b = pair(alpha=0.1, frequency=0.0)
    exchange(a, b, 0.0)  # a ticks first and hears nothing yet: no step
    assert a.theta == pytest.approx(0.1) and a.steps == 0
    assert b.theta == pytest.approx(0.29) and b.steps == 1
    a.tick(0.0)
    assert a.last_error == pytest.approx((0.29 - 0.1) / 2)
    assert a.theta == pytest.approx(0.1 + 0.1 * (0.29 - 0.1) / 2)


def test_pair_locks_across_zero() -> None:
    """Two cells around the 0/1 seam converge to one phase."""
    a, b = pair(alpha=0.2, frequency=0.0)
    a.theta, b.theta = 0.95, 0.05
    for t in range(200):
        exchange(a, b, float(t))
    assert abs(float(wrap(a.theta - b.theta))) < 1e-6


def test_pll_locks_different_frequencies() -> None:
    """With β > 0 two cells with different natural frequencies end at one frequency."""
    a, b = pair(alpha=0.1, beta=0.025)  # β·dt = α²/4: critically damped
    b.frequency = 1.01
    for t in range(3000):
        exchange(a, b, t * 0.1)
    assert a.frequency == pytest.approx(b.frequency, abs=1e-6)
    assert abs(float(wrap(a.theta - b.theta))) < 1e-4


def test_forged_replayed_and_unknown_packets_are_counted_and_ignored() -> None:
    """Forged, replayed and unknown-signer packets change nothing and are counted by reason."""
    a, b = pair(frequency=0.0)
    genuine = b.tick(0.0)[0].data
    assert a.receive(genuine, 0.0) == []
    assert a.receive(genuine, 0.0) == []  # replay
    forged = Packet(node_id="b", cluster="default", seq=99, timestamp=0.0, theta=0.9)
    a.receive(encode_packet(forged, NodeKey.from_seed(b"x" * 32)), 0.0)
    stranger = Packet(node_id="c", cluster="default", seq=1, timestamp=0.0)
    a.receive(encode_packet(stranger, NodeKey.from_seed(b"c" * 32)), 0.0)
    a.receive(b"\x00garbage", 0.0)
    assert a.rejected == {
        Reject.REPLAY: 1,
        Reject.BAD_SIGNATURE: 1,
        Reject.UNKNOWN_SIGNER: 1,
        Reject.MALFORMED: 1,
    }
    a.tick(0.0)
    assert a.last_error == pytest.approx(0.1)  # only the genuine packet counted


def test_own_packet_played_back_is_a_replay() -> None:
    """A node never sends to itself over the bus: its own signed packet coming back (played
    back by someone on the subject) is counted as a replay and changes nothing."""
    a, b = pair(frequency=0.0)
    own = a.tick(0.0)[0].data
    assert a.receive(own, 0.0) == []
    assert a.rejected == {Reject.REPLAY: 1}
    assert a.validator.accepted == 0
    b.receive(own, 0.0)  # the same bytes are genuine to the peer
    assert b.validator.accepted == 1 and not b.rejected


def test_bad_local_input() -> None:
    """Time going backwards, a wrong key and a bad field value raise InputError."""
    a, _ = pair()
    a.tick(5.0)
    with pytest.raises(InputError, match="now"):
        a.tick(4.0)
    with pytest.raises(InputError) as info:
        a.set_field(coherence=2.0)
    assert info.value.parameter == "coherence"
    a.set_field(coherence=0.5, glyph_digest=bytes(32))
    with pytest.raises(InputError, match="key"):
        PhaseSupervisor(key=KEYS["b"], plan=Plan.for_member("mesh", ["a", "b"], "a"), keys=REGISTRY)


@pytest.mark.parametrize("n", [5, 40])  # plain sums below 16 entries, NumPy from 16
def test_mesh_route_is_the_generic_mean_and_t_global(n: int) -> None:
    """A mesh cell's one-pass route gives exactly (same floats) the target of the generic
    rule, ``_mean(_held(STATE, 0))``, and ``_global(_latest(STATE, 0))`` — with one peer's
    phase gone stale (past the peer timeout: out of the target, in T_global's list, where
    global_sync drops it)."""
    from becomingone.runtime.cluster import build_supervisors
    from becomingone.sync.ssep import PacketKind

    cells = build_supervisors(n, "mesh", seed=3, cache=False)
    for c in cells:
        c.set_field(t_sync=complex(0.3, -0.2 * (hash(c.node_id) % 3 - 1)))
    now = 100.0
    for tick in range(3):
        now += 0.1
        out = {c.node_id: c.tick(now) for c in cells}
        for c in cells:
            for peer in cells:
                if peer is c or (tick == 2 and peer is cells[1]):  # cells[1] falls silent
                    continue
                for o in out[peer.node_id]:
                    if c.node_id in o.to:
                        c.receive(o.data, now + 0.001)
    cell = cells[0]
    later = now + cell.stability.timeout - 0.05  # cells[1]'s last phase is past the timeout
    expected_target = cell._mean(cell._held(PacketKind.STATE, 0, later), later)
    expected_mesh = cell._global(cell._latest(PacketKind.STATE, 0), later)
    target, mesh = cell._mesh_route(later)
    assert target == expected_target and target is not None
    assert mesh == expected_mesh
