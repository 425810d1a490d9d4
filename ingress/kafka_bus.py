"""The :class:`OrderBus` over an aiokafka producer created with ``acks="all"``."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaError

from ingress.ports import BrokerUnavailable
from pipeline.topics import ORDER_STATUS, ORDERS

SEND_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 2.0


class KafkaOrderBus:
    def __init__(self, producer: Any, *, send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self._producer = producer
        self._send_timeout_s = send_timeout_s

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._producer.send_and_wait(topic, value=value, key=key)
        except TimeoutError:
            raise BrokerUnavailable(
                message=f"the broker did not acknowledge the record on {topic!r} within "
                f"{self._send_timeout_s:g}s") from None
        except KafkaError as exc:
            raise BrokerUnavailable(
                message=f"the broker refused or could not be reached for {topic!r}: "
                f"{type(exc).__name__}: {exc}") from None

    async def check(self) -> None:
        """A fresh metadata round trip that also proves the topics we write to exist."""
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            metadata = await self._producer.client.fetch_all_metadata()
        missing = {ORDERS, ORDER_STATUS} - set(metadata.topics())
        if missing:
            raise BrokerUnavailable(message=f"topics missing: {', '.join(sorted(missing))}")
