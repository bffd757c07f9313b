"""The totals of ``cluster --bus nats --glyphs N`` counted from a real JetStream bucket, real
SQLite fire logs and the nodes' status rows — nothing assumed: a moved glyph's epoch is a
migration, a key in two fire logs a double fire, a record gone and named ``gone`` an end, and
the refused migration packets the nodes' ``rejected_*`` counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from becomingone.cluster import OwnerRecord, evolve, record_key
from becomingone.commands._nats_glyphs import count_glyphs, load_glyphs
from becomingone.runtime.fire_log import FIRE_LOG_NAME, FireLog
from becomingone.runtime.node_glyphs import glyph_bucket
from becomingone.transport.jetstream import JetStreamCasRecord
from becomingone.transport.natsd import NatsServers
from tests.helpers import gone


@pytest.mark.timeout(60)
def test_the_nats_glyph_totals_are_counted_from_records_fire_logs_and_statuses(
    tmp_path: Path,
) -> None:
    nodes = [f"cell-000{i}" for i in range(4)]
    with NatsServers(tmp_path / "nats", servers=1) as servers:
        ids = load_glyphs(servers.urls, "c1", 6, nodes)
        assert ids == [f"probe-000{i}" for i in range(6)]
        kv = JetStreamCasRecord(servers.urls, glyph_bucket("c1"))
        try:  # probe-0000 moved to cell-0003 (epoch 1); probe-0005 ended (record removed)
            got = kv.get(record_key("probe-0000"))
            assert got is not None
            rec = OwnerRecord.from_bytes(got.value)
            moved = OwnerRecord(glyph=evolve(rec.glyph, owner="cell-0003", epoch=1))
            kv.update(record_key("probe-0000"), moved.to_bytes(), got.revision)
            got = kv.get(record_key("probe-0005"))
            assert got is not None
            kv.delete(record_key("probe-0005"), got.revision)
        finally:
            kv.close()
        logs = {
            "cell-0000": [("probe-0000", 5), ("probe-0000", 6)],
            "cell-0003": [("probe-0000", 6), ("probe-0000", 7), ("x", 9)],  # (p0, 6) twice
        }
        for node, keys in logs.items():
            (tmp_path / "nodes" / node).mkdir(parents=True)
            log = FireLog(tmp_path / "nodes" / node / FIRE_LOG_NAME, node)
            for gid, cycle in [*keys, ("probe-0001", 2)]:  # cycle 2: before the run
                log.claim(gid, cycle, 0.0)
            log.close()
        statuses = {
            "cell-0000": {"failed": 1, "gone": [], "migrations": {"migrations": 1, "offered": 1}},
            "cell-0002": {"failed": 0, "gone": [["probe-0005", "energy"]],
                          "migrations": {"rejected_stale_epoch": 2, "rejected_bad_signature": 1}},
            "cell-0003": None,
        }  # fmt: skip
        totals, owners = count_glyphs(
            servers.urls, "c1", ids, tmp_path / "nodes", statuses, first_cycle=5
        )
    assert all(gone(pid) for pid in servers.pids)
    assert owners == {"cell-0000": 1, "cell-0001": 2, "cell-0002": 1, "cell-0003": 1}
    doc = totals.to_json()
    assert (doc["owned"], doc["ended"], doc["glyphs_lost"]) == (5, 1, 0)
    assert (doc["fires"], doc["double_fires"], doc["errors"]) == (4, 1, 1)
    assert (doc["migrations"], doc["migrations_rejected"]) == (1, 3)
