"""A worker's heartbeat row in PostgreSQL (table ``worker_heartbeats``, migration 005).

Readiness must mean "an order accepted now will move": the ingress's ``/healthz``
reads these rows and is ready only while a live worker of each role beats. A worker
marks itself ``stopping`` first thing on shutdown, so readiness drops before it stops
consuming, not ``stale_s`` later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from mode import Service

log = logging.getLogger(__name__)

INTERVAL_S = 2.0


class Heartbeat(Service):
    def __init__(self, database_url: str, worker_id: str, roles: Iterable[str], *,
                 interval_s: float = INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._dsn = database_url
        self.worker_id = worker_id
        self._roles = sorted(roles)
        self._interval = interval_s

    async def _beat(self, *, stopping: bool = False) -> None:
        async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True,
                                                         connect_timeout=5) as conn:
            await conn.execute(
                "INSERT INTO worker_heartbeats (worker_id, roles, stopping) VALUES (%s, %s, %s) "
                "ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), roles = EXCLUDED.roles, "
                "stopping = EXCLUDED.stopping",
                (self.worker_id, self._roles, stopping))

    @Service.task
    async def _beating(self) -> None:
        while not self.should_stop:
            try:
                await self._beat()
            except (psycopg.Error, OSError) as exc:
                log.warning("heartbeat of %s failed: %r", self.worker_id, exc)
            await self.sleep(self._interval)

    async def on_stop(self) -> None:
        try:
            await asyncio.wait_for(self._beat(stopping=True), 5)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("could not mark %s as stopping: %r", self.worker_id, exc)
