"""Fault switches of the localnet RPC server and the local market, seen from real clients.

Both apps run in-process on ephemeral ports with the chain clock at 20 ms slots. Faults
are set through ``/admin/faults`` and observed with solana-py's ``AsyncClient`` (the
engine's RPC client) and aiohttp (the engine's venue client library): what they see is
what a misbehaving node or API sends, nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import orjson
import pytest
from aiohttp import web
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.errors import InternalErrorMessage, NodeUnhealthyMessage
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.admin import auth_headers
from localnet.chain import MAX_PROCESSING_AGE, Chain
from localnet.faults import RpcFaults, VenueFaults
from localnet.market import Market, build_market_app
from localnet.market.tokens import SOL, USDC
from localnet.rpc import build_rpc_app
from tests.helpers import free_port, wait_until

SLOT_MS = 20
ADMIN_TOKEN = "faults-test-token"
LAMPORTS = 10**9
SOL_MINT, USDC_MINT = str(SOL.mint), str(USDC.mint)


@dataclass
class Net:
    chain: Chain
    market: Market
    rpc_url: str
    venue_url: str  # the market's root; the API is under /swap/v1
    client: AsyncClient
    http: aiohttp.ClientSession
    rpc_faults: RpcFaults
    venue_faults: VenueFaults

    async def admin(self, server: str, method: str, body: Any = None,
                    path: str = "/admin/faults") -> tuple[int, dict[str, Any]]:
        base = self.rpc_url if server == "rpc" else self.venue_url
        data = None if body is None else orjson.dumps(body)
        async with self.http.request(method, base + path, data=data,
                                     headers=auth_headers(ADMIN_TOKEN)) as resp:
            doc: dict[str, Any] = orjson.loads(await resp.read())
            return resp.status, doc

    async def faults(self, server: str, body: Any) -> dict[str, Any]:
        status, doc = await self.admin(server, "POST", body)
        assert status == 200, doc
        return doc

    async def counters(self, server: str) -> dict[str, int]:
        status, doc = await self.admin(server, "GET")
        assert status == 200
        counters: dict[str, int] = doc["counters"]
        return counters

    def funded(self, lamports: int = 10 * LAMPORTS) -> Keypair:
        kp = Keypair()
        self.chain.faucet.airdrop(kp.pubkey(), lamports)
        return kp

    def transfer_tx(self, payer: Keypair, to: Pubkey, lamports: int) -> VersionedTransaction:
        blockhash, _ = self.chain.latest_blockhash()
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
        return VersionedTransaction(Message.new_with_blockhash([ix], payer.pubkey(), blockhash),
                                    [payer])

    async def blockhash_valid(self, blockhash: Hash) -> bool:
        """``isBlockhashValid`` (solana-py has no method for it), as raw JSON-RPC."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "isBlockhashValid",
                "params": [str(blockhash), {"commitment": "processed"}]}
        async with self.http.post(self.rpc_url, json=body) as resp:
            assert resp.status == 200
            valid: bool = (await resp.json())["result"]["value"]
            return valid

    async def status(self, sig: Signature) -> Any:
        return (await self.client.get_signature_statuses([sig])).value[0]

    async def quote(self, amount: int = LAMPORTS) -> aiohttp.ClientResponse:
        params = {"inputMint": SOL_MINT, "outputMint": USDC_MINT, "amount": str(amount),
                  "slippageBps": "50"}
        return await self.http.get(f"{self.venue_url}/swap/v1/quote", params=params)


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    chain = Chain(slot_ms=SLOT_MS)
    market = Market(chain, seed=5, drift_bps=0)
    rpc_faults, venue_faults = RpcFaults(chain), VenueFaults()
    rpc_runner, rpc_url = await _start(build_rpc_app(chain, rpc_faults, admin_token=ADMIN_TOKEN))
    venue_runner, venue_url = await _start(
        build_market_app(market, faults=venue_faults, admin_token=ADMIN_TOKEN))
    clock = asyncio.create_task(chain.run_clock())
    client = AsyncClient(rpc_url, commitment=Confirmed, timeout=10)
    http = aiohttp.ClientSession()
    try:
        yield Net(chain, market, rpc_url, venue_url, client, http, rpc_faults, venue_faults)
    finally:
        clock.cancel()
        await http.close()
        await client.close()
        await venue_runner.cleanup()
        await rpc_runner.cleanup()
        market.close()


