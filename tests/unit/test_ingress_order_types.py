"""Limit, sniper and market-with-expiry orders on HTTP and WebSocket, and
``DELETE /api/orders/{orderId}``, on in-memory ports (the routes are the real ones)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from ingress.metrics import IngressMetrics
from ingress.open_orders import TriggerDistance
from ingress.records import ms_to_datetime
from pipeline.lifecycle import Order
from pipeline.model import Quote, Venue
from pipeline.router import Quotes
from pipeline.tokens import SOL
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import CancelOrder, decode_orders_message, iso_ms, now_ms, parse_iso_ms
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, Ingress, ingress_config, record

ingress = fakes.ingress
EXECUTE = "/api/orders/execute"
NEW_MINT = "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R"


def later(s: int = 3600) -> str:
    return iso_ms(now_ms() + s * 1000)


LIMIT: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "type": "limit",
                         "limitPrice": "160.5"}


async def _post(ingress: Ingress, body: dict[str, Any]) -> tuple[int, Any]:
    async with ingress.client.post(EXECUTE, json=body) as resp:
        return resp.status, await resp.json()


def _produced(ingress: Ingress) -> Any:
    sent = ingress.bus.on(ORDERS)
    assert len(sent) == 1, sent
    return decode_orders_message(sent[0].value), orjson.loads(sent[0].value)


async def test_limit_price_in_ui_units_becomes_the_exact_minimum_out(ingress: Ingress) -> None:
    expires = later()
    status, doc = await _post(ingress, {**LIMIT, "expiresAt": expires})
    assert status == 202, doc
    order, raw = _produced(ingress)
    assert raw["schemaVersion"] == 2 and raw["type"] == "limit"
    assert order.limit.min_out == 160_500_000  # 160.5 USDC (6 decimals) for 1 SOL
    assert order.expires_at_ms == parse_iso_ms(expires)
    pending = orjson.loads(ingress.bus.on(ORDER_STATUS)[0].value)
    assert pending["order"]["limit"] == {"minOut": 160_500_000}


@pytest.mark.parametrize("min_out", ["160500001", 160_500_001])
async def test_limit_as_exact_minimum_out(ingress: Ingress, min_out: object) -> None:
    body = {k: v for k, v in LIMIT.items() if k != "limitPrice"}
    status, doc = await _post(ingress, {**body, "minAmountOut": min_out, "expiresAt": later()})
    assert status == 202, doc
    assert _produced(ingress)[0].limit.min_out == 160_500_001


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"limitPrice": "0.0000001"}, "inexact_limit_price", "limitPrice"),  # 0.1 base units
    ({"limitPrice": 160.5}, "invalid_limit_price", "limitPrice"),
    ({"limitPrice": "-1"}, "invalid_limit_price", "limitPrice"),
    ({"minAmountOut": "5"}, "invalid_field", "limitPrice"),  # both
    ({"limitPrice": None}, "invalid_limit_price", "limitPrice"),
    ({"expiresAt": None}, "invalid_expires_at", "expiresAt"),
    ({"expiresAt": "2020-01-01T00:00:00Z"}, "invalid_expires_at", "expiresAt"),
    ({"expiresAt": "2030-01-01T00:00:00"}, "invalid_expires_at", "expiresAt"),  # no zone
    ({"sniper": {"minQuoteLiquidity": "1"}}, "invalid_field", "sniper"),
])
async def test_bad_limit_orders_are_400(ingress: Ingress, change: dict[str, Any], code: str,
                                        field: str) -> None:
    status, doc = await _post(ingress, {**LIMIT, "expiresAt": later(), **change})
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (400, code, field), doc
    assert ingress.bus.sent == []


async def test_a_limit_order_needs_an_expiry_and_its_terms(ingress: Ingress) -> None:
    status, doc = await _post(ingress, LIMIT)
    assert (status, doc["error"]["field"]) == (400, "expiresAt"), doc
    body = {k: v for k, v in LIMIT.items() if k != "limitPrice"}
    status, doc = await _post(ingress, {**body, "expiresAt": later()})
    assert (status, doc["error"]["code"]) == (400, "missing_field"), doc
    status, doc = await _post(ingress, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1",
                                        "limitPrice": "160"})  # a market order
    assert (status, doc["error"]["field"]) == (400, "limitPrice"), doc
    assert ingress.bus.sent == []


async def test_sniper_order_on_a_mint_nobody_lists(ingress: Ingress) -> None:
    status, doc = await _post(ingress, {
        "tokenIn": "SOL", "tokenOut": NEW_MINT, "amount": "0.5", "type": "sniper",
        "expiresAt": later(), "sniper": {"minQuoteLiquidity": "10", "minAmountOut": "1000",
                                         "maxPriceImpactBps": 1500, "maxDelaySlots": 20,
                                         "priorityFeeMicroLamports": 50_000}})
    assert status == 202, doc
    order, raw = _produced(ingress)
    assert order.token_out == NEW_MINT and order.amount_in == 500_000_000
    assert raw["sniper"] == {"minQuoteLiquidity": 10_000_000_000, "minOut": 1000,
                             "maxPriceImpactBps": 1500, "maxDelaySlots": 20,
                             "priorityFeeMicroLamports": 50_000}


@pytest.mark.parametrize(("sniper", "field"), [
    (None, "sniper"), ({}, "sniper.minQuoteLiquidity"),
    ({"minQuoteLiquidity": "1", "maxSlots": 2}, "sniper.maxSlots"),
    ({"minQuoteLiquidity": "1", "maxDelaySlots": -1}, "sniper.maxDelaySlots"),
    ({"minQuoteLiquidity": 1}, "sniper.minQuoteLiquidity"),
])
async def test_bad_sniper_orders_are_400(ingress: Ingress, sniper: Any, field: str) -> None:
    body: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": NEW_MINT, "amount": "0.5",
                            "type": "sniper", "expiresAt": later()}
    if sniper is not None:
        body["sniper"] = sniper
    status, doc = await _post(ingress, body)
    assert (status, doc["error"]["field"]) == (400, field), doc


async def test_market_order_keeps_v1_unless_it_gives_an_expiry(ingress: Ingress) -> None:
    plain = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    assert (await _post(ingress, plain))[0] == 202
    assert orjson.loads(ingress.bus.on(ORDERS)[0].value)["schemaVersion"] == 1
    expires = later(30)
    assert (await _post(ingress, {**plain, "expiresAt": expires}))[0] == 202
    raw = orjson.loads(ingress.bus.on(ORDERS)[1].value)
    assert (raw["schemaVersion"], raw["expiresAt"]) == (2, expires)


async def test_pending_states_the_executors_default_expiry() -> None:
    bus, store = FakeBus(), FakeStore()
    app = build_app(ingress_config(market_ttl_ms=5_000), producer=bus, store=store,
                    hub=StatusHub(), metrics=IngressMetrics())
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        async with client.post(EXECUTE, json={"tokenIn": "SOL", "tokenOut": "USDC",
                                              "amount": "1"}) as resp:
            assert resp.status == 202
    pending = orjson.loads(bus.on(ORDER_STATUS)[0].value)["order"]
    assert parse_iso_ms(pending["expiresAt"]) - parse_iso_ms(pending["submittedAt"]) == 5_000


async def test_websocket_takes_a_limit_order(ingress: Ingress) -> None:
    async with ingress.client.ws_connect(EXECUTE) as ws:
        await ws.send_json({**LIMIT, "expiresAt": later()})
        accepted = await ws.receive_json(timeout=5)
    assert accepted["type"] == "accepted", accepted
    assert accepted["order"]["limit"] == {"minOut": 160_500_000}


async def test_idempotency_key_with_other_terms_is_refused(ingress: Ingress) -> None:
    expires = later()
    headers = {"Idempotency-Key": "limit-key-0001"}
    async with ingress.client.post(EXECUTE, json={**LIMIT, "expiresAt": expires},
                                   headers=headers) as resp:
        assert resp.status == 202
    async with ingress.client.post(EXECUTE, json={**LIMIT, "limitPrice": "161",
                                                  "expiresAt": expires}, headers=headers) as resp:
        assert resp.status == 422, await resp.json()


# ---- DELETE /api/orders/{orderId} ----

async def _delete(ingress: Ingress, order_id: str, query: str = "") -> tuple[int, Any]:
    async with ingress.client.delete(f"/api/orders/{order_id}{query}") as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("order_id", ["never-seen-0001", "x", "bad id!"])
async def test_delete_of_an_unknown_order_is_404(ingress: Ingress, order_id: str) -> None:
    status, doc = await _delete(ingress, order_id)
    assert (status, doc["error"]["code"]) == (404, "order_not_found"), doc
    assert ingress.bus.sent == []


@pytest.mark.parametrize("state", ["pending", "open", "triggered", "routing", "submitted"])
async def test_delete_produces_a_cancel_on_the_orders_partition(ingress: Ingress,
                                                                state: str) -> None:
    ingress.store.orders["order-open-1"] = record("order-open-1", status=state)
    before = now_ms()
    status, doc = await _delete(ingress, "order-open-1")
    assert status == 202, doc
    assert (doc["orderId"], doc["status"], doc["cancel"]) == ("order-open-1", state, "requested")
    [sent] = ingress.bus.on(ORDERS)
    assert sent.key == b"order-open-1"  # the order's key: its partition, after it
    cmd = decode_orders_message(sent.value)
    assert isinstance(cmd, CancelOrder)
    assert cmd.order_id == "order-open-1" and cmd.source == "http"
    assert cmd.requested_at_ms >= before


@pytest.mark.parametrize("state", ["confirmed", "failed", "expired", "cancelled"])
async def test_delete_of_a_finished_order_is_409(ingress: Ingress, state: str) -> None:
    ingress.store.orders["order-done-1"] = record("order-done-1", status=state)
    status, doc = await _delete(ingress, "order-done-1")
    assert (status, doc["error"]["code"]) == (409, "order_finished"), doc
    assert state in doc["error"]["message"] and ingress.bus.sent == []


async def test_delete_finds_an_order_the_status_feed_saw_before_the_sink(
        ingress: Ingress) -> None:
    pending = fakes.lifecycle("order-new-01")[0]
    ingress.hub.publish(pending)
    status, doc = await _delete(ingress, "order-new-01")
    assert (status, doc["status"]) == (202, "pending"), doc


async def test_delete_refuses_parameters_and_reports_a_down_broker(ingress: Ingress) -> None:
    ingress.store.orders["order-open-2"] = record("order-open-2")
    status, doc = await _delete(ingress, "order-open-2", "?force=1")
    assert (status, doc["error"]["field"]) == (400, "force"), doc
    ingress.bus.down_topics.add(ORDERS)
    status, doc = await _delete(ingress, "order-open-2")
    assert (status, doc["error"]["code"]) == (503, "broker_unavailable"), doc



# ---- open orders: condition, time left, distance to trigger ----

def _open_limit(order_id: str, *, expires_in_ms: int = 600_000, **changes: Any) -> Any:
    fields: dict[str, Any] = {"status": "open", "order_type": "limit",
                              "expires_at": ms_to_datetime(now_ms() + expires_in_ms),
                              "terms": {"limit": {"minOut": 160_500_000}}, **changes}
    return record(order_id, **fields)


async def test_an_open_limit_order_shows_what_it_waits_for(ingress: Ingress) -> None:
    ingress.store.orders["limit-open-1"] = _open_limit("limit-open-1")
    async with ingress.client.get("/api/orders/limit-open-1") as resp:
        doc = await resp.json()
    assert (doc["type"], doc["terms"]["limit"]) == ("limit", {
        "minAmountOut": "160500000", "minAmountOutUi": "160.5", "limitPrice": "107"})  # per SOL
    waiting = doc["waiting"]
    assert waiting["condition"] == "the best net output for 1.5 SOL reaches 160.5 USDC"
    assert 590_000 < waiting["timeLeftMs"] <= 600_000
    assert waiting["distance"] is None  # this ingress has no venues to quote
    async with ingress.client.get("/api/orders") as resp:
        [listed] = (await resp.json())["orders"]
    assert listed["waiting"]["condition"] == waiting["condition"]


async def test_market_and_triggered_orders_wait_for_nothing(ingress: Ingress) -> None:
    ingress.store.orders["market-0001"] = record("market-0001", status="routing")
    ingress.store.orders["limit-trig-1"] = _open_limit("limit-trig-1", status="triggered")
    async with ingress.client.get("/api/orders") as resp:
        orders = (await resp.json())["orders"]
    assert all("waiting" not in o for o in orders)
    assert {o["type"] for o in orders} == {"market", "limit"}


class Quoting:
    def __init__(self, out: int) -> None:
        self.out, self.calls = out, 0

    async def quote_all(self, order: Order) -> Quotes:
        self.calls += 1
        q = Quote(Venue.RAYDIUM, order.amount_in, self.out, 0, SOL.mint, "0.1", "amm", 77)
        return Quotes((q,), (), False)


@pytest.mark.parametrize(("best", "bps"), [(150_000_000, 655), (160_499_999, 1),
                                           (160_500_000, 0), (170_000_000, -592)])
async def test_distance_to_trigger_is_the_best_net_output_against_the_limit(
        best: int, bps: int) -> None:
    quoting = Quoting(best)
    distance = TriggerDistance(quoting)
    order = _open_limit("limit-dist-1", amount_in=1_000_000_000)
    got = await distance.distance(order)
    assert got is not None
    assert (got["toTriggerBps"], got["bestNetOut"]["amount"], got["minOut"]["ui"],
            got["slot"]) == (bps, str(best), "160.5", 77)
    await distance.distance(_open_limit("limit-dist-2", amount_in=1_000_000_000))
    assert quoting.calls == 1  # same pair and amount: one quote serves both
