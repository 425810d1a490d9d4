"""WebSockets: gap-free late join, subscriptions, slow clients, submit-and-follow."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from ingress.hub import SlowSubscriber, StatusHub
from ingress.metrics import IngressMetrics
from ingress.status_stream import StatusStream
from pipeline.topics import ORDERS
from pipeline.wire import StatusEvent
from tests.helpers import wait_until
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import FakeStore, Ingress, lifecycle, record

ingress = fakes.ingress
WS = "/api/orders/ws"


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data)
    doc: dict[str, Any] = msg.json()
    return doc


async def receive_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Messages up to and including the first of type ``kind``."""
    out = [await receive(ws)]
    while out[-1]["type"] != kind:
        out.append(await receive(ws))
    return out


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["eventId"] if m["type"] == "status" else m["type"] for m in messages]


async def test_late_joiner_gets_backlog_then_live_without_gap_or_duplicate(
        ingress: Ingress) -> None:
    oid = "order-late-1"
    pending, routing, building, submitted, confirmed = events = lifecycle(oid)
    ingress.store.orders[oid] = record(oid)
    ingress.store.events = [routing, pending]  # persisted prefix, in any order
    ingress.hub.publish(routing)  # broadcast before the client came (and persisted)
    ingress.hub.publish(building)  # broadcast, not yet persisted by the sink

    gate = ingress.store.events_gate = asyncio.Event()
    async with ingress.client.ws_connect(f"{WS}?orderId={oid}") as ws:
        await wait_until(lambda: ingress.store.events_reads == 1, 5, "the backlog read")
        # Arrive while the backlog is being read: must appear exactly once, in order.
        ingress.hub.publish(submitted)
        ingress.hub.publish(routing)  # a redelivery
        gate.set()
        replay = await receive_until(ws, "subscribed")
        assert ids(replay) == [e.event_id for e in events[:4]] + ["subscribed"]
        assert replay[-1] == {"type": "subscribed", "orderId": oid, "replayed": 4}
        assert replay[2] == {"type": "status", **building.to_json()}

        ingress.hub.publish(confirmed)
        ingress.hub.publish(building)
        assert ids([await receive(ws)]) == [confirmed.event_id]
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.1)  # and no duplicate behind it


async def test_all_orders_replays_recent_orders_grouped_then_live(ingress: Ingress) -> None:
    a, b = lifecycle("order-all-a", t0=1_000_000), lifecycle("order-all-b", t0=2_000_000)
    ingress.store.orders["order-all-a"] = record("order-all-a", submitted_ms=1_000_000)
    ingress.store.events = a[:2]
    ingress.hub.publish(b[0])  # only in the cache so far
    async with ingress.client.ws_connect(WS) as ws:
        replay = await receive_until(ws, "subscribed")
        assert ids(replay) == [a[0].event_id, a[1].event_id, b[0].event_id, "subscribed"]
        assert replay[-1] == {"type": "subscribed", "all": True, "replayed": 3}
        ingress.hub.publish(lifecycle("order-all-c")[0])
        assert (await receive(ws))["orderId"] == "order-all-c"


async def test_subscribe_and_unsubscribe_messages(ingress: Ingress) -> None:
    x, y = lifecycle("order-ctl-x"), lifecycle("order-ctl-y")
    async with ingress.client.ws_connect(f"{WS}?orderId=order-ctl-x") as ws:
        assert (await receive(ws))["type"] == "subscribed"
        await ws.send_json({"action": "subscribe", "orderId": "order-ctl-y"})
        assert await receive(ws) == {"type": "subscribed", "orderId": "order-ctl-y",
                                     "replayed": 0}
        ingress.hub.publish(y[0])
        ingress.hub.publish(x[0])
        assert ids([await receive(ws), await receive(ws)]) == [y[0].event_id, x[0].event_id]

        await ws.send_json({"action": "unsubscribe", "orderId": "order-ctl-x"})
        assert (await receive(ws))["type"] == "unsubscribed"
        ingress.hub.publish(x[1])
        ingress.hub.publish(y[1])
        assert ids([await receive(ws)]) == [y[1].event_id]

        await ws.send_json({"action": "subscribe", "all": True})
        replay = await receive_until(ws, "subscribed")  # x[1] was missed: now replayed
        assert ids(replay) == [x[1].event_id, "subscribed"]
        await ws.send_json({"action": "unsubscribe", "all": True})
        assert await receive(ws) == {"type": "unsubscribed", "all": True}


