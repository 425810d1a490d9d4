"""The :class:`ingress.api_keys.ApiKeyStore` over PostgreSQL (tables ``api_keys`` and
``api_key_orders``, migration ``sinks/migrations/*_api_keys.sql``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingress.api_keys import ApiKey, NewKey, StoredKey
from ingress.ports import StoreUnavailable
from pipeline.errors import InvalidOrder

_COLUMNS = "key_id, name, scope, rate_per_s, burst, created_at, revoked_at"


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(row["key_id"], row["name"], row["scope"], float(row["rate_per_s"]),
                  int(row["burst"]), row["created_at"], row["revoked_at"])


class PostgresApiKeyStore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _cursor(self) -> AsyncIterator[psycopg.AsyncCursor[DictRow]]:
        try:
            async with self._pool.connection() as conn, \
                    conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.errors.UniqueViolation:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(message=f"database unavailable: {exc}") from exc

    async def find(self, key_id: str) -> StoredKey | None:
        async with self._cursor() as cur:
            await cur.execute(f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE key_id = %s",
                              (key_id,))
            row = await cur.fetchone()
        return None if row is None else StoredKey(_key(row), bytes(row["secret_hash"]))

    async def create(self, new: NewKey) -> None:
        k = new.key
        try:
            async with self._cursor() as cur:
                await cur.execute(
                    "INSERT INTO api_keys (key_id, name, scope, secret_hash, rate_per_s, burst)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (k.key_id, k.name, k.scope, new.secret_hash, k.rate_per_s, k.burst))
        except psycopg.errors.UniqueViolation:
            raise InvalidOrder("key_name_taken", f"a live key is already named {k.name!r}; "
                               "revoke it first or choose another name", field="name") from None

    async def list_keys(self) -> list[ApiKey]:
        async with self._cursor() as cur:
            await cur.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
            rows = await cur.fetchall()
        return [_key(r) for r in rows]

    async def revoke(self, name_or_id: str) -> ApiKey | None:
        async with self._cursor() as cur:
            await cur.execute(
                f"UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL"
                f" AND (key_id = %s OR name = %s) RETURNING {_COLUMNS}",
                (name_or_id, name_or_id))
            row = await cur.fetchone()
        return None if row is None else _key(row)

    async def record_order(self, order_id: str, key_id: str) -> None:
        async with self._cursor() as cur:
            await cur.execute(
                "INSERT INTO api_key_orders (order_id, key_id) VALUES (%s, %s)"
                " ON CONFLICT (order_id) DO NOTHING", (order_id, key_id))

    async def owned(self, key_id: str, order_ids: Sequence[str]) -> set[str]:
        if not order_ids:
            return set()
        async with self._cursor() as cur:
            await cur.execute("SELECT order_id FROM api_key_orders"
                              " WHERE key_id = %s AND order_id = ANY(%s)",
                              (key_id, list(order_ids)))
            rows = await cur.fetchall()
        return {r["order_id"] for r in rows}
