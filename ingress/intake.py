"""Accepting an order: the broker's ack on ``orders`` is the moment of acceptance."""

from __future__ import annotations

import logging

from ingress.metrics import IngressMetrics
from ingress.ports import BrokerUnavailable, OrderBus
from pipeline.lifecycle import OrderAccepted, apply
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import ExecuteOrder, StatusEvent

log = logging.getLogger(__name__)


class OrderIntake:
    def __init__(self, bus: OrderBus, metrics: IngressMetrics) -> None:
        self._bus = bus
        self._metrics = metrics

    async def accept(self, order: ExecuteOrder) -> StatusEvent:
        """Produce the order and wait for the ack, then announce ``pending``.

        Raises :class:`BrokerUnavailable` if the order itself was not acknowledged.
        A failure to announce ``pending`` is only logged: the order is already
        accepted and the worker emits the same (deterministic) event anyway.
        """
        key = order.order_id.encode()
        try:
            await self._bus.send(ORDERS, key, order.encode())
        except BrokerUnavailable:
            self._metrics.orders_rejected.labels(code=BrokerUnavailable.default_code).inc()
            raise
        self._metrics.orders_accepted.labels(source=order.source).inc()
        pending = StatusEvent.of(apply(order.to_order(), OrderAccepted()),
                                 client_ref=order.client_ref)
        try:
            await self._bus.send(ORDER_STATUS, key, pending.encode())
        except BrokerUnavailable:
            log.warning("order %s accepted but its pending event was not published; "
                        "the worker will publish it", order.order_id, exc_info=True)
        return pending
