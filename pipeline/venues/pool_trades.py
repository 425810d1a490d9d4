"""A pool's recent trades, read from its own transaction history.

Every swap of a CP-Swap pool or DLMM pair writes the pool account, so
``getSignaturesForAddress(pool)`` lists them, newest first; what was traded is what the
pool's two vaults gained and lost in that transaction (its token balances). A
transaction where both vaults gained or both lost is liquidity, not a trade.

Bounded cost: per pool one ``getSignaturesForAddress`` of the newest ``per_pool``
signatures, and a ``getTransaction`` only for a signature never read before (a landed
transaction never changes: kept, least recently used evicted), at most ``budget`` of them
per call (the rest are read on a later call). Failed transactions are not read.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.chain_history import PAGE, SignatureEntry
from pipeline.errors import OrderflowError
from pipeline.reconcile import TokenBalance, TxBalances


class TradeChain(Protocol):
    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = PAGE) -> list[SignatureEntry]: ...

    async def balances(self, signature: str) -> TxBalances: ...


@dataclass(frozen=True, slots=True)
class PoolTrade:
    signature: str
    slot: int
    block_time: int | None
    mint_in: str
    amount_in: int  # what the pool received (the trader's input, fees included)
    mint_out: str
    amount_out: int  # what the pool paid


def vault_change(tx: TxBalances, vault: str) -> int | None:
    """How much ``vault`` gained in ``tx`` (negative: lost); None if ``tx`` does not name it."""
    try:
        index = list(tx.account_keys).index(vault)
    except ValueError:
        return None

    def held(balances: Sequence[TokenBalance]) -> int:
        return sum(b.amount for b in balances if b.account_index == index)

    return held(tx.post_tokens) - held(tx.pre_tokens)


def trade_of(entry: SignatureEntry, tx: TxBalances, vaults: tuple[str, str],
             mints: tuple[str, str]) -> PoolTrade | None:
    """The swap ``tx`` made on the pool with these vaults (of these mints), if it was one."""
    dx, dy = (vault_change(tx, v) for v in vaults)
    if dx is None or dy is None:
        return None
    if dx > 0 > dy:
        return PoolTrade(entry.signature, entry.slot, entry.block_time, mints[0], dx,
                         mints[1], -dy)
    if dy > 0 > dx:
        return PoolTrade(entry.signature, entry.slot, entry.block_time, mints[1], dy,
                         mints[0], -dx)
    return None


class PoolTrades:
    """See the module docstring."""

    def __init__(self, chain: TradeChain, *, per_pool: int = 10, budget: int = 40,
                 cache_size: int = 4096) -> None:
        self._chain = chain
        self._per_pool = per_pool
        self._budget = budget
        self._cache_size = cache_size
        self._seen: OrderedDict[str, TxBalances] = OrderedDict()
        self.transactions_read = 0

    async def recent(self, pools: Sequence[tuple[str, tuple[str, str], tuple[str, str]]]
                     ) -> dict[str, list[PoolTrade]]:
        """Per pool (address, vaults, mints): its trades among its newest signatures,
        newest first. Raises :class:`~pipeline.errors.OrderflowError` when the RPC fails."""
        histories = await asyncio.gather(*(
            self._chain.signatures_for_address(pool, limit=self._per_pool)
            for pool, _, _ in pools))
        landed = [[e for e in entries if e.err is None] for entries in histories]
        unread = list(dict.fromkeys(e.signature for entries in landed for e in entries
                                    if e.signature not in self._seen))[:self._budget]
        read = await asyncio.gather(*(self._chain.balances(s) for s in unread),
                                    return_exceptions=True)
        for signature, result in zip(unread, read, strict=True):
            if isinstance(result, OrderflowError):
                continue  # not readable yet: asked again next time
            if isinstance(result, BaseException):
                raise result
            self.transactions_read += 1
            self._seen[signature] = result
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
        out: dict[str, list[PoolTrade]] = {}
        for (pool, vaults, mints), entries in zip(pools, landed, strict=True):
            trades = []
            for entry in entries:
                seen = self._seen.get(entry.signature)
                if seen is None:
                    continue
                self._seen.move_to_end(entry.signature)
                trade = trade_of(entry, seen, vaults, mints)
                if trade is not None:
                    trades.append(trade)
            out[pool] = trades
        return out
