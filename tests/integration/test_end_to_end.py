"""One order end to end on real parts, and 50 at once with the books reconciled.

The system under test is the real ``orderflow up`` (as a child process) against
the session's real Tansu broker and real PostgreSQL, with its localnet (LiteSVM
behind Solana JSON-RPC) and local market. Price drift is off here so that the
pools' vault changes are ours alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.models import TokenAccountOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from pipeline.tokens import SOL, USDC, USDT
from pipeline.wallet import write_keypair
from pipeline.wire import ExecuteOrder, now_ms
from tests.helpers import free_port, read_dead_letters, wait_until

pytestmark = pytest.mark.integration

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]
TERMINAL = {"confirmed", "failed"}


@dataclass
class System:
    ui: str
    rpc: str
    venue: str
    wallet: Keypair
    bootstrap: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def system(broker: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[System]:
    data = tmp_path_factory.mktemp("up")
    wallet = Keypair()
    write_keypair(data / "wallet.json", wallet)
    http, rpc_port, venue_port = free_port(), free_port(span=2), free_port()
    env = {
        **os.environ,
        "ORDERFLOW_HTTP_PORT": str(http),
        "ORDERFLOW_KAFKA_BOOTSTRAP": broker,
        "ORDERFLOW_DATABASE_URL": database_url,
        "ORDERFLOW_WALLET": str(data / "wallet.json"),
        "ORDERFLOW_DATA_DIR": str(data),
        "ORDERFLOW_LOCALNET_RPC_PORT": str(rpc_port),
        "ORDERFLOW_LOCALNET_VENUE_PORT": str(venue_port),
        "ORDERFLOW_LOCALNET_SLOT_MS": "100",
        "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
        "ORDERFLOW_LOCALNET_SEED": "7",
        "ORDERFLOW_CONFIRM_POLL_MS": "50",
        "ORDERFLOW_SESSION_TIMEOUT_S": "2",
        "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
        "ORDERFLOW_APP_ID": f"orderflow-e2e-{uuid.uuid4().hex[:6]}",
    }
    log_path = data / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "up"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    sys_ = System(f"http://127.0.0.1:{http}", f"http://127.0.0.1:{rpc_port}",
                  f"http://127.0.0.1:{venue_port}/swap/v1", wallet, broker, proc)
    try:
        asyncio.run(_wait_healthy(sys_, log_path))
        yield sys_
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, log_path.read_text()[-4000:]


async def _wait_healthy(s: System, log_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        async def healthy() -> bool:
            if s.proc.poll() is not None:
                raise AssertionError("orderflow up exited:\n" + log_path.read_text()[-4000:])
            try:
                async with http.get(f"{s.ui}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False
        await wait_until(healthy, 120, "orderflow up to report healthy")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post_order(http: aiohttp.ClientSession, s: System, body: dict[str, Any]) -> str:
    async with http.post(f"{s.ui}/api/orders/execute", json=body) as resp:
        doc = await resp.json()
        assert resp.status == 202, doc
        assert doc["status"] == "pending"
        return str(doc["orderId"])


async def wait_terminal(http: aiohttp.ClientSession, s: System, order_id: str,
                        timeout: float = 90) -> dict[str, Any]:
    result: dict[str, Any] = {}

    async def done() -> bool:
        async with http.get(f"{s.ui}/api/orders/{order_id}") as resp:
            if resp.status == 404:
                return False
            doc = await resp.json()
        result.update(doc)
        return doc["status"] in TERMINAL
    await wait_until(done, timeout, f"order {order_id} to reach a terminal status")
    return result


async def assert_confirmed_on_chain(s: System, order: dict[str, Any]) -> None:
    """The signature is real: the chain has it confirmed, with the balances the order claims."""
    assert order["status"] == "confirmed", order
    assert [e["status"] for e in order["events"]] == LIFECYCLE
    async with AsyncClient(s.rpc) as rpc:
        sig = Signature.from_string(order["txHash"])
        st = (await rpc.get_signature_statuses([sig])).value[0]
        assert st is not None and st.err is None
        tx = await rpc.get_transaction(sig, encoding="json", commitment=Commitment("confirmed"),
                                       max_supported_transaction_version=0)
        assert tx.value is not None and tx.value.transaction.meta is not None
        meta = tx.value.transaction.meta
        mine = str(s.wallet.pubkey())
        out_mint = order["tokenOut"]["mint"]
        if out_mint != SOL.mint:
            pre = sum(int(b.ui_token_amount.amount) for b in meta.pre_token_balances or []
                      if str(b.owner) == mine and str(b.mint) == out_mint)
            post = sum(int(b.ui_token_amount.amount) for b in meta.post_token_balances or []
                       if str(b.owner) == mine and str(b.mint) == out_mint)
            assert post - pre == int(order["amountOut"])
    assert order["venue"] in ("raydium", "meteora")
    assert int(order["amountOut"]) > 0 and order["executedPrice"]


async def test_order_from_http_confirms_with_real_signature(system: System,
                                                            http: aiohttp.ClientSession) -> None:
    order_id = await post_order(http, system, {"tokenIn": "SOL", "tokenOut": "USDC",
                                               "amount": "1.5", "slippageBps": 50})
    order = await wait_terminal(http, system, order_id)
    await assert_confirmed_on_chain(system, order)
    assert int(order["amountIn"]) == 1_500_000_000
    routing = next(e for e in order["events"] if e["status"] == "routing")
    assert {q["venue"] for q in routing["data"]["quotes"]} == {"raydium", "meteora"}
    building = next(e for e in order["events"] if e["status"] == "building")
    assert building["data"]["venue"] == order["venue"]
    assert int(order["amountOut"]) >= int(building["data"]["minOut"])


async def test_order_from_raw_kafka_producer_confirms(system: System,
                                                      http: aiohttp.ClientSession) -> None:
    order_id = f"kafka-{uuid.uuid4()}"
    cmd = ExecuteOrder(order_id, USDC.mint, SOL.mint, 25_000_000, 100, now_ms(), "kafka")
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("orders", cmd.encode(), key=order_id.encode())
    finally:
        await producer.stop()
    order = await wait_terminal(http, system, order_id)
    await assert_confirmed_on_chain(system, order)
    assert order["source"] == "kafka"


async def test_websocket_streams_the_exact_status_sequence(system: System,
                                                           http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{system.ui}/api/orders/execute") as ws:
        await ws.send_json({"tokenIn": "SOL", "tokenOut": "USDT", "amount": "0.25",
                            "slippageBps": 100})
        first = await ws.receive_json(timeout=30)
        assert first["type"] == "accepted", first
        statuses: list[str] = []
        while not statuses or statuses[-1] not in TERMINAL:
            msg = await ws.receive_json(timeout=60)
            assert msg["type"] == "status" and msg["orderId"] == first["orderId"], msg
            statuses.append(msg["status"])
    assert statuses == LIFECYCLE


async def _balances(rpc: AsyncClient, owner: Pubkey, mints: list[str]) -> dict[str, int]:
    out = {SOL.mint: (await rpc.get_balance(owner, Commitment("confirmed"))).value}
    for mint in mints:
        resp = await rpc.get_token_accounts_by_owner_json_parsed(
            owner, TokenAccountOpts(mint=Pubkey.from_string(mint)), Commitment("confirmed"))
        out[mint] = sum(int(a.account.data.parsed["info"]["tokenAmount"]["amount"])
                        for a in resp.value)
    return out


async def _vaults(http: aiohttp.ClientSession, s: System) -> dict[str, int]:
    """Sum of every pool's vault balance per mint, read from the chain via the RPC."""
    async with http.get(f"{s.venue}/pools") as resp:
        pools = (await resp.json())["pools"]
    totals: dict[str, int] = {}
    async with AsyncClient(s.rpc) as rpc:
        for pool in pools:
            for side in ("X", "Y"):
                mint, vault = pool[f"mint{side}"], pool[f"vault{side}"]
                bal = await rpc.get_token_account_balance(Pubkey.from_string(vault),
                                                          Commitment("confirmed"))
                totals[mint] = totals.get(mint, 0) + int(bal.value.amount)
    return totals


