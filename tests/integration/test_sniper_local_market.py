"""Sniper orders end to end on the local market (CI's venue: no program binaries needed):
``orderflow up`` on the session's real Tansu broker and PostgreSQL, orders produced raw to
``orders`` (v2), pools launched with ``orderflow market create-pool`` while it runs.

A sniper order waits ``open`` for a mint that does not exist yet; the launch of that token
and its CP-Swap pool is seen by the trigger agent's watch of the market's pool list, the
order buys within a bounded number of slots of the pool's creation slot, no worse than its
maximum price, with its own priority fee on the transaction. A second launch, too shallow
for its order's liquidity guard, is refused with that reason, and its order waits on until
it expires, having traded nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp
import psycopg
import pytest
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from pipeline.model import OrderType, SniperTerms
from pipeline.tokens import SOL
from pipeline.txbuild import COMPUTE_BUDGET_PROGRAM
from pipeline.wire import ExecuteOrder, now_ms
from tests.helpers import wait_until
from tests.integration.test_limit_orders import Up, journal, produce, up  # noqa: F401
from tests.order_status import Statuses

pytestmark = pytest.mark.integration
SLOT_MS = 100  # the `up` fixture's ORDERFLOW_LOCALNET_SLOT_MS
MAX_SLOTS = 30  # pool creation slot -> the sniper's swap landed
SOL_IN = 5 * 10**8  # 0.5 SOL
MIN_TOKENS = 400 * 10**6  # at most 0.00125 SOL per token (6 decimals); the pool asks 0.001
PRIORITY_FEE = 12_345  # micro-lamports per compute unit, the order's own


def snipe(order_id: str, mint: str, min_liquidity: int, *, expires_s: int = 300
          ) -> ExecuteOrder:
    now = now_ms()
    return ExecuteOrder(order_id, SOL.mint, mint, SOL_IN, 300, now, "kafka",
                        order_type=OrderType.SNIPER, expires_at_ms=now + expires_s * 1000,
                        sniper=SniperTerms(min_liquidity, min_out=MIN_TOKENS,
                                           max_price_impact_bps=2_000, max_delay_slots=20,
                                           priority_fee_micro_lamports=PRIORITY_FEE))


def create_pool(u: Up, mint: str, depth: int) -> dict[str, Any]:
    """``orderflow market create-pool``, as a person runs it: the token at ``mint`` and a
    CP-Swap pool of ``depth`` tokens against their worth in SOL at 0.001 SOL each."""
    assert u.env is not None
    done = subprocess.run([sys.executable, "-m", "orderflow.cli", "market", "create-pool",
                           "--mint", mint, "--price", "0.001", "--depth", str(depth)],
                          env=u.env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


async def landed_tx(u: Up, signature: str) -> VersionedTransaction:
    async with aiohttp.ClientSession() as s, s.post(u.rpc, json={
            "jsonrpc": "2.0", "id": 1, "method": "getTransaction", "params": [
                signature, {"encoding": "base64", "commitment": "confirmed",
                            "maxSupportedTransactionVersion": 0}]}) as r:
        doc = await r.json()
    return VersionedTransaction.from_bytes(base64.b64decode(doc["result"]["transaction"][0]))


def unit_price(tx: VersionedTransaction) -> int | None:
    """The transaction's SetComputeUnitPrice (micro-lamports), if it has one."""
    keys = tx.message.account_keys
    for ix in tx.message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM and data[:1] == b"\x03":
            return int.from_bytes(data[1:9], "little")
    return None


def refusal(database_url: str, order_id: str) -> tuple[str, str | None, str | None]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, error_code, error_message FROM executions "
                           "WHERE order_id = %s", (order_id,)).fetchone()
    assert row is not None, order_id
    return str(row[0]), row[1], row[2]


async def test_a_sniper_buys_a_launched_pool_and_a_shallow_one_is_refused(
        up: Up) -> None:  # noqa: F811 (the fixture of test_limit_orders)
    tag = uuid.uuid4().hex[:8]
    token, shallow_token = str(Keypair().pubkey()), str(Keypair().pubkey())
    buys = snipe(f"snipe-{tag}", token, min_liquidity=5 * 10**9)
    waits = snipe(f"snipe-deep-{tag}", shallow_token, min_liquidity=10 * 10**9, expires_s=25)
    async with Statuses(up.bootstrap, {buys.order_id, waits.order_id}) as st:
        await produce(up.bootstrap, buys, waits)
        await st.until(buys.order_id, "open", 60)
        await st.until(waits.order_id, "open", 30)
        launched_at = time.monotonic()
        launch = await asyncio.to_thread(create_pool, up, token, 20_000)  # 20 SOL deep
        confirmed = await st.until(buys.order_id, "confirmed", 60)
        seen_ms = (time.monotonic() - launched_at) * 1000
        shallow = await asyncio.to_thread(create_pool, up, shallow_token, 1_000)  # 1 SOL

        async def refused() -> bool:
            return refusal(up.database_url, waits.order_id)[1] == "sniper_refused"
        await wait_until(refused, 30, "the shallow pool refused")
        still = refusal(up.database_url, waits.order_id)
        await st.until(waits.order_id, "expired", 60)
    created, landed = int(launch["createdSlot"]), int(confirmed["data"]["slot"])
    (pool,) = launch["pools"]
    triggered = next(e for e in st.events[buys.order_id] if e["status"] == "triggered")
    print(f"sniper on the local market: pool {pool['ammKey']} created at slot {created}, "
          f"swap landed at slot {landed}: {landed - created} slots = "
          f"{(landed - created) * SLOT_MS} ms of {SLOT_MS} ms slots; launch command started "
          f"-> confirmed seen {seen_ms:.0f} ms; triggered {triggered.get('data')}")
    assert 0 < landed - created <= MAX_SLOTS, (created, landed)
    assert int(confirmed["data"]["amountOut"]) >= MIN_TOKENS
    assert st.statuses(buys.order_id) == ["pending", "open", "triggered", "routing",
                                          "building", "submitted", "confirmed"]
    assert journal(up.database_url, buys.order_id) == ("confirmed", 1)
    tx = await landed_tx(up, confirmed["data"]["signature"])
    assert unit_price(tx) == PRIORITY_FEE  # the order's own priority fee, on chain
    # the shallow launch: refused by the liquidity guard, with the reason; never traded
    assert int(shallow["pools"][0]["reserveY"]) == 10**9
    assert still[0] == "open" and still[2] is not None
    assert "below the order's minimum liquidity" in still[2], still
    assert st.statuses(waits.order_id) == ["pending", "open", "expired"]
    assert journal(up.database_url, waits.order_id) == ("expired", 0)