def _status_code(exc: SolanaRpcException) -> int:
    cause = exc.__cause__
    assert isinstance(cause, httpx2.HTTPStatusError), repr(cause)
    return cause.response.status_code


# -- RPC: HTTP and JSON-RPC errors -------------------------------------------------------------


async def test_rpc_429_next_n_with_retry_after(net: Net) -> None:
    me = Keypair().pubkey()
    await net.faults("rpc", {"errors": [
        {"kind": "http429", "methods": ["getBalance"], "next": 2, "retryAfterS": 3}]})
    for _ in range(2):
        with pytest.raises(SolanaRpcException) as info:
            await net.client.get_balance(me)
        assert _status_code(info.value) == 429
        cause = info.value.__cause__
        assert isinstance(cause, httpx2.HTTPStatusError)
        assert cause.response.headers["Retry-After"] == "3"
        assert cause.response.json()["error"]["code"] == 429
    await net.client.get_slot()  # other methods are untouched
    assert (await net.client.get_balance(me)).value == 0  # spent: the third call passes
    counters = await net.counters("rpc")
    assert counters["http429"] == 2
    _, doc = await net.admin("rpc", "GET")
    assert doc["state"]["errors"] == [{"fired": 2, "remaining": 0, "afterLeft": 0}]


async def test_rpc_5xx_and_json_rpc_errors(net: Net) -> None:
    await net.faults("rpc", {"errors": [
        {"kind": "http503", "methods": ["getSlot"], "next": 1},
        {"kind": "http500", "methods": ["getSlot"], "next": 1},
        {"kind": "nodeBehind", "methods": ["getLatestBlockhash"], "next": 1, "slotsBehind": 77},
        {"kind": "internalError", "methods": ["getBlockHeight"], "next": 1},
    ]})
    for want in (503, 500):
        with pytest.raises(SolanaRpcException) as info:
            await net.client.get_slot()
        assert _status_code(info.value) == want
    assert (await net.client.get_slot()).value >= 0
    with pytest.raises(RPCException) as rpc_info:
        await net.client.get_latest_blockhash()
    behind = rpc_info.value.args[0]
    assert isinstance(behind, NodeUnhealthyMessage)
    assert behind.message == "Node is behind by 77 slots"
    assert behind.data.num_slots_behind == 77
    with pytest.raises(RPCException) as rpc_info:
        await net.client.get_block_height()
    assert isinstance(rpc_info.value.args[0], InternalErrorMessage)
    counters = await net.counters("rpc")
    assert {k: counters[k] for k in ("http503", "http500", "nodeBehind", "internalError")} == {
        "http503": 1, "http500": 1, "nodeBehind": 1, "internalError": 1}


async def test_rpc_error_rate_is_seeded(net: Net) -> None:
    """The same seed and rate give the same failures, call for call."""

    async def run() -> list[bool]:
        await net.admin("rpc", "PUT", {"seed": 99, "errors": [{"kind": "http503", "rate": 0.5}]})
        outcomes = []
        for _ in range(20):
            try:
                await net.client.get_slot()
                outcomes.append(False)
            except SolanaRpcException as exc:
                assert _status_code(exc) == 503
                outcomes.append(True)
        return outcomes

    first, second = await run(), await run()
    assert first == second
    assert 0 < sum(first) < 20


async def test_rpc_latency(net: Net) -> None:
    await net.faults("rpc", {"latency": {"ms": 0, "methods": {"getSlot": {"ms": 250}}}})
    started = time.monotonic()
    await net.client.get_slot()
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    await net.client.get_block_height()  # no latency configured for it
    assert time.monotonic() - started < 0.25
    assert (await net.counters("rpc"))["latency"] == 1


