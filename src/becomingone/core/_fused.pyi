"""Types of the compiled extension ``becomingone.core._fused`` (source: _fused.c)."""

from typing import Any

ISA: str

def lagged_sums(
    phi: Any, rows: int, cols: int, lag: int, is_complex: bool, /
) -> tuple[float, float, float, float, float]: ...
def lagged_sums_portable(
    phi: Any, rows: int, cols: int, lag: int, is_complex: bool, /
) -> tuple[float, float, float, float, float]: ...
