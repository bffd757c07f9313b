"""The price P0 = S0(½ + 1/(e^{ħω/kT} − 1)) and the temperature: formula, rounding, bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.choir import HBAR_OVER_K, RATE_WINDOW, S0, TOTAL_SUPPLY, price, temperature
from becomingone.errors import InputError

balances = st.integers(min_value=0, max_value=TOTAL_SUPPLY)
counts = st.integers(min_value=0, max_value=10_000)


def reference(balance: int, coauthors: int, messages: int) -> float:
    """The formula written out plainly (no guards), for ordinary values."""
    t = balance / coauthors
    omega = max(messages, 1) / RATE_WINDOW
    return S0 * (0.5 + 1 / (math.exp(HBAR_OVER_K * omega / t) - 1))


@pytest.mark.parametrize(
    ("balance", "coauthors", "messages"),
    [(1000, 1, 70), (5000, 3, 10), (200, 2, 1), (10**6, 7, 500)],
)
def test_price_is_the_formula_rounded_up(balance: int, coauthors: int, messages: int) -> None:
    """For ordinary values the price is ceil(S0(½ + 1/(e^x − 1)))."""
    expected = math.ceil(reference(balance, coauthors, messages))
    assert price(balance=balance, coauthors=coauthors, messages=messages) == expected


def test_cold_and_empty_threads_cost_half_the_base_price() -> None:
    """T = 0 (no balance, or no co-authors) gives x = ∞ and P0 = S0/2 without dividing by 0."""
    assert price(balance=0, coauthors=3, messages=5) == S0 // 2
    assert price(balance=10**6, coauthors=0, messages=5) == S0 // 2
    assert temperature(0, 0) == 0.0


def test_extremes_are_clamped_not_overflowed() -> None:
    """x → 0 (the whole supply, one quiet co-author) is capped at the total supply."""
    assert price(balance=TOTAL_SUPPLY, coauthors=1, messages=0) == TOTAL_SUPPLY


@given(balances, st.integers(min_value=0, max_value=100), counts)
def test_price_is_bounded(balance: int, coauthors: int, messages: int) -> None:
    """Every price is an integer in [S0/2, TOTAL_SUPPLY]."""
    p = price(balance=balance, coauthors=coauthors, messages=messages)
    assert isinstance(p, int) and S0 // 2 <= p <= TOTAL_SUPPLY


@given(balances, balances, st.integers(min_value=1, max_value=50), counts)
def test_price_rises_with_temperature(a: int, b: int, coauthors: int, messages: int) -> None:
    """A richer thread never costs less (same co-authors and rate)."""
    low, high = sorted((a, b))
    p = lambda bal: price(balance=bal, coauthors=coauthors, messages=messages)  # noqa: E731
    assert p(low) <= p(high)


@given(balances, st.integers(min_value=1, max_value=50), counts, counts)
def test_price_falls_with_activity(balance: int, coauthors: int, m: int, n: int) -> None:
    """A busier thread (higher ω) never costs more."""
    few, many = sorted((m, n))
    p = lambda k: price(balance=balance, coauthors=coauthors, messages=k)  # noqa: E731
    assert p(many) <= p(few)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"balance": -1, "coauthors": 1, "messages": 0}, "balance"),
        ({"balance": 1, "coauthors": -1, "messages": 0}, "coauthors"),
        ({"balance": 1, "coauthors": 1, "messages": -1}, "messages"),
        ({"balance": 1, "coauthors": 1, "messages": 1, "window": 0.0}, "window"),
        ({"balance": 1, "coauthors": 1, "messages": 1, "window": math.nan}, "window"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, float], parameter: str) -> None:
    """Negative counts and a non-positive or NaN window are refused with the parameter named."""
    with pytest.raises(InputError) as info:
        price(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
