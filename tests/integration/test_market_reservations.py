"""A reservation that cannot land leaves the market's books at once, and drift never trades
against reserved state (issue 9, defect 7).

The scenario as reported: a 5,000 SOL order from a wallet holding 100 SOL fails
``insufficient_funds``; its swap stayed reserved in the Raydium SOL/USDC book until the
blockhash expired, the drift trader traded against that state, and later 0.1 SOL orders
filled at ~470x the fair price. Here through the real HTTP APIs (market and JSON-RPC on
loopback, solana-py's AsyncClient as the engine uses it); nothing is mocked.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from localnet.admin import auth_headers
from localnet.chain import Chain
from localnet.market import RAYDIUM_CPMM, Market, build_market_app
from localnet.market.tokens import SOL, USDC
from localnet.rpc import build_rpc_app
from tests.helpers import free_port, wait_until

TOKEN = "reservations-test-token"
SOL_MINT, USDC_MINT = str(SOL.mint), str(USDC.mint)
ONE_SOL = 10**9


@dataclass
class Net:
    chain: Chain
    market: Market
    venue: str
    http: aiohttp.ClientSession
    rpc: AsyncClient

    async def faucet(self, owner: Keypair, **extra: Any) -> None:
        async with self.http.post(f"{self.venue}/swap/v1/faucet",
                                  json={"owner": str(owner.pubkey()), **extra},
                                  headers=auth_headers(TOKEN)) as resp:
            assert resp.status == 200, await resp.text()

    async def quote(self, amount: int) -> dict[str, Any]:
        params = {"inputMint": SOL_MINT, "outputMint": USDC_MINT, "amount": str(amount),
                  "slippageBps": "50", "dexes": RAYDIUM_CPMM}
        async with self.http.get(f"{self.venue}/swap/v1/quote", params=params) as resp:
            doc: dict[str, Any] = await resp.json()
            assert resp.status == 200, doc
            return doc

    async def swap_tx(self, quote: dict[str, Any], user: Keypair) -> VersionedTransaction:
        body = {"quoteResponse": quote, "userPublicKey": str(user.pubkey())}
        async with self.http.post(f"{self.venue}/swap/v1/swap", json=body) as resp:
            doc = await resp.json()
            assert resp.status == 200, doc
        tx = VersionedTransaction.from_bytes(base64.b64decode(doc["swapTransaction"]))
        sigs = list(tx.signatures)
        sigs[0] = user.sign_message(to_bytes_versioned(tx.message))
        return VersionedTransaction.populate(tx.message, sigs)

    async def raydium(self) -> dict[str, Any]:
        async with self.http.get(f"{self.venue}/swap/v1/pools") as resp:
            pools = (await resp.json())["pools"]
        pool: dict[str, Any] = next(p for p in pools if p["label"] == RAYDIUM_CPMM
                                    and p["symbolX"] == "SOL" and p["symbolY"] == "USDC")
        return pool


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    chain = Chain(slot_ms=50)
    market = Market(chain, seed=7, drift_bps=20)
    rpc_runner, rpc_url = await _serve(build_rpc_app(chain, admin_token=TOKEN))
    venue_runner, venue = await _serve(
        build_market_app(market, run_drift=False, admin_token=TOKEN))
    http = aiohttp.ClientSession()
    rpc = AsyncClient(rpc_url, commitment=Confirmed, timeout=10)
    try:
        yield Net(chain, market, venue, http, rpc)
    finally:
        await rpc.close()
        await http.close()
        await venue_runner.cleanup()
        await rpc_runner.cleanup()
        market.close()


def _price(quote: dict[str, Any]) -> float:
    """USDC per SOL of a SOL -> USDC quote."""
    return (int(quote["outAmount"]) / 10**6) / (int(quote["inAmount"]) / ONE_SOL)


async def test_failed_5000_sol_order_does_not_wreck_the_market(net: Net) -> None:
    user = Keypair()
    await net.faucet(user)  # 100 SOL, far from 5,000
    fair = _price(await net.quote(ONE_SOL // 10))
    tx = await net.swap_tx(await net.quote(5_000 * ONE_SOL), user)
    assert (await net.raydium())["pendingSwaps"] == 1
    with pytest.raises(RPCException):  # preflight: the wallet cannot pay 5,000 SOL
        await net.rpc.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=False))
    # released on that evidence, not a minute later when the blockhash expires
    assert (await net.raydium())["pendingSwaps"] == 0
    assert _price(await net.quote(ONE_SOL // 10)) == pytest.approx(fair, rel=1e-9)
    for _ in range(30):  # the drift trader keeps trading, one slot at a time
        net.market.drift_step()
        net.chain.tick()
    pool = await net.raydium()
    assert pool["reserveX"] == pool["settledReserveX"]
    assert int(pool["reserveX"]) > 4_000 * ONE_SOL  # the pool started at 5,000 SOL
    assert _price(await net.quote(ONE_SOL // 10)) == pytest.approx(fair, rel=0.05)
    assert net.market.reconcile() == []


async def test_drift_never_trades_against_an_open_reservation(net: Net) -> None:
    user = Keypair()
    await net.faucet(user)
    tx = await net.swap_tx(await net.quote(10 * ONE_SOL), user)  # reserved, not sent yet
    before = await net.raydium()
    for _ in range(10):
        net.market.drift_step()
        net.chain.tick()
    during = await net.raydium()
    assert during["pendingSwaps"] == 1
    assert (during["settledReserveX"], during["settledReserveY"]) == (
        before["settledReserveX"], before["settledReserveY"])
    sig = (await net.rpc.send_raw_transaction(bytes(tx))).value
    await wait_until(lambda: net.chain.transaction(sig) is not None, 5, "the swap to land")
    assert (await net.raydium())["pendingSwaps"] == 0
    moved = False
    for _ in range(10):  # settled again: drift resumes on this pool
        net.market.drift_step()
        net.chain.tick()
        moved = moved or (await net.raydium())["settledReserveX"] != during["settledReserveX"]
    assert moved
    assert net.market.reconcile() == []


async def test_refused_swap_that_lands_later_is_booked(net: Net) -> None:
    user = Keypair()
    await net.faucet(user, mint=SOL_MINT, amount=str(ONE_SOL))  # 1 SOL: fees only
    tx = await net.swap_tx(await net.quote(50 * ONE_SOL), user)
    with pytest.raises(RPCException):
        await net.rpc.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=False))
    assert (await net.raydium())["pendingSwaps"] == 0
    await net.faucet(user, mint=SOL_MINT, amount=str(100 * ONE_SOL))
    sig = (await net.rpc.send_raw_transaction(bytes(tx))).value  # same bytes, now payable
    record = net.chain.transaction(sig)
    assert record is not None and record.err is None
    pool = await net.raydium()
    assert (pool["reserveX"], pool["reserveY"]) == (pool["settledReserveX"],
                                                    pool["settledReserveY"])
    assert net.market.reconcile() == []
