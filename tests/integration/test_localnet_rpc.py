"""The localnet JSON-RPC server driven by solana-py's ``AsyncClient``, as the engine drives it.

solana-py parses every response with solders' strict types, so each call here
also checks the wire shape. The slot clock runs for real (50 ms slots).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiohttp
import orjson
import pytest
from aiohttp import web
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)

from localnet.chain import MAX_PROCESSING_AGE, Chain
from localnet.programs import ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID
from localnet.rpc import build_rpc_app
from tests.helpers import wait_until

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
SOL = 10**9
T = TypeVar("T")


@dataclass
class Localnet:
    chain: Chain
    client: AsyncClient
    url: str
    http: aiohttp.ClientSession

    async def raw(self, method: str, *params: Any) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with self.http.post(self.url, json=body) as resp:
            assert resp.status == 200
            out: dict[str, Any] = orjson.loads(await resp.read())
            return out


@pytest.fixture
async def net() -> AsyncIterator[Localnet]:
    chain = Chain(slot_ms=50)
    runner = web.AppRunner(build_rpc_app(chain))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    clock = asyncio.create_task(chain.run_clock())
    client = AsyncClient(url, commitment=Confirmed, timeout=10)
    http = aiohttp.ClientSession()
    try:
        yield Localnet(chain, client, url, http)
    finally:
        clock.cancel()
        await client.close()
        await http.close()
        await runner.cleanup()


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 10) -> T:
    """:func:`tests.helpers.wait_until` keeping the probe's type: poll real state until
    ``probe`` returns something truthy, or fail at the deadline."""
    return cast(T, await wait_until(probe, timeout, what, interval=0.02))


async def confirmed(net: Localnet, sig: Signature) -> Any:
    async def probe() -> Any:
        (st,) = (await net.client.get_signature_statuses([sig])).value
        ok = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
        return st if st is not None and st.confirmation_status in ok else None

    return await until(probe, f"{sig} confirmed")


async def funded(net: Localnet, lamports: int = 10 * SOL) -> Keypair:
    kp = Keypair()
    sig = (await net.client.request_airdrop(kp.pubkey(), lamports)).value
    await confirmed(net, sig)
    return kp


async def blockhash(net: Localnet) -> Hash:
    return (await net.client.get_latest_blockhash(Confirmed)).value.blockhash


async def test_cluster_info_methods(net: Localnet) -> None:
    c = net.client
    assert await c.is_connected()
    assert (await c.get_version()).value.solana_core.startswith("2.")
    slot = await until(lambda: _slot(c), "a few slots")
    assert (await c.get_slot(Processed)).value >= slot
    assert (await c.get_slot(Finalized)).value <= max(0, (await c.get_slot(Processed)).value)
    assert (await c.get_block_height(Processed)).value >= slot
    info = (await c.get_epoch_info(Processed)).value
    assert info.absolute_slot >= slot and info.block_height == info.absolute_slot
    bh = (await c.get_latest_blockhash(Processed))
    assert bh.context.slot >= slot
    # one block per slot from genesis: block height == slot
    assert bh.value.last_valid_block_height == bh.context.slot + MAX_PROCESSING_AGE
    rent = (await c.get_minimum_balance_for_rent_exemption(165)).value
    assert rent == net.chain.minimum_balance_for_rent_exemption(165)
    assert (await c.get_genesis_hash()).value == net.chain.genesis_hash
    assert (await c.get_epoch_schedule()).value.slots_per_epoch > 0
    async with net.http.get(f"{net.url}/health") as resp:
        assert resp.status == 200 and await resp.text() == "ok"


async def _slot(c: AsyncClient) -> int | None:
    slot = (await c.get_slot(Processed)).value
    return slot if slot >= 3 else None


async def test_airdrop_transfer_status_and_transaction(net: Localnet) -> None:
    c = net.client
    alice = await funded(net)
    assert (await c.get_balance(alice.pubkey())).value == 10 * SOL
    bob = Keypair().pubkey()

    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob, lamports=2 * SOL))
    tx = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [ix], [], await blockhash(net)), [alice]
    )
    sig = (await c.send_transaction(tx, TxOpts(preflight_commitment=Confirmed))).value
    assert sig == tx.signatures[0]
    st = await confirmed(net, sig)
    assert st.err is None and st.slot <= (await c.get_slot(Processed)).value
    # rebroadcast of the same bytes is harmless (skipPreflight, as engines rebroadcast)
    again = (await c.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))).value
    assert again == sig
    assert (await c.get_balance(bob)).value == 2 * SOL
    assert (await c.get_balance(alice.pubkey())).value == 8 * SOL - 5000

    got = (await c.get_transaction(sig, "json", Confirmed, 0)).value
    assert got is not None and got.slot == st.slot and got.block_time is not None
    meta = got.transaction.meta
    assert meta is not None and meta.err is None and meta.fee == 5000
    keys = [str(k) for k in got.transaction.transaction.message.account_keys]
    a, b = keys.index(str(alice.pubkey())), keys.index(str(bob))
    assert meta.pre_balances[a] - meta.post_balances[a] == 2 * SOL + 5000
    assert (meta.pre_balances[b], meta.post_balances[b]) == (0, 2 * SOL)
    assert meta.compute_units_consumed and meta.log_messages
    assert got.transaction.version == 0

    b64 = (await c.get_transaction(sig, "base64", Confirmed, 0)).value
    assert b64 is not None
    raw = await net.raw("getTransaction", str(sig),
                        {"encoding": "base64", "maxSupportedTransactionVersion": 0,
                         "commitment": "confirmed"})
    assert base64.b64decode(raw["result"]["transaction"][0]) == bytes(tx)
    # a v0 transaction needs maxSupportedTransactionVersion, as on Solana
    err = await net.raw("getTransaction", str(sig), {"commitment": "confirmed"})
    assert err["error"]["code"] == -32015
    # processed is not a valid commitment for getTransaction
    err = await net.raw("getTransaction", str(sig), {"commitment": "processed"})
    assert err["error"]["code"] == -32602
    # finalized only after 32 more slots
    await until(lambda: _finalized_tx(c, sig), "finalized transaction", timeout=15)


async def _finalized_tx(c: AsyncClient, sig: Signature) -> Any:
    return (await c.get_transaction(sig, "json", Finalized, 0)).value


async def test_legacy_transaction_roundtrip(net: Localnet) -> None:
    alice = await funded(net)
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=SOL))
    msg = Message.new_with_blockhash([ix], alice.pubkey(), await blockhash(net))
    tx = VersionedTransaction(msg, [alice])
    body = {"jsonrpc": "2.0", "id": "x", "method": "sendTransaction",
            "params": [_b58(bytes(tx))]}  # default encoding is base58
    async with net.http.post(net.url, json=body) as resp:
        assert (await resp.json())["result"] == str(tx.signatures[0])
    await confirmed(net, tx.signatures[0])
    got = (await net.client.get_transaction(tx.signatures[0], "json", Confirmed)).value
    assert got is not None and got.transaction.version is None  # no version field for legacy


def _b58(raw: bytes) -> str:
    from localnet.encoding import b58encode

    return b58encode(raw)


async def test_spl_token_mint_transfer_and_balances(net: Localnet) -> None:
    c, chain = net.client, net.chain
    authority = Keypair()
    chain.create_mint_at(USDC, 6, authority.pubkey())
    alice = await funded(net)
    bob = Keypair()
    chain.faucet.mint_to(USDC, alice.pubkey(), 50_000_000, authority)
    alice_ata, bob_ata = chain.ata(alice.pubkey(), USDC), chain.ata(bob.pubkey(), USDC)

    create = Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([1]), [
        AccountMeta(alice.pubkey(), True, True), AccountMeta(bob_ata, False, True),
        AccountMeta(bob.pubkey(), False, False), AccountMeta(USDC, False, False),
        AccountMeta(SYSTEM_PROGRAM_ID, False, False), AccountMeta(TOKEN_PROGRAM_ID, False, False),
    ])
    move = Instruction(TOKEN_PROGRAM_ID, bytes([12]) + (12_340_000).to_bytes(8, "little") +
                       bytes([6]), [
        AccountMeta(alice_ata, False, True), AccountMeta(USDC, False, False),
        AccountMeta(bob_ata, False, True), AccountMeta(alice.pubkey(), True, False),
    ])
    tx = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [create, move], [], await blockhash(net)), [alice]
    )
    sig = (await c.send_transaction(tx)).value
    await confirmed(net, sig)

    got = (await c.get_transaction(sig, "json", Confirmed, 0)).value
    assert got is not None and got.transaction.meta is not None
    meta = got.transaction.meta
    keys = [str(k) for k in got.transaction.transaction.message.account_keys]
    assert meta.pre_token_balances is not None and meta.post_token_balances is not None
    pre = {keys[t.account_index]: t for t in meta.pre_token_balances}
    post = {keys[t.account_index]: t for t in meta.post_token_balances}
    assert set(pre) == {str(alice_ata)} and set(post) == {str(alice_ata), str(bob_ata)}
    assert pre[str(alice_ata)].ui_token_amount.amount == "50000000"
    assert post[str(alice_ata)].ui_token_amount.amount == "37660000"
    assert post[str(bob_ata)].ui_token_amount.ui_amount_string == "12.34"
    assert str(post[str(bob_ata)].owner) == str(bob.pubkey())
    assert str(post[str(bob_ata)].mint) == str(USDC)
    assert meta.inner_instructions  # the ATA program's CPIs

    bal = (await c.get_token_account_balance(bob_ata)).value
    assert (bal.amount, bal.decimals, bal.ui_amount) == ("12340000", 6, 12.34)
    supply = (await c.get_token_supply(USDC)).value
    assert supply.amount == "50000000"
    accounts = (await c.get_token_accounts_by_owner(bob.pubkey(), TokenAccountOpts(mint=USDC)))
    assert [a.pubkey for a in accounts.value] == [bob_ata]
    assert len(accounts.value[0].account.data) == 165
    parsed = await c.get_token_accounts_by_owner_json_parsed(
        bob.pubkey(), TokenAccountOpts(program_id=TOKEN_PROGRAM_ID))
    (entry,) = parsed.value
    info = entry.account.data.parsed["info"]
    assert info["tokenAmount"]["amount"] == "12340000" and info["mint"] == str(USDC)
    acc = (await c.get_account_info(bob_ata)).value
    assert acc is not None and acc.owner == TOKEN_PROGRAM_ID and len(acc.data) == 165
    multi = (await c.get_multiple_accounts([bob_ata, Keypair().pubkey(), USDC])).value
    assert multi[0] is not None and multi[1] is None and multi[2] is not None
    mint_parsed = (await c.get_account_info_json_parsed(USDC)).value
    assert mint_parsed is not None
    assert mint_parsed.data.parsed["info"]["decimals"] == 6  # type: ignore[union-attr]
    err = await net.raw("getTokenAccountBalance", str(alice.pubkey()))
    assert err["error"] == {"code": -32602, "message": "Invalid param: not a Token account"}


async def test_preflight_failure_shape(net: Localnet) -> None:
    alice = await funded(net, SOL)
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=100 * SOL))
    tx = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [ix], [], await blockhash(net)), [alice]
    )
    with pytest.raises(RPCException) as exc:
        await net.client.send_transaction(tx)
    failure = exc.value.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage)
    assert failure.message == (
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    )
    assert isinstance(failure.data.err, TransactionErrorInstructionError)
    assert failure.data.logs and any("insufficient lamports" in x for x in failure.data.logs)
    assert failure.data.units_consumed is not None and failure.data.units_consumed > 0
    raw = await net.raw("sendTransaction", base64.b64encode(bytes(tx)).decode(),
                        {"encoding": "base64"})
    assert raw["error"]["code"] == -32002
    assert raw["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert raw["error"]["data"]["accounts"] is None
    # nothing landed, nothing charged
    assert (await net.client.get_balance(alice.pubkey(), Processed)).value == SOL
    (st,) = (await net.client.get_signature_statuses([tx.signatures[0]])).value
    assert st is None
    # with skipPreflight the same transaction lands, failed, and pays its fee
    sig = (await net.client.send_transaction(tx, TxOpts(skip_preflight=True))).value
    st = await confirmed(net, sig)
    assert isinstance(st.err, TransactionErrorInstructionError)
    assert (await net.client.get_balance(alice.pubkey(), Processed)).value == SOL - 5000

    sim = (await net.client.simulate_transaction(tx)).value
    assert sim.err == TransactionErrorFieldless.AlreadyProcessed


async def test_expired_blockhash(net: Localnet) -> None:
    c, chain = net.client, net.chain
    alice = await funded(net)
    old = (await c.get_latest_blockhash(Processed)).value
    valid = await net.raw("isBlockhashValid", str(old.blockhash), {"commitment": "processed"})
    assert valid["result"]["value"] is True
    while chain.block_height <= old.last_valid_block_height:
        chain.tick()  # skip ahead in-process instead of waiting 150 real slots
    assert (await c.get_block_height(Processed)).value > old.last_valid_block_height
    valid = await net.raw("isBlockhashValid", str(old.blockhash), {"commitment": "processed"})
    assert valid["result"]["value"] is False

    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=SOL))
    tx = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [ix], [], old.blockhash), [alice]
    )
    with pytest.raises(RPCException) as exc:
        await c.send_transaction(tx)
    failure = exc.value.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage)
    assert failure.message == "Transaction simulation failed: Blockhash not found"
    assert failure.data.err == TransactionErrorFieldless.BlockhashNotFound
    # skipPreflight: accepted, then dropped like a real leader would; it never lands
    sig = (await c.send_transaction(tx, TxOpts(skip_preflight=True))).value
    start = chain.slot
    await until(lambda: _slot_reached(chain, start + 3), "three more slots")
    (st,) = (await c.get_signature_statuses([sig], search_transaction_history=True)).value
    assert st is None
    assert (await c.get_balance(alice.pubkey(), Processed)).value == 10 * SOL


async def _slot_reached(chain: Chain, slot: int) -> bool:
    return chain.slot >= slot


async def test_signature_verification_failure(net: Localnet) -> None:
    alice = await funded(net)
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=SOL))
    msg = MessageV0.try_compile(alice.pubkey(), [ix], [], await blockhash(net))
    forged = VersionedTransaction.populate(msg, [Keypair().sign_message(bytes(msg))])
    raw = await net.raw("sendTransaction", base64.b64encode(bytes(forged)).decode(),
                        {"encoding": "base64"})
    assert raw["error"] == {"code": -32003, "message": "Transaction signature verification failure"}


async def test_simulate_and_fee_for_message(net: Localnet) -> None:
    c = net.client
    alice = await funded(net)
    bob = Keypair().pubkey()
    ixs = [set_compute_unit_limit(5_000), set_compute_unit_price(2_000_000),
           transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob, lamports=SOL))]
    msg = MessageV0.try_compile(alice.pubkey(), ixs, [], await blockhash(net))
    assert (await c.get_fee_for_message(msg)).value == 5000 + 10_000
    tx = VersionedTransaction(msg, [alice])
    sim = (await c.simulate_transaction(tx, sig_verify=True, accounts_addresses=[bob])).value
    assert sim.err is None and sim.units_consumed and sim.logs
    assert sim.accounts is not None and sim.accounts[0] is not None
    assert sim.accounts[0].lamports == SOL
    assert (await c.get_balance(bob, Processed)).value == 0  # nothing committed
    stale = MessageV0.try_compile(alice.pubkey(), ixs, [], Hash.new_unique())
    unsigned = VersionedTransaction.populate(stale, [Signature.default()])
    sim = (await c.simulate_transaction(unsigned, replace_recent_blockhash=True)).value
    assert sim.err is None and sim.replacement_blockhash is not None
    assert (await c.get_fee_for_message(stale)).value is None


async def test_many_statuses_while_clock_runs(net: Localnet) -> None:
    c = net.client
    alice = await funded(net, 100 * SOL)
    bh = await blockhash(net)
    sigs = []
    for i in range(40):
        ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(),
                                     lamports=SOL // 100 + i))
        tx = VersionedTransaction(MessageV0.try_compile(alice.pubkey(), [ix], [], bh), [alice])
        sigs.append((await c.send_transaction(tx, TxOpts(skip_preflight=True))).value)
    unknown = Signature.new_unique()

    async def all_confirmed() -> bool:
        value = (await c.get_signature_statuses([*sigs, unknown])).value
        assert value[-1] is None
        return all(s is not None and s.confirmation_status is not None
                   and s.confirmation_status != TransactionConfirmationStatus.Processed
                   for s in value[:-1])

    await until(all_confirmed, "40 confirmed")
    too_many = await net.raw("getSignatureStatuses", [str(unknown)] * 257)
    assert too_many["error"]["code"] == -32602


async def test_json_rpc_envelope_errors(net: Localnet) -> None:
    async def post(payload: bytes) -> Any:
        async with net.http.post(net.url, data=payload,
                                 headers={"Content-Type": "application/json"}) as resp:
            return orjson.loads(await resp.read())

    assert (await post(b"{nope"))["error"]["code"] == -32700
    assert (await post(b"[]"))["error"]["code"] == -32600
    assert (await post(b'{"jsonrpc":"2.0","id":1}'))["error"]["code"] == -32600
    missing = await post(b'{"jsonrpc":"2.0","id":7,"method":"getBogus"}')
    assert missing == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
                       "id": 7}
    bad = await post(b'{"jsonrpc":"2.0","id":2,"method":"getBalance","params":["xyz"]}')
    assert bad["error"]["code"] == -32602 and bad["id"] == 2
    batch = await post(orjson.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": [{"commitment": "processed"}]},
        {"jsonrpc": "2.0", "id": 2, "method": "getHealth"},
        {"jsonrpc": "2.0", "method": "getHealth"},  # notification: no response
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
    ]))
    assert [r["id"] for r in batch] == [1, 2, 3]
    assert isinstance(batch[0]["result"], int) and batch[1]["result"] == "ok"
    assert batch[2]["error"]["code"] == -32601
    ctx = await net.raw("getBalance", str(Keypair().pubkey()))
    assert ctx["result"]["value"] == 0
    assert set(ctx["result"]["context"]) == {"slot", "apiVersion"}
    min_slot = await net.raw("getSlot", {"minContextSlot": 10**9})
    assert min_slot["error"]["code"] == -32016
