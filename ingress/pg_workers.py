"""The :class:`WorkerRegistry` over PostgreSQL: the ``worker_heartbeats`` rows workers upsert."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingress.ports import StoreUnavailable, WorkerBeat

# Ages come from the database's clock (now() - seen_at), the clock the workers' upserts
# used, so the ingress host's clock cannot make a live worker look dead or vice versa.
_BEATS_SQL = """
SELECT worker_id, roles, extract(epoch FROM now() - seen_at)::float8 AS age_s, stopping
FROM worker_heartbeats
WHERE seen_at > now() - interval '5 minutes'
ORDER BY worker_id
"""
TIMEOUT_S = 2.0


class PostgresWorkerRegistry:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def beats(self) -> list[WorkerBeat]:
        try:
            async with self._pool.connection(timeout=TIMEOUT_S) as conn:
                cur = await conn.execute(_BEATS_SQL)
                rows = await cur.fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(message=f"worker heartbeats unreadable: {exc}") from exc
        return [WorkerBeat(r[0], tuple(r[1]), float(r[2]), bool(r[3])) for r in rows]