async def test_rpc_timeout_after_execute_lands_but_client_never_hears(net: Net) -> None:
    """The nastiest real fault: the transaction landed, the client's request timed out."""
    payer, to = net.funded(), Keypair().pubkey()
    tx = net.transfer_tx(payer, to, 1_000_000)
    await net.faults("rpc", {"errors": [{"kind": "timeout", "methods": ["sendTransaction"],
                                         "next": 1, "afterExecute": True}]})
    impatient = AsyncClient(net.rpc_url, commitment=Confirmed, timeout=0.5,
                            max_transport_retries=0)
    try:
        with pytest.raises(SolanaRpcException) as info:
            await impatient.send_raw_transaction(bytes(tx))
        assert isinstance(info.value.__cause__, httpx2.TimeoutException)
    finally:
        await impatient.close()
    assert await wait_until(lambda: net.status(tx.signatures[0]), 5, "the send to land")
    assert net.chain.get_balance(to) == 1_000_000
    assert (await net.counters("rpc"))["timeout"] == 1


async def test_rpc_send_timeout_then_solana_py_retry_sees_already_processed(net: Net) -> None:
    """solana-py retries a timed-out request once by default (``max_transport_retries=1``),
    so after "landed, but the answer was lost" the client hears the retry's preflight
    failure ``AlreadyProcessed`` -- for a transaction that landed fine."""
    payer, to = net.funded(), Keypair().pubkey()
    tx = net.transfer_tx(payer, to, 1_000_000)
    await net.faults("rpc", {"errors": [{"kind": "timeout", "methods": ["sendTransaction"],
                                         "next": 1, "afterExecute": True}]})
    default = AsyncClient(net.rpc_url, commitment=Confirmed, timeout=0.5, http2=False)
    try:
        with pytest.raises(RPCException, match="already been processed"):
            await default.send_raw_transaction(bytes(tx))
    finally:
        await default.close()
    assert net.chain.transaction(tx.signatures[0]) is not None
    assert net.chain.get_balance(to) == 1_000_000


# -- RPC: dropped and late transactions --------------------------------------------------------


async def test_dropped_transaction_never_lands_and_its_blockhash_expires(net: Net) -> None:
    payer, to = net.funded(), Keypair().pubkey()
    before = net.chain.get_balance(payer.pubkey())
    tx = net.transfer_tx(payer, to, 1_000_000)
    blockhash = tx.message.recent_blockhash
    await net.faults("rpc", {"drop": {"next": 1}})
    resp = await net.client.send_raw_transaction(bytes(tx))  # preflight on, as the engine does
    assert resp.value == tx.signatures[0]
    sent_slot = net.chain.slot
    await wait_until(lambda: net.chain.slot >= sent_slot + 3, 5, "three more slots")
    assert await net.status(tx.signatures[0]) is None
    assert net.chain.transaction(tx.signatures[0]) is None

    async def expired() -> bool:
        return not await net.blockhash_valid(blockhash)

    # 150 blocks at 20 ms slots: about 3 s
    await wait_until(expired, 20, "the blockhash to expire")
    assert net.chain.block_height > sent_slot + MAX_PROCESSING_AGE - 2
    assert await net.status(tx.signatures[0]) is None
    assert net.chain.get_balance(payer.pubkey()) == before  # not even the fee
    assert net.chain.get_balance(to) == 0
    # a rebroadcast now is refused by the cluster like on mainnet: accepted, never lands
    await net.client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))
    assert net.chain.transaction(tx.signatures[0]) is None
    counters = await net.counters("rpc")
    assert counters["drop"] == 1


async def test_drop_non_sticky_rebroadcast_lands_sticky_does_not(net: Net) -> None:
    payer, to = net.funded(), Keypair().pubkey()
    tx = net.transfer_tx(payer, to, 1_000_000)
    await net.faults("rpc", {"drop": {"next": 1}})
    await net.client.send_raw_transaction(bytes(tx))
    assert net.chain.transaction(tx.signatures[0]) is None
    await net.client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))
    assert net.chain.transaction(tx.signatures[0]) is not None  # the rebroadcast landed

    tx2 = net.transfer_tx(payer, to, 2_000_000)
    await net.faults("rpc", {"drop": {"next": 1, "sticky": True}})
    for _ in range(3):
        await net.client.send_raw_transaction(bytes(tx2), TxOpts(skip_preflight=True))
    assert net.chain.transaction(tx2.signatures[0]) is None
    _, doc = await net.admin("rpc", "GET")
    assert doc["state"]["stickyDropped"] == 1
    assert doc["counters"]["drop"] == 4  # one first drop, then three sticky ones
    assert net.chain.get_balance(to) == 1_000_000
    await net.admin("rpc", "POST", {"advance": MAX_PROCESSING_AGE + 1}, "/admin/clock")
    await wait_until(lambda: net.rpc_faults.snapshot()["state"]["stickyDropped"] == 0, 5,
                     "the sticky drop to be forgotten once its blockhash expired")


