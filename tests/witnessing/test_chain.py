"""Tests of the signed hash chain: every kind of tampering is found at the right record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from becomingone.keys import NodeKey
from becomingone.memory import Coherence, TemporalMemory
from becomingone.witnessing import Level, WitnessChain, WitnessRecord, verify
from tests.helpers import sql

KEY = NodeKey.from_seed(bytes(range(32)))
OTHER = NodeKey.from_seed(bytes(32))
ZERO = Coherence(master=0, emissary=0, sync=0, delta_phase=0)


def make_chain(n: int, key: NodeKey = KEY) -> list[WitnessRecord]:
    """n records at the four levels."""
    chain = WitnessChain(key)
    levels = list(Level)
    return [
        chain.append(levels[i % 4], "test", {"i": i, "x": [i, 0.5]}, now=100.0 + i)
        for i in range(n)
    ]


def test_a_fresh_chain_verifies() -> None:
    """An untouched chain verifies, with every record checked."""
    report = verify(make_chain(12), KEY.public_bytes)
    assert report.ok and report.checked == 12


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 7),
    st.sampled_from(["level", "time", "kind", "payload", "prev_hash", "hash", "signature"]),
    st.integers(0, 1000),
)
def test_any_changed_byte_fails_at_that_record(index: int, name: str, where: int) -> None:
    """Changing one byte of any field of record i makes verification fail at record i."""
    records = make_chain(8)
    r = records[index]
    value = getattr(r, name)
    if name == "time":
        changed: object = value + 1e-6
    elif isinstance(value, bytes):
        pos = where % len(value)
        changed = value[:pos] + bytes([value[pos] ^ 0x01]) + value[pos + 1 :]
    else:
        pos = where % len(value)
        changed = value[:pos] + chr(ord(value[pos]) ^ 0x01) + value[pos + 1 :]
    records[index] = dataclasses.replace(r, **{name: changed})
    report = verify(records, KEY.public_bytes)
    assert not report.ok and report.first_bad == index


def test_removed_and_reordered_records() -> None:
    """A removed record, or two swapped records, is reported at the first wrong position."""
    records = make_chain(6)
    removed = records[:3] + records[4:]
    report = verify(removed, KEY.public_bytes)
    assert report.first_bad == 3 and "removed or reordered" in report.reason
    swapped = [*records[:2], records[3], records[2], *records[4:]]
    assert verify(swapped, KEY.public_bytes).first_bad == 2


def test_rehashed_forgery_fails_on_signature() -> None:
    """Changing a payload and recomputing its hash still fails: the signature is wrong."""
    records = make_chain(4)
    r = records[1]
    forged = dataclasses.replace(r, payload='{"i":99}')
    forged = dataclasses.replace(forged, hash=forged.computed_hash())
    records[1] = forged
    report = verify(records, KEY.public_bytes)
    assert report.first_bad == 1
    assert report.reason in {"bad signature", "prev_hash does not match the previous record's hash"}


def test_wrong_signer_and_truncated_tail() -> None:
    """Records signed by another key fail; a missing tail fails against the signed head."""
    assert verify(make_chain(3, OTHER), KEY.public_bytes).first_bad == 0
    chain = WitnessChain(KEY)
    records = [chain.append(Level.MICRO, "k", {"i": i}, now=float(i)) for i in range(5)]
    head = chain.head()
    assert verify(records, KEY.public_bytes, head=head).ok
    report = verify(records[:3], KEY.public_bytes, head=head)
    assert report.first_bad == 3 and "missing" in report.reason
    forged_head = dataclasses.replace(head, count=3, hash=records[2].hash)
    assert verify(records[:3], KEY.public_bytes, head=forged_head).reason == "bad head signature"


def test_rollback_forgets_pending_records() -> None:
    """After rollback the chain continues from the last committed record (no fork)."""
    chain = WitnessChain(KEY)
    first = chain.append(Level.MICRO, "a", {}, now=1.0)
    chain.commit()
    chain.append(Level.MICRO, "lost", {}, now=2.0)
    chain.rollback()
    second = chain.append(Level.MICRO, "b", {}, now=3.0)
    assert second.seq == 1 and second.prev_hash == first.hash
    assert verify([first, second], KEY.public_bytes).ok


def test_payload_must_be_json() -> None:
    """NaN or unserialisable payloads are refused before anything is signed."""
    chain = WitnessChain(KEY)
    with pytest.raises(ValueError, match="payload"):
        chain.append(Level.MICRO, "x", {"v": float("nan")}, now=0)
    assert chain.count == 0


# -- tampering with the stored chain (as an attacker with write access to the file) -------------


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A database holding a committed 10-record chain and its signed head."""
    chain = WitnessChain(KEY)
    with TemporalMemory(tmp_path / "m.sqlite3") as mem:
        for i in range(5):
            recs = [chain.append(Level.MICRO, "k", {"i": i, "j": j}, now=i + j / 2) for j in (0, 1)]
            mem.snapshot(float(i), ZERO, 0.0, recs, head=chain.head())
            chain.commit()
    return tmp_path / "m.sqlite3"


def verify_file(db: Path):  # type: ignore[no-untyped-def]
    """Verify the chain stored in ``db``."""
    with TemporalMemory(db) as mem:
        return verify(mem.witnesses(), KEY.public_bytes, head=mem.chain_head())


@pytest.mark.parametrize(
    ("statement", "bad"),
    [
        ("UPDATE witness SET payload = replace(payload, '3', '4') WHERE seq = 6", 6),
        ("UPDATE witness SET time = time + 0.001 WHERE seq = 2", 2),
        ("UPDATE witness SET kind = 'K' WHERE seq = 0", 0),
        ("UPDATE witness SET signature = zeroblob(64) WHERE seq = 9", 9),
        ("UPDATE witness SET hash = lower(hex(randomblob(32))) WHERE seq = 4", 4),
        ("DELETE FROM witness WHERE seq = 5", 5),
        ("DELETE FROM witness WHERE seq >= 8", 8),
        ("UPDATE witness SET pos = pos + 100 WHERE seq = 3", 3),
        ("UPDATE chain_head SET count = 9", 10),
    ],
    ids=["payload", "time", "kind", "signature", "hash", "removed", "tail", "reordered", "head"],
)
def test_stored_tampering_is_named(stored: Path, statement: str, bad: int) -> None:
    """Each kind of change to the stored chain fails verification naming the right record."""
    assert verify_file(stored).ok
    sql(stored, statement)
    report = verify_file(stored)
    assert not report.ok and report.first_bad == bad, report
