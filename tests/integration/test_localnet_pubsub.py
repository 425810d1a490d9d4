"""The localnet's PubSub WebSocket driven by an independent client: solana-py's
``SolanaWsClient``, which parses every frame with solders' strict notification types.

The RPC and the WebSocket run on real sockets over one chain whose slot clock runs for real
(50 ms slots); every wait is on a notification or on chain state, never on time alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.models import MemcmpOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    AccountNotificationJsonParsed,
    LogsNotification,
    ProgramNotification,
    RootNotification,
    SignatureNotification,
    SlotNotification,
)
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.chain import FINALIZATION_DEPTH, Chain
from localnet.memo import MEMO_PROGRAM_ID, memo_instruction
from localnet.programs import TOKEN_PROGRAM_ID
from localnet.pubsub import HUB_KEY, build_pubsub_app
from localnet.rpc import build_rpc_app
from tests.helpers import wait_until
from tests.localnet_proc import LocalnetProcess, transfer_tx

SOL = 10**9
USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


@dataclass
class Net:
    chain: Chain
    client: AsyncClient
    ws_url: str
    pubsub: web.Application

    async def funded(self, lamports: int = 10 * SOL) -> Keypair:
        kp = Keypair()
        sig = (await self.client.request_airdrop(kp.pubkey(), lamports)).value
        await wait_until(lambda: self.chain.signature_status(sig), 10, "airdrop landed")
        return kp

    async def send(self, payer: Keypair, *ixs: Instruction) -> Signature:
        blockhash = (await self.client.get_latest_blockhash(Processed)).value.blockhash
        tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), list(ixs), [],
                                                        blockhash), [payer])
        return (await self.client.send_transaction(tx)).value


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    chain = Chain(slot_ms=50)
    rpc_runner, rpc_port = await _serve(build_rpc_app(chain))
    pubsub = build_pubsub_app(chain)
    ws_runner, ws_port = await _serve(pubsub)
    clock = asyncio.create_task(chain.run_clock())
    client = AsyncClient(f"http://127.0.0.1:{rpc_port}", commitment=Confirmed, timeout=10)
    try:
        yield Net(chain, client, f"ws://127.0.0.1:{ws_port}", pubsub)
    finally:
        clock.cancel()
        await client.close()
        await ws_runner.cleanup()
        await rpc_runner.cleanup()


def _pay(src: Keypair, dst: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=src.pubkey(), to_pubkey=dst, lamports=lamports))


async def _next(ws: SolanaWsClient, timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        return await ws.recv()


async def test_signature_subscribe_confirms_a_transaction(net: Net) -> None:
    alice = await net.funded()
    bob = Keypair().pubkey()
    blockhash = (await net.client.get_latest_blockhash(Processed)).value.blockhash
    tx = VersionedTransaction(MessageV0.try_compile(alice.pubkey(), [_pay(alice, bob, SOL)], [],
                                                    blockhash), [alice])
    sig = tx.signatures[0]
    async with SolanaWsClient(net.ws_url) as ws:
        # (solders cannot parse the "receivedSignature" value: test_wire_shapes checks it)
        sub = await ws.signature_subscribe(signature=sig, commitment=Confirmed)
        assert (await net.client.send_transaction(tx)).value == sig
        done = await _next(ws)
        assert isinstance(done, SignatureNotification) and done.result.value.err is None
        assert done.subscription == sub.subscription_id
        status = net.chain.signature_status(sig)
        assert status is not None and done.result.context.slot == status.slot
        assert status.confirmation_status in ("confirmed", "finalized")
        with pytest.raises(ValueError, match="no longer active"):  # fired once, then removed
            await ws.unsubscribe(sub)
        assert len(net.pubsub[HUB_KEY]) == 0
        # subscribing after it landed: fires at once when the commitment is already reached
        await ws.signature_subscribe(signature=sig, commitment=Processed)
        late = await _next(ws)
        assert isinstance(late, SignatureNotification) and late.result.value.err is None


async def test_finalized_signature_waits_32_slots(net: Net) -> None:
    alice = await net.funded()
    async with SolanaWsClient(net.ws_url) as ws:
        sig = await net.send(alice, _pay(alice, Keypair().pubkey(), SOL))
        await ws.signature_subscribe(signature=sig, commitment=Finalized)
        note = await _next(ws, timeout=20)
        assert isinstance(note, SignatureNotification)
        status = net.chain.signature_status(sig)
        assert status is not None and status.confirmation_status == "finalized"
        assert net.chain.slot - status.slot >= FINALIZATION_DEPTH
        got = (await net.client.get_transaction(sig, "json", Finalized, 0)).value
        assert got is not None and got.slot == status.slot  # default commitment: finalized


async def test_account_subscribe_follows_an_account(net: Net) -> None:
    alice = await net.funded()
    bob = Keypair().pubkey()
    async with SolanaWsClient(net.ws_url) as ws:
        sub = await ws.account_subscribe(pubkey=bob, commitment=Processed, encoding="base64")
        for amount in (SOL, 2 * SOL):
            await net.send(alice, _pay(alice, bob, amount))
        first, second = await _next(ws), await _next(ws)
        assert isinstance(first, AccountNotification) and isinstance(second, AccountNotification)
        assert (first.result.value.lamports, second.result.value.lamports) == (SOL, 3 * SOL)
        assert second.subscription == sub.subscription_id
        await ws.unsubscribe(sub)
        assert len(net.pubsub[HUB_KEY]) == 0


async def test_account_subscribe_json_parsed_token_account(net: Net) -> None:
    chain = net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice = await net.funded()
    ata = chain.ata(alice.pubkey(), USDC)
    async with SolanaWsClient(net.ws_url) as ws:
        await ws.account_subscribe(pubkey=ata, commitment=Confirmed, encoding="jsonParsed")
        chain.faucet.mint_to(USDC, alice.pubkey(), 1_500_000, authority)
        note = await _next(ws)
        assert isinstance(note, AccountNotificationJsonParsed)
        parsed: Any = note.result.value.data.parsed
        assert parsed["type"] == "account"
        assert parsed["info"]["tokenAmount"]["uiAmountString"] == "1.5"
        assert parsed["info"]["owner"] == str(alice.pubkey())


async def test_program_subscribe_with_filters(net: Net) -> None:
    chain = net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice, carol = await net.funded(), await net.funded()
    async with SolanaWsClient(net.ws_url) as ws:
        await ws.program_subscribe(program_id=TOKEN_PROGRAM_ID, commitment=Processed,
                                   encoding="base64",
                                   filters=[165, MemcmpOpts(offset=32, bytes=str(carol.pubkey()))])
        chain.faucet.mint_to(USDC, alice.pubkey(), 10, authority)  # alice's: filtered out
        chain.faucet.mint_to(USDC, carol.pubkey(), 20, authority)
        note = await _next(ws)
        assert isinstance(note, ProgramNotification)
        assert note.result.value.pubkey == chain.ata(carol.pubkey(), USDC)
        assert len(note.result.value.account.data) == 165


async def test_logs_subscribe_mentions_and_all(net: Net) -> None:
    alice = await net.funded()
    watched = Keypair().pubkey()
    async with SolanaWsClient(net.ws_url) as ws:
        mentions = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(watched), commitment=Confirmed)
        other = await net.send(alice, _pay(alice, Keypair().pubkey(), SOL))
        sig = await net.send(alice, _pay(alice, watched, SOL), memo_instruction("hello"))
        note = await _next(ws)  # the unrelated transaction came first and was not delivered
        assert isinstance(note, LogsNotification) and note.subscription == mentions.subscription_id
        assert note.result.value.signature == sig and note.result.value.err is None
        assert f"Program {MEMO_PROGRAM_ID} invoke [1]" in note.result.value.logs
        assert note.result.value.signature != other
        await ws.unsubscribe(mentions)
        await ws.logs_subscribe(commitment=Processed)  # "all"
        third = await net.send(alice, _pay(alice, Keypair().pubkey(), SOL))
        every = await _next(ws)
        assert isinstance(every, LogsNotification) and every.result.value.signature == third


async def test_slot_and_root_notifications(net: Net) -> None:
    async with SolanaWsClient(net.ws_url) as ws:
        await ws.slot_subscribe()
        slots = [await _next(ws) for _ in range(3)]
        assert all(isinstance(n, SlotNotification) for n in slots)
        numbers = [n.result.slot for n in slots]
        assert numbers == list(range(numbers[0], numbers[0] + 3))
        assert all(n.result.parent == n.result.slot - 1 for n in slots)
    async with SolanaWsClient(net.ws_url) as ws:
        net.chain.advance(FINALIZATION_DEPTH)  # so that a root exists
        await ws.root_subscribe()
        root = await _next(ws)
        assert isinstance(root, RootNotification)
        assert root.result == net.chain.slot - FINALIZATION_DEPTH


async def _raw_frames(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(10):
        while len(out) < n:
            out.append(orjson.loads((await ws.receive()).data))
    return out


async def test_wire_shapes_and_errors(net: Net) -> None:
    """The exact frames, as Solana's docs show them, and the JSON-RPC errors."""
    alice = await net.funded()
    blockhash = (await net.client.get_latest_blockhash(Processed)).value.blockhash
    tx = VersionedTransaction(MessageV0.try_compile(
        alice.pubkey(), [_pay(alice, Keypair().pubkey(), SOL)], [], blockhash), [alice])
    sig = str(tx.signatures[0])
    async with aiohttp.ClientSession() as http, http.ws_connect(net.ws_url) as ws:
        await ws.send_str(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "signatureSubscribe",
                                        "params": [sig, {"commitment": "processed",
                                                         "enableReceivedNotification": True}]}
                                       ).decode())
        (ack,) = await _raw_frames(ws, 1)
        assert ack == {"jsonrpc": "2.0", "result": ack["result"], "id": 1}
        sub = ack["result"]
        await net.client.send_transaction(tx)
        received, processed = await _raw_frames(ws, 2)
        slot = net.chain.signature_status(sig).slot  # type: ignore[union-attr]
        assert received == {"jsonrpc": "2.0", "method": "signatureNotification", "params": {
            "result": {"context": {"slot": slot}, "value": "receivedSignature"},
            "subscription": sub}}
        assert processed == {"jsonrpc": "2.0", "method": "signatureNotification", "params": {
            "result": {"context": {"slot": slot}, "value": {"err": None}}, "subscription": sub}}
        calls = [
            {"jsonrpc": "2.0", "id": 2, "method": "signatureUnsubscribe", "params": [sub]},
            {"jsonrpc": "2.0", "id": 3, "method": "logsSubscribe",
             "params": [{"mentions": [sig[:44], sig[:44]]}]},
            {"jsonrpc": "2.0", "id": 4, "method": "blockSubscribe", "params": ["all"]},
            {"jsonrpc": "2.0", "id": 5, "method": "accountSubscribe", "params": ["nope"]},
        ]
        await ws.send_str(orjson.dumps(calls).decode())  # a batch: one array back
        (answers,) = await _raw_frames(ws, 1)
        codes = {a["id"]: a["error"] for a in answers}
        assert codes[2] == {"code": -32602, "message": "Invalid subscription id."}
        assert codes[3] == {"code": -32602, "message": "Invalid Request: Only 1 address supported"}
        assert codes[4]["code"] == -32601
        assert codes[5]["code"] == -32602


async def test_real_localnet_process_serves_pubsub_on_rpc_port_plus_one(tmp_path: Path) -> None:
    """``orderflow localnet`` as clients meet it: the WebSocket where web3.js and solana-py
    look for it (RPC port + 1), advertised by getClusterNodes, confirming a transfer."""
    alice = Keypair()
    proc = LocalnetProcess(tmp_path / "data", "--fund", str(alice.pubkey()))
    await proc.start()
    try:
        ws_port = proc.rpc_port + 1
        (node,) = await proc.rpc("getClusterNodes")
        assert node["pubsub"] == f"127.0.0.1:{ws_port}"
        tx = transfer_tx(alice, Keypair().pubkey(), SOL, await proc.blockhash())
        async with SolanaWsClient(f"ws://127.0.0.1:{ws_port}") as ws:
            await ws.signature_subscribe(signature=tx.signatures[0], commitment=Confirmed)
            sig = await proc.send(tx)
            note = await _next(ws)
            assert isinstance(note, SignatureNotification) and note.result.value.err is None
        status = (await proc.rpc("getSignatureStatuses", [sig]))["value"][0]
        assert status["confirmationStatus"] in ("confirmed", "finalized")
    finally:
        proc.stop()
