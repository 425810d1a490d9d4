"""Runs one order through its lifecycle: route, build, sign, submit, confirm.

Each step publishes a status event only once it is true; every status change
goes through :func:`pipeline.lifecycle.apply`. Failures end in a ``failed``
event with a precise code, never in silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from solders.keypair import Keypair

from pipeline import routing
from pipeline.errors import (
    NoRoute,
    OrderflowError,
    SlippageExceeded,
    TransactionFailed,
)
from pipeline.lifecycle import (
    Order,
    OrderAccepted,
    OrderConfirmed,
    OrderEvent,
    OrderFailed,
    OrderQuoted,
    OrderRouted,
    OrderSubmitted,
    Quote,
    Venue,
    apply,
)
from pipeline.reconcile import executed_price, fill_of
from pipeline.solana_rpc import Chain, ConfirmationWatcher, sign_as
from pipeline.tokens import token_by_mint
from pipeline.venues import Venues
from pipeline.wire import ExecuteOrder, StatusEvent

log = logging.getLogger(__name__)

Publish = Callable[[StatusEvent, bool], Awaitable[None]]
"""Publish one status event; the flag asks to wait for the broker's acknowledgement."""
QuoteErrors = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StageTimer:
    """Hook for per-stage latency (metrics); the default does nothing."""

    observe: Callable[[str, float], None] = lambda stage, seconds: None


class OrderExecutor:
    def __init__(self, *, venues: Venues, chain: Chain, watcher: ConfirmationWatcher,
                 wallet: Keypair, publish: Publish,
                 enabled_venues: tuple[Venue, ...] = (Venue.RAYDIUM, Venue.METEORA),
                 timer: StageTimer | None = None) -> None:
        self._venues = venues
        self._chain = chain
        self._watcher = watcher
        self._wallet = wallet
        self._wallet_pubkey = str(wallet.pubkey())
        self._publish = publish
        self._enabled = enabled_venues
        self._timer = timer or StageTimer()

    async def _advance(self, order: Order, event: OrderEvent, cmd: ExecuteOrder) -> Order:
        order = apply(order, event)
        assert order.status is not None
        await self._publish(StatusEvent.of(order, client_ref=cmd.client_ref),
                            order.status.terminal)
        return order

    async def execute(self, cmd: ExecuteOrder) -> Order:
        """Drive the order to a terminal status and return it."""
        order = await self._advance(cmd.to_order(), OrderAccepted(), cmd)
        loop = asyncio.get_running_loop()
        try:
            t0 = loop.time()
            quotes, errors = await self._quote_all(order)
            order = await self._advance(order, OrderQuoted(quotes, errors), cmd)
            if not quotes:
                raise NoRoute(message="no venue could quote: " + "; ".join(
                    f"{venue}: {message}" for venue, message in errors))
            best = routing.choose_best(quotes)
            min_out = routing.min_out(best.out_amount, order.slippage_bps)
            self._check_threshold(best, min_out)
            self._timer.observe("routing", loop.time() - t0)

            t0 = loop.time()
            order = await self._advance(order, OrderRouted(best.venue, best.out_amount, min_out),
                                        cmd)
            swap = await self._venues.swap_transaction(best, self._wallet_pubkey)
            signed = sign_as(swap.tx_bytes, self._wallet)
            self._timer.observe("building", loop.time() - t0)

            t0 = loop.time()
            signature = await self._chain.send(signed)
            order = await self._advance(
                order, OrderSubmitted(signature, swap.last_valid_block_height), cmd)
            self._timer.observe("submit", loop.time() - t0)

            t0 = loop.time()
            landed = await self._watcher.wait(signature, swap.last_valid_block_height)
            if landed.err is not None:
                if "6001" in landed.err:
                    raise SlippageExceeded(message=f"transaction {signature} failed: {landed.err}")
                raise TransactionFailed(message=f"transaction {signature} failed: {landed.err}")
            balances = await self._chain.balances(signature)
            fill = fill_of(balances, self._wallet_pubkey, order.token_in, order.token_out)
            tin, tout = token_by_mint(order.token_in), token_by_mint(order.token_out)
            assert tin is not None and tout is not None
            price = executed_price(fill.amount_in, tin.decimals, fill.amount_out, tout.decimals)
            self._timer.observe("confirm", loop.time() - t0)
            return await self._advance(
                order, OrderConfirmed(signature, landed.slot, fill.amount_in, fill.amount_out,
                                      price), cmd)
        except OrderflowError as exc:
            return await self._fail(order, exc.code, exc.message, cmd)
        except Exception as exc:  # a bug must still end the order visibly
            log.exception("order %s: unexpected error", order.order_id)
            return await self._fail(order, "internal_error", f"{type(exc).__name__}: {exc}", cmd)

    async def _fail(self, order: Order, code: str, message: str, cmd: ExecuteOrder) -> Order:
        if order.status is not None and order.status.terminal:
            return order
        log.info("order %s failed at %s: %s %s", order.order_id, order.status, code, message)
        return await self._advance(order, OrderFailed(code, message), cmd)

    async def _quote_all(self, order: Order) -> tuple[tuple[Quote, ...], QuoteErrors]:
        """Ask every venue concurrently; a venue that cannot quote is recorded, not fatal."""
        results = await asyncio.gather(
            *(self._venues.quote(v, order.token_in, order.token_out, order.amount_in,
                                 order.slippage_bps) for v in self._enabled),
            return_exceptions=True,
        )
        quotes: list[Quote] = []
        errors: list[tuple[str, str]] = []
        for venue, result in zip(self._enabled, results, strict=True):
            if isinstance(result, Quote):
                quotes.append(result)
            elif isinstance(result, OrderflowError):
                errors.append((venue.value, f"{result.code}: {result.message}"))
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                errors.append((venue.value, f"internal_error: {result!r}"))
        return tuple(quotes), tuple(errors)

    @staticmethod
    def _check_threshold(best: Quote, min_out: int) -> None:
        """The venue must enforce at least our own minimum output."""
        threshold = best.raw.get("otherAmountThreshold")
        if threshold is not None and int(str(threshold)) < min_out:
            raise TransactionFailed(
                "unsafe_quote",
                f"{best.venue} quote's otherAmountThreshold {threshold} is below our minOut "
                f"{min_out}")

