"""The request and response bodies of the API (what OpenAPI shows).

Rule: plain pydantic models, one per body; handlers build them from library values and
never return a library object directly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ClusterFrame",
    "ClusterHistory",
    "ClusterInfo",
    "ClusterMemberPublic",
    "ClusterNow",
    "ClusterPoint",
    "CoherenceHistory",
    "CoherenceNow",
    "CoherencePointPublic",
    "ConditionPublic",
    "GlyphCreate",
    "GlyphList",
    "GlyphPublic",
    "NodePublic",
    "NodeState",
    "PartifactPublic",
    "PeakPublic",
    "ProposalGlyph",
    "ProposalList",
    "ProposalPublic",
    "ProposalText",
    "RecordPage",
    "RecordPublic",
    "ResonancePublic",
    "RolesPublic",
    "SignalsAccepted",
    "VerifyPublic",
    "VoteCreate",
    "VotePublic",
]


class NodePublic(BaseModel):
    """Who the cell is."""

    name: str
    public_key: str = Field(description="Ed25519 public key, 64 hex digits")
    key_id: str
    data_dir: str
    running: bool = Field(description="False: a stopped cell served read-only")
    version: str


class NodeState(BaseModel):
    """Running counts of the cell (``samples`` is null for a stopped cell)."""

    samples: int | None
    witnessed: int
    chain_ok: bool | None
    counts: dict[str, int]
    channels: int
    dt: float = Field(description="Sample step, seconds")
    inbox: dict[str, int] | None = Field(default=None, description="Posted samples (running)")
    api_errors: dict[str, int] = Field(description="Error answers of this API by code")


class CoherenceNow(BaseModel):
    """The newest decision of the Sync layer."""

    seq: int = Field(description="Seq of the witness record it comes from")
    t: float = Field(description="Stream time, seconds")
    master: float
    emissary: float
    sync: float
    delta_phase: float = Field(description="Δ_phase, radians")
    outcome: str
    n: int = Field(description="Samples in the batch")


class CoherencePointPublic(BaseModel):
    """One point of history: a mean over ``n`` stored samples around ``t``."""

    t: float
    master: float
    emissary: float
    sync: float
    delta_phase: float
    phase: float
    n: int


class CoherenceHistory(BaseModel):
    """Coherence over ``[start, end]`` stream seconds, at most ``points`` points."""

    start: float
    end: float
    stored: int = Field(description="Stored points in the range before downsampling")
    points: list[CoherencePointPublic]


class SignalsAccepted(BaseModel):
    """Samples queued for the cell (ingested in arrival order)."""

    accepted: int
    queued_batches: int


class VerifyPublic(BaseModel):
    """The database's integrity check and the whole chain walked against its signed head."""

    ok: bool = Field(description="Both the database and the chain are sound")
    integrity: str = Field(description='SQLite\'s integrity_check: "ok" or what it found')
    chain_ok: bool = Field(description="The chain verifies against its signed head")
    checked: int
    first_bad: int | None
    reason: str | None


class RecordPublic(BaseModel):
    """One witness record as stored (signature in hex)."""

    seq: int
    level: str
    time: float
    kind: str
    payload: dict[str, Any]
    hash: str
    prev_hash: str
    signer: str
    signature: str


class RecordPage(BaseModel):
    """A page of witness records; ``next`` is the ``start`` of the next page (null: last)."""

    total: int
    start: int
    records: list[RecordPublic]
    next: int | None


class PeakPublic(BaseModel):
    """The strongest cell of a resonance map."""

    lag: float = Field(description="Seconds")
    omega: float = Field(description="rad/s")
    power: float = Field(description="|T̂|², in [0, 1]")


class ResonancePublic(BaseModel):
    """|T̂|² of the recent stream over lags × ω: ``power[i][j]`` at ``lags[i]``, ``omegas[j]``."""

    samples: int = Field(description="Samples of the recent stream the map was computed from")
    dt: float = Field(description="Sample step in seconds")
    lags: list[float] = Field(description="Seconds")
    omegas: list[float] = Field(description="rad/s")
    power: list[list[float]]
    peak: PeakPublic | None = Field(description="null when the map is empty (too few samples)")


