"""``orderflow market create``: one Raydium CP-Swap pool and one Meteora DLMM pair for a
token pair, seeded, through the programs' own instructions, on any cluster.

Idempotent: what exists is found (the pool and the pair live at PDAs of the mints and
their config/preset; the mints are remembered in the market file) and only what is
missing is created, so a re-run after a failure finishes the job. The result is the
market file (``<data_dir>/market/<cluster>.json``) and the pool list the engine reads
(``<cluster>.pools``, one line: ``ORDERFLOW_POOLS=$(cat FILE)``) with the tokens it
does not know yet (``<cluster>.tokens``: ``ORDERFLOW_TOKENS=$(cat FILE)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexmath import dlmm as dlmm_math
from orderflow.market.chain import NATIVE_MINT, Cluster, MarketError
from pipeline.tokens import token_by_mint
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import meteora_dlmm_admin as dlmm_admin
from pipeline.venues import raydium_cp as ray
from pipeline.venues import raydium_cp_admin as ray_admin
from pipeline.venues.base import Cluster as ClusterName

POSITION_WIDTH = 50  # 200 bps per bin: a uniform distribution with nothing left over


@dataclass(frozen=True, slots=True)
class MarketPlan:
    """What to create; amounts in UI units of token A (X) at ``price`` B per A."""

    cluster: ClusterName
    mint_a: Pubkey | None = None  # None: a new test mint (the payer is its authority)
    mint_b: Pubkey | None = None
    decimals_a: int = 9
    decimals_b: int = 6
    price: Fraction = Fraction(150)
    cp_depth_a: Fraction = Fraction(1_000)
    dlmm_a_per_bin: Fraction = Fraction(10)
    dlmm_bins_each_side: int = 100
    amm_config: Pubkey | None = None  # None: the config of index 0
    preset: Pubkey | None = None  # None: the bin step 10 / base factor 10000 preset


def market_file(data_dir: Path, cluster: ClusterName) -> Path:
    return data_dir / "market" / f"{cluster.value}.json"


def pools_file(data_dir: Path, cluster: ClusterName) -> Path:
    return data_dir / "market" / f"{cluster.value}.pools"


def tokens_file(data_dir: Path, cluster: ClusterName) -> Path:
    return data_dir / "market" / f"{cluster.value}.tokens"


def _raw_price(price: Fraction, decimals_a: int, decimals_b: int) -> Fraction:
    return price * Fraction(10) ** (decimals_b - decimals_a)


async def _mints(chain: Cluster, plan: MarketPlan, saved: dict[str, Any]
                 ) -> tuple[Pubkey, Pubkey]:
    """The plan's mints, else the ones a previous run made, else two new test mints."""
    found: list[Pubkey] = []
    for given, key, decimals in ((plan.mint_a, "mint_a", plan.decimals_a),
                                 (plan.mint_b, "mint_b", plan.decimals_b)):
        if given is not None:
            found.append(given)
        elif key in saved and await chain.exists(Pubkey.from_string(saved[key])):
            found.append(Pubkey.from_string(saved[key]))
        else:
            found.append(await chain.create_mint(decimals))
    return found[0], found[1]


async def _mintable(chain: Cluster, mint: Pubkey) -> bool:
    found = (await chain.accounts([mint]))[0]
    return found is not None and found[1][:4] == b"\x01\0\0\0" and \
        Pubkey(found[1][4:36]) == chain.owner


async def create_cp_pool(chain: Cluster, plan: MarketPlan, mint_a: Pubkey, mint_b: Pubkey,
                         dec_a: int, dec_b: int) -> dict[str, str]:
    """The CP-Swap pool of the pair under the config, created and seeded if missing."""
    program = ray.RAYDIUM_CP_PROGRAM[plan.cluster]
    config_key = plan.amm_config or ray_admin.amm_config_address(program, 0)[0]
    found = (await chain.accounts([config_key]))[0]
    if found is None or found[0] != program:
        raise MarketError(f"no CP-Swap AmmConfig at {config_key} (owned by {program}); "
                          "pass --amm-config, or on a localnet load `orderflow market "
                          "configs` accounts")
    config = ray.decode_amm_config(found[1])
    if config.disable_create_pool:
        raise MarketError(f"AmmConfig {config_key} does not allow new pools")
    token_0, token_1 = ray_admin.sorted_mints(mint_a, mint_b)
    pool = ray.pool_addresses(program, config_key, token_0, token_1).pool
    out = {"program": str(program), "pool": str(pool), "amm_config": str(config_key)}
    if await chain.exists(pool):
        return out
    amount_a = int(plan.cp_depth_a * 10**dec_a)
    amount_b = int(amount_a * _raw_price(plan.price, dec_a, dec_b))
    amounts = {mint_a: amount_a, mint_b: amount_b}
    accounts = {m: await chain.fill(m, amounts[m], mintable=await _mintable(chain, m))
                for m in (token_0, token_1)}
    receiver = ray_admin.CREATE_POOL_FEE_RECEIVER[plan.cluster]
    ix = ray_admin.initialize_instruction(
        program, chain.owner, config_key, token_0, token_1, accounts[token_0],
        accounts[token_1], amounts[token_0], amounts[token_1], 0, receiver)
    await chain.send([ix], cu_limit=600_000, what="CP-Swap initialize")
    return out


