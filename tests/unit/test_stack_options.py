"""What ``orderflow up`` starts, decided from the settings alone (no process started)."""

from __future__ import annotations

from pathlib import Path

from orderflow.settings import Settings
from orderflow.stack import Stack, StackOptions

PROGRAMS = ("ORDERFLOW_LOCALNET_PROGRAMS",
            "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C=/a.so,"
            "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo=/b.so")


def stack(tmp_path: Path, **env: str) -> Stack:
    settings = Settings.from_env({"ORDERFLOW_DATA_DIR": str(tmp_path), **env})
    return Stack(StackOptions.from_settings(settings), env={})


def test_zero_setup_starts_the_localnet_and_its_market(tmp_path: Path) -> None:
    s = stack(tmp_path)
    assert s.wants_localnet() and not s.options.onchain_market


def test_a_given_rpc_with_onchain_venues_needs_no_localnet(tmp_path: Path) -> None:
    # devnet: ORDERFLOW_SOLANA_RPC_URL given and no venue URL (on-chain venues need none);
    # starting a localnet would replace the given RPC and trade on the wrong cluster
    s = stack(tmp_path, ORDERFLOW_VENUES="onchain", ORDERFLOW_CLUSTER="devnet",
              ORDERFLOW_SOLANA_RPC_URL="https://api.devnet.solana.com")
    assert not s.wants_localnet()
    assert s.rpc_url == "https://api.devnet.solana.com"


def test_a_given_rpc_without_a_venue_url_still_needs_the_local_market(tmp_path: Path) -> None:
    s = stack(tmp_path, ORDERFLOW_SOLANA_RPC_URL="http://127.0.0.1:1")
    assert s.wants_localnet()


def test_both_programs_loaded_make_the_market_on_them(tmp_path: Path) -> None:
    assert stack(tmp_path, ORDERFLOW_LOCALNET_PROGRAMS=PROGRAMS[1]).options.onchain_market
