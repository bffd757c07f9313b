"""The request and response bodies of the API (what OpenAPI shows).

Rule: plain pydantic models, one per body; handlers build them from library values and
never return a library object directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "CoherenceHistory",
    "CoherenceNow",
    "CoherencePointPublic",
    "NodePublic",
    "NodeState",
    "PeakPublic",
    "RecordPage",
    "RecordPublic",
    "ResonancePublic",
    "SignalsAccepted",
    "VerifyPublic",
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
    """The whole chain walked against its signed head."""

    ok: bool
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
