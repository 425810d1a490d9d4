"""One WebSocket client's view of status events: backlog first, then live, no gap, no duplicate.

Following an order (or all orders) is done under the connection's send lock:

1. widen the hub filter, so live events for it start buffering right away;
2. read the backlog: persisted events from PostgreSQL merged with the hub's
   recent cache (the cache holds events the sink has not persisted yet);
3. send the backlog sorted by (rank, ts), recording every eventId sent.

The pump then drains the buffer under the same lock and skips eventIds already
sent. Every event the hub publishes is either published before the cache read
in step 2 (so cached, since the hub caches before it fans out) or after step 1
(so buffered); step 1 precedes step 2, so nothing falls in between. The
database supplies what this instance never saw (it starts at the topic's end)
or has evicted from its bounded cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from ingress.hub import SlowSubscriber, StatusHub, Subscription
from ingress.metrics import IngressMetrics
from ingress.order_filters import OrderFilter
from ingress.own_orders import OwnOrders
from ingress.ports import OrderStore
from ingress.records import datetime_to_ms
from ingress.responses import error_body
from pipeline.wire import StatusEvent

log = logging.getLogger(__name__)

ALL_ORDERS_BACKLOG = 50  # orders replayed to an all-orders subscriber
SENT_IDS_REMEMBERED = 100_000
SEND_STALL_S = 5.0  # a client that cannot take one message in this long is dropped


class SentIds:
    """Bounded memory of eventIds already sent on one connection."""

    def __init__(self, capacity: int = SENT_IDS_REMEMBERED) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class StatusStream:
    """Sends status events to one WebSocket; see the module docstring for the protocol."""

    def __init__(self, ws: web.WebSocketResponse, hub: StatusHub, store: OrderStore,
                 metrics: IngressMetrics, *, until_terminal_of: str | None = None,
                 send_stall_s: float = SEND_STALL_S, scope: OwnOrders | None = None) -> None:
        self._ws = ws
        self._scope = scope  # an API key's connection: "all orders" are the key's own
        self._send_stall_s = send_stall_s
        self._hub = hub
        self._store = store
        self._metrics = metrics
        self._until_terminal_of = until_terminal_of
        self._sub: Subscription = hub.subscribe()
        self._sent = SentIds()
        self._floors: dict[str, int] = {}  # orderId -> rank the client already has
        self._lock = asyncio.Lock()
        self.finished = False  # the watched order reached a terminal status and it was sent

    def detach(self) -> None:
        self._hub.unsubscribe(self._sub)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send one message; raise SlowSubscriber when the client stops reading."""
        try:
            async with asyncio.timeout(self._send_stall_s):
                await self._ws.send_str(orjson.dumps(message).decode())
        except TimeoutError:
            raise SlowSubscriber(f"a send stalled for {self._send_stall_s:g}s") from None
        self._metrics.ws_messages_sent.inc()

    async def follow_order(self, order_id: str, *, announce: bool = True,
                           after_rank: int | None = None) -> None:
        """Backlog then live events of one order; with ``after_rank`` only those ranked above.

        ``after_rank`` is the rank of the last event a reconnecting client already has
        (see ``?after=<eventId>``): the order's events up to it are neither replayed
        nor sent live again.
        """
        async with self._lock:
            if after_rank is not None:
                self._floors[order_id] = max(after_rank, self._floors.get(order_id, after_rank))
            self._sub.order_ids.add(order_id)
            backlog = await self._backlog([order_id])
            replayed = await self._send_events(sorted(backlog, key=_rank_then_ts))
            if announce:
                await self.send_json({"type": "subscribed", "orderId": order_id,
                                      "replayed": replayed})

    async def follow_all(self) -> None:
        async with self._lock:
            self._sub.all_orders = True
            newest = {oid: ms for ms, oid in self._hub.recent_orders(ALL_ORDERS_BACKLOG)}
            where = None
            if self._scope is not None:
                mine = await self._scope.mine(newest)
                newest = {oid: ms for oid, ms in newest.items() if oid in mine}
                where = OrderFilter(owner=self._scope.key_id)
            try:
                for record in await self._store.list_orders(ALL_ORDERS_BACKLOG, None, where):
                    newest.setdefault(record.order_id, datetime_to_ms(record.submitted_at))
            except Exception:
                log.warning("order listing for the all-orders backlog failed", exc_info=True)
            chosen = sorted(newest.items(), key=lambda kv: (kv[1], kv[0]))[-ALL_ORDERS_BACKLOG:]
            submitted = dict(chosen)
            backlog = await self._backlog(list(submitted))

            def order_then_rank(e: StatusEvent) -> tuple[int, str, int, int]:
                return (submitted[e.order_id], e.order_id, e.rank, e.ts_ms)

            replayed = await self._send_events(sorted(backlog, key=order_then_rank))
            await self.send_json({"type": "subscribed", "all": True, "replayed": replayed})

    async def unfollow_order(self, order_id: str) -> None:
        async with self._lock:
            self._sub.order_ids.discard(order_id)
        await self.send_json({"type": "unsubscribed", "orderId": order_id})

    async def unfollow_all(self) -> None:
        async with self._lock:
            self._sub.all_orders = False
        await self.send_json({"type": "unsubscribed", "all": True})

    async def pump(self) -> None:
        """Forward live events until the watched order is finished.

        Raises :class:`SlowSubscriber` when the client falls behind, and
        :class:`ingress.ports.StoreUnavailable` when a keyed stream cannot tell whose an
        order is.
        """
        while not self.finished:
            batch = await self._sub.next_batch()
            if self._scope is not None and self._sub.all_orders:
                followed = self._sub.order_ids
                mine = await self._scope.mine(e.order_id for e in batch
                                              if e.order_id not in followed)
                batch = [e for e in batch if e.order_id in followed or e.order_id in mine]
            async with self._lock:
                await self._send_events(e for e in batch if self._sub.wants(e))

    async def _backlog(self, order_ids: list[str]) -> list[StatusEvent]:
        merged: dict[str, StatusEvent] = {}
        try:
            for event in await self._store.events_for(order_ids):
                merged[event.event_id] = event
        except Exception:
            log.warning("backlog read from the database failed", exc_info=True)
            await self.send_json({"type": "error", **error_body(
                "backlog_unavailable",
                "order history is unavailable; only recent events are replayed")})
        for order_id in order_ids:
            for event in self._hub.cached(order_id):
                merged.setdefault(event.event_id, event)
        return list(merged.values())

    async def _send_events(self, events: Iterable[StatusEvent]) -> int:
        sent = 0
        for event in events:
            if self._sub.overflowed:
                raise SlowSubscriber(f"more than {self._sub.capacity} undelivered events")
            if self.finished or event.event_id in self._sent:
                continue
            if event.rank <= self._floors.get(event.order_id, -1):
                continue
            await self.send_json({"type": "status", **event.to_json()})
            self._sent.add(event.event_id)
            sent += 1
            if event.status.terminal and event.order_id == self._until_terminal_of:
                self.finished = True
        return sent


def _rank_then_ts(event: StatusEvent) -> tuple[int, int]:
    return (event.rank, event.ts_ms)
