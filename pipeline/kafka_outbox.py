"""The executor's :class:`~pipeline.ports.Outbox` on Kafka topics, and the one way the
worker produces a message: a broker that cannot take it now is
:class:`~pipeline.errors.BrokerUnavailable` (the caller holds its order), never an
error of the order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT

from pipeline import topics
from pipeline.errors import BrokerUnavailable, InvalidOrder
from pipeline.metrics import EngineMetrics
from pipeline.ports import FailedOrder, RetryRequest
from pipeline.wire import RetryMessage, StatusEvent, now_ms

log = logging.getLogger(__name__)

PRODUCE_TIMEOUT_S = 30.0
BROKER_ERRORS = (KafkaError, ProducerSendError, OSError, TimeoutError)
"""What a produce raises when the broker cannot take the message now."""


async def produce(topic: faust.types.TopicT, key: bytes | None, value: bytes, *,
                  wait: bool = True) -> None:
    """Produce one message; with ``wait``, return once the broker acknowledged it."""
    try:
        fut = await topic.send(key=key, value=value)
        if wait:
            await asyncio.wait_for(fut, PRODUCE_TIMEOUT_S)
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(message=f"{topic.get_topic_name()}: {exc!r}") from exc


def unreadable_record(ev: EventT[bytes], reason: str, error: dict[str, str]) -> dict[str, Any]:
    """A dead-letter record for a message nobody can read: where it was, and its bytes."""
    msg = ev.message
    return {
        "reason": reason,
        "error": error,
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        "key": (msg.key or b"").decode(errors="replace"),
        "value": (msg.value or b"").decode(errors="replace")[:65536],
        "failedAt": now_ms(),
    }


class KafkaOutbox:
    """``order-status``, the retry topics and ``orders-dlt`` of one faust app."""

    def __init__(self, app: faust.App, metrics: EngineMetrics) -> None:
        self.metrics = metrics
        self.status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)
        self.dead_letters = app.topic(topics.DEAD_LETTERS, key_type=bytes, value_type=bytes)
        self.retry_topics = {d: app.topic(topics.retry_topic(d), key_type=bytes,
                                          value_type=bytes) for d in topics.RETRY_DELAYS_MS}

    async def publish(self, event: StatusEvent, *, wait: bool) -> None:
        await produce(self.status_topic, event.order_id.encode(), event.encode(), wait=wait)

    async def schedule_retry(self, request: RetryRequest) -> None:
        msg = RetryMessage(request.command, request.attempt, request.due_ms, request.origin,
                           request.error.as_dict())
        await produce(self.retry_topics[request.delay_ms], request.command.order_id.encode(),
                      msg.encode())
        self.metrics.retry(request.delay_ms, request.error.code)

    async def dead_letter(self, failed: FailedOrder) -> None:
        """A failed order's command, with its final error, for post-mortem and replay."""
        await self._dead_letter(failed.command.order_id.encode(), {
            "reason": failed.code,
            "error": {"code": failed.code, "message": failed.message},
            "attempts": failed.attempts,
            "order": failed.command.to_json(),
            "source": failed.origin,
            "failedAt": now_ms(),
        })

    async def dead_letter_message(self, ev: EventT[bytes], error: InvalidOrder) -> None:
        """Keep a message we cannot read, with its reason; it is never silently dropped."""
        await self._dead_letter(ev.message.key,
                                unreadable_record(ev, error.code, error.as_dict()))
        msg = ev.message
        log.warning("dead-lettered %s[%d]@%d: %s %s", msg.topic, msg.partition, msg.offset,
                    error.code, error.message)

    async def _dead_letter(self, key: bytes | None, record: dict[str, Any]) -> None:
        await produce(self.dead_letters, key, orjson.dumps(record))
        self.metrics.dead_letter(str(record["reason"]))
