"""Price guards: refuse a quote whose price is not plausible, before anything is signed.

Slippage (``min_out``) only bounds the distance between the *quote* and the fill; it says
nothing about whether the quote itself is sane. A wrecked pool once filled orders at 400-1,300x
the fair price within slippage. These checks compare the winning quote with three things:

1. **Its own price impact.** Jupiter's ``priceImpactPct`` is a decimal *fraction* of 1 despite
   its name ("0.0123" = 1.23 %; Jupiter's own UI multiplies it by 100); the local market
   reports the same (``1 - out / (post-fee input at the pre-trade spot price)``). A quote
   response carries no spot price, so when the executor can afford one more ``/quote`` it
   passes a small *spot quote* from the same pool and the impact is also measured as
   ``1 - rate(order) / rate(spot quote)`` (fees cancel); the larger of the two counts.
2. **The other venues,** quoted for the same amount. Their *effective* rates legitimately
   differ by their depth (a thin pool's impact), so the comparison is between pre-trade
   rates: a spot quote's rate, else ``rate / (1 - reported impact)``. Size-independent, so a
   good order is not refused because the other venue is shallow. The winner is refused only
   when no other venue corroborates it (with two venues: when it deviates from the other).
3. **The recent executed price** of the pair (what the chain really paid, from other sizes),
   against the quote's *effective* rate: no venue's word is involved. Fills of other sizes
   differ from ours by the price impacts involved, so the allowed deviation is the bound
   *plus* the order's impact limit: by default 5 % + 3 % = 8 %, which passes a 3 %-impact
   order against small fills and refuses anything 1.09x off (a 400x error is 39,900 %).

Every number is an int or a :class:`~fractions.Fraction`; floats never touch money. Deviation
is ``max(a, b) / min(a, b) - 1`` in bps, symmetric: a price 400x too good is as wrong as one
400x too bad (a broken pool, a decimals error), and routing already picks the best output.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from pipeline.errors import PriceImpactTooHigh, QuoteDeviation
from pipeline.model import Quote

BPS = 10_000


@dataclass(frozen=True, slots=True)
class PriceLimits:
    """Bounds in bps. Defaults: 3 % impact (a trader's usual "high impact" warning); 5 %
    between venues (arbitrage keeps healthy pools within their fees, <1 %; the local drift
    keeps them within ~3.5 % at 5 sigma); 5 % + the order's impact from recent fills within
    ``RecentPrices.max_age_ms`` (fees, impact differences and two minutes of drift)."""

    default_max_price_impact_bps: int = 300
    max_venue_deviation_bps: int = 500
    max_recent_deviation_bps: int = 500

    def __post_init__(self) -> None:
        if not 0 <= self.default_max_price_impact_bps <= BPS:
            raise ValueError("default_max_price_impact_bps must be within 0..10000")
        if self.max_venue_deviation_bps < 0 or self.max_recent_deviation_bps < 0:
            raise ValueError("deviation bounds must not be negative")


def rate(quote: Quote) -> Fraction:
    """Output per input in base units, exact."""
    return Fraction(quote.out_amount, quote.in_amount)


def deviation_bps(a: Fraction, b: Fraction) -> Fraction:
    """How far apart two positive rates are: ``max/min - 1`` in bps, exact."""
    lo, hi = sorted((a, b))
    return (hi / lo - 1) * BPS


def reported_impact(quote: Quote) -> Fraction | None:
    """The venue's ``priceImpactPct`` as a fraction of 1 (negative = price improvement -> 0);
    None when unreadable. ``Fraction`` parses the decimal string exactly."""
    try:
        value = Fraction(quote.price_impact_pct.strip())
    except (ValueError, ZeroDivisionError, AttributeError):
        return None
    return max(value, Fraction(0))


def _usable_spot(quote: Quote, spot: Quote | None) -> Quote | None:
    """A spot quote is the same pool, for a smaller amount, with an output."""
    if spot is None or spot.venue != quote.venue or spot.amm_key != quote.amm_key:
        return None
    return spot if 0 < spot.in_amount < quote.in_amount and spot.out_amount > 0 else None


def price_impact(quote: Quote, spot: Quote | None = None) -> Fraction | None:
    """The larger of the venue's word and what a spot quote of the same pool shows."""
    reported = reported_impact(quote)
    spot = _usable_spot(quote, spot)
    if spot is None:
        return reported
    measured = max(Fraction(0), 1 - rate(quote) / rate(spot))
    return measured if reported is None else max(reported, measured)


def pre_trade_rate(quote: Quote, spot: Quote | None = None) -> Fraction | None:
    """The venue's price before this order moves it; None when it cannot be told."""
    if quote.out_amount <= 0 or quote.in_amount <= 0:
        return None
    usable = _usable_spot(quote, spot)
    if usable is not None:
        return rate(usable)
    impact = reported_impact(quote)
    return None if impact is None or impact >= 1 else rate(quote) / (1 - impact)


def _pct(bps: Fraction | int, *, up: bool = False) -> str:
    """bps as "41.20 %"; an observed value rounds up so it never prints equal to its limit."""
    hundredths = Fraction(bps)
    cents = -(-hundredths.numerator // hundredths.denominator) if up else round(hundredths)
    return f"{cents // 100}.{cents % 100:02d} %"


def _apart(a: Fraction, b: Fraction) -> str:
    """"39900.00 % (400x)": the ratio too once it is a multiple, the form a person checks."""
    lo, hi = sorted((a, b))
    tenths = round(hi * 10 / lo)
    ratio = f" ({tenths // 10}.{tenths % 10}x)" if hi >= 2 * lo else ""
    return f"{_pct(deviation_bps(a, b), up=True)}{ratio}"


def _ui_rate(value: Fraction, decimals_in: int, decimals_out: int, symbols: tuple[str, str]) -> str:
    ui = value * 10**decimals_in / 10**decimals_out
    with localcontext() as ctx:
        ctx.prec = 28
        text = format(Decimal(ui.numerator) / Decimal(ui.denominator), ".6g")
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".")
    return f"1 {symbols[0]} = {text} {symbols[1]}"


def check_price(best: Quote, quotes: Sequence[Quote], *, limits: PriceLimits,
                decimals_in: int, decimals_out: int, max_price_impact_bps: int | None = None,
                recent_rate: Fraction | None = None, spot_quotes: Sequence[Quote] = (),
                symbols: tuple[str, str] = ("in", "out")) -> None:
    """Raise :class:`PriceImpactTooHigh` or :class:`QuoteDeviation` unless ``best`` is plausible.

    ``quotes``: every venue's quote for this order (``best`` among them); ``recent_rate``:
    :meth:`RecentPrices.rate` for the pair; ``spot_quotes``: optional small-amount quotes of
    the same pools; ``max_price_impact_bps``: the order's own limit (None = the default).
    """
    if best.in_amount <= 0 or best.out_amount <= 0:
        raise QuoteDeviation(message=f"{best.venue} quoted {best.out_amount} for "
                                     f"{best.in_amount}: not a price")
    own = max_price_impact_bps is not None
    limit = max_price_impact_bps if own else limits.default_max_price_impact_bps
    assert limit is not None
    if not 0 <= limit <= BPS:
        raise ValueError(f"max_price_impact_bps {limit} is outside 0..10000")
    spots = {(s.venue, s.amm_key): s for s in spot_quotes}

    def fmt(value: Fraction) -> str:
        return _ui_rate(value, decimals_in, decimals_out, symbols)

    whose = "the order's limit" if own else "the default limit"

    impact = price_impact(best, spots.get((best.venue, best.amm_key)))
    if impact is None:
        raise PriceImpactTooHigh(message=f"price impact on {best.venue} is unknown (the venue "
                                         f"reported {best.price_impact_pct!r}); {whose} is "
                                         f"{_pct(limit)}")
    if impact >= 1 or impact * BPS > limit:  # 100 % impact is no price, whatever the limit
        raise PriceImpactTooHigh(message=f"price impact {_pct(impact * BPS, up=True)} on "
                                         f"{best.venue} exceeds {whose} {_pct(limit)}")

    ours = pre_trade_rate(best, spots.get((best.venue, best.amm_key)))
    assert ours is not None  # out > 0 and impact < 1 here
    others: list[tuple[Quote, Fraction]] = []
    for other in quotes:
        other_rate = pre_trade_rate(other, spots.get((other.venue, other.amm_key)))
        if other.venue != best.venue and other_rate is not None:
            others.append((other, other_rate))
    bound = limits.max_venue_deviation_bps
    if others and all(deviation_bps(ours, r) > bound for _, r in others):
        q, r = min(others, key=lambda o: deviation_bps(ours, o[1]))
        raise QuoteDeviation(message=f"{best.venue}'s price {fmt(ours)} is {_apart(ours, r)} "
                                     f"away from {q.venue}'s {fmt(r)} (pre-trade prices); "
                                     f"the bound is {_pct(bound)}")

    if recent_rate is not None and recent_rate > 0:
        allowed = limits.max_recent_deviation_bps + limit
        if deviation_bps(rate(best), recent_rate) > allowed:
            raise QuoteDeviation(message=f"{best.venue} quotes {fmt(rate(best))}, "
                                         f"{_apart(rate(best), recent_rate)} away from the "
                                         f"recent executed price {fmt(recent_rate)}; the bound "
                                         f"is {_pct(allowed)}")


class RecentPrices:
    """Executed rates per (token_in, token_out), newest ``max_samples``, younger than
    ``max_age_ms``. The executor records each confirmed order's *actual* amounts (the chain's
    word, not a venue's). :meth:`rate` is the median, so one odd fill cannot poison it.
    Directions are kept apart: a buy's and a sell's rates differ by fees and impact twice."""

    def __init__(self, *, max_age_ms: int = 120_000, max_samples: int = 32,
                 clock: Callable[[], int] | None = None) -> None:
        self.max_age_ms = max_age_ms
        self._max = max_samples
        self._clock = clock or (lambda: time.monotonic_ns() // 1_000_000)
        self._samples: dict[tuple[str, str], deque[tuple[int, Fraction]]] = {}

    def record(self, token_in: str, token_out: str, amount_in: int, amount_out: int) -> None:
        if amount_in <= 0 or amount_out <= 0:
            return
        samples = self._samples.setdefault((token_in, token_out), deque(maxlen=self._max))
        samples.append((self._clock(), Fraction(amount_out, amount_in)))

    def rate(self, token_in: str, token_out: str) -> Fraction | None:
        samples = self._samples.get((token_in, token_out))
        if not samples:
            return None
        oldest = self._clock() - self.max_age_ms
        while samples and samples[0][0] < oldest:
            samples.popleft()
        ordered = sorted(r for _, r in samples)
        if not ordered:
            return None
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
