"""The glyph value: validation naming the field, canonical bytes, digest and node energy."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.cluster import MAX_PAYLOAD_BYTES, Glyph, glyph_digest, node_energy
from becomingone.errors import InputError
from becomingone.sync.ssep import Packet

json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_leaf |= st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
ids = st.from_regex(r"\A[A-Za-z0-9_=-]{1,20}\Z")
glyphs = st.builds(
    Glyph,
    id=ids,
    kind=st.sampled_from(["probe", "command", "python", "my.kind-2"]),
    payload=st.dictionaries(st.text(max_size=5), json_value, max_size=4),
    theta=st.floats(0.0, 1.0, exclude_max=True),
    delta_phi=st.floats(0.0, 1.0, exclude_max=True),
    kappa=st.floats(0.0, 1e6),
    energy=st.floats(0.0, 1e6),
    lifetime=st.integers(0, 2**40),
    coherence=st.floats(0.0, 1.0),
    owner=st.sampled_from(["", "cell-1", "node.a:2"]),
    epoch=st.integers(0, 2**40),
)


@given(glyphs)
def test_canonical_bytes_round_trip(glyph: Glyph) -> None:
    """from_bytes(to_bytes(g)) == g for any valid glyph, and the bytes are a fixed point."""
    data = glyph.to_bytes()
    again = Glyph.from_bytes(data)
    assert again == glyph
    assert again.to_bytes() == data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("theta", 1.0),
        ("theta", -0.1),
        ("theta", math.nan),
        ("delta_phi", math.inf),
        ("kappa", -1.0),
        ("energy", -0.5),
        ("energy", math.inf),
        ("coherence", 1.5),
        ("lifetime", -1),
        ("lifetime", 2.0),
        ("lifetime", True),
        ("epoch", -1),
        ("id", "has space"),
        ("id", "a..b"),
        ("id", ".a"),
        ("id", "x" * 65),
        ("kind", "Probe"),
        ("kind", ""),
        ("owner", "bad owner"),
        ("payload", [1, 2]),
    ],
)
def test_bad_fields_are_rejected_naming_the_field(field: str, value: object) -> None:
    """Each invalid field raises InputError whose parameter is that field."""
    args: dict[str, object] = {"id": "g", "kind": "probe", field: value}
    with pytest.raises(InputError) as info:
        Glyph(**args)  # type: ignore[arg-type]
    assert info.value.parameter == field


@pytest.mark.parametrize(
    "payload",
    [
        {"x": math.nan},
        {"x": [math.inf]},
        {"x": {1: 2}},
        {"x": object()},
        {"x": "y" * (MAX_PAYLOAD_BYTES)},
    ],
)
def test_bad_payloads_are_rejected(payload: dict[str, object]) -> None:
    """Non-finite numbers, non-JSON values, non-string keys and oversized payloads fail."""
    with pytest.raises(InputError) as info:
        Glyph(id="g", kind="probe", payload=payload)
    assert info.value.parameter == "payload"


def test_payload_at_the_limit_is_accepted_and_read_only() -> None:
    """A payload of exactly MAX_PAYLOAD_BYTES canonical bytes passes; it cannot be mutated."""
    overhead = len(b'{"x":""}')
    g = Glyph(id="g", kind="probe", payload={"x": "y" * (MAX_PAYLOAD_BYTES - overhead)})
    with pytest.raises(TypeError):
        g.payload["x"] = "z"  # type: ignore[index]
    source = {"argv": ["echo", "hi"]}
    h = Glyph(id="h", kind="command", payload=source)
    source["argv"].append("changed")
    assert list(h.payload["argv"]) == ["echo", "hi"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"glyph":2,"id":"g","kind":"probe"}',
        b'{"glyph":1,"id":"g"}',
        b'{"glyph":1,"id":"g","kind":"probe","extra":1}',
        b'{"glyph":1,"id":"g","kind":"probe","theta":1.5}',
    ],
)
def test_from_bytes_rejects_bad_input(data: bytes) -> None:
    """Anything but a canonical format-1 glyph with valid fields is an InputError."""
    with pytest.raises(InputError):
        Glyph.from_bytes(data)


def test_digest_is_a_set_digest_of_ownership() -> None:
    """The digest ignores order and firing state, changes with the set or an owner/epoch,
    is 32 bytes (fits an SSEP packet) and rejects a duplicate id."""
    a = Glyph(id="a", kind="probe", owner="c1", epoch=1)
    b = Glyph(id="b", kind="command", owner="c1", epoch=3)
    d = glyph_digest([a, b])
    assert len(d) == 32
    assert d == glyph_digest([b, a])
    fired = Glyph(**{**a.to_dict(), "energy": 0.5, "lifetime": 0, "coherence": 0.9})
    assert glyph_digest([fired, b]) == d
    assert glyph_digest([a]) != d
    moved = Glyph(**{**a.to_dict(), "owner": "c2", "epoch": 2})
    assert glyph_digest([moved, b]) != d
    assert Packet(node_id="c1", cluster="x", seq=1, timestamp=1.0, glyph_digest=d).glyph_digest == d
    with pytest.raises(InputError):
        glyph_digest([a, a])


def test_node_energy_is_the_sum() -> None:
    """node_energy is Σ energy (exactly, with fsum) and 0 for no glyphs."""
    gs = [Glyph(id=f"g{i}", kind="probe", energy=0.1) for i in range(10)]
    assert node_energy(gs) == 1.0
    assert node_energy([]) == 0.0
