"""A batching sink: ``add`` buffers, ``flush`` writes the batch, then commits its offsets.

Modelled on quix-streams' ``sinks/base/sink.py``: a message is acknowledged only after
what it carries is durably written (commit after flush). Two kinds of failure are kept
apart, so one bad record never stops every acknowledgement:

* the destination is unavailable (:meth:`Sink.unavailable` says so): back-pressure. The
  whole batch is written again after a back-off while ``add`` waits on the flush, so
  the consumer stops pulling instead of buffering without bound;
* anything else means something in the batch cannot be written: the batch is written
  record by record, and a record that fails on its own is handed to :meth:`Sink.reject`
  (which keeps it durably, e.g. on the dead-letter topic) and acknowledged with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Ackable(Protocol):
    def ack(self) -> bool: ...


class Sink(ABC, Generic[T]):
    name = "sink"  # in log lines: "<name> write of N records failed ..."

    def __init__(self, *, max_batch: int = 500, within_s: float = 0.1,
                 max_backoff_s: float = 5.0) -> None:
        self.max_batch = max_batch
        self.within_s = within_s
        self.max_backoff_s = max_backoff_s
        self._buffer: list[tuple[Ackable, T | None]] = []
        self._first_at = 0.0
        self._lock = asyncio.Lock()

    # ---- what a sink defines ----

    @abstractmethod
    async def write(self, batch: Sequence[T]) -> None:
        """Write the records durably, all or nothing."""

    @abstractmethod
    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the destination cannot be reached (retry the batch)."""

    @abstractmethod
    async def reject(self, message: Ackable, record: T, exc: BaseException) -> None:
        """Keep a record that cannot be written on its own, durably, with the reason."""

    def observe(self, records: int, seconds: float, failed_writes: int) -> None:
        """Metrics hook: one flush's size, time and failed writes (default: nothing)."""

    # ---- the batching ----

    async def add(self, message: Ackable, record: T | None) -> None:
        """Buffer ``record`` (``None``: nothing to write, only the offset to commit)."""
        if not self._buffer:
            self._first_at = time.monotonic()
        self._buffer.append((message, record))
        if len(self._buffer) >= self.max_batch:
            await self.flush()

    async def flush_if_due(self) -> None:
        if self._buffer and time.monotonic() - self._first_at >= self.within_s:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            t0 = time.monotonic()
            records = [r for _, r in batch if r is not None]
            failed = await self._write_all(batch, records)
            self.observe(len(records), time.monotonic() - t0, failed)
            for message, _ in batch:
                message.ack()

    async def _write_all(self, batch: list[tuple[Ackable, T | None]],
                         records: list[T]) -> int:
        failed = 0
        delay = 0.1
        while True:
            try:
                await self.write(records)
                return failed
            except Exception as exc:
                failed += 1
                if not self.unavailable(exc):
                    log.warning("%s write of %d records failed (%r); writing them one by one",
                                self.name, len(records), exc)
                    return failed + await self._one_by_one(batch)
                log.warning("%s write of %d records failed, destination unavailable (%r); "
                            "retrying in %.1fs", self.name, len(records), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    async def _one_by_one(self, batch: list[tuple[Ackable, T | None]]) -> int:
        failed = 0
        for message, record in batch:
            if record is None:
                continue
            delay = 0.1
            while True:
                try:
                    await self.write([record])
                    break
                except Exception as exc:
                    failed += 1
                    if not self.unavailable(exc):
                        await self.reject(message, record, exc)
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)
        return failed
