"""Prometheus metrics of a cell and an in-process cluster, scraped as text and parsed with
prometheus_client's own parser: names and types as documented, values that move with the
cell, rejected packets counted by reason, one registry per cell or cluster."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from becomingone.errors import TransportError
from becomingone.keys import NodeKey
from becomingone.runtime import (
    METRICS,
    Cell,
    GlyphMigrator,
    LocalCluster,
    StateCollector,
    build_cell_members,
    build_supervisors,
    cell_registry,
    cluster_registry,
    probe_glyphs,
    serve_metrics,
    spread_glyphs,
    subject_for,
    synthetic_phase,
)
from becomingone.sync import Packet, encode_packet
from becomingone.transport import MemoryBus
from tests.helpers import small_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def scrape(text: str) -> dict[str, float]:
    """``name{k="v",...}`` (labels sorted) → value of every sample in exposition ``text``."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def types(text: str) -> dict[str, str]:
    """Family name → type in exposition ``text`` (counters by their ``_total`` name)."""
    out = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = family.type
    return out


async def feed(cell: Cell, batches: int, size: int = 50) -> None:
    """``batches`` batches of the synthetic rhythm (steady, so it collapses once warm)."""
    for _ in range(batches):
        start = cell.samples
        await cell.ingest(synthetic_phase(start, size, dt=cell.dt), now=1_000.0 + start * cell.dt)


async def test_a_cell_exposes_documented_metrics_that_move(tmp_path: Path) -> None:
    """Every family a cell exposes is in METRICS with its type; the collapse and sample
    counters grow as the cell ingests a collapsing stream; the coherence gauges are |T|²."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        registry = cell_registry(cell)
        await feed(cell, 4)
        before = scrape(generate_latest(registry).decode())
        await feed(cell, 20)
        text = generate_latest(registry).decode()
        after = scrape(text)
        specs = {s.name: s.kind for s in METRICS}
        for name, kind in types(text).items():
            assert specs[name] == kind, name
        key = '{cell="cell"}'
        collapses = f"becomingone_collapses_total{key}"
        assert after[collapses] > before[collapses]
        assert after[f"becomingone_samples_total{key}"] == cell.samples == 24 * 50
        assert after[f"becomingone_witness_records_total{key}"] == cell.chain.count
        assert after[f"becomingone_emissary_coherence{key}"] == pytest.approx(
            cell.emissary.engine.last.coherence
        )
        assert after[f"becomingone_witness_chain_verified{key}"] == 1.0  # meta every 1 s
    finally:
        cell.close()


async def test_the_chain_gauge_is_absent_before_the_first_self_check(tmp_path: Path) -> None:
    """A cell that has not verified its chain yet exposes no verification result (not a 0)."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        values = scrape(generate_latest(cell_registry(cell)).decode())
        assert not any(k.startswith("becomingone_witness_chain_verified") for k in values)
        assert values['becomingone_collapses_total{cell="cell"}'] == 0.0
    finally:
        cell.close()


async def test_two_cells_in_one_process_have_separate_registries(tmp_path: Path) -> None:
    """Two cells with the same name each get their own registry: no clash, no mixing."""
    a = Cell(small_config(), tmp_path / "a")
    b = Cell(small_config(), tmp_path / "b")
    try:
        await feed(a, 3)
        ra, rb = cell_registry(a), cell_registry(b)
        key = 'becomingone_samples_total{cell="cell"}'
        assert scrape(generate_latest(ra).decode())[key] == 150.0
        assert scrape(generate_latest(rb).decode())[key] == 0.0
    finally:
        a.close()
        b.close()


