"""``becomingone cluster --bus nats --glyphs N``: the probe glyphs loaded as ownership records
before the node processes start, and the run's glyph totals counted afterwards.

Rule: touches only the run's glyph bucket ``glyphs_<cluster>`` (on the servers the run
started; with ``--tls`` through the run's admin certificate, ``tls``) and reads the nodes' fire
logs in the run's node dirs. Loading writes the
:func:`~becomingone.runtime.cell_glyphs.probe_glyphs` as records owned round-robin by the
first :data:`~becomingone.runtime.cell_glyphs.DEMO_CELLS` nodes (epoch 0) — a node that starts
schedules what the records say it owns, as after a restart — after removing what an earlier
run on the same ``--data-dir`` left in the bucket (records and cycle anchor). The totals are
counted, not assumed: ``owned`` = submitted glyphs that still have a record (owned, or offered
in flight), ``ended`` = those without one that a node's status reports ended, ``glyphs_lost``
= the rest; ``fires`` and ``double_fires`` from the union of the nodes' SQLite fire logs (a
(glyph, cycle) key in two logs is a double fire; cycles before the run's start are an earlier
run's); ``migrations`` = Σ epoch over the records (each change of owner, a migration or a
takeover, is one epoch); ``errors`` = failed runs (errors and timeouts) and
``migrations_rejected`` = migration packets refused (the ``rejected_<reason>`` ownership
counters), both from the nodes' latest statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from becomingone.certs import TlsFiles
from becomingone.cluster import OwnerRecord, evolve, record_key
from becomingone.runtime.cell_glyphs import DEMO_CELLS, GlyphTotals, probe_glyphs
from becomingone.runtime.fire_log import FIRE_LOG_NAME, read_fires
from becomingone.runtime.node_glyphs import glyph_bucket
from becomingone.transport.jetstream import JetStreamCasRecord, JetStreamConnection

__all__ = ["count_glyphs", "load_glyphs"]


def _bucket(urls: Sequence[str], cluster: str, tls: TlsFiles | None) -> JetStreamCasRecord:
    conn = JetStreamConnection(list(urls), tls=tls)
    try:
        return JetStreamCasRecord(conn, glyph_bucket(cluster))
    except BaseException:
        conn.close()
        raise


def load_glyphs(
    urls: Sequence[str],
    cluster: str,
    n: int,
    nodes: Sequence[str],
    *,
    tls: TlsFiles | None = None,
) -> list[str]:
    """Empty the cluster's glyph bucket and write ``n`` probe glyphs' records, owned
    round-robin by the first :data:`DEMO_CELLS` of ``nodes``; their ids."""
    kv = _bucket(urls, cluster, tls)
    try:
        stale = kv.keys()
        for key in stale:
            got = kv.get(key)
            if got is not None:
                kv.delete(key, got.revision)
        owners = list(nodes[:DEMO_CELLS])
        ids = []
        for i, glyph in enumerate(probe_glyphs(n)):
            owned = evolve(glyph, owner=owners[i % len(owners)])
            kv.create(record_key(glyph.id), OwnerRecord(glyph=owned).to_bytes())
            ids.append(glyph.id)
        return ids
    finally:
        kv.connection.close()


def count_glyphs(
    urls: Sequence[str],
    cluster: str,
    ids: Sequence[str],
    nodes_dir: Path,
    statuses: Mapping[str, Any],
    *,
    first_cycle: int,
    tls: TlsFiles | None = None,
) -> tuple[GlyphTotals, dict[str, int]]:
    """The run's :class:`GlyphTotals` and glyphs per owner, from the records, the fire logs
    under ``nodes_dir`` (cycles from ``first_cycle``) and the nodes' latest ``statuses``
    (node → its status ``glyphs`` row)."""
    kv = _bucket(urls, cluster, tls)
    try:
        records = {}
        for gid in ids:
            got = kv.get(record_key(gid))
            if got is not None:
                records[gid] = OwnerRecord.from_bytes(got.value)
    finally:
        kv.connection.close()
    wanted = set(ids)
    fires = []
    for path in sorted(nodes_dir.glob(f"*/{FIRE_LOG_NAME}")):
        fires += [(g, c) for g, c, _ in read_fires(path) if g in wanted and c >= first_cycle]
    keys = Counter(fires)
    rows = [row for row in statuses.values() if row]
    gone = {gid for row in rows for gid, _reason in row.get("gone", [])}
    ended = len((wanted - set(records)) & gone)
    totals = GlyphTotals(
        submitted=len(wanted),
        owned=len(records),
        ended=ended,
        fires=len(fires),
        double_fires=sum(k - 1 for k in keys.values() if k > 1),
        errors=sum(int(row.get("failed", 0)) for row in rows),
        timeouts=0,
        skipped=0,
        migrations=sum(r.epoch for r in records.values()),
        migrations_rejected=sum(
            n
            for row in rows
            for key, n in row.get("migrations", {}).items()
            if key.startswith("rejected_")
        ),
    )
    return totals, dict(sorted(Counter(r.owner for r in records.values()).items()))
