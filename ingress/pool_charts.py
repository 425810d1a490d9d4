"""``GET /api/markets/pools``: each pool's liquidity as the page charts it, read from the
exact curves the engine quotes on (a CP-Swap pool's reserves, a DLMM pair's bins).

The curves come from the local market's ``/pools`` (:mod:`pipeline.venues.market_pools`,
the same reader the trigger engine uses). Jupiter does not publish pool state and the
on-chain venue reads pools per quote, so with those venues the answer has no pools and
says why. Amounts are base-unit integer strings; bin prices are decimal strings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal, localcontext
from typing import Any

import aiohttp
from aiohttp import web

from dexmath import dlmm
from ingress.responses import error_response, json_response
from pipeline.tokens import token_by_mint
from pipeline.trigger_curves import CpmmCurve, DlmmCurve
from pipeline.venue_set import VenueSet
from pipeline.venues.market_pools import MarketSnapshot, parse_pools

BINS_EACH_SIDE = 60  # the chart shows the bins a trade of any sensible size walks
TIMEOUT = aiohttp.ClientTimeout(total=10)


def _decimals(mint: str) -> int:
    token = token_by_mint(mint)
    return 0 if token is None else token.decimals


def bin_price(bin_id: int, bin_step: int, mint_x: str, mint_y: str) -> str:
    """A bin's price in UI units (Y per X), 10 significant digits."""
    raw = dlmm.price_from_id(bin_id, bin_step)
    with localcontext() as ctx:
        ctx.prec = 10
        ui = Decimal(raw) / Decimal(dlmm.ONE) * Decimal(10) ** (_decimals(mint_x)
                                                                - _decimals(mint_y))
    return format(ui.normalize(), "f")


def _token(mint: str) -> dict[str, Any]:
    token = token_by_mint(mint)
    return {"mint": mint, "symbol": None if token is None else token.symbol,
            "decimals": None if token is None else token.decimals}


def pools_view(snapshot: MarketSnapshot) -> dict[str, Any]:
    pools: list[dict[str, Any]] = []
    for pool in snapshot.pools:
        curve = pool.curve
        if isinstance(curve, CpmmCurve):
            pools.append({"pool": pool.amm_key, "kind": "cpmm", "x": _token(curve.mint_a),
                          "y": _token(curve.mint_b), "reserveX": str(curve.reserve_a),
                          "reserveY": str(curve.reserve_b),
                          "feeRate": curve.rates.trade_fee_rate, "feeRateDenominator": 1_000_000})
        elif isinstance(curve, DlmmCurve):
            state = curve.state
            low, high = state.active_id - BINS_EACH_SIDE, state.active_id + BINS_EACH_SIDE
            bins = [{"binId": i, "amountX": str(b.amount_x), "amountY": str(b.amount_y),
                     "price": bin_price(i, state.bin_step, curve.mint_a, curve.mint_b)}
                    for i, b in sorted(state.bins.items()) if low <= i <= high]
            pools.append({"pool": pool.amm_key, "kind": "dlmm", "x": _token(curve.mint_a),
                          "y": _token(curve.mint_b), "binStep": state.bin_step,
                          "activeId": state.active_id,
                          "activePrice": bin_price(state.active_id, state.bin_step,
                                                   curve.mint_a, curve.mint_b),
                          "bins": bins})
    return {"slot": snapshot.slot, "pools": pools, "unavailable": None}


class PoolCharts:
    """The route over the local market's pool state (other venue kinds: no pools)."""

    def __init__(self, venues: VenueSet | None) -> None:
        self._venues = venues
        self._session: aiohttp.ClientSession | None = None

    def register(self, app: web.Application) -> None:
        app.router.add_get("/api/markets/pools", self.pools)
        app.cleanup_ctx.append(self._client)

    async def _client(self, _app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        yield
        await self._session.close()

    async def pools(self, request: web.Request) -> web.Response:
        """``GET /api/markets/pools``: reserves and bins of every pool the market lists."""
        if request.query:
            name = sorted(request.query)[0]
            return error_response(400, "unknown_parameter",
                                  f"unknown query parameter {name!r} (none are taken)", name)
        spec = self._venues
        if spec is None or spec.kind != "local-market" or spec.venue_url is None:
            kind = "none" if spec is None else spec.kind
            return json_response({"slot": None, "pools": [], "unavailable":
                                  f"pool state is published by the local market only "
                                  f"(venues: {kind})"})
        assert self._session is not None
        try:
            async with self._session.get(spec.venue_url.rstrip("/") + "/pools") as resp:
                resp.raise_for_status()
                doc = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(502, "venue_unavailable", f"the market did not answer: {exc}")
        return json_response(pools_view(parse_pools(doc)))
