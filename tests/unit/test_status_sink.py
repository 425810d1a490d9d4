"""``StatusSink`` (sinks/status_sink.py): ``order-status`` into PostgreSQL, on doubles.

The batching itself (commit after flush, back-pressure, one-by-one after a bad batch) is
tested on a plain sink in test_sink_base.py; here: what the status sink adds. Events are
decoded, written through the status store and acknowledged only after the write; an
event that cannot be read or written is kept on ``orders-dlt`` with its reason and its
source position, and acknowledged; which database errors mean "unavailable" (hold the
acks, retry) and which mean "this record" (dead-letter it); dead-lettering itself
waits for the broker; batch sizes and failed writes reach the metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
import psycopg
import pytest
from faust.types import EventT
from prometheus_client import CollectorRegistry
from psycopg_pool import PoolTimeout

import sinks.status_sink as status_sink
from pipeline.errors import BrokerUnavailable
from pipeline.metrics import EngineMetrics
from pipeline.topics import DEAD_LETTERS, ORDER_STATUS
from pipeline.wire import StatusEvent
from sinks.status_sink import SinkConfig, StatusSink
from tests.helpers import wait_until
from tests.unit.test_ingress_fakes import lifecycle


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Event:
    """What the sink reads of a faust event: its message, and ``ack``."""

    message: Message
    acked: bool = False

    def ack(self) -> bool:
        self.acked = True
        return True


EventT.register(Event)  # the sink checks that a rejected message is a faust event


def event(status: StatusEvent | bytes, offset: int, key: bytes | None = None) -> Event:
    if isinstance(status, StatusEvent):
        key, value = status.order_id.encode(), status.encode()
    else:
        value = status
    return Event(Message(ORDER_STATUS, 3, offset, key, value))


class Poison(psycopg.errors.CheckViolation):
    """What PostgreSQL answers for a row it refuses: this record, not the database."""


@dataclass
class Store:
    """The status store: records written batches; ``poison`` event ids are refused;
    ``down`` fails every write as an unreachable database."""

    batches: list[list[str]] = field(default_factory=list)
    poison: set[str] = field(default_factory=set)
    down: bool = False
    attempts: int = 0

    async def write(self, batch: Sequence[StatusEvent]) -> None:
        self.attempts += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")
        ids = [e.event_id for e in batch]
        if self.poison & set(ids):
            raise Poison("new row violates check constraint")
        self.batches.append(ids)

    @property
    def written(self) -> list[str]:
        return [i for b in self.batches for i in b]


@dataclass
class Broker:
    """Stands in for ``produce``: what reached which topic; ``down`` refuses it."""

    produced: list[tuple[str, bytes | None, dict[str, Any]]] = field(default_factory=list)
    down: bool = False
    attempts: int = 0

    async def produce(self, topic: Any, key: bytes | None, value: bytes, *,
                      wait: bool = True) -> None:
        self.attempts += 1
        if self.down:
            raise BrokerUnavailable(message=f"{topic.get_topic_name()}: broker down")
        self.produced.append((topic.get_topic_name(), key, orjson.loads(value)))

    def dead_letters(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(k, v) for t, k, v in self.produced if t == DEAD_LETTERS]


@dataclass
class Rig:
    sink: StatusSink
    store: Store
    broker: Broker
    metrics: EngineMetrics

    def metric(self, name: str, **labels: str) -> float:
        got = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    app = faust.App("status-sink-test", broker="memory://", store="memory://")
    metrics = EngineMetrics(CollectorRegistry())
    broker = Broker()
    monkeypatch.setattr(status_sink, "produce", broker.produce)
    sink = StatusSink(app, SinkConfig("postgresql://unused", max_batch=3, within_s=60.0),
                      metrics=metrics)
    store = Store()
    sink.store = store  # type: ignore[assignment]  # what on_start builds on the pool
    yield Rig(sink, store, broker, metrics)


async def test_events_are_written_in_batches_and_acked_after_the_write(rig: Rig) -> None:
    events = lifecycle("o-batch")
    msgs = [event(e, offset=i) for i, e in enumerate(events)]
    for m in msgs[:2]:
        await rig.sink.add_message(m)  # type: ignore[arg-type]
    assert rig.store.batches == [] and not any(m.acked for m in msgs)  # buffered
    await rig.sink.add_message(msgs[2])  # type: ignore[arg-type]  # max_batch: written
    assert rig.store.batches == [[e.event_id for e in events[:3]]]
    assert [m.acked for m in msgs] == [True, True, True, False, False]
    for m in msgs[3:]:
        await rig.sink.add_message(m)  # type: ignore[arg-type]
    await rig.sink.flush()
    assert rig.store.written == [e.event_id for e in events]
    assert all(m.acked for m in msgs)
    assert rig.metric("orderflow_sink_batch_events_count") == 2
    assert rig.metric("orderflow_sink_batch_events_sum") == 5
    assert rig.metric("orderflow_sink_write_errors_total") == 0
    assert rig.broker.produced == []


async def test_an_unreadable_event_is_dead_lettered_and_its_offset_acked(rig: Rig) -> None:
    good = lifecycle("o-good")[0]
    garbage = event(b'{"schemaVersion": 1, "eventId": ', offset=41, key=b"o-bad")
    msgs = [event(good, offset=40), garbage]
    for m in msgs:
        await rig.sink.add_message(m)  # type: ignore[arg-type]
    (key, record), = rig.broker.dead_letters()  # kept before the sink moves on
    assert key == b"o-bad"
    assert record["reason"] == "unreadable_status_event"
    assert record["source"] == {"topic": ORDER_STATUS, "partition": 3, "offset": 41}
    assert record["value"] == '{"schemaVersion": 1, "eventId": '
    await rig.sink.flush()
    assert rig.store.written == [good.event_id]  # nothing written for it
    assert all(m.acked for m in msgs)  # its offset is committed with the others
    assert rig.metric("orderflow_dead_letters_total",
                      reason="unreadable_status_event") == 1


async def test_an_unwritable_event_is_dead_lettered_and_the_rest_written(rig: Rig) -> None:
    events = lifecycle("o-poison")[:3]
    rig.store.poison = {events[1].event_id}
    msgs = [event(e, offset=10 + i) for i, e in enumerate(events)]
    for m in msgs:
        await rig.sink.add_message(m)  # type: ignore[arg-type]
    assert rig.store.written == [events[0].event_id, events[2].event_id]
    assert all(m.acked for m in msgs)
    (key, record), = rig.broker.dead_letters()
    assert key == events[1].order_id.encode()
    assert record["reason"] == "unwritable_status_event"
    assert record["source"]["offset"] == 11
    assert "check constraint" in record["error"]["message"]
    assert StatusEvent.decode(record["value"].encode()) == events[1]  # kept whole
    # the batch, then the poison record on its own
    assert rig.metric("orderflow_sink_write_errors_total") == 2


async def test_an_unavailable_database_holds_the_acks_until_it_is_back(rig: Rig) -> None:
    events = lifecycle("o-down")[:3]
    msgs = [event(e, offset=i) for i, e in enumerate(events)]
    for m in msgs[:2]:
        await rig.sink.add_message(m)  # type: ignore[arg-type]
    rig.store.down = True
    adding = asyncio.ensure_future(rig.sink.add_message(msgs[2]))  # type: ignore[arg-type]
    await wait_until(lambda: rig.store.attempts >= 2, 5, "the batch to be written again")
    assert not adding.done()  # back-pressure: the consumer waits on the flush
    assert not any(m.acked for m in msgs)
    assert rig.broker.produced == []  # unavailable is not the record's fault
    rig.store.down = False
    await asyncio.wait_for(adding, 5)
    assert rig.store.batches == [[e.event_id for e in events]]
    assert all(m.acked for m in msgs)


async def test_which_database_errors_mean_unavailable(rig: Rig) -> None:
    for exc in (psycopg.OperationalError("server closed the connection"),
                psycopg.InterfaceError("connection is closed"),
                PoolTimeout("no connection in 5s"), ConnectionRefusedError(111, "refused")):
        assert rig.sink.unavailable(exc), exc
    for exc in (psycopg.errors.UniqueViolation("duplicate key"),
                psycopg.errors.CheckViolation("check"), psycopg.DataError("bad value"),
                ValueError("not a status")):
        assert not rig.sink.unavailable(exc), exc


async def test_dead_lettering_waits_for_the_broker(rig: Rig) -> None:
    rig.broker.down = True
    garbage = event(b"not json", offset=7, key=b"o-x")
    adding = asyncio.ensure_future(rig.sink.add_message(garbage))  # type: ignore[arg-type]
    await wait_until(lambda: rig.broker.attempts >= 1, 5, "a dead-letter attempt")
    assert not adding.done()  # the sink does not move past it until it is kept
    rig.broker.down = False
    await asyncio.wait_for(adding, 10)  # the next attempt (after its back-off) keeps it
    assert [r["reason"] for _, r in rig.broker.dead_letters()] == ["unreadable_status_event"]
    await rig.sink.flush()
    assert garbage.acked
