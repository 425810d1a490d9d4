"""Crashes, duplicates and permanent failures on real parts: no lost order, no double swap.

Two worker processes share one consumer group. One of them SIGKILLs itself at a
named point (after the transaction is built and recorded, right after it is
broadcast, while confirming); the group rebalances, the other worker takes the
orders over, and the killed one is restarted. Every order must reach exactly one
terminal status, and the chain must show exactly one swap per confirmed order and
none for failed ones: the wallet's real balances move by exactly the confirmed
amounts plus the fees of the transactions that landed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pipeline.tokens import SOL, USDC, USDT
from pipeline.wire import ExecuteOrder, now_ms
from tests.cluster import Cluster, reconcile
from tests.helpers import TcpProxy, read_dead_letters, wait_until

pytestmark = pytest.mark.integration


def orders(n: int, tag: str) -> list[ExecuteOrder]:
    pairs = [(SOL.mint, USDC.mint, 100_000_000), (USDC.mint, SOL.mint, 7_000_000),
             (SOL.mint, USDT.mint, 50_000_000)]
    out = []
    for i in range(n):
        tin, tout, amount = pairs[i % len(pairs)]
        out.append(ExecuteOrder(f"{tag}-{i:03d}-{uuid.uuid4().hex[:8]}", tin, tout,
                                amount + i, 300, now_ms(), "kafka"))
    return out


def assert_one_swap_per_confirmed(ledger: dict[str, object], fees: dict[str, int]) -> None:
    bcs: dict[str, list[tuple[str, str | None]]] = ledger["broadcasts"]  # type: ignore[assignment]
    for oid, order in ledger["orders"].items():  # type: ignore[attr-defined]
        landed = [sig for sig, _ in bcs.get(oid, []) if sig in fees]
        if order["status"] == "confirmed":
            assert landed == [order["signature"]], (oid, bcs.get(oid), order)
        else:
            assert landed == [], (oid, bcs.get(oid), order)


@pytest.mark.parametrize("point", ["after_build", "after_broadcast", "while_confirming"])
async def test_worker_killed_mid_order_never_loses_or_doubles_a_swap(cluster: Cluster,
                                                                    point: str) -> None:
    before = await cluster.balances()
    cluster.start_worker("w1", ORDERFLOW_FAILPOINTS=f"{point}:3")
    cluster.start_worker("w2")
    batch = orders(24, point)  # enough that w1 surely reaches its 3rd failpoint hit
    await cluster.produce(batch)
    ids = [o.order_id for o in batch]

    await wait_until(lambda: not cluster.workers["w1"].running(), 90,
                     f"worker w1 to die at failpoint {point}")
    assert cluster.workers["w1"].popen.returncode == -9
    cluster.start_worker("w1")  # back, without the failpoint: the group rebalances again
    states = await cluster.wait_terminal(ids, 150)
    assert set(states.values()) == {"confirmed"}, states

    ledger = await cluster.ledger(ids)
    sigs = [s for bcs in ledger["broadcasts"].values() for s, _ in bcs]
    fees = await cluster.landed_swaps(sigs)
    assert_one_swap_per_confirmed(ledger, fees)
    reconcile(before, await cluster.balances(), ledger, fees)
    if point == "after_build":
        # The killed worker's recorded-but-unsent transaction was taken over, by one of the
        # two correct routes: the new owner broadcast the same recorded bytes while their
        # blockhash was still valid, or they expired and a second attempt built a new one.
        logs = "".join(w.log_tail(5000) for w in cluster.workers.values())
        rebroadcast = "resuming with open transaction" in logs
        retried = [oid for oid, o in ledger["orders"].items() if o["attempt"] > 1]
        assert rebroadcast or retried, ledger["orders"]
        for oid in retried:
            statuses = [(s, a) for s, a, _ in ledger["events"][oid]]
            assert ("pending", 2) in statuses, statuses
            assert [s for s, _ in ledger["broadcasts"][oid]][-1] == ledger["orders"][oid][
                "signature"]


async def test_same_order_id_produced_twice_executes_once(cluster: Cluster) -> None:
    before = await cluster.balances()
    cluster.start_worker("w1")
    batch = orders(3, "dup")
    await cluster.produce(batch + batch)  # every orderId twice
    ids = [o.order_id for o in batch]
    states = await cluster.wait_terminal(ids, 60)
    assert set(states.values()) == {"confirmed"}
    await cluster.produce(batch[:1])  # and once more after it finished
    ledger = await cluster.ledger(ids)
    fees = await cluster.landed_swaps([s for b in ledger["broadcasts"].values() for s, _ in b])
    assert all(len(b) == 1 for b in ledger["broadcasts"].values()), ledger["broadcasts"]
    assert_one_swap_per_confirmed(ledger, fees)
    reconcile(before, await cluster.balances(), ledger, fees)


async def test_permanent_failure_fails_at_once_with_a_precise_code(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    too_big = ExecuteOrder(f"broke-{uuid.uuid4().hex[:8]}", SOL.mint, USDC.mint,
                           1_000 * 10**9, 300, now_ms(), "kafka")  # the wallet has 100 SOL
    await cluster.produce([too_big])
    states = await cluster.wait_terminal([too_big.order_id], 60)
    assert states[too_big.order_id] == "failed"
    ledger = await cluster.ledger([too_big.order_id])
    order = ledger["orders"][too_big.order_id]
    assert order["error"] == "insufficient_funds" and order["attempt"] == 1, order
    assert [s for s, _, _ in ledger["events"][too_big.order_id]] == [
        "pending", "routing", "building", "failed"]


async def test_sink_rides_out_a_database_outage_without_losing_or_duplicating(
        cluster: Cluster) -> None:
    database_url = cluster.database_url
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(target._replace(
        netloc=f"{target.username}@127.0.0.1:{proxy.port}"))
    cluster.start_worker("executor", "--role", "executor")
    sinks = cluster.start_worker("sinks", "--role", "sinks", ORDERFLOW_DATABASE_URL=via_proxy)
    warmup = orders(1, "pgwarm")
    batch = orders(9, "pgdown")
    ids = [o.order_id for o in batch]

    async def journal_terminal() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM executions WHERE order_id = ANY(%s) AND terminal", (ids,))
            row = await cur.fetchone()
            return row is not None and row[0] == len(ids)

    await cluster.produce(warmup)
    await cluster.wait_terminal([warmup[0].order_id], 60)  # the sink is up and writing
    await proxy.cut()  # now its database is gone while the orders execute
    await cluster.produce(batch)
    await wait_until(journal_terminal, 90, "every order to finish executing")
    await wait_until(lambda: "status sink write" in sinks.log_tail(200), 30,
                     "the sink to notice the outage and back off")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM order_events WHERE order_id = ANY(%s)",
                                 (ids,))
        row = await cur.fetchone()
        assert row is not None and row[0] == 0  # nothing of the batch got through the cut
    await proxy.restore()

    states = await cluster.wait_terminal(ids, 60)
    assert set(states.values()) == {"confirmed"}
    ledger = await cluster.ledger(ids)
    for oid in ids:
        assert [s for s, _, _ in ledger["events"][oid]] == [
            "pending", "routing", "building", "submitted", "confirmed"], ledger["events"][oid]
    await proxy.cut()


def _retry_events(ledger: dict[str, Any], oid: str) -> list[dict[str, Any]]:
    return [d["retry"] for s, a, d in ledger["events"][oid] if s == "pending" and a > 1]


async def test_venue_outage_is_retried_with_backoff_then_confirms(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    cluster.admin(cluster.venue_root, {"errors": [{"kind": "http503", "endpoints": ["quote"],
                                                   "next": 2}]})  # both venues, attempt 1
    order = orders(1, "venue503")[0]
    await cluster.produce([order])
    states = await cluster.wait_terminal([order.order_id], 60)
    assert states[order.order_id] == "confirmed"
    ledger = await cluster.ledger([order.order_id])
    assert ledger["orders"][order.order_id]["attempt"] == 2
    (retry,) = _retry_events(ledger, order.order_id)
    assert retry["code"] == "venue_unavailable" and retry["previousAttempt"] == 1
    events = ledger["events"][order.order_id]
    assert [(s, a) for s, a, _ in events] == [
        ("pending", 1), ("routing", 1), ("pending", 2), ("routing", 2), ("building", 2),
        ("submitted", 2), ("confirmed", 2)]
    async with await psycopg.AsyncConnection.connect(cluster.database_url) as conn:
        cur = await conn.execute(
            "SELECT ts FROM order_events WHERE event_id = %s", (f"{order.order_id}:2:routing",))
        row = await cur.fetchone()
    assert row is not None
    due = datetime.fromisoformat(retry["dueAt"].replace("Z", "+00:00"))
    assert row[0] >= due  # never processed before its due time


async def test_dropped_transaction_expires_then_a_new_one_lands_exactly_once(
        cluster: Cluster) -> None:
    before = await cluster.balances()
    cluster.start_worker("w1")
    cluster.admin(cluster.rpc, {"drop": {"next": 1, "sticky": True}})
    order = orders(1, "dropped")[0]
    await cluster.produce([order])
    states = await cluster.wait_terminal([order.order_id], 90)
    assert states[order.order_id] == "confirmed"
    ledger = await cluster.ledger([order.order_id])
    bcs = ledger["broadcasts"][order.order_id]
    assert [outcome for _, outcome in bcs] == ["expired", "landed"], bcs
    fees = await cluster.landed_swaps([s for s, _ in bcs])
    assert list(fees) == [bcs[1][0]]  # the dropped one never landed; one swap on chain
    (retry,) = _retry_events(ledger, order.order_id)
    assert retry["code"] == "transaction_expired"
    reconcile(before, await cluster.balances(), ledger, fees)


async def test_retries_exhausted_fail_with_every_attempt_recorded(cluster: Cluster) -> None:
    cluster.start_worker("w1")
    cluster.admin(cluster.venue_root, {"errors": [{"kind": "http503", "endpoints": ["quote"],
                                                   "next": 100}]})
    order = orders(1, "exhausted")[0]
    await cluster.produce([order])
    states = await cluster.wait_terminal([order.order_id], 60)
    assert states[order.order_id] == "failed"
    ledger = await cluster.ledger([order.order_id])
    final = ledger["orders"][order.order_id]
    assert final["error"] == "venue_unavailable" and final["attempt"] == 3, final
    assert [r["previousAttempt"] for r in _retry_events(ledger, order.order_id)] == [1, 2]
    assert ledger["broadcasts"].get(order.order_id) is None  # nothing was ever sent
    failed = [d for s, _, d in ledger["events"][order.order_id] if s == "failed"]
    assert "gave up after 3 attempts" in failed[0]["message"]

    record = (await read_dead_letters(cluster.broker, {order.order_id}, 30))[order.order_id]
    assert record["reason"] == "venue_unavailable" and record["attempts"] == 3
    assert record["order"]["orderId"] == order.order_id  # type: ignore[index]


async def test_rpc_errors_after_the_swap_landed_never_cause_a_second_swap(
        cluster: Cluster) -> None:
    """Regression (found by the soak): an RPC error while reading a landed transaction's
    balances once ended the attempt, and the next attempt built a second swap."""
    before = await cluster.balances()
    cluster.start_worker("w1")
    cluster.admin(cluster.rpc, {"errors": [{"kind": "http429", "methods": ["getTransaction"],
                                            "next": 4}]})
    batch = orders(2, "landed429")
    await cluster.produce(batch)
    ids = [o.order_id for o in batch]
    states = await cluster.wait_terminal(ids, 60)
    assert set(states.values()) == {"confirmed"}
    ledger = await cluster.ledger(ids)
    fees = await cluster.landed_swaps([s for b in ledger["broadcasts"].values() for s, _ in b])
    assert all(len(b) == 1 for b in ledger["broadcasts"].values()), ledger["broadcasts"]
    assert_one_swap_per_confirmed(ledger, fees)
    reconcile(before, await cluster.balances(), ledger, fees)
