"""Expiry and cancel end to end on real parts: ``orderflow up`` (its own localnet and local
market) on the session's real Tansu broker and PostgreSQL, orders over HTTP and raw Kafka.

The chain is the judge: a swap of an order is a landed transaction of the wallet carrying
the memo ``orderflow:<orderId>`` (read with ``pipeline/chain_history.py``'s parser from the
wallet's ``getSignaturesForAddress``), never the engine's own word for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.chain_history import MEMO_PREFIX, parse_memos
from pipeline.solana_rpc import RpcChain
from pipeline.tokens import SOL, USDC
from pipeline.wire import CancelOrder, ExecuteOrder, iso_ms, now_ms
from tests.helpers import read_dead_letters, wait_until
from tests.integration.test_end_to_end import (
    System,
    assert_confirmed_on_chain,
    post_order,
    system,  # noqa: F401 (the module's own orderflow up)
)

pytestmark = pytest.mark.integration
ENDED = {"confirmed", "failed", "expired", "cancelled"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def swaps_by_order(s: System) -> Counter[str]:
    """Landed (err-free) wallet transactions per order id, by their memo."""
    chain = RpcChain(s.rpc)
    counts: Counter[str] = Counter()
    before = None
    try:
        while True:
            page = await chain.signatures_for_address(str(s.wallet.pubkey()), before=before)
            for entry in page:
                if entry.err is None:
                    counts.update(t.removeprefix(MEMO_PREFIX) for t in parse_memos(entry.memo)
                                  if t.startswith(MEMO_PREFIX))
            if len(page) < 1000:
                return counts
            before = page[-1].signature
    finally:
        await chain.close()


async def produce(s: System, *records: tuple[str, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait("orders", value, key=key.encode())
    finally:
        await producer.stop()


async def test_a_market_order_reached_after_its_expiry_ends_expired_without_a_swap(
        system: System, http: aiohttp.ClientSession) -> None:  # noqa: F811
    """A v1 order submitted 2 minutes ago (up runs with the default 60 s market TTL) and a
    v2 order whose own expiresAt has passed: both end ``expired``, nothing on chain."""
    tag = uuid.uuid4().hex[:8]
    old_v1 = ExecuteOrder(f"old-v1-{tag}", SOL.mint, USDC.mint, 10_000_000, 100,
                          now_ms() - 120_000, "kafka")
    past_v2 = ExecuteOrder(f"past-v2-{tag}", USDC.mint, SOL.mint, 2_000_000, 100,
                           now_ms() - 30_000, "kafka", expires_at_ms=now_ms() - 1_000)
    fresh = ExecuteOrder(f"fresh-{tag}", SOL.mint, USDC.mint, 10_000_000, 100, now_ms(),
                         "kafka")
    assert orjson.loads(old_v1.encode())["schemaVersion"] == 1
    assert orjson.loads(past_v2.encode())["schemaVersion"] == 2
    await produce(system, *((o.order_id, o.encode()) for o in (old_v1, past_v2, fresh)))
    for cmd in (old_v1, past_v2):
        order = await wait_until_ended(http, system, cmd.order_id)
        assert order["status"] == "expired", order
        # ended on arrival: nothing routed, built or sent (the executor publishes the
        # ending alone, pipeline/order_end.py)
        assert [e["status"] for e in order["events"]][-1:] == ["expired"]
        assert {e["status"] for e in order["events"]} <= {"pending", "expired"}
        assert order["error"]["code"] == "expired" and order["txHash"] is None
        assert order["expiresAt"] is not None and order["type"] == "market"
    confirmed = await wait_until_ended(http, system, fresh.order_id)
    await assert_confirmed_on_chain(system, confirmed)  # the same stream goes on trading
    swaps = await swaps_by_order(system)
    assert (swaps[old_v1.order_id], swaps[past_v2.order_id], swaps[fresh.order_id]) == (0, 0, 1)


async def wait_until_ended(http: aiohttp.ClientSession, s: System, order_id: str
                           ) -> dict[str, Any]:
    """The order once it is in any terminal state (the e2e helper knows only two)."""
    result: dict[str, Any] = {}

    async def ended() -> bool:
        async with http.get(f"{s.ui}/api/orders/{order_id}") as resp:
            if resp.status == 404:
                return False
            result.update(await resp.json())
        return result["status"] in ENDED
    await wait_until(ended, 90, f"order {order_id} to end")
    return result


async def test_a_cancel_racing_execution_has_exactly_one_outcome(
        system: System, http: aiohttp.ClientSession) -> None:  # noqa: F811
    """Orders each followed by a CancelOrder on the same key, from at once to well after the
    swap could land, over Kafka and over HTTP (POST then DELETE): each order ends either
    ``cancelled`` with no transaction recorded and no swap on chain, or ``confirmed`` with
    exactly one swap on chain and its refused cancel on orders-dlt; never both."""
    tag = uuid.uuid4().hex[:6]
    gaps = [0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.0]

    async def kafka_pair(i: int, gap: float) -> str:
        cmd = ExecuteOrder(f"race-k{i}-{tag}", SOL.mint, USDC.mint, 10_000_000 + i, 300,
                           now_ms(), "kafka")
        await produce(system, (cmd.order_id, cmd.encode()))
        await asyncio.sleep(gap)  # the race's spacing, not a wait for anything
        await produce(system, (cmd.order_id, CancelOrder(cmd.order_id, now_ms()).encode()))
        return cmd.order_id

    async def http_pair(i: int, gap: float) -> tuple[str, int]:
        order_id = await post_order(http, system, {"tokenIn": "USDC", "tokenOut": "SOL",
                                                   "amount": f"1.{i:02d}", "slippageBps": 300})
        await asyncio.sleep(gap)
        async with http.delete(f"{system.ui}/api/orders/{order_id}") as resp:
            doc = await resp.json()
            assert resp.status in (202, 404, 409), doc
            return order_id, resp.status

    kafka_ids = await asyncio.gather(*(kafka_pair(i, g) for i, g in enumerate(gaps)))
    http_results = await asyncio.gather(*(http_pair(i, g) for i, g in enumerate(gaps)))
    ids = [*kafka_ids, *(oid for oid, _ in http_results)]
    orders = {oid: await wait_until_ended(http, system, oid) for oid in ids}
    swaps = await swaps_by_order(system)
    refused = {oid for oid in ids if orders[oid]["status"] == "confirmed"}
    cancel_sent = set(kafka_ids) | {oid for oid, code in http_results if code == 202}
    dead = await read_dead_letters(system.bootstrap, refused & cancel_sent, 60)
    for oid in ids:
        order = orders[oid]
        statuses = [e["status"] for e in order["events"]]
        if order["status"] == "cancelled":
            assert swaps[oid] == 0, (oid, statuses)
            assert order["txHash"] is None and "submitted" not in statuses, order
            assert order["error"]["code"] == "cancelled"
        else:
            assert order["status"] == "confirmed", order
            assert swaps[oid] == 1, (oid, swaps[oid])
            assert "cancelled" not in statuses
            await assert_confirmed_on_chain(system, order)
            if oid in cancel_sent:
                error = dead[oid]["error"]
                assert isinstance(error, dict) and error["code"] == "cancel_refused", dead[oid]
    outcomes = Counter(orders[oid]["status"] for oid in ids)
    assert outcomes["cancelled"] >= 1, outcomes  # a cancel sent at once wins
    print(f"cancel race outcomes: {dict(outcomes)}")


async def test_a_v1_message_written_by_hand_still_executes(
        system: System, http: aiohttp.ClientSession) -> None:  # noqa: F811
    order_id = f"v1-hand-{uuid.uuid4().hex[:8]}"
    raw = orjson.dumps({"schemaVersion": 1, "orderId": order_id, "tokenIn": "USDC",
                        "tokenOut": "SOL", "amountIn": 3_000_000, "slippageBps": 100,
                        "submittedAt": iso_ms(now_ms()), "source": "kafka"})
    await produce(system, (order_id, raw))
    order = await wait_until_ended(http, system, order_id)
    await assert_confirmed_on_chain(system, order)
    assert order["type"] == "market" and order["terms"] is None
    assert (await swaps_by_order(system))[order_id] == 1


async def test_delete_of_an_unknown_order_is_404_and_produces_nothing(
        system: System, http: aiohttp.ClientSession) -> None:  # noqa: F811
    """404, and no cancel went out: had one been produced, the journal would keep it and
    end an order that later arrives under that id ``cancelled`` (a Kafka producer may
    cancel before its order arrives); this one executes."""
    order_id = f"nobody-{uuid.uuid4().hex[:8]}"
    async with http.delete(f"{system.ui}/api/orders/{order_id}") as resp:
        doc = await resp.json()
    assert (resp.status, doc["error"]["code"]) == (404, "order_not_found"), doc
    async with http.delete(f"{system.ui}/api/orders/not%20an%20id") as resp:
        assert resp.status == 404
    cmd = ExecuteOrder(order_id, USDC.mint, SOL.mint, 2_500_000, 100, now_ms(), "kafka")
    await produce(system, (order_id, cmd.encode()))
    order = await wait_until_ended(http, system, order_id)
    assert order["status"] == "confirmed", order
