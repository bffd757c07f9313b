"""Prometheus metrics of cells and clusters: one collector that reads the live objects.

Rule: every metric's name, type, labels, unit and meaning is defined here, in
:data:`METRICS`, and nowhere else (docs/operations.md shows the same table; a test checks
both agree). Each process builds its own ``CollectorRegistry`` (:func:`cell_registry`,
:func:`cluster_registry`), never prometheus_client's global one, so several cells or clusters
in one process, and tests, never collide. The collector only reads, at scrape time: a scrape
may run on the metrics server's thread while the event loop changes the objects, so every
live dict is copied with ``dict(...)`` (one atomic step under the GIL) before it is read, and
every value read is a number or a frozen value the loop replaces whole.

Names follow the Prometheus conventions: the ``becomingone_`` prefix, counters end in
``_total``, base units (seconds; phases in cycles, coherence a ratio in [0, 1]), a ``cell``
label on everything a cell measures and a ``cluster`` label on what the cluster driver
measures. The consensus (``--roles``) is read from the
:class:`~becomingone.runtime.PartifactDriver`: its counts, the book's refusals, the lifecycle
stage and the roles; the decision-latency histogram's buckets are
:data:`~becomingone.runtime.partifacts.DECISION_BUCKETS` (cluster seconds).
"""

from __future__ import annotations

import abc
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from becomingone.choir import Ledger, SpecStatus
from becomingone.cluster import LifecycleStage, PartifactCluster, Role
from becomingone.core.phase import CoherenceBand
from becomingone.errors import TransportError
from becomingone.runtime.cell import Cell
from becomingone.runtime.cell_member import CellMember
from becomingone.runtime.cluster import LocalCluster
from becomingone.runtime.glyph_migrate import GlyphMigrator
from becomingone.runtime.node import SupervisedNode
from becomingone.runtime.partifacts import DECISION_BUCKETS, ConsensusCounts, PartifactDriver
from becomingone.runtime.witness_node import ClusterWitness
from becomingone.sync.cps import PhaseSupervisor
from becomingone.transport.nats import NatsBus

