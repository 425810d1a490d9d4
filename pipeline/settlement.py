"""Following a sent transaction to its end, and settling the order from the chain.

After a transaction is recorded and sent, nothing but the chain decides the order: it
landed (read the real amounts from its balance changes, publish ``confirmed``, close the
journal) or its blockhash expired unlanded (the attempt ends). An RPC that cannot answer
meanwhile decides nothing. A swap found on chain by its memo, with no journal record of
it, is settled the same way (:meth:`Settlement.adopt`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.attempt_end import AttemptEnded
from pipeline.chain_history import LandedSwap
from pipeline.errors import (
    EngineUnavailable,
    OrderflowError,
    TransactionExpired,
    TransientError,
    chain_error,
)
from pipeline.failpoints import Failpoints
from pipeline.guards import RecentPrices
from pipeline.lifecycle import Order, OrderConfirmed, TransactionFound, apply
from pipeline.metrics import EngineMetrics
from pipeline.mint_decimals import MintAccounts, know_tokens
from pipeline.ports import Broadcast, BroadcastOutcome, JournalPort
from pipeline.reconcile import executed_price, fill_of
from pipeline.solana_rpc import Chain, ConfirmationWatcher, Landed
from pipeline.status_out import StatusPublisher
from pipeline.tokens import token_by_mint
from pipeline.wire import ExecuteOrder, now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")
Observe = Callable[[str, float], None]


class Settlement:
    def __init__(self, *, chain: Chain, watcher: ConfirmationWatcher, journal: JournalPort,
                 status: StatusPublisher, recent: RecentPrices, metrics: EngineMetrics,
                 observe: Observe, wallet: str, failpoints: Failpoints,
                 follow_backoff_s: float, mints: MintAccounts | None = None) -> None:
        self._chain = chain
        self._mints = mints
        self._watcher = watcher
        self._journal = journal
        self._status = status
        self._recent = recent
        self._metrics = metrics
        self._observe = observe
        self._wallet_pubkey = wallet
        self._failpoints = failpoints
        self._follow_backoff_s = follow_backoff_s

    async def follow(self, cmd: ExecuteOrder, order: Order, b: Broadcast) -> Order:
        """Follow a sent transaction until the chain decides: landed, or expired unlanded.

        An RPC that cannot answer meanwhile decides nothing: the order stays ``submitted``
        and the signature is followed again after a back-off, however long that takes
        (ending the order on it would be a lie if the swap lands; a new attempt could not
        build anyway while this transaction may land).
        """
        t0 = asyncio.get_running_loop().time()
        self._failpoints.hit("while_confirming")
        delay = self._follow_backoff_s
        while True:
            try:
                landed = await self._watcher.wait(b.signature, b.last_valid_block_height,
                                                  b.tx)
                break
            except TransactionExpired as exc:
                await self._journal.close_broadcast(b.signature, BroadcastOutcome.EXPIRED)
                raise AttemptEnded(order, exc) from exc
            except TransientError as exc:
                log.warning("order %s: cannot tell yet whether %s landed (%s); following it "
                            "again in %.1fs", order.order_id, b.signature, exc.message, delay)
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, 0.1), 30.0)
            except EngineUnavailable:
                raise
            except OrderflowError as exc:
                raise AttemptEnded(order, exc) from exc
        return await self.settle(cmd, order, b.signature, landed, t0)

    async def adopt(self, cmd: ExecuteOrder, order: Order, found: LandedSwap) -> Order:
        """Finish an order whose swap the chain shows landed though the journal has no
        record of it: publish what is true (submitted, then confirmed) from the chain."""
        log.warning("order %s: the chain shows its swap %s landed; the journal had no record "
                    "of it; following it instead of swapping again", order.order_id,
                    found.signature)
        self._metrics.recovered_from_chain()
        order = apply(order, TransactionFound(found.signature))
        await self._status.announce(order, cmd)
        return await self.settle(cmd, order, found.signature, Landed(found.slot, None),
                                  asyncio.get_running_loop().time())

    async def settle(self, cmd: ExecuteOrder, order: Order, signature: str, landed: Landed,
                      t0: float) -> Order:
        if landed.err is not None:
            await self._journal.close_broadcast(signature, BroadcastOutcome.LANDED)
            raise chain_error(landed.err, f"transaction {signature} failed")
        # The swap happened. From here no error may lead to another transaction: a failure
        # to read the balances is retried here, and if it persists the next attempt
        # resumes from this landed transaction (the journal refuses a new one).
        balances = await self._retrying(lambda: self._chain.balances(signature))
        fill = fill_of(balances, self._wallet_pubkey, order.token_in, order.token_out)
        await self._retrying(lambda: know_tokens(self._mints, order.token_in, order.token_out))
        tin, tout = token_by_mint(order.token_in), token_by_mint(order.token_out)
        assert tin is not None and tout is not None
        price = executed_price(fill.amount_in, tin.decimals, fill.amount_out, tout.decimals)
        self._recent.record(order.token_in, order.token_out, fill.amount_in,
                                   fill.amount_out)
        self._observe("confirm", asyncio.get_running_loop().time() - t0)
        # Publish first, then mark terminal: a crash in between re-publishes the same event
        # (same eventId) from the landed transaction instead of losing it.
        done = apply(order, OrderConfirmed(signature, landed.slot, fill.amount_in,
                                           fill.amount_out, price))
        final = await self._status.announce(done, cmd)
        await self._journal.confirm(order.order_id, attempt=order.attempt,
                                    signature=signature, final_event=final.to_json())
        self._metrics.end_to_end((now_ms() - cmd.submitted_at_ms) / 1000)
        return done

    async def _retrying(self, read: Callable[[], Awaitable[T]], *,
                        budget_s: float = 30.0) -> T:
        """Retry a read that must eventually succeed (after a swap landed) with back-off."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        delay = 0.1
        while True:
            try:
                return await read()
            except TransientError:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
