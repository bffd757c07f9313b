"""Types of the compiled extension ``becomingone.core._fused`` (source: _fused.c)."""

from typing import Any

ISA: str

def lagged_sums(phi: Any, lag: int, /) -> tuple[float, float, float, complex]: ...
def lagged_sums_portable(phi: Any, lag: int, /) -> tuple[float, float, float, complex]: ...
