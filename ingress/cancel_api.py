"""``DELETE /api/orders/{orderId}``: ask the engine to cancel an order.

The ingress cannot decide a cancel: only the executor's journal knows whether the order's
transaction was recorded (``pipeline/order_end.py``, migration 007), and it decides a cancel
racing a trigger or an execution so that exactly one of them wins. So the route checks what
it can know (the order exists, it is not finished yet), produces a ``CancelOrder`` onto
``orders`` under the order's key, and answers 202 once the broker acknowledged it. The
outcome is the order's own status: ``cancelled`` when the cancel won; otherwise the order
goes on (a cancel that lost is kept on ``orders-dlt`` with code ``cancel_refused``).
"""

from __future__ import annotations

import re

from aiohttp import web

from ingress.api_keys import ApiKeyStore
from ingress.auth import request_key
from ingress.hub import StatusHub
from ingress.intake import OrderIntake
from ingress.ports import OrderStore
from ingress.responses import error_response, json_response
from pipeline.lifecycle import OrderStatus
from pipeline.wire import CancelOrder, now_ms

ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # the orders contract's orderId pattern


class CancelApi:
    def __init__(self, intake: OrderIntake, store: OrderStore, hub: StatusHub,
                 owners: ApiKeyStore | None = None) -> None:
        self._intake = intake
        self._store = store
        self._hub = hub
        self._owners = owners  # which API key submitted which order

    async def _visible(self, request: web.Request, order_id: str) -> bool:
        """An API key sees (and cancels) only its own orders; another's is as unknown."""
        key = request_key(request)
        if key is None or self._owners is None:
            return True
        return bool(await self._owners.owned(key.key_id, [order_id]))

    async def _status(self, order_id: str) -> str | None:
        """The order's latest known status: the read model's, or (an order accepted a moment
        ago, not yet persisted) the highest this ingress's status feed has seen."""
        record = await self._store.get_order(order_id)
        if record is not None:
            return record.status
        cached = self._hub.cached(order_id)
        return max(cached, key=lambda e: e.rank).status.value if cached else None

    async def cancel(self, request: web.Request) -> web.Response:
        """202 once the ``CancelOrder`` is on ``orders``; 404 for an order nobody knows; 409
        for an order that already ended (terminal states have no exits)."""
        order_id = request.match_info["orderId"]
        if request.query:
            name = sorted(request.query)[0]
            return error_response(400, "unknown_parameter",
                                  f"unknown query parameter {name!r} (none are taken)", name)
        status = None
        if ORDER_ID.match(order_id) and await self._visible(request, order_id):
            status = await self._status(order_id)
        if status is None:
            return error_response(404, "order_not_found", f"no order {order_id!r}", "orderId")
        if OrderStatus(status).terminal:
            return error_response(409, "order_finished", f"order {order_id} is already "
                                  f"{status}; a finished order cannot be cancelled", "orderId")
        await self._intake.cancel(CancelOrder(order_id, now_ms(), "http",
                                              "cancelled via DELETE /api/orders"))
        return json_response({
            "orderId": order_id, "status": status, "cancel": "requested",
            "message": "the cancel is on the orders topic; the engine decides it against the "
                       "order's execution. Follow GET /api/orders/{orderId} (or the "
                       "WebSocket): it ends 'cancelled' if the cancel won; if the order's "
                       "transaction was already sent, the cancel is refused and the order "
                       "goes on to its own end"},
            status=202, headers={"Location": f"/api/orders/{order_id}"})
