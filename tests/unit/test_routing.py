from __future__ import annotations

import pytest

from pipeline.errors import InvalidOrder, NoRoute
from pipeline.model import Quote, Venue
from pipeline.routing import choose_best, min_out, spread_bps


def q(venue: Venue, out: int, fee: int = 0) -> Quote:
    return Quote(venue, 1_000, out, fee, "mint", "0", "amm", 1)


def test_best_net_output_wins() -> None:
    assert choose_best([q(Venue.RAYDIUM, 100), q(Venue.METEORA, 101)]).venue is Venue.METEORA
    assert choose_best([q(Venue.RAYDIUM, 102), q(Venue.METEORA, 101)]).venue is Venue.RAYDIUM


def test_tie_breaks_on_fee_then_fixed_order() -> None:
    assert choose_best([q(Venue.RAYDIUM, 100, fee=5),
                        q(Venue.METEORA, 100, fee=3)]).venue is Venue.METEORA
    assert choose_best([q(Venue.METEORA, 100), q(Venue.RAYDIUM, 100)]).venue is Venue.RAYDIUM


def test_no_usable_quote_is_no_route() -> None:
    with pytest.raises(NoRoute):
        choose_best([])
    with pytest.raises(NoRoute):
        choose_best([q(Venue.RAYDIUM, 0)])


@pytest.mark.parametrize(("expected", "bps", "floor"), [
    (1_000_000, 50, 995_000),       # exact
    (999, 50, 994),                 # 994.005 rounds down
    (1, 5000, 0),                   # half of one unit floors to zero
    (123_456_789, 0, 123_456_789),  # zero tolerance
    (10_000, 5000, 5_000),
])
def test_min_out_floors(expected: int, bps: int, floor: int) -> None:
    assert min_out(expected, bps) == floor


@pytest.mark.parametrize("bps", [-1, 5001])
def test_min_out_rejects_bad_tolerance(bps: int) -> None:
    with pytest.raises(InvalidOrder):
        min_out(100, bps)


def test_spread() -> None:
    assert spread_bps([q(Venue.RAYDIUM, 10_000), q(Venue.METEORA, 10_050)]) == 50
    assert spread_bps([q(Venue.RAYDIUM, 10_000)]) is None
