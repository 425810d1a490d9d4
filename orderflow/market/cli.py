"""``orderflow market configs | create | status``: our own market on the real programs;
``orderflow market create-pool``: a new token and pool on the running local market."""

from __future__ import annotations

import argparse
import asyncio
import json
from fractions import Fraction
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from orderflow.market.chain import Cluster, MarketError
from orderflow.market.configs import write_config_accounts
from orderflow.market.create import (
    MarketPlan,
    create_market,
    market_file,
    pools_file,
    tokens_file,
)
from orderflow.market.launch import add_create_pool, run_create_pool
from orderflow.market.status import market_status
from orderflow.settings import Settings
from pipeline.errors import ConfigError
from pipeline.venues.base import Cluster as ClusterName
from pipeline.wallet import load_keypair

PUBLIC_RPC = {ClusterName.DEVNET: "https://api.devnet.solana.com",
              ClusterName.MAINNET: "https://api.mainnet-beta.solana.com"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="market_command", required=True)
    cfg = sub.add_parser("configs", help="write the CP-Swap AmmConfig and DLMM preset "
                         "accounts a localnet needs (--account files)")
    cfg.add_argument("--out", type=Path, required=True, metavar="DIR")
    for name, text in (("create", "create (or find) a CP-Swap pool and a DLMM pair, seeded"),
                       ("status", "show each pool: program, address, mints, reserves, "
                                  "price, fee")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--cluster", choices=[c.value for c in ClusterName])
        p.add_argument("--rpc-url", help="default: ORDERFLOW_SOLANA_RPC_URL, the localnet "
                       "port, or the cluster's public RPC")
        if name == "create":
            p.add_argument("--keypair", help="payer and owner (default ORDERFLOW_WALLET)")
            p.add_argument("--mint-a", type=Pubkey.from_string,
                           help="token A (X, base); default: a new test mint")
            p.add_argument("--mint-b", type=Pubkey.from_string,
                           help="token B (Y, quote); default: a new test mint")
            p.add_argument("--price", type=Fraction, default=Fraction(150),
                           help="B per A (UI units), default 150")
            p.add_argument("--cp-depth", type=Fraction, default=Fraction(1_000),
                           help="token A in the CP-Swap pool (UI), default 1000")
            p.add_argument("--dlmm-per-bin", type=Fraction, default=Fraction(10),
                           help="token A (or its worth in B) per DLMM bin, default 10")
            p.add_argument("--dlmm-bins", type=int, default=100,
                           help="DLMM bins seeded on each side of the price, default 100")
            p.add_argument("--amm-config", type=Pubkey.from_string,
                           help="CP-Swap AmmConfig (default: index 0)")
            p.add_argument("--preset", type=Pubkey.from_string,
                           help="DLMM preset parameter (default: bin step 10, base 10000)")
    add_create_pool(sub)


def _rpc_url(args: argparse.Namespace, settings: Settings, cluster: ClusterName) -> str:
    if args.rpc_url:
        return str(args.rpc_url)
    if settings.solana_rpc_url:
        return settings.solana_rpc_url
    if cluster is ClusterName.LOCALNET:
        return f"http://{settings.http_host}:{settings.localnet_rpc_port}"
    return PUBLIC_RPC[cluster]


def run_market(args: argparse.Namespace, settings: Settings) -> int:
    if args.market_command == "configs":
        written = write_config_accounts(args.out)
        for address, path in written:
            print(f"--account {address} {path}")
        print("ORDERFLOW_LOCALNET_ACCOUNTS=" + ",".join(f"{a}={p}" for a, p in written))
        return 0
    if args.market_command == "create-pool":
        return run_create_pool(args, settings)
    cluster = ClusterName(args.cluster or settings.cluster)
    return asyncio.run(_run(args, settings, cluster))


async def _run(args: argparse.Namespace, settings: Settings, cluster: ClusterName) -> int:
    wallet = getattr(args, "keypair", None) or settings.wallet
    async with AsyncClient(_rpc_url(args, settings, cluster), timeout=30) as client:
        try:
            if args.market_command == "create":
                if wallet is None:
                    raise ConfigError(message="--keypair (or ORDERFLOW_WALLET) is required")
                plan = MarketPlan(cluster, args.mint_a, args.mint_b, price=args.price,
                                  cp_depth_a=args.cp_depth, dlmm_a_per_bin=args.dlmm_per_bin,
                                  dlmm_bins_each_side=args.dlmm_bins,
                                  amm_config=args.amm_config, preset=args.preset)
                market = await create_market(Cluster(client, load_keypair(wallet)), plan,
                                             settings.data_dir)
                print(json.dumps(market, indent=2))
                print(f"pool list: ORDERFLOW_POOLS=$(cat {pools_file(settings.data_dir, cluster)})"
                      f"\ntokens:    ORDERFLOW_TOKENS=$(cat "
                      f"{tokens_file(settings.data_dir, cluster)})")
            path = market_file(settings.data_dir, cluster)
            if not path.exists():
                raise ConfigError(message=f"no market at {path}: run `orderflow market "
                                          f"create --cluster {cluster.value}` first")
            # status only reads: without a wallet any key will do
            chain = Cluster(client, load_keypair(wallet) if wallet else Keypair())
            for pool in await market_status(chain, json.loads(path.read_text())):
                print(pool.line())
        except MarketError as exc:
            raise ConfigError(message=str(exc)) from None
    return 0

