"""What ``GET /api/quote`` answers: the engine's own routing decision, before the order.

:func:`preview` asks the venues through the engine's :class:`~pipeline.router.Router` and
lets it choose exactly as the executor does (:meth:`Router.choose`: the best net route,
single pool or split, then the price guards). When the guards would refuse, the route the
router would have taken is still shown (from :func:`pipeline.route_choice.choose_route`,
the choice ``Router.choose`` makes before guarding) with the refusal next to it.

Amounts are integer strings in base units (a u64 does not fit a JavaScript number) with
``…Ui`` decimal strings beside them; rates are decimal strings; nothing is a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from pipeline.errors import OrderflowError
from pipeline.lifecycle import Order
from pipeline.model import Quote, RouteLeg
from pipeline.route_choice import RouteChoice, choose_route, net_out
from pipeline.router import Quotes, Router
from pipeline.tokens import to_ui, token_by_mint
from pipeline.venue_set import VenueSet
from pipeline.wire import ExecuteOrder

BPS = 10_000
SIGNATURE_FEE_LAMPORTS = 5_000
"""Solana's base fee per signature; the engine's swap transactions carry one (the
wallet's). The same for every route, so the router leaves it out of the choice."""


@dataclass(frozen=True, slots=True)
class Preview:
    order: Order
    quotes: Quotes
    choice: RouteChoice | None  # None: nothing could fill
    refusal: OrderflowError | None  # why the engine would not send this order now


async def preview(router: Router, command: ExecuteOrder) -> Preview:
    """Quote every venue and choose as the executor would for this order."""
    order = command.to_order()
    quotes = await router.quote_all(order)
    if not quotes.quotes:
        return Preview(order, quotes, None, quotes.unroutable())
    try:
        route = router.choose(order, quotes.quotes,
                              max_price_impact_bps=command.max_price_impact_bps)
    except OrderflowError as refused:
        try:
            choice = choose_route(quotes.quotes, token_in=order.token_in,
                                  token_out=order.token_out, slippage_bps=order.slippage_bps)
        except OrderflowError:
            choice = None
        return Preview(order, quotes, choice, refused)
    choice = RouteChoice(route.best, route.min_out, route.legs,
                         net_out(route.best, order.token_in, order.token_out))
    return Preview(order, quotes, choice, None)


def ratio(numerator: int, denominator: int) -> str | None:
    """``numerator / denominator`` as a plain decimal string (18 significant digits)."""
    if denominator == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 18
        value = Decimal(numerator) / Decimal(denominator)
    text = format(value.normalize(), "f")
    return text


def rate(amount_in: int, mint_in: str, amount_out: int, mint_out: str) -> dict[str, Any]:
    """The rate both ways in UI units, with its units (``1 SOL = 150.2 USDC``)."""
    tin, tout = token_by_mint(mint_in), token_by_mint(mint_out)
    if tin is None or tout is None or amount_in <= 0 or amount_out <= 0:
        return {"outPerIn": None, "inPerOut": None, "unit": None, "inverseUnit": None}
    forward = ratio(amount_out * 10**tin.decimals, amount_in * 10**tout.decimals)
    inverse = ratio(amount_in * 10**tout.decimals, amount_out * 10**tin.decimals)
    return {"outPerIn": forward, "inPerOut": inverse,
            "unit": f"{tout.symbol} per {tin.symbol}",
            "inverseUnit": f"{tin.symbol} per {tout.symbol}"}


def amount(value: int | None, mint: str) -> dict[str, str | None]:
    token = token_by_mint(mint)
    if value is None:
        return {"amount": None, "ui": None}
    return {"amount": str(value), "ui": None if token is None else to_ui(value, token.decimals)}


def _fee(quote: Quote) -> dict[str, Any]:
    token = token_by_mint(quote.fee_mint)
    return {"venue": quote.venue.value, **amount(quote.fee_amount, quote.fee_mint),
            "mint": quote.fee_mint, "symbol": None if token is None else token.symbol}


def quote_view(q: Quote, order: Order) -> dict[str, Any]:
    return {
        "venue": q.venue.value,
        "pool": q.amm_key,
        "amountIn": str(q.in_amount),
        "amountOut": str(q.out_amount),
        "amountOutUi": amount(q.out_amount, order.token_out)["ui"],
        "netOut": str(net_out(q, order.token_in, order.token_out)),
        "fee": _fee(q),
        "priceImpactPct": q.price_impact_pct,
        "priorityLamports": str(q.cost_lamports),
        "contextSlot": q.context_slot,
        "rate": rate(q.in_amount, order.token_in, q.out_amount, order.token_out),
    }


def _leg(leg: RouteLeg) -> dict[str, Any]:
    return {"venue": leg.venue.value, "pool": leg.pool, "amountIn": str(leg.amount_in),
            "expectedOut": str(leg.expected_out), "minOut": str(leg.min_out),
            "fractionBps": leg.fraction_bps}


def _runner_up(choice: RouteChoice, quotes: tuple[Quote, ...], order: Order
               ) -> tuple[str | None, int | None]:
    """The best alternative to the chosen route and by how many bps of it the route wins
    (net output): for a split, the best single pool; else the best other venue."""
    chosen = {(leg.venue, leg.pool) for leg in choice.legs}
    others = [q for q in quotes if q.out_amount > 0
              and (choice.split or (q.venue, q.amm_key) not in chosen)]
    if not others:
        return None, None
    best = max(others, key=lambda q: net_out(q, order.token_in, order.token_out))
    other_net = net_out(best, order.token_in, order.token_out)
    if other_net <= 0:
        return best.venue.value, None
    return best.venue.value, (choice.net_out - other_net) * BPS // other_net


def route_view(choice: RouteChoice, p: Preview, spec: VenueSet) -> dict[str, Any]:
    order, q = p.order, choice.quote
    runner_up, margin = _runner_up(choice, p.quotes.quotes, order)
    venue_fees = [_fee(leg) for leg in (q.legs or (q,))]
    priority: dict[str, Any]
    if spec.engine_built:
        priority = {"lamports": str(q.cost_lamports), "setBy": "engine",
                    "maxLamports": None}
    else:  # the Jupiter-shaped venue sets it when it builds the swap, up to its cap
        priority = {"lamports": None, "setBy": "venue",
                    "maxLamports": str(spec.jupiter_max_priority_lamports)}
    return {
        "venue": q.venue.value,
        "split": choice.split,
        "legs": [_leg(leg) for leg in choice.legs],
        "expectedOut": str(q.out_amount),
        "expectedOutUi": amount(q.out_amount, order.token_out)["ui"],
        "minOut": str(choice.min_out),
        "minOutUi": amount(choice.min_out, order.token_out)["ui"],
        "netOut": str(choice.net_out),
        "priceImpactPct": q.price_impact_pct,
        "rate": rate(q.in_amount, order.token_in, q.out_amount, order.token_out),
        "runnerUp": runner_up,
        "marginBps": margin,
        "fees": {
            "venue": venue_fees,
            "networkLamports": str(SIGNATURE_FEE_LAMPORTS),
            "priority": priority,
        },
    }


def preview_view(p: Preview, spec: VenueSet) -> dict[str, Any]:
    """The JSON answer of ``GET /api/quote``."""
    order = p.order
    tin, tout = token_by_mint(order.token_in), token_by_mint(order.token_out)
    assert tin is not None and tout is not None
    return {
        "tokenIn": {"symbol": tin.symbol, "mint": tin.mint, "decimals": tin.decimals},
        "tokenOut": {"symbol": tout.symbol, "mint": tout.mint, "decimals": tout.decimals},
        "amountIn": str(order.amount_in),
        "amountInUi": to_ui(order.amount_in, tin.decimals),
        "slippageBps": order.slippage_bps,
        "quotes": [quote_view(q, order) for q in p.quotes.quotes],
        "quoteErrors": [{"venue": v, "error": e} for v, e in p.quotes.errors],
        "route": None if p.choice is None else route_view(p.choice, p, spec),
        "refused": None if p.refusal is None else p.refusal.as_dict(),
    }
