"""The pydantic schema of ``becomingone.yaml`` (the seed's Appendix D; DESIGN.md §5).

Rule: every key has a type, a unit in its description and a default, so a cell runs with no file
at all; unknown keys are errors, never silently ignored. Validation only: no file or
environment access here (that is :mod:`becomingone.config.load`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from becomingone.errors import InputError
from becomingone.events import HookEvent, parse_hook_event
from becomingone.memory.retention import Retention

__all__ = [
    "ApiConfig",
    "BecomingOneConfig",
    "CellConfig",
    "ChoirConfig",
    "ClusterConfig",
    "EmissaryConfig",
    "GlyphCommandConfig",
    "GlyphsConfig",
    "KairosConfig",
    "LoggingConfig",
    "MasterConfig",
    "MemoryConfig",
    "RetentionConfig",
    "SecurityConfig",
    "SyncConfig",
    "WitnessingConfig",
]


class _Section(BaseModel):
    """Strict: no coercion (``true`` or ``"0.9"`` is not a number; an int is a float), unknown
    keys are errors. Environment overrides are parsed as YAML scalars before they get here."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


class KairosConfig(_Section):
    """The KAIROS engine shared by both transducers (DESIGN.md §4)."""

    dt: float | None = Field(default=None, gt=0, description="Sample step in seconds.")
    sample_rate: float | None = Field(
        default=None, gt=0, description="Samples per second (= 1/dt)."
    )
    tau_scale: float = Field(
        default=0.05, ge=0, description="Lag τ̄ in seconds; at least one sample (> dt/2)."
    )
    omega: float = Field(
        default=0.0, description="ω in rad/s; 0 resonates with steady oscillations."
    )
    threshold: float = Field(
        default=0.95, gt=0, le=1, description="I_c, collapse threshold on |T|²."
    )
    channels: int = Field(default=1, ge=1, description="Channels per sample.")

    @field_validator("dt", "sample_rate", "tau_scale", "omega")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be finite")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_rate(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        dt, rate = data.get("dt"), data.get("sample_rate")
        if dt is None and rate is None:
            return {**data, "dt": 0.01}
        if (
            isinstance(dt, int | float)
            and isinstance(rate, int | float)
            and dt > 0 < rate
            and not math.isclose(dt * rate, 1.0, rel_tol=1e-9)
        ):
            raise ValueError(f"dt={dt} and sample_rate={rate} disagree (dt must be 1/rate)")
        if dt is None and isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            return {**data, "dt": 1.0 / rate}
        return data

    @model_validator(mode="after")
    def _lag_is_a_sample(self) -> KairosConfig:
        """A cell's lag must be at least one sample: with L = round(τ̄/dt) = 0 each velocity
        is compared with itself, so |T|² = 1 on any stream and every batch would collapse."""
        if self.dt is not None and round(self.tau_scale / self.dt) < 1:
            raise ValueError(
                f"tau_scale {self.tau_scale:g} s is 0 samples at dt = {self.dt:g} s (a lag of 0"
                f" compares each velocity with itself: |T|^2 = 1 on any stream); use"
                f" tau_scale > {self.dt / 2:g} s"
            )
        return self

    @property
    def step(self) -> float:
        """The sample step in seconds (``dt``, or 1/``sample_rate``)."""
        assert self.dt is not None
        return self.dt


class _TransducerConfig(_Section):
    tau_max: float = Field(gt=0, description="Window in seconds.")
    witness_interval: float = Field(gt=0, description="Seconds of stream between meso witnesses.")

    @field_validator("tau_max", "witness_interval")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class MasterConfig(_TransducerConfig):
    """The slow transducer: a long window (up to an hour)."""

    tau_max: float = Field(default=3600.0, gt=0, le=86400, description="Window in seconds.")
    witness_interval: float = Field(
        default=60.0, gt=0, description="Seconds between meso witnesses."
    )


class EmissaryConfig(_TransducerConfig):
    """The fast transducer: about a second."""

    tau_max: float = Field(default=1.0, gt=0, le=3600, description="Window in seconds.")
    witness_interval: float = Field(
        default=1.0, gt=0, description="Seconds between meso witnesses."
    )


class SyncConfig(_Section):
    """The Sync layer: collapse iff |T_sync|² ≥ I_c and Δ_phase < phase_threshold."""

    phase_threshold: float = Field(default=0.1, gt=0, le=1, description="Bound on ||T_m| − |T_e||.")