async def create_dlmm_pair(chain: Cluster, plan: MarketPlan, mint_a: Pubkey, mint_b: Pubkey,
                           dec_a: int, dec_b: int) -> dict[str, Any]:
    """The DLMM pair of the preset (X = token A), created and seeded if it holds nothing."""
    program = dlmm.PROGRAM_ID
    preset_key = plan.preset or dlmm_admin.preset_parameter_address(10, 10_000, program)
    found = (await chain.accounts([preset_key]))[0]
    if found is None or found[0] != program:
        raise MarketError(f"no DLMM preset parameter at {preset_key}; pass --preset, or on "
                          "a localnet load `orderflow market configs` accounts")
    preset = dlmm_admin.decode_preset_parameter(found[1])
    pair = dlmm_admin.lb_pair_address(preset, preset_key, mint_a, mint_b, program)
    out: dict[str, Any] = {"program": str(program), "pair": str(pair),
                           "preset": str(preset_key)}
    pair_data = (await chain.accounts([pair]))[0]
    if pair_data is None:
        active = dlmm_math.bin_id_for_price(_raw_price(plan.price, dec_a, dec_b),
                                            preset.bin_step)
        ix = dlmm_admin.initialize_lb_pair_instruction(preset, preset_key, mint_a, mint_b,
                                                       active, chain.owner, program)
        await chain.send([ix], what="DLMM initialize_lb_pair")
        pair_data = (await chain.accounts([pair]))[0]
        assert pair_data is not None
    state = dlmm.decode_lb_pair(pair_data[1])
    if await chain.token_amount(state.reserve_x) or await chain.token_amount(state.reserve_y):
        return out  # already seeded
    await _seed_dlmm(chain, plan, pair, state, dec_a, program)
    return out


async def _seed_dlmm(chain: Cluster, plan: MarketPlan, pair: Pubkey, state: dlmm.LbPair,
                     dec_x: int, program: Pubkey) -> None:
    """Positions of ``POSITION_WIDTH`` bins: X above the active bin, Y below (its worth
    at the active price), uniform per bin."""
    active = state.active_id
    per_bin_x = int(plan.dlmm_a_per_bin * 10**dec_x)
    per_bin_y = per_bin_x * dlmm_math.price_from_id(active, state.bin_step) >> 64
    side = plan.dlmm_bins_each_side
    ranges = [(lo, min(POSITION_WIDTH, active - lo))
              for lo in range(active - side, active, POSITION_WIDTH)]
    ranges += [(lo, min(POSITION_WIDTH, active + side + 1 - lo))
               for lo in range(active + 1, active + side + 1, POSITION_WIDTH)]
    mint_x, mint_y = state.token_x_mint, state.token_y_mint
    total_x = sum(w for lo, w in ranges if lo > active) * per_bin_x
    total_y = sum(w for lo, w in ranges if lo < active) * per_bin_y
    ata_x = await chain.fill(mint_x, total_x, mintable=await _mintable(chain, mint_x))
    ata_y = await chain.fill(mint_y, total_y, mintable=await _mintable(chain, mint_y))
    for lower, width in ranges:
        arrays = list(dlmm_admin.position_bin_arrays(lower, width))
        keys = [dlmm.bin_array_pda(pair, i, program) for i in arrays]
        missing = [i for i, f in zip(arrays, await chain.accounts(keys), strict=True)
                   if f is None]
        if missing:
            await chain.send([dlmm_admin.initialize_bin_array_instruction(pair, i, chain.owner,
                                                                          program)
                              for i in missing], what="DLMM initialize_bin_array")
        position = Keypair()
        bins = list(range(lower, lower + width))
        amount_x = per_bin_x * width if lower > active else 0
        amount_y = per_bin_y * width if lower < active else 0
        await chain.send([
            dlmm_admin.initialize_position_instruction(pair, position.pubkey(), chain.owner,
                                                       lower, width, program),
            dlmm_admin.add_liquidity_instruction(
                pair, position.pubkey(), chain.owner, mint_x, mint_y, ata_x, ata_y, amount_x,
                amount_y, dlmm_admin.uniform_shares(bins, active), lower, width, program),
        ], position, cu_limit=1_400_000, what=f"DLMM position {lower}..{lower + width - 1}")


async def create_market(chain: Cluster, plan: MarketPlan, data_dir: Path) -> dict[str, Any]:
    """Create (or find) the whole market and write the market and pool list files."""
    path = market_file(data_dir, plan.cluster)
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    await chain.ensure_sol(2 * 10**9, airdrop=plan.cluster is ClusterName.LOCALNET)
    mint_a, mint_b = await _mints(chain, plan, saved)
    dec_a, dec_b = await chain.mint_decimals(mint_a), await chain.mint_decimals(mint_b)
    if plan.cluster is ClusterName.LOCALNET and NATIVE_MINT in (mint_a, mint_b):
        need = plan.cp_depth_a + plan.dlmm_a_per_bin * plan.dlmm_bins_each_side
        await chain.ensure_sol(int(need * 10**9) + 10 * 10**9, airdrop=True)
    market: dict[str, Any] = {
        "cluster": plan.cluster.value, "mint_a": str(mint_a), "mint_b": str(mint_b),
        "raydium": await create_cp_pool(chain, plan, mint_a, mint_b, dec_a, dec_b),
        "meteora": await create_dlmm_pair(chain, plan, mint_a, mint_b, dec_a, dec_b),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(market, indent=2) + "\n")
    pools_file(data_dir, plan.cluster).write_text(
        f"raydium={market['raydium']['pool']},meteora={market['meteora']['pair']}\n")
    tokens_file(data_dir, plan.cluster).write_text(
        tokens_line(((mint_a, dec_a), (mint_b, dec_b))) + "\n")
    return market


def tokens_line(mints: tuple[tuple[Pubkey, int], ...]) -> str:
    """``ORDERFLOW_TOKENS`` for the market's mints the engine does not know (TESTA, TESTB)."""
    return ",".join(f"TEST{'AB'[i]}={mint}:{decimals}" for i, (mint, decimals)
                    in enumerate(mints) if token_by_mint(str(mint)) is None)
