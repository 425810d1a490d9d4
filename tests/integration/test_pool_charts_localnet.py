"""``GET /api/markets/pools`` with ``ORDERFLOW_VENUES=onchain`` against a real
``orderflow localnet`` process: a CP-Swap pool laid out from the program's source layout
and the real mainnet DLMM SOL/USDC pair with its bin arrays (``meteora-dlmm``) are loaded
with ``ORDERFLOW_LOCALNET_ACCOUNTS``, found by the engine's program scans through the
ingress's real wiring (``market_access``: one RPC client, the router's own adapters), read
and served; the answer is validated against the OpenAPI document.

Reading pools needs no program binary; trading does. So the CP-Swap pool's trades are
transactions that move its vaults as a swap does (the vaults belong to a test key here
instead of the program's authority PDA, and each transaction names the pool account, as a
swap does): one is a trade, one (both vaults gain) is liquidity and is not shown. A swap by
the real programs is checked by hand (``orderflow up`` with ORDERFLOW_LOCALNET_PROGRAMS)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import meteora_dlmm
import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from ingress.app import build_app
from ingress.hub import StatusHub
from ingress.market_wiring import market_access
from pipeline.tokens import SOL, USDC
from pipeline.venue_set import VenueSet
from tests.localnet_proc import LocalnetProcess
from tests.pool_layouts import Accounts, cp_pool, dlmm_pair, dlmm_reference, token_account
from tests.unit.test_ingress_chain_view import get, serve
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

pytestmark = pytest.mark.integration


def write_accounts(folder: Path, accounts: Accounts) -> str:
    """One ``solana account --output json`` file per account; the
    ``ORDERFLOW_LOCALNET_ACCOUNTS`` value that loads them."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for key, (data, owner) in accounts.items():
        path = folder / f"{key}.json"
        path.write_text(json.dumps({"pubkey": str(key), "account": {
            "lamports": 10**9, "data": [base64.b64encode(data).decode(), "base64"],
            "owner": str(owner), "executable": False, "rentEpoch": 0, "space": len(data)}}))
        pairs.append(f"{key}={path}")
    return ",".join(pairs)


def token_transfer(source: Pubkey, dest: Pubkey, owner: Pubkey, amount: int,
                   *also: Pubkey) -> Instruction:
    """SPL Token ``Transfer`` (instruction 3); ``also``: accounts the program ignores (a
    swap names its pool: this makes the transaction part of the pool's history)."""
    metas = [AccountMeta(source, False, True), AccountMeta(dest, False, True),
             AccountMeta(owner, True, False), *(AccountMeta(k, False, False) for k in also)]
    return Instruction(TOKEN_PROGRAM_ID, bytes([3]) + struct.pack("<Q", amount), metas)


async def send(net: LocalnetProcess, ixs: list[Instruction], *signers: Keypair) -> str:
    message = Message.new_with_blockhash(ixs, signers[0].pubkey(), await net.blockhash())
    sig = await net.send(VersionedTransaction(message, list(signers)))
    await net.confirmed(sig)
    return sig


async def test_on_chain_pools_and_their_trades_from_a_real_localnet(tmp_path: Path) -> None:
    trader, vault_owner = Keypair(), Keypair()
    cp = cp_pool(vault_owner.pubkey())
    pair, dlmm_accounts = dlmm_pair()
    sol, usdc = Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint)
    trader_sol, trader_usdc = Pubkey.new_unique(), Pubkey.new_unique()
    wallet: Accounts = {
        trader_sol: (token_account(sol, trader.pubkey(), 10 * 10**9), TOKEN_PROGRAM_ID),
        trader_usdc: (token_account(usdc, trader.pubkey(), 0), TOKEN_PROGRAM_ID)}
    net = LocalnetProcess(tmp_path / "data", "--ephemeral", "--fund", str(trader.pubkey()),
                          "--fund", str(vault_owner.pubkey()))
    net.env["ORDERFLOW_LOCALNET_ACCOUNTS"] = write_accounts(
        tmp_path / "accounts", {**cp.accounts, **dlmm_accounts, **wallet})
    await net.start()
    try:
        swap = await send(net, [
            token_transfer(trader_sol, cp.vault_0, trader.pubkey(), 2 * 10**9, cp.pool),
            token_transfer(cp.vault_1, trader_usdc, vault_owner.pubkey(), 299 * 10**6)],
            trader, vault_owner)
        await send(net, [
            token_transfer(trader_sol, cp.vault_0, trader.pubkey(), 10**9, cp.pool),
            token_transfer(trader_usdc, cp.vault_1, trader.pubkey(), 150 * 10**6)], trader)
        config = ingress_config(rpc_url=net.url, wallet_address=str(trader.pubkey()),
                                venues=VenueSet(kind="onchain", cluster="localnet"))
        async with market_access(config) as market:
            app = build_app(config, producer=FakeBus(), store=FakeStore(), hub=StatusHub(),
                            market=market)
            async for client in serve(app):
                status, doc = await get(client, "/api/markets/pools")
    finally:
        net.stop()
    assert (status, doc["unavailable"], doc["tradesUnavailable"]) == (200, None, None)
    by_pool: dict[str, Any] = {p["pool"]: p for p in doc["pools"]}
    assert set(by_pool) == {str(cp.pool), str(pair)}  # both found by program scan
    shown = by_pool[str(cp.pool)]
    vault_0 = 5_000 * 10**9 + 1_000 + 3 * 10**9
    vault_1 = 750_000 * 10**6 + 500 - 299 * 10**6 + 150 * 10**6
    assert (shown["reserveX"], shown["reserveY"]) == (str(vault_0 - cp.fees[0]),
                                                     str(vault_1 - cp.fees[1]))
    assert [(t["signature"], t["tokenIn"], t["amountIn"], t["tokenOut"], t["amountOut"])
            for t in shown["trades"]] == [
        (swap, SOL.mint, str(2 * 10**9), USDC.mint, str(299 * 10**6))]
    assert isinstance(shown["trades"][0]["blockTime"], int)
    ref = dlmm_reference()
    theirs = meteora_dlmm.PoolState.from_accounts(
        base64.b64decode(ref["lbPairB64"]),
        [base64.b64decode(a["data"]) for a in ref["binArraysB64"]], 9, 6)
    dlmm = by_pool[str(pair)]
    assert dlmm["activeId"] == theirs.active_id and dlmm["trades"] == []
    assert {b["binId"]: (int(b["amountX"]), int(b["amountY"])) for b in dlmm["bins"]} == {
        i: (b.amount_x, b.amount_y) for i, b in theirs.bins.items()
        if abs(i - theirs.active_id) <= 60 and (b.amount_x or b.amount_y)}
