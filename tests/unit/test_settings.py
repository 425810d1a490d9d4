"""Settings are validated at start with clear messages; the event loop choice applies."""

from __future__ import annotations

import asyncio

import pytest

from orderflow.loops import install
from orderflow.settings import Settings
from pipeline.errors import ConfigError


def test_defaults_and_event_loop_choice() -> None:
    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings.from_env({"ORDERFLOW_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="ORDERFLOW_EVENT_LOOP='trio'"):
        Settings.from_env({"ORDERFLOW_EVENT_LOOP": "trio"})


def test_bad_values_name_their_variable() -> None:
    with pytest.raises(ConfigError, match="ORDERFLOW_COMMITMENT"):
        Settings.from_env({"ORDERFLOW_COMMITMENT": "final"})
    with pytest.raises(ConfigError, match="ORDERFLOW_WALLET"):
        Settings.from_env({"ORDERFLOW_WALLET": "/nonexistent/wallet.json"})


def test_install_sets_the_loop_policy() -> None:
    import uvloop

    before = asyncio.get_event_loop_policy()
    try:
        install("asyncio")
        assert asyncio.get_event_loop_policy() is before
        install("uvloop")
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)
