"""``orderflow up`` on the real programs: when the localnet loads both Raydium CP-Swap and
Meteora DLMM binaries, the market is created as accounts of those programs and the engine
trades it on chain (``ORDERFLOW_VENUES=onchain``).

The localnet gets the admin-created accounts the programs need (:mod:`.configs`) as
``--account`` files; once it answers, a market-maker wallet of its own
(``<data_dir>/market/maker.json``) is funded by the localnet's faucet (real airdrop and
``MintTo`` transactions) and creates a SOL/USDC CP-Swap pool and DLMM pair with
:func:`~orderflow.market.create.create_market`, the code path of devnet and mainnet.
Without both programs nothing here runs and ``up`` is the zero-setup local market.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from orderflow.market.chain import NATIVE_MINT, Cluster, MarketError
from orderflow.market.configs import write_config_accounts
from orderflow.market.create import MarketPlan, create_market
from pipeline.tokens import USDC
from pipeline.venues.base import Cluster as ClusterName
from pipeline.venues.meteora_dlmm import PROGRAM_ID as DLMM_PROGRAM
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM
from pipeline.wallet import load_keypair, write_keypair

LOCAL_PLAN = MarketPlan(
    ClusterName.LOCALNET, mint_a=NATIVE_MINT, mint_b=Pubkey.from_string(USDC.mint),
    price=Fraction(150), cp_depth_a=Fraction(1_000), dlmm_a_per_bin=Fraction(10),
    dlmm_bins_each_side=100)


def programs_loaded(programs: Sequence[tuple[str, Path]]) -> bool:
    """Both programs are among the localnet's ``--bpf-program`` addresses."""
    loaded = {address for address, _ in programs}
    return {str(RAYDIUM_CP_PROGRAM[ClusterName.LOCALNET]), str(DLMM_PROGRAM)} <= loaded


def with_config_accounts(accounts_env: str | None, data_dir: Path) -> str:
    """``ORDERFLOW_LOCALNET_ACCOUNTS`` plus the config accounts (an address the user
    already provides keeps the user's file)."""
    given = [item for item in (accounts_env or "").split(",") if item.strip()]
    have = {item.partition("=")[0].strip() for item in given}
    ours = [f"{a}={p}" for a, p in write_config_accounts(data_dir / "market" / "configs")
            if a not in have]
    return ",".join(given + ours)


def _faucet(venue_url: str, token: str | None, owner: Pubkey, mint: str, amount: int) -> None:
    from localnet.admin import auth_headers

    body = json.dumps({"owner": str(owner), "mint": mint, "amount": str(amount)}).encode()
    request = urllib.request.Request(f"{venue_url}/faucet", body, auth_headers(token))
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            resp.read()
    except OSError as exc:
        raise MarketError(f"the localnet faucet refused to fund the market maker: {exc}"
                          ) from None


def _maker(data_dir: Path) -> Keypair:
    path = data_dir / "market" / "maker.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_keypair(path, Keypair())
    return load_keypair(str(path))


async def localnet_market(rpc_url: str, venue_url: str, data_dir: Path) -> dict[str, str]:
    """Create (or find) the SOL/USDC market on the localnet's programs; the environment
    the engine's workers trade it with."""
    from localnet.admin import read_token

    maker = _maker(data_dir)
    plan = LOCAL_PLAN
    usdc = 2 * int(plan.cp_depth_a * plan.price) * 10**USDC.decimals  # CP-Swap + DLMM side
    _faucet(venue_url, read_token(data_dir), maker.pubkey(), USDC.mint, usdc)
    async with AsyncClient(rpc_url, timeout=30) as client:
        market = await create_market(Cluster(client, maker), plan, data_dir)
    pools = f"raydium={market['raydium']['pool']},meteora={market['meteora']['pair']}"
    return {"ORDERFLOW_VENUES": "onchain", "ORDERFLOW_CLUSTER": "localnet",
            "ORDERFLOW_POOLS": pools}