async def test_preflight_failure_is_answered_and_spends_no_drop(net: Net) -> None:
    broke = Keypair()  # unfunded: preflight fails
    tx = net.transfer_tx(broke, Keypair().pubkey(), 1)
    await net.faults("rpc", {"drop": {"next": 1}})
    with pytest.raises(RPCException):
        await net.client.send_raw_transaction(bytes(tx))
    _, doc = await net.admin("rpc", "GET")
    assert doc["state"]["drop"]["remaining"] == 1
    assert doc["counters"]["drop"] == 0


async def test_land_late(net: Net) -> None:
    payer, to = net.funded(), Keypair().pubkey()
    tx = net.transfer_tx(payer, to, 5_000_000)
    await net.faults("rpc", {"landLate": {"next": 1, "slots": 10, "sticky": True}})
    sent_slot = net.chain.slot
    resp = await net.client.send_raw_transaction(bytes(tx))
    assert resp.value == tx.signatures[0]
    assert await net.status(tx.signatures[0]) is None
    await net.client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))  # ignored
    status: Any = await wait_until(lambda: net.status(tx.signatures[0]), 5, "the late landing")
    assert status.slot >= sent_slot + 10
    assert net.chain.get_balance(to) == 5_000_000
    counters = await net.counters("rpc")
    assert (counters["landLate"], counters["lateLanded"], counters["resendIgnored"]) == (1, 1, 1)


async def test_land_late_past_expiry_never_lands(net: Net) -> None:
    payer, to = net.funded(), Keypair().pubkey()
    tx = net.transfer_tx(payer, to, 5_000_000)
    await net.faults("rpc", {"landLate": {"next": 1, "slots": MAX_PROCESSING_AGE + 5}})
    await net.client.send_raw_transaction(bytes(tx))
    await net.admin("rpc", "POST", {"advance": MAX_PROCESSING_AGE + 5}, "/admin/clock")
    assert (await net.counters("rpc"))["lateExpired"] == 1
    assert net.chain.transaction(tx.signatures[0]) is None
    assert net.chain.get_balance(to) == 0


# -- admin API ---------------------------------------------------------------------------------


async def test_admin_validation_merge_put_delete(net: Net) -> None:
    status, doc = await net.admin("rpc", "POST", {"errors": [{"kind": "http429", "rate": 2}]})
    assert status == 400
    assert doc["field"] == "errors[0].rate"
    status, doc = await net.admin("rpc", "POST", {"errors": [
        {"kind": "http503", "methods": ["getBalanse"], "next": 1}]})
    assert (status, doc["field"]) == (400, "errors[0].methods[0]")
    status, doc = await net.admin("venue", "POST", {"drop": {"next": 1}})
    assert (status, doc["field"]) == (400, "drop")

    await net.faults("rpc", {"seed": 1, "errors": [{"kind": "http503", "next": 5}]})
    with pytest.raises(SolanaRpcException):
        await net.client.get_slot()
    doc = await net.faults("rpc", {"drop": {"next": 1}})  # merge: the error rule keeps its state
    assert doc["config"]["seed"] == 1
    assert doc["state"]["errors"] == [{"fired": 1, "remaining": 4, "afterLeft": 0}]
    status, doc = await net.admin("rpc", "PUT", {"latency": {"ms": 1}})  # replace: all else off
    assert status == 200
    assert (doc["config"]["errors"], doc["config"]["drop"]) == ([], None)
    assert doc["counters"]["http503"] == 1  # counters survive
    status, doc = await net.admin("rpc", "DELETE")
    assert status == 200
    assert doc["config"] == {"seed": 1, "latency": None, "errors": [], "drop": None,
                             "landLate": None}
    assert set(doc["counters"].values()) == {0}


