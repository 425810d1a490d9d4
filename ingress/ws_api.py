"""WebSocket routes: follow order status live, or submit an order and follow it to the end.

Client -> server on ``/api/orders/ws[?orderId=X[&after=<eventId>]]``::

    {"action": "subscribe", "orderId": "...", "after": "<eventId>"?}
    {"action": "subscribe", "all": true}
    {"action": "unsubscribe", "orderId": "..."}   {"action": "unsubscribe", "all": true}

Server -> client: ``{"type": "status", ...StatusEvent}`` per event;
``{"type": "subscribed", "orderId"|"all", "replayed": n}`` once a subscription's
backlog has been sent; ``{"type": "unsubscribed", ...}``;
``{"type": "error", "error": {"code", "message", "field"}}``.

Reconnecting (after an ingress restart, say): the client passes the last eventId it
has as ``after`` and gets only the order's later events (by lifecycle rank), from
PostgreSQL and the hub's cache, then live ones. Without ``after`` the whole history
is replayed and the client de-duplicates by eventId (``orderId:attempt:status``).

``/api/orders/execute``: the first message is the order, optionally with
``"idempotencyKey"`` (see :mod:`ingress.idempotency`); then ``{"type": "accepted",
"orderId", "status", "order", "replayed"}`` and the order's events until it ends.
Any later message is answered ``{"type": "error", "error": {"code":
"one_order_per_socket", ...}}`` and changes nothing (one order per socket).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ingress.api_keys import ApiKeyStore, scoped_key
from ingress.auth import SUBPROTOCOL, request_key
from ingress.hub import SlowSubscriber, StatusHub
from ingress.idempotency import WS_KEY_FIELD, IdempotencyKeyBusy, IdempotencyKeyReused
from ingress.intake import OrderIntake, OrderNotAccepted
from ingress.metrics import IngressMetrics
from ingress.order_request import parse_order_message
from ingress.orders_api import MAX_BODY_BYTES, ORDER_ID
from ingress.own_orders import OwnOrders
from ingress.ports import OrderStore, StoreUnavailable
from ingress.responses import error_body, error_response
from ingress.status_stream import StatusStream
from pipeline.errors import InvalidOrder, TransientError
from pipeline.lifecycle import OrderStatus, rank
from pipeline.tasks import spawn
from pipeline.wire import now_ms

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
FIRST_MESSAGE_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
_connection_ids = itertools.count(1)


class WebSocketApi:
    def __init__(self, intake: OrderIntake, store: OrderStore, hub: StatusHub,
                 metrics: IngressMetrics, owners: ApiKeyStore | None = None) -> None:
        self._owners = owners  # which API key submitted which order
        self._intake = intake
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._open: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def close_all(self, _app: web.Application) -> None:
        """On shutdown: tell every client we are going away instead of dropping the TCP."""
        await asyncio.gather(*(_close(ws, WSCloseCode.GOING_AWAY, "server shutting down")
                               for ws in list(self._open)))

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/orders/ws[?orderId=X]``: one order, or all orders without the param."""
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_BODY_BYTES,
                                   protocols=(SUBPROTOCOL,))
        if not ws.can_prepare(request).ok:
            return error_response(426, "upgrade_required", "this route is a WebSocket")
        await ws.prepare(request)
        api_key = request_key(request)
        scope = None if api_key is None else OwnOrders(self._owners, api_key.key_id)
        stream = StatusStream(ws, self._hub, self._store, self._metrics, scope=scope)
        with self._tracked(ws, stream):
            order_id = request.query.get("orderId")
            if order_id is not None and not ORDER_ID.match(order_id):
                await _fail(ws, "invalid_order_id", "orderId is not a valid order id", "orderId")
                return ws
            try:
                allowed = await _may_follow(scope, order_id)
            except StoreUnavailable as exc:
                await _fail(ws, exc.code, exc.message, close_code=WSCloseCode.TRY_AGAIN_LATER)
                return ws
            if not allowed:
                await _fail(ws, "order_not_found", NOT_YOURS, "orderId")
                return ws
            after = request.query.get("after")
            try:
                after_rank = None if after is None else parse_after(order_id, after)
            except InvalidOrder as exc:
                await _fail(ws, exc.code, exc.message, exc.field)
                return ws
            await self._stream(ws, stream, scope=scope, first=(
                stream.follow_order(order_id, after_rank=after_rank) if order_id is not None
                else stream.follow_all()))
        return ws

    async def execute(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/orders/execute`` (upgrade): first message is the order, then its events."""
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_BODY_BYTES,
                                   protocols=(SUBPROTOCOL,))
        if not ws.can_prepare(request).ok:
            response = error_response(405, "method_not_allowed",
                                      "POST an order, or open a WebSocket on this path")
            response.headers["Allow"] = "GET, POST"  # GET only as a WebSocket upgrade
            return response
        await ws.prepare(request)
        try:
            msg = await ws.receive(timeout=FIRST_MESSAGE_TIMEOUT_S)
        except TimeoutError:
            await _fail(ws, "timeout", "send the order as the first message")
            return ws
        if msg.type is not WSMsgType.TEXT:
            await _fail(ws, "invalid_body", "the first message must be the order as JSON text")
            return ws
        try:
            order, key = parse_order_message(msg.data, source="ws", submitted_at_ms=now_ms())
        except InvalidOrder as exc:
            self._metrics.orders_rejected.labels(code=exc.code).inc()
            await _fail(ws, exc.code, exc.message, exc.field)
            return ws
        api_key = request_key(request)
        try:
            if api_key is not None and self._owners is not None:  # as POST does
                key = scoped_key(key, api_key)
                await self._owners.record_order(order.order_id, api_key.key_id)
            claim = await self._intake.submit(order, key)
        except IdempotencyKeyReused as exc:
            self._metrics.orders_rejected.labels(code=exc.code).inc()
            await _fail(ws, exc.code, exc.message, WS_KEY_FIELD)
            return ws
        except OrderNotAccepted as exc:
            await _fail(ws, exc.code, f"order {exc.order_id} not accepted, try again: "
                        f"{exc.message}", close_code=WSCloseCode.TRY_AGAIN_LATER)
            return ws
        except TransientError as exc:  # the idempotency store is busy or unavailable
            await _fail(ws, exc.code, exc.message,
                        WS_KEY_FIELD if isinstance(exc, IdempotencyKeyBusy) else None,
                        close_code=WSCloseCode.TRY_AGAIN_LATER)
            return ws
        accepted = claim.order
        stream = StatusStream(ws, self._hub, self._store, self._metrics,
                              until_terminal_of=accepted.order_id)
        with self._tracked(ws, stream):
            await stream.send_json({"type": "accepted", "orderId": accepted.order_id,
                                    "status": "pending", "order": accepted.to_json(),
                                    "replayed": claim.replayed})
            await self._stream(ws, stream, executing=accepted.order_id,
                               first=stream.follow_order(accepted.order_id, announce=False))
        return ws

    @contextmanager
    def _tracked(self, ws: web.WebSocketResponse, stream: StatusStream) -> Iterator[None]:
        self._open.add(ws)
        self._metrics.ws_clients.inc()
        try:
            yield
        finally:
            stream.detach()
            self._metrics.ws_clients.dec()

    async def _stream(self, ws: web.WebSocketResponse, stream: StatusStream, *,
                      first: Awaitable[None], executing: str | None = None,
                      scope: OwnOrders | None = None) -> None:
        """Run the first subscription, then pump live events while reading control messages.

        ``executing``: the order an execute socket follows; it takes no control messages,
        and another order sent on it is answered with an error (not silently dropped, so
        the client knows it was not placed) while the first order's stream goes on.
        """
        try:
            await first
        except SlowSubscriber:
            await self._drop_slow(ws)
            return
        except ConnectionError:
            return
        except StoreUnavailable:
            await _close(ws, WSCloseCode.TRY_AGAIN_LATER, "order ownership unavailable")
            return
        if stream.finished:
            await _close(ws, WSCloseCode.OK, "order finished")
            return
        pump = spawn(self._pump(ws, stream), name=f"ingress.ws-pump-{next(_connection_ids)}")
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if executing is None:
                    await self._control(stream, msg.data, scope)
                else:
                    await stream.send_json({"type": "error", **error_body(
                        "one_order_per_socket", f"this socket already follows order "
                        f"{executing}; nothing else was placed. Open a new socket per order")})
        except SlowSubscriber:
            await self._drop_slow(ws)
        except ConnectionError:
            pass
        except StoreUnavailable:
            await _close(ws, WSCloseCode.TRY_AGAIN_LATER, "order ownership unavailable")
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, ws: web.WebSocketResponse, stream: StatusStream) -> None:
        try:
            await stream.pump()
        except SlowSubscriber:
            await self._drop_slow(ws)
        except ConnectionError:
            pass
        except StoreUnavailable:  # a keyed stream cannot tell whose an order is: reconnect
            log.warning("order ownership unavailable; closing a keyed stream", exc_info=True)
            await _close(ws, WSCloseCode.TRY_AGAIN_LATER, "order ownership unavailable")
        else:
            await _close(ws, WSCloseCode.OK, "order finished")
        finally:
            if not ws.closed:  # an unexpected error: do not leave the client hanging
                await _close(ws, WSCloseCode.INTERNAL_ERROR, "internal error")

    async def _drop_slow(self, ws: web.WebSocketResponse) -> None:
        self._metrics.ws_clients_dropped.inc()
        await _close(ws, WSCloseCode.TRY_AGAIN_LATER, "too slow: events were dropped; reconnect")

    async def _control(self, stream: StatusStream, text: str, scope: OwnOrders | None
                       ) -> None:
        try:
            action, order_id, after_rank = _parse_control(text)
        except InvalidOrder as exc:
            await stream.send_json({"type": "error", **error_body(exc.code, exc.message,
                                                                  exc.field)})
            return
        if action == "subscribe" and not await _may_follow(scope, order_id):
            await stream.send_json({"type": "error", **error_body(
                "order_not_found", NOT_YOURS, "orderId")})
            return
        match action, order_id:
            case "subscribe", None:
                await stream.follow_all()
            case "subscribe", str():
                await stream.follow_order(order_id, after_rank=after_rank)
            case "unsubscribe", None:
                await stream.unfollow_all()
            case "unsubscribe", str():
                await stream.unfollow_order(order_id)


NOT_YOURS = "an API key follows only the orders it submitted"


async def _may_follow(scope: OwnOrders | None, order_id: str | None) -> bool:
    """Anyone may follow all orders (a key: all of its own); a key only its own order."""
    return scope is None or order_id is None or order_id in await scope.mine([order_id])


def _parse_control(text: str) -> tuple[str, str | None, int | None]:
    """``(action, orderId, after_rank)``; orderId None means all orders."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidOrder("malformed_json", "message is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidOrder("invalid_message", "message must be a JSON object")
    action = doc.get("action")
    if action not in ("subscribe", "unsubscribe"):
        raise InvalidOrder("invalid_action", "action must be subscribe or unsubscribe",
                           field="action")
    after = doc.get("after")
    if doc.get("all") is True and "orderId" not in doc:
        if after is not None:
            raise InvalidOrder("invalid_after", "after needs an orderId", field="after")
        return action, None, None
    order_id = doc.get("orderId")
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        raise InvalidOrder("invalid_order_id", 'give a valid "orderId" or "all": true',
                           field="orderId")
    if after is None or action == "unsubscribe":
        return action, order_id, None
    return action, order_id, parse_after(order_id, after)


def parse_after(order_id: str | None, after: object) -> int:
    """The lifecycle rank of the eventId ``after`` (``orderId:attempt:status``) of ``order_id``.

    A subscriber that reconnects passes the last eventId it has; the server then
    sends only the order's events that come after it in the lifecycle (higher rank).
    """
    bad = InvalidOrder("invalid_after", "after must be an eventId of the subscribed order, "
                       "orderId:attempt:status", field="after")
    if order_id is None:
        raise InvalidOrder("invalid_after", "after needs an orderId", field="after")
    if not isinstance(after, str):
        raise bad
    parts = after.split(":")  # orderIds have no colons
    if len(parts) != 3 or parts[0] != order_id:
        raise bad
    _, attempt, status = parts
    if not (attempt.isascii() and attempt.isdigit()) or not 1 <= int(attempt) <= 1000:
        raise bad
    try:
        return rank(OrderStatus(status), int(attempt))
    except ValueError:
        raise bad from None


async def _fail(ws: web.WebSocketResponse, code: str, message: str, field: str | None = None,
                *, close_code: WSCloseCode = WSCloseCode.POLICY_VIOLATION) -> None:
    """Send one error message and close: the connection cannot go on."""
    try:
        await ws.send_str(orjson.dumps({"type": "error", **error_body(code, message, field)})
                          .decode())
    except ConnectionError:
        pass
    await _close(ws, close_code, code)


async def _close(ws: web.WebSocketResponse, code: WSCloseCode, reason: str) -> None:
    """Close politely, or abort the transport if the client does not take the close frame."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await ws.close(code=code, message=reason.encode()[:123])
    except (TimeoutError, ConnectionError):
        pass