class RetentionConfig(_Section):
    """How long coherence history is kept, at which resolution."""

    raw_seconds: float = Field(default=3600.0, gt=0, description="Keep per-batch points this long.")
    coarse_step: float = Field(default=60.0, gt=0, description="Bucket width of older history, s.")
    coarse_seconds: float = Field(default=30 * 86400.0, gt=0, description="Keep buckets this long.")
    signatures: int = Field(
        default=2, ge=1, le=100, description="Engine signatures kept per transducer."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetentionConfig:
        if self.coarse_step > self.raw_seconds:
            raise ValueError("coarse_step: must not exceed raw_seconds")
        return self

    def to_retention(self) -> Retention:
        """The plain value the memory layer takes (it never imports config)."""
        return Retention(
            raw_seconds=self.raw_seconds,
            coarse_step=self.coarse_step,
            coarse_seconds=self.coarse_seconds,
            signatures=self.signatures,
        )


class MemoryConfig(_Section):
    """Temporal memory (SQLite, WAL) and the ingest batch cadence."""

    path: Path | None = Field(
        default=None,
        strict=False,  # YAML has no path type: a string names the directory
        description="Data dir; default ~/.becomingone or --data-dir.",
    )
    flush_interval: float = Field(
        default=0.5, gt=0, le=3600, description="Seconds per ingest batch."
    )
    signature_interval: float = Field(
        default=60.0, gt=0, description="Wall seconds between signatures."
    )
    replay_windows: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Also store signatures once the replay log holds this many Master windows.",
    )
    retention: RetentionConfig = RetentionConfig()


class WitnessingConfig(_Section):
    """The signed hash chain: micro per batch, meso per cycle, macro per collapse, meta below."""

    meta_interval: float = Field(
        default=10.0, gt=0, description="Wall seconds between self-verifications."
    )
    meta_window: int = Field(
        default=1000, ge=1, description="Records verified by each meta witness."
    )


class SecurityConfig(_Section):
    """The cell's Ed25519 identity."""

    key_file: str = Field(default="node.key", min_length=1, description="Relative to the data dir.")
    strict_key_permissions: bool = Field(
        default=True, description="Refuse a group/world-readable key."
    )


