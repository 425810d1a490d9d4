"""Settings are validated at start with clear messages naming the variable."""

from __future__ import annotations

import pytest

from orderflow.settings import Settings
from pipeline.errors import ConfigError
from pipeline.txbuild import FeePolicy


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.fetch_max_wait_ms, s.confirm_poll_ms, s.max_in_flight) == (100, 200, 512)


def test_bad_values_name_their_variable() -> None:
    with pytest.raises(ConfigError, match="ORDERFLOW_COMMITMENT"):
        Settings.from_env({"ORDERFLOW_COMMITMENT": "final"})
    with pytest.raises(ConfigError, match="ORDERFLOW_WALLET"):
        Settings.from_env({"ORDERFLOW_WALLET": "/nonexistent/wallet.json"})


def test_venues_cluster_and_pools_are_read_and_checked() -> None:
    pools = ("raydium=CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C,"
             " meteora=LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo")
    s = Settings.from_env({"ORDERFLOW_VENUES": "onchain", "ORDERFLOW_CLUSTER": "devnet",
                           "ORDERFLOW_POOLS": pools})
    assert (s.venues, s.cluster) == ("onchain", "devnet")
    assert s.pools == (("raydium", "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"),
                       ("meteora", "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"))
    assert Settings.from_env({}).venues == "local-market"
    for env in ({"ORDERFLOW_VENUES": "uniswap"}, {"ORDERFLOW_CLUSTER": "testnet"},
                {"ORDERFLOW_POOLS": "orca=abc"}):
        with pytest.raises(ConfigError):
            Settings.from_env(env)


def test_onchain_venues_need_no_venue_url() -> None:
    base = {"ORDERFLOW_DATABASE_URL": "postgresql://x@h/db",
            "ORDERFLOW_SOLANA_RPC_URL": "http://127.0.0.1:8899",
            "ORDERFLOW_WALLET": "[" + ",".join(["1"] * 64) + "]"}
    cfg = Settings.from_env({**base, "ORDERFLOW_VENUES": "onchain"}).executor_config()
    assert cfg.venues == "onchain" and cfg.venue_url is None
    with pytest.raises(ConfigError):
        Settings.from_env(base).executor_config()  # the local market needs its URL


def test_signature_subscriptions_default_to_the_rpc_urls_pubsub() -> None:
    base = {"ORDERFLOW_DATABASE_URL": "postgresql://x/y", "ORDERFLOW_WALLET": "[" + ",".join(
        ["1"] * 64) + "]", "ORDERFLOW_SOLANA_RPC_URL": "http://127.0.0.1:8899",
        "ORDERFLOW_VENUES": "onchain"}
    assert Settings.from_env(base).executor_config().solana_ws_url == "ws://127.0.0.1:8900"
    given = {**base, "ORDERFLOW_SOLANA_WS_URL": "wss://ws.example/key"}
    assert Settings.from_env(given).executor_config().solana_ws_url == "wss://ws.example/key"
    for off in ("0", "off", "false"):
        cfg = Settings.from_env({**given, "ORDERFLOW_SIGNATURE_SUBSCRIPTIONS": off})
        assert cfg.executor_config().solana_ws_url is None
    with pytest.raises(ConfigError, match="ORDERFLOW_SIGNATURE_SUBSCRIPTIONS"):
        Settings.from_env({**base, "ORDERFLOW_SIGNATURE_SUBSCRIPTIONS": "maybe"})
    with pytest.raises(ConfigError, match="ORDERFLOW_SOLANA_WS_URL"):
        Settings.from_env({**base, "ORDERFLOW_SOLANA_WS_URL": "http://h:1"})


def test_market_order_ttl_reaches_the_executor_and_the_ingress() -> None:
    base = {"ORDERFLOW_DATABASE_URL": "postgresql://x/y", "ORDERFLOW_WALLET": "[" + ",".join(
        ["1"] * 64) + "]", "ORDERFLOW_SOLANA_RPC_URL": "http://127.0.0.1:8899",
        "ORDERFLOW_VENUES": "onchain", "ORDERFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
    no_wallet = {k: v for k, v in base.items() if k != "ORDERFLOW_WALLET"}  # the ingress's
    assert Settings.from_env(base).executor_config().market_ttl_ms == 60_000
    assert Settings.from_env(no_wallet).ingress_config().market_ttl_ms == 60_000
    ttl = {"ORDERFLOW_MARKET_ORDER_TTL_S": "15"}
    assert Settings.from_env({**base, **ttl}).executor_config().market_ttl_ms == 15_000
    assert Settings.from_env({**no_wallet, **ttl}).ingress_config().market_ttl_ms == 15_000
    for bad in ("0", "-1", "1.5", "forever"):
        with pytest.raises(ConfigError, match="ORDERFLOW_MARKET_ORDER_TTL_S"):
            Settings.from_env({**base, "ORDERFLOW_MARKET_ORDER_TTL_S": bad})


def test_priority_fee_policy_reaches_the_venues_the_engine_builds() -> None:
    base = {"ORDERFLOW_DATABASE_URL": "postgresql://x/y", "ORDERFLOW_WALLET": "[" + ",".join(
        ["1"] * 64) + "]", "ORDERFLOW_SOLANA_RPC_URL": "http://127.0.0.1:8899",
        "ORDERFLOW_VENUES": "onchain"}
    fees = {"ORDERFLOW_PRIORITY_FEE_PERCENTILE": "90",
            "ORDERFLOW_PRIORITY_FEE_MIN_MICROLAMPORTS": "1000",
            "ORDERFLOW_PRIORITY_FEE_MAX_MICROLAMPORTS": "50000"}
    policy = Settings.from_env({**base, **fees}).executor_config().venue_set().fees
    assert (policy.percentile, policy.min_micro_lamports, policy.max_micro_lamports) == (
        90, 1000, 50000)
    assert Settings.from_env(base).executor_config().venue_set().fees == FeePolicy()
    for name, bad in (("ORDERFLOW_PRIORITY_FEE_PERCENTILE", "101"),
                      ("ORDERFLOW_PRIORITY_FEE_MAX_MICROLAMPORTS", "-1"),
                      ("ORDERFLOW_PRIORITY_FEE_MIN_MICROLAMPORTS", "60000")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({**base, **fees, name: bad})
