"""Group commit: many callers' small writes go to the database as one statement.

Each journal write is tiny, and at hundreds of orders per second the worker spent more
CPU on the round trips (pool checkout, protocol, event-loop wake-ups) than on anything
the database did. A :class:`GroupCommit` sends the first call at once and batches every
call that arrives while a write is in flight, so it adds no delay when the worker is
idle and coalesces more the busier it gets (classic group commit).

Calls for the same key are never in one batch (a key's writes stay in order). If a batch
fails as a whole, each of its calls is retried alone, so one bad row cannot fail its
neighbours; whatever a single call raises reaches that caller only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741  (item)
R = TypeVar("R")  # result

Write = Callable[[Sequence[tuple[str, I]]], Awaitable[Mapping[str, R | BaseException]]]
"""Write a batch of (key, item); answer per key with a result or the error for that call."""


class GroupCommit(Generic[I, R]):
    def __init__(self, write: Write[I, R], *, name: str, max_batch: int = 256,
                 observe: Callable[[int], None] | None = None) -> None:
        self._write = write
        self._observe = observe
        self._name = name
        self._max = max_batch
        self._queue: list[tuple[str, I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.calls = 0

    async def submit(self, key: str, item: I) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((key, item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"group-commit-{self._name}")
            self._task.add_done_callback(self._drain_ended)
        return await fut

    def _drain_ended(self, task: asyncio.Task[None]) -> None:
        """A drain cancelled (even before it ran) or broken: fail its waiters, never hang."""
        if task is not self._task:  # a newer drain owns the queue now
            return
        if task.cancelled():
            error: Exception = RuntimeError(f"{self._name} stopped before the write")
        elif (exc := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)
            error = RuntimeError(f"{self._name} failed: {exc!r}")
        else:
            return
        for _, _, fut in self._queue:
            _settle(fut, error)
        self._queue.clear()

    def _take(self) -> list[tuple[str, I, asyncio.Future[R]]]:
        batch: list[tuple[str, I, asyncio.Future[R]]] = []
        rest: list[tuple[str, I, asyncio.Future[R]]] = []
        keys: set[str] = set()
        for entry in self._queue:
            if entry[2].done():  # its caller was cancelled: nothing to write for it
                continue
            if entry[0] in keys or len(batch) >= self._max:
                rest.append(entry)
            else:
                keys.add(entry[0])
                batch.append(entry)
        self._queue = rest
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            if not batch:
                continue
            self.batches += 1
            self.calls += len(batch)
            if self._observe is not None:
                self._observe(len(batch))
            # In flight: back in the queue's view for _drain_ended if we are cancelled now.
            self._queue[:0] = batch
            try:
                results = await self._write([(k, item) for k, item, _ in batch])
            except Exception as exc:
                results = await self._one_by_one(batch, exc)
            finally:
                del self._queue[:len(batch)]
            for key, _, fut in batch:
                _settle(fut, results.get(key, _missing(key)))

    async def _one_by_one(self, batch: list[tuple[str, I, asyncio.Future[R]]],
                          exc: Exception) -> dict[str, R | BaseException]:
        if len(batch) == 1:
            return {batch[0][0]: exc}
        log.warning("%s: a batch of %d failed (%r); writing each alone", self._name,
                    len(batch), exc)
        out: dict[str, R | BaseException] = {}
        for key, item, _ in batch:
            try:
                out[key] = (await self._write([(key, item)])).get(key, _missing(key))
            except Exception as single:
                out[key] = single
        return out


def _missing(key: str) -> RuntimeError:
    return RuntimeError(f"the batch write gave no answer for {key}")


def _settle(fut: asyncio.Future[R], result: R | BaseException) -> None:
    if fut.done():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
