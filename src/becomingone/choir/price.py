"""Choir's amounts, temperature and price: the numbers of DESIGN.md §7 and their units.

Rule: pure functions of integers and seconds; no I/O, no clocks. Amounts are whole CHOIR
(integers; 1 unit = 1 CHOIR, there are no fractions). Prices are rounded **up** to a whole
CHOIR, so "stake ≥ price" is an exact integer comparison, and clamped to ``[1, TOTAL_SUPPLY]``.

The price is the mean energy of a quantum oscillator in units of the base price ``S0``::

    P0 = S0 · (½ + 1 / (e^x − 1)),   x = ħω / kT

* ``T`` (temperature, CHOIR per co-author) = thread balance / co-authors; a thread without
  co-authors has ``T = 0``.
* ``ω`` (message rate, messages per second) = messages of the thread in the last
  ``RATE_WINDOW`` seconds / ``RATE_WINDOW``, at least one message per window (so ω > 0).
* ``ħ/k`` = :data:`HBAR_OVER_K` CHOIR·s, which makes ``x`` dimensionless.

A cold thread (``T → 0``, ``x → ∞``) costs ``S0/2``; a rich, quiet thread (``x → 0``) costs
about ``S0/x``: a seat at a valuable thread that rarely speaks is dear, a busy one is cheap.
"""

from __future__ import annotations

import math

from becomingone.errors import InputError

__all__ = [
    "HBAR_OVER_K",
    "RATE_WINDOW",
    "S0",
    "TOTAL_SUPPLY",
    "message_rate",
    "price",
    "temperature",
]

#: CHOIR ever minted: genesis puts all of it in the treasury.
TOTAL_SUPPLY = 1_000_000_000
#: Base price, CHOIR.
S0 = 100
#: ħ/k in CHOIR·seconds: 100 CHOIR·day. A thread of ten messages a day at T = 1000 CHOIR per
#: co-author has x ≈ 1 and costs 109 CHOIR (108.2, rounded up).
HBAR_OVER_K = 100 * 86_400.0
#: Seconds over which the message rate ω is measured (7 days).
RATE_WINDOW = 7 * 86_400.0

# Beyond this x, e^x overflows a float and 1 / (e^x − 1) is 0 to double precision anyway.
_X_MAX = 700.0


def temperature(balance: int, coauthors: int) -> float:
    """T = balance / co-authors in CHOIR per co-author (0 for a thread without co-authors).

    >>> temperature(1000, 4), temperature(50, 0)
    (250.0, 0.0)
    """
    if balance < 0:
        raise InputError("balance", f"must be >= 0, got {balance}")
    if coauthors < 0:
        raise InputError("coauthors", f"must be >= 0, got {coauthors}")
    return balance / coauthors if coauthors else 0.0


def message_rate(messages: int, window: float = RATE_WINDOW) -> float:
    """ω in messages per second: ``max(messages, 1) / window``.

    >>> message_rate(0) == message_rate(1) == 1 / RATE_WINDOW
    True
    """
    if messages < 0:
        raise InputError("messages", f"must be >= 0, got {messages}")
    if not (math.isfinite(window) and window > 0):
        raise InputError("window", f"must be a positive number of seconds, got {window!r}")
    return max(messages, 1) / window


def price(*, balance: int, coauthors: int, messages: int, window: float = RATE_WINDOW) -> int:
    """P0 of a thread in whole CHOIR (rounded up, within ``[1, TOTAL_SUPPLY]``).

    Parameters
    ----------
    balance : int
        The thread's balance, CHOIR.
    coauthors : int
        Its co-authors now.
    messages : int
        Its messages (posts and published specs) in the last ``window`` seconds.
    window : float
        Seconds over which the message rate is measured.

    Examples
    --------
    >>> price(balance=0, coauthors=1, messages=3)
    50
    >>> price(balance=1000, coauthors=1, messages=70)
    109
    """
    t = temperature(balance, coauthors)
    omega = message_rate(messages, window)
    x = HBAR_OVER_K * omega / t if t > 0 else math.inf
    occupancy = 1.0 / math.expm1(x) if x < _X_MAX else 0.0
    value = S0 * (0.5 + occupancy)
    if not math.isfinite(value) or value >= TOTAL_SUPPLY:
        return TOTAL_SUPPLY
    return max(1, math.ceil(value))
