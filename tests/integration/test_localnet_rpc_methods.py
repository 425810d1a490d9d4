"""The RPC methods explorers and wallets use, read through solana-py's typed responses (solders
parses Solana's real shapes strictly) and, where solana-py has no type, field by field
against Solana's JSON-RPC documentation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.models import MemcmpOpts
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    ParsedInstruction,
    TransactionDetails,
    UiPartiallyDecodedInstruction,
)

from localnet.blocks import COMPUTE_BUDGET_PROGRAM_ID
from localnet.chain import Chain
from localnet.memo import memo_instruction
from localnet.programs import ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID
from localnet.rpc import build_rpc_app
from tests.helpers import wait_until

SOL = 10**9
USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


@dataclass
class Net:
    chain: Chain
    client: AsyncClient
    url: str
    http: aiohttp.ClientSession

    async def raw(self, method: str, *params: Any) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with self.http.post(self.url, json=body) as resp:
            out: dict[str, Any] = orjson.loads(await resp.read())
            return out

    async def landed(self, sig: Signature, level: str = "confirmed") -> int:
        ok = ("confirmed", "finalized") if level == "confirmed" else ("finalized",)

        def reached() -> tuple[int] | None:  # a tuple: slot 0 is falsy
            st = self.chain.signature_status(sig)
            return (st.slot,) if st is not None and st.confirmation_status in ok else None

        found: Any = await wait_until(reached, 20, f"{sig} {level}", interval=0.02)
        return int(found[0])

    async def send(self, payer: Keypair, *ixs: Instruction) -> Signature:
        blockhash = (await self.client.get_latest_blockhash(Processed)).value.blockhash
        tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), list(ixs), [],
                                                        blockhash), [payer])
        return (await self.client.send_transaction(tx)).value

    async def funded(self) -> Keypair:
        kp = Keypair()
        await self.landed((await self.client.request_airdrop(kp.pubkey(), 10 * SOL)).value)
        return kp


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    chain = Chain(slot_ms=40)
    runner = web.AppRunner(build_rpc_app(chain, rpc_address="127.0.0.1:1",
                                         pubsub_address="127.0.0.1:2"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    clock = asyncio.create_task(chain.run_clock())
    client = AsyncClient(url, commitment=Confirmed, timeout=10)
    http = aiohttp.ClientSession()
    try:
        yield Net(chain, client, url, http)
    finally:
        clock.cancel()
        await client.close()
        await http.close()
        await runner.cleanup()


def _pay(src: Keypair, dst: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=src.pubkey(), to_pubkey=dst, lamports=lamports))


def _create_ata(payer: Pubkey, owner: Pubkey, mint: Pubkey, ata: Pubkey) -> Instruction:
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([1]), [
        AccountMeta(payer, True, True), AccountMeta(ata, False, True),
        AccountMeta(owner, False, False), AccountMeta(mint, False, False),
        AccountMeta(SYSTEM_PROGRAM_ID, False, False), AccountMeta(TOKEN_PROGRAM_ID, False, False)])


def _transfer_checked(src: Pubkey, mint: Pubkey, dst: Pubkey, owner: Pubkey, amount: int,
                      decimals: int) -> Instruction:
    return Instruction(TOKEN_PROGRAM_ID, bytes([12]) + amount.to_bytes(8, "little") +
                       bytes([decimals]), [
        AccountMeta(src, False, True), AccountMeta(mint, False, False),
        AccountMeta(dst, False, True), AccountMeta(owner, True, False)])


async def test_blocks(net: Net) -> None:
    c = net.client
    alice = await net.funded()
    sig = await net.send(alice, _pay(alice, Keypair().pubkey(), SOL))
    slot = await net.landed(sig)
    block = (await c.get_block(slot, "json", max_supported_transaction_version=0)).value
    assert [t.transaction.signatures[0] for t in block.transactions or []] == [sig]
    assert block.parent_slot == slot - 1 and block.block_height is not None
    parent = (await c.get_block(slot - 1, "json", max_supported_transaction_version=0)).value
    assert block.previous_blockhash == parent.blockhash
    assert block.rewards == [] and block.block_time is not None
    sigs_only = (await c.get_block(slot, transaction_details=TransactionDetails.Signatures,
                                   max_supported_transaction_version=0)).value
    assert sigs_only.signatures == [sig] and sigs_only.transactions is None
    parsed = await net.raw("getBlock", slot, {"encoding": "jsonParsed", "commitment": "confirmed",
                                              "maxSupportedTransactionVersion": 0})
    ix = parsed["result"]["transactions"][0]["transaction"]["message"]["instructions"][0]
    assert ix["program"] == "system" and ix["parsed"]["type"] == "transfer"
    none = await net.raw("getBlock", slot, {"transactionDetails": "none", "rewards": False,
                                            "commitment": "confirmed"})
    assert set(none["result"]) == {"blockHeight", "blockTime", "blockhash", "parentSlot",
                                   "previousBlockhash"}
    assert (await net.raw("getBlock", slot, {"commitment": "processed"}))["error"]["code"] == -32602
    far = await net.raw("getBlock", 10**9, {"commitment": "confirmed"})
    assert far["error"] == {"code": -32004, "message": f"Block not available for slot {10**9}"}
    v0 = await net.raw("getBlock", slot, {"commitment": "confirmed"})
    assert v0["error"]["code"] == -32015  # a v0 transaction needs maxSupportedTransactionVersion

    start = max(0, slot - 2)
    blocks = await net.raw("getBlocks", start, slot, {"commitment": "confirmed"})
    assert blocks["result"] == list(range(start, slot + 1))
    assert (await c.get_block_time(slot)).value == block.block_time
    assert (await c.get_first_available_block()).value == 0
    limited = await net.raw("getBlocksWithLimit", 0, 2, {"commitment": "confirmed"})
    assert limited["result"] == [0, 1]
    await net.landed(sig, "finalized")  # getBlock's and getBlocks' default: finalized
    assert (await c.get_blocks(start, slot)).value == list(range(start, slot + 1))
    assert (await c.get_block(slot, max_supported_transaction_version=0)).value.blockhash


async def test_recent_prioritization_fees(net: Net) -> None:
    alice = await net.funded()
    hot = Keypair().pubkey()
    sig = await net.send(alice, set_compute_unit_limit(10_000), set_compute_unit_price(1_234),
                         _pay(alice, hot, SOL))
    slot = await net.landed(sig)
    fees = (await net.client.get_recent_prioritization_fees([hot])).value
    by_slot = {f.slot: f.prioritization_fee for f in fees}
    assert by_slot[slot] == 1_234 and len(fees) <= 150
    assert [f.slot for f in fees] == sorted(by_slot)
    plain = (await net.client.get_recent_prioritization_fees()).value
    assert {f.slot: f.prioritization_fee for f in plain}[slot] == 1_234  # its only transaction


async def test_program_accounts_and_parsed_accounts(net: Net) -> None:
    c, chain = net.client, net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice, bob = await net.funded(), await net.funded()
    for owner, amount in ((alice, 5), (bob, 7)):
        chain.faucet.mint_to(USDC, owner.pubkey(), amount, authority)
    bob_ata = chain.ata(bob.pubkey(), USDC)
    got = (await c.get_program_accounts(
        TOKEN_PROGRAM_ID, encoding="base64",
        filters=[165, MemcmpOpts(offset=32, bytes=str(bob.pubkey()))])).value
    assert [a.pubkey for a in got] == [bob_ata] and len(got[0].account.data) == 165
    mints = (await c.get_program_accounts(TOKEN_PROGRAM_ID, encoding="base64",
                                          filters=[82])).value
    assert USDC in [a.pubkey for a in mints]
    parsed = (await c.get_program_accounts_json_parsed(
        TOKEN_PROGRAM_ID, filters=[MemcmpOpts(offset=0, bytes=str(USDC)), 165])).value
    data: list[Any] = [a.account.data for a in parsed]
    amounts = sorted(d.parsed["info"]["tokenAmount"]["amount"] for d in data)
    assert amounts == ["5", "7"]
    ctx = await net.raw("getProgramAccounts", str(TOKEN_PROGRAM_ID),
                        {"withContext": True, "encoding": "base64", "filters": [{"dataSize": 82}]})
    assert set(ctx["result"]) == {"context", "value"}
    bad = await net.raw("getProgramAccounts", str(TOKEN_PROGRAM_ID),
                        {"filters": [{"dataSize": 1}] * 5})
    assert bad["error"] == {"code": -32602, "message": "Too many filters provided; max 4"}
    multi = (await c.get_multiple_accounts_json_parsed([bob_ata, USDC])).value
    assert multi[0] is not None and multi[0].data.parsed["type"] == "account"  # type: ignore[union-attr]


async def test_node_methods(net: Net) -> None:
    c = net.client
    identity = (await c.get_identity()).value.identity
    (node,) = (await c.get_cluster_nodes()).value
    assert node.pubkey == identity and node.rpc == "127.0.0.1:1" and node.pubsub == "127.0.0.1:2"
    assert (await c.get_slot_leader()).value == identity
    assert (await c.get_slot_leaders(0, 3)).value == [identity] * 3
    assert (await c.get_genesis_hash()).value == net.chain.genesis_hash
    assert (await c.get_version()).value.solana_core
    blockhash = (await c.get_latest_blockhash(Processed)).value.blockhash
    valid = await net.raw("isBlockhashValid", str(blockhash), {"commitment": "processed"})
    assert valid["result"]["value"] is True


async def test_json_parsed_transaction(net: Net) -> None:
    c, chain = net.client, net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice = await net.funded()
    bob = Keypair().pubkey()
    chain.faucet.mint_to(USDC, alice.pubkey(), 50_000_000, authority)
    src, dst = chain.ata(alice.pubkey(), USDC), chain.ata(bob, USDC)
    sig = await net.send(alice, set_compute_unit_price(5),
                         _create_ata(alice.pubkey(), bob, USDC, dst),
                         _transfer_checked(src, USDC, dst, alice.pubkey(), 1_250_000, 6),
                         _pay(alice, bob, SOL), memo_instruction("orderflow:test"))
    await net.landed(sig)
    got = (await c.get_transaction(sig, "jsonParsed", Confirmed, 0)).value
    assert got is not None
    message: Any = got.transaction.transaction.message  # type: ignore[union-attr]
    keys = {str(k.pubkey): k for k in message.account_keys}
    assert keys[str(alice.pubkey())].signer and keys[str(alice.pubkey())].writable
    budget, create, move, pay, memo = message.instructions
    assert isinstance(budget, UiPartiallyDecodedInstruction)  # Agave has no parser for it
    assert budget.program_id == COMPUTE_BUDGET_PROGRAM_ID
    assert isinstance(create, ParsedInstruction)
    assert create.program == "spl-associated-token-account"
    parsed: Any = create.parsed
    assert parsed["type"] == "createIdempotent" and parsed["info"]["account"] == str(dst)
    assert isinstance(move, ParsedInstruction)
    parsed = move.parsed
    assert parsed["type"] == "transferChecked"
    assert parsed["info"]["tokenAmount"]["uiAmountString"] == "1.25"
    assert isinstance(pay, ParsedInstruction) and pay.parsed == {
        "type": "transfer",
        "info": {"source": str(alice.pubkey()), "destination": str(bob), "lamports": SOL}}
    assert isinstance(memo, ParsedInstruction) and memo.program == "spl-memo"
    parsed = memo.parsed
    assert parsed == "orderflow:test"
    meta = got.transaction.meta
    assert meta is not None and meta.inner_instructions
    inner_types = {ix.parsed["type"] for group in meta.inner_instructions
                   for ix in group.instructions if isinstance(ix, ParsedInstruction)}
    assert {"getAccountDataSize", "createAccount", "initializeAccount3"} <= inner_types
    raw = await net.raw("getTransaction", str(sig), {"encoding": "jsonParsed",
                                                    "commitment": "confirmed",
                                                    "maxSupportedTransactionVersion": 0})
    assert "loadedAddresses" not in raw["result"]["meta"]


async def test_simulate_inner_instructions_and_finalized_get_transaction(net: Net) -> None:
    c, chain = net.client, net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice = await net.funded()
    bob = Keypair().pubkey()
    stale = chain.latest_blockhash()[0]
    chain.advance(200)  # expire it: replaceRecentBlockhash must rescue the simulation
    tx = VersionedTransaction(MessageV0.try_compile(
        alice.pubkey(), [_create_ata(alice.pubkey(), bob, USDC, chain.ata(bob, USDC))], [],
        stale), [alice])
    import base64

    encoded = base64.b64encode(bytes(tx)).decode()
    sim = await net.raw("simulateTransaction", encoded, {
        "encoding": "base64", "replaceRecentBlockhash": True, "innerInstructions": True})
    value = sim["result"]["value"]
    assert value["err"] is None and value["unitsConsumed"] > 0 and value["logs"]
    assert value["replacementBlockhash"]["blockhash"] == str(chain.latest_blockhash()[0])
    inner = value["innerInstructions"]
    assert inner[0]["index"] == 0
    assert inner[0]["instructions"][0]["parsed"]["type"] == "getAccountDataSize"
    refused = await net.raw("simulateTransaction", encoded, {"encoding": "base64",
                                                             "sigVerify": True,
                                                             "replaceRecentBlockhash": True})
    assert refused["error"]["code"] == -32602
    # getTransaction's default commitment is finalized: null until 32 slots have passed
    sig = await net.send(alice, _pay(alice, bob, SOL))
    await net.landed(sig)
    assert (await c.get_transaction(sig, "json", Finalized, 0)).value is None
    await net.landed(sig, "finalized")
    assert (await c.get_transaction(sig, "json", Finalized, 0)).value is not None
