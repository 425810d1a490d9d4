"""The trigger engine's rate bound is never below what the exact quote pays.

The sorted book skips every order whose limit rate is above the pools' rate bound; a
bound below the truth would miss an order that should trigger. So: for random pools
(CP-Swap with and without creator fees, DLMM with random bins and volatility) and random
amounts, ``out(a) <= a * bound``, and the bound is tight for small amounts (it is the
marginal rate, not a loose cap).
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from dexmath import cpmm, dlmm
from pipeline.trigger_curves import CpmmCurve, DlmmCurve, PairView

A, B = "mintA", "mintB"
reserves = st.integers(min_value=1_000, max_value=10**15)
amounts = st.integers(min_value=1, max_value=10**13)


@st.composite
def cpmm_curves(draw: st.DrawFn) -> CpmmCurve:
    rates = cpmm.FeeRates(
        trade_fee_rate=draw(st.integers(0, 100_000)),
        protocol_fee_rate=draw(st.integers(0, 200_000)),
        fund_fee_rate=draw(st.integers(0, 50_000)),
        creator_fee_rate=draw(st.integers(0, 20_000)),
        creator_fee_on_input=draw(st.booleans()))
    return CpmmCurve(A, B, draw(reserves), draw(reserves), rates)


@st.composite
def dlmm_curves(draw: st.DrawFn) -> DlmmCurve:
    bin_step = draw(st.sampled_from([1, 5, 10, 25, 100]))
    active = draw(st.integers(-2_000, 2_000))
    width = draw(st.integers(0, 12))
    bins: dict[int, dlmm.Bin] = {}
    for offset in range(-width, width + 1):
        x = draw(st.integers(0, 10**12)) if offset >= 0 else 0
        y = draw(st.integers(0, 10**12)) if offset <= 0 else 0
        bins[active + offset] = dlmm.Bin(x, y)
    params = dlmm.FeeParams(base_factor=draw(st.integers(0, 40_000)),
                            variable_fee_control=draw(st.integers(0, 2_000_000)))
    vol = dlmm.VolatilityState(
        volatility_accumulator=draw(st.integers(0, 350_000)),
        volatility_reference=draw(st.integers(0, 350_000)),
        index_reference=active + draw(st.integers(-20, 20)),
        last_update_timestamp=draw(st.integers(0, 1_000)))
    state = dlmm.DlmmState(bin_step, active, bins, params, vol)
    return DlmmCurve(A, B, state, now=draw(st.integers(1_000, 2_000)))


@settings(max_examples=400, deadline=None)
@given(cpmm_curves(), amounts, st.booleans())
def test_cpmm_never_pays_above_its_rate_bound(curve: CpmmCurve, amount: int,
                                              a_to_b: bool) -> None:
    assert curve.out(a_to_b, amount) <= amount * curve.rate_bound(a_to_b)


@settings(max_examples=400, deadline=None)
@given(dlmm_curves(), amounts, st.booleans())
def test_dlmm_never_pays_above_its_rate_bound(curve: DlmmCurve, amount: int,
                                              a_to_b: bool) -> None:
    assert curve.out(a_to_b, amount) <= amount * curve.rate_bound(a_to_b)


def test_bound_is_the_marginal_rate_not_a_loose_cap() -> None:
    curve = CpmmCurve(A, B, 10**12, 150 * 10**12, cpmm.FeeRates(2_500))
    bound = curve.rate_bound(True)
    assert bound == Fraction(997_500, 1_000_000) * 150
    small = 10**6
    # a trade of 1e-6 of the pool pays within 0.01% of the bound
    assert curve.out(True, small) >= small * bound * Fraction(9_999, 10_000)


def test_pair_view_is_the_best_pool_in_the_asked_direction() -> None:
    cheap = CpmmCurve(A, B, 10**12, 150 * 10**12, cpmm.FeeRates(2_500))
    dear = CpmmCurve(B, A, 151 * 10**12, 10**12, cpmm.FeeRates(2_500))  # stored reversed
    view = PairView.of([cheap, dear])
    assert view.best_out(A, B, 10**9) == max(cheap.out(True, 10**9), dear.out(False, 10**9))
    assert view.best_out(A, B, 10**9) == dear.out(False, 10**9)
    assert view.rate_bound(A, B) == dear.rate_bound(False)
    assert view.rate_bound(B, A) == max(cheap.rate_bound(False), dear.rate_bound(True))
    assert view.best_out(A, "other", 10**9) == 0
    assert view.rate_bound(A, "other") == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(cpmm_curves(), dlmm_curves()), min_size=1, max_size=4), amounts,
       st.booleans())
def test_pruned_best_out_is_the_maximum_over_every_curve(
        curves: list[CpmmCurve | DlmmCurve], amount: int, a_to_b: bool) -> None:
    view = PairView.of(curves)
    tin, tout = (A, B) if a_to_b else (B, A)
    assert view.best_out(tin, tout, amount) == max(c.out(a_to_b, amount) for c in curves)
