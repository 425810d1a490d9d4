"""Idempotency-Key on HTTP and WebSocket submits: one key + one request = one order, once."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp import WSCloseCode, WSMsgType

from ingress.idempotency import (
    InMemoryIdempotencyStore,
    fingerprint,
    key_from_headers,
    parse_key,
)
from pipeline.errors import InvalidOrder
from pipeline.tokens import SOL, USDC
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import ExecuteOrder, decode_execute_order
from tests.helpers import wait_until
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import Ingress

ingress = fakes.ingress
URL = "/api/orders/execute"
GOOD: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 50}


async def post(ingress: Ingress, body: Any, key: str | None = None,
               **headers: str) -> tuple[int, Any, dict[str, str]]:
    all_headers = {"Content-Type": "application/json", **headers}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    async with ingress.client.post(URL, data=orjson.dumps(body), headers=all_headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def test_same_key_same_request_is_the_same_order_produced_once(ingress: Ingress) -> None:
    status, first, headers = await post(ingress, GOOD, key="key-1")
    assert (status, headers["Idempotent-Replayed"]) == (202, "false")
    status, again, headers = await post(ingress, GOOD, key="key-1")
    assert (status, headers["Idempotent-Replayed"]) == (202, "true")
    assert again == first == {"orderId": first["orderId"], "status": "pending"}
    assert headers["Location"] == f"/api/orders/{first['orderId']}"
    (order,) = ingress.bus.on(ORDERS)
    assert decode_execute_order(order.value).order_id == first["orderId"]
    assert len(ingress.bus.on(ORDER_STATUS)) == 1


async def test_the_validated_request_is_what_counts(ingress: Ingress) -> None:
    """Symbol or mint, "1.5" or "1.50", default or explicit slippage: the same request."""
    _, first, _ = await post(ingress, {"tokenIn": "sol", "tokenOut": "USDC", "amount": "1.50"},
                             key="key-norm")
    status, again, _ = await post(ingress, {"tokenIn": SOL.mint, "tokenOut": USDC.mint,
                                            "amount": " 1.5", "slippageBps": 50}, key="key-norm")
    assert (status, again["orderId"]) == (202, first["orderId"])
    assert len(ingress.bus.on(ORDERS)) == 1


@pytest.mark.parametrize("change", [
    {"amount": "1.6"}, {"tokenOut": "USDT"}, {"slippageBps": 51}, {"clientRef": "other"},
])
async def test_same_key_other_request_is_422(ingress: Ingress, change: dict[str, Any]) -> None:
    status, first, _ = await post(ingress, GOOD, key="key-reuse")
    assert status == 202
    status, doc, _ = await post(ingress, {**GOOD, **change}, key="key-reuse")
    assert status == 422
    assert doc["error"]["code"] == "idempotency_key_reused"
    assert doc["error"]["field"] == "Idempotency-Key"
    assert doc["error"]["message"]
    assert len(ingress.bus.on(ORDERS)) == 1
    status, again, _ = await post(ingress, GOOD, key="key-reuse")  # the original still works
    assert (status, again["orderId"]) == (202, first["orderId"])
    text = await (await ingress.client.get("/metrics")).text()
    assert 'orderflow_ingress_orders_rejected_total{code="idempotency_key_reused"} 1.0' in text


async def test_different_keys_and_no_key_are_different_orders(ingress: Ingress) -> None:
    ids = {(await post(ingress, GOOD, key=k))[1]["orderId"] for k in ("a", "b")}
    ids |= {(await post(ingress, GOOD))[1]["orderId"] for _ in range(2)}
    assert len(ids) == 4 and len(ingress.bus.on(ORDERS)) == 4


@pytest.mark.parametrize("key", ["", "x" * 129, "ключ", "naïve", "tab\there"])
async def test_invalid_keys_are_400(ingress: Ingress, key: str) -> None:
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    async with ingress.client.post(URL, data=orjson.dumps(GOOD), headers=headers) as resp:
        doc = await resp.json()
        assert resp.status == 400, doc
    assert doc["error"] == {"code": "invalid_idempotency_key", "field": "Idempotency-Key",
                            "message": doc["error"]["message"]}
    assert ingress.bus.sent == []


async def test_two_key_headers_are_400(ingress: Ingress) -> None:
    headers = [("Content-Type", "application/json"), ("Idempotency-Key", "a"),
               ("Idempotency-Key", "b")]
    async with ingress.client.post(URL, data=orjson.dumps(GOOD), headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize("key", ["x" * 128, "a", "with inner space", "~!@#$%^&*()_+{}|:<>?"])
async def test_any_printable_ascii_key_up_to_128_is_fine(ingress: Ingress, key: str) -> None:
    status, _, _ = await post(ingress, GOOD, key=key)
    assert status == 202


async def test_key_is_a_header_not_a_body_field_over_http(ingress: Ingress) -> None:
    status, doc, _ = await post(ingress, {**GOOD, "idempotencyKey": "k"})
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (
        400, "unknown_field", "idempotencyKey")


async def test_concurrent_requests_with_one_key_produce_one_order(ingress: Ingress) -> None:
    gate = ingress.bus.gate = asyncio.Event()
    claims = 0
    claim = ingress.keys.claim

    async def counted_claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal claims
        claims += 1  # nothing suspends between here and the produce but the key's lock
        return await claim(*args, **kwargs)

    ingress.keys.claim = counted_claim  # type: ignore[method-assign]
    requests = [asyncio.ensure_future(post(ingress, GOOD, key="key-race")) for _ in range(8)]
    await wait_until(lambda: claims == 8, 5, "every request to claim the key")
    assert ingress.bus.sending == 1  # the others are waiting for it, not producing
    gate.set()
    answers = await asyncio.gather(*requests)
    assert {status for status, _, _ in answers} == {202}
    assert len({doc["orderId"] for _, doc, _ in answers}) == 1
    assert sorted(h["Idempotent-Replayed"] for _, _, h in answers) == ["false"] + ["true"] * 7
    assert len(ingress.bus.on(ORDERS)) == 1


async def test_a_failed_produce_is_retried_with_the_same_order(ingress: Ingress) -> None:
    ingress.bus.down_topics.add(ORDERS)
    status, doc, _ = await post(ingress, GOOD, key="key-retry")
    assert (status, doc["error"]["code"]) == (503, "broker_unavailable")
    order_id = doc["orderId"]
    status, doc, _ = await post(ingress, GOOD, key="key-retry")  # still down
    assert (status, doc["orderId"]) == (503, order_id)
    ingress.bus.down_topics.clear()
    status, doc, headers = await post(ingress, GOOD, key="key-retry")
    assert (status, doc["orderId"], headers["Idempotent-Replayed"]) == (202, order_id, "true")
    (produced,) = ingress.bus.on(ORDERS)
    assert decode_execute_order(produced.value).order_id == order_id
    status, doc, _ = await post(ingress, GOOD, key="key-retry")
    assert (status, doc["orderId"], len(ingress.bus.on(ORDERS))) == (202, order_id, 1)


async def test_a_different_request_cannot_take_over_a_failed_key(ingress: Ingress) -> None:
    ingress.bus.down_topics.add(ORDERS)
    await post(ingress, GOOD, key="key-taken")
    ingress.bus.down_topics.clear()
    status, doc, _ = await post(ingress, {**GOOD, "amount": "2"}, key="key-taken")
    assert (status, doc["error"]["code"]) == (422, "idempotency_key_reused")
    assert ingress.bus.on(ORDERS) == []


# ---- WebSocket submit ----

async def ws_submit(ingress: Ingress, message: dict[str, Any]) -> dict[str, Any]:
    async with ingress.client.ws_connect(URL) as ws:
        await ws.send_json(message)
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.TEXT, msg
        doc: dict[str, Any] = msg.json()
        if doc["type"] == "error":
            assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
            doc["closeCode"] = ws.close_code
        return doc


async def test_websocket_submit_with_a_key_replays_the_same_order(ingress: Ingress) -> None:
    first = await ws_submit(ingress, {**GOOD, "idempotencyKey": "ws-key"})
    again = await ws_submit(ingress, {**GOOD, "idempotencyKey": "ws-key"})
    assert (first["type"], first["replayed"]) == ("accepted", False)
    assert (again["type"], again["replayed"]) == ("accepted", True)
    assert again["orderId"] == first["orderId"] and again["order"] == first["order"]
    assert len(ingress.bus.on(ORDERS)) == 1


async def test_http_and_websocket_share_keys(ingress: Ingress) -> None:
    _, doc, _ = await post(ingress, GOOD, key="shared-key")
    accepted = await ws_submit(ingress, {**GOOD, "idempotencyKey": "shared-key"})
    assert (accepted["orderId"], accepted["replayed"]) == (doc["orderId"], True)
    assert accepted["order"]["source"] == "http"  # the order as first submitted
    assert len(ingress.bus.on(ORDERS)) == 1


@pytest.mark.parametrize(("key", "code"), [
    ("", "invalid_idempotency_key"), (7, "invalid_idempotency_key"),
    ("x" * 129, "invalid_idempotency_key"), ("é", "invalid_idempotency_key"),
])
async def test_websocket_submit_refuses_bad_keys(ingress: Ingress, key: Any, code: str) -> None:
    doc = await ws_submit(ingress, {**GOOD, "idempotencyKey": key})
    assert (doc["error"]["code"], doc["error"]["field"]) == (code, "idempotencyKey")
    assert doc["closeCode"] == WSCloseCode.POLICY_VIOLATION
    assert ingress.bus.sent == []


async def test_websocket_submit_refuses_a_reused_key(ingress: Ingress) -> None:
    await ws_submit(ingress, {**GOOD, "idempotencyKey": "ws-reuse"})
    doc = await ws_submit(ingress, {**GOOD, "amount": "3", "idempotencyKey": "ws-reuse"})
    assert (doc["error"]["code"], doc["error"]["field"]) == ("idempotency_key_reused",
                                                             "idempotencyKey")
    assert doc["closeCode"] == WSCloseCode.POLICY_VIOLATION
    assert len(ingress.bus.on(ORDERS)) == 1


# ---- the in-memory store and the helpers ----

def order(order_id: str, amount: int = 1_500_000_000) -> ExecuteOrder:
    return ExecuteOrder(order_id, SOL.mint, USDC.mint, amount, 50, 1_700_000_000_000, "http")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_keys_expire_after_their_ttl_and_are_purged() -> None:
    clock = Clock()
    keys = InMemoryIdempotencyStore(ttl_s=60, clock=clock)
    produced: list[str] = []

    async def produce(o: ExecuteOrder) -> None:
        produced.append(o.order_id)

    a, b = order("order-aaaa"), order("order-bbbb", amount=7)
    assert (await keys.claim("k", fingerprint(a), a, produce)).order == a
    with pytest.raises(InvalidOrder):
        await keys.claim("k", fingerprint(b), b, produce)
    clock.now = 59
    assert await keys.purge_expired() == 0
    clock.now = 60  # expired: the key starts a new order, whatever the request
    claim = await keys.claim("k", fingerprint(b), b, produce)
    assert (claim.order, claim.replayed, claim.produced) == (b, False, True)
    assert produced == ["order-aaaa", "order-bbbb"]
    clock.now = 120
    assert await keys.purge_expired() == 1 and len(keys) == 0


def test_fingerprint_ignores_id_time_and_transport_but_not_the_request() -> None:
    base = order("order-1111")
    same = ExecuteOrder("order-2222", SOL.mint, USDC.mint, 1_500_000_000, 50, 5, "ws")
    assert fingerprint(base) == fingerprint(same)
    for other in (order("order-1111", amount=1), ExecuteOrder(
            "order-1111", SOL.mint, USDC.mint, 1_500_000_000, 50, 0, "http", client_ref="r")):
        assert fingerprint(other) != fingerprint(base)
    assert len(fingerprint(base)) == 64


def test_key_parsing() -> None:
    assert parse_key("k" * 128, field="f") == "k" * 128
    for bad in ("", "k" * 129, "\x7f", "\n", None, 1):
        with pytest.raises(InvalidOrder) as raised:
            parse_key(bad, field="f")
        assert (raised.value.code, raised.value.field) == ("invalid_idempotency_key", "f")
    assert key_from_headers({}) is None
    assert key_from_headers({"Idempotency-Key": "abc"}) == "abc"


async def test_the_purge_loop_keeps_going_after_a_failure() -> None:
    from ingress.app import purge_expired_keys

    calls: list[int] = []

    class Keys(InMemoryIdempotencyStore):
        async def purge_expired(self) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionError("database down")
            return 2

    task = asyncio.ensure_future(purge_expired_keys(Keys(), interval_s=0.01))
    await wait_until(lambda: len(calls) >= 3, 5, "three purge rounds")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
