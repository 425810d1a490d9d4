"""HTTP routes for orders: submit one (POST), read one, page through all."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import PayloadEncodingError
from aiohttp.web_protocol import RequestPayloadError

from ingress.api_keys import ApiKeyStore, scoped_key
from ingress.auth import request_key
from ingress.connections import BODY_TIMEOUT_S
from ingress.idempotency import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    IdempotencyKeyBusy,
    IdempotencyKeyReused,
    key_from_headers,
)
from ingress.intake import OrderIntake, OrderNotAccepted
from ingress.metrics import IngressMetrics
from ingress.open_orders import TriggerDistance
from ingress.order_filters import parse_filter
from ingress.order_request import UnsupportedOrderType, parse_order_request
from ingress.ports import OrderStore
from ingress.records import OrderRecord, PageCursor
from ingress.responses import error_body, error_of, error_response, json_response
from ingress.views import order_detail, order_summary
from pipeline.errors import InvalidOrder
from pipeline.wire import MAX_MESSAGE_BYTES, now_ms

MAX_BODY_BYTES = MAX_MESSAGE_BYTES
DEFAULT_PAGE = 50
MAX_PAGE = 200
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # the orders contract's orderId pattern


class OrdersApi:
    def __init__(self, intake: OrderIntake, store: OrderStore, metrics: IngressMetrics,
                 owners: ApiKeyStore | None = None,
                 distance: TriggerDistance | None = None) -> None:
        self._intake = intake
        self._store = store
        self._metrics = metrics
        self._owners = owners  # which API key submitted which order
        self._distance = distance or TriggerDistance(None)  # open orders' distance to trigger

    async def _with_waiting(self, record: OrderRecord, view: dict[str, Any]) -> dict[str, Any]:
        """A conditional order not yet triggered also shows what it waits for
        (ingress/open_orders.py): condition, time left, distance to trigger where known."""
        waiting = await self._distance.waiting(record)
        return view if waiting is None else {**view, "waiting": waiting}

    def _reject(self, status: int, code: str, message: str, field: str | None = None
                ) -> web.Response:
        self._metrics.orders_rejected.labels(code=code).inc()
        return error_response(status, code, message, field)

    async def execute(self, request: web.Request) -> web.Response:
        """``POST /api/orders/execute``: 202 once the broker has acknowledged the order.

        With an ``Idempotency-Key`` header, a repeat of the same request answers the
        same orderId (``Idempotent-Replayed: true``) and produces nothing new; the
        key with another request is a 422 (see :mod:`ingress.idempotency`).
        """
        if request.content_type != "application/json":
            return self._reject(415, "unsupported_media_type",
                                "Content-Type must be application/json")
        encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
        if encoding not in ("identity", ""):
            return self._reject(415, "unsupported_content_encoding",
                                "send the body uncompressed (Content-Encoding: identity)",
                                "Content-Encoding")
        too_large = f"body exceeds {MAX_BODY_BYTES} bytes"
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return self._reject(413, "payload_too_large", too_large)
        try:
            key = key_from_headers(request.headers)
        except InvalidOrder as exc:
            return self._reject(400, exc.code, exc.message, exc.field)
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):  # a slow body must not hold the socket
                body = await request.read()
        except TimeoutError:
            return self._reject(408, "request_timeout",
                                f"the body did not arrive within {BODY_TIMEOUT_S:g}s")
        except web.HTTPRequestEntityTooLarge:
            return self._reject(413, "payload_too_large", too_large)
        except (RequestPayloadError, PayloadEncodingError) as exc:
            # e.g. Content-Encoding: gzip over bytes that are not gzip
            return self._reject(400, "invalid_body_encoding",
                                f"the body could not be decoded: {str(exc).strip()}")
        try:
            order = parse_order_request(body, source="http", submitted_at_ms=now_ms())
        except InvalidOrder as exc:
            status = 422 if isinstance(exc, UnsupportedOrderType) else 400
            return self._reject(status, exc.code, exc.message, exc.field)
        api_key = request_key(request)
        if api_key is not None:  # attributed before it exists: an accepted order is never
            key = scoped_key(key, api_key)  # unattributed; keys' idempotency keys are apart
            assert self._owners is not None
            await self._owners.record_order(order.order_id, api_key.key_id)
        try:
            claim = await self._intake.submit(order, key)
        except IdempotencyKeyReused as exc:
            return self._reject(422, exc.code, exc.message, IDEMPOTENCY_HEADER)
        except IdempotencyKeyBusy as exc:
            self._metrics.orders_rejected.labels(code=exc.code).inc()
            return json_response(error_body(exc.code, exc.message, IDEMPOTENCY_HEADER),
                                 status=409, headers={"Retry-After": "1"})
        except OrderNotAccepted as exc:
            # orderId too: after an ack timeout the broker may still have written the order,
            # and this is the only way the client can find out (GET /api/orders/{orderId}).
            # Under an idempotency key, a retry with the key produces this same orderId.
            return json_response(
                {"error": {"code": exc.code, "field": None,
                           "message": f"order not accepted, try again: {exc.message}"},
                 "orderId": exc.order_id},
                status=503, headers={"Retry-After": "1"})
        order_id = claim.order.order_id
        headers = {"Location": f"/api/orders/{order_id}"}
        if key is not None:
            headers[REPLAYED_HEADER] = "true" if claim.replayed else "false"
        return json_response({"orderId": order_id, "status": "pending"}, status=202,
                             headers=headers)

    async def get_order(self, request: web.Request) -> web.Response:
        """``GET /api/orders/{orderId}``: the order as persisted, with its event history."""
        order_id = request.match_info["orderId"]
        record = await self._store.get_order(order_id) if ORDER_ID.match(order_id) else None
        api_key = request_key(request)
        if record is not None and api_key is not None and self._owners is not None \
                and not await self._owners.owned(api_key.key_id, [order_id]):
            record = None  # another key's order: as if it did not exist
        if record is None:
            return error_response(404, "order_not_found", f"no order {order_id!r}", "orderId")
        events = await self._store.events_for([order_id])
        return json_response(await self._with_waiting(record, order_detail(record, events)))

    async def list_orders(self, request: web.Request) -> web.Response:
        """``GET /api/orders?limit=&before=&status=&type=&venue=&token=&from=&to=``: newest
        first, keyset-paged by an opaque cursor, filtered (ingress/order_filters.py)."""
        api_key = request_key(request)
        try:
            limit = _limit(request.query.get("limit"))
            raw_before = request.query.get("before")
            before = PageCursor.decode(raw_before) if raw_before else None
            where = parse_filter(request.query,
                                 owner=None if api_key is None else api_key.key_id)
        except InvalidOrder as exc:
            return json_response(error_of(exc), status=400)
        records = await self._store.list_orders(limit + 1, before, where)
        page = records[:limit]
        next_before = page[-1].cursor.encode() if len(records) > limit else None
        views = await asyncio.gather(*(self._with_waiting(r, order_summary(r)) for r in page))
        return json_response({"orders": list(views),
                              "nextBefore": next_before})


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidOrder("invalid_limit", f"limit must be an integer 1..{MAX_PAGE}",
                           field="limit")
    return int(raw)
