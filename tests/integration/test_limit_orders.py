"""Limit orders end to end on real parts: ``orderflow up`` (its localnet and local market)
on the session's real Tansu broker and PostgreSQL, orders produced raw to ``orders`` (v2).

Below the market, one triggers at once; above it, one waits ``open`` until a real trade on
the pool (USDC -> SOL on the CP-Swap pool, signed and sent like any trader's) lifts the
price past it; a third, far above, never triggers and expires. Each triggered order
publishes ``triggered`` exactly once, has exactly one transaction in the journal, and
receives at least its limit (read from the chain's balance changes).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from solders.keypair import Keypair

from pipeline.model import LimitTerms, OrderType
from pipeline.solana_rpc import sign_as
from pipeline.tokens import SOL, USDC
from pipeline.wallet import write_keypair
from pipeline.wire import ExecuteOrder, now_ms
from tests.helpers import free_port, wait_until
from tests.order_status import Statuses

pytestmark = pytest.mark.integration
ONE_SOL = 10**9


@dataclass
class Up:
    ui: str
    rpc: str
    venue: str
    wallet: Keypair
    bootstrap: str
    database_url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str] | None = None  # the stack's environment (its data dir, ports)


@pytest.fixture(scope="module")
def up(broker: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Up]:
    data = tmp_path_factory.mktemp("limit-up")
    wallet = Keypair()
    write_keypair(data / "wallet.json", wallet)
    http, rpc_port, venue_port = free_port(), free_port(span=2), free_port()
    env = {**os.environ, "ORDERFLOW_HTTP_PORT": str(http),
           "ORDERFLOW_KAFKA_BOOTSTRAP": broker, "ORDERFLOW_DATABASE_URL": database_url,
           "ORDERFLOW_WALLET": str(data / "wallet.json"), "ORDERFLOW_DATA_DIR": str(data),
           "ORDERFLOW_LOCALNET_RPC_PORT": str(rpc_port),
           "ORDERFLOW_LOCALNET_VENUE_PORT": str(venue_port),
           "ORDERFLOW_LOCALNET_SLOT_MS": "100", "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
           "ORDERFLOW_LOCALNET_SEED": "7", "ORDERFLOW_CONFIRM_POLL_MS": "50",
           "ORDERFLOW_SESSION_TIMEOUT_S": "2", "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
           "ORDERFLOW_APP_ID": f"orderflow-limit-{uuid.uuid4().hex[:6]}"}
    log_path = data / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "up"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    u = Up(f"http://127.0.0.1:{http}", f"http://127.0.0.1:{rpc_port}",
           f"http://127.0.0.1:{venue_port}/swap/v1", wallet, broker, database_url, proc, env)

    async def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError("orderflow up exited:\n" + log_path.read_text()[-4000:])
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{u.ui}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False
    try:
        asyncio.run(wait_until(healthy, 120, "orderflow up healthy"))  # type: ignore[arg-type]
        yield u
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(log_path.read_text()[-3000:])


def limit_sell(order_id: str, min_usdc: int, *, expires_s: int = 300) -> ExecuteOrder:
    now = now_ms()
    return ExecuteOrder(order_id, SOL.mint, USDC.mint, ONE_SOL, 50, now, "kafka",
                        order_type=OrderType.LIMIT, expires_at_ms=now + expires_s * 1000,
                        limit=LimitTerms(min_usdc))


async def produce(bootstrap: str, *cmds: ExecuteOrder) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for cmd in cmds:
            await producer.send_and_wait("orders", cmd.encode(), key=cmd.order_id.encode())
    finally:
        await producer.stop()


def journal(database_url: str, order_id: str) -> tuple[str, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, (SELECT count(*) FROM broadcasts b WHERE "
                           "b.order_id = e.order_id) FROM executions e WHERE order_id = %s",
                           (order_id,)).fetchone()
    assert row is not None, order_id
    return str(row[0]), int(row[1])


async def buy_sol_on_cp_swap(u: Up, usdc: int) -> None:
    """A real trade that lifts SOL on the CP-Swap pool: the market's quote and swap,
    signed by the wallet, sent to the RPC, confirmed."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{u.venue}/quote", params={
                "inputMint": USDC.mint, "outputMint": SOL.mint, "amount": str(usdc),
                "slippageBps": "100", "dexes": "Raydium CP"}) as r:
            quote = orjson.loads(await r.read())
            assert r.status == 200, quote
        async with s.post(f"{u.venue}/swap", json={
                "quoteResponse": quote, "userPublicKey": str(u.wallet.pubkey())}) as r:
            swap = orjson.loads(await r.read())
            assert r.status == 200, swap
        tx = sign_as(base64.b64decode(swap["swapTransaction"]), u.wallet)
        async with s.post(u.rpc, json={"jsonrpc": "2.0", "id": 1, "method": "sendTransaction",
                                       "params": [base64.b64encode(bytes(tx)).decode(),
                                                  {"encoding": "base64"}]}) as r:
            sent = await r.json()
            assert "result" in sent, sent


def out_of(confirmed: dict[str, Any]) -> int:
    return int(confirmed["data"]["amountOut"])


async def test_limit_orders_trigger_once_no_worse_than_their_limit(up: Up) -> None:
    tag = uuid.uuid4().hex[:8]
    below = limit_sell(f"below-{tag}", 140_000_000)  # the market pays ~149.6: at once
    above = limit_sell(f"above-{tag}", 151_500_000)  # after the market moves up
    never = limit_sell(f"never-{tag}", 400_000_000, expires_s=15)  # expires
    async with Statuses(up.bootstrap, {below.order_id, above.order_id,
                                       never.order_id}) as st:
        await produce(up.bootstrap, below, above, never)
        done = await st.until(below.order_id, "confirmed", 90)
        assert out_of(done) >= 140_000_000
        await st.until(above.order_id, "open", 30)
        assert journal(up.database_url, above.order_id) == ("open", 0)
        await buy_sol_on_cp_swap(up, 8_000 * 10**6)  # ~+2% on the CP-Swap pool
        done_above = await st.until(above.order_id, "confirmed", 90)
        assert out_of(done_above) >= 151_500_000
        await st.until(never.order_id, "expired", 60)
        for cmd in (below, above):
            assert st.statuses(cmd.order_id) == ["pending", "open", "triggered", "routing",
                                                  "building", "submitted", "confirmed"]
            triggered = [e for e in st.events[cmd.order_id] if e["status"] == "triggered"]
            assert len({e["eventId"] for e in triggered}) == 1
            assert journal(up.database_url, cmd.order_id) == ("confirmed", 1)
            building = next(e for e in st.events[cmd.order_id] if e["status"] == "building")
            assert int(building["data"]["minOut"]) >= cmd.limit.min_out  # type: ignore[union-attr]
        assert st.statuses(never.order_id) == ["pending", "open", "expired"]
        assert journal(up.database_url, never.order_id) == ("expired", 0)
