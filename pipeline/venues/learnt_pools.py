"""Pools learnt at runtime: the new pools the sniper's pool watch saw, by program and pair.

An on-chain venue's :class:`~pipeline.venues.pools.PoolDirectory` lists an explicit pool
list (``ORDERFLOW_POOLS``, for RPCs that refuse program scans, as ``make up`` on the real
programs sets it) or a program scan cached for a minute; neither has a pool launched a
moment ago. The trigger agent's watch (``pipeline/pool_watch.py``) sees every new pool of
both programs in every worker, and records it here before a sniper can trigger on it; the
directory adds what is recorded for the pair it is asked about, so the executor trades the
pool the sniper found, whichever worker runs the order. Bounded: the oldest pairs are
forgotten first (a pair's sniper buys within seconds of the launch).
"""

from __future__ import annotations

from collections import OrderedDict

from solders.pubkey import Pubkey

MAX_PAIRS = 10_000

Key = tuple[Pubkey, frozenset[Pubkey]]


class LearntPools:
    def __init__(self, max_pairs: int = MAX_PAIRS) -> None:
        self._max = max_pairs
        self._pools: OrderedDict[Key, list[Pubkey]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._pools.values())

    def learn(self, program: Pubkey, pool: Pubkey, mint_a: Pubkey, mint_b: Pubkey) -> None:
        key = (program, frozenset((mint_a, mint_b)))
        known = self._pools.setdefault(key, [])
        self._pools.move_to_end(key)
        if pool not in known:
            known.append(pool)
        while len(self._pools) > self._max:
            self._pools.popitem(last=False)

    def of(self, program: Pubkey, mint_a: Pubkey, mint_b: Pubkey) -> list[Pubkey]:
        return list(self._pools.get((program, frozenset((mint_a, mint_b))), ()))


LEARNT = LearntPools()
"""This process's: what its pool watch saw, what its venues' directories add."""
