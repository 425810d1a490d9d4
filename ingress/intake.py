"""Accepting an order: the broker's ack on ``orders`` is the moment of acceptance."""

from __future__ import annotations

import logging

from ingress.idempotency import Claim, IdempotencyStore, fingerprint
from ingress.metrics import IngressMetrics
from ingress.ports import BrokerUnavailable, OrderBus
from pipeline.lifecycle import OrderAccepted, apply
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import CancelOrder, ExecuteOrder, StatusEvent
from pipeline.wire_terms import DEFAULT_MARKET_TTL_MS

log = logging.getLogger(__name__)


class OrderNotAccepted(BrokerUnavailable):
    """The broker did not acknowledge the order ``order_id`` (it may still have written it)."""

    def __init__(self, order_id: str, message: str) -> None:
        super().__init__(message=message)
        self.order_id = order_id


class OrderIntake:
    def __init__(self, bus: OrderBus, metrics: IngressMetrics,
                 keys: IdempotencyStore | None = None, *,
                 market_ttl_ms: int = DEFAULT_MARKET_TTL_MS) -> None:
        self._bus = bus
        self._metrics = metrics
        self._keys = keys
        self._market_ttl_ms = market_ttl_ms  # the executor's: pending states its expiry

    async def submit(self, order: ExecuteOrder, idempotency_key: str | None = None) -> Claim:
        """Accept ``order``, or under an idempotency key the key's order (see ingress.idempotency).

        Raises :class:`OrderNotAccepted` (naming the orderId that was not acknowledged),
        and with a key ``IdempotencyKeyReused`` / ``IdempotencyKeyBusy`` /
        ``StoreUnavailable``.
        """
        if idempotency_key is None or self._keys is None:
            await self.accept(order)
            return Claim(order, replayed=False, produced=True)
        return await self._keys.claim(idempotency_key, fingerprint(order), order, self.accept)

    async def accept(self, order: ExecuteOrder) -> StatusEvent:
        """Produce the order and wait for the ack, then announce ``pending``.

        Raises :class:`OrderNotAccepted` if the order itself was not acknowledged.
        A failure to announce ``pending`` is only logged: the order is already
        accepted and the worker emits the same (deterministic) event anyway.
        """
        key = order.order_id.encode()
        try:
            await self._bus.send(ORDERS, key, order.encode())
        except BrokerUnavailable as exc:
            self._metrics.orders_rejected.labels(code=BrokerUnavailable.default_code).inc()
            raise OrderNotAccepted(order.order_id, exc.message) from exc
        self._metrics.orders_accepted.labels(source=order.source).inc()
        pending = StatusEvent.of(
            apply(order.to_order(market_ttl_ms=self._market_ttl_ms), OrderAccepted()),
            client_ref=order.client_ref)
        try:
            await self._bus.send(ORDER_STATUS, key, pending.encode())
        except BrokerUnavailable:
            log.warning("order %s accepted but its pending event was not published; "
                        "the worker will publish it", order.order_id, exc_info=True)
        return pending

    async def cancel(self, cmd: CancelOrder) -> None:
        """Produce ``cmd`` on ``orders`` under its order's key (so it lands on the order's
        partition, after it) and wait for the ack; the executor's journal decides it.

        Raises :class:`BrokerUnavailable` if the broker did not acknowledge it.
        """
        await self._bus.send(ORDERS, cmd.order_id.encode(), cmd.encode())
