"""The storage conformance suite: behaviour every adapter of every storage protocol must show.

Every test takes a ``make_*`` fixture from ``conformance.py``, parametrised over all adapters
of that protocol (memory, SQLite; JetStream later), so one test is one guarantee checked
against each backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from becomingone.errors import CasConflict, InputError
from becomingone.memory import (
    AppendLog,
    CasRecord,
    Coherence,
    CoherenceHistory,
    CoherencePoint,
    ProtocolStateStore,
    Retention,
    SignatureStore,
    Versioned,
    WitnessLog,
)
from tests.memory.conformance import chain_batches

Make = Any


def point(t: float, v: float, phase: float = 0.0) -> CoherencePoint:
    """A raw coherence point at ``t`` with every |T|² equal to ``v``."""
    c = Coherence(master=v, emissary=v, sync=v, delta_phase=v / 10)
    return CoherencePoint(t=t, coherence=c, phase=phase)


# -- WitnessLog ---------------------------------------------------------------------------------


def test_witness_log_appends_and_reads_by_position(make_witness_log: Make) -> None:
    """Batches come back in order by position and range; count and head follow each append."""
    log = make_witness_log()
    assert isinstance(log, WitnessLog)
    assert log.count() == 0 and log.head() is None and list(log.read()) == []
    batches = chain_batches([3, 0, 4])
    for records, head in batches:
        log.append(records, head)
        assert log.head() == head and log.count() == head.count
    every = [r for records, _ in batches for r in records]
    assert list(log.read()) == every
    assert list(log.read(2, 3)) == every[2:5]
    assert list(log.read(6)) == every[6:] and list(log.read(7)) == []
    assert list(log.read(1, 0)) == []


def test_witness_log_refuses_a_head_that_does_not_cover_the_records(make_witness_log: Make) -> None:
    """A head whose count or hash does not match the new records is refused; nothing stored."""
    log = make_witness_log()
    (first, head1), (second, head2) = chain_batches([2, 2])
    log.append(first, head1)
    with pytest.raises(InputError) as err:
        log.append(second, head1)
    assert err.value.parameter == "head"
    with pytest.raises(InputError):
        log.append(second, dataclasses.replace(head2, hash=first[-1].hash))
    with pytest.raises(InputError):
        log.append([*second[:1], "not a record"], head2)  # type: ignore[list-item]
    assert log.count() == 2 and log.head() == head1 and list(log.read()) == first
    with pytest.raises(InputError):
        list(log.read(-1))


# -- SignatureStore -----------------------------------------------------------------------------


def test_signatures_keep_the_newest_per_transducer(make_signature_store: Make) -> None:
    """latest() is the newest per role; only retention.signatures are kept per role."""
    store = make_signature_store(retention=Retention(signatures=2))
    assert isinstance(store, SignatureStore) and store.latest() == {}
    for i in range(5):
        sig: dict[str, tuple[int, bytes]] = {"master": (i, b"m%d" % i)}
        if i % 2 == 0:
            sig["emissary"] = (10 * i, b"e%d" % i)
        store.put(float(i), sig)
    assert store.latest() == {"master": (4, b"m4"), "emissary": (40, b"e4")}
    assert [(s.t, s.samples, s.state) for s in store.kept("master")] == [
        (3.0, 3, b"m3"),
        (4.0, 4, b"m4"),
    ]
    assert [s.t for s in store.kept("emissary")] == [2.0, 4.0]
    assert store.kept("nobody") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"master": (1, "text")},
        {"master": (-1, b"x")},
        {"": (1, b"x")},
        {"master": 5},
    ],
)
def test_signatures_refuse_bad_input_whole(make_signature_store: Make, bad: Any) -> None:
    """A put with one bad signature stores none of that put."""
    store = make_signature_store()
    with pytest.raises(InputError):
        store.put(1.0, {"emissary": (1, b"ok"), **bad})
    with pytest.raises(InputError):
        store.put(float("nan"), {"master": (1, b"x")})
    assert store.latest() == {}


# -- CoherenceHistory ---------------------------------------------------------------------------


def test_coherence_retrieve_and_reconstruct(make_coherence_history: Make) -> None:
    """Points come back by time in a closed range; reconstruct interpolates and refuses outside."""
    hist = make_coherence_history()
    assert isinstance(hist, CoherenceHistory)
    for t in (3.0, 1.0, 2.0):
        hist.add(point(t, t / 10, phase=t))
    assert [p.t for p in hist.retrieve(1.0, 2.0)] == [1.0, 2.0]
    mid = hist.reconstruct(2.5)
    assert mid.coherence.master == pytest.approx(0.25) and mid.phase == pytest.approx(2.5)
    assert hist.reconstruct(3.0).coherence.sync == pytest.approx(0.3)
    for outside in (0.5, 3.5):
        with pytest.raises(InputError):
            hist.reconstruct(outside)


def test_coherence_retention_folds_and_drops(make_coherence_history: Make) -> None:
    """Old raw points become bucket means (n summed); buckets older than coarse_seconds go."""
    ret = Retention(raw_seconds=100, coarse_step=10, coarse_seconds=1000)
    hist = make_coherence_history(retention=ret)
    for i in range(3000):
        hist.add(point(float(i), (i % 10) / 10))
        if i % 50 == 49:
            hist.compact(float(i))
    pts = hist.retrieve(0, 3000)
    raw, coarse = [p for p in pts if p.step == 0], [p for p in pts if p.step > 0]
    assert raw[0].t >= 2999 - 100 - 10 and len(raw) <= 111
    assert coarse and all(p.step == 10 and p.n == 10 for p in coarse)
    assert all(p.coherence.master == pytest.approx(0.45) for p in coarse)
    assert coarse[0].t >= 2949 - 1000
    assert sum(p.n for p in pts) == len(raw) + 10 * len(coarse)


def test_coherence_refuses_bad_points(make_coherence_history: Make) -> None:
    """Non-points and non-finite times are refused; nothing is stored."""
    hist = make_coherence_history()
    with pytest.raises(InputError):
        hist.add("0.5")
    with pytest.raises(InputError):
        hist.add(point(float("inf"), 0.5))
    with pytest.raises(InputError):
        hist.compact(float("nan"))
    assert hist.retrieve(float("-inf"), float("inf")) == []


# -- ProtocolStateStore -------------------------------------------------------------------------


def test_protocol_state_put_get_and_atomic_batch(make_protocol_state: Make) -> None:
    """Blobs round-trip; last write wins; a batch with one bad entry stores nothing."""
    store = make_protocol_state()
    assert isinstance(store, ProtocolStateStore)
    assert store.get("cps") is None and store.names() == []
    store.put("cps", b"\x00state")
    store.put_many({"epoch": b"7", "source": b"row=12"})
    store.put("epoch", b"8")
    assert store.get("cps") == b"\x00state" and store.get("epoch") == b"8"
    assert store.names() == ["cps", "epoch", "source"]
    with pytest.raises(InputError):
        store.put_many({"cps": b"new", "epoch": b"9", "bad": "not bytes"})
    with pytest.raises(InputError):
        store.put_many({"cps": b"new", "bad name!": b"x"})
    assert store.get("cps") == b"\x00state" and store.get("epoch") == b"8"
    assert store.names() == ["cps", "epoch", "source"]


# -- CasRecord ----------------------------------------------------------------------------------


def test_cas_create_update_delete(make_cas_record: Make) -> None:
    """create/update/delete move revisions forward; reads return (value, revision)."""
    kv = make_cas_record()
    assert isinstance(kv, CasRecord) and kv.get("glyph.1") is None
    r1 = kv.create("glyph.1", b"a")
    assert kv.get("glyph.1") == Versioned(b"a", r1) and r1 >= 1
    value, revision = kv.get("glyph.1")  # type: ignore[misc]
    assert (value, revision) == (b"a", r1)
    r2 = kv.update("glyph.1", b"b", r1)
    assert r2 > r1 and kv.get("glyph.1") == (b"b", r2)
    kv.delete("glyph.1", r2)
    assert kv.get("glyph.1") is None
    r3 = kv.create("glyph.1", b"c")
    assert r3 > r2, "a re-created key must never repeat a revision"


def test_cas_conflicts_are_typed_and_change_nothing(make_cas_record: Make) -> None:
    """create on an existing key, update/delete on a stale or missing revision raise
    CasConflict with expected and actual revisions, and leave the record as it was."""
    kv = make_cas_record()
    r1 = kv.create("k", b"a")
    with pytest.raises(CasConflict) as err:
        kv.create("k", b"x")
    assert (err.value.key, err.value.expected, err.value.actual) == ("k", None, r1)
    r2 = kv.update("k", b"b", r1)
    with pytest.raises(CasConflict) as err:
        kv.update("k", b"stale", r1)
    assert (err.value.expected, err.value.actual) == (r1, r2)
    with pytest.raises(CasConflict):
        kv.delete("k", r1)
    with pytest.raises(CasConflict) as err:
        kv.update("missing", b"x", 1)
    assert err.value.actual is None
    with pytest.raises(CasConflict):
        kv.delete("missing", 1)
    assert kv.get("k") == (b"b", r2) and kv.get("missing") is None


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda kv: kv.create("", b"x"), "key"),
        (lambda kv: kv.create("a b", b"x"), "key"),
        (lambda kv: kv.create("a..b", b"x"), "key"),
        (lambda kv: kv.create("k", "text"), "value"),
        (lambda kv: kv.update("k", b"x", 0), "expected_revision"),
        (lambda kv: kv.update("k", b"x", True), "expected_revision"),
        (lambda kv: kv.delete("k", -3), "expected_revision"),
        (lambda kv: kv.get(7), "key"),
    ],
)
def test_cas_bad_arguments_name_the_parameter(
    make_cas_record: Make, call: Any, parameter: str
) -> None:
    """Bad keys, values and revisions raise InputError naming the parameter."""
    kv = make_cas_record()
    with pytest.raises(InputError) as err:
        call(kv)
    assert err.value.parameter == parameter


# -- AppendLog ----------------------------------------------------------------------------------


def test_append_log_indexes_are_one_based_and_gapless(make_append_log: Make) -> None:
    """append returns 1, 2, 3, ...; read(from, limit) slices by index; [] past the end."""
    log = make_append_log()
    assert isinstance(log, AppendLog) and log.last_index() == 0 and log.read() == []
    entries = [bytes([i]) * i for i in range(1, 8)]
    assert [log.append(e) for e in entries] == list(range(1, 8))
    assert log.last_index() == 7 and log.read() == entries
    assert log.read(3, 2) == entries[2:4] and log.read(7) == entries[6:]
    assert log.read(8) == [] and log.read(2, 0) == []
    for bad in ({"start": 0}, {"limit": -1}):
        with pytest.raises(InputError):
            log.read(**bad)


def test_append_log_expected_last_is_optimistic(make_append_log: Make) -> None:
    """append(expected_last=n) succeeds only when the last index is n; else CasConflict."""
    log = make_append_log(name="raft")
    assert log.append(b"a", expected_last=0) == 1
    assert log.append(b"b", expected_last=1) == 2
    with pytest.raises(CasConflict) as err:
        log.append(b"late", expected_last=1)
    assert (err.value.key, err.value.expected, err.value.actual) == ("raft", 1, 2)
    with pytest.raises(InputError):
        log.append("text")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        log.append(b"x", expected_last=-1)
    assert log.read() == [b"a", b"b"] and log.last_index() == 2