@pytest.mark.parametrize(("message", "code", "field"), [
    ("not json", "malformed_json", None),
    ('["subscribe"]', "invalid_message", None),
    ('{"action": "follow", "orderId": "order-ctl-1"}', "invalid_action", "action"),
    ('{"action": "subscribe"}', "invalid_order_id", "orderId"),
    ('{"action": "subscribe", "orderId": "no spaces allowed"}', "invalid_order_id", "orderId"),
])
async def test_bad_control_messages_answer_an_error_and_keep_the_connection(
        ingress: Ingress, message: str, code: str, field: str | None) -> None:
    async with ingress.client.ws_connect(f"{WS}?orderId=order-ctl-1") as ws:
        await receive(ws)
        await ws.send_str(message)
        doc = await receive(ws)
        assert doc["type"] == "error"
        assert (doc["error"]["code"], doc["error"]["field"]) == (code, field)
        assert doc["error"]["message"]
        await ws.send_json({"action": "subscribe", "orderId": "order-ctl-2"})
        assert (await receive(ws))["type"] == "subscribed"


async def test_invalid_order_id_param_is_refused(ingress: Ingress) -> None:
    async with ingress.client.ws_connect(f"{WS}?orderId=bad!") as ws:
        doc = await receive(ws)
        assert doc["error"]["code"] == "invalid_order_id"
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.POLICY_VIOLATION


async def test_client_that_falls_behind_is_dropped_with_try_again_later(
        ingress: Ingress) -> None:
    async with ingress.client.ws_connect(WS) as ws:
        await receive_until(ws, "subscribed")
        for i in range(100):  # no await in between: the pump cannot drain (capacity 64)
            ingress.hub.publish(lifecycle(f"order-flood-{i:03d}")[0])
        while (msg := await ws.receive(timeout=5)).type is WSMsgType.TEXT:
            pass
        assert msg.type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.TRY_AGAIN_LATER
    assert ingress.hub.subscriber_count == 0
    assert ingress.metrics.registry.get_sample_value(
        "orderflow_ingress_ws_clients_dropped_total") == 1


class StuckSocket:
    """A WebSocket whose client never reads: every send blocks."""

    async def send_str(self, _data: str) -> None:
        await asyncio.Event().wait()


async def test_a_stalled_send_is_a_slow_subscriber() -> None:
    hub = StatusHub()
    stream = StatusStream(StuckSocket(), hub, FakeStore(),  # type: ignore[arg-type]
                          IngressMetrics(), send_stall_s=0.05)
    with pytest.raises(SlowSubscriber):
        await stream.follow_order("order-stuck-1")


