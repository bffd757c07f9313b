"""The glyph list a node's status carries (ids, epochs, kinds, energies, held; bounded at
STATUS_GLYPHS with ``more`` counting the rest; the newest ended with their reason), its
parsing (out-of-shape lists are an InputError naming ``status``), and HeardGlyphs: the glyph
state an observer builds from such statuses — a silent node's glyphs stay, a truncated list
does not end the glyphs beyond it; and the cluster's glyph list a node reads from the
ownership records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from becomingone.api.cluster_events import ClusterEvents, HeardGlyphs
from becomingone.api.events import EventType
from becomingone.api.schemas import GlyphPublic
from becomingone.cluster import Glyph, OwnerRecord, OwnerState, record_key
from becomingone.errors import InputError, StorageError
from becomingone.memory.inmemory import MemoryCasRecord
from becomingone.runtime.node import NodeStatus
from becomingone.runtime.node_glyphs import ANCHOR_KEY
from becomingone.runtime.status_glyphs import (
    STATUS_COUNTERS,
    STATUS_GLYPHS,
    STATUS_GONE,
    record_glyphs,
)


def row(listed: list[list[Any]], *, more: int = 0, gone: Any = (), fires: int = 0) -> dict:
    """A status ``glyphs`` row with the given list."""
    return {"glyphs": len(listed) + more, "fires": fires, "failed": 0, "ended": len(gone),
            "energy": 1.0, "value": None, "list": listed, "more": more,
            "gone": [list(g) for g in gone]}  # fmt: skip


def status(node: str, glyphs: dict[str, Any] | None) -> NodeStatus:
    """A node's status with ``glyphs``, parsed back from its JSON bytes."""
    doc = {"node": node, "kind": "full", "time": 1.0, "theta": 0.0, "frequency": 1.0,
           "stable": True, "epoch": 1, "seq": 1, "members": 3, "heard": 2, "c_seen": 1.0,
           "accepted": 0, "rejected": {}, "t_sync": [0, 0], "t_global": [0, 0],
           "cluster_collapses": 0, "glyphs": glyphs}  # fmt: skip
    return NodeStatus.from_bytes(json.dumps(doc).encode())


def test_a_glyph_list_survives_the_status_message_and_old_rows_parse() -> None:
    """A row with a list parses back to the same list, more and gone; a row of an earlier
    version (no list) parses with none of the three fields."""
    got = status("n-0", row([["g1", 2, "probe", 5.0, 0]], more=3, gone=[("g0", "energy")]))
    assert got.glyphs is not None
    assert got.glyphs["list"] == [["g1", 2, "probe", 5.0, 0]]
    assert (got.glyphs["more"], got.glyphs["gone"]) == (3, [["g0", "energy"]])
    old = row([])
    for key in ("list", "more", "gone"):
        del old[key]
    parsed = status("n-0", old).glyphs
    assert parsed is not None and "list" not in parsed and parsed["glyphs"] == 0
    assert "migrations" not in parsed
    counted = {"migrations": 3, "offered": 4, "rejected_stale_epoch": 1}
    got = status("n-0", {**row([]), "migrations": counted}).glyphs
    assert got is not None and got["migrations"] == counted


@pytest.mark.parametrize(
    "bad",
    [
        {"list": [["g", -1, "probe", 1.0, 0]]},
        {"list": [["g", 1, "probe", float("inf"), 0]]},
        {"list": [["g", 1, "probe", -2.0, 0]]},
        {"list": [["g", 1, "probe", 1.0, 2]]},
        {"list": [["", 1, "probe", 1.0, 0]]},
        {"list": [["x" * 65, 1, "probe", 1.0, 0]]},
        {"list": [["g", 1, "probe", 1.0]]},
        {"list": "g"},
        {"list": [["g", 1, "probe", 1.0, 0]] * (STATUS_GLYPHS + 1)},
        {"gone": [["g", "energy"]] * (STATUS_GONE + 1)},
        {"gone": [["g", 7]]},
        {"more": -1},
        {"migrations": [1]},
        {"migrations": {"migrations": -1}},
        {"migrations": {"migrations": True}},
        {"migrations": {"migrations": 1.5}},
        {"migrations": {"": 1}},
        {"migrations": {f"c{i}": 1 for i in range(STATUS_COUNTERS + 1)}},
    ],
)
def test_an_out_of_shape_glyph_list_is_an_input_error(bad: dict[str, Any]) -> None:
    """Every malformed or unbounded glyph list is refused as a bad status (which the observer
    counts), never taken."""
    with pytest.raises(InputError, match="status"):
        status("n-0", {**row([]), **bad})


