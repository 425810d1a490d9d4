"""Price guards: normal orders pass, the issue's 400x price is refused, limits are exact."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import PermanentError, PriceImpactTooHigh, QuoteDeviation
from pipeline.guards import (
    PriceLimits,
    RecentPrices,
    check_price,
    deviation_bps,
    price_impact,
    reported_impact,
)
from pipeline.model import Quote, Venue

R, M = Venue.RAYDIUM, Venue.METEORA
SOL_IN = 1_500_000_000  # 1.5 SOL in lamports
FAIR_OUT = 225_000_000  # 225 USDC (6 decimals): 150 USDC/SOL
LIMITS = PriceLimits()


def q(venue: Venue, out: int, impact: str = "0", *, amount: int = SOL_IN,
      amm: str | None = None) -> Quote:
    return Quote(venue, amount, out, 0, "mint", impact, amm or f"amm-{venue}", 1)


def check(best: Quote, *others: Quote, **kw: object) -> None:
    kw.setdefault("decimals_in", 9)
    kw.setdefault("decimals_out", 6)
    kw.setdefault("symbols", ("SOL", "USDC"))
    check_price(best, [best, *others], limits=LIMITS, **kw)  # type: ignore[arg-type]


# ---- normal orders pass ----

def test_normal_order_passes() -> None:
    best = q(R, FAIR_OUT * 99 // 100, "0.01")             # 1 % impact
    other = q(M, FAIR_OUT * 99 // 100 * 998 // 1000, "0.01")  # 0.2 % below
    check(best, other, recent_rate=Fraction(FAIR_OUT, SOL_IN))


def test_thin_other_venue_does_not_refuse_a_good_order() -> None:
    # Meteora is shallow for this size: 40 % impact, so its effective rate is 40 % worse, but
    # its pre-trade rate (out / (1 - impact)) is the same market: like for like, no deviation.
    check(q(R, FAIR_OUT * 99 // 100, "0.01"), q(M, FAIR_OUT * 60 // 100, "0.4"))


def test_large_order_near_its_limit_passes_against_small_recent_fills() -> None:
    recent = Fraction(FAIR_OUT * 9975, SOL_IN * 10_000)  # small fills: fee only
    check(q(R, FAIR_OUT * 97 // 100, "0.03"), recent_rate=recent)


# ---- the case: 400x the fair price ----

def test_400x_price_is_refused_against_the_other_venue() -> None:
    with pytest.raises(QuoteDeviation) as exc:
        check(q(R, FAIR_OUT * 400, "0.001"), q(M, FAIR_OUT, "0.001"))
    msg = exc.value.message
    assert exc.value.code == "quote_deviation"
    assert "1 SOL = 60060.1 USDC" in msg and "1 SOL = 150.15 USDC" in msg, msg
    assert "raydium" in msg and "meteora" in msg and "the bound is 5.00 %" in msg, msg
    assert "39900.00 % (400.0x)" in msg, msg


def test_400x_price_is_refused_against_the_recent_price_with_one_venue() -> None:
    with pytest.raises(QuoteDeviation) as exc:
        check(q(R, FAIR_OUT * 400, "0.001"), recent_rate=Fraction(FAIR_OUT, SOL_IN))
    assert "recent executed price 1 SOL = 150 USDC" in exc.value.message
    assert "the bound is 8.00 %" in exc.value.message  # 5 % + the order's 3 % impact


def test_400x_too_low_is_refused_too() -> None:
    with pytest.raises(QuoteDeviation):
        check(q(R, FAIR_OUT // 400), recent_rate=Fraction(FAIR_OUT, SOL_IN))


def test_high_impact_is_refused_with_a_readable_message() -> None:
    with pytest.raises(PriceImpactTooHigh) as exc:
        check(q(R, FAIR_OUT, "0.412"), max_price_impact_bps=300)
    assert exc.value.code == "price_impact_too_high"
    assert isinstance(exc.value, PermanentError) and not exc.value.retriable
    assert exc.value.message == "price impact 41.20 % on raydium exceeds the order's limit 3.00 %"


# ---- exact boundaries ----

@pytest.mark.parametrize(("impact", "own", "ok"), [
    ("0.03", None, True), ("0.0301", None, False),        # default 300 bps
    ("0.015", 150, True), ("0.0151", 150, False),         # the order's own 150 bps
    ("0", 0, True), ("0.0001", 0, False),
    ("-0.002", None, True),                               # price improvement counts as 0
    ("1", 10_000, False),                                 # 100 %: no price at any limit
])
def test_impact_limit_is_exact(impact: str, own: int | None, ok: bool) -> None:
    best = q(R, FAIR_OUT, impact)
    if ok:
        check(best, max_price_impact_bps=own)
    else:
        with pytest.raises(PriceImpactTooHigh) as exc:
            check(best, max_price_impact_bps=own)
        assert ("the order's limit" if own is not None else "the default limit") in str(exc.value)


def test_impact_just_over_the_limit_never_prints_as_the_limit() -> None:
    with pytest.raises(PriceImpactTooHigh, match=r"price impact 3\.01 % .* limit 3\.00 %"):
        check(q(R, FAIR_OUT, "0.030001"))


@pytest.mark.parametrize(("out", "ok"), [(10_500, True), (10_501, False), (9_524, True),
                                         (9_523, False)])
def test_venue_bound_is_exact(out: int, ok: bool) -> None:
    # 10_000 / 9_524 - 1 = 4.998 % passes; 10_000 / 9_523 - 1 = 5.008 % fails.
    best, other = q(R, out, amount=10_000), q(M, 10_000, amount=10_000)
    if ok:
        check(best, other)
    else:
        with pytest.raises(QuoteDeviation):
            check(best, other)


@pytest.mark.parametrize(("out", "ok"), [(10_800, True), (10_801, False)])
def test_recent_bound_is_exact(out: int, ok: bool) -> None:
    best = q(R, out, amount=10_000)
    if ok:
        check(best, recent_rate=Fraction(1))
    else:
        with pytest.raises(QuoteDeviation):
            check(best, recent_rate=Fraction(1))


# ---- impact is not taken on the venue's word alone ----

def test_spot_quote_reveals_impact_the_venue_understates() -> None:
    spot = q(R, 150_000, amount=1_000_000)                 # 0.001 SOL at 150 USDC/SOL
    best = q(R, FAIR_OUT * 90 // 100, "0.001")              # really 10 % below spot
    assert price_impact(best, spot) == Fraction(1, 10)
    with pytest.raises(PriceImpactTooHigh, match=r"10\.00 %"):
        check(best, spot_quotes=[spot])
    check(best, spot_quotes=[q(R, 150_000, amount=1_000_000, amm="another-pool")],
          max_price_impact_bps=20)  # another pool's quote is no reference: venue's word


def test_spot_quote_is_the_other_venues_pre_trade_price() -> None:
    # Meteora fills this size 40 % worse but claims no impact: by its word it deviates 67 %;
    # its own small quote shows its market price is the same as Raydium's.
    best, thin = q(R, FAIR_OUT), q(M, FAIR_OUT * 60 // 100)
    with pytest.raises(QuoteDeviation):
        check(best, thin)
    check(best, thin, spot_quotes=[q(M, 150_000, amount=1_000_000)])


def test_unreadable_impact_fails_closed_for_the_winner_only() -> None:
    with pytest.raises(PriceImpactTooHigh, match="unknown"):
        check(q(R, FAIR_OUT, "NaN"))
    check(q(R, FAIR_OUT), q(M, FAIR_OUT // 1000, "garbage"))  # a loser's garbage is skipped
    assert reported_impact(q(R, 1, "0.0123")) == Fraction(123, 10_000)
    assert reported_impact(q(R, 1, "-0.002")) == 0  # a price improvement is no impact


def test_a_third_venue_that_agrees_corroborates_the_winner() -> None:
    three = [q(R, FAIR_OUT), q(M, FAIR_OUT // 400), q(M, FAIR_OUT, amm="second-pool")]
    check_price(three[0], three, limits=LIMITS, decimals_in=9, decimals_out=6)


def test_not_a_price() -> None:
    with pytest.raises(QuoteDeviation):
        check(q(R, 0))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        PriceLimits(default_max_price_impact_bps=10_001)
    with pytest.raises(ValueError):
        PriceLimits(max_venue_deviation_bps=-1)
    with pytest.raises(ValueError):
        check(q(R, FAIR_OUT), max_price_impact_bps=-1)


# ---- exact at any size: no float anywhere ----

@given(st.integers(1, 2**64 - 1), st.integers(2, 2**64 - 1))
def test_one_base_unit_apart_is_seen_at_any_size(amount: int, out: int) -> None:
    # As floats, 2**64-1 and 2**64-2 are equal; exact arithmetic sees one unit of difference.
    strict = PriceLimits(max_venue_deviation_bps=0, max_recent_deviation_bps=0)
    best, other = q(R, out, amount=amount), q(M, out - 1, amount=amount)
    assert deviation_bps(Fraction(out, amount), Fraction(out - 1, amount)) == Fraction(
        10_000, out - 1)
    with pytest.raises(QuoteDeviation):
        check_price(best, [best, other], limits=strict, decimals_in=9, decimals_out=6)
    check_price(best, [best, q(M, out, amount=amount)], limits=strict, decimals_in=9,
                decimals_out=6, recent_rate=Fraction(out, amount))


@given(st.integers(1, 2**64 - 1), st.integers(1, 2**64 - 1), st.integers(2, 1300))
def test_a_multiple_of_the_fair_price_is_always_refused(amount: int, fair: int, k: int) -> None:
    best = q(R, fair * k, amount=amount)
    with pytest.raises(QuoteDeviation):
        check_price(best, [best, q(M, fair, amount=amount)], limits=LIMITS, decimals_in=9,
                    decimals_out=6)
    with pytest.raises(QuoteDeviation):
        check_price(best, [best], limits=LIMITS, decimals_in=9, decimals_out=6,
                    recent_rate=Fraction(fair, amount))


# ---- RecentPrices ----

class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def test_recent_is_the_median_of_live_samples_per_direction() -> None:
    clock = Clock()
    recent = RecentPrices(max_age_ms=1_000, max_samples=3, clock=clock)
    assert recent.rate("SOL", "USDC") is None
    recent.record("SOL", "USDC", 10, 1_500)
    recent.record("SOL", "USDC", 10, 60_000)   # one odd fill does not move the median far
    recent.record("SOL", "USDC", 10, 1_510)
    recent.record("SOL", "USDC", 0, 5)         # not a fill
    assert recent.rate("SOL", "USDC") == 151
    assert recent.rate("USDC", "SOL") is None  # directions kept apart
    recent.record("SOL", "USDC", 10, 1_490)    # max_samples=3 drops the first
    assert recent.rate("SOL", "USDC") == 151
    clock.ms = 500
    recent.record("SOL", "USDC", 10, 1_520)
    assert recent.rate("SOL", "USDC") == 151   # [149, 151, 152]
    clock.ms = 1_001
    assert recent.rate("SOL", "USDC") == 152   # the samples of t=0 aged out
    clock.ms = 1_501
    assert recent.rate("SOL", "USDC") is None


def test_recent_median_of_an_even_count_is_the_mid_point() -> None:
    recent = RecentPrices(clock=Clock())
    for out in (1_490, 1_500, 1_510, 1_520):
        recent.record("SOL", "USDC", 10, out)
    assert recent.rate("SOL", "USDC") == Fraction(1_500 + 1_510, 20)
