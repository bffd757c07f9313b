"""The witnessing layer by the seed's names: each name writes its level, records are the bytes
:meth:`WitnessChain.append` writes (so stored chains verify unchanged), and a cell's own
records go through the names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.errors import InputError
from becomingone.keys import NodeKey
from becomingone.runtime import Cell, synthetic_phase
from becomingone.witnessing import (
    Level,
    VerifyReport,
    WitnessChain,
    WitnessingLayer,
    report_payload,
    verify,
)
from tests.helpers import small_config

KEY = NodeKey.from_seed(b"w" * 32)

payloads = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False)),
    max_size=4,
)


def pair() -> tuple[WitnessChain, WitnessingLayer]:
    """A plain chain and a layer over a second chain with the same key, both empty."""
    return WitnessChain(KEY), WitnessingLayer(WitnessChain(KEY))


@given(kind=st.text(min_size=1, max_size=12), payload=payloads, now=st.floats(0, 2e9))
def test_each_name_writes_what_append_writes(
    kind: str, payload: dict[str, Any], now: float
) -> None:
    """For any kind, payload and time, the four names give records equal, field for field and
    hash for hash, to ``append`` at their level (the transducer name joins the payload)."""
    chain, layer = pair()
    made = [
        layer.witness_operation(kind, payload, now=now),
        layer.witness_transducer("master", payload, now=now, kind=kind),
        layer.witness_system(kind, payload, now=now),
        layer.witness_self(payload, now=now, kind=kind),
    ]
    expected = [
        chain.append(Level.MICRO, kind, payload, now=now),
        chain.append(Level.MESO, kind, {**payload, "transducer": "master"}, now=now),
        chain.append(Level.MACRO, kind, payload, now=now),
        chain.append(Level.META, kind, payload, now=now),
    ]
    assert made == expected
    assert verify(made, KEY.public_bytes).ok


def test_levels_defaults_and_a_report() -> None:
    """Default kinds: cycle (meso), collapse (macro), verify (meta); a report's payload is its
    checked, ok, first_bad and reason."""
    layer = WitnessingLayer(WitnessChain(KEY))
    op = layer.witness_operation("ingest", {"n": 1}, now=1.0)
    cycle = layer.witness_transducer("emissary", now=1.0)
    system = layer.witness_system(now=1.0)
    report = VerifyReport(ok=False, checked=2, first_bad=1, reason="bad signature")
    meta = layer.witness_self(report, now=1.0)
    assert [(r.level, r.kind) for r in (op, cycle, system, meta)] == [
        ("micro", "ingest"),
        ("meso", "cycle"),
        ("macro", "collapse"),
        ("meta", "verify"),
    ]
    assert cycle.data() == {"transducer": "emissary"}
    assert (
        meta.data()
        == report_payload(report)
        == {
            "checked": 2,
            "ok": False,
            "first_bad": 1,
            "reason": "bad signature",
        }
    )
    assert layer.chain.count == 4


def test_bad_arguments_name_the_parameter() -> None:
    """A payload naming another transducer, or an empty kind, is an InputError; nothing is
    appended."""
    layer = WitnessingLayer(WitnessChain(KEY))
    with pytest.raises(InputError, match="payload: names transducer 'master', not 'emissary'"):
        layer.witness_transducer("emissary", {"transducer": "master"}, now=1.0)
    with pytest.raises(InputError, match="kind"):
        layer.witness_operation("", now=1.0)
    with pytest.raises(InputError, match="payload"):
        layer.witness_system("collapse", {"x": float("nan")}, now=1.0)
    assert layer.chain.count == 0


async def test_a_cell_writes_its_records_through_the_names(tmp_path: Path) -> None:
    """A running cell's ingest, cycle, collapse and self-check records come from its layer
    (ingest micro, cycle meso with the transducer, collapse macro, verify meta) and verify."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        assert cell.core.witnessing.chain is cell.chain
        for i in range(30):
            await cell.ingest(synthetic_phase(i * 50, 50, dt=cell.dt), now=1_000.0 + i * 0.5)
        records = list(cell.memory.witnesses())
        levels = {r.kind: r.level for r in records}
        assert levels["ingest"] == "micro" and levels["cycle"] == "meso"
        assert levels["collapse"] == "macro" and levels["verify"] == "meta"
        roles = {r.data()["transducer"] for r in records if r.kind == "cycle"}
        assert roles == {"master", "emissary"}
        assert cell.verify_chain().ok
    finally:
        cell.close()
