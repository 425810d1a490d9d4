"""Seeded price drift, turned into real trades by a noise trader.

Each pair has a shared "fair" log-price and each pool its own offset; both take a seeded
Gaussian step of ``bps`` basis points per tick and revert slowly to where they started, so
prices wander (and the best venue changes from order to order) without leaving the pools'
liquidity range in a long session. The market moves a pool to its target by trading it
there through the ordinary swap path, so vault balances keep matching the books.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from fractions import Fraction
from typing import TYPE_CHECKING

from solders.signature import Signature

from dexmath import cpmm, dlmm
from localnet.market.errors import MarketError
from localnet.market.pools import Pool
from localnet.txerrors import ChainError

if TYPE_CHECKING:
    from localnet.market.market import Market

log = logging.getLogger(__name__)

MAX_DRIFT_TRADE_SHARE = Fraction(1, 20)
"""A drift trade never puts in more than 5% of the pool's input-side holdings."""

REVERSION = 0.02
"""Fraction of the log-deviation removed each step (keeps a ~5 sigma-per-step band)."""
STABLES = frozenset({"USDC", "USDT"})
STABLE_SCALE = 0.1
"""A stablecoin pair drifts a tenth as much as the others."""


class PriceWalk:
    """Targets (raw-unit price of X in Y) per pool, one step per :meth:`step`."""

    def __init__(self, pools: list[Pool], rng: random.Random, bps: int) -> None:
        self._rng = rng
        self._sigma = bps / 10_000
        self._pools = pools
        self._start = {id(p): p.mid_price() for p in pools}
        self._pair = {_pair(p): 0.0 for p in pools}
        self._own = {id(p): 0.0 for p in pools}

    def step(self) -> list[tuple[Pool, Fraction]]:
        gauss, sigma = self._rng.gauss, self._sigma
        for pair, value in self._pair.items():
            self._pair[pair] = value * (1 - REVERSION) + gauss(0.0, sigma * _scale(pair))
        targets = []
        for pool in self._pools:
            step = sigma * _scale(_pair(pool)) / 2
            own = self._own[id(pool)] * (1 - REVERSION) + gauss(0.0, step)
            self._own[id(pool)] = own
            factor = Fraction(math.exp(self._pair[_pair(pool)] + own))
            targets.append((pool, self._start[id(pool)] * factor))
        return targets


def _pair(pool: Pool) -> tuple[str, str]:
    return pool.x.symbol, pool.y.symbol


def _scale(pair: tuple[str, str]) -> float:
    return STABLE_SCALE if set(pair) <= STABLES else 1.0


def trade_toward(pool: Pool, target: Fraction) -> tuple[bool, int] | None:
    """(x_to_y, amount_in) that moves the pool's price to about ``target``; None if there."""
    state = pool.book.state
    if isinstance(state, cpmm.CpmmState):
        return _cpmm_trade(state, target)
    return _dlmm_trade(state, target)


def _cpmm_trade(state: cpmm.CpmmState, target: Fraction) -> tuple[bool, int] | None:
    rx, ry = state.reserve_a, state.reserve_b
    k = rx * ry
    keep = cpmm.FEE_RATE_DENOMINATOR - state.trade_fee_rate
    if target < Fraction(ry, rx):  # sell X until Ry'/Rx' = target
        gross = math.isqrt(k * target.denominator // target.numerator) - rx
        x_to_y = True
    else:
        gross = math.isqrt(k * target.numerator // target.denominator) - ry
        x_to_y = False
    amount = gross * cpmm.FEE_RATE_DENOMINATOR // keep
    return (x_to_y, amount) if amount > 0 else None


def _dlmm_trade(state: dlmm.DlmmState, target: Fraction) -> tuple[bool, int] | None:
    """Input that empties every bin between the active bin and the target bin."""
    goal = dlmm.bin_id_for_price(target, state.bin_step)
    if goal == state.active_id:
        return None
    x_to_y = goal < state.active_id
    rate = dlmm.base_fee_rate(state.params, state.bin_step)
    crossed = range(goal + 1, state.active_id + 1) if x_to_y else range(state.active_id, goal)
    amount = 0
    for bin_id in crossed:
        b = state.bins.get(bin_id)
        if b is None or (b.amount_y if x_to_y else b.amount_x) == 0:
            continue
        need = dlmm.get_max_amount_in(b.amount_x, b.amount_y, state.price(bin_id), x_to_y)
        amount += need + dlmm.compute_fee(need, rate)
    # One unit more than empties the last bin steps the walk into the goal bin.
    return (x_to_y, amount + 1) if amount > 0 else None


class Drifter:
    """The noise trader: trades every pool toward its :class:`PriceWalk` target, on chain."""

    def __init__(self, market: Market, walk: PriceWalk) -> None:
        self.market = market
        self.walk = walk

    def step(self) -> list[Signature]:
        """One drift tick: trade every pool toward its next target price."""
        if self.market.drift_bps <= 0:
            return []
        sigs = []
        for pool, target in self.walk.step():
            if pool.book.pending():
                # Never trade against reserved state: the reserved swaps may not land, and
                # a drift trade priced on top of them would be replayed, at its fixed
                # amounts, onto a pool they never moved. The walk goes on; the pool
                # catches up once its book is settled.
                continue
            move = trade_toward(pool, target)
            if move is None:
                continue
            x_to_y, amount = move
            held = pool.book.current_totals()[0 if x_to_y else 1]
            amount = min(amount, int(held * MAX_DRIFT_TRADE_SHARE))
            sig = self._trade(pool, x_to_y, amount)
            if sig is not None:
                sigs.append(sig)
        return sigs

    def _trade(self, pool: Pool, x_to_y: bool, amount: int) -> Signature | None:
        market = self.market
        trader = market.noise_trader
        for _ in range(4):
            if amount <= 0:
                return None
            try:
                issued = market.issue(
                    pool, trader.pubkey(), x_to_y, amount, 0, extra_signers=[trader]
                )
            except MarketError:
                amount //= 2  # ran past the pool's bins: move less
                continue
            try:
                return market.chain.send(issued.tx)
            except ChainError as exc:
                log.warning("drift trade on %s refused: %s", pool.name, exc)
                market.abandon(issued)
                return None
        return None

    async def run(self, interval_s: float) -> None:
        """Drift every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.step()
            except Exception:
                log.exception("drift step failed")
