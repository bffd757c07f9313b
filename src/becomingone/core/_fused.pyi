"""Types of the compiled extension ``becomingone.core._fused`` (source: _fused.c)."""

from typing import Any

ISA: str
THREADS: int
SPLIT_MIN: int
MAX_THREADS: int

def lagged_sums(phi: Any, lag: int, parts: int = 0, /) -> tuple[float, float, float, complex]: ...
def lagged_sums_portable(
    phi: Any, lag: int, parts: int = 0, /
) -> tuple[float, float, float, complex]: ...
