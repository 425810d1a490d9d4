"""What an on-chain venue offers the engine: its pools for a pair, quoted exactly from
their accounts, each quote able to build its own swap instruction.

Pools are found, not configured: a ``getProgramAccounts`` scan with the venue's memcmp
filters (both mint orders), cached per pair for ``discovery_ttl_s``, or an explicit pool
list for RPCs that refuse program scans. Pool state is read fresh for every quote with
``getMultipleAccounts``; a quote then answers for any other amount on that same state
(:meth:`PoolQuote.quote`, :meth:`PoolQuote.at`) without another read, which is what lets
the router search a split exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from pipeline.accounts import AccountReader
from pipeline.model import Venue
from pipeline.venues.learnt_pools import LEARNT, LearntPools

BuildLeg = Callable[[Pubkey, Pubkey, Pubkey, int], Instruction]
"""(user, user's input token account, user's output token account, min out) -> the leg."""


@dataclass(frozen=True, slots=True)
class PoolQuote:
    venue: Venue
    pool: Pubkey
    mint_in: Pubkey
    mint_out: Pubkey
    amount_in: int
    amount_out: int
    fee: int
    price_impact: Fraction
    build_leg: BuildLeg
    # The same pool quoted for another amount on the state already read (None: it cannot
    # fill that amount); no RPC. Absent for a quote that cannot be re-evaluated.
    requote: Callable[[int], PoolQuote | None] | None = None
    compute_units: int = 0  # the leg's estimated compute units (its priority-fee weight)

    def at(self, amount_in: int) -> PoolQuote | None:
        """This pool's quote for ``amount_in`` on the same state (no RPC)."""
        if amount_in == self.amount_in:
            return self
        return None if self.requote is None or amount_in <= 0 else self.requote(amount_in)

    def quote(self, amount_in: int) -> int:
        """The exact output for ``amount_in`` on the same state; 0 if it cannot fill it."""
        if amount_in <= 0:
            return 0
        found = self.at(amount_in)
        return 0 if found is None else found.amount_out


@dataclass(frozen=True, slots=True)
class ClusterTime:
    slot: int
    unix_timestamp: int


class PoolVenue(Protocol):
    venue: Venue

    async def quote_pools(self, reader: AccountReader, mint_in: Pubkey, mint_out: Pubkey,
                          amount_in: int, now: ClusterTime) -> list[PoolQuote]:
        """Every tradable pool of the pair, quoted for ``amount_in`` (none: empty list)."""
        ...


class PoolDirectory:
    """The pools of one program for a pair: an explicit list, or a cached program scan;
    either way with the pools of the pair learnt at runtime (``learnt_pools.py``: a new
    pool a sniper found is in neither)."""

    def __init__(self, program: Pubkey, filters: Callable[[Pubkey, Pubkey],
                                                         Sequence[Sequence[dict[str, Any]]]],
                 *, explicit: Sequence[Pubkey] = (), discovery_ttl_s: float = 60.0,
                 learnt: LearntPools = LEARNT) -> None:
        self._program = program
        self._filters = filters
        self._explicit = tuple(explicit)
        self._ttl = discovery_ttl_s
        self._cache: dict[frozenset[Pubkey], tuple[float, list[Pubkey]]] = {}
        self._learnt = learnt

    async def pools(self, reader: AccountReader, mint_a: Pubkey, mint_b: Pubkey
                    ) -> list[Pubkey]:
        found = await self._listed(reader, mint_a, mint_b)
        learnt = [p for p in self._learnt.of(self._program, mint_a, mint_b) if p not in found]
        return [*found, *learnt] if learnt else found

    async def _listed(self, reader: AccountReader, mint_a: Pubkey, mint_b: Pubkey
                      ) -> list[Pubkey]:
        if self._explicit:
            return list(self._explicit)
        key = frozenset((mint_a, mint_b))
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        found: list[Pubkey] = []
        for filters in self._filters(mint_a, mint_b):  # one scan per mint order
            found += [key_ for key_, _ in await reader.program_accounts(self._program,
                                                                         list(filters))]
        self._cache[key] = (time.monotonic(), found)
        return found
