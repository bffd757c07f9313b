"""The key roster: validation, immutability, canonical bytes and digest, changes, lookups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.sync import KeyRoster, PacketValidator, PhaseSupervisor, Plan

A, B = (NodeKey.from_seed(bytes([i]) * 32).public_bytes for i in (1, 2))

rosters = st.dictionaries(
    st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    st.binary(min_size=32, max_size=32),
    max_size=12,
).filter(lambda d: len(set(d.values())) == len(d))


@given(rosters)
@settings(max_examples=100, deadline=None)
def test_bytes_round_trip_and_digest_is_order_free(members: dict[str, bytes]) -> None:
    """from_bytes(to_bytes(r)) == r; the bytes and digest do not depend on insertion order."""
    roster = KeyRoster(members)
    assert KeyRoster.from_bytes(roster.to_bytes()) == roster
    reordered = KeyRoster(dict(reversed(list(members.items()))))
    assert reordered.to_bytes() == roster.to_bytes()
    assert reordered.digest == roster.digest and len(roster.digest) == 64
    assert list(roster) == sorted(members)


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        ({"bad id": A}, "node id"),
        ({"": A}, "node id"),
        ({"a": A[:31]}, "32 bytes"),
        ({"a": "x" * 32}, "32 bytes"),
        ({"a": A, "b": A}, "share one public key"),
    ],
)
def test_invalid_members_are_refused(members: dict[str, object], needle: str) -> None:
    """Bad ids, keys of the wrong size or type, and a key held twice raise InputError."""
    with pytest.raises(InputError, match=needle) as info:
        KeyRoster(members)  # type: ignore[arg-type]
    assert info.value.parameter == "roster"


def test_changes_make_new_rosters_and_lookups() -> None:
    """with_member/without_member return new rosters; the original never changes."""
    base = KeyRoster({"a": A})
    grown = base.with_member("b", B)
    assert dict(base) == {"a": A} and dict(grown) == {"a": A, "b": B}
    assert grown.node_of(B) == "b" and grown.node_of(bytes(32)) is None
    assert grown.without_member("b") == base
    assert grown.digest != base.digest
    with pytest.raises(InputError, match="not a member"):
        base.without_member("b")
    with pytest.raises(InputError, match="share one public key"):
        grown.with_member("c", A)
    with pytest.raises(TypeError):
        base["c"] = B  # type: ignore[index]
    assert KeyRoster.of(grown) is grown and KeyRoster.of({"a": A}) == base
    assert hash(KeyRoster({"a": A})) == hash(base)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"NOTROSTR\x01\x00\x00\x00\x00",
        b"B1ROSTER\x02\x00\x00\x00\x00",
        b"B1ROSTER\x01\x00\x00\x00\x01\x01a" + A[:5],
        KeyRoster({"a": A}).to_bytes() + b"x",
        b"B1ROSTER\x01\x00\x00\x00\x02\x01b" + B + b"\x01a" + A,
    ],
)
def test_from_bytes_refuses_anything_but_canonical_bytes(data: bytes) -> None:
    """Truncated, foreign, future-version, trailing and out-of-order bytes raise InputError."""
    with pytest.raises(InputError) as info:
        KeyRoster.from_bytes(data)
    assert info.value.parameter == "roster"


def test_validator_and_supervisor_take_a_roster_or_a_mapping() -> None:
    """PacketValidator and PhaseSupervisor accept a KeyRoster or a plain mapping (validated)."""
    roster = KeyRoster({"a": A, "b": B})
    assert PacketValidator(cluster="c", keys=roster).roster is roster
    assert PacketValidator(cluster="c", keys={"a": A, "b": B}).roster == roster
    key = NodeKey.from_seed(bytes([1]) * 32)
    plan = Plan.for_member("mesh", ["a", "b"], "a")
    assert PhaseSupervisor(key=key, plan=plan, keys=roster).roster is roster
    with pytest.raises(InputError, match="share one public key"):
        PacketValidator(cluster="c", keys={"a": A, "b": A})
