"""The hub: bounded recent cache for late joiners, and fan-out that never waits on a client."""

from __future__ import annotations

import asyncio

import pytest

from ingress.hub import SlowSubscriber, StatusHub
from pipeline.wire import StatusEvent
from tests.unit.test_ingress_fakes import lifecycle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_keeps_each_event_once_per_order() -> None:
    hub = StatusHub()
    events = lifecycle("order-cache-1")
    for e in events + events[:2]:
        hub.publish(e)
    assert hub.cached("order-cache-1") == events
    assert hub.cached("unknown") == []


def test_cache_is_bounded_by_order_count_least_recently_updated_first() -> None:
    hub = StatusHub(cache_orders=2)
    a, b, c = (lifecycle(f"order-lru-{x}") for x in "abc")
    hub.publish(a[0])
    hub.publish(b[0])
    hub.publish(a[1])  # a is now the most recently updated
    hub.publish(c[0])  # evicts b
    assert hub.cached("order-lru-b") == []
    assert hub.cached("order-lru-a") == a[:2]
    assert hub.cached("order-lru-c") == c[:1]


def test_cache_expires_by_age() -> None:
    clock = Clock()
    hub = StatusHub(cache_age_s=60, clock=clock)
    old, new = lifecycle("order-old-1"), lifecycle("order-new-1", t0=1_700_000_100_000)
    hub.publish(old[0])
    clock.now = 30
    hub.publish(new[0])
    clock.now = 61
    assert hub.cached("order-old-1") == []
    assert hub.cached("order-new-1") == new[:1]
    assert hub.recent_orders(10) == [(1_700_000_100_000, "order-new-1")]


def test_recent_orders_are_newest_submitted_first() -> None:
    hub = StatusHub()
    for i, t0 in enumerate((3_000, 1_000, 2_000)):
        hub.publish(lifecycle(f"order-recent-{i}", t0=t0)[0])
    assert hub.recent_orders(2) == [(3_000, "order-recent-0"), (2_000, "order-recent-2")]


async def test_subscribers_get_only_what_they_follow() -> None:
    hub = StatusHub()
    one, everything = hub.subscribe(), hub.subscribe()
    one.order_ids.add("order-sub-a")
    everything.all_orders = True
    a, b = lifecycle("order-sub-a"), lifecycle("order-sub-b")
    hub.publish(a[0])
    hub.publish(b[0])
    assert await one.next_batch() == [a[0]]
    assert await everything.next_batch() == [a[0], b[0]]
    hub.unsubscribe(one)
    hub.publish(a[1])
    assert hub.subscriber_count == 1
    assert await everything.next_batch() == [a[1]]


async def test_overflowing_subscriber_is_detached_without_blocking_others() -> None:
    hub = StatusHub(client_capacity=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    slow.all_orders = fast.all_orders = True
    events = lifecycle("order-flood-1")
    for e in events[:3]:
        hub.publish(e)
    assert await fast.next_batch() == events[:3]
    hub.publish(events[3])  # slow has 3 buffered: overflow
    assert slow.overflowed and hub.subscriber_count == 1
    with pytest.raises(SlowSubscriber):
        await slow.next_batch()
    hub.publish(events[4])
    assert await fast.next_batch() == events[3:]


async def test_next_batch_waits_for_an_event() -> None:
    hub = StatusHub()
    sub = hub.subscribe()
    sub.order_ids.add("order-wait-1")
    started = asyncio.Event()

    async def next_batch() -> list[StatusEvent]:
        started.set()
        return await sub.next_batch()

    waiter = asyncio.ensure_future(next_batch())
    await started.wait()  # the waiter has run up to where it suspends (or finished)
    assert not waiter.done()
    event = lifecycle("order-wait-1")[0]
    hub.publish(event)
    assert await asyncio.wait_for(waiter, 1) == [event]
