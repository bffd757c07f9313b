"""How long a cell keeps its history: a plain value the storage adapters take as a parameter.

Rule: the memory layer never reads configuration; ``becomingone.config`` maps its
``memory.retention`` section onto this value at the edge (``RetentionConfig.to_retention``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from becomingone.errors import InputError

__all__ = ["Retention"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """Coherence history is kept raw for ``raw_seconds``, then as ``coarse_step``-wide bucket
    means for ``coarse_seconds`` (all stream seconds); the newest ``signatures`` engine
    signatures are kept per transducer.

    >>> Retention(raw_seconds=100, coarse_step=10).coarse_step
    10
    """

    raw_seconds: float = 3600.0
    coarse_step: float = 60.0
    coarse_seconds: float = 30 * 86400.0
    signatures: int = 2

    def __post_init__(self) -> None:
        for name in ("raw_seconds", "coarse_step", "coarse_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(name, f"must be a number of seconds, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise InputError(name, f"must be finite and > 0, got {value!r}")
        if isinstance(self.signatures, bool) or not isinstance(self.signatures, int):
            raise InputError("signatures", f"must be an integer, got {self.signatures!r}")
        if self.signatures < 1:
            raise InputError("signatures", f"must be at least 1, got {self.signatures}")
        if self.coarse_step > self.raw_seconds:
            raise InputError("coarse_step", "must not exceed raw_seconds")
