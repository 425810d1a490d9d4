"""The execution journal in PostgreSQL: leases, attempts and broadcast records.

Why PostgreSQL and not a faust table: the record of a signed transaction must be
durable *before* the transaction is sent and readable by whichever worker owns
the order next, at once, including during a rebalance. A synchronous write to
the database gives that read-your-write guarantee; a changelog-backed table
would only give it after the new owner has replayed the changelog (and Tansu
reports wrong end offsets after batched writes, which breaks that replay).

Safety does not rest on the lease: :meth:`Journal.record_broadcast` locks the
order's row and refuses to record a new transaction while any earlier one may
still land. The lease only keeps two workers from doing the same work twice.

A cancel races the order's execution here and nowhere else (``order_fates``, migration
007): :meth:`Journal.cancel` and :meth:`Journal.record_broadcast` take the same locks, so
either the cancel wins and no transaction is ever recorded, or a transaction is recorded
and the cancel is refused; never both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pipeline.errors import BroadcastConflict, JournalUnavailable, LeaseLost
from pipeline.group_commit import GroupCommit
from pipeline.lifecycle import OrderStatus
from pipeline.ports import Broadcast, BroadcastOutcome, CancelRequest, CancelWon, Execution

_Advance = tuple[str, int, datetime | None, str | None, str | None, bool, bool, Jsonb | None]
"""status, attempt, retry due, error code, error message, terminal, release the lease,
final event"""


_Record = tuple[str, int, bytes, int, str, int, int]
"""signature, attempt, signed bytes, last valid block height, venue, expected out, min out"""


def _recorded(order_id: str, answer: str) -> BaseException | None:
    if answer == "recorded":
        return None
    if answer == "lease_lost":
        return _lease_lost(order_id)
    if answer.startswith("cancelled "):
        return CancelWon(order_id, _cancel_request(orjson.loads(answer.split(" ", 1)[1])))
    if answer.startswith("conflict "):
        _, live_sig, live_outcome = answer.split(" ", 2)
        return BroadcastConflict(
            message=f"order {order_id} already has transaction {live_sig} ({live_outcome})")
    return RuntimeError(f"journal_record_broadcast answered {answer!r} for {order_id}")


def _lease_lost(order_id: str) -> LeaseLost:
    return LeaseLost(message=f"order {order_id} is no longer ours")


def _still_ours(order_ids: Sequence[str], updated: set[str]) -> dict[str, BaseException | None]:
    """Per order of a batch update guarded by ``owner``: done, or :class:`LeaseLost`."""
    return {oid: None if oid in updated else _lease_lost(oid) for oid in order_ids}


def _outcome(value: str | None) -> BroadcastOutcome | None:
    return None if value is None else BroadcastOutcome(value)


def _jsonb(doc: dict[str, Any] | None) -> Jsonb | None:
    return None if doc is None else Jsonb(doc)


def _ms(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp() * 1000)


def _cancel_request(doc: dict[str, Any]) -> CancelRequest:
    """From migration 007's ``journal_cancel_json`` (requested_at in epoch ms)."""
    return CancelRequest(doc["reason"], int(doc["requested_at_ms"]), doc["source"])


def _execution(row: dict[str, Any]) -> Execution:
    cancel = row.get("cancel")
    return Execution(row["order_id"], row["command"], row["attempt"], OrderStatus(row["status"]),
                     row["terminal"], _ms(row["retry_due_at"]), row["error_code"],
                     row["error_message"], row["owner"], bool(row.get("inserted", False)),
                     row.get("final_event"),
                     None if cancel is None else _cancel_request(cancel))


_CANCEL = "journal_cancel_json(e.order_id) AS cancel"
"""The cancel that won for the row ``e``, if any (a claim returns it: end the order)."""


_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)
"""What means "the database did not answer", as opposed to a bug in a statement."""


