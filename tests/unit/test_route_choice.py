"""Route choice by net output (pipeline/route_choice.py): single pools against a split of
the order between two venues' exact curves, the cost of an extra leg, and the minimum
output each leg's program enforces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dexmath.cpmm import CpmmState, quote_exact_in
from pipeline import routing
from pipeline.model import Quote, Venue
from pipeline.route_choice import choose_route, cost_in_output
from pipeline.tokens import SOL, USDC, USDT


class CpCurve:
    """A :class:`pipeline.model.PoolCurve` over an exact CP-Swap pool (a test double of a
    pool venue's curve)."""

    def __init__(self, venue: Venue, reserve_in: int, reserve_out: int, fee: int = 2_500,
                 cost: int = 0) -> None:
        self.venue, self.cost = venue, cost
        self.state = CpmmState(reserve_in, reserve_out, fee)

    def out(self, amount_in: int) -> int:
        if amount_in <= 0:
            return 0
        try:
            return quote_exact_in(self.state, True, amount_in).amount_out
        except ValueError:
            return 0

    def at(self, amount_in: int, min_out: int) -> Quote:
        return Quote(self.venue, amount_in, self.out(amount_in), 0, SOL.mint, "0.001",
                     f"{self.venue}-pool", 7, raw={"otherAmountThreshold": str(min_out)},
                     cost_lamports=self.cost, curve=self)

    def quote(self, amount_in: int, slippage_bps: int = 50) -> Quote:
        return self.at(amount_in, routing.min_out(self.out(amount_in), slippage_bps))


def route(curves: list[CpCurve], amount: int, *, token_in: str = SOL.mint,
          token_out: str = USDC.mint, slippage_bps: int = 50):
    return choose_route([c.quote(amount, slippage_bps) for c in curves], token_in=token_in,
                        token_out=token_out, slippage_bps=slippage_bps)


def test_a_large_order_on_two_equal_pools_is_split_and_its_legs_add_up() -> None:
    ray = CpCurve(Venue.RAYDIUM, 10**12, 150 * 10**9)
    met = CpCurve(Venue.METEORA, 10**12, 150 * 10**9)
    choice = route([ray, met], 10**11)
    assert choice.split
    a, b = choice.legs
    assert (a.venue, b.venue) == (Venue.RAYDIUM, Venue.METEORA)
    assert a.amount_in + b.amount_in == 10**11  # conservation
    assert a.fraction_bps + b.fraction_bps == 10_000
    assert abs(a.fraction_bps - 5_000) <= 10
    assert choice.quote.out_amount == a.expected_out + b.expected_out > ray.out(10**11)
    assert [leg.in_amount for leg in choice.quote.legs] == [a.amount_in, b.amount_in]


@settings(max_examples=80, deadline=None)
@given(ra=st.integers(10**6, 10**13), rb=st.integers(10**6, 10**13),
       oa=st.integers(10**6, 10**13), ob=st.integers(10**6, 10**13),
       amount=st.integers(1, 10**12), slippage=st.integers(0, 5_000),
       cost=st.integers(0, 10**7))
def test_the_route_is_never_worse_than_the_best_single_pool_and_its_minimums_hold(
        ra: int, rb: int, oa: int, ob: int, amount: int, slippage: int, cost: int) -> None:
    curves = [CpCurve(Venue.RAYDIUM, ra, oa, cost=cost),
              CpCurve(Venue.METEORA, rb, ob, 3_000, cost=cost)]
    if max(c.out(amount) for c in curves) == 0:
        return
    choice = route(curves, amount, slippage_bps=slippage)

    def net(out: int, lamports: int) -> int:
        c = cost_in_output(lamports, out, amount, SOL.mint, USDC.mint)
        assert c is not None
        return out - c

    best_single = max(net(c.out(amount), cost) for c in curves if c.out(amount) > 0)
    assert choice.net_out >= best_single
    assert sum(leg.amount_in for leg in choice.legs) == amount
    assert sum(leg.fraction_bps for leg in choice.legs) == 10_000
    assert choice.min_out == routing.min_out(choice.quote.out_amount, slippage)
    assert sum(leg.min_out for leg in choice.legs) == choice.min_out
    for leg in choice.legs:
        assert routing.min_out(leg.expected_out, slippage) <= leg.min_out <= leg.expected_out
    if choice.split:
        assert choice.net_out > best_single  # a split is taken only when it pays
        assert all(leg.amount_in > 0 and leg.expected_out > 0 for leg in choice.legs)
        for leg, quote in zip(choice.legs, choice.quote.legs, strict=True):
            assert int(str(quote.raw["otherAmountThreshold"])) == leg.min_out


def test_tiny_orders_go_whole_to_one_pool() -> None:
    ray = CpCurve(Venue.RAYDIUM, 10**12, 10**12)
    met = CpCurve(Venue.METEORA, 10**12, 10**12)
    for amount in (3, 7, 100, 1_000):  # a split pays a fee rounded up on each leg
        choice = route([ray, met], amount, slippage_bps=0)
        assert not choice.split
        assert choice.quote.out_amount == ray.out(amount) > 0


def test_the_extra_legs_priority_fee_can_make_one_pool_the_better_route() -> None:
    ray = CpCurve(Venue.RAYDIUM, 10**12, 150 * 10**9)
    met = CpCurve(Venue.METEORA, 10**12, 150 * 10**9)
    gain = route([ray, met], 10**10).quote.out_amount - ray.out(10**10)
    assert gain > 0
    # the leg's fee in output units through the route's own rate (SOL in): ~ 0.15 out/lamport
    cheap = CpCurve(Venue.RAYDIUM, 10**12, 150 * 10**9, cost=gain)
    dear = CpCurve(Venue.METEORA, 10**12, 150 * 10**9, cost=gain)
    assert route([cheap, dear], 10**10).split  # costs gain lamports ~ 0.15 gain out each
    pricey = [CpCurve(v, 10**12, 150 * 10**9, cost=10 * gain)
              for v in (Venue.RAYDIUM, Venue.METEORA)]
    assert not route(pricey, 10**10).split


def test_cost_conversion_is_integer_and_by_the_routes_own_rate() -> None:
    assert cost_in_output(5_000, 123, 456, USDC.mint, SOL.mint) == 5_000  # SOL out: as is
    assert cost_in_output(5_000, 150_000, 10**9, SOL.mint, USDC.mint) == 1  # ceil(0.75)
    assert cost_in_output(0, 1, 1, USDC.mint, USDT.mint) == 0
    assert cost_in_output(5_000, 1, 1, USDC.mint, USDT.mint) is None


def test_without_a_sol_side_a_split_that_costs_fees_is_not_taken() -> None:
    curves = [CpCurve(v, 10**12, 10**12, cost=1) for v in (Venue.RAYDIUM, Venue.METEORA)]
    assert not route(curves, 10**11, token_in=USDC.mint, token_out=USDT.mint).split
    free = [CpCurve(v, 10**12, 10**12) for v in (Venue.RAYDIUM, Venue.METEORA)]
    assert route(free, 10**11, token_in=USDC.mint, token_out=USDT.mint).split


def test_quotes_without_curves_are_never_split_and_compare_by_net() -> None:
    plain = [Quote(Venue.RAYDIUM, 1_000, 500, 0, SOL.mint, "0", "r", 1),
             Quote(Venue.METEORA, 1_000, 499, 0, SOL.mint, "0", "m", 1)]
    choice = choose_route(plain, token_in=USDC.mint, token_out=SOL.mint, slippage_bps=50)
    assert not choice.split and choice.quote.venue is Venue.RAYDIUM
    assert choice.legs[0].fraction_bps == 10_000 and choice.legs[0].pool == "r"
    costly = [Quote(Venue.RAYDIUM, 1_000, 500, 0, SOL.mint, "0", "r", 1, cost_lamports=5),
              Quote(Venue.METEORA, 1_000, 499, 0, SOL.mint, "0", "m", 1, cost_lamports=1)]
    choice = choose_route(costly, token_in=USDC.mint, token_out=SOL.mint, slippage_bps=50)
    assert choice.quote.venue is Venue.METEORA and choice.net_out == 498
