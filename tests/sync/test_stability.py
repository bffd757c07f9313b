"""Network stability detector and cluster coherence readings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.core.phase import CoherenceBand
from becomingone.sync import NetworkStability, read_cluster


def test_stable_after_k_good_ticks_and_reset_by_silence_or_membership() -> None:
    """Stable needs k good ticks; a silent peer or a membership change resets it."""
    s = NetworkStability(peers={"a", "b"}, k=3, timeout=1.0)
    for t in range(3):
        s.heard("a", t)
        s.heard("b", t)
        assert s.tick(t + 0.5) == (t == 2)
    s.heard("a", 3.0)
    assert not s.tick(3.5 + 1.0)  # b last heard at 2.0: 2.5 s > timeout
    for t in range(5, 8):
        s.heard("a", t)
        s.heard("b", t)
        s.tick(t)
    assert s.stable
    s.set_peers({"a"})
    assert not s.tick(8.0)


def test_read_cluster_bands() -> None:
    """Tight phases around 0/1 read SHARED; spread phases LOOSE."""
    assert read_cluster([0.99, 0.0, 0.01]).band is CoherenceBand.SHARED
    assert read_cluster([0.0, 0.25, 0.5, 0.75]).band is CoherenceBand.LOOSE


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.floats(-10.0, 10.0), max_size=6),
    st.sets(st.sampled_from("abcdefg"), max_size=7),
    st.floats(-10.0, 10.0),
    st.floats(0.01, 5.0),
)
@settings(max_examples=200, deadline=None)
def test_tick_counts_a_peer_fresh_exactly_as_the_per_peer_rule(
    heard: dict[str, float], peers: set[str], now: float, timeout: float
) -> None:
    """A tick is good iff every expected peer was heard with ``now - t <= timeout`` (a peer
    never heard fails), checked one peer at a time; the one-pass ``tick`` agrees."""
    s = NetworkStability(peers=peers, k=1, timeout=timeout)
    for peer, t in heard.items():
        s.heard(peer, t)
    expected = all(p in heard and now - heard[p] <= timeout for p in peers)
    assert s.tick(now) is expected


@settings(max_examples=200, deadline=None)
@given(
    peers=st.sets(st.sampled_from("abcdef"), max_size=6),
    heard=st.dictionaries(
        st.sampled_from("abcdefgh"),
        st.floats(-10.0, 10.0, allow_nan=False),
        max_size=8,
    ),
    now=st.floats(-10.0, 12.0, allow_nan=False),
)
def test_heard_within_counts_expected_peers_heard_within_the_timeout(
    peers: set[str], heard: dict[str, float], now: float
) -> None:
    """heard_within(now) is the count over the state's (peer, at) pairs a status reports:
    expected peers only (g, h are heard but not expected), a peer from the future counts."""
    s = NetworkStability(peers=peers, k=2, timeout=1.5)
    for peer, at in heard.items():
        s.heard(peer, at)
    expected = sum(
        1 for peer, at in s.state().last_heard if peer in s.peers and now - at <= s.timeout
    )
    assert s.heard_within(now) == expected
