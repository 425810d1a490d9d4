"""The ``order-status`` stream as the bench sees it: every event, by order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from orderflow.bench.specs import TERMINAL


class Ev(NamedTuple):
    status: str
    attempt: int
    ts: float  # the event's ts (worker clock), seconds
    recv: float  # when the bench received it, seconds
    detail: str | None  # submitted: signature; failed: error code


class StatusCollector:
    """Every ``order-status`` event from the end of the stream on, grouped by orderId."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.events: dict[str, list[Ev]] = {}
        self.terminal: dict[str, float] = {}
        self.received = 0
        self.unreadable = 0
        self._changed = asyncio.Event()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline.topics import ORDER_STATUS

        # A short fetch wait: Tansu answers a long-poll fetch late rather than when data
        # arrives (measured: p50 ~150 ms at aiokafka's default 500 ms, ~2 ms at 50 ms).
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest",
                                    fetch_max_wait_ms=50, client_id="orderflow-bench-status")
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()
        parts = consumer.partitions_for_topic(ORDER_STATUS)
        if not parts:
            raise RuntimeError(f"topic {ORDER_STATUS!r} does not exist on {self.bootstrap}")
        tps = [TopicPartition(ORDER_STATUS, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before anything is submitted
            await consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="bench-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        import orjson

        from pipeline.wire import parse_iso_ms

        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
            now = time.time()
            for records in batches.values():
                for r in records:
                    self.received += 1
                    try:
                        doc = orjson.loads(r.value)
                        oid, status = str(doc["orderId"]), str(doc["status"])
                        ts = parse_iso_ms(doc["ts"]) / 1000
                        data = doc.get("data") or {}
                        detail = (data.get("signature") if status == "submitted"
                                  else data.get("code") if status == "failed" else None)
                        ev = Ev(status, int(doc["attempt"]), ts, now, detail)
                    except (ValueError, KeyError, TypeError):
                        self.unreadable += 1
                        continue
                    self.events.setdefault(oid, []).append(ev)
                    if status in TERMINAL:
                        self.terminal.setdefault(oid, now)
            if batches:
                self._changed.set()

    async def wait_terminal(self, ids: Iterable[str], timeout: float) -> list[str]:
        """Wait until every order is terminal; return those that are not at the deadline."""
        missing = [i for i in ids if i not in self.terminal]
        end = time.monotonic() + timeout
        while missing and time.monotonic() < end:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)
            missing = [i for i in missing if i not in self.terminal]
        return missing
