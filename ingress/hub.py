"""In-process fan-out of status events to WebSocket subscribers, plus a recent-event cache.

The cache exists for late joiners: an event broadcast here may reach
PostgreSQL (via the sink) only later, so a backlog read from the database alone
could miss it. :meth:`StatusHub.publish` caches before it fans out, so any
event a new subscriber did not receive live is in the cache or in the database.

Publishing never blocks: each subscriber has a bounded buffer, and a
subscriber whose buffer overflows is dropped (its connection closes it) rather
than slowing the feed for everyone else.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.wire import StatusEvent, parse_iso_ms

DEFAULT_CACHE_ORDERS = 10_000
DEFAULT_CACHE_AGE_S = 15 * 60.0
DEFAULT_CLIENT_CAPACITY = 1024


class SlowSubscriber(Exception):
    """The subscriber's buffer overflowed; it has been detached from the hub."""


class Subscription:
    """One subscriber's filter and bounded buffer; drained by its connection's pump."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.order_ids: set[str] = set()
        self.all_orders = False
        self.overflowed = False
        self._buffer: deque[StatusEvent] = deque()
        self._wakeup = asyncio.Event()

    def wants(self, event: StatusEvent) -> bool:
        return self.all_orders or event.order_id in self.order_ids

    def offer(self, event: StatusEvent) -> bool:
        """Buffer ``event``; return False (and mark the overflow) when the buffer is full."""
        if len(self._buffer) >= self.capacity:
            self.overflowed = True
            self._wakeup.set()
            return False
        self._buffer.append(event)
        self._wakeup.set()
        return True

    async def next_batch(self) -> list[StatusEvent]:
        """Wait for at least one event and take everything buffered."""
        while not self._buffer and not self.overflowed:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.overflowed:
            raise SlowSubscriber(f"more than {self.capacity} undelivered events")
        batch = list(self._buffer)
        self._buffer.clear()
        return batch


@dataclass(slots=True)
class _CachedOrder:
    submitted_at_ms: int
    touched: float
    events: dict[str, StatusEvent] = field(default_factory=dict)


class StatusHub:
    """Every status event this instance consumed: cached per order, fanned out to subscribers."""

    def __init__(
        self,
        *,
        cache_orders: int = DEFAULT_CACHE_ORDERS,
        cache_age_s: float = DEFAULT_CACHE_AGE_S,
        client_capacity: int = DEFAULT_CLIENT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache_orders = cache_orders
        self._cache_age_s = cache_age_s
        self._client_capacity = client_capacity
        self._clock = clock
        self._cache: OrderedDict[str, _CachedOrder] = OrderedDict()  # least recently updated first
        self._subscribers: set[Subscription] = set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        sub = Subscription(self._client_capacity)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, event: StatusEvent) -> None:
        """Cache first, then fan out: the order that makes late joins gap-free."""
        self._remember(event)
        for sub in list(self._subscribers):
            if sub.wants(event) and not sub.offer(event):
                self._subscribers.discard(sub)

    def cached(self, order_id: str) -> list[StatusEvent]:
        self._expire()
        entry = self._cache.get(order_id)
        return list(entry.events.values()) if entry else []

    def recent_orders(self, limit: int) -> list[tuple[int, str]]:
        """``(submitted_at_ms, order_id)`` of the newest cached orders, newest first."""
        self._expire()
        keys = ((entry.submitted_at_ms, order_id) for order_id, entry in self._cache.items())
        return sorted(keys, reverse=True)[:limit]

    def _remember(self, event: StatusEvent) -> None:
        now = self._clock()
        entry = self._cache.get(event.order_id)
        if entry is None:
            entry = _CachedOrder(_submitted_at_ms(event), now)
            self._cache[event.order_id] = entry
        entry.touched = now
        entry.events.setdefault(event.event_id, event)
        self._cache.move_to_end(event.order_id)
        while len(self._cache) > self._cache_orders:
            self._cache.popitem(last=False)
        self._expire()

    def _expire(self) -> None:
        horizon = self._clock() - self._cache_age_s
        while self._cache:
            oldest = next(iter(self._cache.values()))
            if oldest.touched >= horizon:
                break
            self._cache.popitem(last=False)


def _submitted_at_ms(event: StatusEvent) -> int:
    stamp = event.order.get("submittedAt")
    if isinstance(stamp, str):
        try:
            return parse_iso_ms(stamp)
        except ValueError:
            pass
    return event.ts_ms
