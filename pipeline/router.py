"""Routing an order: ask every venue, keep what they said, choose, and guard the price.

The choice itself is pure (:mod:`pipeline.route_choice` over :mod:`pipeline.routing` and
:mod:`pipeline.split`, and :mod:`pipeline.guards`); this class adds the venue calls, what
the executor records of them, and the metrics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pipeline import routing
from pipeline.errors import NoRoute, OrderflowError, VenueUnavailable
from pipeline.guards import PriceLimits, RecentPrices, check_price
from pipeline.lifecycle import Order, OrderRouted
from pipeline.metrics import EngineMetrics
from pipeline.model import Quote, RouteLeg, Venue
from pipeline.route_choice import choose_route
from pipeline.tokens import token_by_mint
from pipeline.venues import Venues, check_enforced_min_out

QuoteErrors = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Quotes:
    quotes: tuple[Quote, ...]
    errors: QuoteErrors
    retriable: bool  # some venue failed for a reason another attempt may not meet

    def unroutable(self) -> OrderflowError:
        """Why no venue can take the order: transient if a venue was down, not unable."""
        detail = "; ".join(f"{venue}: {message}" for venue, message in self.errors)
        if self.retriable:
            return VenueUnavailable(message=f"no venue could quote: {detail}")
        return NoRoute(message=f"no venue could quote: {detail}")


@dataclass(frozen=True, slots=True)
class Route:
    """``best`` is the quote the venue builds from (for a split, its ``legs`` are the two
    pools' quotes); ``legs`` is what the events record of it."""

    best: Quote
    min_out: int
    legs: tuple[RouteLeg, ...] = ()

    def routed(self) -> OrderRouted:
        """The lifecycle event recording this route (``building``)."""
        return OrderRouted(self.best.venue, self.best.out_amount, self.min_out, self.legs)


class Router:
    def __init__(self, venues: Venues, *, enabled: tuple[Venue, ...], limits: PriceLimits,
                 metrics: EngineMetrics) -> None:
        self._venues = venues
        self._enabled = enabled
        self._limits = limits
        self._metrics = metrics
        self.recent = RecentPrices()  # fills read from the chain, fed by the executor

    async def quote_all(self, order: Order) -> Quotes:
        """Ask every venue concurrently; a venue that cannot quote is recorded, not fatal."""
        results = await asyncio.gather(
            *(self._venues.quote(v, order.token_in, order.token_out, order.amount_in,
                                 order.slippage_bps) for v in self._enabled),
            return_exceptions=True,
        )
        quotes: list[Quote] = []
        errors: list[tuple[str, str]] = []
        retriable = False
        for venue, result in zip(self._enabled, results, strict=True):
            if isinstance(result, Quote):
                quotes.append(result)
            elif isinstance(result, OrderflowError):
                errors.append((venue.value, f"{result.code}: {result.message}"))
                retriable = retriable or result.retriable
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                errors.append((venue.value, f"internal_error: {result!r}"))
        return Quotes(tuple(quotes), tuple(errors), retriable)

    def choose(self, order: Order, quotes: tuple[Quote, ...], *,
               max_price_impact_bps: int | None) -> Route:
        """The best net route (one pool, or a split), each of its legs refused if its
        price is far from fair (pipeline/guards)."""
        choice = choose_route(quotes, token_in=order.token_in, token_out=order.token_out,
                              slippage_bps=order.slippage_bps)
        best = choice.quote
        tin, tout = token_by_mint(order.token_in), token_by_mint(order.token_out)
        assert tin is not None and tout is not None
        recent = self.recent.rate(order.token_in, order.token_out)
        for leg in best.legs or (best,):
            check_price(leg, quotes, limits=self._limits, decimals_in=tin.decimals,
                        decimals_out=tout.decimals, max_price_impact_bps=max_price_impact_bps,
                        recent_rate=recent, symbols=(tin.symbol, tout.symbol))
        self._metrics.quote_spread(best.venue, routing.spread_bps(quotes))
        for leg, planned in zip(best.legs or (best,), choice.legs, strict=True):
            check_enforced_min_out(leg, planned.min_out)
            self._metrics.venue_chosen(leg.venue)
        return Route(best, choice.min_out, choice.legs)
