"""The compiled ω = 0 kernel (``becomingone.core._fused``) against its NumPy reference.

``core.kernels.lagged_sums`` must give the sums of ``lagged_sums_numpy`` up to rounding, on
every ISA variant the extension carries, and ``temporal_resonance`` must have the same outcome
(value, or the same ``InputError``) on either path: for any length, dtype, stride and channel
count, and for NaN, inf and finite inputs so large that the sums overflow (issue 7 §1).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import make_phi

from becomingone.core import kernels
from becomingone.core.kairos import temporal_resonance
from becomingone.errors import InputError

PURE = os.environ.get("BECOMINGONE_PURE", "") == "1"
needs_compiled = pytest.mark.skipif(
    not kernels.COMPILED, reason="the compiled kernel is off (BECOMINGONE_PURE=1 or not built)"
)
DT = 0.01
RTOL = 1e-12

Sums = tuple[float, float, float, complex]


def compiled_variants() -> list[Callable[[np.ndarray, int], Sums]]:
    """lagged_sums as the module runs it, and the portable loops forced (other CPUs' path)."""
    from becomingone.core import _fused

    def portable(mat: np.ndarray, big_l: int) -> Sums:
        return _fused.lagged_sums_portable(np.ascontiguousarray(mat), big_l)

    return [kernels.lagged_sums, portable]


@contextmanager
def numpy_path() -> Iterator[None]:
    """Run temporal_resonance on the NumPy fallback, as without the extension."""
    with mock.patch.object(kernels, "_KERNEL", None):
        yield


@contextmanager
def compiled_path() -> Iterator[None]:
    """The module as loaded (compiled)."""
    yield


def assert_sums_close(got: Sums, want: Sums) -> None:
    """Energies to RTOL; the lagged sum to RTOL of the energies' scale (it may cancel to ~0)."""
    for g, w in zip(got[:3], want[:3]):
        assert math.isclose(g, w, rel_tol=RTOL, abs_tol=0.0), (got, want)
    scale = math.sqrt(want[1] * want[2])
    assert abs(got[3] - want[3]) <= RTOL * (abs(want[3]) + scale), (got, want)


@st.composite
def matrices(draw: st.DrawFn, max_n: int = 300) -> tuple[np.ndarray, int]:
    """A φ matrix (N, C), float64 or complex128, of N ∈ {2, 3, odd, even, ...} and a lag."""
    n = draw(st.one_of(st.sampled_from([2, 3, 4, 5, 17, 64, 65]), st.integers(2, max_n)))
    channels = draw(st.integers(1, 4))
    complex_ = draw(st.booleans())
    kind = draw(st.sampled_from(["walk", "oscillator", "sticky", "ticks"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    phi = make_phi(rng, n, channels, complex_, kind)
    phi = phi * 10.0 ** draw(st.integers(-150, 150))
    return np.ascontiguousarray(phi), draw(st.integers(0, n - 2))


@pytest.mark.skipif(PURE, reason="BECOMINGONE_PURE=1 turns the compiled kernel off")
def test_the_dev_install_builds_the_extension() -> None:
    """The development install compiled ``_fused`` (gcc is promised on every machine), so
    temporal_resonance at ω = 0 runs the fused kernel, on a named instruction set. Fails in an
    editable install made before the extension existed, until ``make`` (``pip install -e .``)
    builds it."""
    assert kernels.COMPILED
    assert kernels.ISA in ("avx2+fma", "baseline")


@pytest.mark.skipif(PURE, reason="checks the default, which BECOMINGONE_PURE=1 overrides")
def test_the_extension_is_built_and_the_env_var_forces_numpy() -> None:
    """A fresh interpreter has the compiled kernel; with BECOMINGONE_PURE=1 it reports and uses
    the NumPy path, and both give the same T̂ to 1e-12."""
    code = (
        "import numpy as np\n"
        "from becomingone.core import kernels, kairos\n"
        "phi = np.cumsum(np.random.default_rng(5).normal(size=999))\n"
        "print(kernels.COMPILED, kernels.ISA, repr(kairos.temporal_resonance(phi, 1, 3, 0)))\n"
    )
    out = {}
    for pure in ("0", "1"):
        env = {**os.environ, "BECOMINGONE_PURE": pure}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        out[pure] = run.stdout.split()
    assert out["0"][:2] == ["True", kernels.ISA] and kernels.ISA != "numpy"
    assert out["1"][:2] == ["False", "numpy"]
    assert abs(complex(out["0"][2]) - complex(out["1"][2])) < RTOL


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(matrices())
def test_compiled_sums_match_numpy(case: tuple[np.ndarray, int]) -> None:
    """Every compiled variant gives the four sums of the NumPy form (energies to 1e-12; the
    lagged sum to 1e-12 of the energy scale) for real and complex φ of any size and scale,
    and lagged_sums does so for a big-endian Fortran-ordered copy too."""
    mat, big_l = case
    want = kernels.lagged_sums_numpy(mat, big_l)
    for variant in compiled_variants():
        assert_sums_close(variant(mat, big_l), want)
    swapped = np.asfortranarray(mat.astype(mat.dtype.newbyteorder(">")))  # copied to native C
    assert_sums_close(kernels.lagged_sums(swapped, big_l), want)


@needs_compiled
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize(("n", "channels", "big_l"), [(100_003, 1, 5), (40_001, 3, 777)])
def test_compiled_sums_match_numpy_on_large_input(
    n: int, channels: int, big_l: int, complex_: bool
) -> None:
    """The same agreement on long sequences (many SIMD blocks, and a remainder)."""
    mat = make_phi(np.random.default_rng(n), n, channels, complex_, "walk")
    want = kernels.lagged_sums_numpy(mat, big_l)
    for variant in compiled_variants():
        assert_sums_close(variant(mat, big_l), want)


def outcome(call: Callable[[], complex]) -> tuple[str, Any]:
    """("value", T̂) or ("error", (parameter, message)) of one call."""
    try:
        return "value", call()
    except InputError as exc:
        return "error", (exc.parameter, str(exc))


def assert_same_outcome(phi: Any, lag: float) -> None:
    """temporal_resonance at ω = 0 compiled and on NumPy: the same T̂ or the same error."""
    got = outcome(lambda: temporal_resonance(phi, DT, lag, 0.0))
    with numpy_path():
        want = outcome(lambda: temporal_resonance(phi, DT, lag, 0.0))
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got == want
    else:
        assert abs(got[1] - want[1]) <= 1e-11, (got, want)
        assert abs(got[1]) <= 1.0


SPECIAL = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1.7976931348623157e308, 1e200, 1e160]


@st.composite
def odd_inputs(draw: st.DrawFn) -> tuple[Any, float]:
    """φ as a user may pass it: 1-D or 2-D, a strided or transposed view, int, float32,
    complex64, big-endian or a list, with NaN, inf or huge finite values placed anywhere."""
    n = draw(st.integers(2, 80))
    channels = draw(st.integers(1, 3))
    complex_ = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    phi: Any = make_phi(rng, 2 * n, channels, complex_, draw(st.sampled_from(["walk", "ticks"])))
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.sampled_from(SPECIAL))
        row, col = draw(st.integers(0, 2 * n - 1)), draw(st.integers(0, channels - 1))
        phi[row, col] = value * (1j if complex_ and draw(st.booleans()) else 1)
    forms = ["strided", "transposed", "int", "narrow", "big-endian", "list", "1-D"]
    form = draw(st.sampled_from(forms))
    if form == "strided":
        phi = phi[::2]
    elif form == "transposed":
        phi = np.asfortranarray(phi[:n])
    elif form == "int":
        small = np.all(np.abs(phi) < 1e15)  # NaN, inf and huge values do not fit an int64
        phi = np.round(phi.real[:n]).astype(np.int64) if small else phi[:n]
    elif form == "narrow":
        with np.errstate(over="ignore", invalid="ignore"):
            phi = phi[:n].astype(np.complex64 if complex_ else np.float32)
    elif form == "big-endian":
        phi = phi[:n].astype(phi.dtype.newbyteorder(">"))
    elif form == "list":
        phi = phi[:n].tolist()
    else:
        phi = phi[:n, 0]
    return phi, DT * draw(st.integers(0, n - 2))


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(odd_inputs())
def test_temporal_resonance_has_the_same_outcome_on_both_paths(case: tuple[Any, float]) -> None:
    """Converted or refused the same way: any dtype, stride or container gives the same T̂
    (to 1e-11) or the same InputError (parameter and message) compiled and on NumPy,
    including NaN, inf and finite values whose differences or squares overflow."""
    assert_same_outcome(*case)


@needs_compiled
@pytest.mark.parametrize("complex_", [False, True])
def test_overflow_of_the_whole_energy_is_refused_on_both_paths(complex_: bool) -> None:
    """Huge differences only in the first and last rows: each partial energy fits in float64
    but their total does not. Both paths refuse it as an overflow naming phi (the guard covers
    every difference, not only the partial sums)."""
    phi = np.zeros(50, dtype=complex if complex_ else float)
    phi[0] = -1.2e154
    phi[-1] = 1.2e154 * (1j if complex_ else 1)
    d = np.diff(phi)
    with np.errstate(over="ignore"):
        assert math.isinf(float(np.sum(np.abs(d) ** 2)))
    assert math.isfinite(float(np.sum(np.abs(d[1:]) ** 2)))
    for path in (compiled_path, numpy_path):
        with path(), pytest.raises(InputError, match="overflow") as info:
            temporal_resonance(phi, DT, DT, 0.0)
        assert info.value.parameter == "phi"


@needs_compiled
@pytest.mark.parametrize(
    ("phi", "match"),
    [
        ([0.0, 1.0, math.nan, 3.0], "entry 2"),
        ([0.0, math.inf, 2.0, 3.0], "entry 1"),
        ([1e308, -1e308, 1e308, 0.0], "overflow"),
        ([0.0, 1e200, 0.0, 1e200], "overflow"),
        ([0.0, 1.0, 2.0, -math.inf], "entry 3"),
    ],
)
def test_non_finite_and_overflowing_phi_are_named(phi: list[float], match: str) -> None:
    """NaN/inf name their first entry and huge values say "overflow", on both paths; the last
    sample (read only by the "now" differences) is checked too."""
    assert_same_outcome(phi, DT)
    with pytest.raises(InputError, match=match):
        temporal_resonance(phi, DT, DT, 0.0)


@needs_compiled
@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((5, 1), np.float32), 1),
        (np.zeros((5, 1), np.int64), 1),
        (np.zeros((5, 1), ">f8"), 1),
        (np.zeros((5, 1, 1)), 1),
        (np.zeros(()), 0),
        (np.zeros((5, 1)), 4),
        (np.zeros((1, 3)), 0),
        (np.zeros((5, 0)), 0),
        (np.zeros((5, 1)), -1),
        (np.zeros((10, 1))[::2], 1),
        (b"\0" * 40, 1),
        (np.zeros((5, 1)),),
    ],
)
def test_the_extension_refuses_what_does_not_fit(args: tuple[Any, ...]) -> None:
    """The C boundary checks dtype and byte order, shape, contiguity, the lag range and the
    argument count itself (it never reads past a buffer); a wrong call raises ValueError."""
    from becomingone.core import _fused

    for kernel in (_fused.lagged_sums, _fused.lagged_sums_portable):
        with pytest.raises(ValueError):
            kernel(*args)


@needs_compiled
def test_the_extension_reads_one_and_two_dimensional_buffers() -> None:
    """A 1-D φ is one channel: the same sums as its (N, 1) form."""
    from becomingone.core import _fused

    phi = np.cumsum(np.random.default_rng(9).normal(size=101))
    assert _fused.lagged_sums(phi, 3) == _fused.lagged_sums(phi[:, None], 3)
