"""What ``orderflow up`` prints about the venues: what it trades on, never "None"."""

from __future__ import annotations

from pathlib import Path

from orderflow.settings import Settings
from orderflow.stack import Stack, StackOptions
from orderflow.supervisor import venue_lines

POOL = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def lines(tmp_path: Path, **env: str) -> str:
    settings = Settings.from_env({"ORDERFLOW_DATA_DIR": str(tmp_path), **env})
    return "\n".join(venue_lines(settings, Stack(StackOptions.from_settings(settings), env={})))


def test_onchain_venues_on_a_given_cluster_print_the_pools_not_a_venue_url(
        tmp_path: Path) -> None:
    text = lines(tmp_path, ORDERFLOW_VENUES="onchain", ORDERFLOW_CLUSTER="devnet",
                 ORDERFLOW_SOLANA_RPC_URL="https://api.devnet.solana.com",
                 ORDERFLOW_POOLS=f"raydium={POOL}")
    assert "None" not in text and "Venue API" not in text
    assert f"on-chain (devnet): Raydium CP-Swap {POOL}" in text


def test_the_localnet_market_on_the_real_programs_prints_both_pools(tmp_path: Path) -> None:
    settings = Settings.from_env({"ORDERFLOW_DATA_DIR": str(tmp_path)})
    s = Stack(StackOptions.from_settings(settings), env={})
    s.engine_env = {"ORDERFLOW_POOLS": f"raydium={POOL},meteora=PairAddr"}
    s.venue_url = "http://127.0.0.1:9/swap/v1"  # the localnet started
    text = "\n".join(venue_lines(settings, s))
    assert f"Raydium CP-Swap {POOL}, Meteora DLMM PairAddr" in text
    assert "None" not in text


def test_a_venue_api_is_printed_when_the_venues_use_one(tmp_path: Path) -> None:
    text = lines(tmp_path, ORDERFLOW_VENUE_URL="http://127.0.0.1:9/swap/v1",
                 ORDERFLOW_SOLANA_RPC_URL="http://127.0.0.1:8")
    assert text.strip() == "Venue API          http://127.0.0.1:9/swap/v1"
