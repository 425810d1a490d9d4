"""``GET /api/quote``, ``/api/markets`` and ``/api/wallet``: what a trader looks at before
an order, answered by the engine's own router and venues (:mod:`ingress.quote_view`) and
the wallet's balances on the RPC.

Query parameters are checked like an order's fields (the same parser as
``POST /api/orders/execute``); one this route does not know is a 400, never ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from ingress.order_request import order_from_document
from ingress.quote_view import amount, preview, preview_view, quote_view, rate
from ingress.responses import error_response, json_response
from pipeline.errors import InvalidOrder, NoRoute
from pipeline.router import Router
from pipeline.tokens import KNOWN_TOKENS, Token, to_ui
from pipeline.venue_set import VenueSet
from pipeline.venues.onchain_charts import OnchainPoolCharts
from pipeline.venues.pool_trades import PoolTrades
from pipeline.wire import ExecuteOrder, now_ms

QUOTE_PARAMS = frozenset({"tokenIn", "tokenOut", "amount", "slippageBps",
                          "maxPriceImpactBps"})
MARKET_PAIRS: tuple[tuple[str, str], ...] = (("SOL", "USDC"), ("SOL", "USDT"),
                                             ("USDC", "USDT"))
MARKETS_TTL_S = 2.0  # one round of reference quotes serves every viewer for this long


class BalanceReader(Protocol):
    async def token_balance(self, owner: str, mint: str) -> int:
        """What ``owner`` holds of ``mint`` in base units (SOL: native + wrapped)."""
        ...


def _int_param(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidOrder(f"invalid_{name}", f"{name} must be a non-negative integer",
                           field=name)
    return int(raw)


def quote_command(query: Mapping[str, str]) -> ExecuteOrder:
    """The order a quote is for, validated as the order itself would be."""
    unknown = sorted(set(query) - QUOTE_PARAMS)
    if unknown:
        raise InvalidOrder("unknown_parameter", f"unknown query parameter {unknown[0]!r} "
                           f"(allowed: {', '.join(sorted(QUOTE_PARAMS))})", field=unknown[0])
    doc: dict[str, Any] = {k: query[k] for k in ("tokenIn", "tokenOut", "amount") if k in query}
    if "slippageBps" in query:
        doc["slippageBps"] = _int_param(query["slippageBps"], "slippageBps")
    if "maxPriceImpactBps" in query:
        doc["maxPriceImpactBps"] = _int_param(query["maxPriceImpactBps"], "maxPriceImpactBps")
    return order_from_document(doc, source="quote", submitted_at_ms=now_ms())


def _unconfigured(what: str) -> web.Response:
    return error_response(503, "not_configured",
                          f"{what} needs the Solana RPC, the venues and the wallet; "
                          "this ingress was started without them")


class MarketApi:
    """The routes over the engine's router (``None``: started without venues) and the
    wallet's balances (``None``: no RPC or wallet)."""

    def __init__(self, router: Router | None, spec: VenueSet, *,
                 balances: BalanceReader | None, wallet: str | None,
                 onchain_pools: OnchainPoolCharts | None = None,
                 pool_trades: PoolTrades | None = None) -> None:
        self._router = router
        # what GET /api/markets/pools reads on-chain venues with (ingress/pool_charts.py)
        self.onchain_pools = onchain_pools
        self.pool_trades = pool_trades
        self._spec = spec
        self._balances = balances
        self._wallet = wallet
        self._markets: tuple[float, dict[str, Any]] | None = None
        self._markets_lock = asyncio.Lock()

    @property
    def router(self) -> Router | None:
        """The engine's router over this ingress's venues (None: not configured)."""
        return self._router

    async def quote(self, request: web.Request) -> web.Response:
        """``GET /api/quote``: every venue's quote and the route the engine would take."""
        command = quote_command(request.query)
        if self._router is None:
            return _unconfigured("quoting")
        return json_response(preview_view(await preview(self._router, command), self._spec))

    async def wallet(self, _request: web.Request) -> web.Response:
        """``GET /api/wallet``: the engine's wallet and its balance of every listed token."""
        if self._balances is None or self._wallet is None:
            return _unconfigured("the wallet view")
        owner, reader = self._wallet, self._balances
        held = await asyncio.gather(*(reader.token_balance(owner, t.mint)
                                      for t in KNOWN_TOKENS))
        return json_response({"address": owner, "balances": [
            {"symbol": t.symbol, "mint": t.mint, "decimals": t.decimals,
             "amount": str(n), "ui": to_ui(n, t.decimals)}
            for t, n in zip(KNOWN_TOKENS, held, strict=True)]})

    async def markets(self, request: web.Request) -> web.Response:
        """``GET /api/markets``: each enabled venue's pool and price for every listed pair
        (a reference quote of one unit of the pair's base token; cached briefly)."""
        if request.query:
            name = sorted(request.query)[0]
            return error_response(400, "unknown_parameter",
                                  f"unknown query parameter {name!r} (none are taken)", name)
        if self._router is None:
            return _unconfigured("the markets view")
        async with self._markets_lock:
            cached = self._markets
            if cached is None or time.monotonic() - cached[0] > MARKETS_TTL_S:
                cached = (time.monotonic(), await self._read_markets(self._router))
                self._markets = cached
        return json_response(cached[1])

    async def _read_markets(self, router: Router) -> dict[str, Any]:
        by_symbol = {t.symbol: t for t in KNOWN_TOKENS}
        pairs = [(by_symbol[a], by_symbol[b]) for a, b in MARKET_PAIRS]
        results = await asyncio.gather(*(self._pair(router, a, b) for a, b in pairs))
        return {"venues": [v.value for v in self._spec.enabled], "kind": self._spec.kind,
                "pairs": list(results)}

    async def _pair(self, router: Router, base: Token, quote: Token) -> dict[str, Any]:
        reference = 10**base.decimals
        command = ExecuteOrder(order_id=f"markets-{base.symbol}-{quote.symbol}",
                               token_in=base.mint, token_out=quote.mint, amount_in=reference,
                               slippage_bps=0, submitted_at_ms=now_ms(), source="markets")
        order = command.to_order()
        quotes = await router.quote_all(order)
        pools = []
        for q in quotes.quotes:
            view = quote_view(q, order)
            pools.append({"venue": view["venue"], "pool": view["pool"],
                          "price": rate(q.in_amount, base.mint, q.out_amount, quote.mint),
                          "fee": view["fee"], "priceImpactPct": view["priceImpactPct"],
                          "contextSlot": view["contextSlot"]})
        return {"base": base.symbol, "quote": quote.symbol,
                "referenceIn": amount(reference, base.mint), "pools": pools,
                **pair_state(pools, quotes.errors)}


def pair_state(pools: list[dict[str, Any]],
               errors: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A venue without a pool for the pair is not an error (the router says ``no_route``):
    ``state`` is ``ok`` (some pool quotes), ``no_pool`` (no venue has one) or
    ``unavailable`` (a venue that may have one failed); ``noPool`` lists the venues without
    a pool, ``errors`` only the real failures."""
    no_pool = [v for v, e in errors if e.startswith(f"{NoRoute.default_code}:")]
    failed = [{"venue": v, "error": e} for v, e in errors
              if not e.startswith(f"{NoRoute.default_code}:")]
    state = "ok" if pools else ("unavailable" if failed else "no_pool")
    return {"state": state, "noPool": no_pool, "errors": failed}

