"""Price updates of on-chain pools (Raydium CP-Swap, Meteora DLMM) for the trigger engine.

:class:`OnchainPairsFeed` is the :class:`~pipeline.price_feed.PriceFeed` of
``ORDERFLOW_VENUES=onchain``: per pair it finds the pools as the venues do (program scan,
or the explicit ``ORDERFLOW_POOLS``), reads them with ``getMultipleAccounts`` and reports a
:class:`~pipeline.trigger_curves.PairView` when their accounts changed. It reads again at
once on an ``accountNotification`` of a pool, a pair or a vault (:class:`AccountWakeups`),
else every ``poll_s``. Curves are exact and bounded as ``pipeline/trigger_curves.py``
requires:

* CP-Swap: the program's math on the effective reserves (``raydium_cp``), bound
  ``(1 - trade fee) * R_out / R_in``; nothing while the pool is not open or swaps are off.
* DLMM: the venue adapter's own quote of the pair, read for the largest open amount of the
  direction and requoted for each amount on that state (an amount beyond what was read
  quotes 0: it can miss, never fire wrongly); bound ``(1 - base fee) * price(active bin)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import struct
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from solders.pubkey import Pubkey

from dexmath import dlmm as dlmm_math
from pipeline.accounts import AccountReader
from pipeline.errors import OrderflowError
from pipeline.model import Venue
from pipeline.price_feed import AccountWakeups, OnView, Pair, run_feed
from pipeline.trigger_curves import Curve, PairView
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.onchain_pools import MeteoraDlmmPools
from pipeline.venues.pools import ClusterTime, PoolQuote

log = logging.getLogger(__name__)
TOKEN_AMOUNT_OFFSET = 64
ProbeAmount = Callable[[str, str], int]
"""The largest open amount of a direction (token_in, token_out): DLMM reads that far."""


def _amount(data: bytes | None) -> int:
    if data is None or len(data) < TOKEN_AMOUNT_OFFSET + 8:
        raise ValueError("vault token account is missing")
    return int(struct.unpack_from("<Q", data, TOKEN_AMOUNT_OFFSET)[0])


@dataclass(frozen=True, slots=True)
class CpOnchainCurve:
    mint_a: str  # token 0
    mint_b: str  # token 1
    pool: ray.PoolState
    config: ray.AmmConfig
    vault_0: int
    vault_1: int
    now: int

    def _open(self) -> bool:
        return self.pool.swap_enabled and self.now >= self.pool.open_time

    def rate_bound(self, a_to_b: bool) -> Fraction:
        try:
            r0, r1 = ray.effective_reserves(self.pool, self.vault_0, self.vault_1)
        except ray.PoolNotTradable:
            return Fraction(0)
        r_in, r_out = (r0, r1) if a_to_b else (r1, r0)
        if not self._open() or r_in <= 0 or r_out <= 0:
            return Fraction(0)
        keep = Fraction(1_000_000 - self.config.trade_fee_rate, 1_000_000)
        return keep * Fraction(r_out, r_in)

    def out(self, a_to_b: bool, amount_in: int) -> int:
        try:
            return ray.quote_swap_base_input(self.pool, self.config, self.vault_0,
                                             self.vault_1, amount_in, a_to_b,
                                             now=self.now).amount_out
        except (ray.PoolNotTradable, ValueError):
            return 0


@dataclass(frozen=True, slots=True)
class DlmmOnchainCurve:
    mint_a: str  # token X
    mint_b: str  # token Y
    pair: dlmm.LbPair
    x_to_y: PoolQuote | None
    y_to_x: PoolQuote | None

    def rate_bound(self, a_to_b: bool) -> Fraction:
        if (self.x_to_y if a_to_b else self.y_to_x) is None:
            return Fraction(0)
        p = self.pair.parameters
        base = min(dlmm_math.base_fee_rate(
            dlmm_math.FeeParams(base_factor=p.base_factor,
                                base_fee_power_factor=p.base_fee_power_factor),
            self.pair.bin_step), dlmm_math.MAX_FEE_RATE)
        keep = Fraction(dlmm_math.FEE_PRECISION - base, dlmm_math.FEE_PRECISION)
        price = Fraction(dlmm_math.price_from_id(self.pair.active_id, self.pair.bin_step),
                         dlmm_math.ONE)
        return keep * (price if a_to_b else 1 / price)

    def out(self, a_to_b: bool, amount_in: int) -> int:
        quote = self.x_to_y if a_to_b else self.y_to_x
        return 0 if quote is None else quote.quote(amount_in)


class OnchainPairsFeed:
    """See the module docstring."""

    def __init__(self, reader: AccountReader, raydium_program: Pubkey, *,
                 probe_amount: ProbeAmount,
                 explicit: Mapping[Venue, Sequence[Pubkey]] | None = None,
                 wakeups: AccountWakeups | None = None, poll_s: float = 0.4,
                 refresh_s: float = 2.0, discovery_ttl_s: float = 60.0) -> None:
        self._reader = reader
        self._raydium = raydium_program
        self._probe_amount = probe_amount
        self._explicit = {v: list(keys) for v, keys in (explicit or {}).items()}
        self._wakeups = wakeups
        self._poll_s = poll_s
        self._refresh_s = refresh_s
        self._ttl = discovery_ttl_s
        self._pools: dict[Pair, tuple[float, list[Pubkey], list[Pubkey]]] = {}
        self._seen: dict[Pair, bytes] = {}
        self._sent_at: dict[Pair, float] = {}
        self.reads = 0

    async def run(self, pairs: Callable[[], Collection[Pair]], on_view: OnView) -> None:
        await run_feed(lambda: self.read_once(pairs(), on_view), wakeups=self._wakeups,
                       poll_s=self._poll_s, what="on-chain pools feed",
                       errors=(OrderflowError, OSError, ValueError))

    async def read_once(self, wanted: Collection[Pair], on_view: OnView) -> int:
        """Read every wanted pair's pools; report those whose accounts changed (or not
        reported for ``refresh_s``: a DLMM fee decays with time alone)."""
        reported = 0
        for pair in wanted:
            view, fingerprint = await self.view(pair)
            now = time.monotonic()
            stale = now - self._sent_at.get(pair, float("-inf")) >= self._refresh_s
            if self._seen.get(pair) == fingerprint and not stale:
                continue
            self._seen[pair], self._sent_at[pair] = fingerprint, now
            await on_view(pair, view)
            reported += 1
        return reported

    async def _discover(self, pair: Pair) -> tuple[list[Pubkey], list[Pubkey]]:
        cached = self._pools.get(pair)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1], cached[2]
        a, b = (Pubkey.from_string(m) for m in sorted(pair))
        found: dict[Venue, list[Pubkey]] = {}
        for venue, program, filters in (
                (Venue.RAYDIUM, self._raydium, ray.pool_filters(a, b)),
                (Venue.METEORA, dlmm.PROGRAM_ID, dlmm.pool_discovery_filters(a, b))):
            if venue in self._explicit:
                found[venue] = list(self._explicit[venue])
                continue
            found[venue] = [key for f in filters
                            for key, _ in await self._reader.program_accounts(program, f)]
        self._pools[pair] = (time.monotonic(), found[Venue.RAYDIUM], found[Venue.METEORA])
        return found[Venue.RAYDIUM], found[Venue.METEORA]

    async def view(self, pair: Pair) -> tuple[PairView, bytes]:
        """The pair's curves now, and a fingerprint of every account they were read from."""
        self.reads += 1
        cp_keys, dlmm_keys = await self._discover(pair)
        slot, unix = await self._reader.clock()
        digest = hashlib.sha256()
        raw = await self._reader.accounts([*cp_keys, *dlmm_keys])
        curves: list[Curve] = []
        watch: list[str] = [str(k) for k in (*cp_keys, *dlmm_keys)]
        for data in raw[:len(cp_keys)]:
            if data is None:
                continue
            pool = ray.decode_pool_state(data)
            if {str(pool.token_0_mint), str(pool.token_1_mint)} != pair:
                continue
            config, v0, v1 = await self._reader.accounts(
                [pool.amm_config, pool.token_0_vault, pool.token_1_vault])
            if config is None:
                continue
            for part in (data, v0 or b"", v1 or b""):
                digest.update(part)
            watch += [str(pool.token_0_vault), str(pool.token_1_vault)]
            with contextlib.suppress(ValueError):
                curves.append(CpOnchainCurve(str(pool.token_0_mint), str(pool.token_1_mint),
                                             pool, ray.decode_amm_config(config), _amount(v0),
                                             _amount(v1), unix))
        for key, data in zip(dlmm_keys, raw[len(cp_keys):], strict=True):
            if data is None:
                continue
            lb = dlmm.decode_lb_pair(data)
            x, y = str(lb.token_x_mint), str(lb.token_y_mint)
            if {x, y} != pair:
                continue
            digest.update(data)
            now = ClusterTime(slot, unix)
            curves.append(DlmmOnchainCurve(x, y, lb, await self._dlmm_quote(key, x, y, now),
                                           await self._dlmm_quote(key, y, x, now)))
        if self._wakeups is not None:
            self._wakeups.watch(watch)
        return PairView.of(curves, slot), digest.digest()

    async def _dlmm_quote(self, pair: Pubkey, mint_in: str, mint_out: str,
                          now: ClusterTime) -> PoolQuote | None:
        """The pair quoted for the direction's largest open amount (halved until the pair
        can fill it), which requotes any smaller amount on the same state."""
        amount = max(1, self._probe_amount(mint_in, mint_out))
        venue = MeteoraDlmmPools(explicit=[pair])
        for _ in range(24):
            found = await venue.quote_pools(self._reader, Pubkey.from_string(mint_in),
                                            Pubkey.from_string(mint_out), amount, now)
            if found:
                return found[0]
            if amount == 1:
                break
            amount = max(1, amount // 2)
        return None
