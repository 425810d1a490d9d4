"""Routing math: pure functions that choose a venue and bound the output.

Quotes from Jupiter-shaped venues are already net of the venue's fees, so the
best route is the one with the largest ``out_amount``; ties go to the lower
fee, then to a fixed venue order so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import InvalidOrder, NoRoute
from pipeline.model import Quote, Venue

BPS = 10_000
MAX_SLIPPAGE_BPS = 5_000
_VENUE_ORDER = {Venue.RAYDIUM: 0, Venue.METEORA: 1}


def min_out(expected_out: int, slippage_bps: int) -> int:
    """Smallest acceptable output: floor(expected * (1 - bps/10000)), as Jupiter computes it."""
    if not 0 <= slippage_bps <= MAX_SLIPPAGE_BPS:
        raise InvalidOrder("invalid_slippage", f"slippageBps {slippage_bps} is outside 0..5000",
                           field="slippageBps")
    if expected_out < 0:
        raise ValueError("expected_out must not be negative")
    return expected_out * (BPS - slippage_bps) // BPS


def choose_best(quotes: Sequence[Quote]) -> Quote:
    """The quote with the best net output; :class:`NoRoute` when none can fill."""
    usable = [q for q in quotes if q.out_amount > 0]
    if not usable:
        raise NoRoute(message="no venue returned a usable quote for this pair and size")
    return max(usable, key=lambda q: (q.out_amount, -q.fee_amount, -_VENUE_ORDER[q.venue]))


def spread_bps(quotes: Sequence[Quote]) -> int | None:
    """How much better the best quote is than the worst, in bps of the worst (for dashboards)."""
    outs = [q.out_amount for q in quotes if q.out_amount > 0]
    if len(outs) < 2:
        return None
    return (max(outs) - min(outs)) * BPS // min(outs)
