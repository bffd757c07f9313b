"""The streaming, windowed KAIROS engine (DESIGN.md §4).

``KairosEngine`` keeps running sums over the latest ``W = round(window/dt)`` velocity products,
so each new sample costs O(1) amortised work, whatever the window. Sums are re-computed exactly
from the stored terms once per window and whenever the operations since the last re-summation
could have cost more than ~1e-11 relative precision, so results equal the one-shot
:func:`~becomingone.core.kairos.temporal_resonance` over the window (to 1e-9) for any chunking.
Absolute time is ``t0 + n·dt`` with an integer sample count ``n``: it never drifts.

State is explicit (:class:`KairosState`) and round-trips through bytes without pickle. Pure
NumPy; no I/O, no clocks.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from becomingone.core._checks import (
    check_finite,
    finite_float,
    max_part,
    numeric_array,
    positive_float,
    positive_int,
)
from becomingone.core._engine_state import FMAX, KairosState, sample_limit
from becomingone.core.kairos import Resonance, clip_unit, lag_samples
from becomingone.errors import InputError

__all__ = ["KairosEngine", "KairosState", "sample_limit"]

#: Re-sum when the magnitude of the operations since the last exact sum exceeds this multiple of
#: the current sum: rounding error is then still below ~1e5 · 2.2e-16 ≈ 2e-11 relative.
_DRIFT_LIMIT = 1e5

#: A chunk is refused when the running sums plus their drift could pass this (post-check).
_HEADROOM = FMAX / 4

#: |ω·dt| above this is refused: ω·t_n then stays finite for any sample count below 2⁶³.
_MAX_OMEGA_DT = 1e280

_Complex = NDArray[np.complex128]
_Float = NDArray[np.float64]
_Terms = tuple[_Complex, _Float, _Float, NDArray[np.int64]]  # q, a, b and velocity indices


@dataclass(frozen=True, slots=True, kw_only=True)
class _Batch:
    """A chunk's effect on an engine: computed and checked, not yet applied to the state."""

    samples: _Complex  # the chunk, shape (k, C)
    v: _Complex  # the newest velocities (the lag ring keeps their last L)
    terms: _Terms | None  # the new window terms, if any
    totals: tuple[complex, float, float]  # Σq, Σa, Σb of ``terms``


