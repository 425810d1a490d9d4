"""Feeds the hub from ``order-status``: every ingress instance must see every event.

So there is no consumer group (a group would split partitions between
instances): the consumer assigns itself all partitions and starts at their end,
since older events are in PostgreSQL for late joiners.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ingress.hub import StatusHub
from ingress.metrics import IngressMetrics
from pipeline.errors import ConfigError
from pipeline.topics import ORDER_STATUS
from pipeline.wire import StatusEvent

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 1000
TOPIC_WAIT_S = 30.0  # `orderflow up` starts the worker (which creates topics) alongside us


class StatusFeed:
    def __init__(self, bootstrap: str, hub: StatusHub, metrics: IngressMetrics, *,
                 topic: str = ORDER_STATUS, client_id: str = "orderflow-ingress") -> None:
        self._hub = hub
        self._metrics = metrics
        self._topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            client_id=client_id, auto_offset_reset="latest")

    async def start(self, *, topic_wait_s: float = TOPIC_WAIT_S) -> None:
        """Assign every partition and pin the start offsets, so nothing later is skipped."""
        await self._consumer.start()
        try:
            partitions = await self._partitions(topic_wait_s)
            assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            self._consumer.assign(assigned)
            await self._consumer.seek_to_end(*assigned)
            for tp in assigned:  # resolve "end" now, not at the first fetch
                await self._consumer.position(tp)
        except BaseException:
            await self._consumer.stop()
            raise

    async def _partitions(self, wait_s: float) -> set[int]:
        deadline = time.monotonic() + wait_s
        while True:
            partitions: set[int] | None = self._consumer.partitions_for_topic(self._topic)
            if partitions:
                return partitions
            if time.monotonic() > deadline:
                raise ConfigError(message=f"topic {self._topic!r} does not exist after "
                                  f"{wait_s:g}s; create the topics before starting ingress")
            await asyncio.sleep(0.5)
            # ``topics()`` returns a fresh snapshot without touching the consumer's own cache
            await self._consumer._client.force_metadata_update()

    async def stop(self) -> None:
        """Stop consuming. aiokafka's fetcher, when stopped during its retry back-off (the
        broker away), lets the ``CancelledError`` of its own cancelled task out of
        ``consumer.stop()``: that one is swallowed; a cancellation of *this* task is not."""
        try:
            await self._consumer.stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.debug("status feed: the consumer's fetch task ended cancelled while stopping")

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
            for records in batches.values():
                for record in records:
                    self._deliver(record)

    def _deliver(self, record: Any) -> None:
        try:
            event = StatusEvent.decode(record.value)
        except Exception as exc:  # any malformed record: skip it, keep the feed alive
            self._metrics.status_decode_errors.inc()
            log.warning("skipping undecodable record %s[%s]@%s: %s: %s", record.topic,
                        record.partition, record.offset, type(exc).__name__, exc)
            return
        self._metrics.status_events.inc()
        self._hub.publish(event)
