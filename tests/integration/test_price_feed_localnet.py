"""The local market's price feed on a real ``orderflow localnet`` process.

A real trade on a pool (a swap from the market's API, signed and sent to the RPC) changes
the pool's vaults; the vault's ``accountNotification`` on the PubSub (RPC port + 1) makes
the feed read the pools again at once: the new view arrives long before the next poll
(set to 60 s here, so only the notification can explain it) and shows the moved price.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import orjson
from solders.keypair import Keypair

from localnet.market.tokens import SOL, USDC
from pipeline.price_feed import AccountWakeups, MarketPoolsFeed, Pair, pair_of
from pipeline.solana_rpc import sign_as
from pipeline.trigger_curves import PairView
from tests.helpers import wait_until
from tests.localnet_proc import LocalnetProcess

SOL_MINT, USDC_MINT = str(SOL.mint), str(USDC.mint)


async def market_swap(proc: LocalnetProcess, venue_url: str, user: Keypair, tin: str,
                      tout: str, amount: int) -> str:
    """A real trade: the market's quote and transaction, signed by ``user``, sent, confirmed."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{venue_url}/quote", params={
                "inputMint": tin, "outputMint": tout, "amount": str(amount),
                "slippageBps": "100"}) as r:
            quote = orjson.loads(await r.read())
            assert r.status == 200, quote
        async with s.post(f"{venue_url}/swap", json={
                "quoteResponse": quote, "userPublicKey": str(user.pubkey())}) as r:
            swap = orjson.loads(await r.read())
            assert r.status == 200, swap
    tx = sign_as(base64.b64decode(swap["swapTransaction"]), user)
    sig = await proc.send(tx)
    await proc.confirmed(sig)
    return sig


async def test_a_trade_on_the_pool_reaches_the_feed_through_account_notifications(
        tmp_path: Path) -> None:
    trader = Keypair()
    proc = LocalnetProcess(tmp_path / "data", "--fund", str(trader.pubkey()))
    await proc.start()
    venue_url = f"http://127.0.0.1:{proc.env['ORDERFLOW_LOCALNET_VENUE_PORT']}/swap/v1"
    views: asyncio.Queue[PairView] = asyncio.Queue()
    pair = pair_of(SOL_MINT, USDC_MINT)

    async def on_view(p: Pair, view: PairView) -> None:
        assert p == pair
        await views.put(view)

    wakeups = AccountWakeups(f"ws://127.0.0.1:{proc.rpc_port + 1}")
    try:
        async with aiohttp.ClientSession() as session:
            feed = MarketPoolsFeed(venue_url, session, poll_s=60, refresh_s=600,
                                   wakeups=wakeups)
            task = asyncio.ensure_future(feed.run(lambda: [pair], on_view))
            first = await asyncio.wait_for(views.get(), 30)
            big = 200 * 10**9
            before = first.best_out(SOL_MINT, USDC_MINT, big)
            assert before > 0 and len(first.curves) == 2
            # every vault (12: six pools) subscribed before the trade
            await wait_until(lambda: wakeups.watching == 12 and wakeups.confirmed == 12, 10,
                             "vault subscriptions")
            await market_swap(proc, venue_url, trader, SOL_MINT, USDC_MINT, 20 * 10**9)
            moved = await asyncio.wait_for(views.get(), 10)
            assert wakeups.notifications >= 1
            assert feed.reads >= 2
            assert moved.best_out(SOL_MINT, USDC_MINT, big) < before  # selling SOL moved it
            assert moved.slot > first.slot
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        proc.stop()