async def test_admin_clock(net: Net) -> None:
    blockhash = (await net.client.get_latest_blockhash()).value.blockhash
    assert await net.blockhash_valid(blockhash)
    status, doc = await net.admin("rpc", "POST", {"slotMs": 400}, "/admin/clock")
    assert (status, doc["slotMs"]) == (200, 400)
    height = net.chain.block_height
    status, doc = await net.admin("rpc", "POST", {"advance": MAX_PROCESSING_AGE + 1},
                                  "/admin/clock")
    assert doc["blockHeight"] >= height + MAX_PROCESSING_AGE + 1
    assert not await net.blockhash_valid(blockhash)
    status, doc = await net.admin("rpc", "POST", {"slotMs": 5}, "/admin/clock")
    assert (status, doc["field"]) == (400, "slotMs")
    await net.admin("rpc", "POST", {"slotMs": SLOT_MS}, "/admin/clock")
    slot = net.chain.slot
    await wait_until(lambda: net.chain.slot >= slot + 10, 2, "20 ms slots again")


# -- venue -------------------------------------------------------------------------------------


async def test_venue_503_and_429(net: Net) -> None:
    await net.faults("venue", {"errors": [
        {"kind": "http503", "endpoints": ["quote"], "next": 1},
        {"kind": "http429", "endpoints": ["quote"], "next": 1, "retryAfterS": 2},
    ]})
    async with await net.quote() as resp:
        assert resp.status == 503
        assert resp.content_type == "text/html"
    async with await net.quote() as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["code"] == 429
    async with await net.quote() as resp:
        assert resp.status == 200
        assert int((await resp.json())["outAmount"]) > 0
    counters = await net.counters("venue")
    assert (counters["http503"], counters["http429"]) == (1, 1)


async def test_venue_swap_timeout_never_answers_and_never_executes(net: Net) -> None:
    async with await net.quote() as resp:
        quote = await resp.json()
    user = net.funded()
    body = {"quoteResponse": quote, "userPublicKey": str(user.pubkey())}
    await net.faults("venue", {"errors": [{"kind": "timeout", "endpoints": ["swap"], "next": 1}]})
    with pytest.raises(TimeoutError):
        async with net.http.post(f"{net.venue_url}/swap/v1/swap", json=body,
                                 timeout=aiohttp.ClientTimeout(total=0.5)):
            pass
    assert net.market.pending_count() == 0  # held, never executed
    async with net.http.post(f"{net.venue_url}/swap/v1/swap", json=body) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert net.market.pending_count() == 1
    tx = VersionedTransaction.from_bytes(base64.b64decode(doc["swapTransaction"]))
    keys = tx.message.account_keys
    sigs = list(tx.signatures)
    sigs[keys.index(user.pubkey())] = user.sign_message(to_bytes_versioned(tx.message))
    signed = VersionedTransaction.populate(tx.message, sigs)
    await net.client.send_raw_transaction(bytes(signed))
    assert (await net.counters("venue"))["timeout"] == 1


async def test_venue_hold_then_answer(net: Net) -> None:
    await net.faults("venue", {"errors": [
        {"kind": "timeout", "endpoints": ["quote"], "next": 1, "holdMs": 300}]})
    started = time.monotonic()
    async with await net.quote() as resp:
        assert resp.status == 200
    assert time.monotonic() - started >= 0.3


async def test_venue_hold_forever_does_not_block_shutdown() -> None:
    chain = Chain(slot_ms=SLOT_MS)
    market = Market(chain, seed=5, drift_bps=0)
    faults = VenueFaults()
    faults.replace_config({"errors": [{"kind": "timeout", "next": 1}]})
    runner, url = await _start(build_market_app(market, faults=faults))
    async with aiohttp.ClientSession() as http:
        params = {"inputMint": SOL_MINT, "outputMint": USDC_MINT, "amount": "1000"}
        pending = asyncio.create_task(http.get(f"{url}/swap/v1/quote", params=params))
        await wait_until(lambda: faults.counters["timeout"] == 1, 5, "the request to be held")
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 5
        with pytest.raises(aiohttp.ClientError):
            await pending
    market.close()