def test_a_silent_node_keeps_its_glyphs_and_a_truncated_list_ends_nothing() -> None:
    """A node not heard in a tick keeps the glyphs it listed last (no glyph.ended); a node
    listing only its first ids keeps the glyph that fell off its list; the glyph listed by
    another node moved there (glyph.migrated), and one that left a complete list ended with
    the reason its gone list gives."""
    heard = HeardGlyphs()
    a = [["a1", 0, "probe", 1.0, 0], ["a2", 0, "probe", 1.0, 0]]
    heard.update([status("a", row(a)), status("b", row([["b1", 0, "probe", 1.0, 0]]))])
    events = ClusterEvents(heard, None)
    heard.update([status("b", row([["b1", 0, "probe", 1.0, 0]], fires=4))])  # a silent
    first = events.step(1)
    assert [(e.type, e.data) for e in first] == [
        (EventType.GLYPH_FIRED, {"fires": 4, "by_cell": {"b": 4}})
    ]
    heard.update([status("a", row(a[:1], more=1))])  # a2 beyond a's list now
    assert events.step(2) == []
    b1 = ["b1", 0, "probe", 1.0, 0]
    heard.update([status("a", row(a[:1], more=1)), status("b", row([a[1], b1]))])
    moved = events.step(3)
    assert [(e.type, e.data["id"], e.data["to"]) for e in moved] == [
        (EventType.GLYPH_MIGRATED, "a2", "b")
    ]
    heard.update([status("b", row([a[1]], gone=[("b1", "lifetime")]))])
    ended = events.step(4)
    assert [(e.type, e.data["id"], e.data["reason"]) for e in ended] == [
        (EventType.GLYPH_ENDED, "b1", "lifetime")
    ]
    assert heard.state()["a2"]["owner"] == "b" and set(heard.state()) == {"a1", "a2"}


class ListedRecords(MemoryCasRecord):
    """The in-memory CAS store with the key listing the JetStream adapter has."""

    def keys(self) -> list[str]:
        return list(self._records)


def test_the_cluster_glyphs_come_from_the_ownership_records() -> None:
    """Every glyph record is listed by id with its owner, ``scheduled`` when owned and ``held``
    while an offer is open, ``mine`` only for the reading node's; the cycle anchor is no
    glyph; the reading node's own glyphs are its desk's rows (fresher than their records); a
    record that is not one is a StorageError naming its key."""
    kv = ListedRecords()
    kv.create(ANCHOR_KEY, b'{"anchor": 0.25}')
    for gid, owner in (("g2", "n-1"), ("g1", "n-0")):
        glyph = Glyph(id=gid, kind="probe", energy=3.0, owner=owner, epoch=2)
        kv.create(record_key(gid), OwnerRecord(glyph=glyph).to_bytes())
    moving = Glyph(id="g3", kind="probe", energy=1.0, owner="n-0", epoch=1)
    record = OwnerRecord(glyph=moving, state=OwnerState.OFFERED, target="n-1")
    kv.create(record_key("g3"), record.to_bytes())
    own = Glyph(id="g1", kind="probe", energy=2.5, owner="n-0", epoch=2)
    local = [{**own.to_dict(), "state": "scheduled"}, {**moving.to_dict(), "state": "held"}]
    rows = record_glyphs(kv, local)
    got = [(r["id"], r["owner"], r["epoch"], r["energy"], r["state"], r["mine"]) for r in rows]
    assert got == [
        ("g1", "n-0", 2, 2.5, "scheduled", True),
        ("g2", "n-1", 2, 3.0, "scheduled", False),
        ("g3", "n-0", 1, 1.0, "held", True),
    ]
    others = record_glyphs(kv, [])
    assert [(r["id"], r["state"], r["mine"]) for r in others] == [
        ("g1", "scheduled", False),
        ("g2", "scheduled", False),
        ("g3", "held", False),
    ]
    GlyphPublic(**rows[0])
    kv.create(record_key("bad"), b"{}")
    with pytest.raises(StorageError, match=r"glyph\.bad"):
        record_glyphs(kv, [])