async def test_fifty_concurrent_orders_reconcile_with_the_chain(
        system: System, http: aiohttp.ClientSession) -> None:
    mints = [USDC.mint, USDT.mint]
    owner = system.wallet.pubkey()
    async with AsyncClient(system.rpc) as rpc:
        wallet_before = await _balances(rpc, owner, mints)
    vaults_before = await _vaults(http, system)

    bodies = []
    for i in range(50):
        if i % 2:
            bodies.append({"tokenIn": "SOL", "tokenOut": "USDC" if i % 4 == 1 else "USDT",
                           "amount": f"0.{i + 10}", "slippageBps": 300})
        else:
            bodies.append({"tokenIn": "USDC", "tokenOut": "SOL", "amount": f"{i + 5}.5",
                           "slippageBps": 300})
    ids = await asyncio.gather(*(post_order(http, system, b) for b in bodies))
    orders = await asyncio.gather(*(wait_terminal(http, system, i, 180) for i in ids))
    assert [o["status"] for o in orders] == ["confirmed"] * 50, [
        (o["orderId"], o["status"], o.get("error")) for o in orders if o["status"] != "confirmed"]

    expected: dict[str, int] = {}
    fees = 0
    async with AsyncClient(system.rpc) as rpc:
        for o in orders:
            expected[o["tokenIn"]["mint"]] = expected.get(o["tokenIn"]["mint"], 0) - int(
                o["amountIn"])
            expected[o["tokenOut"]["mint"]] = expected.get(o["tokenOut"]["mint"], 0) + int(
                o["amountOut"])
            tx = await rpc.get_transaction(Signature.from_string(o["txHash"]), encoding="json",
                                           commitment=Commitment("confirmed"),
                                           max_supported_transaction_version=0)
            assert tx.value is not None and tx.value.transaction.meta is not None
            fees += tx.value.transaction.meta.fee
        wallet_after = await _balances(rpc, owner, mints)
    vaults_after = await _vaults(http, system)

    wallet_delta = {m: wallet_after[m] - wallet_before[m] for m in wallet_after}
    assert wallet_delta[SOL.mint] == expected[SOL.mint] - fees
    for mint in mints:
        assert wallet_delta[mint] == expected.get(mint, 0)
    for mint in (SOL.mint, *mints):
        assert vaults_after[mint] - vaults_before[mint] == -expected.get(mint, 0)
    assert {o["venue"] for o in orders} <= {"raydium", "meteora"}


