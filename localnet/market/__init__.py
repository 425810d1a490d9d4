"""Local Raydium CPMM / Meteora DLMM market behind a Jupiter Swap API v1 lookalike.

A server entrypoint needs only::

    chain = Chain(slot_ms=...)
    market = Market(chain, seed=..., drift_bps=...)
    app = build_market_app(market)        # routes under /swap/v1 (PREFIX)

and runs ``chain.run_clock()`` itself. ``POST /swap/v1/faucet`` exists on the localnet only.

Rooms: :mod:`.market` (pools, books, quotes, issued swaps settled from the chain),
:mod:`.http` (the Jupiter-shaped API), :mod:`.drift` (the random walk and the noise
trader), :mod:`.funding` (mints, vaults, faucet), :mod:`.errors` (Jupiter-shaped errors);
the exact DEX math lives in the top-level :mod:`dexmath` (re-exported here as
``cpmm``/``dlmm``), books in :mod:`.book`, pools in
:mod:`.pools`, transactions in :mod:`.txbuilder`.
"""

from dexmath import cpmm, dlmm
from localnet.market.errors import MarketError
from localnet.market.http import MARKET_KEY, PREFIX, build_market_app
from localnet.market.market import IssuedSwap, Market
from localnet.market.pools import (
    DEFAULT_POOLS,
    LABELS,
    METEORA_DLMM,
    RAYDIUM_CPMM,
    CpmmSpec,
    DlmmSpec,
    Pool,
    PoolSpec,
)
from localnet.market.tokens import NATIVE_MINT, SOL, TOKENS, USDC, USDT, MarketToken

__all__ = [
    "DEFAULT_POOLS",
    "LABELS",
    "MARKET_KEY",
    "METEORA_DLMM",
    "NATIVE_MINT",
    "PREFIX",
    "RAYDIUM_CPMM",
    "SOL",
    "TOKENS",
    "USDC",
    "USDT",
    "CpmmSpec",
    "DlmmSpec",
    "IssuedSwap",
    "Market",
    "MarketError",
    "MarketToken",
    "Pool",
    "PoolSpec",
    "build_market_app",
    "cpmm",
    "dlmm",
]