class ClusterMemberPublic(BaseModel):
    """One cell of a served cluster at the newest tick."""

    name: str
    theta: float = Field(description="Phase θ, cycles in [0, 1)")
    frequency: float = Field(description="CPS frequency, cycles per second")
    phase_error: float | None = Field(description="Last CPS phase error, cycles")
    stable: bool = Field(description="The cell's network-stability reading")
    rejected: int = Field(description="Packets this cell rejected")
    t_sync_sq: float = Field(description="|T_sync|² the cell publishes")
    master: float | None = Field(description="Master |T|² (null: a CPS-only cell)")
    emissary: float | None = Field(description="Emissary |T|² (null: a CPS-only cell)")
    sync: float | None = Field(description="Sync |T|² (null: a CPS-only cell)")
    outcome: str | None = Field(description="Last Sync decision (null: a CPS-only cell)")
    collapses: int | None = Field(description="Collapses so far (null: a CPS-only cell)")
    glyphs: dict[str, Any] | None = Field(
        default=None,
        description="Glyphs owned, fires, failures, ends, energy, latest value (full cells)",
    )


class ClusterPoint(BaseModel):
    """The cluster after one tick (no per-cell rows)."""

    tick: int
    time: float = Field(description="Seconds since the cluster started")
    c_cluster: float = Field(description="Cluster coherence C in [0, 1]")
    r: float = Field(description="Kuramoto order parameter R in [0, 1]")
    band: str = Field(description="LOOSE, FORMING, SYMBOLIC or SHARED")
    rejected: int = Field(description="Packets rejected so far, all cells")
    rejected_by_reason: dict[str, int]
    winding: int | None = Field(description="Winding number (ring topology only)")
    t_global: list[float] = Field(description="T_global as [re, im]")
    t_global_sq: float = Field(description="|T_global|²")
    cluster_collapse: bool = Field(description="T_global crossed I_c upward at this tick")
    cluster_collapses: int = Field(description="Cluster collapses so far")
    migrations: dict[str, int] | None = Field(
        default=None, description="Glyph migrations so far, by outcome (clusters with glyphs)"
    )


class ClusterFrame(ClusterPoint):
    """The cluster after one tick, with every cell."""

    members: list[ClusterMemberPublic]


class ClusterInfo(BaseModel):
    """What the served cluster is."""

    name: str
    topology: str
    cells: int
    threshold: float = Field(description="I_c of the cluster collapse")
    ticks: int = Field(description="Ticks so far")
    ticks_to_band: dict[str, int | None] = Field(description="First tick in each band reached")


class ClusterNow(BaseModel):
    """The served cluster and its newest frame (null before the first tick)."""

    cluster: ClusterInfo
    frame: ClusterFrame | None


class ClusterHistory(BaseModel):
    """Kept ticks after ``since``, every ``every``-th, oldest first."""

    since: int
    every: int
    kept_from: int | None = Field(description="Oldest tick still kept (null: none yet)")
    points: list[ClusterPoint]


class GlyphPublic(BaseModel):
    """A glyph of the served cluster and where it is."""

    id: str
    kind: str
    payload: dict[str, Any]
    theta: float = Field(description="Phase it fires at, cycles in [0, 1)")
    delta_phi: float = Field(description="Mean lateness behind θ, cycles")
    kappa: float = Field(description="Strictness: a firing later than 1/(1+κ) cycles is skipped")
    energy: float = Field(description="Work left (each firing spends its cost)")
    lifetime: int = Field(description="Cycles left")
    coherence: float = Field(description="Regularity of its firings in [0, 1]")
    owner: str = Field(description="Node id of the owning cell")
    epoch: int = Field(description="Ownership epoch (+1 per migration)")
    state: str = Field(
        description="scheduled, held (moving between cells), cancelled (by this call) or "
        "ended (before this call: see reason)"
    )
    reason: str | None = Field(
        default=None, description="Why an ended glyph ended: energy, lifetime, cancelled"
    )
    mine: bool | None = Field(
        default=None,
        description="A node process's list: whether the serving node owns it (else null)",
    )
    kairos: dict[str, Any] | None = Field(
        default=None,
        description="A probe's self-observation KAIROS stream on its owner: coherence (|T|^2), "
        "collapsed, samples, terms, lag and window (cycles); null for other kinds, ended "
        "glyphs and glyphs listed from another node's ownership record",
    )


class GlyphList(BaseModel):
    """Every glyph of the served cluster, by id."""

    count: int
    glyphs: list[GlyphPublic]


