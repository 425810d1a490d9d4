"""Sniper orders: buy a token the moment a pool for it opens, within the order's guards.

A sniper order waits ``open`` (like a limit) for a pool of its pair to appear
(:class:`NewPool`, from ``pipeline/pool_watch.py``). Each sighting of a new pool is
probed (:class:`PoolProbe`: the pool's quote-side liquidity and an exact quote for the
order's amount) and checked against the order's guards (:func:`refusal`); the first
sighting that passes triggers the order through the journal's compare-and-set, exactly
as a limit order does, and the executor buys with the order's ``min_out`` (its maximum
price) as the on-chain minimum. A sighting that fails a guard is refused with a reason
(logged, and kept on the order's journal row) and the order keeps waiting: a pool that
launches empty and is funded a few slots later is seen again when it is funded.

A pool the watch found already there when it started (``listed``: a worker that was down
or restarting when it launched) is new to an order only if it was born after the order
was accepted: its birth (:class:`PoolBirths`, the block time of its creation slot, whole
seconds rounded down) is later than the order's ``submittedAt``. Rounding down makes the
comparison conservative: a pool born in the same second as the order is taken as older.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pipeline.model import SniperTerms, Venue

BPS = 10_000


@dataclass(frozen=True, slots=True)
class NewPool:
    """A pool that did not exist when the watch started, as one notification saw it."""

    venue: Venue
    address: str
    mint_a: str
    mint_b: str
    vaults: tuple[str, str]  # the accounts holding mint_a's and mint_b's reserves
    created_slot: int  # the slot of its first notification: its creation
    seen_slot: int  # the slot of this notification
    listed: bool = False  # there when the watch started: new only if born after the order
    born_ms: int | None = None  # a listed pool's birth (block time, ms), None if unknown

    def has(self, token_in: str, token_out: str) -> bool:
        return {token_in, token_out} == {self.mint_a, self.mint_b}

    def vault_of(self, mint: str) -> str:
        return self.vaults[0] if mint == self.mint_a else self.vaults[1]


@dataclass(frozen=True, slots=True)
class Probe:
    """What the pool offers the order now: ``token_in`` held by the pool, the exact
    output for the order's amount, and that trade's price impact (bps)."""

    quote_liquidity: int
    out: int
    impact_bps: int
    opens_in_s: int = 0  # the pool takes swaps only this many seconds from now


class PoolBirths(Protocol):
    async def birth(self, pool: NewPool) -> tuple[int, int] | None:
        """(creation slot, that slot's block time in ms, rounded down to the second) of a
        listed pool; None when the cluster cannot say (never new then)."""
        ...


def new_to(pool: NewPool, submitted_at_ms: int) -> bool:
    """Whether ``pool`` appeared after an order accepted at ``submitted_at_ms``: every pool
    the watch saw born live did; a listed one only if its known birth is later."""
    return not pool.listed or (pool.born_ms is not None and pool.born_ms > submitted_at_ms)


class PoolProbe(Protocol):
    async def probe(self, pool: NewPool, token_in: str, token_out: str,
                    amount_in: int) -> Probe: ...


def refusal(terms: SniperTerms, *, pool: NewPool, probe: Probe, symbol_in: str = "",
            now_slot: int | None = None) -> str | None:
    """Why this pool must not be bought now, in words; None when every guard holds."""
    unit = f" {symbol_in}" if symbol_in else ""
    if probe.quote_liquidity < terms.min_quote_liquidity:
        return (f"pool {pool.address} holds {probe.quote_liquidity}{unit} on the quote side, "
                f"below the order's minimum liquidity {terms.min_quote_liquidity}")
    delay = (now_slot if now_slot is not None else pool.seen_slot) - pool.created_slot
    if terms.max_delay_slots is not None and delay > terms.max_delay_slots:
        return (f"pool {pool.address} opened at slot {pool.created_slot}, {delay} slots ago: "
                f"past the order's maximum delay of {terms.max_delay_slots} slots")
    if probe.out <= 0:
        return f"pool {pool.address} pays nothing for the order's amount"
    if terms.min_out is not None and probe.out < terms.min_out:
        return (f"pool {pool.address} pays {probe.out} for the order's amount, below its "
                f"maximum price (at least {terms.min_out})")
    if terms.max_price_impact_bps is not None and probe.impact_bps > terms.max_price_impact_bps:
        return (f"the order would move pool {pool.address} by {probe.impact_bps} bps, above "
                f"its maximum impact of {terms.max_price_impact_bps} bps")
    return None


@dataclass(frozen=True, slots=True)
class OpenSniper:
    order_id: str
    token_in: str
    token_out: str
    amount_in: int
    terms: SniperTerms
    submitted_at_ms: int = 0  # its acceptance: a listed pool born before it is not new


class SniperBook:
    """Open sniper orders by pair (few per pair: a scan of a pair's list is fine)."""

    def __init__(self) -> None:
        self._by_pair: dict[frozenset[str], dict[str, OpenSniper]] = {}
        self._pair_of: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._pair_of)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._pair_of

    def add(self, order: OpenSniper) -> bool:
        if order.order_id in self._pair_of:
            return False
        pair = frozenset((order.token_in, order.token_out))
        self._by_pair.setdefault(pair, {})[order.order_id] = order
        self._pair_of[order.order_id] = pair
        return True

    def take(self, order_id: str) -> OpenSniper | None:
        pair = self._pair_of.pop(order_id, None)
        if pair is None:
            return None
        orders = self._by_pair[pair]
        order = orders.pop(order_id)
        if not orders:
            del self._by_pair[pair]
        return order

    def waiting_for(self, pool: NewPool) -> list[OpenSniper]:
        return list(self._by_pair.get(frozenset((pool.mint_a, pool.mint_b)), {}).values())

    def pairs(self) -> list[frozenset[str]]:
        return list(self._by_pair)

    def retain(self, keep: Callable[[frozenset[str]], bool]) -> None:
        """Drop the orders of every pair ``keep`` refuses (partitions revoked)."""
        for pair in [p for p in self._by_pair if not keep(p)]:
            for order_id in self._by_pair.pop(pair):
                del self._pair_of[order_id]
