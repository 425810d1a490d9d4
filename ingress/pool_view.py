"""The JSON of ``GET /api/markets/pools``: venue snapshots
(:mod:`pipeline.venues.pool_snapshot`) and their recent trades as the page charts them.

The venue adapters decide what a pool is (reserves, bins, fee); this module only writes
it out: amounts as base-unit integer strings, prices as decimal strings in UI units
(10 significant digits), each token with its symbol when the registry lists it and its
decimals from the registry or the pool's own accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from dexmath import dlmm
from pipeline.tokens import token_by_mint
from pipeline.trigger_curves import CpmmCurve, DlmmCurve
from pipeline.venues.market_pools import MarketSnapshot
from pipeline.venues.meteora.snapshot import CHART_BINS_EACH_SIDE
from pipeline.venues.pool_snapshot import (
    CpSnapshot,
    DlmmSnapshot,
    PoolSnapshot,
    PoolsSnapshot,
    SnapshotBin,
    SnapshotToken,
)
from pipeline.venues.pool_trades import PoolTrade

BINS_EACH_SIDE = CHART_BINS_EACH_SIDE


def _decimals(token: SnapshotToken) -> int:
    known = token_by_mint(token.mint)
    if known is not None:
        return known.decimals
    return 0 if token.decimals is None else token.decimals


def _ui_price(raw: Decimal, x: SnapshotToken, y: SnapshotToken) -> str:
    """Y per X in UI units from a raw (base-unit) ratio, 10 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 10
        ui = raw * Decimal(10) ** (_decimals(x) - _decimals(y))
    return format(ui.normalize(), "f")


def bin_price(bin_id: int, bin_step: int, x: SnapshotToken, y: SnapshotToken) -> str:
    """A bin's price in UI units (Y per X)."""
    with localcontext() as ctx:
        ctx.prec = 40
        raw = Decimal(dlmm.price_from_id(bin_id, bin_step)) / Decimal(dlmm.ONE)
    return _ui_price(raw, x, y)


def _token(token: SnapshotToken) -> dict[str, Any]:
    known = token_by_mint(token.mint)
    return {"mint": token.mint, "symbol": None if known is None else known.symbol,
            "decimals": known.decimals if known is not None else token.decimals}


def trade_view(trade: PoolTrade) -> dict[str, Any]:
    return {"signature": trade.signature, "slot": trade.slot, "blockTime": trade.block_time,
            "tokenIn": trade.mint_in, "amountIn": str(trade.amount_in),
            "tokenOut": trade.mint_out, "amountOut": str(trade.amount_out)}


def pool_view(pool: PoolSnapshot, trades: Sequence[PoolTrade] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"pool": pool.pool, "venue": pool.venue.value}
    if isinstance(pool, CpSnapshot):
        price = (Decimal(0) if pool.reserve_x == 0
                 else Decimal(pool.reserve_y) / Decimal(pool.reserve_x))
        out |= {"kind": "cpmm", "x": _token(pool.x), "y": _token(pool.y),
                "reserveX": str(pool.reserve_x), "reserveY": str(pool.reserve_y),
                "price": _ui_price(price, pool.x, pool.y), "feeRate": pool.fee_rate,
                "feeRateDenominator": CpSnapshot.FEE_DENOMINATOR}
    else:
        out |= {"kind": "dlmm", "x": _token(pool.x), "y": _token(pool.y),
                "binStep": pool.bin_step, "activeId": pool.active_id,
                "activePrice": bin_price(pool.active_id, pool.bin_step, pool.x, pool.y),
                "baseFeeRate": pool.base_fee_rate, "feeRate": pool.fee_rate,
                "feeRateDenominator": DlmmSnapshot.FEE_DENOMINATOR,
                "bins": [{"binId": b.bin_id, "amountX": str(b.amount_x),
                          "amountY": str(b.amount_y),
                          "price": bin_price(b.bin_id, pool.bin_step, pool.x, pool.y)}
                         for b in pool.bins]}
    if trades is not None:
        out["trades"] = [trade_view(t) for t in trades]
    return out


def pools_view(snapshot: PoolsSnapshot, *, trades: Mapping[str, Sequence[PoolTrade]] | None
               = None, trades_unavailable: str | None = None) -> dict[str, Any]:
    """The whole answer; ``trades`` by pool address (None: not read, and why)."""
    return {"slot": snapshot.slot,
            "pools": [pool_view(p, None if trades is None else trades.get(p.pool, []))
                      for p in snapshot.pools],
            "unavailable": None, "tradesUnavailable": trades_unavailable}


def market_snapshot(snapshot: MarketSnapshot) -> PoolsSnapshot:
    """The local market's curves as venue snapshots (the market states no decimals: the
    registry's are used)."""
    pools: list[PoolSnapshot] = []
    for pool in snapshot.pools:
        curve = pool.curve
        x, y = SnapshotToken(curve.mint_a, None), SnapshotToken(curve.mint_b, None)
        if isinstance(curve, CpmmCurve):
            pools.append(CpSnapshot(pool.venue, pool.amm_key, x, y, curve.reserve_a,
                                    curve.reserve_b, curve.rates.trade_fee_rate, pool.vaults))
        elif isinstance(curve, DlmmCurve):
            state = curve.state
            low, high = state.active_id - BINS_EACH_SIDE, state.active_id + BINS_EACH_SIDE
            bins = tuple(SnapshotBin(i, b.amount_x, b.amount_y)
                         for i, b in sorted(state.bins.items()) if low <= i <= high)
            base = min(dlmm.base_fee_rate(state.params, state.bin_step), dlmm.MAX_FEE_RATE)
            pools.append(DlmmSnapshot(pool.venue, pool.amm_key, x, y, state.bin_step,
                                      state.active_id, bins, base,
                                      dlmm.active_fee_rate(state, curve.now), pool.vaults))
    return PoolsSnapshot(snapshot.slot, snapshot.unix_timestamp, tuple(pools))
