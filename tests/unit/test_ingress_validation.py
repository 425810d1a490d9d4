"""POST /api/orders/execute: every bad request is a precise 4xx, a good one a 202 after the ack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pipeline.tokens import SOL, USDC, USDT
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import decode_execute_order, now_ms
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import Ingress

ingress = fakes.ingress
GOOD: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 50}
URL = "/api/orders/execute"


async def post(ingress: Ingress, body: Any, **kwargs: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes | str | AsyncIterator) else orjson.dumps(body)
    headers = kwargs.pop("headers", {"Content-Type": "application/json"})
    async with ingress.client.post(URL, data=data, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_good_order_is_produced_then_announced_pending(ingress: Ingress) -> None:
    before = now_ms()
    status, doc = await post(ingress, {**GOOD, "tokenOut": USDC.mint, "clientRef": "mine"})
    assert status == 202
    assert doc == {"orderId": doc["orderId"], "status": "pending"}
    order_id = doc["orderId"]

    (order, pending) = ingress.bus.sent
    assert (order.topic, order.key) == (ORDERS, order_id.encode())
    cmd = decode_execute_order(order.value)  # the public contract accepts it as is
    assert order.json() == {
        "schemaVersion": 1, "orderId": order_id, "type": "market", "tokenIn": SOL.mint,
        "tokenOut": USDC.mint, "amountIn": 1_500_000_000, "slippageBps": 50,
        "submittedAt": order.json()["submittedAt"], "source": "http", "clientRef": "mine"}
    assert before <= cmd.submitted_at_ms <= now_ms()

    assert (pending.topic, pending.key) == (ORDER_STATUS, order_id.encode())
    event = pending.json()
    assert (event["eventId"], event["status"], event["attempt"], event["data"]) == (
        f"{order_id}:1:pending", "pending", 1, {})
    assert event["order"]["clientRef"] == "mine"


@pytest.mark.parametrize(("body", "amount_in", "slippage"), [
    ({"tokenIn": "usdt", "tokenOut": "SOL", "amount": "0.000001"}, 1, 50),
    ({"tokenIn": SOL.mint, "tokenOut": USDT.mint, "amount": "2", "slippageBps": 0}, 2 * 10**9, 0),
    ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.000000001", "slippageBps": 5000}, 1,
     5000),
    ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.50000000000"}, 1_500_000_000, 50),
])
async def test_amounts_convert_exactly_and_slippage_defaults(
        ingress: Ingress, body: dict[str, Any], amount_in: int, slippage: int) -> None:
    status, doc = await post(ingress, body)
    assert status == 202, doc
    sent = ingress.bus.sent[0].json()
    assert (sent["amountIn"], sent["slippageBps"]) == (amount_in, slippage)


@pytest.mark.parametrize(("body", "code", "field"), [
    ({**GOOD, "tokenIn": "DOGE"}, "unknown_token", "tokenIn"),
    ({**GOOD, "tokenOut": "So1111111111111111111111111111111111111111x"}, "unknown_token",
     "tokenOut"),
    ({**GOOD, "tokenIn": 7}, "unknown_token", "tokenIn"),
    ({**GOOD, "tokenOut": "sol"}, "same_token", "tokenOut"),
    ({**GOOD, "tokenOut": SOL.mint}, "same_token", "tokenOut"),
    ({**GOOD, "amount": "0"}, "invalid_amount", "amount"),
    ({**GOOD, "amount": "0.0"}, "invalid_amount", "amount"),
    ({**GOOD, "amount": "-1"}, "invalid_amount", "amount"),
    ({**GOOD, "amount": "1e3"}, "invalid_amount", "amount"),
    ({**GOOD, "amount": "1.0000000001"}, "invalid_amount", "amount"),  # SOL has 9 decimals
    ({**GOOD, "tokenIn": "USDC", "tokenOut": "SOL", "amount": "0.0000001"}, "invalid_amount",
     "amount"),  # USDC has 6
    ({**GOOD, "amount": "18446744073.709551616"}, "invalid_amount", "amount"),  # > u64
    ({**GOOD, "amount": 1.5}, "invalid_amount", "amount"),
    ({**GOOD, "amount": 2}, "invalid_amount", "amount"),
    ({**GOOD, "amount": ""}, "invalid_amount", "amount"),
    ({**GOOD, "amount": None}, "invalid_amount", "amount"),
    ({**GOOD, "slippageBps": -1}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "slippageBps": 5001}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "slippageBps": 1.5}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "slippageBps": "50"}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "slippageBps": True}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "slippageBps": None}, "invalid_slippage", "slippageBps"),
    ({**GOOD, "clientRef": "x" * 129}, "invalid_client_ref", "clientRef"),
    ({**GOOD, "side": "buy"}, "unknown_field", "side"),
    ({**GOOD, "amountIn": 1_500_000_000}, "unknown_field", "amountIn"),
    ({"tokenOut": "USDC", "amount": "1"}, "missing_field", "tokenIn"),
    ({"tokenIn": "SOL", "amount": "1"}, "missing_field", "tokenOut"),
    ({"tokenIn": "SOL", "tokenOut": "USDC"}, "missing_field", "amount"),
])
async def test_invalid_fields_are_400_with_code_and_field(
        ingress: Ingress, body: dict[str, Any], code: str, field: str) -> None:
    status, doc = await post(ingress, body)
    assert status == 400
    assert doc["error"]["code"] == code
    assert doc["error"]["field"] == field
    assert doc["error"]["message"]
    assert ingress.bus.sent == []


@pytest.mark.parametrize(("raw", "code"), [
    (b"{", "malformed_json"),
    (b"", "malformed_json"),
    (b'{"tokenIn": "SOL",}', "malformed_json"),
    (b"\xff\xfe", "malformed_json"),
    (b"[1, 2]", "invalid_body"),
    (b'"SOL"', "invalid_body"),
    (b"null", "invalid_body"),
])
async def test_malformed_bodies_are_400(ingress: Ingress, raw: bytes, code: str) -> None:
    status, doc = await post(ingress, raw)
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (400, code, None)


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {},
])
async def test_wrong_content_type_is_415(ingress: Ingress, headers: dict[str, str]) -> None:
    status, doc = await post(ingress, GOOD, headers=headers)
    assert (status, doc["error"]["code"]) == (415, "unsupported_media_type")


async def test_json_with_charset_is_fine(ingress: Ingress) -> None:
    status, _ = await post(ingress, GOOD,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 202


async def test_oversize_body_is_413(ingress: Ingress) -> None:
    body = orjson.dumps({**GOOD, "clientRef": "x" * 20_000})
    status, doc = await post(ingress, body)
    assert (status, doc["error"]["code"]) == (413, "payload_too_large")


async def test_oversize_chunked_body_is_413(ingress: Ingress) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 1024

    status, doc = await post(ingress, chunks())
    assert (status, doc["error"]["code"]) == (413, "payload_too_large")


async def test_broker_down_is_503_and_nothing_is_announced(ingress: Ingress) -> None:
    ingress.bus.down_topics.add(ORDERS)
    status, doc = await post(ingress, GOOD)
    assert status == 503
    assert doc["error"]["code"] == "broker_unavailable"
    assert "not accepted" in doc["error"]["message"]
    assert ingress.bus.sent == []


async def test_pending_announcement_failure_still_accepts(ingress: Ingress) -> None:
    ingress.bus.down_topics.add(ORDER_STATUS)
    status, _ = await post(ingress, GOOD)
    assert status == 202
    assert [s.topic for s in ingress.bus.sent] == [ORDERS]


async def test_rejections_and_acceptances_are_counted(ingress: Ingress) -> None:
    await post(ingress, GOOD)
    await post(ingress, {**GOOD, "amount": "0"})
    await post(ingress, GOOD, headers={"Content-Type": "text/plain"})
    async with ingress.client.get("/metrics") as resp:
        text = await resp.text()
    assert 'orderflow_ingress_orders_accepted_total{source="http"} 1.0' in text
    assert 'orderflow_ingress_orders_rejected_total{code="invalid_amount"} 1.0' in text
    assert 'orderflow_ingress_orders_rejected_total{code="unsupported_media_type"} 1.0' in text


async def test_get_on_execute_without_upgrade_is_405_json(ingress: Ingress) -> None:
    async with ingress.client.get(URL) as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"
        assert resp.headers["Allow"] == "GET, POST"


async def test_unknown_api_route_is_json_404(ingress: Ingress) -> None:
    async with ingress.client.put("/api/orders/abc") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"
        assert "GET" in resp.headers["Allow"]  # RFC 9110: a 405 lists what is allowed
    async with ingress.client.get("/api/nothing/here/at/all") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
