"""The :class:`OrderBus` over an aiokafka producer created with ``acks="all"``.

An ack alone does not prove the record is where consumers read: the embedded broker
(Tansu) acknowledges a produce to a topic that no longer exists (after the topic was
deleted, or a memory-storage broker restarted) and the record is never seen again; the
ingress used to answer 202 for such orders while ``/healthz`` said "topics missing".
So after the ack, :meth:`KafkaOrderBus.send` confirms the topic in a metadata answer
fetched after the ack; concurrent sends share one such fetch, so under load this costs
one metadata round trip per batch of acks, not per order. No ack, an error, a timeout
or a missing topic is :class:`BrokerUnavailable` (the API's 503), never an acceptance.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaError

from ingress.ports import BrokerUnavailable
from pipeline.topics import ORDER_STATUS, ORDERS

SEND_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 2.0


class KafkaOrderBus:
    def __init__(self, producer: Any, *, send_timeout_s: float = SEND_TIMEOUT_S,
                 confirm_topics: bool = True) -> None:
        self._producer = producer
        self._send_timeout_s = send_timeout_s
        self._confirm_topics = confirm_topics
        self._metadata: asyncio.Future[set[str]] | None = None
        self._metadata_started = 0.0

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._producer.send_and_wait(topic, value=value, key=key)
                if self._confirm_topics and topic not in await self._topics_after(
                        asyncio.get_running_loop().time()):
                    raise BrokerUnavailable(message=f"topic {topic!r} does not exist on the "
                                            "broker; the record was not stored")
        except TimeoutError:
            raise BrokerUnavailable(
                message=f"the broker did not acknowledge the record on {topic!r} within "
                f"{self._send_timeout_s:g}s") from None
        except KafkaError as exc:
            raise BrokerUnavailable(
                message=f"the broker refused or could not be reached for {topic!r}: "
                f"{type(exc).__name__}: {exc}") from None

    async def _topics_after(self, since: float) -> set[str]:
        """Topic names from a metadata request sent at or after ``since`` (loop time);
        concurrent callers share one request."""
        loop = asyncio.get_running_loop()
        while True:
            pending = self._metadata
            if pending is not None and self._metadata_started >= since:
                return await asyncio.shield(pending)
            if pending is None or pending.done():
                self._metadata_started = loop.time()
                self._metadata = asyncio.ensure_future(self._fetch_topics())
                continue
            await asyncio.wait({pending})  # an older request: let it finish, then ask again

    async def _fetch_topics(self) -> set[str]:
        try:
            metadata = await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(message=f"the broker's metadata could not be read after "
                                    f"the ack: {type(exc).__name__}: {exc}") from None
        return set(metadata.topics())

    async def check(self) -> None:
        """A fresh metadata round trip that also proves the topics we write to exist."""
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            metadata = await self._producer.client.fetch_all_metadata()
        missing = {ORDERS, ORDER_STATUS} - set(metadata.topics())
        if missing:
            raise BrokerUnavailable(message=f"topics missing: {', '.join(sorted(missing))}")
