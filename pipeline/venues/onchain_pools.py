"""The two on-chain venues as :class:`~pipeline.venues.pools.PoolVenue`: Raydium CP-Swap
and Meteora DLMM pools read from the chain and quoted with the programs' exact math
(``pipeline/venues/raydium_cp.py``, ``pipeline/venues/meteora_dlmm.py``, ``dexmath``).

Round trips per quote: Raydium, one ``getMultipleAccounts`` for the pools and one for
their configs and vaults; Meteora, one for the pairs and bitmap extensions and one for
the bin arrays their bitmaps say a swap may walk (a third only when a large order walks
past them). Discovery scans are cached (``PoolDirectory``).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from fractions import Fraction

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from pipeline.accounts import AccountReader
from pipeline.model import Venue
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.meteora.snapshot import chart_bin_arrays, mint_decimals, snapshot
from pipeline.venues.pool_snapshot import Pairs, PoolSnapshot
from pipeline.venues.pools import BuildLeg, ClusterTime, PoolDirectory, PoolQuote

TOKEN_AMOUNT_OFFSET = 64  # SPL Token account: mint 32, owner 32, amount u64
BIN_ARRAYS_PER_QUOTE = 3
# Estimated compute units of one swap instruction, for comparing routes' priority fees
# (the transaction's own limit comes from simulation). CP-Swap's swap_base_input is one
# constant-product step with two transfers; DLMM's swap2 walks bins, and costs more per
# bin array it loads.
CP_SWAP_COMPUTE_UNITS = 60_000
DLMM_SWAP_COMPUTE_UNITS = 90_000
DLMM_COMPUTE_UNITS_PER_BIN_ARRAY = 20_000


def _token_amount(data: bytes | None) -> int:
    if data is None or len(data) < TOKEN_AMOUNT_OFFSET + 8:
        raise ValueError("vault token account is missing")
    return int(struct.unpack_from("<Q", data, TOKEN_AMOUNT_OFFSET)[0])


async def _pools_of(directory: PoolDirectory, reader: AccountReader, pairs: Pairs
                    ) -> list[Pubkey]:
    """Every pool the directory lists for any of ``pairs``, once each."""
    found: list[Pubkey] = []
    for mint_a, mint_b in pairs:
        found += await directory.pools(reader, mint_a, mint_b)
    return list(dict.fromkeys(found))


class RaydiumCpPools:
    venue = Venue.RAYDIUM

    def __init__(self, program: Pubkey, *, explicit: Sequence[Pubkey] = ()) -> None:
        self.program = program
        self._directory = PoolDirectory(program, ray.pool_filters, explicit=explicit)

    async def quote_pools(self, reader: AccountReader, mint_in: Pubkey, mint_out: Pubkey,
                          amount_in: int, now: ClusterTime) -> list[PoolQuote]:
        addresses = await self._directory.pools(reader, mint_in, mint_out)
        states = []
        for address, data in zip(addresses, await reader.accounts(addresses), strict=True):
            if data is None:
                continue
            pool = ray.decode_pool_state(data)
            if {pool.token_0_mint, pool.token_1_mint} == {mint_in, mint_out}:
                states.append((address, pool))
        keys = [k for _, p in states for k in (p.amm_config, p.token_0_vault, p.token_1_vault)]
        extra = await reader.accounts(keys)
        quotes: list[PoolQuote] = []
        for i, (address, pool) in enumerate(states):
            config_data, vault_0, vault_1 = extra[3 * i:3 * i + 3]
            if config_data is None:
                continue
            try:
                state = (pool, ray.decode_amm_config(config_data), _token_amount(vault_0),
                         _token_amount(vault_1))
            except ValueError:
                continue
            found = self._quote(address, state, mint_in, mint_out, amount_in, now)
            if found is not None:
                quotes.append(found)
        return quotes

    async def snapshots(self, reader: AccountReader, pairs: Pairs, now: ClusterTime
                        ) -> list[PoolSnapshot]:
        """Each pool of ``pairs`` as it is now: two ``getMultipleAccounts`` (the pools, then
        their configs and vaults), as a quote reads them."""
        wanted = {frozenset(p) for p in pairs}
        addresses = await _pools_of(self._directory, reader, pairs)
        states: list[tuple[Pubkey, ray.PoolState]] = []
        for address, data in zip(addresses, await reader.accounts(addresses), strict=True):
            with contextlib.suppress(ValueError):
                pool = ray.decode_pool_state(data or b"")
                if frozenset((pool.token_0_mint, pool.token_1_mint)) in wanted:
                    states.append((address, pool))
        extra = await reader.accounts(
            [k for _, p in states for k in (p.amm_config, p.token_0_vault, p.token_1_vault)])
        found: list[PoolSnapshot] = []
        for i, (address, pool) in enumerate(states):
            config, vault_0, vault_1 = extra[3 * i:3 * i + 3]
            with contextlib.suppress(ValueError):
                found.append(ray.snapshot(address, pool, ray.decode_amm_config(config or b""),
                                          _token_amount(vault_0), _token_amount(vault_1)))
        return found

    def _quote(self, address: Pubkey,
               state: tuple[ray.PoolState, ray.AmmConfig, int, int], mint_in: Pubkey,
               mint_out: Pubkey, amount_in: int, now: ClusterTime) -> PoolQuote | None:
        """The pool's quote for ``amount_in`` on the state read; it requotes itself."""
        pool, config, vault_0, vault_1 = state
        zero_for_one = pool.zero_for_one(mint_in)
        try:
            result = ray.quote_swap_base_input(pool, config, vault_0, vault_1, amount_in,
                                               zero_for_one, now=now.unix_timestamp)
        except (ray.PoolNotTradable, ValueError):
            return None
        reserve_in, reserve_out = ray.effective_reserves(pool, vault_0, vault_1)
        if not zero_for_one:
            reserve_in, reserve_out = reserve_out, reserve_in

        def requote(amount: int) -> PoolQuote | None:
            return self._quote(address, state, mint_in, mint_out, amount, now)

        return PoolQuote(
            self.venue, address, mint_in, mint_out, amount_in, result.amount_out,
            result.trade_fee, _cp_impact(amount_in, result.amount_out, result.trade_fee,
                                         reserve_in, reserve_out),
            self._leg(address, pool, amount_in, zero_for_one), requote,
            CP_SWAP_COMPUTE_UNITS)

    def _leg(self, address: Pubkey, pool: ray.PoolState, amount_in: int,
             zero_for_one: bool) -> BuildLeg:
        def build(user: Pubkey, token_in: Pubkey, token_out: Pubkey, min_out: int
                  ) -> Instruction:
            return ray.swap_base_input_instruction(self.program, address, pool, user,
                                                   token_in, token_out, amount_in, min_out,
                                                   zero_for_one)
        return build