class KairosEngine:
    """Streaming, windowed temporal-resonance engine.

    Parameters
    ----------
    dt : float
        Sample step in seconds, > 0.
    lag : float
        τ̄ in seconds, ≥ 0 (L = round(lag/dt) samples).
    omega : float
        ω in rad/s.
    window : float
        Window in seconds; the engine sums over the latest W = round(window/dt) products.
        Must be at least the lag and one sample.
    threshold : float
        Collapse threshold I_c on |T̂|², in (0, 1].
    channels : int
        Number of channels C; samples have shape (k,) when C = 1 or (k, C).
    t0 : float
        Time of the first sample in seconds.

    Examples
    --------
    >>> eng = KairosEngine(dt=0.01, lag=0.05, omega=0.0, window=1.0)
    >>> t = np.arange(500) * 0.01
    >>> res = eng.update(2 * np.pi * 3.0 * t)
    >>> res.terms, res.collapsed
    (100, True)
    """

    def __init__(
        self,
        dt: float,
        lag: float,
        omega: float,
        window: float,
        threshold: float = 0.95,
        channels: int = 1,
        t0: float = 0.0,
    ) -> None:
        step = positive_float("dt", dt)
        big_l = lag_samples(lag, step)
        win = positive_float("window", window)
        big_w = round(win / step)
        if big_w < 1:
            raise InputError("window", f"must cover at least one sample of dt={step}, got {win}")
        if win < float(lag):
            raise InputError("window", f"must be at least the lag ({lag} s), got {win}")
        thr = finite_float("threshold", threshold)
        if not 0.0 < thr <= 1.0:
            raise InputError("threshold", f"must be in (0, 1], got {thr}")
        n_ch = positive_int("channels", channels)
        w = finite_float("omega", omega)
        start = finite_float("t0", t0)
        if not (abs(w * step) <= _MAX_OMEGA_DT and math.isfinite(w * start)):
            raise InputError(
                "omega", f"ω·t would overflow float64 (ω={w} rad/s, dt={step} s, t0={start} s)"
            )
        self._state = KairosState(
            dt=step,
            lag=float(lag),
            omega=w,
            window=win,
            threshold=thr,
            channels=n_ch,
            t0=start,
            last_sample=np.zeros(n_ch, np.complex128),
            vel_ring=np.zeros((big_l, n_ch), np.complex128),
            term_q=np.zeros(big_w, np.complex128),
            term_a=np.zeros(big_w, np.float64),
            term_b=np.zeros(big_w, np.float64),
        )
        self._set_derived()

    def _set_derived(self) -> None:
        s = self._state
        self._big_l: int = int(s.vel_ring.shape[0])
        self._big_w: int = int(s.term_q.shape[0])
        self._rot0 = complex(np.exp(1j * s.omega * s.t0))
        self._wdt = s.omega * s.dt
        self._limit = sample_limit(s.dt, self._big_w, s.channels)
        self._last: Resonance = self._result()

    # -- public read-only view -------------------------------------------------------------------

    @property
    def dt(self) -> float:
        """Sample step in seconds."""
        return self._state.dt

    @property
    def omega(self) -> float:
        """ω in rad/s."""
        return self._state.omega

    @property
    def threshold(self) -> float:
        """Collapse threshold I_c."""
        return self._state.threshold

    @property
    def channels(self) -> int:
        """Number of channels C."""
        return self._state.channels

    @property
    def lag_samples(self) -> int:
        """Lag L in samples."""
        return self._big_l

    @property
    def window_terms(self) -> int:
        """Window W in terms (velocity products)."""
        return self._big_w

    @property
    def sample_limit(self) -> float:
        """The largest |real| or |imaginary| part of a sample accepted (:func:`sample_limit`)."""
        return self._limit

    @property
    def samples(self) -> int:
        """Number of samples ingested so far."""
        return self._state.samples

    @property
    def last(self) -> Resonance:
        """The result after the latest update."""
        return self._last

    def time_of(self, sample_index: int) -> float:
        """Absolute time of sample ``sample_index`` in seconds: t0 + n·dt (no drift)."""
        return self._state.t0 + sample_index * self._state.dt

    # -- state -----------------------------------------------------------------------------------

    def snapshot(self) -> KairosState:
        """A deep copy of the engine state; :meth:`restore` resumes from it exactly."""
        return self._state.copy()

    def state_bytes(self) -> bytes:
        """``snapshot().to_bytes()`` without the intermediate deep copy."""
        return self._state.to_bytes()

    @classmethod
    def restore(cls, state: KairosState) -> KairosEngine:
        """Build an engine from a :class:`KairosState` (as returned by :meth:`snapshot`)."""
        eng = cls(
            dt=state.dt,
            lag=state.lag,
            omega=state.omega,
            window=state.window,
            threshold=state.threshold,
            channels=int(state.channels),
            t0=state.t0,
        )
        eng._state = state.checked_like(eng._state)
        eng._set_derived()
        return eng

    # -- ingest ----------------------------------------------------------------------------------
    #
    # Every path computes a chunk's velocities, terms and sums first (``_prepare``), checks that
    # they are finite and that the running sums keep their headroom, and only then changes the
    # state (``_apply``): a refused chunk leaves the engine bit-identical.

    def _as_chunk(self, samples: ArrayLike) -> tuple[_Complex, float]:
        """The samples as a complex128 (k, C) chunk and their largest part (finite, checked)."""
        arr = numeric_array("samples", samples)
        c = self._state.channels
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        if arr.ndim == 1:
            arr = arr[:, None] if c == 1 else arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != c:
            raise InputError("samples", f"must have shape (k,) or (k, {c}), got {arr.shape}")
        peak = max_part(arr)  # NaN or inf when a value is: one pass finds both
        if not math.isfinite(peak):
            check_finite("samples", arr)
        return arr.astype(np.complex128, copy=False), peak

    def update(self, samples: ArrayLike) -> Resonance:
        """Ingest samples (shape (k,) or (k, C); a scalar for one sample) and return the result.

        Raises ``InputError`` (nothing ingested) on a wrong shape, non-finite values or a value
        beyond :attr:`sample_limit` (its velocity terms would overflow float64).
        """
        s = self._state
        if s.channels == 1 and s.samples and isinstance(samples, float | int | complex):
            if isinstance(samples, bool) or not cmath.isfinite(samples):
                raise InputError("samples", f"must be a finite number, got {samples!r}")
            z = complex(samples)
            self._check_bound(max(abs(z.real), abs(z.imag)), self._limit)
            return self._update_scalar(z)
        x, peak = self._as_chunk(samples)
        if x.shape[0] == 0:
            return self._last
        self._check_bound(peak, self._limit)
        return self._ingest(x)

    def update_trusted(self, chunk: _Complex) -> Resonance:
        """Ingest a chunk its caller has already cleaned: complex128, shape (k, C), all finite.

        The fast path for a caller that validates once for several engines (the cell): the
        dtype and shape are checked, and one pass finds the largest part for the
        :attr:`sample_limit` (which also refuses NaN/inf). Results equal :meth:`update`.
        """
        self._check_trusted(chunk)
        if chunk.shape[0] == 0:
            return self._last
        self._check_bound(max_part(chunk), self._limit)
        return self._ingest(chunk)

    def update_pair(self, chunk: _Complex, follower: KairosEngine) -> tuple[Resonance, Resonance]:
        """Ingest one cleaned chunk (as :meth:`update_trusted`) into this engine and ``follower``.

        When ``follower`` reads the same stream at the same dt, lag, ω and channels with a window
        no longer than this one's, and has ingested the same samples so far (same count, last
        sample and lag ring), the velocity products are computed once, here, and ``follower``
        stores those in its own window. Otherwise both engines update on their own. Either
        way each engine ends exactly as if it had been fed ``chunk`` alone; if either engine
        refuses the chunk (``InputError``), neither changes.
        """
        self._check_trusted(chunk)
        follower._check_trusted(chunk)
        if chunk.shape[0] == 0:
            return self._last, follower._last
        self._check_bound(max_part(chunk), min(self._limit, follower._limit))
        if self._leads(follower):
            m_old = max(self._state.samples - 1, 0)
            mine = self._prepare(chunk)
            theirs = follower._follow(mine, m_old)
        else:
            mine, theirs = self._prepare(chunk), follower._prepare(chunk)
        self._apply(mine)
        follower._apply(theirs)
        return self._last, follower._last

    def check_samples(self, chunk: _Complex) -> None:
        """Raise ``InputError('samples')`` if :meth:`update_trusted` would refuse ``chunk`` by
        its shape, dtype or :attr:`sample_limit`; change nothing.

        Lets a caller refuse a batch before acting on it (the cell does, before its hooks
        fire); the update itself still checks the terms it computes.
        """
        self._check_trusted(chunk)
        self._check_bound(max_part(chunk), self._limit)

    def _check_trusted(self, chunk: _Complex) -> None:
        c = self._state.channels
        if not isinstance(chunk, np.ndarray) or chunk.dtype != np.complex128:
            raise InputError("samples", "a trusted chunk must be a complex128 array")
        if chunk.ndim != 2 or chunk.shape[1] != c:
            raise InputError(
                "samples", f"a trusted chunk must have shape (k, {c}), got {chunk.shape}"
            )

    def _check_bound(self, peak: float, limit: float) -> None:
        """Refuse a chunk whose largest part ``peak`` exceeds ``limit`` (or is NaN/inf)."""
        if peak <= limit:
            return
        if not math.isfinite(peak):
            raise InputError("samples", f"must be finite, got a value {peak!r}")
        s = self._state
        raise InputError(
            "samples",
            f"would overflow the engine: max |value| {peak:.3g} exceeds the sample limit "
            f"{limit:.3g} (dt={s.dt} s, window {self._big_w} terms, {s.channels} channels)",
        )

    def _overflow(self, x: _Complex | complex) -> InputError:
        """The error for samples ``x`` whose computed terms or sums do not fit in float64."""
        peak = max_part(np.atleast_1d(np.asarray(x, dtype=np.complex128)))
        return InputError(
            "samples",
            f"would overflow the engine: the velocity terms or window sums exceed float64 "
            f"(max |value| {peak:.3g}; the sample limit is {self._limit:.3g})",
        )

    def _leads(self, other: KairosEngine) -> bool:
        """True iff ``other`` would compute the same velocity products as this engine."""
        s, o = self._state, other._state
        return (
            o.dt == s.dt
            and o.omega == s.omega
            and o.channels == s.channels
            and o.samples == s.samples
            and other._big_l == self._big_l
            and other._big_w <= self._big_w
            and bool(np.all(o.last_sample == s.last_sample))
            and bool(np.all(o.vel_ring == s.vel_ring))
        )

    def _ingest(self, x: _Complex) -> Resonance:
        """Ingest a validated chunk of shape (k, C), k ≥ 1 (complex128, finite, bounded)."""
        if x.shape[0] == 1 and self._state.samples:
            return self._update_one(x[0])
        self._apply(self._prepare(x))
        return self._last

    def _prepare(self, x: _Complex) -> _Batch:
        """Compute (not apply) the effect of k ≥ 1 samples; raise if it would overflow."""
        s = self._state
        m_old = max(s.samples - 1, 0)  # velocities so far
        need = self._big_w + self._big_l  # only the newest W + L velocities can still matter
        if x.shape[0] > need:
            skip = x.shape[0] - need - 1  # samples whose velocities leave at once
            m_old += skip + (1 if s.samples else 0)
            seq = x[skip:]
        else:
            seq = np.concatenate([s.last_sample[None, :], x]) if s.samples else x
        v: _Complex = np.asarray(np.diff(seq, axis=0) / s.dt, dtype=np.complex128)
        m_new = m_old + v.shape[0]
        # First new velocity index with a lagged partner whose term stays in the window: terms
        # that would leave within this chunk are never computed (the window keeps the last W).
        first = max(self._big_l, m_old, m_new - self._big_w)
        terms = None
        if m_new > first:
            idx = np.arange(first, m_new)
            terms = self._products(v[first - m_old :], self._lagged(v, m_old, idx), idx)
        return self._checked(x, v, terms)

    def _follow(self, lead: _Batch, m_old: int) -> _Batch:
        """This engine's share of a leader's batch (the leader had ``m_old`` velocities)."""
        m_new = self._state.samples + lead.samples.shape[0] - 1
        first = max(self._big_l, m_old, m_new - self._big_w)
        terms = None
        if lead.terms is not None and m_new > first:
            q, a, b, idx = lead.terms
            off = first - int(idx[0])
            terms = (q[off:], a[off:], b[off:], idx[off:])
        return self._checked(lead.samples, lead.v, terms)

    def _checked(self, x: _Complex, v: _Complex, terms: _Terms | None) -> _Batch:
        """The batch of chunk ``x``, once its new ring velocities and sums are known to fit."""
        totals = (0j, 0.0, 0.0)
        if terms is not None:
            totals = (complex(np.sum(terms[0])), float(np.sum(terms[1])), float(np.sum(terms[2])))
        ring = v[-self._big_l :] if self._big_l else v[:0]
        if not (self._fits(*totals) and bool(np.all(np.isfinite(ring)))):
            raise self._overflow(x)
        return _Batch(samples=x, v=v, terms=terms, totals=totals)

    def _fits(self, q: complex, a: float, b: float) -> bool:
        """True iff terms summing to (q, a, b) keep the running sums well inside float64."""
        s = self._state
        return (
            cmath.isfinite(q)
            and s.sum_a + s.drift_a + 2.0 * a <= _HEADROOM
            and s.sum_b + s.drift_b + 2.0 * b <= _HEADROOM
        )

    def _apply(self, batch: _Batch) -> None:
        """Commit a checked batch: last sample, count, window terms and the lag ring."""
        s = self._state
        s.last_sample = batch.samples[-1].copy()
        s.samples += batch.samples.shape[0]
        if batch.terms is not None:
            q, a, b, idx = batch.terms
            self._store_terms(q, a, b, idx - self._big_l, batch.totals)
        self._push_ring(batch.v, s.samples - 1)
        self._last = self._result()

    def _push_ring(self, v: _Complex, m_new: int) -> None:
        """Keep the newest L velocities (indices < m_new; v holds the newest ones)."""
        big_l = self._big_l
        if big_l and v.shape[0]:
            tail = v[-big_l:]
            slots = np.arange(m_new - tail.shape[0], m_new) % big_l
            self._state.vel_ring[slots] = tail

    def _lagged(self, v: _Complex, m_old: int, idx: NDArray[np.int64]) -> _Complex:
        """Velocities at indices idx − L, from the ring (older than m_old) or from v."""
        big_l = self._big_l
        if big_l == 0:
            return v[idx[0] - m_old :]
        src = idx - big_l
        from_ring = src < m_old
        out = np.empty((idx.shape[0], v.shape[1]), np.complex128)
        n_ring = int(np.count_nonzero(from_ring))
        if n_ring:
            out[:n_ring] = self._state.vel_ring[src[:n_ring] % big_l]
        if n_ring < idx.shape[0]:
            out[n_ring:] = v[src[n_ring:] - m_old]
        return out

    def _products(self, now: _Complex, past: _Complex, idx: NDArray[np.int64]) -> _Terms:
        """Terms q = v[n]·conj(v[n−L])·e^{iωn·dt}, a = |v[n]|², b = |v[n−L]|² for n in idx."""
        if now.shape[1] == 1:
            p = now[:, 0] * np.conj(past[:, 0])
            a = now[:, 0].real ** 2 + now[:, 0].imag ** 2
            b = past[:, 0].real ** 2 + past[:, 0].imag ** 2
        else:
            p = np.einsum("nc,nc->n", now, np.conj(past))
            a = np.einsum("nc,nc->n", now.real, now.real) + np.einsum(
                "nc,nc->n", now.imag, now.imag
            )
            b = np.einsum("nc,nc->n", past.real, past.real) + np.einsum(
                "nc,nc->n", past.imag, past.imag
            )
        q = p * np.exp(1j * (self._wdt * idx.astype(np.float64))) if self._wdt else p
        return q, a, b, idx

    def _store_terms(
        self,
        q: _Complex,
        a: _Float,
        b: _Float,
        j: NDArray[np.int64],
        totals: tuple[complex, float, float],
    ) -> None:
        """Put terms number j (since the start), whose sums are ``totals``, into the window."""
        s = self._state
        big_w = self._big_w
        if q.shape[0] >= big_w:
            slots = j[-big_w:] % big_w
            s.term_q[slots] = q[-big_w:]
            s.term_a[slots] = a[-big_w:]
            s.term_b[slots] = b[-big_w:]
            self._resum(terms_total=int(j[-1]) + 1)
            return
        slots = j % big_w
        drop = slots[j >= big_w]  # those slots still hold the terms that leave the window
        old_q = 0j
        old_a = old_b = 0.0
        if drop.size:
            old_q = complex(np.sum(s.term_q[drop]))
            old_a = float(np.sum(s.term_a[drop]))
            old_b = float(np.sum(s.term_b[drop]))
        s.term_q[slots] = q
        s.term_a[slots] = a
        s.term_b[slots] = b
        new_q, new_a, new_b = totals
        s.sum_q_re += new_q.real - old_q.real
        s.sum_q_im += new_q.imag - old_q.imag
        s.sum_a += new_a - old_a
        s.sum_b += new_b - old_b
        s.drift_a += new_a + old_a
        s.drift_b += new_b + old_b
        s.since_resum += q.shape[0]
        self._maybe_resum(int(j[-1]) + 1)

    def _maybe_resum(self, terms_total: int) -> None:
        s = self._state
        if (
            s.since_resum >= self._big_w
            or s.drift_a > _DRIFT_LIMIT * max(s.sum_a, 0.0)
            or s.drift_b > _DRIFT_LIMIT * max(s.sum_b, 0.0)
        ):
            self._resum(terms_total)

    def _update_scalar(self, x: complex) -> Resonance:
        """One sample of a single-channel stream: the same arithmetic without array overhead."""
        s = self._state
        big_l = self._big_l
        v = (x - complex(s.last_sample[0])) / s.dt
        n = s.samples - 1  # index of the new velocity
        term = None
        if n >= big_l:
            past = complex(s.vel_ring[(n - big_l) % big_l, 0]) if big_l else v
            q = v * past.conjugate()
            if self._wdt:
                q *= cmath.exp(1j * (self._wdt * float(n)))
            a = v.real * v.real + v.imag * v.imag
            b = past.real * past.real + past.imag * past.imag
            term = (q, a, b)
        # Under a finite sample_limit (checked by the caller) nothing here can overflow: the
        # bound is derived so that it cannot; the post-check runs only without one.
        if self._limit == math.inf and not (
            cmath.isfinite(v) and (term is None or self._fits(*term))
        ):
            raise self._overflow(x)
        s.last_sample[0] = x
        s.samples += 1
        if term is not None:
            self._push_term(n - big_l, *term)
        if big_l:
            s.vel_ring[n % big_l, 0] = v
        self._last = self._result()
        return self._last

    def _update_one(self, x: _Complex) -> Resonance:
        """One sample of a multichannel stream (shape (C,)), without chunk bookkeeping."""
        s = self._state
        big_l = self._big_l
        v = (x - s.last_sample) / s.dt
        n = s.samples - 1
        term = None
        if n >= big_l:
            past = s.vel_ring[(n - big_l) % big_l] if big_l else v
            q = complex(np.vdot(past, v))
            if self._wdt:
                q *= cmath.exp(1j * (self._wdt * float(n)))
            term = (q, float(np.vdot(v, v).real), float(np.vdot(past, past).real))
        # a finite Σ|v|² (in the term) implies finite velocities; otherwise check them
        if not (self._fits(*term) if term is not None else bool(np.isfinite(v).all())):
            raise self._overflow(x)
        s.last_sample = x.copy()
        s.samples += 1
        if term is not None:
            self._push_term(n - big_l, *term)
        if big_l:
            s.vel_ring[n % big_l] = v
        self._last = self._result()
        return self._last

    def _push_term(self, j: int, q: complex, a: float, b: float) -> None:
        """Add term number j, dropping the one it replaces once the window is full."""
        s = self._state
        big_w = self._big_w
        slot = j % big_w
        old_q, old_a, old_b = 0j, 0.0, 0.0
        if j >= big_w:
            old_q = complex(s.term_q[slot])
            old_a = float(s.term_a[slot])
            old_b = float(s.term_b[slot])
        s.term_q[slot] = q
        s.term_a[slot] = a
        s.term_b[slot] = b
        s.sum_q_re += q.real - old_q.real
        s.sum_q_im += q.imag - old_q.imag
        s.sum_a += a - old_a
        s.sum_b += b - old_b
        s.drift_a += a + old_a
        s.drift_b += b + old_b
        s.since_resum += 1
        self._maybe_resum(j + 1)

    def _resum(self, terms_total: int) -> None:
        s = self._state
        n = min(terms_total, self._big_w)
        if n == self._big_w:
            q, a, b = s.term_q, s.term_a, s.term_b
        else:
            q, a, b = s.term_q[:n], s.term_a[:n], s.term_b[:n]
        total = complex(np.sum(q))
        s.sum_q_re, s.sum_q_im = total.real, total.imag
        s.sum_a, s.sum_b = float(np.sum(a)), float(np.sum(b))
        s.drift_a = s.drift_b = 0.0
        s.since_resum = 0

    def _terms(self) -> int:
        s = self._state
        m = int(s.samples) - 1
        return max(0, min(self._big_w, m - self._big_l))

    def _result(self) -> Resonance:
        s = self._state
        terms = self._terms()
        time = s.t0 + (s.samples - 1) * s.dt if s.samples else s.t0
        a, b = s.sum_a, s.sum_b
        if terms == 0 or a <= 0.0 or b <= 0.0:
            return Resonance(time=time, value=0j, coherence=0.0, terms=terms, collapsed=False)
        value = clip_unit(
            complex(s.sum_q_re, s.sum_q_im) * self._rot0 / (math.sqrt(a) * math.sqrt(b))
        )
        coherence = min(1.0, value.real**2 + value.imag**2)
        return Resonance(
            time=time,
            value=value,
            coherence=coherence,
            terms=terms,
            collapsed=coherence >= s.threshold,
        )
