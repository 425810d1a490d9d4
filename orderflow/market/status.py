"""``orderflow market status``: each pool of the market as the chain holds it now.

Read with the engine's own decoders (the same bytes the on-chain venues quote from):
the CP-Swap pool's effective reserves (vaults minus accrued protocol/fund/creator fees)
and its config's trade fee; the DLMM pair's reserve vaults, active bin price and base
fee. Prices are token B per token A in UI units.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from solders.pubkey import Pubkey

from dexmath import dlmm as dlmm_math
from orderflow.market.chain import Cluster, MarketError
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray


@dataclass(frozen=True, slots=True)
class PoolStatus:
    venue: str
    program: Pubkey
    address: Pubkey
    mint_a: Pubkey
    mint_b: Pubkey
    reserve_a: int  # base units
    reserve_b: int
    price: Fraction  # B per A, UI units
    fee_bps: Fraction

    def line(self) -> str:
        price = Decimal(self.price.numerator) / Decimal(self.price.denominator)
        fee = Decimal(self.fee_bps.numerator) / Decimal(self.fee_bps.denominator)
        return (f"{self.venue:8} {self.address}  program {self.program}\n"
                f"         mints A {self.mint_a}  B {self.mint_b}\n"
                f"         reserves A {self.reserve_a}  B {self.reserve_b} (base units)  "
                f"price {price:.6f} B/A  fee {fee:.2f} bps")


def _amount(found: tuple[Pubkey, bytes] | None) -> int:
    return 0 if found is None else int(struct.unpack_from("<Q", found[1], 64)[0])


def _decimals(found: tuple[Pubkey, bytes] | None) -> int:
    if found is None:
        raise MarketError("a mint of the market no longer exists")
    return found[1][44]


async def raydium_status(chain: Cluster, address: Pubkey, mint_a: Pubkey) -> PoolStatus:
    found = (await chain.accounts([address]))[0]
    if found is None:
        raise MarketError(f"CP-Swap pool {address} does not exist")
    pool = ray.decode_pool_state(found[1])
    config, v0, v1 = await chain.accounts([pool.amm_config, pool.token_0_vault,
                                           pool.token_1_vault])
    if config is None:
        raise MarketError(f"AmmConfig {pool.amm_config} of pool {address} does not exist")
    r0, r1 = ray.effective_reserves(pool, _amount(v0), _amount(v1))
    d0, d1 = pool.mint_0_decimals, pool.mint_1_decimals
    flip = pool.token_0_mint != mint_a
    ra, rb, da, db = (r1, r0, d1, d0) if flip else (r0, r1, d0, d1)
    price = Fraction(rb, 10**db) / Fraction(ra, 10**da) if ra else Fraction(0)
    fee = Fraction(ray.decode_amm_config(config[1]).trade_fee_rate, 100)
    mints = (pool.token_1_mint, pool.token_0_mint) if flip else (pool.token_0_mint,
                                                                 pool.token_1_mint)
    return PoolStatus("raydium", found[0], address, mints[0], mints[1], ra, rb, price, fee)


async def meteora_status(chain: Cluster, address: Pubkey) -> PoolStatus:
    found = (await chain.accounts([address]))[0]
    if found is None:
        raise MarketError(f"DLMM pair {address} does not exist")
    pair = dlmm.decode_lb_pair(found[1])
    rx, ry, mx, my = await chain.accounts([pair.reserve_x, pair.reserve_y, pair.token_x_mint,
                                           pair.token_y_mint])
    raw = Fraction(dlmm_math.price_from_id(pair.active_id, pair.bin_step), 1 << 64)
    price = raw * Fraction(10) ** (_decimals(mx) - _decimals(my))
    p = pair.parameters
    params = dlmm_math.FeeParams(base_factor=p.base_factor,
                                 base_fee_power_factor=p.base_fee_power_factor)
    fee = Fraction(dlmm_math.base_fee_rate(params, pair.bin_step), 100_000)  # 1e9 -> bps
    return PoolStatus("meteora", found[0], address, pair.token_x_mint, pair.token_y_mint,
                      _amount(rx), _amount(ry), price, fee)


async def market_status(chain: Cluster, market: dict[str, Any]) -> list[PoolStatus]:
    mint_a = Pubkey.from_string(market["mint_a"])
    return [await raydium_status(chain, Pubkey.from_string(market["raydium"]["pool"]), mint_a),
            await meteora_status(chain, Pubkey.from_string(market["meteora"]["pair"]))]