class LoggingConfig(_Section):
    """Log output of the cell (docs/operations.md, Logs)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level written."
    )
    format: Literal["structured", "text"] = Field(
        default="text",
        description="structured: one JSON object per line (time, level, cell, event, seq); "
        "text: plain lines.",
    )
    witness_logs: bool = Field(
        default=False,
        description="Mirror each stored witness record (seq, level, kind, hash) to the log.",
    )
    file: str | None = Field(
        default=None, description="Log file relative to the data dir; none: stderr."
    )


class ClusterConfig(_Section):
    """The cluster a cell joins (DESIGN.md §6): topology, CPS gains, tick and timeouts.

    ``becomingone cluster`` and ``becomingone simulate`` take their defaults from here
    (their flags win over the file).
    """

    name: str = Field(
        default="local",
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="Cluster name carried in every SSEP packet (1-64 of A-Z a-z 0-9 . _ : -).",
    )
    topology: Literal["mesh", "hub", "ring", "fractal"] = Field(
        default="mesh", description="Who hears whom: mesh, hub, ring or fractal."
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="CPS phase gain α per tick.")
    beta: float = Field(
        default=0.0, ge=0, lt=1, description="PLL frequency gain β per tick (0: off)."
    )
    tick: float = Field(default=0.05, gt=0, le=3600, description="Tick period in seconds.")
    peer_timeout: float = Field(
        default=1.0,
        gt=0,
        le=86400,
        description="Seconds a peer may stay silent and count as heard.",
    )
    stable_ticks: int = Field(
        default=5, ge=1, le=1_000_000, description="k: good ticks in a row for a stable network."
    )
    max_skew: float = Field(
        default=5.0, gt=0, le=86400, description="Accepted |packet timestamp − now| in seconds."
    )
    branching: int = Field(
        default=4, ge=2, le=1024, description="Fractal branching b: cells per local field."
    )

    @field_validator("alpha", "beta", "tick", "peer_timeout", "max_skew")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


_TARGET = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"


class GlyphCommandConfig(_Section):
    """The built-in ``command`` kind: which argvs may run, for how long, how much output."""

    allowlist: list[list[str]] = Field(
        default_factory=list,
        description="Argvs a command glyph may run, each matched exactly (none: no commands).",
    )
    timeout: float = Field(default=5.0, gt=0, le=3600, description="Seconds before a kill.")
    max_output: int = Field(
        default=1_048_576, ge=0, le=2**30, description="Bytes of output digested; more kills it."
    )

    @field_validator("allowlist")
    @classmethod
    def _argvs(cls, value: list[list[str]]) -> list[list[str]]:
        for i, argv in enumerate(value):
            if not argv or not all(argv) or any("\x00" in a for a in argv):
                raise ValueError(f"[{i}]: an argv is a non-empty list of non-empty strings")
        return value

    @field_validator("timeout")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class GlyphsConfig(_Section):
    """Glyph handlers (docs/glyphs.md): extra kinds, Python callables, the command allowlist."""

    kinds: dict[str, str] = Field(
        default_factory=dict, description="Kind → 'module:function' handler (extra kinds)."
    )
    callables: dict[str, str] = Field(
        default_factory=dict, description="Name → 'module:function' the python kind may call."
    )
    entry_points: bool = Field(
        default=True, description="Load kinds from the becomingone.glyphs entry points."
    )
    timeout: float = Field(
        default=2.0, gt=0, le=3600, description="Seconds a handler may run per firing."
    )
    failure_cost: float = Field(
        default=1.0, ge=0, le=1e6, description="Energy a failed or timed-out run spends."
    )
    takeover: float = Field(
        default=15.0,
        gt=0,
        le=86400,
        description="Seconds a node process's owner may stay silent, its records unchanged, "
        "before a live node takes its glyphs over.",
    )
    command: GlyphCommandConfig = GlyphCommandConfig()

    @field_validator("kinds", "callables")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, target in value.items():
            if not re.match(r"^[a-z][a-z0-9_.-]{0,63}$", name):
                problems.append(f"{name}: must be a lowercase name [a-z][a-z0-9_.-]*")
            if not re.match(_TARGET, target):
                problems.append(f"{name}: {target!r} is not 'module:function'")
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @field_validator("timeout", "failure_cost", "takeover")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class ApiConfig(_Section):
    """The HTTP + WebSocket API of ``up --serve`` and ``serve`` (docs/api.md)."""

    allow_remote: bool = Field(
        default=False, description="Allow listening on an address other than loopback."
    )
    public_reads: bool = Field(
        default=False, description="Reads need no token from non-loopback clients either."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty: CORS off."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=67_108_864, description="Largest request body in bytes."
    )
    rate_per_second: float = Field(
        default=20.0, gt=0, le=100_000, description="Writes per second per token (refill rate)."
    )
    rate_burst: int = Field(
        default=40, ge=1, le=1_000_000, description="Writes a token may make at once (bucket)."
    )
    tls_dir: str | None = Field(
        default=None,
        min_length=1,
        description="Serve HTTPS: the certificates directory holding ca.crt and the server "
        "certificate tls_name.crt/.key (becomingone certs issue NAME --server).",
    )
    tls_name: str = Field(
        default="api",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name of the server certificate in tls_dir.",
    )


class ChoirConfig(_Section):
    """``becomingone choir`` (docs/choir.md)."""

    store_engine: Literal["auto", "edge", "local"] = Field(
        default="auto",
        description="The content store under the data dir: 'edge' (qdrant-edge, Qdrant's "
        "embedded engine, choir/store-edge/), 'local' (qdrant-client's local mode, "
        "choir/store/), or 'auto': edge when qdrant-edge-py is installed, else local. The "
        "first edge open copies an existing local-mode store. --store URL (a server) wins.",
    )


class CellConfig(_Section):
    """Everything under the ``becomingone:`` key."""

    name: str = Field(default="cell", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kairos: KairosConfig = KairosConfig()
    master: MasterConfig = MasterConfig()
    emissary: EmissaryConfig = EmissaryConfig()
    sync: SyncConfig = SyncConfig()
    memory: MemoryConfig = MemoryConfig()
    witnessing: WitnessingConfig = WitnessingConfig()
    security: SecurityConfig = SecurityConfig()
    logging: LoggingConfig = LoggingConfig()
    cluster: ClusterConfig = ClusterConfig()
    glyphs: GlyphsConfig = GlyphsConfig()
    api: ApiConfig = ApiConfig()
    choir: ChoirConfig = ChoirConfig()
    hooks: dict[str, list[str]] = Field(
        default_factory=dict, description="Event name → list of 'module:function' handlers."
    )

    @field_validator("hooks")
    @classmethod
    def _hooks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = []
        known = ", ".join(e.value for e in HookEvent)
        for event, targets in value.items():
            try:
                parse_hook_event(event)
            except InputError:
                problems.append(f"{event}: unknown hook event; known: {known} (or before_*)")
            for target in targets:
                module, sep, func = target.partition(":")
                if not sep or not module or not func:
                    problems.append(f"{event}: {target!r} is not 'module:function'")
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @model_validator(mode="after")
    def _windows(self) -> CellConfig:
        step = self.kairos.step
        for name, part in (("master", self.master), ("emissary", self.emissary)):
            if part.tau_max < self.kairos.tau_scale:
                raise ValueError(f"{name}.tau_max: must be at least kairos.tau_scale")
            if round(part.tau_max / step) < 1:
                raise ValueError(f"{name}.tau_max: must cover at least one sample of kairos.dt")
        if self.emissary.tau_max > self.master.tau_max:
            raise ValueError("emissary.tau_max: must not exceed master.tau_max")
        return self


class BecomingOneConfig(_Section):
    """The whole file: one top key, ``becomingone``."""

    becomingone: CellConfig = CellConfig()
