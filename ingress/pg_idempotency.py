"""The durable :class:`ingress.idempotency.IdempotencyStore` on PostgreSQL (``idempotency_keys``).

Two steps, so that a key never points at an order that nobody can produce:

1. *Reserve* (autocommit): ``INSERT ... ON CONFLICT (key) DO NOTHING`` with this request's
   order (or take over an expired row). From then on the key stands for that orderId,
   durably, before anything is sent to Kafka.
2. *Produce* (one transaction): ``SELECT ... FOR UPDATE`` the row; if it is not produced
   yet, produce its stored command and set ``produced_at``; commit. The row lock makes
   concurrent requests with the key (in this or any other ingress) wait, and the one
   that gets it second sees ``produced_at`` and produces nothing.

If producing fails (or the process dies), step 2 rolls back and the row stays reserved
with its command: a retry with the key produces the same orderId, with the same
``submittedAt``. If the broker had in fact written the order (an ack timeout), the
record is produced twice with one orderId; the engine de-duplicates by orderId.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingress.idempotency import (
    KEY_TTL_S,
    Claim,
    IdempotencyKeyBusy,
    Produce,
    key_reused,
)
from ingress.ports import StoreUnavailable
from pipeline.wire import ExecuteOrder, decode_execute_order

log = logging.getLogger(__name__)

LOCK_TIMEOUT_MS = 15_000  # > the producer's send timeout: a waiter outlives a slow winner
CLAIM_ROUNDS = 3  # a key purged or replaced between the two steps is claimed again

# %(now)s is the store's clock, or NULL for the database's own (the default): every
# statement reads "now" as COALESCE(%(now)s, now()).
_NOW = "COALESCE(%(now)s::timestamptz, now())"

_RESERVE = f"""
INSERT INTO idempotency_keys (key, fingerprint, order_id, command, created_at, expires_at)
VALUES (%(key)s, %(fingerprint)s, %(order_id)s, %(command)s,
        {_NOW}, {_NOW} + make_interval(secs => %(ttl_s)s))
ON CONFLICT (key) DO NOTHING
RETURNING order_id
"""

# Only an expired row is taken over; a live row is not even locked by this statement.
_TAKE_OVER_EXPIRED = f"""
UPDATE idempotency_keys
SET fingerprint = %(fingerprint)s, order_id = %(order_id)s, command = %(command)s,
    produced_at = NULL, created_at = {_NOW},
    expires_at = {_NOW} + make_interval(secs => %(ttl_s)s)
WHERE key = %(key)s AND expires_at <= {_NOW}
RETURNING order_id
"""

_ROW = f"""
SELECT fingerprint, order_id, command, produced_at IS NOT NULL AS produced,
       expires_at > {_NOW} AS live
FROM idempotency_keys WHERE key = %(key)s
"""

_PRODUCED = f"UPDATE idempotency_keys SET produced_at = {_NOW} WHERE key = %(key)s"

_PURGE = f"DELETE FROM idempotency_keys WHERE expires_at <= {_NOW}"


async def configure_connection(conn: AsyncConnection[Any]) -> None:
    """Pool ``configure`` hook: jsonb via orjson, and bounded waits for a key's row lock."""
    set_json_loads(orjson.loads, conn)
    await conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


class PostgresIdempotencyStore:
    """Needs a pool of autocommit connections set up by :func:`configure_connection`.

    Expiry is judged by the database's clock; ``clock`` (tests) replaces it with the
    caller's, so a test can move past a key's expiry without waiting for it.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], *, ttl_s: float = KEY_TTL_S,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._clock = clock

    def _now(self) -> datetime | None:
        return None if self._clock is None else self._clock()

    async def claim(self, key: str, fingerprint: str, order: ExecuteOrder,
                    produce: Produce) -> Claim:
        params = {"key": key, "fingerprint": fingerprint, "order_id": order.order_id,
                  "command": Jsonb(order.to_json()), "ttl_s": self._ttl_s, "now": self._now()}
        try:
            async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                for _ in range(CLAIM_ROUNDS):
                    claim = await self._claim_once(conn, cur, params, produce)
                    if claim is not None:
                        return claim
        except psycopg.errors.LockNotAvailable:
            raise IdempotencyKeyBusy(
                message="another request with this idempotency key is still in progress; "
                "retry with the same key") from None
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(message=f"database unavailable: {exc}") from exc
        raise IdempotencyKeyBusy(message="the idempotency key changed hands repeatedly; retry")

    async def _claim_once(self, conn: AsyncConnection[Any], cur: psycopg.AsyncCursor[DictRow],
                          params: dict[str, Any], produce: Produce) -> Claim | None:
        """One round of reserve-then-produce; None when the row vanished in between."""
        fingerprint: str = params["fingerprint"]
        # Step 1: reserve (committed at once: autocommit).
        await cur.execute(_RESERVE, params)
        ours = await cur.fetchone() is not None
        if not ours:
            await cur.execute(_TAKE_OVER_EXPIRED, params)
            ours = await cur.fetchone() is not None
        if not ours:  # fast answers without waiting on a producing request
            await cur.execute(_ROW, params)
            row = await cur.fetchone()
            if row is None:
                return None  # purged in between: reserve again
            if row["live"] and row["fingerprint"] != fingerprint:
                raise key_reused()
            if row["live"] and row["produced"]:
                return Claim(_command(row), replayed=True, produced=False)
        # Step 2: produce under the row lock.
        async with conn.transaction():
            await cur.execute(_ROW + " FOR UPDATE", params)
            row = await cur.fetchone()
            if row is None or not row["live"]:
                return None  # purged, or expired while we waited: claim again
            if row["fingerprint"] != fingerprint:
                raise key_reused()  # taken over by a different request after expiry
            stored = _command(row)
            if row["produced"]:
                return Claim(stored, replayed=not ours, produced=False)
            await produce(stored)
            await cur.execute(_PRODUCED, params)
        return Claim(stored, replayed=not ours, produced=True)

    async def purge_expired(self) -> int:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(_PURGE, {"now": self._now()})
                purged: int = cur.rowcount
                return purged
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(message=f"database unavailable: {exc}") from exc


def _command(row: dict[str, Any]) -> ExecuteOrder:
    return decode_execute_order(orjson.dumps(row["command"]))
