"""Contract strictness of ``orders`` v1 and of the HTTP/WS order request (issue 9, "Also fix").

JSON integers only where the contract says integer: orjson parses ``1.0`` as a float
and JSON Schema calls an integral float an integer, so ``schemaVersion: 1.0`` and
``amountIn: 10000000.0`` used to pass. ``type: "market"`` is accepted on HTTP and WS
(the Kafka contract has it), other types are a clear 422. ``maxPriceImpactBps`` is an
optional integer 1..10000 on all three entries.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import WSCloseCode, WSMsgType

from pipeline.errors import InvalidOrder
from pipeline.tokens import SOL, USDC
from pipeline.topics import ORDERS
from pipeline.wire import decode_execute_order
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import Ingress, lifecycle

ingress = fakes.ingress

GOOD: dict[str, Any] = {"schemaVersion": 1, "orderId": "order-0001", "tokenIn": SOL.mint,
                        "tokenOut": USDC.mint, "amountIn": 10_000_000, "slippageBps": 50}
EXECUTE = "/api/orders/execute"


@pytest.mark.parametrize(("change", "field"), [
    ({"schemaVersion": 1.0}, "schemaVersion"),
    ({"amountIn": 10000000.0}, "amountIn"),
    ({"slippageBps": 50.0}, "slippageBps"),
    ({"slippageBps": True}, "slippageBps"),
    ({"amountIn": True}, "amountIn"),
    ({"maxPriceImpactBps": 100.0}, "maxPriceImpactBps"),
    ({"maxPriceImpactBps": 0}, "maxPriceImpactBps"),
    ({"maxPriceImpactBps": 10001}, "maxPriceImpactBps"),
    ({"maxPriceImpactBps": False}, "maxPriceImpactBps"),
    ({"type": "limit"}, "type"),
])
def test_kafka_contract_takes_json_integers_only(change: dict[str, Any], field: str) -> None:
    raw = orjson.dumps({**GOOD, **change})
    with pytest.raises(InvalidOrder) as refused:
        decode_execute_order(raw)
    assert refused.value.field == field, refused.value


def test_kafka_contract_max_price_impact_round_trips() -> None:
    order = decode_execute_order(orjson.dumps({**GOOD, "maxPriceImpactBps": 250}))
    assert order.max_price_impact_bps == 250
    assert orjson.loads(order.encode())["maxPriceImpactBps"] == 250
    assert decode_execute_order(order.encode()) == order
    plain = decode_execute_order(orjson.dumps(GOOD))
    assert plain.max_price_impact_bps is None  # the engine's configured default
    assert "maxPriceImpactBps" not in orjson.loads(plain.encode())


def test_the_literal_text_1_0_is_refused_too() -> None:
    raw = orjson.dumps(GOOD).replace(b'"schemaVersion":1', b'"schemaVersion":1.0')
    assert b"1.0" in raw
    with pytest.raises(InvalidOrder) as refused:
        decode_execute_order(raw)
    assert refused.value.code == "unsupported_schema_version"


async def _post(ingress: Ingress, doc: dict[str, Any]) -> tuple[int, Any]:
    async with ingress.client.post(EXECUTE, json=doc) as resp:
        return resp.status, await resp.json()


ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.01"}


async def test_http_accepts_type_market_and_max_price_impact(ingress: Ingress) -> None:
    status, doc = await _post(ingress, {**ORDER, "type": "market", "maxPriceImpactBps": 300})
    assert status == 202, doc
    produced = decode_execute_order(ingress.bus.on(ORDERS)[0].value)
    assert produced.max_price_impact_bps == 300 and produced.amount_in == 10_000_000


@pytest.mark.parametrize("order_type", ["stop", "Limit", "MARKET", 1, None])
async def test_http_other_order_types_are_422(ingress: Ingress, order_type: object) -> None:
    status, doc = await _post(ingress, {**ORDER, "type": order_type})
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (
        422, "unsupported_order_type", "type"), doc
    assert ingress.bus.sent == []


@pytest.mark.parametrize("impact", [0, 10001, 1.5, 100.0, "100", True, None])
async def test_http_bad_max_price_impact_is_400(ingress: Ingress, impact: object) -> None:
    status, doc = await _post(ingress, {**ORDER, "maxPriceImpactBps": impact})
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (
        400, "invalid_max_price_impact", "maxPriceImpactBps"), doc


async def test_ws_accepts_type_market_and_refuses_other_types(ingress: Ingress) -> None:
    async with ingress.client.ws_connect(EXECUTE) as ws:
        await ws.send_json({**ORDER, "type": "market", "maxPriceImpactBps": 10000})
        accepted = await ws.receive_json(timeout=5)
        assert accepted["type"] == "accepted", accepted
        assert accepted["order"]["maxPriceImpactBps"] == 10000
    async with ingress.client.ws_connect(EXECUTE) as ws:
        await ws.send_json({**ORDER, "type": "stop"})
        refused = await ws.receive_json(timeout=5)
        assert refused["error"]["code"] == "unsupported_order_type", refused


async def test_a_second_order_on_the_execute_socket_is_answered_with_an_error(
        ingress: Ingress) -> None:
    async with ingress.client.ws_connect(EXECUTE) as ws:
        await ws.send_json(ORDER)
        accepted = await ws.receive_json(timeout=5)
        assert accepted["type"] == "accepted", accepted
        oid = accepted["orderId"]
        await ws.send_json({**ORDER, "amount": "2"})
        answer = await ws.receive_json(timeout=5)
        assert (answer["type"], answer["error"]["code"]) == ("error", "one_order_per_socket")
        assert oid in answer["error"]["message"]
        assert len(ingress.bus.on(ORDERS)) == 1  # the second order was not produced
        # ...and the first order's stream goes on to its end
        for event in lifecycle(oid):
            ingress.hub.publish(event)
        statuses = [(await ws.receive_json(timeout=5))["status"] for _ in range(5)]
        assert statuses == ["pending", "routing", "building", "submitted", "confirmed"]
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.OK