class GlyphCreate(BaseModel):
    """A glyph to run on the cluster (checked as a glyph is: kind, θ, energy, payload size)."""

    model_config = {"extra": "forbid", "regex_engine": "python-re"}

    id: str | None = Field(
        default=None,
        pattern=r"^(?!.*\.\.)[A-Za-z0-9_=-](?:[A-Za-z0-9_.=-]{0,62}[A-Za-z0-9_=-])?$",
        description="1-64 of [A-Za-z0-9_.=-], no edge or double dot; default: drawn",
    )
    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
        description="A handler kind the cluster runs (the served document lists them)",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="JSON for the handler, at most 4096 canonical bytes"
    )
    theta: float = Field(default=0.0, ge=0.0, lt=1.0, description="Phase it fires at, cycles")
    kappa: float = Field(default=0.0, ge=0.0, le=1e6, description="Strictness κ")
    energy: float = Field(default=1.0, gt=0.0, le=1e6, description="Work it may spend")
    lifetime: int = Field(
        default=1, ge=1, le=2**53, description="Cycles it lives (at most 2^53: exact in JSON)"
    )
    cell: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="Owning cell's node id; default the least loaded",
    )


class PartifactPublic(BaseModel):
    """One cell of a partifact cluster: its state and role."""

    state: str = Field(description="Ø1(Ø2) dormant, Ø1Ø2 awakened or Ø2Ø1 operational")
    role: str | None = Field(description="genesis, executor, validator, integrator (null: none)")


class ConditionPublic(BaseModel):
    """One lifecycle condition with its measured value."""

    stage: str = Field(description="The lifecycle stage that needs it")
    value: float | None = Field(description="What was measured (null: not yet measurable)")
    threshold: float | None = Field(description="What it must reach")
    met: bool


class RolesPublic(BaseModel):
    """The lifecycle, its conditions, the term and each cell's state and role."""

    lifecycle: str = Field(description="pre_cluster, forming, ..., autonomous")
    term: int = Field(description="Role plans applied so far")
    genesis: str | None
    validators: list[str] = Field(description="The eligible voters of a new proposal")
    cells: dict[str, PartifactPublic]
    conditions: dict[str, ConditionPublic]
    writable: bool = Field(
        default=True,
        description="False on a read-only view (a witness node's): proposals and votes get 405",
    )


class VotePublic(BaseModel):
    """One signed vote counted on a proposal."""

    voter: str
    yes: bool
    at: float = Field(description="Cluster seconds it was cast at")


class TaskPublic(BaseModel):
    """A passed intent delegated (WSP 28 §5.3): who holds it at each step, where it is."""

    state: Literal["assigned", "reported", "validated", "rejected", "recorded", "expired"]
    executor: str = Field(description="The Executor that runs it (a one-shot glyph)")
    validator: str = Field(description="The Validator that judges the run")
    integrator: str = Field(description="The Integrator that records an accepted run")
    ok: bool | None = Field(description="The run succeeded (None before its report)")
    result: str = Field(description="The run's result digest (empty before its report)")


class ProposalPublic(BaseModel):
    """A proposal, open or decided, with its votes."""

    id: str = Field(description="16 hex digits of the SHA-256 of the signed body")
    kind: str = Field(description="command, glyph.submit, glyph.cancel, intent, roles")
    subject: str = Field(description="Proposals of one subject conflict")
    payload: dict[str, Any]
    proposer: str = Field(description="The cell that signed it (the Genesis or an Integrator)")
    created: float = Field(description="Cluster seconds")
    deadline: float = Field(description="Cluster seconds; a vote at or after it is late")
    eligible: list[str] = Field(description="The Validators that may vote")
    status: Literal["open", "passed", "rejected", "expired"]
    decided_at: float | None
    yes: int
    no: int
    needed: int = Field(description="Yes votes it needs: yes / eligible >= 1/φ")
    votes: list[VotePublic]
    operator: bool = Field(description="Proposed through the API (else by the cluster)")
    executed: dict[str, Any] | None = Field(
        description="A passed operator proposal: {ok, detail} of carrying it out"
    )
    task: TaskPublic | None = Field(
        default=None, description="A passed intent: its delegated task (None otherwise)"
    )


class ProposalList(BaseModel):
    """Proposals the consensus still knows, newest first."""

    count: int
    proposals: list[ProposalPublic]


class ProposalText(BaseModel):
    """A text to decide (a ``command``: run as a command glyph on an Executor, when it passes,
    under that cell's allowlist)."""

    model_config = {"extra": "forbid", "regex_engine": "python-re"}

    text: str = Field(min_length=1, max_length=2000, pattern=r"^\s*\S[\s\S]*$")


class ProposalGlyph(BaseModel):
    """A glyph to run on the cluster when the proposal passes (``glyph.submit``)."""

    model_config = {"extra": "forbid"}

    glyph: GlyphCreate


class VoteCreate(BaseModel):
    """A vote cast as ``cell`` (its key signs it in the cluster process)."""

    model_config = {"extra": "forbid", "regex_engine": "python-re"}

    cell: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="The voting cell's node id")
    vote: Literal["yes", "no"]
