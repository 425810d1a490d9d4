"""Launching a token and its pools on the running local market (``POST /admin/pools``):
admin-guarded, listed by ``/pools`` with its creation slot, quoted and swapped like any
listed pool (a real swap landed on the chain), and kept across a restart of the market."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.admin import auth_headers
from localnet.chain import Chain
from localnet.market import Market, build_market_app
from localnet.market.resume import snapshot
from localnet.market.tokens import SOL
from localnet.market.txbuilder import ata
from tests.integration.test_market import (
    ADMIN,
    ADMIN_TOKEN,
    get_quote,
    get_swap,
    land,
    user_signed,
)

SOL_MINT = str(SOL.mint)


@pytest.fixture
def chain() -> Chain:
    return Chain(slot_ms=50)


@pytest.fixture
def market(chain: Chain) -> Market:
    return Market(chain, seed=5, drift_bps=0)


@pytest.fixture
async def client(market: Market) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_market_app(market, admin_token=ADMIN_TOKEN))) as c:
        yield c


async def launch(client: TestClient[Any, Any], **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/admin/pools", json=body, headers=ADMIN)
    return resp.status, await resp.json()


async def test_a_launch_needs_the_admin_token(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/admin/pools", json={"price": "0.001", "depth": 1000},
                             headers=auth_headers("wrong"))
    assert resp.status == 401
    pools = await (await client.get("/swap/v1/pools")).json()
    assert len(pools["pools"]) == 6  # nothing launched


async def test_a_launched_pool_is_listed_quoted_and_swapped(
        client: TestClient[Any, Any], market: Market, chain: Chain) -> None:
    mint = str(Keypair().pubkey())
    status, doc = await launch(client, mint=mint, symbol="PUMP", decimals=6, price="0.001",
                               depth=20_000, pools=["cpmm", "dlmm"])
    assert status == 201, doc
    assert doc["mint"] == mint and doc["decimals"] == 6 and doc["createdSlot"] == chain.slot
    listed = [p for p in (await (await client.get("/swap/v1/pools")).json())["pools"]
              if p["mintX"] == mint]
    assert {p["label"] for p in listed} == {"Raydium CP", "Meteora DLMM"}
    assert all(p["createdSlot"] == doc["createdSlot"] and p["mintY"] == SOL_MINT
               for p in listed)
    cp = next(p for p in listed if p["label"] == "Raydium CP")
    assert (int(cp["reserveX"]), int(cp["reserveY"])) == (20_000 * 10**6, 20 * 10**9)
    user = Keypair()
    chain.faucet.airdrop(user.pubkey(), 10 * 10**9)
    quote = await get_quote(client, SOL_MINT, mint, 5 * 10**8, "Raydium CP")
    status, swap = await get_swap(client, quote, user)
    assert status == 200, swap
    land(chain, user_signed(swap, user))
    assert chain.token_balance(ata(user.pubkey(), Pubkey.from_string(mint))) == \
        int(quote["outAmount"])
    assert market.reconcile() == []
    # the faucet hands the new token out too
    resp = await client.post("/swap/v1/faucet", json={"owner": str(user.pubkey()), "mint": mint,
                                                      "amount": "5"}, headers=ADMIN)
    assert resp.status == 200, await resp.json()


async def test_a_launch_is_refused_with_its_reason(client: TestClient[Any, Any]) -> None:
    mint = str(Keypair().pubkey())
    assert (await launch(client, mint=mint, price="0.001", depth=1000))[0] == 201
    status, doc = await launch(client, mint=mint, price="0.001", depth=1000)
    assert (status, doc["errorCode"]) == (409, "TOKEN_EXISTS")
    status, doc = await launch(client, mint=SOL_MINT, price="1", depth=1)
    assert (status, doc["errorCode"]) == (409, "TOKEN_EXISTS")
    for bad in ({"price": "1e-3", "depth": 10}, {"price": "0.001", "depth": 0},
                {"price": "0.001", "depth": 10, "pools": ["orderbook"]},
                {"price": "0.001", "depth": 10, "color": "red"}):
        status, doc = await launch(client, **bad)
        assert (status, doc["errorCode"]) == (400, "INVALID_REQUEST"), (bad, doc)


async def test_launched_pools_survive_a_restart_of_the_market(
        client: TestClient[Any, Any], market: Market, chain: Chain) -> None:
    mint = str(Keypair().pubkey())
    status, doc = await launch(client, mint=mint, symbol="KEEP", price="0.5", depth=300,
                               pools=["dlmm"])
    assert status == 201, doc
    saved = pickle.loads(snapshot(market))
    market.close()
    again = Market(chain, seed=market.seed, drift_bps=0, restore=saved)  # books == vaults
    (pool,) = [p for p in again.pools if str(p.x.mint) == mint]
    assert pool.created_slot == doc["createdSlot"] and pool.label == "Meteora DLMM"
    assert again.quote(SOL_MINT, mint, 10**8)["outAmount"] != "0"
