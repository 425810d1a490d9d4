"""SIGKILL of the worker between a limit order's trigger and its execution.

The worker triggers the order (the journal row is ``triggered``, ``triggered`` is
published) and kills itself at the ``after_trigger`` failpoint before the executor
claims it. Restarted, its trigger agent finds the triggered row nobody drives and runs it:
the order confirms with exactly one transaction on chain, no worse than its limit.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from pipeline.model import LimitTerms, OrderType
from pipeline.tokens import SOL, USDC
from pipeline.wire import ExecuteOrder, now_ms
from tests.cluster import Cluster, reconcile
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


async def row(database_url: str, order_id: str) -> tuple[str, int] | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT status, (SELECT count(*) FROM broadcasts b WHERE b.order_id = e.order_id) "
            "FROM executions e WHERE order_id = %s", (order_id,))
        found = await cur.fetchone()
    return None if found is None else (str(found[0]), int(found[1]))


async def test_worker_killed_after_the_trigger_executes_the_order_once(
        cluster: Cluster) -> None:
    before = await cluster.balances()
    now = now_ms()
    order = ExecuteOrder(f"limit-crash-{uuid.uuid4().hex[:8]}", SOL.mint, USDC.mint,
                         10**9, 50, now, "kafka", order_type=OrderType.LIMIT,
                         expires_at_ms=now + 300_000, limit=LimitTerms(140_000_000))
    cluster.start_worker("w1", ORDERFLOW_FAILPOINTS="after_trigger:1")
    await cluster.produce([order])
    await wait_until(lambda: not cluster.workers["w1"].running(), 90,
                     "w1 to die at after_trigger")
    assert cluster.workers["w1"].popen.returncode == -9
    assert await row(cluster.database_url, order.order_id) == ("triggered", 0)
    cluster.start_worker("w1")
    states = await cluster.wait_terminal([order.order_id], 120)
    assert states == {order.order_id: "confirmed"}
    ledger = await cluster.ledger([order.order_id])
    assert await row(cluster.database_url, order.order_id) == ("confirmed", 1)
    (sig, _), = ledger["broadcasts"][order.order_id]
    fees = await cluster.landed_swaps([sig])
    assert list(fees) == [sig]
    reconcile(before, await cluster.balances(), ledger, fees)
    assert ledger["orders"][order.order_id]["amountOut"] >= 140_000_000
    statuses = [s for s, _, _ in ledger["events"][order.order_id]]
    assert statuses[:3] == ["pending", "open", "triggered"] and statuses[-1] == "confirmed"
