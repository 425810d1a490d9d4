"""Choosing an order's route by net output: each venue's best pool alone, or a split of
the order between the best pools of two engine-built venues, whichever leaves the trader
the most once the route's own costs are paid. Pure: integers in, a route out.

**Net output.** Every route is one transaction with one signature, so the network fee
(5000 lamports per signature) is the same for all and left out. What differs is what the
route's swap instructions add: their compute units, so their priority fee. A venue states
that as ``Quote.cost_lamports`` (estimated units of its leg times the priority price it read);
a split pays both legs'. The cost is turned into output units with integers only:

* output is SOL: the lamports themselves;
* input is SOL: through the route's own rate, ``ceil(cost · out / in)`` (what those
  lamports would have bought on this very route);
* neither: there is no rate from SOL in the order's own quotes, so the cost cannot be
  stated; single routes are then compared by output (each pays about one leg) and no
  split is taken unless it costs nothing (a zero priority price), since it could not be
  shown to pay for its extra leg.

**Split.** Which two pools: each venue's best pool (a venue answers with its best pool
for the order; within a venue every leg costs the same estimate, so best output is best
net). The split is searched between the two best venues that expose exact curves
(:mod:`pipeline.split`, exact integer search), and taken only when its net beats the best
single route's. Splitting between two pools of the same program is not searched: the
venues answer with one pool each, and the issue asks for the split across the two
programs; a second pool of one program would need its own curve in the quote.

**Minimum out per leg.** The order's minimum ``floor(expected · (1 - slippage))`` is
divided between the legs: leg a gets its own ``floor(out_a · (1 - slippage))``, leg b the
rest; since ``floor(x + y) >= floor(x) + floor(y)`` leg b's share is at least its own
slippage floor and at most its expected output. Each program then refuses its leg below
its share, so together they enforce the order-level minimum exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pipeline import routing
from pipeline.errors import NoRoute
from pipeline.model import Quote, RouteLeg, Venue
from pipeline.split import best_split
from pipeline.tokens import WSOL_MINT

BPS = 10_000
_VENUE_ORDER = {Venue.RAYDIUM: 0, Venue.METEORA: 1}


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The chosen route: ``quote`` is one venue's quote, or for a split a quote whose
    ``legs`` are the two pools' quotes; ``min_out`` is the order-level minimum."""

    quote: Quote
    min_out: int
    legs: tuple[RouteLeg, ...]
    net_out: int

    @property
    def split(self) -> bool:
        return len(self.legs) > 1


def cost_in_output(cost_lamports: int, out_amount: int, in_amount: int, token_in: str,
                   token_out: str) -> int | None:
    """``cost_lamports`` in output units (see the module docstring); None if unknowable."""
    if cost_lamports == 0:
        return 0
    if token_out == WSOL_MINT:
        return cost_lamports
    if token_in == WSOL_MINT and in_amount > 0:
        return -(-cost_lamports * out_amount // in_amount)
    return None


def net_out(quote: Quote, token_in: str, token_out: str) -> int:
    """Output minus the route's own cost; the output itself when the cost cannot be told."""
    cost = cost_in_output(quote.cost_lamports, quote.out_amount, quote.in_amount, token_in,
                          token_out)
    return quote.out_amount - (cost or 0)


def single_leg(quote: Quote, min_out: int) -> tuple[RouteLeg, ...]:
    return (RouteLeg(quote.venue, quote.amm_key, quote.in_amount, quote.out_amount, min_out,
                     BPS),)


def choose_route(quotes: Sequence[Quote], *, token_in: str, token_out: str,
                 slippage_bps: int) -> RouteChoice:
    """The route with the best net output: :class:`NoRoute` when nothing can fill."""
    usable = [q for q in quotes if q.out_amount > 0]
    if not usable:
        raise NoRoute(message="no venue returned a usable quote for this pair and size")
    best = max(usable, key=lambda q: (net_out(q, token_in, token_out), q.out_amount,
                                      -q.fee_amount, -_VENUE_ORDER[q.venue]))
    best_net = net_out(best, token_in, token_out)
    order_min = routing.min_out(best.out_amount, slippage_bps)
    single = RouteChoice(best, order_min, single_leg(best, order_min), best_net)
    curved = sorted((q for q in usable if q.curve is not None),
                    key=lambda q: (-net_out(q, token_in, token_out), _VENUE_ORDER[q.venue]))
    if len(curved) < 2 or curved[0].venue == curved[1].venue:
        return single
    split = _split(curved[0], curved[1], token_in, token_out, slippage_bps)
    if split is None or split.net_out <= best_net:
        return single
    return split


def _split(a: Quote, b: Quote, token_in: str, token_out: str, slippage_bps: int
           ) -> RouteChoice | None:
    """The best division of the order between pools a and b, if it has two legs and its
    cost can be stated."""
    assert a.curve is not None and b.curve is not None
    total = a.in_amount
    if b.in_amount != total or total < 2:
        return None
    found = best_split(a.curve.out, b.curve.out, total)
    if found.amount_a == 0 or found.amount_b == 0 or found.out_a == 0 or found.out_b == 0:
        return None
    cost_lamports = a.cost_lamports + b.cost_lamports
    cost = cost_in_output(cost_lamports, found.out, total, token_in, token_out)
    if cost is None:
        return None
    order_min = routing.min_out(found.out, slippage_bps)
    min_a = routing.min_out(found.out_a, slippage_bps)
    min_b = order_min - min_a
    leg_a = a.curve.at(found.amount_a, min_a)
    leg_b = b.curve.at(found.amount_b, min_b)
    if (leg_a.out_amount, leg_b.out_amount) != (found.out_a, found.out_b):
        raise AssertionError("a pool's curve and its quote disagree")  # a venue bug
    frac_a = found.amount_a * BPS // total
    legs = (RouteLeg(a.venue, leg_a.amm_key, found.amount_a, found.out_a, min_a, frac_a),
            RouteLeg(b.venue, leg_b.amm_key, found.amount_b, found.out_b, min_b, BPS - frac_a))
    return RouteChoice(combined(leg_a, leg_b, order_min, cost_lamports), order_min, legs,
                       found.out - cost)


def combined(leg_a: Quote, leg_b: Quote, order_min: int, cost_lamports: int) -> Quote:
    """One quote standing for a split: named after its larger leg's venue and pool (the
    ``venue`` of the v1 status events stays one of the venues), its price impact the larger
    of the legs', its ``legs`` the two pools' quotes."""
    primary = leg_a if leg_a.in_amount >= leg_b.in_amount else leg_b
    impact = max(Decimal(leg_a.price_impact_pct), Decimal(leg_b.price_impact_pct))
    fee = leg_a.fee_amount + leg_b.fee_amount if leg_a.fee_mint == leg_b.fee_mint \
        else primary.fee_amount
    return Quote(primary.venue, leg_a.in_amount + leg_b.in_amount,
                 leg_a.out_amount + leg_b.out_amount, fee, primary.fee_mint, str(impact),
                 primary.amm_key, max(leg_a.context_slot, leg_b.context_slot),
                 raw={"otherAmountThreshold": str(order_min)}, cost_lamports=cost_lamports,
                 legs=(leg_a, leg_b))
