"""Meteora DLMM math against the program's test vectors and hand-computed walks.

Hand-computed cases sit on bin 0, whose price is exactly 2^64 (1:1), so the arithmetic
is checkable on paper; neighbouring bins use ``price(-1) = floor((2^128-1) / base)`` with
``base = 2^64 + floor(10 * 2^64 / 10_000)`` (~0.999001) and ``price(1) = base`` (1.001).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dexmath.dlmm import (
    MAX_FEE_RATE,
    ONE,
    U128_MAX,
    Bin,
    DlmmError,
    DlmmState,
    FeeParams,
    InsufficientLiquidity,
    VolatilityState,
    base_fee_rate,
    compute_fee,
    compute_fee_from_amount,
    get_base,
    pow_q64,
    price_from_id,
    quote_exact_in,
    total_fee_rate,
    update_references,
    update_volatility_accumulator,
    variable_fee_rate,
)

NOW = 1_700_000_000
# bin_step 10, base_factor 10_000 -> base fee 10_000 * 10 * 10 = 1_000_000 (0.1% of 1e9)
FLAT = FeeParams(base_factor=10_000, variable_fee_control=0)


def _to_decimal(q64: int) -> int:
    """``u64x64_math::to_decimal`` (10^12 precision)."""
    return (q64 * 10**12) >> 64


def test_price_matches_program_vectors() -> None:
    # u64x64_math.rs test_pow and price_math.rs tests
    assert pow_q64(get_base(15), 3333) == 2726140093009341558707
    assert _to_decimal(price_from_id(5555, 10)) == 257810379178651
    assert _to_decimal(price_from_id(-5555, 10)) == 3878819786
    # constants.rs test_preset_min_max_bin_id for bin step 1
    assert price_from_id(436704, 1) == 170141183460469231731687303715884105727
    assert price_from_id(-436704, 1) == 2


def test_price_of_neighbour_bins() -> None:
    base = ONE + 18446744073709551  # 2^64 * 10 / 10_000 = 18446744073709551.6, floored
    assert get_base(10) == base
    assert price_from_id(0, 10) == ONE
    assert price_from_id(-1, 10) == U128_MAX // base
    assert price_from_id(1, 10) == base


def test_fee_rates() -> None:
    assert base_fee_rate(FLAT, 10) == 1_000_000
    assert base_fee_rate(FeeParams(base_factor=5_000, base_fee_power_factor=2), 10) == 50_000_000
    params = FeeParams(variable_fee_control=40_000)
    # (10_000 * 10)^2 * 40_000 = 4e14, / 1e11 = 4000 exactly -> no rounding
    assert variable_fee_rate(params, 10, 10_000) == 4_000
    # (10_001 * 10)^2 * 40_000 = 400_080_004_000_000, / 1e11 = 4000.8 -> 4001 (ceil)
    assert variable_fee_rate(params, 10, 10_001) == 4_001
    # base 60_000 * 200 * 10 = 120_000_000 > 10%: capped at 100_000_000
    assert total_fee_rate(FeeParams(base_factor=60_000), 200, 0) == MAX_FEE_RATE


def test_fee_rounding_edges() -> None:
    # fee part of the amount: 1000 * 1e6 / 1e9 = 1 exactly; 1001 -> 1.001 -> 2
    assert compute_fee_from_amount(1_000, 1_000_000) == 1
    assert compute_fee_from_amount(1_001, 1_000_000) == 2
    # fee on top: 999 * 1e6 / (1e9 - 1e6) = 1 exactly; 1000 -> 1.001 -> 2
    assert compute_fee(999, 1_000_000) == 1
    assert compute_fee(1_000, 1_000_000) == 2


def _pool(bins: dict[int, Bin], params: FeeParams = FLAT, active: int = 0) -> DlmmState:
    return DlmmState(bin_step=10, active_id=active, bins=bins, params=params)


def test_single_bin_y_to_x() -> None:
    # 500 Y into bin 0 (1:1): max in = 1000 + compute_fee(1000) = 1000 + 2 = 1002 > 500, so
    # fee = ceil(500 * 1e6 / 1e9) = 1, out = floor((499 << 64) / 2^64) = 499.
    quote = quote_exact_in(_pool({0: Bin(1_000, 1_000)}), False, 500, NOW)
    assert (quote.amount_out, quote.fee) == (499, 1)
    # bin gets the post-fee input, the fee stays in the vault outside the bin
    assert quote.new_state.bins == {0: Bin(501, 1_499)}
    assert (quote.new_state.fee_x, quote.new_state.fee_y) == (0, 1)
    assert quote.new_state.active_id == 0
    assert quote.new_state.total_y == 1_000 + 500
    # the active bin did not move: the program leaves last_update_timestamp alone
    assert quote.new_state.volatility.last_update_timestamp == 0


def test_multi_bin_walk_x_to_y_exhausts_active_bin() -> None:
    # Bin 0 holds 100 Y: max in = 100 + compute_fee(100) = 100 + ceil(1e8 / 999e6) = 101.
    # 300 > 101, so bin 0 is emptied: used 101, out 100, fee 1; 199 left walks down to -1.
    # Bin -1 (price ~0.999001): fee = ceil(199 * 1e6 / 1e9) = 1,
    #   out = floor(198 * price(-1) / 2^64) = floor(197.80) = 197.
    state = _pool({0: Bin(0, 100), -1: Bin(0, 1_000)})
    quote = quote_exact_in(state, True, 300, NOW)
    assert [(s.bin_id, s.amount_in, s.amount_out, s.fee) for s in quote.steps] == [
        (0, 101, 100, 1),
        (-1, 199, 197, 1),
    ]
    assert (quote.amount_out, quote.fee) == (297, 2)
    assert quote.new_state.active_id == -1
    assert quote.new_state.bins == {0: Bin(100, 0), -1: Bin(198, 803)}
    assert quote.new_state.fee_x == 2
    assert quote.new_state.total_x == 300


def test_y_to_x_walks_up_and_skips_bins_without_x() -> None:
    # Active bin 0 holds only Y, so the walk starts at bin 1 (price 1.001):
    # max in = ceil(100 * base / 2^64) = ceil(100.1) = 101, + compute_fee(101) = 1 -> 102.
    # 150 > 102: used 102, out 100; 48 left into bin 2:
    # fee = ceil(48e6 / 1e9) = 1, out = floor((47 << 64) / price(2)) = floor(46.906) = 46.
    state = _pool({0: Bin(0, 500), 1: Bin(100, 0), 2: Bin(100, 0)})
    quote = quote_exact_in(state, False, 150, NOW)
    assert [(s.bin_id, s.amount_in, s.amount_out) for s in quote.steps] == [
        (1, 102, 100),
        (2, 48, 46),
    ]
    assert quote.new_state.active_id == 2
    assert quote.new_state.bins[1] == Bin(0, 101)


def test_tiny_amount_pays_nothing_but_is_consumed() -> None:
    # 1 unit: fee = ceil(1 * 1e6 / 1e9) = 1, nothing left to convert
    quote = quote_exact_in(_pool({0: Bin(1_000, 1_000)}), True, 1, NOW)
    assert (quote.amount_out, quote.fee) == (0, 1)
    assert quote.new_state.total_x == 1_000 + 1


def test_fee_cap_applies_to_swap() -> None:
    # 12% base fee capped at 10%: 1000 in, fee = ceil(1000 * 1e8 / 1e9) = 100, out 900
    capped = FeeParams(base_factor=60_000, variable_fee_control=0)
    state = DlmmState(bin_step=200, active_id=0, bins={0: Bin(0, 10_000)}, params=capped)
    quote = quote_exact_in(state, True, 1_000, NOW)
    assert quote.steps[0].fee_rate == MAX_FEE_RATE
    assert (quote.amount_out, quote.fee) == (900, 100)


def test_volatility_accumulator_grows_across_bins() -> None:
    # Reference = starting active bin 0; each bin crossed adds 10_000 to the accumulator.
    # variable fee (vfc 40_000, step 10): va 0 -> 0, 10_000 -> 4_000, 20_000 -> 16_000.
    params = FeeParams(base_factor=10_000, variable_fee_control=40_000)
    state = _pool({0: Bin(0, 10), -1: Bin(0, 10), -2: Bin(0, 1_000)}, params)
    quote = quote_exact_in(state, True, 100, NOW)
    assert [(s.bin_id, s.volatility_accumulator, s.fee_rate) for s in quote.steps] == [
        (0, 0, 1_000_000),
        (-1, 10_000, 1_004_000),
        (-2, 20_000, 1_016_000),
    ]
    vol = quote.new_state.volatility
    assert (vol.volatility_accumulator, vol.index_reference) == (20_000, 0)


def test_volatility_reference_filter_and_decay() -> None:
    params = FeeParams(filter_period=30, decay_period=600, reduction_factor=5_000)
    vol = VolatilityState(
        volatility_accumulator=30_000,
        volatility_reference=0,
        index_reference=2,
        last_update_timestamp=1_000,
    )
    # 10 s < filter period: high-frequency trade, references frozen
    assert update_references(vol, params, 5, 1_010) == vol
    # 100 s: decay window -> reference moves to bin 5, vr = 30_000 * 5_000 / 10_000 = 15_000
    decayed = update_references(vol, params, 5, 1_100)
    assert (decayed.index_reference, decayed.volatility_reference) == (5, 15_000)
    # 1000 s >= decay period: reset
    assert update_references(vol, params, 5, 2_000).volatility_reference == 0
    # accumulator: vr + |5 - 8| * 10_000 = 45_000, capped by max_volatility_accumulator
    assert update_volatility_accumulator(decayed, params, 8).volatility_accumulator == 45_000
    small_cap = FeeParams(max_volatility_accumulator=20_000)
    assert update_volatility_accumulator(decayed, small_cap, 8).volatility_accumulator == 20_000


def test_last_update_timestamp_moves_only_with_the_active_bin() -> None:
    # The program writes last_update_timestamp only when a swap moves the active bin:
    # swaps inside one bin keep it, a swap that crosses bins sets it to now.
    vol = VolatilityState(last_update_timestamp=NOW - 1_000)
    state = DlmmState(bin_step=10, active_id=0, bins={0: Bin(10**6, 10**6), -1: Bin(0, 10**6)},
                      params=FLAT, volatility=vol)
    first = quote_exact_in(state, False, 500, NOW).new_state
    second = quote_exact_in(first, True, 700, NOW + 5).new_state
    assert (first.active_id, second.active_id) == (0, 0)
    assert first.volatility.last_update_timestamp == NOW - 1_000
    assert second.volatility.last_update_timestamp == NOW - 1_000
    crossed = quote_exact_in(second, True, 2 * 10**6, NOW + 9).new_state
    assert crossed.active_id == -1
    assert crossed.volatility.last_update_timestamp == NOW + 9


def test_chained_swaps_decay_volatility_as_the_program_does() -> None:
    # A bin-crossing swap at T leaves va = 20_000 (two bins from the reference) and sets
    # last_update_timestamp = T. A same-bin swap at T+20 must not refresh it, so at T+35
    # (>= filter_period 30 after T) the references update: index_reference = active bin,
    # vr = 20_000 * 5_000 / 10_000 = 10_000, and the next swap's va starts from 10_000.
    params = FeeParams(base_factor=10_000, variable_fee_control=40_000, filter_period=30,
                       decay_period=600, reduction_factor=5_000)
    state = _pool({0: Bin(0, 10), -1: Bin(0, 10), -2: Bin(0, 10**9)}, params)
    after_cross = quote_exact_in(state, True, 100, NOW).new_state
    assert after_cross.active_id == -2
    assert after_cross.volatility.volatility_accumulator == 20_000
    same_bin = quote_exact_in(after_cross, True, 1_000, NOW + 20).new_state
    assert same_bin.active_id == -2
    third = quote_exact_in(same_bin, True, 1_000, NOW + 35)
    assert [(s.bin_id, s.volatility_accumulator) for s in third.steps] == [(-2, 10_000)]
    # variable fee for va 10_000 at bin_step 10: ceil(40_000 * (10_000 * 10)^2 / 1e11) = 4_000
    assert third.steps[0].fee_rate == 1_000_000 + 4_000


def test_insufficient_liquidity() -> None:
    state = _pool({0: Bin(0, 100), -1: Bin(0, 1_000)})
    with pytest.raises(InsufficientLiquidity):
        quote_exact_in(state, True, 10_000, NOW)
    # no X anywhere at or above the active bin
    with pytest.raises(InsufficientLiquidity):
        quote_exact_in(state, False, 10, NOW)
    with pytest.raises(DlmmError):
        quote_exact_in(state, True, 0, NOW)


_bins = st.dictionaries(
    st.integers(-20, 20),
    st.builds(Bin, st.integers(0, 10**12), st.integers(0, 10**12)),
    min_size=1,
    max_size=12,
)


@given(
    bins=_bins,
    active=st.integers(-20, 20),
    amount=st.integers(1, 10**13),
    swap_for_y=st.booleans(),
    vfc=st.integers(0, 200_000),
    bin_step=st.sampled_from([1, 5, 10, 25, 100]),
)
def test_never_pays_more_than_bins_hold(
    bins: dict[int, Bin], active: int, amount: int, swap_for_y: bool, vfc: int, bin_step: int
) -> None:
    params = FeeParams(variable_fee_control=vfc)
    state = DlmmState(bin_step=bin_step, active_id=active, bins=bins, params=params)
    try:
        quote = quote_exact_in(state, swap_for_y, amount, NOW)
    except InsufficientLiquidity:
        return
    new = quote.new_state
    held = sum((b.amount_y if swap_for_y else b.amount_x) for b in bins.values())
    assert 0 <= quote.amount_out <= held
    assert all(b.amount_x >= 0 and b.amount_y >= 0 for b in new.bins.values())
    # token conservation: vault totals move by exactly (+in, -out)
    before_in, before_out = (
        (state.total_x, state.total_y) if swap_for_y else (state.total_y, state.total_x)
    )
    after_in, after_out = (new.total_x, new.total_y) if swap_for_y else (new.total_y, new.total_x)
    assert (after_in, after_out) == (before_in + amount, before_out - quote.amount_out)
    assert sum(s.amount_in for s in quote.steps) == amount
    assert 0 <= quote.price_impact <= 1
