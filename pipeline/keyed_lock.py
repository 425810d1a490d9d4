"""One asyncio lock per key, alive exactly as long as someone holds or awaits it.

Why not ``dict.setdefault(key, Lock())`` and drop the entry when the lock is free: a
waiter woken by ``release`` has not re-acquired the lock yet, so the lock looks free, the
entry is dropped, and the next caller creates a *second* lock for the same key and runs
concurrently with the woken waiter. Counting users closes that window: the entry goes
only when the last user leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLock:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._entries.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._entries[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._entries[key]
            if users <= 1:
                del self._entries[key]
            else:
                self._entries[key] = (lock, users - 1)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
