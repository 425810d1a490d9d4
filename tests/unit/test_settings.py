"""Settings are validated at start with clear messages naming the variable."""

from __future__ import annotations

import pytest

from orderflow.settings import Settings
from pipeline.errors import ConfigError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.fetch_max_wait_ms, s.confirm_poll_ms, s.max_in_flight) == (100, 200, 512)


def test_bad_values_name_their_variable() -> None:
    with pytest.raises(ConfigError, match="ORDERFLOW_COMMITMENT"):
        Settings.from_env({"ORDERFLOW_COMMITMENT": "final"})
    with pytest.raises(ConfigError, match="ORDERFLOW_WALLET"):
        Settings.from_env({"ORDERFLOW_WALLET": "/nonexistent/wallet.json"})