def _cp_impact(amount_in: int, amount_out: int, fee: int, reserve_in: int,
               reserve_out: int) -> Fraction:
    """1 - (out / net in) / spot: the price moved by this trade, fees excluded."""
    net_in = amount_in - fee
    if net_in <= 0 or reserve_in == 0 or reserve_out == 0:
        return Fraction(1)
    return max(Fraction(0), 1 - Fraction(amount_out * reserve_in, net_in * reserve_out))


class MeteoraDlmmPools:
    venue = Venue.METEORA

    def __init__(self, program: Pubkey = dlmm.PROGRAM_ID, *,
                 explicit: Sequence[Pubkey] = ()) -> None:
        self.program = program
        self._directory = PoolDirectory(program, dlmm.pool_discovery_filters,
                                        explicit=explicit)

    async def quote_pools(self, reader: AccountReader, mint_in: Pubkey, mint_out: Pubkey,
                          amount_in: int, now: ClusterTime) -> list[PoolQuote]:
        addresses = await self._directory.pools(reader, mint_in, mint_out)
        extensions = [dlmm.bitmap_extension_pda(a, self.program) for a in addresses]
        raw = await reader.accounts([*addresses, *extensions])
        quotes: list[PoolQuote] = []
        for address, data, ext_key, ext_data in zip(addresses, raw[:len(addresses)],
                                                   extensions, raw[len(addresses):],
                                                   strict=True):
            if data is None:
                continue
            pair = dlmm.decode_lb_pair(data)
            if {pair.token_x_mint, pair.token_y_mint} != {mint_in, mint_out}:
                continue
            ext = None if ext_data is None else dlmm.decode_bitmap_extension(ext_data)
            pool = await self._read(reader, address, pair, ext, mint_in, amount_in, now)
            found = None if pool is None else self._quote(
                pool, ext_key if ext else None, mint_in, mint_out, amount_in, now)
            if found is not None:
                quotes.append(found)
        return quotes

    async def snapshots(self, reader: AccountReader, pairs: Pairs, now: ClusterTime
                        ) -> list[PoolSnapshot]:
        """Each pair of ``pairs`` with its bins around the active one: two
        ``getMultipleAccounts`` (the pairs, then their bin arrays and mints)."""
        wanted = {frozenset(p) for p in pairs}
        addresses = await _pools_of(self._directory, reader, pairs)
        read: list[tuple[Pubkey, dlmm.LbPair, list[int]]] = []
        for address, data in zip(addresses, await reader.accounts(addresses), strict=True):
            with contextlib.suppress(ValueError):
                lb = dlmm.decode_lb_pair(data or b"")
                if frozenset((lb.token_x_mint, lb.token_y_mint)) in wanted:
                    read.append((address, lb, chart_bin_arrays(lb)))
        keys = [dlmm.bin_array_pda(a, i, self.program) for a, _, idx in read for i in idx]
        mints = list(dict.fromkeys(m for _, lb, _ in read
                                   for m in (lb.token_x_mint, lb.token_y_mint)))
        raw = await reader.accounts([*keys, *mints])
        decimals = {m: mint_decimals(d) for m, d in zip(mints, raw[len(keys):], strict=True)}
        found: list[PoolSnapshot] = []
        at = 0
        for address, lb, indexes in read:
            arrays: dict[int, dlmm.BinArray] = {}
            for index, data in zip(indexes, raw[at:at + len(indexes)], strict=True):
                if data is not None:
                    with contextlib.suppress(ValueError):
                        arrays[index] = dlmm.decode_bin_array(data)
            at += len(indexes)
            found.append(snapshot(address, lb, arrays, now.unix_timestamp,
                                  (decimals[lb.token_x_mint], decimals[lb.token_y_mint])))
        return found

    def _quote(self, pool: dlmm.DlmmPool, ext_key: Pubkey | None, mint_in: Pubkey,
               mint_out: Pubkey, amount_in: int, now: ClusterTime) -> PoolQuote | None:
        """The pair's quote for ``amount_in`` on the bin arrays read (enough for any amount
        up to the one they were read for); it requotes itself on the same state."""
        try:
            quote = dlmm.quote_exact_in(pool, amount_in, mint_in == pool.pair.token_x_mint,
                                        now=now.unix_timestamp, slot=now.slot)
        except (dlmm.MissingBinArrays, dlmm.UnsupportedPool, dlmm.PoolNotTradable,
                ValueError):
            return None

        def requote(amount: int) -> PoolQuote | None:
            return self._quote(pool, ext_key, mint_in, mint_out, amount, now)

        return PoolQuote(
            self.venue, pool.address, mint_in, mint_out, amount_in, quote.amount_out,
            quote.fee, quote.price_impact,
            self._leg(pool.address, pool.pair, ext_key, quote, amount_in), requote,
            DLMM_SWAP_COMPUTE_UNITS + DLMM_COMPUTE_UNITS_PER_BIN_ARRAY * len(quote.bin_arrays))

    async def _read(self, reader: AccountReader, address: Pubkey, pair: dlmm.LbPair,
                    ext: dlmm.BitmapExtension | None, mint_in: Pubkey, amount_in: int,
                    now: ClusterTime) -> dlmm.DlmmPool | None:
        """The pair with the bin arrays a swap of ``amount_in`` walks (None: it cannot)."""
        swap_for_y = mint_in == pair.token_x_mint
        wanted = dlmm.bin_arrays_for_swap(pair, ext, swap_for_y, BIN_ARRAYS_PER_QUOTE)
        arrays: dict[int, dlmm.BinArray] = {}
        for _ in range(4):  # a large order may walk past the first arrays: fetch more
            keys = [dlmm.bin_array_pda(address, i, self.program) for i in wanted]
            for index, data in zip(wanted, await reader.accounts(keys), strict=True):
                if data is not None:
                    arrays[index] = dlmm.decode_bin_array(data)
            pool = dlmm.DlmmPool(address, pair, arrays, ext)
            try:
                dlmm.quote_exact_in(pool, amount_in, swap_for_y, now=now.unix_timestamp,
                                    slot=now.slot)
                return pool
            except dlmm.MissingBinArrays as missing:
                wanted = [missing.index]
            except (dlmm.UnsupportedPool, dlmm.PoolNotTradable, ValueError):
                return None
        return None

    def _leg(self, address: Pubkey, pair: dlmm.LbPair, ext: Pubkey | None,
             quote: dlmm.SwapQuote, amount_in: int) -> BuildLeg:
        def build(user: Pubkey, token_in: Pubkey, token_out: Pubkey, min_out: int
                  ) -> Instruction:
            accounts = dlmm.Swap2Accounts(address, user, token_in, token_out,
                                          quote.bin_arrays, bitmap_extension=ext)
            return dlmm.swap2_instruction(pair, accounts, amount_in, min_out, self.program)
        return build
