"""Publishing an order's statuses: one event per true status, riding out short outages.

Status events are idempotent by ``eventId``, so a publish that failed (or whose answer
was lost) is simply sent again. A broker outage longer than ``budget_s`` raises
:class:`~pipeline.errors.BrokerUnavailable`: the caller holds the order (not acked, not
failed) and resumes it from the journal later.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.errors import BrokerUnavailable
from pipeline.lifecycle import Order, OrderStatus
from pipeline.metrics import EngineMetrics
from pipeline.ports import Outbox
from pipeline.wire import ExecuteOrder, StatusEvent

log = logging.getLogger(__name__)


class StatusPublisher:
    def __init__(self, outbox: Outbox, metrics: EngineMetrics, *, budget_s: float) -> None:
        self._outbox = outbox
        self._metrics = metrics
        self._budget_s = budget_s

    async def announce(self, order: Order, cmd: ExecuteOrder) -> StatusEvent:
        """Publish the order's current status and return the event as published (the
        journal keeps a terminal one, so a re-publication has the same eventId and ts)."""
        assert order.status is not None
        event = StatusEvent.of(order, client_ref=cmd.client_ref)
        # Waiting for the broker's ack costs latency; it is needed where a later step relies
        # on the event being out: the terminal one (then the offset is acked) and pending.
        await self.emit(event, wait=order.status.terminal or order.status is OrderStatus.PENDING)
        self._metrics.transition(order.status)
        return event

    async def emit(self, event: StatusEvent, *, wait: bool = True) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget_s
        delay = 0.2
        while True:
            try:
                await self._outbox.publish(event, wait=wait)
                return
            except BrokerUnavailable as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("order %s: publishing %s failed (%s); retrying in %.1fs",
                            event.order_id, event.status, exc.message, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