async def test_bad_kafka_messages_are_dead_lettered_and_the_agent_keeps_going(
        system: System, http: aiohttp.ClientSession) -> None:
    tag = uuid.uuid4().hex[:8]
    good_id = f"good-{tag}"
    good = ExecuteOrder(good_id, SOL.mint, USDC.mint, 10_000_000, 100, now_ms(), "kafka")
    valid = good.to_json()
    bad = {
        f"notjson-{tag}": (b"{not json", "malformed_json"),
        f"version-{tag}": (json.dumps({**valid, "orderId": f"v-{tag}-x", "schemaVersion": 9}
                                      ).encode(), "unsupported_schema_version"),
        f"missing-{tag}": (json.dumps({k: v for k, v in valid.items() if k != "amountIn"}
                                      ).encode(), "invalid_message"),
    }
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    await producer.start()
    try:
        for key, (value, _) in bad.items():
            await producer.send_and_wait("orders", value, key=key.encode())
        await producer.send_and_wait("orders", good.encode(), key=good_id.encode())
    finally:
        await producer.stop()
    order = await wait_terminal(http, system, good_id)
    assert order["status"] == "confirmed"

    found = await read_dead_letters(system.bootstrap, set(bad), 30)
    for key, (value, code) in bad.items():
        record = found[key]
        assert record["error"]["code"] == code, record
        assert record["source"]["topic"] == "orders"
        assert record["value"] == value.decode()