async def test_execute_over_websocket_streams_until_terminal(ingress: Ingress) -> None:
    async with ingress.client.ws_connect("/api/orders/execute") as ws:
        await ws.send_json({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"})
        accepted = await receive(ws)
        assert accepted["type"] == "accepted" and accepted["status"] == "pending"
        oid = accepted["orderId"]
        assert accepted["order"]["amountIn"] == 1_500_000_000
        assert accepted["order"]["source"] == "ws"
        assert ingress.bus.sent[0].topic == ORDERS

        events = [_renamed(e, oid) for e in lifecycle("placeholder")]
        for e in events:
            ingress.hub.publish(e)
        ingress.hub.publish(lifecycle("order-someone-else")[0])
        got = [await receive(ws) for _ in events]
        assert [m["status"] for m in got] == [
            "pending", "routing", "building", "submitted", "confirmed"]
        assert {m["orderId"] for m in got} == {oid}
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE and ws.close_code == WSCloseCode.OK


def _renamed(event: StatusEvent, order_id: str) -> StatusEvent:
    return StatusEvent(f"{order_id}:{event.attempt}:{event.status.value}", order_id,
                       event.status, event.attempt, event.ts_ms, event.order, event.data)


@pytest.mark.parametrize(("body", "code"), [
    ('{"tokenIn": "SOL", "tokenOut": "SOL", "amount": "1"}', "same_token"),
    ("{", "malformed_json"),
])
async def test_execute_over_websocket_refuses_bad_orders(ingress: Ingress, body: str,
                                                         code: str) -> None:
    async with ingress.client.ws_connect("/api/orders/execute") as ws:
        await ws.send_str(body)
        doc = await receive(ws)
        assert doc["type"] == "error" and doc["error"]["code"] == code
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.POLICY_VIOLATION
    assert ingress.bus.sent == []


async def test_execute_over_websocket_with_broker_down(ingress: Ingress) -> None:
    ingress.bus.down_topics.add(ORDERS)
    async with ingress.client.ws_connect("/api/orders/execute") as ws:
        await ws.send_json({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"})
        doc = await receive(ws)
        assert doc["error"]["code"] == "broker_unavailable"
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.TRY_AGAIN_LATER


async def test_open_sockets_are_closed_going_away_on_shutdown(ingress: Ingress) -> None:
    ws = await ingress.client.ws_connect(WS)
    await receive_until(ws, "subscribed")
    closing = asyncio.ensure_future(ingress.client.server.close())
    msg = await ws.receive(timeout=5)  # a client that keeps reading, as browsers do
    assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, WSCloseCode.GOING_AWAY)
    await asyncio.wait_for(closing, 10)
    await ws.close()


async def test_database_down_still_replays_the_cache_and_says_so(ingress: Ingress) -> None:
    from ingress.ports import StoreUnavailable

    async def down(*_: Any) -> Any:
        raise StoreUnavailable(message="database unavailable: test")

    ingress.store.events_for = down  # type: ignore[method-assign,assignment]
    pending = lifecycle("order-dbdown-1")[0]
    ingress.hub.publish(pending)
    async with ingress.client.ws_connect(f"{WS}?orderId=order-dbdown-1") as ws:
        replay = await receive_until(ws, "subscribed")
    assert replay[0]["type"] == "error"
    assert replay[0]["error"]["code"] == "backlog_unavailable"
    assert ids(replay[1:]) == [pending.event_id, "subscribed"]


async def test_reconnect_with_after_gets_only_the_later_events(ingress: Ingress) -> None:
    oid = "order-after-1"
    pending, routing, building, submitted, confirmed = lifecycle(oid)
    ingress.store.orders[oid] = record(oid)
    ingress.store.events = [building, pending, routing]
    ingress.hub.publish(submitted)  # not persisted yet: only in the hub's cache
    async with ingress.client.ws_connect(f"{WS}?orderId={oid}&after={routing.event_id}") as ws:
        replay = await receive_until(ws, "subscribed")
        assert ids(replay) == [building.event_id, submitted.event_id, "subscribed"]
        assert replay[-1] == {"type": "subscribed", "orderId": oid, "replayed": 2}
        for redelivered in (routing, pending, building):  # the client has these already
            ingress.hub.publish(redelivered)
        ingress.hub.publish(confirmed)
        assert ids([await receive(ws)]) == [confirmed.event_id]
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.1)


async def test_subscribe_message_with_after(ingress: Ingress) -> None:
    oid = "order-after-2"
    events = lifecycle(oid)
    ingress.store.events = events[:4]
    async with ingress.client.ws_connect(WS + "?orderId=order-other-1") as ws:
        await receive_until(ws, "subscribed")
        await ws.send_json({"action": "subscribe", "orderId": oid,
                            "after": events[2].event_id})
        replay = await receive_until(ws, "subscribed")
        assert ids(replay) == [events[3].event_id, "subscribed"]
        await ws.send_json({"action": "subscribe", "all": True, "after": events[2].event_id})
        doc = await receive(ws)
        assert (doc["type"], doc["error"]["code"], doc["error"]["field"]) == (
            "error", "invalid_after", "after")


@pytest.mark.parametrize("query", [
    "after=order-after-3:1:pending",  # no orderId
    "orderId=order-after-3&after=order-other-9:1:pending",
    "orderId=order-after-3&after=order-after-3:1:done",
    "orderId=order-after-3&after=order-after-3:x:pending",
    "orderId=order-after-3&after=order-after-3:0:pending",
    "orderId=order-after-3&after=order-after-3:1:pending:1",
    "orderId=order-after-3&after=",
])
async def test_invalid_after_is_refused(ingress: Ingress, query: str) -> None:
    async with ingress.client.ws_connect(f"{WS}?{query}") as ws:
        doc = await receive(ws)
        assert (doc["error"]["code"], doc["error"]["field"]) == ("invalid_after", "after")
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.POLICY_VIOLATION
