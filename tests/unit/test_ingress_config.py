"""The ingress gets its own frozen config from the top layer: ``Settings.ingress_config()``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ingress.config import IngressConfig
from orderflow.settings import Settings
from pipeline.errors import ConfigError

ENV = {
    "ORDERFLOW_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
    "ORDERFLOW_DATABASE_URL": "postgresql://app:s3cret@db:5432/orderflow",
    "ORDERFLOW_SOLANA_RPC_URL": "http://rpc:8899",
    "ORDERFLOW_HTTP_HOST": "0.0.0.0",
    "ORDERFLOW_HTTP_PORT": "3100",
    "ORDERFLOW_UI_DIR": "/srv/ui",
    "ORDERFLOW_ALLOWED_ORIGINS": "https://a.example",
    "ORDERFLOW_ORDERS_PARTITIONS": "4",
    "ORDERFLOW_STATUS_PARTITIONS": "2",
    "ORDERFLOW_APP_ID": "of-test",
}


def test_the_ingress_config_carries_what_the_environment_says() -> None:
    config = Settings.from_env(ENV).ingress_config()
    assert config == IngressConfig(
        bootstrap="k1:9092,k2:9092", database_url="postgresql://app:s3cret@db:5432/orderflow",
        host="0.0.0.0", port=3100, rpc_url="http://rpc:8899", ui_dir=Path("/srv/ui"),
        allowed_origins=("https://a.example",), orders_partitions=4, status_partitions=2,
        app_id="of-test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert "s3cret" not in repr(config)


def test_the_ingress_needs_a_broker_and_a_database() -> None:
    for missing in ("ORDERFLOW_KAFKA_BOOTSTRAP", "ORDERFLOW_DATABASE_URL"):
        env = {k: v for k, v in ENV.items() if k != missing}
        with pytest.raises(ConfigError, match=missing):
            Settings.from_env(env).ingress_config()


def test_without_rpc_the_health_check_skips_it() -> None:
    env = {k: v for k, v in ENV.items() if k != "ORDERFLOW_SOLANA_RPC_URL"}
    assert Settings.from_env(env).ingress_config().rpc_url is None