class Journal:
    """Every write is one statement on ``pool`` (open it with
    ``kwargs={"autocommit": True}`` so a statement costs one round trip). Claims,
    advances, broadcast records and confirmations of concurrent orders are
    group-committed: one statement per batch, each order still told on its own whether
    it still owns it (and, for a record, whether an earlier transaction blocks it)."""

    def __init__(self, pool: AsyncConnectionPool, owner: str, *, lease_s: float = 10.0,
                 on_batch: Callable[[str, int], None] | None = None) -> None:
        self._pool = pool
        self.owner = owner
        self._lease = f"{lease_s} seconds"

        def observe(op: str) -> Callable[[int], None] | None:
            return None if on_batch is None else partial(on_batch, op)

        # The per-order writes of the hot path, group-committed (see pipeline/group_commit);
        # ``on_batch(op, calls)`` is told the size of every statement (metrics).
        self._claims: GroupCommit[dict[str, Any], Execution | None] = GroupCommit(
            self._claim_batch, name="journal-claim", observe=observe("claim"))
        self._advances: GroupCommit[_Advance, None] = GroupCommit(
            self._advance_batch, name="journal-advance", observe=observe("advance"))
        self._confirms: GroupCommit[tuple[int, str, Jsonb], None] = GroupCommit(
            self._confirm_batch, name="journal-confirm", observe=observe("confirm"))
        self._records: GroupCommit[_Record, None] = GroupCommit(
            self._record_batch, name="journal-record", observe=observe("record"))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; an unreachable database is :class:`JournalUnavailable`, so
        the caller holds the order instead of failing it (nothing was decided)."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise JournalUnavailable(message=f"journal database: {exc}") from exc

    async def claim(self, order_id: str, command: dict[str, Any]) -> Execution | None:
        """Own the order (creating its row on first sight); ``None`` while another owner's
        lease is live. A terminal order is returned without taking the lease."""
        return await self._claims.submit(order_id, command)

    async def _claim_batch(self, batch: Sequence[tuple[str, dict[str, Any]]]
                           ) -> dict[str, Execution | BaseException | None]:
        ids = [oid for oid, _ in batch]
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            # One statement: create each row owned by us, or take the lease of an existing
            # one that is not terminal and not leased by someone else (xmax = 0: inserted).
            await cur.execute(
                "INSERT INTO executions AS e (order_id, command, status, owner, lease_until) "
                "SELECT v.order_id, v.command, 'pending', %s, now() + %s::interval "
                "FROM unnest(%s::text[], %s::jsonb[]) AS v(order_id, command) "
                "ON CONFLICT (order_id) DO UPDATE SET owner = EXCLUDED.owner, "
                "lease_until = EXCLUDED.lease_until WHERE NOT e.terminal AND (e.owner IS NULL "
                "OR e.owner = EXCLUDED.owner OR e.lease_until < now()) "
                f"RETURNING *, (xmax = 0) AS inserted, {_CANCEL}",
                (self.owner, self._lease, ids, [Jsonb(cmd) for _, cmd in batch]))
            out: dict[str, Execution | BaseException | None] = {
                row["order_id"]: _execution(row) for row in await cur.fetchall()}
            others = [oid for oid in ids if oid not in out]
            if others:  # terminal, or leased by another worker
                await cur.execute(f"SELECT e.*, {_CANCEL} FROM executions e "
                                  "WHERE e.order_id = ANY(%s)", (others,))
                for row in await cur.fetchall():
                    out[row["order_id"]] = _execution(row) if row["terminal"] else None
        return out

    async def renew(self, order_ids: Sequence[str]) -> None:
        if not order_ids:
            return
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE executions SET lease_until = now() + %s::interval "
                "WHERE owner = %s AND order_id = ANY(%s) AND NOT terminal",
                (self._lease, self.owner, list(order_ids)))

    async def advance(self, order_id: str, *, status: OrderStatus, attempt: int,
                      retry_due_ms: int | None = None, error: tuple[str, str] | None = None,
                      terminal: bool = False, release: bool = False,
                      final_event: dict[str, Any] | None = None) -> None:
        """Move the order's journal state; :class:`LeaseLost` if we no longer own it.

        ``release`` (implied by ``terminal``) gives the lease up, e.g. while the order
        waits on a retry topic.
        """
        due = None if retry_due_ms is None else datetime.fromtimestamp(retry_due_ms / 1000, UTC)
        code, message = error if error else (None, None)
        await self._advances.submit(order_id, (status.value, attempt, due, code, message,
                                               terminal,
                                               terminal or release, _jsonb(final_event)))

    async def _advance_batch(self, batch: Sequence[tuple[str, _Advance]]
                             ) -> dict[str, BaseException | None]:
        ids = [oid for oid, _ in batch]
        cols = list(zip(*(item for _, item in batch), strict=True))
        async with self._connection() as conn:
            cur = await conn.execute(
                "UPDATE executions AS e SET status = v.status, attempt = v.attempt, "
                "retry_due_at = v.retry_due_at, "
                "error_code = COALESCE(v.error_code, e.error_code), "
                "error_message = COALESCE(v.error_message, e.error_message), "
                "terminal = v.terminal, updated_at = now(), "
                "owner = CASE WHEN v.release THEN NULL ELSE e.owner END, "
                "final_event = COALESCE(v.final_event, e.final_event) "
                "FROM unnest(%s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::text[], "
                "%s::text[], %s::bool[], %s::bool[], %s::jsonb[]) AS v(order_id, status, "
                "attempt, retry_due_at, error_code, error_message, terminal, release, "
                "final_event) "
                "WHERE e.order_id = v.order_id AND e.owner = %s AND NOT e.terminal "
                "RETURNING e.order_id",
                (ids, *(list(c) for c in cols), self.owner))
            updated = {row[0] for row in await cur.fetchall()}
        return _still_ours(ids, updated)

    async def release(self, order_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE executions SET owner = NULL, lease_until = NULL "
                "WHERE order_id = %s AND owner = %s", (order_id, self.owner))

    async def broadcasts(self, order_id: str) -> list[Broadcast]:
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT * FROM broadcasts WHERE order_id = %s ORDER BY created_at", (order_id,))
            return [Broadcast(r["signature"], r["attempt"], bytes(r["tx"]),
                              r["last_valid_block_height"], r["venue"], int(r["expected_out"]),
                              int(r["min_out"]), _outcome(r["outcome"]))
                    for r in await cur.fetchall()]

    async def record_broadcast(self, order_id: str, *, attempt: int, signature: str, tx: bytes,
                               last_valid_block_height: int, venue: str, expected_out: int,
                               min_out: int) -> None:
        """Make a signed transaction durable before it is sent.

        Under the order's row lock: we must own it, and every earlier transaction must be
        provably dead (``expired`` or ``rejected``). One that is open might still land and
        one that landed *is* the swap: either way a new one would be a second swap.
        """
        await self._records.submit(order_id, (signature, attempt, tx, last_valid_block_height,
                                              venue, expected_out, min_out))

    async def _record_batch(self, batch: Sequence[tuple[str, _Record]]
                            ) -> dict[str, BaseException | None]:
        # Rows are locked in order_id order, so two workers' batches cannot deadlock.
        batch = sorted(batch, key=lambda entry: entry[0])
        cols = list(zip(*(item for _, item in batch), strict=True))
        async with self._connection() as conn:
            # One round trip for the batch; the lock-then-read guard is per order, in
            # migration 004's function (one call per row, in the arrays' order).
            cur = await conn.execute(
                "SELECT v.order_id, journal_record_broadcast(v.order_id, %s, v.signature, "
                "v.attempt, v.tx, v.lvbh, v.venue, v.expected_out, v.min_out) "
                "FROM unnest(%s::text[], %s::text[], %s::int[], %s::bytea[], %s::bigint[], "
                "%s::text[], %s::numeric[], %s::numeric[]) AS v(order_id, signature, attempt, "
                "tx, lvbh, venue, expected_out, min_out)",
                (self.owner, [oid for oid, _ in batch], *(list(c) for c in cols)))
            answers = {row[0]: str(row[1]) for row in await cur.fetchall()}
        return {oid: _recorded(oid, answers.get(oid, "")) for oid, _ in batch}

    async def confirm(self, order_id: str, *, attempt: int, signature: str,
                      final_event: dict[str, Any]) -> None:
        """The order is done: its transaction landed and the confirmation is published.

        Closes the broadcast as ``landed`` and the order as terminal in one statement
        (until then the broadcast stays open, which every reader treats like landed:
        follow it, never build another). :class:`LeaseLost` if we no longer own it.
        """
        await self._confirms.submit(order_id, (attempt, signature, Jsonb(final_event)))

    async def _confirm_batch(self, batch: Sequence[tuple[str, tuple[int, str, Jsonb]]]
                             ) -> dict[str, BaseException | None]:
        ids = [oid for oid, _ in batch]
        async with self._connection() as conn:
            cur = await conn.execute(
                "WITH v AS (SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], "
                "%s::jsonb[]) AS v(order_id, attempt, signature, final_event)), "
                "landed AS (UPDATE broadcasts AS b SET outcome = 'landed' FROM v "
                "WHERE b.signature = v.signature AND b.order_id = v.order_id) "
                "UPDATE executions AS e SET status = 'confirmed', attempt = v.attempt, "
                "retry_due_at = NULL, terminal = true, owner = NULL, updated_at = now(), "
                "final_event = v.final_event "
                "FROM v WHERE e.order_id = v.order_id AND e.owner = %s AND NOT e.terminal "
                "RETURNING e.order_id",
                (ids, [a for _, (a, _, _) in batch], [sig for _, (_, sig, _) in batch],
                 [ev for _, (_, _, ev) in batch], self.owner))
            updated = {row[0] for row in await cur.fetchall()}
        return _still_ours(ids, updated)

    async def cancel(self, order_id: str, request: CancelRequest) -> str | None:
        """Decide a cancel (migration 007's ``journal_cancel``, one round trip): ``None``
        when it won, now or before, else why not (the order sent a transaction that may
        land, or it already ended otherwise)."""
        at = datetime.fromtimestamp(request.requested_at_ms / 1000, UTC)
        async with self._connection() as conn:
            cur = await conn.execute("SELECT journal_cancel(%s, %s, %s, %s)",
                                     (order_id, request.reason, request.source, at))
            row = await cur.fetchone()
        answer = str(row[0]) if row else ""
        if answer == "cancelled":
            return None
        if answer.startswith("refused "):
            return answer.removeprefix("refused ")
        raise RuntimeError(f"journal_cancel answered {answer!r} for {order_id}")

    async def command(self, order_id: str) -> dict[str, Any] | None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT command FROM executions WHERE order_id = %s",
                                     (order_id,))
            row = await cur.fetchone()
        return None if row is None else dict(row[0])

    async def close_broadcast(self, signature: str, outcome: BroadcastOutcome) -> None:
        """Record what became of a transaction (see :class:`BroadcastOutcome`)."""
        async with self._connection() as conn:
            await conn.execute("UPDATE broadcasts SET outcome = %s WHERE signature = %s",
                               (outcome.value, signature))

    async def orphans(self, *, idle_s: float, limit: int = 100) -> list[dict[str, Any]]:
        """Non-terminal orders nobody is driving: lease expired (or none) and no update
        for ``idle_s``, and not waiting on a retry that is not yet overdue. An ``open``
        order is not one: it waits in its trigger agent's book (pipeline/trigger_agent)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT command FROM executions WHERE NOT terminal AND status <> 'open' "
                "AND (owner IS NULL OR lease_until < now()) "
                "AND updated_at < now() - %s::interval "
                "AND (retry_due_at IS NULL OR retry_due_at < now() - %s::interval) "
                "ORDER BY updated_at LIMIT %s",
                (f"{idle_s} seconds", f"{idle_s} seconds", limit))
            return [row[0] for row in await cur.fetchall()]
