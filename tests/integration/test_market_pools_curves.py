"""The local market's ``/pools`` read as curves pays exactly what its ``/quote`` pays.

A real market on a real (in-process) chain, moved by the noise trader's on-chain trades
(CP-Swap reserves, DLMM active bin and volatility): for every pair, both directions and
amounts from dust to more than a pool holds, the trigger engine's curves give the
market's own best output, and never more than their rate bound per unit.
"""

from __future__ import annotations

import orjson
import pytest

from localnet.chain import Chain
from localnet.market import Market, MarketError
from localnet.market.tokens import SOL, USDC, USDT
from pipeline.trigger_curves import PairView
from pipeline.venues.market_pools import parse_pools

MINTS = [str(t.mint) for t in (SOL, USDC, USDT)]
AMOUNTS = [1, 999, 10**6, 10**9, 37 * 10**9, 10**12, 5 * 10**13, 10**16]


def _market_out(market: Market, tin: str, tout: str, amount: int) -> int:
    try:
        return int(market.quote(tin, tout, amount)["outAmount"])
    except MarketError as exc:  # no pool can fill it (or pays 0)
        assert exc.status == 400, exc
        return 0


@pytest.mark.parametrize("steps", [0, 7])
async def test_curves_quote_what_the_market_quotes(steps: int) -> None:
    chain = Chain(slot_ms=50)
    market = Market(chain, seed=21, drift_bps=60)
    for _ in range(steps):
        market.drift_step()
        chain.tick()
    doc = orjson.loads(orjson.dumps(market.pools_json()))  # as it crosses the wire
    snap = parse_pools(doc)
    assert len(snap.pools) == len(market.pools)
    view = PairView.of([p.curve for p in snap.pools], snap.slot)
    compared = 0
    for tin in MINTS:
        for tout in MINTS:
            if tin == tout:
                continue
            for amount in AMOUNTS:
                expected = _market_out(market, tin, tout, amount)
                assert view.best_out(tin, tout, amount) == expected, (tin, tout, amount)
                assert expected <= amount * view.rate_bound(tin, tout)
                compared += expected > 0
    assert compared > 30
