"""A swap's memo and ``getSignaturesForAddress``: finding the engine's swaps from the chain.

The market puts ``"memo"`` from ``POST /swap`` into the transaction as an SPL Memo; the
RPC lists a wallet's transactions newest first with Solana's memo format. Also the
balance reads the engine shows a person (``getBalance``, ``getTokenAccountsByOwner``).
Real servers on loopback, solana-py's AsyncClient (the engine's client); no mocks.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts
from solders.keypair import Keypair
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.admin import auth_headers
from localnet.chain import Chain
from localnet.market import Market, build_market_app
from localnet.market.tokens import SOL, USDC
from localnet.memo import MEMO_PROGRAM_ID
from localnet.rpc import build_rpc_app
from tests.helpers import free_port, wait_until

TOKEN = "history-test-token"
SOL_MINT, USDC_MINT = str(SOL.mint), str(USDC.mint)
ONE_SOL = 10**9


@dataclass
class Net:
    chain: Chain
    venue: str
    rpc_url: str
    http: aiohttp.ClientSession
    rpc: AsyncClient

    async def swap(self, user: Keypair, **extra: Any) -> tuple[int, dict[str, Any]]:
        params = {"inputMint": SOL_MINT, "outputMint": USDC_MINT, "amount": str(ONE_SOL),
                  "slippageBps": "50"}
        async with self.http.get(f"{self.venue}/swap/v1/quote", params=params) as resp:
            quote = await resp.json()
        body = {"quoteResponse": quote, "userPublicKey": str(user.pubkey()), **extra}
        async with self.http.post(f"{self.venue}/swap/v1/swap", json=body) as resp:
            return resp.status, await resp.json()

    async def confirmed(self, sig: Signature) -> None:
        async def done() -> bool:
            st = (await self.rpc.get_signature_statuses([sig])).value[0]
            return st is not None and str(st.confirmation_status) in (
                "TransactionConfirmationStatus.Confirmed",
                "TransactionConfirmationStatus.Finalized")
        await wait_until(done, 10, f"{sig} confirmed")

    async def raw(self, method: str, params: list[Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self.http.post(self.rpc_url, json=body) as resp:
            doc: dict[str, Any] = await resp.json()
            return doc


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    chain = Chain(slot_ms=20)
    market = Market(chain, seed=4, drift_bps=0)
    rpc_runner, rpc_url = await _serve(build_rpc_app(chain, admin_token=TOKEN))
    venue_runner, venue = await _serve(build_market_app(market, admin_token=TOKEN))
    clock = asyncio.create_task(chain.run_clock())
    http = aiohttp.ClientSession()
    rpc = AsyncClient(rpc_url, commitment=Confirmed, timeout=10)
    try:
        yield Net(chain, venue, rpc_url, http, rpc)
    finally:
        clock.cancel()
        await rpc.close()
        await http.close()
        await venue_runner.cleanup()
        await rpc_runner.cleanup()
        market.close()


def _signed(swap: dict[str, Any], user: Keypair) -> VersionedTransaction:
    tx = VersionedTransaction.from_bytes(base64.b64decode(swap["swapTransaction"]))
    sigs = list(tx.signatures)
    sigs[0] = user.sign_message(to_bytes_versioned(tx.message))
    return VersionedTransaction.populate(tx.message, sigs)


async def test_swap_memo_is_on_chain_and_listed_for_the_wallet(net: Net) -> None:
    user = Keypair()
    net.chain.faucet.airdrop(user.pubkey(), 10 * ONE_SOL)
    memo = "orderflow:3f1c6a8e-2b1d-4a7e-9a53-1f2b3c4d5e6f ü"  # 49 characters, 50 bytes
    status, swap = await net.swap(user, memo=memo)
    assert status == 200, swap
    tx = _signed(swap, user)
    keys = tx.message.account_keys
    memo_ixs = [ix for ix in tx.message.instructions
                if keys[ix.program_id_index] == MEMO_PROGRAM_ID]
    assert [(bytes(ix.data), list(ix.accounts)) for ix in memo_ixs] == [(memo.encode(), [])]
    sig = (await net.rpc.send_raw_transaction(bytes(tx))).value
    await net.confirmed(sig)
    record = net.chain.transaction(sig)
    assert record is not None and record.err is None
    got = (await net.rpc.get_signatures_for_address(user.pubkey(), commitment=Confirmed)).value
    assert got[0].signature == sig
    assert got[0].memo == f"[{len(memo.encode())}] {memo}"
    assert got[0].err is None and got[0].slot == record.slot
    assert got[0].block_time == record.block_time
    assert got[1].memo is None  # the airdrop before it
    # without a memo field the swap has no memo instruction
    status, plain = await net.swap(user)
    assert status == 200
    plain_tx = _signed(plain, user)
    assert MEMO_PROGRAM_ID not in plain_tx.message.account_keys


@pytest.mark.parametrize(("memo", "why"), [
    ("x" * 129, "129 bytes"),
    ("é" * 65, "130 bytes"),
    ("orderflow:a\nb", "control characters"),
    ("tab\there", "control characters"),
    ("", "empty"),
    (42, "string"),
])
async def test_bad_memo_is_400(net: Net, memo: Any, why: str) -> None:
    status, doc = await net.swap(Keypair(), memo=memo)
    assert status == 400, doc
    assert "memo" in doc["error"] and why in doc["error"], doc
    assert doc["errorCode"] == "INVALID_REQUEST"


async def test_before_until_limit_and_failed_transactions(net: Net) -> None:
    payer, target = Keypair(), Keypair().pubkey()
    net.chain.faucet.airdrop(payer.pubkey(), 10 * ONE_SOL)
    sigs: list[Signature] = []
    for i in range(5):
        lamports = 5 * ONE_SOL if i == 2 else ONE_SOL // 100 + i  # #2 fails: too much
        blockhash, _ = net.chain.latest_blockhash()
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=target,
                                     lamports=lamports * (3 if i == 2 else 1)))
        tx = VersionedTransaction(Message.new_with_blockhash([ix], payer.pubkey(), blockhash),
                                  [payer])
        sigs.append(net.chain.send(tx))
    await net.confirmed(sigs[-1])
    newest_first = list(reversed(sigs))

    async def listed(**kw: Any) -> list[Signature]:
        resp = await net.rpc.get_signatures_for_address(target, commitment=Confirmed, **kw)
        return [s.signature for s in resp.value]

    assert await listed() == newest_first
    assert await listed(limit=2) == newest_first[:2]
    assert await listed(before=newest_first[1]) == newest_first[2:]
    assert await listed(until=newest_first[3]) == newest_first[:3]
    assert await listed(before=newest_first[0], until=newest_first[3], limit=1) == \
        newest_first[1:2]
    assert await listed(before=Signature.new_unique()) == []  # unknown: nothing, as Agave
    failed = (await net.rpc.get_signatures_for_address(target, commitment=Confirmed)).value[2]
    assert failed.signature == sigs[2] and failed.err is not None
    # finalized: only what is 32 slots deep (the oldest first, so a suffix of the list)
    finalized = [s.signature for s in (await net.rpc.get_signatures_for_address(
        target, commitment=Finalized)).value]
    assert finalized == newest_first[len(newest_first) - len(finalized):]
    for sig in finalized:
        assert (net.chain.signature_status(sig) or _never()).confirmation_status == "finalized"
    def all_final() -> bool:
        return (net.chain.signature_status(sigs[-1]) or _never()).confirmation_status == \
            "finalized"
    await wait_until(all_final, 10, "finalized")
    assert [s.signature for s in (await net.rpc.get_signatures_for_address(
        target, commitment=Finalized)).value] == newest_first
    assert await listed() == newest_first  # an unrelated address is not mixed in
    assert (await net.rpc.get_signatures_for_address(Keypair().pubkey())).value == []


def _never() -> Any:
    raise AssertionError("landed transaction without a status")


async def test_errors_as_solana(net: Net) -> None:
    addr = str(Keypair().pubkey())
    for params, message in (
        (["not-a-key"], "Invalid param"),
        ([addr, {"limit": 1001}], "Invalid limit; max 1000"),
        ([addr, {"limit": 0}], "Invalid limit; max 1000"),
        ([addr, {"before": "xyz"}], "Invalid param"),
        ([addr, {"commitment": "processed"}], "Method does not support commitment below"),
    ):
        doc = await net.raw("getSignaturesForAddress", params)
        assert doc["error"]["code"] == -32602, (params, doc)
        assert doc["error"]["message"].startswith(message), (params, doc)
    with pytest.raises(RPCException):
        await net.rpc.get_signatures_for_address(Keypair().pubkey(), limit=5000)


async def test_balances_in_solana_shape(net: Net) -> None:
    """What the engine reads to say "needs 5000 SOL + fees, wallet holds 100.2 SOL"."""
    owner = Keypair().pubkey()
    net.chain.faucet.airdrop(owner, 100_200_000_000)
    bal = await net.rpc.get_balance(owner, commitment=Confirmed)
    assert bal.value == 100_200_000_000 and bal.context.slot >= 0
    async with net.http.post(f"{net.venue}/swap/v1/faucet", headers=auth_headers(TOKEN),
                             json={"owner": str(owner), "mint": USDC_MINT,
                                   "amount": "1234500000"}) as resp:
        assert resp.status == 200
    usdc = Pubkey.from_string(USDC_MINT)
    parsed = await net.rpc.get_token_accounts_by_owner_json_parsed(
        owner, TokenAccountOpts(mint=usdc), commitment=Confirmed)
    (acc,) = parsed.value
    info: Any = acc.account.data.parsed["info"]
    assert acc.account.data.program == "spl-token"
    assert info["mint"] == USDC_MINT and info["owner"] == str(owner)
    assert info["tokenAmount"] == {"amount": "1234500000", "decimals": 6,
                                   "uiAmount": 1234.5, "uiAmountString": "1234.5"}
    raw = await net.rpc.get_token_accounts_by_owner(
        owner, TokenAccountOpts(mint=usdc, encoding="base64"), commitment=Confirmed)
    (acc64,) = raw.value
    assert acc64.pubkey == acc.pubkey
    assert int.from_bytes(bytes(acc64.account.data)[64:72], "little") == 1_234_500_000
    none = await net.rpc.get_token_accounts_by_owner_json_parsed(
        Keypair().pubkey(), TokenAccountOpts(mint=usdc), commitment=Confirmed)
    assert none.value == []
