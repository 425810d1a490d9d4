"""Raydium CPMM math against hand-computed cases and the program's own test vectors."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dexmath.cpmm import (
    U64_MAX,
    CpmmError,
    CpmmState,
    invariant,
    quote_exact_in,
    trading_fee,
)


def test_fee_exactly_integral_is_not_rounded_up() -> None:
    # 1_000_000 * 2500 / 1e6 = 2500 exactly; 400 * 2500 / 1e6 = 1 exactly.
    assert trading_fee(1_000_000, 2_500) == 2_500
    assert trading_fee(400, 2_500) == 1


def test_fee_fraction_rounds_up() -> None:
    # 401 * 2500 / 1e6 = 1.0025 -> 2; 1001 * 2500 / 1e6 = 2.5025 -> 3; 1 * 2500 / 1e6 -> 1.
    assert trading_fee(401, 2_500) == 2
    assert trading_fee(1_001, 2_500) == 3
    assert trading_fee(1, 2_500) == 1
    assert trading_fee(1, 0) == 0


def test_new_reserve_out_is_ceiled() -> None:
    # R_in = 1e6, R_out = 2e6, in = 1000, rate 0.25%:
    #   fee = ceil(1000 * 2500 / 1e6) = ceil(2.5) = 3, net = 997
    #   new_out = ceil(1e6 * 2e6 / (1e6 + 997)) = ceil(1_998_007.986...) = 1_998_008
    #   out = 2_000_000 - 1_998_008 = 1992   (floor(997 * 2e6 / 1_000_997) = floor(1992.01))
    state = CpmmState(1_000_000, 2_000_000, 2_500)
    out, fee, new_state, impact = quote_exact_in(state, True, 1_000)
    assert (out, fee) == (1_992, 3)
    # The whole input, fee included, stays in the pool.
    assert new_state == CpmmState(1_001_000, 1_998_008, 2_500)
    # ideal = 997 * 2e6 / 1e6 = 1994; impact = 1 - 1992/1994 = 1/997
    assert impact == Fraction(1, 997)


def test_b_to_a_uses_reserve_b_as_input() -> None:
    # Same pool, B -> A with 2000 in: fee = ceil(2000 * 2500 / 1e6) = ceil(5.0) = 5, net 1995
    #   out = floor(1995 * 1e6 / (2e6 + 1995)) = floor(996.502...) = 996
    state = CpmmState(1_000_000, 2_000_000, 2_500)
    out, fee, new_state, _ = quote_exact_in(state, False, 2_000)
    assert (out, fee) == (996, 5)
    assert new_state == CpmmState(1_000_000 - 996, 2_002_000, 2_500)


@pytest.mark.parametrize(
    ("amount", "r_in", "r_out", "expected"),
    [
        # From cp-swap's constant_product.rs tests (no fee): spot 10 * 70b / ~4m = 174,999.99
        (10, 4_000_000, 70_000_000_000, 174_999),
        (20, 30_000 - 20, 10_000, 6),  # 20 * 1/3 = 6.67
        (10, 20_000, 30_000, 14),  # 14.99
        (10, 20_000 - 10, 30_000, 15),  # exactly 15
        (100, 60_000, 30_000, 49),  # 49.99
        (98, 60_000, 30_000, 48),  # 48.99
    ],
)
def test_program_rounding_vectors(amount: int, r_in: int, r_out: int, expected: int) -> None:
    out, fee, _, _ = quote_exact_in(CpmmState(r_in, r_out, 0), True, amount)
    assert (out, fee) == (expected, 0)


def test_tiny_amounts_produce_zero_out() -> None:
    # 10 * 4e6 / (7e10 + 10) = 0.00057 -> 0 (the program's "much too small" case)
    assert quote_exact_in(CpmmState(70_000_000_000, 4_000_000, 0), True, 10).amount_out == 0
    # 1 unit in at 0.25%: fee = ceil(0.0025) = 1, nothing left to swap
    out, fee, new_state, impact = quote_exact_in(CpmmState(10**9, 10**9, 2_500), True, 1)
    assert (out, fee, impact) == (0, 1, Fraction(0))
    assert new_state.reserve_a == 10**9 + 1


def test_rejects_bad_input() -> None:
    with pytest.raises(CpmmError):
        quote_exact_in(CpmmState(1, 1, 2_500), True, 0)
    with pytest.raises(CpmmError):
        quote_exact_in(CpmmState(0, 1_000, 2_500), True, 10)
    with pytest.raises(CpmmError):
        quote_exact_in(CpmmState(U64_MAX, 1_000, 2_500), True, 10)
    with pytest.raises(CpmmError):
        CpmmState(1, 1, 1_000_000)


@given(
    r_a=st.integers(1, 10**15),
    r_b=st.integers(1, 10**15),
    amount=st.integers(1, 10**15),
    rate=st.integers(0, 100_000),
    a_to_b=st.booleans(),
)
def test_k_never_decreases(r_a: int, r_b: int, amount: int, rate: int, a_to_b: bool) -> None:
    state = CpmmState(r_a, r_b, rate)
    out, fee, new_state, impact = quote_exact_in(state, a_to_b, amount)
    assert invariant(new_state) >= invariant(state)
    reserve_out = r_b if a_to_b else r_a
    assert 0 <= out < reserve_out
    assert 0 <= fee <= amount
    assert 0 <= impact <= 1
    assert new_state.reserve_a + new_state.reserve_b == r_a + r_b + amount - out