async def test_a_cluster_counts_a_forged_packet_by_reason() -> None:
    """A packet in a member's name signed with another key, and bytes that are no packet,
    published on the bus to one cell, show up in that cell's rejected counter by reason
    (bad_signature, malformed) and in its received counter; the driver's gauges are there."""
    cells = build_supervisors(4, "mesh", seed=5)
    bus = MemoryBus()
    async with LocalCluster(cells, bus) as cluster:
        registry = cluster_registry(cluster)
        for i in range(3):
            await cluster.step(i * 0.05)
        before = scrape(generate_latest(registry).decode())
        target = cells[1].node_id
        forged = Packet(node_id=cells[0].node_id, cluster="local", seq=10**6, timestamp=0.15)
        attacker = bus.connect("attacker")
        await attacker.publish(
            subject_for("local", target), encode_packet(forged, NodeKey.from_seed(b"e" * 32))
        )
        await attacker.publish(subject_for("local", target), b"not a packet")
        await cluster.step(0.15)
        after = scrape(generate_latest(registry).decode())
    cell = f'cell="{target}"'
    bad = f'becomingone_ssep_packets_rejected_total{{{cell},reason="bad_signature"}}'
    malformed = f'becomingone_ssep_packets_rejected_total{{{cell},reason="malformed"}}'
    assert bad not in before and after[bad] == 1.0
    assert after[malformed] == 1.0
    received = f"becomingone_ssep_packets_received_total{{{cell}}}"
    assert after[received] == before[received] + 3 + 2  # three peers' packets, two bad ones
    bands = {k: v for k, v in after.items() if k.startswith("becomingone_cluster_band")}
    assert len(bands) == 4 and sum(bands.values()) == 1.0
    assert after['becomingone_cluster_ticks_total{cluster="local"}'] == 4.0
    assert after['becomingone_bus_published_total{cluster="local"}'] > 0
    assert f"becomingone_bus_queue_depth{{{cell}}}" in after
    assert f"becomingone_cps_phase_error_cycles{{{cell}}}" in after


async def test_full_cells_with_glyphs_expose_cells_and_glyphs(tmp_path: Path) -> None:
    """Full cells in a cluster expose their own cell metrics and their glyphs: the glyph
    count, energy and firings match the cells' own glyph state."""
    sups = build_supervisors(3, "mesh", seed=2)
    members = build_cell_members(sups, tmp_path, small_config(), wait_runs=True)
    try:
        spread_glyphs([m.glyphs for m in members], probe_glyphs(3, energy=50.0))
        migrator = GlyphMigrator(members)
        async with LocalCluster(members, MemoryBus()) as cluster:
            registry = cluster_registry(cluster, migrator=migrator)
            for i in range(40):
                await cluster.step(i * 0.05)
            values = scrape(generate_latest(registry).decode())
            for m in members:
                await m.drain(2.0)
        for m in members:
            cell = f'{{cell="{m.node_id}"}}'
            assert values[f"becomingone_glyphs{cell}"] == len(m.glyphs)
            assert values[f"becomingone_glyph_energy{cell}"] == pytest.approx(
                m.glyphs.node_energy()
            )
            assert values[f"becomingone_glyph_firings_total{cell}"] == m.glyphs.counts["fired"]
            assert values[f"becomingone_samples_total{cell}"] == m.cell.samples
        assert sum(v for k, v in values.items() if "glyph_firings" in k) > 0
        assert 'becomingone_glyph_migrations_total{cluster="local"}' in values
    finally:
        for m in members:
            m.close()


def test_served_over_http_and_a_busy_port_is_a_transport_error(tmp_path: Path) -> None:
    """serve_metrics answers GET /metrics on a free port; binding a taken port is one
    TransportError naming the address."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        with serve_metrics(cell_registry(cell), "127.0.0.1", 0) as server:
            reply = httpx.get(server.url, timeout=10.0)
            assert reply.status_code == 200
            assert 'becomingone_samples_total{cell="cell"} 0.0' in reply.text
            with pytest.raises(TransportError, match=f"127.0.0.1:{server.port}"):
                serve_metrics(cell_registry(cell), "127.0.0.1", server.port)
        with socket.socket() as s:  # closed: the port can be bound again
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", server.port))
    finally:
        cell.close()


def test_the_docs_table_lists_every_metric_with_its_type() -> None:
    """docs/operations.md has one table row per metric: name, type and labels as defined."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"^\| `(becomingone_\w+)` \| (\w+) \| ([^|]*) \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    expected = {s.name: (s.kind, ", ".join(f"`{label}`" for label in s.labels)) for s in METRICS}
    assert rows == expected


async def test_a_scrape_that_meets_a_concurrent_change_reads_again(tmp_path: Path) -> None:
    """A read that hits ``dictionary changed size during iteration`` (the loop changing a dict
    under the server's thread) is retried; one that keeps failing is reported, not hidden."""
    cell = Cell(small_config(), tmp_path / "cell")
    try:
        calls = []

        def flaky() -> list[tuple[str, Cell]]:
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("dictionary changed size during iteration")
            return [("c", cell)]

        families = list(StateCollector(flaky).collect())
        assert len(calls) == 3 and any(f.name == "becomingone_samples" for f in families)

        def broken() -> list[tuple[str, Cell]]:
            raise RuntimeError("dictionary changed size during iteration")

        with pytest.raises(RuntimeError):
            StateCollector(broken).collect()
    finally:
        cell.close()
