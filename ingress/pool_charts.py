"""``GET /api/markets/pools``: each pool's liquidity as the page charts it, with price,
fee and recent trades, read from the state the engine quotes on.

* Local market: its ``/pools`` (:mod:`pipeline.venues.market_pools`, the reader the
  trigger engine uses). Its pools live in the market process, not in on-chain pool
  accounts, so there is no pool history to read trades from.
* On-chain venues: the pools of the listed pairs that the engine's own venue adapters
  find (``ORDERFLOW_POOLS`` or the program scan), read from the chain by those adapters
  (:class:`pipeline.venues.onchain_charts.OnchainPoolCharts`), and each pool's recent
  trades from its transaction history (:class:`pipeline.venues.pool_trades.PoolTrades`,
  bounded). One answer serves every viewer for ``CACHE_TTL_S``.
* Jupiter does not publish pool state: no pools, and ``unavailable`` says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from ingress.market_api import MARKET_PAIRS
from ingress.pool_view import market_snapshot, pools_view
from ingress.responses import error_response, json_response
from pipeline.errors import OrderflowError
from pipeline.tokens import KNOWN_TOKENS
from pipeline.venue_set import VenueSet
from pipeline.venues.market_pools import parse_pools
from pipeline.venues.pool_snapshot import PoolsSnapshot
from pipeline.venues.pool_trades import PoolTrade

TIMEOUT = aiohttp.ClientTimeout(total=10)
CACHE_TTL_S = 2.0  # the page refreshes every 4 s; many viewers share one read
MARKET_TRADES = ("the local market's pools live in the market process, not in on-chain "
                 "pool accounts: their trades are the engine's own, listed below")


class PoolReader(Protocol):
    async def snapshot(self, pairs: Sequence[tuple[str, str]]) -> PoolsSnapshot: ...


class TradeReader(Protocol):
    async def recent(self, pools: Sequence[tuple[str, tuple[str, str], tuple[str, str]]]
                     ) -> Mapping[str, Sequence[PoolTrade]]: ...


def listed_pairs() -> list[tuple[str, str]]:
    """The mints of the pairs ``/api/markets`` lists (the page groups pools by them)."""
    by_symbol = {t.symbol: t.mint for t in KNOWN_TOKENS}
    return [(by_symbol[a], by_symbol[b]) for a, b in MARKET_PAIRS]


def _nothing(reason: str) -> web.Response:
    return json_response({"slot": None, "pools": [], "unavailable": reason})


class PoolCharts:
    """The route; ``onchain``/``trades``: the on-chain venues' readers (None: not built,
    because the ingress has no RPC or its venues are not on-chain)."""

    def __init__(self, venues: VenueSet | None, *, onchain: PoolReader | None = None,
                 trades: TradeReader | None = None) -> None:
        self._venues = venues
        self._onchain = onchain
        self._trades = trades
        self._session: aiohttp.ClientSession | None = None
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def register(self, app: web.Application) -> None:
        app.router.add_get("/api/markets/pools", self.pools)
        app.cleanup_ctx.append(self._client)

    async def _client(self, _app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        yield
        await self._session.close()

    async def pools(self, request: web.Request) -> web.Response:
        """``GET /api/markets/pools``: reserves, bins, prices, fees and recent trades."""
        if request.query:
            name = sorted(request.query)[0]
            return error_response(400, "unknown_parameter",
                                  f"unknown query parameter {name!r} (none are taken)", name)
        spec = self._venues
        if spec is not None and spec.kind == "local-market" and spec.venue_url is not None:
            return await self._market(spec.venue_url)
        if spec is not None and spec.kind == "onchain":
            if self._onchain is None:
                return _nothing("on-chain pool state needs the Solana RPC; this ingress "
                                "was started without it")
            try:
                return json_response(await self._onchain_view(spec))
            except OrderflowError as exc:
                return error_response(502, "rpc_unavailable",
                                      f"the RPC did not answer: {exc.message}")
        kind = "none" if spec is None else spec.kind
        return _nothing(f"pool state is read from the local market or the chain only "
                        f"(venues: {kind}; Jupiter does not publish it)")

    async def _market(self, url: str) -> web.Response:
        assert self._session is not None
        try:
            async with self._session.get(url.rstrip("/") + "/pools") as resp:
                resp.raise_for_status()
                doc = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(502, "venue_unavailable", f"the market did not answer: {exc}")
        return json_response(pools_view(market_snapshot(parse_pools(doc)),
                                        trades_unavailable=MARKET_TRADES))

    async def _onchain_view(self, spec: VenueSet) -> dict[str, Any]:
        async with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] > CACHE_TTL_S:
                cached = (time.monotonic(), await self._read_onchain(spec))
                self._cached = cached
        return cached[1]

    async def _read_onchain(self, spec: VenueSet) -> dict[str, Any]:
        assert self._onchain is not None
        found = await self._onchain.snapshot(listed_pairs())
        enabled = {v.value for v in spec.enabled}
        snapshot = PoolsSnapshot(found.slot, found.unix_timestamp,
                                 tuple(p for p in found.pools if p.venue.value in enabled))
        if self._trades is None:
            return pools_view(snapshot, trades_unavailable="reading trades needs the RPC")
        try:
            trades = await self._trades.recent([(p.pool, p.vaults, (p.x.mint, p.y.mint))
                                                for p in snapshot.pools])
        except OrderflowError as exc:
            return pools_view(snapshot, trades_unavailable=(
                f"the RPC did not answer for the pools' history: {exc.message}"))
        return pools_view(snapshot, trades=trades)