__all__ = [
    "METRICS",
    "ChoirCollector",
    "MetricSpec",
    "MetricsServer",
    "NodeCollector",
    "StateCollector",
    "cell_registry",
    "choir_registry",
    "cluster_registry",
    "node_registry",
    "serve_metrics",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    """One metric as exposed: full ``name`` (counters with ``_total``), ``kind``, ``labels``,
    ``unit`` and what it means (``help``)."""

    name: str
    kind: Literal["gauge", "counter", "histogram"]
    labels: tuple[str, ...]
    unit: str
    help: str

    def family(self) -> Metric:
        """An empty prometheus_client family for this metric."""
        if self.kind == "counter":
            return CounterMetricFamily(
                self.name.removesuffix("_total"), self.help, labels=self.labels
            )
        if self.kind == "histogram":
            return HistogramMetricFamily(self.name, self.help, labels=self.labels)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


def _spec(
    name: str, kind: Literal["gauge", "counter", "histogram"], labels: str, unit: str, text: str
) -> MetricSpec:
    return MetricSpec(
        name=f"becomingone_{name}",
        kind=kind,
        labels=tuple(labels.split()),
        unit=unit,
        help=text,
    )


#: Every metric, in the order of the table in docs/operations.md.
METRICS: tuple[MetricSpec, ...] = (
    # one cell: transducers, Sync layer, counts, witnessing
    _spec("master_coherence", "gauge", "cell", "ratio", "|T_master|^2 of the latest evaluation"),
    _spec("emissary_coherence", "gauge", "cell", "ratio", "|T_emissary|^2 of the latest one"),
    _spec("sync_coherence", "gauge", "cell", "ratio", "|T_sync|^2 = |(T_m + T_e)/2|^2"),
    _spec("sync_delta_phase", "gauge", "cell", "ratio", "Delta_phase = ||T_m| - |T_e||"),
    _spec("stream_time_seconds", "gauge", "cell", "seconds", "Stream time of the newest sample"),
    _spec("samples_total", "counter", "cell", "samples", "Samples ingested over the cell's life"),
    _spec("collapses_total", "counter", "cell", "events", "Sync evaluations that collapsed"),
    _spec("dissipations_total", "counter", "cell", "events", "Evaluations that dissipated"),
    _spec("realignments_total", "counter", "cell", "events", "Realignment requests emitted"),
    _spec("input_rejected_total", "counter", "cell", "rows", "Input rows rejected (NaN, inf)"),
    _spec("vetoes_total", "counter", "cell", "events", "Events a before_* hook vetoed"),
    _spec("hook_failures_total", "counter", "cell", "events", "Hook handlers that raised"),
    _spec("witness_records_total", "counter", "cell", "records", "Records on the witness chain"),
    _spec(
        "witness_chain_verified",
        "gauge",
        "cell",
        "bool",
        "Result of the latest self-verification: 1 verified, 0 broken (absent before the first)",
    ),
    # one cell's Cluster Phase Supervisor and SSEP
    _spec("ssep_packets_received_total", "counter", "cell", "packets", "SSEP packets received"),
    _spec(
        "ssep_packets_rejected_total",
        "counter",
        "cell reason",
        "packets",
        "SSEP packets rejected, by reason (bad_signature, replay, skew, ...)",
    ),
    _spec("cps_phase_cycles", "gauge", "cell", "cycles", "Theta_local, the cell's phase"),
    _spec("cps_phase_error_cycles", "gauge", "cell", "cycles", "wrap(Theta_cluster - Theta_local)"),
    _spec("cps_network_stable", "gauge", "cell", "bool", "1 when the network is stable"),
    _spec("bus_queue_depth", "gauge", "cell", "messages", "Messages waiting in the cell's queue"),
    # glyphs of a full cell
    _spec("glyphs", "gauge", "cell", "glyphs", "Glyphs the cell owns (scheduled or in flight)"),
    _spec("glyph_energy", "gauge", "cell", "energy", "Sum of the energy of the cell's glyphs"),
    _spec("glyph_firings_total", "counter", "cell", "runs", "Glyph runs completed and witnessed"),
    _spec(
        "glyph_late_firings_total",
        "counter",
        "cell",
        "firings",
        "Firings skipped because they were late (lateness > 1/(1 + kappa))",
    ),
    _spec(
        "glyph_run_failures_total",
        "counter",
        "cell reason",
        "runs",
        "Glyph runs that failed, by reason (error, timeout)",
    ),
    # the cluster driver's view
    _spec("cluster_ticks_total", "counter", "cluster", "ticks", "Ticks the driver ran"),
    _spec("cluster_coherence", "gauge", "cluster", "ratio", "C_cluster = exp(-5 circ. variance)"),
    _spec("cluster_order_parameter", "gauge", "cluster", "ratio", "Kuramoto R of the phases"),
    _spec(
        "cluster_band",
        "gauge",
        "cluster band",
        "bool",
        "1 for the current coherence band (loose, forming, symbolic, shared), 0 for the others",
    ),
    _spec("cluster_t_global_squared", "gauge", "cluster", "ratio", "|T_global|^2 over all cells"),
    _spec("cluster_collapses_total", "counter", "cluster", "events", "|T_global|^2 crossing I_c"),
    _spec("bus_published_total", "counter", "cluster", "messages", "Messages published"),
    _spec("bus_delivered_total", "counter", "cluster", "messages", "Messages delivered"),
    _spec(
        "bus_dropped_total",
        "counter",
        "cluster reason",
        "messages",
        "Messages dropped, by reason (full queue, partition, loss)",
    ),
    _spec("glyph_migrations_total", "counter", "cluster", "migrations", "Glyphs migrated"),
    _spec(
        "glyph_migrations_rejected_total",
        "counter",
        "cluster reason",
        "migrations",
        "Migration offers refused, by reason",
    ),
    # one node process (`becomingone node`): its view, its NATS connection, its glyph records
    _spec("node_ticks_total", "counter", "cell", "ticks", "Ticks the node ran"),
    _spec("node_members", "gauge", "cell", "cells", "Members of the roster the node runs on"),
    _spec(
        "cps_peers_heard",
        "gauge",
        "cell",
        "cells",
        "Peers the node's plan expects that it heard within the peer timeout",
    ),
    _spec(
        "cps_coherence_seen",
        "gauge",
        "cell",
        "ratio",
        "C_cluster over the node's own phase and the phases it heard within the peer timeout",
    ),
    _spec(
        "node_t_global_squared",
        "gauge",
        "cell",
        "ratio",
        "|T_global|^2 as the node's mesh synchronisation estimates it",
    ),
    _spec(
        "node_cluster_collapses_total",
        "counter",
        "cell",
        "events",
        "Cluster collapses the node witnessed since it started",
    ),
    _spec("nats_connected", "gauge", "cell", "bool", "1 while the NATS connection is up"),
    _spec("nats_messages_published_total", "counter", "cell", "messages", "Messages published"),
    _spec(
        "nats_messages_delivered_total",
        "counter",
        "cell",
        "messages",
        "Messages queued into the connection's subscriptions",
    ),
    _spec(
        "nats_messages_dropped_total",
        "counter",
        "cell reason",
        "messages",
        "Messages dropped, by reason (full: a subscription's queue; slow_consumer: the client's)",
    ),
    _spec("nats_disconnects_total", "counter", "cell", "events", "Connections lost"),
    _spec("nats_reconnects_total", "counter", "cell", "events", "Reconnections made"),
    _spec("nats_errors_total", "counter", "cell", "events", "Asynchronous errors reported"),
    _spec(
        "glyph_node_events_total",
        "counter",
        "cell event",
        "events",
        "A node's glyph ownership work over NATS, by event (migrations, takeovers, conflicts, "
        "lost, timeouts, bad_records, ...)",
    ),
    # the consensus of a `--roles` cluster (the partifact driver)
    _spec(
        "lifecycle_stage",
        "gauge",
        "cluster stage",
        "bool",
        "1 for the current lifecycle stage (pre_cluster ... autonomous), 0 for the others",
    ),
    _spec("roles", "gauge", "cluster role", "cells", "Cells holding each role"),
    _spec(
        "consensus_proposals_total",
        "counter",
        "cluster kind",
        "proposals",
        "Proposals opened, by kind (roles, intent, command, glyph.submit, glyph.cancel)",
    ),
    _spec(
        "consensus_decisions_total",
        "counter",
        "cluster outcome",
        "proposals",
        "Proposals decided, by outcome (passed, rejected, expired)",
    ),
    _spec("consensus_votes_total", "counter", "cluster vote", "votes", "Votes counted (yes, no)"),
    _spec(
        "consensus_refused_total",
        "counter",
        "cluster reason",
        "messages",
        "Proposals and votes the consensus refused, by reason (double, late, not_validator ...)",
    ),
    _spec("consensus_open_proposals", "gauge", "cluster", "proposals", "Proposals open now"),
    _spec(
        "consensus_decision_seconds",
        "histogram",
        "cluster kind",
        "seconds",
        "Cluster seconds from a proposal's opening to its decision, by kind",
    ),
    _spec(
        "consensus_tasks_total",
        "counter",
        "cluster event",
        "tasks",
        "Delegated intents and commands, by event (assigned, reported, validated, rejected, "
        "recorded, expired; refused_* for a hand-over refused)",
    ),
    _spec(
        "consensus_log_total",
        "counter",
        "cluster event",
        "events",
        "A node's appends to the consensus log that did not land, by event (conflicts: another "
        "writer first; errors: the log refused, e.g. no Raft majority; stale: a plan of a "
        "decided term dropped)",
    ),
    # a Choir (choir_registry)
    _spec(
        "choir_transactions_total",
        "counter",
        "kind",
        "transactions",
        "Ledger transactions applied, by kind (join, thread, post, submit, vote, close, ...)",
    ),
    _spec(
        "choir_invariant_checks_total",
        "counter",
        "",
        "checks",
        "Invariant checks passed: one inside each applied transaction's database transaction",
    ),
    _spec("choir_invariant_holds", "gauge", "", "bool", "1 when the supply invariant holds now"),
    _spec(
        "choir_conservation_residual",
        "gauge",
        "",
        "CHOIR",
        "treasury + wallets + threads + escrow - total supply (always 0)",
    ),
    _spec(
        "choir_balance",
        "gauge",
        "kind",
        "CHOIR",
        "The invariant's terms: kind treasury, wallet, thread or escrow (summed)",
    ),
    _spec(
        "choir_thread_balances_consistent",
        "gauge",
        "",
        "bool",
        "1 when the threads' balances, each >= 0, sum to the thread term",
    ),
    _spec("choir_threads", "gauge", "", "threads", "Threads on the ledger"),
    _spec("choir_users", "gauge", "", "users", "Users on the ledger"),
    _spec("choir_pending_specs", "gauge", "", "specs", "Specs waiting for votes"),
)

_SPECS = {spec.name: spec for spec in METRICS}

#: Reads of one scrape before a concurrent change is reported instead of read around.
_ATTEMPTS = 5


class _Families:
    """The families of one scrape, filled by short name (the ``becomingone_`` prefix added here)."""

    def __init__(self) -> None:
        self._families = {name: spec.family() for name, spec in _SPECS.items()}

    def add(self, name: str, labels: Sequence[str], value: float) -> None:
        family = self._families[f"becomingone_{name}"]
        family.add_metric(list(labels), float(value))  # type: ignore[attr-defined]

    def histogram(
        self, name: str, labels: Sequence[str], buckets: Sequence[int], total: float
    ) -> None:
        """Per-bucket counts (by ``DECISION_BUCKETS``, +Inf last) as cumulative buckets."""
        family = self._families[f"becomingone_{name}"]
        bounds = [*(f"{b:g}" for b in DECISION_BUCKETS), "+Inf"]
        running, cumulative = 0, []
        for bound, n in zip(bounds, buckets, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        family.add_metric(list(labels), cumulative, total)  # type: ignore[attr-defined]

    def filled(self) -> Iterator[Metric]:
        return (f for f in self._families.values() if f.samples)


def _cell(out: _Families, name: str, cell: Cell) -> None:
    """One cell's engines, Sync layer, counts and chain."""
    master, emissary = cell.master.engine.last, cell.emissary.engine.last
    decision = cell.sync.evaluate(master, emissary, now=master.time)
    counts = dict(cell.counts)
    label = (name,)
    for metric, value in (
        ("master_coherence", master.coherence),
        ("emissary_coherence", emissary.coherence),
        ("sync_coherence", decision.coherence),
        ("sync_delta_phase", decision.delta_phase),
        ("stream_time_seconds", master.time),
        ("samples_total", cell.samples),
        ("collapses_total", counts.get("collapses", 0)),
        ("dissipations_total", counts.get("dissipations", 0)),
        ("realignments_total", counts.get("realigns", 0)),
        ("input_rejected_total", counts.get("rejected", 0)),
        ("vetoes_total", counts.get("vetoed", 0)),
        ("hook_failures_total", counts.get("hook_failures", 0)),
        ("witness_records_total", cell.chain.count),
    ):
        out.add(metric, label, value)
    if cell.chain_ok is not None:
        out.add("witness_chain_verified", label, cell.chain_ok)


def _supervisor(member: object) -> PhaseSupervisor | None:
    if isinstance(member, PhaseSupervisor):
        return member
    sup = getattr(member, "supervisor", None)
    return sup if isinstance(sup, PhaseSupervisor) else None


def _cps(out: _Families, sup: PhaseSupervisor, depth: int | None) -> None:
    """One supervisor's phase, error, stability and packet counts."""
    label = (sup.node_id,)
    _packets(out, sup.node_id, sup.validator.accepted, dict(sup.validator.rejected))
    out.add("cps_phase_cycles", label, sup.theta)
    out.add("cps_phase_error_cycles", label, sup.last_error)
    out.add("cps_network_stable", label, sup.stability.stable)
    if depth is not None:
        out.add("bus_queue_depth", label, depth)


def _glyphs(out: _Families, member: CellMember) -> None:
    g, label = member.glyphs, (member.node_id,)
    counts = dict(g.counts)
    out.add("glyphs", label, len(g.scheduler) + len(g.held))
    out.add("glyph_energy", label, g.node_energy())
    out.add("glyph_firings_total", label, counts.get("fired", 0))
    out.add("glyph_late_firings_total", label, counts.get("skipped_late", 0))
    for reason, key in (("error", "errors"), ("timeout", "timeouts")):
        out.add("glyph_run_failures_total", (member.node_id, reason), counts.get(key, 0))


def _driver(out: _Families, cluster: LocalCluster, migrator: GlyphMigrator | None) -> None:
    """The driver's measurements, its bus and the glyph migrations."""
    label = (cluster.cluster,)
    history = cluster.history
    out.add("cluster_ticks_total", label, len(history))
    if history:
        last = history[-1]
        out.add("cluster_coherence", label, last.c_cluster)
        out.add("cluster_order_parameter", label, last.r)
        for band in CoherenceBand:
            out.add("cluster_band", (cluster.cluster, band.value), band is last.band)
        out.add("cluster_t_global_squared", label, last.t_global_sq)
    out.add("cluster_collapses_total", label, cluster.collapses.fired)
    stats = dict(cluster.bus.stats)
    out.add("bus_published_total", label, stats.get("published", 0))
    out.add("bus_delivered_total", label, stats.get("delivered", 0))
    for reason in ("full", "partition", "loss"):
        out.add("bus_dropped_total", (cluster.cluster, reason), stats.get(f"dropped_{reason}", 0))
    if migrator is not None:
        moved = dict(migrator.counts)
        out.add("glyph_migrations_total", label, moved.get("migrations", 0))
        for key, n in sorted(moved.items()):
            if key.startswith("rejected_"):
                reason = key.removeprefix("rejected_")
                out.add("glyph_migrations_rejected_total", (cluster.cluster, reason), n)


def _consensus(
    out: _Families,
    name: str,
    pc: PartifactCluster,
    counts: ConsensusCounts,
    refused: Mapping[str, int],
    tasks: Mapping[str, int],
) -> None:
    """A view of the consensus (the in-process driver's, or one node's): lifecycle, roles,
    proposals, decisions, votes, refusals, delegated tasks and the decision latency (every
    dict copied first: the loop changes them)."""
    label = (name,)
    stage = pc.lifecycle.stage
    for s in LifecycleStage:
        out.add("lifecycle_stage", (name, s.value), s is stage)
    held = list(dict(pc.roles).values())
    for role in Role:
        out.add("roles", (name, role.value), held.count(role))
    for family, counter in (
        ("consensus_proposals_total", counts.proposed),
        ("consensus_decisions_total", counts.decided),
        ("consensus_votes_total", counts.votes),
        ("consensus_refused_total", refused),
        ("consensus_tasks_total", tasks),
    ):
        for key, n in sorted(dict(counter).items()):
            out.add(family, (name, key), n)
    out.add("consensus_open_proposals", label, len(pc.book.open_proposals))
    for kind, latency in sorted(dict(counts.latency).items()):
        out.histogram(
            "consensus_decision_seconds", (name, kind), list(latency.buckets), latency.total
        )


class _LiveCollector(Collector):
    """A collector of live objects: every family described, the families with samples
    collected, read again when a dict changed under the scrape."""

    def describe(self) -> Iterable[Metric]:
        """Every family (no samples), so a registry can refuse a name clash."""
        return [spec.family() for spec in METRICS]

    def collect(self) -> Iterable[Metric]:
        """The families that have samples now.

        A scrape on the server's thread can meet a dict the loop is resizing (``RuntimeError:
        dictionary changed size during iteration``); the read is then simply done again.
        """
        for attempt in range(_ATTEMPTS):
            try:
                return self._collect()
            except RuntimeError:
                if attempt + 1 == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @abc.abstractmethod
    def _collect(self) -> list[Metric]:
        """Every family with its samples, read from the live objects once."""


class StateCollector(_LiveCollector):
    """Reads cells and a cluster at scrape time.

    Parameters
    ----------
    cells : callable
        Returns the ``(label, cell)`` pairs to expose now (a cell's label is its name).
    cluster : LocalCluster, optional
        The in-process cluster: its members' CPS and glyphs, the driver's view and its bus.
    migrator : GlyphMigrator, optional
        The cluster's glyph migrations.
    driver : PartifactDriver, optional
        The cluster's consensus (``--roles``); needs ``cluster`` (its name is the label).
    """

    def __init__(
        self,
        cells: Callable[[], Iterable[tuple[str, Cell]]],
        *,
        cluster: LocalCluster | None = None,
        migrator: GlyphMigrator | None = None,
        driver: PartifactDriver | None = None,
    ) -> None:
        self._cells, self.cluster, self.migrator = cells, cluster, migrator
        self.driver = driver

    def _collect(self) -> list[Metric]:
        out = _Families()
        for name, cell in self._cells():
            _cell(out, name, cell)
        if self.cluster is not None:
            depths = self.cluster.queue_depths()
            for member in list(self.cluster.members):
                sup = _supervisor(member)
                if sup is not None:
                    _cps(out, sup, depths.get(sup.node_id))
                if isinstance(member, CellMember):
                    _glyphs(out, member)
            _driver(out, self.cluster, self.migrator)
            if self.driver is not None:
                d = self.driver
                _consensus(
                    out,
                    self.cluster.cluster,
                    d.cluster,
                    d.counts,
                    d.cluster.book.rejected,
                    d.delegation.counts,
                )
        return list(out.filled())


class NodeCollector(_LiveCollector):
    """Reads one ``becomingone node`` process at scrape time: a full or light node's cell and
    the status of its latest tick (phase, peers heard, packets accepted and rejected, its
    T_global), its supervisor's phase error and inbox, its NATS connection (:attr:`bus`, set
    once connected), and with ``--glyphs`` / ``--roles`` its glyphs and its view of the
    consensus; a witness's chain and the packets it verified. Labels: ``cell`` is the node's
    name, ``cluster`` the cluster's (Prometheus adds each target's ``instance``, so the nodes'
    views of one consensus stay apart).

    Exactly one of ``node`` and ``witness`` is given.
    """

    def __init__(
        self,
        name: str,
        cluster: str,
        *,
        node: SupervisedNode | None = None,
        witness: ClusterWitness | None = None,
    ) -> None:
        if (node is None) == (witness is None):
            raise ValueError("NodeCollector: give exactly one of node and witness")
        self.name, self.cluster = name, cluster
        self.node, self.witness = node, witness
        self.bus: NatsBus | None = None

    def _collect(self) -> list[Metric]:
        out, label = _Families(), (self.name,)
        if self.node is not None:
            self._node(out, self.node)
        if self.witness is not None:
            w = self.witness
            out.add("witness_records_total", label, w.cell.chain.count)
            _packets(out, self.name, w.validator.accepted, dict(w.validator.rejected))
        bus = self.bus
        if bus is not None:
            stats = dict(bus.stats)
            out.add("nats_connected", label, not bus.closed and bus.client.is_connected)
            out.add("nats_messages_published_total", label, stats.get("published", 0))
            out.add("nats_messages_delivered_total", label, stats.get("delivered", 0))
            for reason, key in (("full", "dropped_full"), ("slow_consumer", "slow_consumer")):
                out.add("nats_messages_dropped_total", (self.name, reason), stats.get(key, 0))
            for event in ("disconnects", "reconnects", "errors"):
                out.add(f"nats_{event}_total", label, stats.get(event, 0))
        return list(out.filled())

    def _node(self, out: _Families, node: SupervisedNode) -> None:
        label = (self.name,)
        cell = getattr(node.member, "cell", None)
        if isinstance(cell, Cell):
            _cell(out, self.name, cell)
        out.add("node_ticks_total", label, node.ticks)
        out.add("bus_queue_depth", label, node.queue_depth)
        sup = node.supervisor
        if sup is not None:
            out.add("cps_phase_error_cycles", label, sup.last_error)
        status = node.last_status
        if status is not None:
            out.add("node_members", label, status.members)
            out.add("cps_phase_cycles", label, status.theta)
            out.add("cps_network_stable", label, status.stable)
            out.add("cps_peers_heard", label, status.heard)
            out.add("cps_coherence_seen", label, status.c_seen)
            out.add("node_t_global_squared", label, abs(status.t_global) ** 2)
            out.add("node_cluster_collapses_total", label, status.cluster_collapses)
            _packets(out, self.name, status.accepted, dict(status.rejected))
        glyphs = node.glyphs
        if glyphs is not None:
            _glyphs(out, glyphs.member)
            for event, n in sorted(dict(glyphs.counts).items()):
                out.add("glyph_node_events_total", (self.name, event), n)
        view = node.partifacts
        if view is not None:
            refused = Counter(dict(view.cluster.book.rejected))
            refused.update(dict(view.rejected))
            _consensus(out, self.cluster, view.cluster, view.tally, refused, view.delegation.counts)
            for event in ("conflicts", "errors", "stale"):
                out.add("consensus_log_total", (self.cluster, event), view.counts[f"log_{event}"])


def _packets(out: _Families, name: str, accepted: int, rejected: Mapping[str, int]) -> None:
    """SSEP packets received (accepted + rejected) and rejected by reason."""
    out.add("ssep_packets_received_total", (name,), accepted + sum(rejected.values()))
    for reason, n in sorted(rejected.items()):
        out.add("ssep_packets_rejected_total", (name, str(reason)), n)


class ChoirCollector(Collector):
    """Reads a Choir ledger at scrape time; ``counts`` gives the transactions applied by kind."""

    def __init__(self, ledger: Ledger, counts: Callable[[], Mapping[str, int]]) -> None:
        self.ledger, self.counts = ledger, counts

    def describe(self) -> Iterable[Metric]:
        """The Choir families (no samples)."""
        return [spec.family() for spec in METRICS if spec.name.startswith("becomingone_choir_")]

    def collect(self) -> Iterable[Metric]:
        """The ledger's counts, terms and checks now."""
        out = _Families()
        counts = dict(self.counts())
        for kind, n in sorted(counts.items()):
            out.add("choir_transactions_total", (kind,), n)
        out.add("choir_invariant_checks_total", (), sum(counts.values()))
        totals = self.ledger.totals()
        out.add("choir_invariant_holds", (), totals.ok)
        out.add("choir_conservation_residual", (), totals.total - totals.supply)
        for kind, value in (
            ("treasury", totals.treasury),
            ("wallet", totals.wallets),
            ("thread", totals.threads),
            ("escrow", totals.escrow),
        ):
            out.add("choir_balance", (kind,), value)
        threads = self.ledger.threads()
        balances = [t.balance for t in threads]
        consistent = sum(balances) == totals.threads and all(b >= 0 for b in balances)
        out.add("choir_thread_balances_consistent", (), consistent)
        out.add("choir_threads", (), len(threads))
        out.add("choir_users", (), len(self.ledger.users()))
        out.add("choir_pending_specs", (), len(self.ledger.specs(status=SpecStatus.PENDING)))
        return list(out.filled())


def choir_registry(ledger: Ledger, counts: Callable[[], Mapping[str, int]]) -> CollectorRegistry:
    """A new registry exposing a Choir ledger (``counts``: transactions applied by kind)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ChoirCollector(ledger, counts))
    return registry


def node_registry(collector: NodeCollector) -> CollectorRegistry:
    """A new registry exposing one node process (``collector.bus`` is set once connected)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return registry


def cell_registry(cell: Cell) -> CollectorRegistry:
    """A new registry exposing one cell (label: its configured name)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StateCollector(lambda: [(cell.config.name, cell)]))
    return registry


def cluster_registry(
    cluster: LocalCluster,
    *,
    migrator: GlyphMigrator | None = None,
    driver: PartifactDriver | None = None,
) -> CollectorRegistry:
    """A new registry exposing an in-process cluster: its driver, bus, every member's CPS,
    for full cells the cell itself and its glyphs (label: the node id), and with ``driver``
    its consensus."""

    def cells() -> list[tuple[str, Cell]]:
        return [(m.node_id, m.cell) for m in cluster.members if isinstance(m, CellMember)]

    registry = CollectorRegistry(auto_describe=True)
    registry.register(StateCollector(cells, cluster=cluster, migrator=migrator, driver=driver))
    return registry


class MetricsServer:
    """prometheus_client's HTTP server for one registry, on its own daemon thread."""

    def __init__(self, server: Any, thread: threading.Thread, host: str) -> None:
        self._server, self._thread, self.host = server, thread, host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and wait for the thread (bounded)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` (port 0: a free one) until
    :meth:`MetricsServer.close`; a port that cannot be bound is a ``TransportError``."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or exc
        raise TransportError(f"cannot serve metrics on {host}:{port}: {reason}") from exc
    return MetricsServer(server, thread, host)
