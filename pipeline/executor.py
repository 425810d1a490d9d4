"""Runs one order through its lifecycle: route, build, sign, record, submit, confirm.

Each step publishes a status event only once it is true; every status change goes
through :func:`pipeline.lifecycle.apply`. Before any transaction is sent, its signed
bytes are durable in the journal (:class:`~pipeline.ports.JournalPort`); whoever runs
the order next (a retry, a redelivery after a crash, another worker) looks those
signatures up first, then the chain itself (the order's memo), and never builds a
second transaction while one may land or has landed.

Transient errors schedule the next attempt on a retry topic (exponential back-off);
only the last attempt fails the order. Permanent errors fail at once. An unavailable
journal or broker (:class:`~pipeline.errors.EngineUnavailable`) decides nothing: it is
raised to the caller, which holds the order and runs it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

import orjson
from prometheus_client import CollectorRegistry
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from pipeline.attempt_end import AttemptEnded, as_order_error, ending_attempt
from pipeline.chain_history import WalletHistory, has_memo, order_memo
from pipeline.conditional import (
    ConditionalSteps,
    LimitNotReached,
    Opener,
    Parked,
    check_floor,
    floor_quotes,
)
from pipeline.errors import (
    EngineUnavailable,
    InsufficientFunds,
    InvalidOrder,
    LeaseLost,
    OrderflowError,
    PermanentError,
    TransactionExpired,
    TransactionFailed,
    TransientError,
)
from pipeline.failpoints import Failpoints
from pipeline.guards import PriceLimits
from pipeline.keyed_lock import KeyedLock
from pipeline.lifecycle import (
    AttemptRestarted,
    Order,
    OrderAccepted,
    OrderEvent,
    OrderFailed,
    OrderQuoted,
    OrderStatus,
    OrderSubmitted,
    apply,
)
from pipeline.metrics import EngineMetrics
from pipeline.mint_decimals import MintAccounts, know_tokens
from pipeline.model import Venue
from pipeline.order_end import Endings, cancel_order
from pipeline.ports import (
    Broadcast,
    BroadcastOutcome,
    Execution,
    FailedOrder,
    JournalPort,
    Origin,
    Outbox,
    RetryRequest,
)
from pipeline.router import Route, Router
from pipeline.settlement import Settlement
from pipeline.solana_rpc import Chain, ConfirmationWatcher, sign_as
from pipeline.status_out import StatusPublisher
from pipeline.tokens import describe_amount
from pipeline.topics import RETRY_DELAYS_MS
from pipeline.venues import Venues
from pipeline.wire import CancelOrder, ExecuteOrder, StatusEvent, decode_execute_order, now_ms
from pipeline.wire_terms import DEFAULT_MARKET_TTL_MS

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    DUPLICATE = "duplicate"  # already terminal: never executed twice
    CONFLICT = "conflict"  # another command reused an existing order id: dead-lettered
    STALE = "stale"  # a retry message superseded by a later attempt
    LEASE_LOST = "lease_lost"
    OPENED = "opened"  # a conditional order now waits in the trigger book
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class StageTimer:
    """Hook for per-stage latency (metrics); the default does nothing."""

    observe: Callable[[str, float], None] = lambda stage, seconds: None


@dataclass(frozen=True, slots=True)
class Job:
    """One run of one order: the command and where the message carrying it came from."""

    command: ExecuteOrder
    origin: Origin | None = None


def retry_delay_ms(attempt: int) -> int:
    """Back-off before attempt ``attempt + 1``: 1 s, 2 s, 4 s, then 4 s."""
    return RETRY_DELAYS_MS[min(attempt - 1, len(RETRY_DELAYS_MS) - 1)]


class OrderExecutor:
    def __init__(self, *, venues: Venues, chain: Chain, watcher: ConfirmationWatcher,
                 wallet: Keypair, outbox: Outbox, journal: JournalPort,
                 max_attempts: int = 3, failpoints: Failpoints | None = None,
                 enabled_venues: tuple[Venue, ...] = (Venue.RAYDIUM, Venue.METEORA),
                 timer: StageTimer | None = None, metrics: EngineMetrics | None = None,
                 history: WalletHistory | None = None, publish_budget_s: float = 30.0,
                 price_limits: PriceLimits | None = None,
                 follow_backoff_s: float = 1.0, opener: Opener | None = None,
                 market_ttl_ms: int = DEFAULT_MARKET_TTL_MS,
                 mints: MintAccounts | None = None) -> None:
        metrics = metrics if metrics is not None else EngineMetrics(CollectorRegistry())
        self._venues = venues
        self._chain = chain
        self._watcher = watcher
        self._wallet = wallet
        self._wallet_pubkey = str(wallet.pubkey())
        self._outbox = outbox
        self._status = StatusPublisher(outbox, metrics, budget_s=publish_budget_s)
        self._journal = journal
        self._max_attempts = max_attempts
        self._failpoints = failpoints or Failpoints(None)
        self._timer = timer or StageTimer()
        self._metrics = metrics
        self._router = Router(venues, enabled=enabled_venues,
                              limits=price_limits or PriceLimits(), metrics=metrics)
        self._history = history or WalletHistory(chain, self._wallet_pubkey)
        self._settlement = Settlement(
            chain=chain, watcher=watcher, journal=journal, status=self._status,
            recent=self._router.recent, metrics=metrics, observe=self._timer.observe,
            wallet=self._wallet_pubkey, failpoints=self._failpoints,
            follow_backoff_s=follow_backoff_s, mints=mints)
        self._mints = mints  # a sniper's new token: its decimals from its mint account
        self._conditional = ConditionalSteps(journal, self._status, opener)
        self._endings = Endings(journal, self._status)
        self._market_ttl_ms = market_ttl_ms
        self._runs = KeyedLock()
        self.owned: set[str] = set()

    def set_opener(self, opener: Opener) -> None:
        """Where opened conditional orders go (the trigger agent, once it runs)."""
        self._conditional.opener = opener

    async def renew_leases(self) -> None:
        await self._journal.renew(sorted(self.owned))

    # ---- entry point ----

    async def run(self, cmd: ExecuteOrder, *, origin: Origin | None = None,
                  retry_attempt: int | None = None) -> Outcome:
        """Take the order from wherever the journal says it is to a terminal status or a
        scheduled retry. Safe to call any number of times for the same order."""
        job = Job(cmd, origin)
        async with self._runs.hold(cmd.order_id):
            ex = await self._claim(cmd)
            if ex.command != cmd.to_json():
                return await self._conflict(job, ex)
            if ex.terminal:
                log.info("order %s is already %s; not executed again", cmd.order_id,
                         ex.status)
                if ex.final_event is not None:  # heal a read model that missed it
                    await self._status.emit(StatusEvent.from_json(ex.final_event))
                return Outcome.DUPLICATE
            if retry_attempt is not None and retry_attempt < ex.attempt:
                await self._journal.release(cmd.order_id)
                return Outcome.STALE
            self.owned.add(cmd.order_id)
            try:
                return await self._resume(job, ex)
            except LeaseLost:
                log.warning("order %s: lease lost; leaving it to its new owner",
                            cmd.order_id)
                return Outcome.LEASE_LOST
            finally:
                self.owned.discard(cmd.order_id)

    async def cancel(self, cmd: CancelOrder) -> str | None:
        """Decide a cancel in the journal; end the order ``cancelled`` when it wins. Returns
        why it was refused, or ``None``."""
        return await cancel_order(cmd, self._journal, self.run)

    async def _conflict(self, job: Job, ex: Execution) -> Outcome:
        """A second, different command under an existing order id: it is not executed (the
        first one owns the id) and is kept on the dead-letter topic with its reason."""
        cmd = job.command
        if not ex.terminal:
            await self._journal.release(cmd.order_id)
        log.warning("order %s: a different command reuses this order id; dead-lettered",
                    cmd.order_id)
        await self._outbox.dead_letter(FailedOrder(
            cmd, "order_id_conflict",
            f"order id {cmd.order_id} already belongs to another order "
            f"({ex.status}); this command was not executed", 0, job.origin))
        return Outcome.CONFLICT

    async def _claim(self, cmd: ExecuteOrder) -> Execution:
        """Own the order, waiting while another worker's lease on it is live."""
        delay = 0.2
        while True:
            ex = await self._journal.claim(cmd.order_id, cmd.to_json())
            if ex is not None:
                return ex
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _resume(self, job: Job, ex: Execution) -> Outcome:
        base = job.command.to_order(market_ttl_ms=self._market_ttl_ms)
        if ex.status is OrderStatus.FAILED:
            # The failure was decided and recorded; finish publishing it, never re-run.
            order = replace(base, status=OrderStatus.PENDING, attempt=ex.attempt)
            await self._fail(job, order, ex.error_code or "internal_error",
                             ex.error_message or "")
            return Outcome.FAILED
        live = [] if ex.fresh else [b for b in await self._journal.broadcasts(base.order_id)
                                    if b.live]
        if live:
            # A transaction landed or may still land: follow it, never build another.
            b = live[-1]
            order = replace(base, status=OrderStatus.SUBMITTED, attempt=ex.attempt,
                            venue=Venue(b.venue), expected_out=b.expected_out, min_out=b.min_out,
                            signature=b.signature,
                            last_valid_block_height=b.last_valid_block_height)
            log.info("order %s: resuming with %s transaction %s", base.order_id,
                     b.outcome or "open", b.signature)
            return await self._guard(job, order,
                                     self._settlement.follow(job.command, order, b))
        ending = self._endings.due(base, ex)  # nothing may land: a cancel or expiry ends it
        if ending is not None:
            done = await self._endings.end(job.command, replace(
                base, status=ex.status, attempt=ex.attempt), ending)
            return Outcome(str(done.status))
        if job.command.order_type.conditional:
            parked = await self._conditional.park(job.command, ex)
            if isinstance(parked, Parked):
                return Outcome(parked.value)
            return await self._guard(job, parked, self._attempt(job, parked))
        if ex.status is OrderStatus.PENDING and ex.attempt == 1:
            self._metrics.order_received(job.command.source)
            order = await self._advance(base, OrderAccepted(), job)
        elif ex.status is OrderStatus.PENDING:
            order = replace(base, status=OrderStatus.PENDING, attempt=ex.attempt)
            wait_s = ((ex.retry_due_ms or 0) - now_ms()) / 1000
            if wait_s > 0:
                await asyncio.sleep(wait_s)  # the back-off itself, not a stand-in for work
        else:
            # The worker running this attempt was lost before it sent anything.
            prior = replace(base, status=ex.status, attempt=ex.attempt)
            order = await self._restart(job, prior, "worker_lost",
                                        "the worker running this attempt stopped", now_ms())
        return await self._guard(job, order, self._attempt(job, order))

    async def _guard(self, job: Job, order: Order, work: Awaitable[Order]) -> Outcome:
        """Route every failure: transient → next attempt or final failure; permanent → fail."""
        try:
            done = await work
            return Outcome.CONFIRMED if done.status is OrderStatus.CONFIRMED else Outcome.FAILED
        except AttemptEnded as ended:
            order, exc = ended.order, ended.error
        except (LeaseLost, EngineUnavailable):
            raise  # not the order's fault: the caller holds the order and runs it again
        except Exception as exc_:  # a bug must still end the order visibly
            exc = as_order_error(exc_)
        ending = self._endings.of_error(exc, self._endings.now())
        if ending is not None:  # a cancel won, or the order expired, before any send
            done = await self._endings.end(job.command, order, ending)
            return Outcome(str(done.status))
        # A limit the market moved back from re-opens however often: it is not a failure.
        if isinstance(exc, TransientError) and (order.attempt < self._max_attempts
                                                or isinstance(exc, LimitNotReached)
                                                or await self._may_have_swapped(order)):
            delay = retry_delay_ms(order.attempt)
            due = now_ms() + delay
            restarted = await self._restart(job, order, exc.code, exc.message, due)
            await self._outbox.schedule_retry(RetryRequest(job.command, restarted.attempt, due,
                                                           delay, exc, job.origin))
            return Outcome.RETRY_SCHEDULED
        message = exc.message
        if isinstance(exc, TransientError):
            message = f"{message} (gave up after {order.attempt} attempts)"
        await self._fail(job, order, exc.code, message)
        return Outcome.FAILED

    async def _may_have_swapped(self, order: Order) -> bool:
        """Whether a transaction of the order landed or may still land: then no transient
        error may fail the order (the next attempt follows that transaction)."""
        live = [b for b in await self._journal.broadcasts(order.order_id) if b.live]
        if live:
            log.warning("order %s: not failing it while transaction %s may have landed",
                        order.order_id, live[-1].signature)
        return bool(live)

    # ---- one attempt ----

    async def _attempt(self, job: Job, order: Order) -> Order:
        async with ending_attempt(order):
            # The journal knows no live transaction. Ask the chain too: a swap whose journal
            # rows were lost (a database restored from backup, a non-durable setting) must
            # be followed, never repeated.
            found = await self._history.landed_swap(order.order_id)
        if found is not None:
            return await self._settlement.adopt(job.command, order, found)
        async with ending_attempt(order) as at:
            order, route = await self._route(job, order)
            at.order = order
            self._endings.check_before_send(order)
            signed, b = await self._build(order, route)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await self._chain.send(signed)
        except (PermanentError, TransactionExpired) as exc:
            # Refused before forwarding (preflight, unknown blockhash): it can never land.
            await self._journal.close_broadcast(b.signature, BroadcastOutcome.REJECTED)
            if isinstance(exc, InsufficientFunds):
                exc = await self._shortfall(order, exc)
            raise AttemptEnded(order, exc) from exc
        except TransientError:
            # It may or may not have reached the cluster: follow the signature.
            log.warning("order %s: send of %s unconfirmed; following the signature",
                        order.order_id, b.signature)
        self._failpoints.hit("after_broadcast")
        order = await self._advance(
            order, OrderSubmitted(b.signature, b.last_valid_block_height), job)
        self._timer.observe("submit", loop.time() - t0)
        return await self._settlement.follow(job.command, order, b)

    async def _route(self, job: Job, order: Order) -> tuple[Order, Route]:
        """Quote every venue, choose, guard the price: the order ends ``building``."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await self._journal.advance(order.order_id, status=OrderStatus.ROUTING,
                                    attempt=order.attempt)
        await know_tokens(self._mints, order.token_in, order.token_out)
        quotes = await self._router.quote_all(order)
        try:
            routed, quotes = await floor_quotes(self._router, order, quotes)
        except OrderflowError as exc:
            raise AttemptEnded(order, exc) from exc
        order = await self._advance(order, OrderQuoted(quotes.quotes, quotes.errors), job)
        if not quotes.quotes:
            raise AttemptEnded(order, quotes.unroutable())
        try:
            route = self._router.choose(routed, quotes.quotes,
                                        max_price_impact_bps=job.command.max_price_impact_bps)
            check_floor(routed, route)
        except OrderflowError as exc:
            raise AttemptEnded(order, exc) from exc
        self._timer.observe("routing", loop.time() - t0)
        await self._journal.advance(order.order_id, status=OrderStatus.BUILDING,
                                    attempt=order.attempt)
        order = await self._advance(order, route.routed(), job)  # the route, before sending
        return order, route

    async def _build(self, order: Order, route: Route) -> tuple[VersionedTransaction, Broadcast]:
        """The venue's transaction, signed and recorded in the journal before any send."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        best = route.best
        memo = order_memo(order.order_id)
        fee = order.sniper.priority_fee_micro_lamports if order.sniper is not None else None
        swap = await self._venues.swap_transaction(best, self._wallet_pubkey, memo=memo,
                                                   priority_fee_micro_lamports=fee)
        signed = sign_as(swap.tx_bytes, self._wallet)
        if not has_memo(signed, memo):
            # Without the memo a lost journal row could not be told from "never sent".
            raise TransactionFailed(
                "unsafe_transaction",
                f"{best.venue}'s transaction does not carry the order's memo {memo!r}")
        b = Broadcast(str(signed.signatures[0]), order.attempt, bytes(signed),
                      swap.last_valid_block_height, best.venue.value, best.out_amount,
                      route.min_out, None)
        await self._journal.record_broadcast(
            order.order_id, attempt=order.attempt, signature=b.signature, tx=b.tx,
            last_valid_block_height=b.last_valid_block_height, venue=b.venue,
            expected_out=b.expected_out, min_out=b.min_out)
        self._timer.observe("building", loop.time() - t0)
        self._failpoints.hit("after_build")
        return signed, b

    # ---- transitions ----

    async def _advance(self, order: Order, event: OrderEvent, job: Job) -> Order:
        order = apply(order, event)
        await self._status.announce(order, job.command)
        return order

    async def _restart(self, job: Job, order: Order, code: str, message: str,
                       due_ms: int) -> Order:
        log.info("order %s: attempt %d ended (%s: %s); next attempt due in %d ms",
                 order.order_id, order.attempt, code, message, max(0, due_ms - now_ms()))
        resume_now = due_ms <= now_ms()  # else the retry topic brings it back: let go
        await self._journal.advance(order.order_id, status=OrderStatus.PENDING,
                                    attempt=order.attempt + 1, retry_due_ms=due_ms,
                                    error=(code, message), release=not resume_now)
        return await self._advance(order, AttemptRestarted(code, message, due_ms), job)

    async def _fail(self, job: Job, order: Order, code: str, message: str) -> Order:
        if order.status is not None and order.status.terminal:
            return order
        if order.status is None:
            order = apply(order, OrderAccepted())
        log.info("order %s failed at %s: %s %s", order.order_id, order.status, code, message)
        # Decide durably, then publish, dead-letter, and only then close the journal: a
        # crash in between resumes into this same failure, never into a new attempt.
        await self._journal.advance(order.order_id, status=OrderStatus.FAILED,
                                    attempt=order.attempt, error=(code, message))
        done = apply(order, OrderFailed(code, message))
        final = await self._status.announce(done, job.command)
        await self._outbox.dead_letter(FailedOrder(job.command, code, message, order.attempt,
                                                   job.origin))
        await self._journal.advance(order.order_id, status=OrderStatus.FAILED,
                                    attempt=order.attempt, terminal=True,
                                    final_event=final.to_json())
        return done

    async def _shortfall(self, order: Order, exc: InsufficientFunds) -> InsufficientFunds:
        """Say what a person needs to know: how much the order needs, what the wallet has."""
        try:
            held = await self._chain.token_balance(self._wallet_pubkey, order.token_in)
        except OrderflowError:
            return exc
        return InsufficientFunds(message=(
            f"needs {describe_amount(order.amount_in, order.token_in)} + fees, wallet holds "
            f"{describe_amount(held, order.token_in)}"))

    async def orphans(self, idle_s: float) -> list[ExecuteOrder]:
        """Orders nobody is driving (see :meth:`Journal.orphans`), minus the ones we run."""
        found: list[ExecuteOrder] = []
        for doc in await self._journal.orphans(idle_s=idle_s):
            try:
                found.append(decode_execute_order(orjson.dumps(doc)))
            except InvalidOrder as exc:  # one unreadable row must not stop the others' recovery
                log.error("journal row %s holds an unreadable command (%s); not resumed",
                          doc.get("orderId") if isinstance(doc, dict) else "?", exc.message)
        return [cmd for cmd in found if cmd.order_id not in self._runs]
