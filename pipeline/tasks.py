"""Background tasks that are named and never fail silently: the one way any layer
starts a task it does not await at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones


def spawn(coro: Coroutine[Any, Any, T], *, name: str,
          into: set[asyncio.Task[Any]] | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as a named task whose failure is logged; ``into`` is a set the
    caller keeps of its own tasks (e.g. to drain them), the task leaves it when done."""
    task = asyncio.create_task(coro, name=name)
    keep = _running if into is None else into
    keep.add(task)
    task.add_done_callback(keep.discard)
    task.add_done_callback(log_failure)
    return task


def log_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: log the task's exception, if it ended with one."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc)
