"""The real dependencies of :class:`ingress.market_api.MarketApi`: the engine's venues and
router over the configured RPC, opened with the ingress and closed with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from prometheus_client import CollectorRegistry

from ingress.config import IngressConfig
from ingress.market_api import MarketApi
from pipeline.accounts import RpcAccounts
from pipeline.metrics import EngineMetrics
from pipeline.router import Router
from pipeline.solana_rpc import RpcChain
from pipeline.venue_set import VenueSet, build_venues, pool_venues
from pipeline.venues.onchain_charts import OnchainPoolCharts
from pipeline.venues.pool_trades import PoolTrades


@asynccontextmanager
async def market_access(config: IngressConfig) -> AsyncIterator[MarketApi]:
    """Quotes need the venues, the RPC and the wallet's address; balances the RPC and the
    address. What is not configured answers 503. The router's metrics go to a registry
    of their own: the ingress's quotes are not the executor's routing decisions."""
    if config.rpc_url is None or config.wallet_address is None:
        yield MarketApi(None, config.venues or VenueSet(), balances=None, wallet=None)
        return
    chain = RpcChain(config.rpc_url)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
    try:
        router = charts = trades = None
        spec = config.venues or VenueSet()
        if config.venues is not None:
            accounts = RpcAccounts(chain.client)
            pools = pool_venues(spec) if spec.engine_built else None
            venues = build_venues(spec, session, accounts, taker=config.wallet_address,
                                  pools=pools)
            router = Router(venues, enabled=spec.enabled, limits=config.price_limits,
                            metrics=EngineMetrics(CollectorRegistry()))
            if pools is not None:  # the markets view charts the pools the router quotes
                charts, trades = OnchainPoolCharts(accounts, pools), PoolTrades(chain)
        yield MarketApi(router, spec, balances=chain, wallet=config.wallet_address,
                        onchain_pools=charts, pool_trades=trades)
    finally:
        await session.close()
        await chain.close()
