"""Reading ``order-status`` from the topic's start for some orders (integration tests)."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from tests.helpers import wait_until


class Statuses:
    """Every ``order-status`` event of some orders, read from the topic's start."""

    def __init__(self, bootstrap: str, ids: set[str]) -> None:
        self.ids = ids
        self.events: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        self._consumer = AIOKafkaConsumer("order-status", bootstrap_servers=bootstrap,
                                          auto_offset_reset="earliest",
                                          enable_auto_commit=False)

    async def __aenter__(self) -> Statuses:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for rec in records:
                # Keyed by order id (the contract): other tests' records on a shared broker,
                # undecodable ones included (the ingress's bad-record tests), are not ours.
                if rec.key is None or rec.key.decode(errors="replace") not in self.ids:
                    continue
                doc = orjson.loads(rec.value)
                self.events[doc["orderId"]].append(doc)

    def statuses(self, order_id: str) -> list[str]:
        seen: list[str] = []
        for e in self.events[order_id]:  # a re-published event has the same id
            if not seen or seen[-1] != e["status"]:
                seen.append(e["status"])
        return seen

    async def until(self, order_id: str, status: str, timeout: float) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            await self.poll()
            return next((e for e in self.events[order_id] if e["status"] == status), None)
        found = await wait_until(reached, timeout, f"{order_id} {status}")
        assert isinstance(found, dict)
        return found
