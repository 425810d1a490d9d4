"""What a person sees from the command: its version, help without developer markup, and
one clear line when a port ``up`` needs is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orderflow.cli_help import UP_VARIABLES
from orderflow.embedded import ports
from orderflow.port_check import check_ports
from orderflow.settings import Settings
from pipeline.errors import ConfigError


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orderflow.cli", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)


def test_version_and_help_read_as_written_for_users() -> None:
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("orderflow 0.")
    top = run("--help").stdout
    assert "``" not in top and "keys" in top and "orderflow up" in top
    up = run("up", "--help").stdout
    assert "``" not in up
    for name, _, _ in UP_VARIABLES:
        assert name in up


def test_a_taken_port_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        settings = Settings(http_port=port)
        with pytest.raises(ConfigError) as info:
            check_ports(settings)
        assert info.value.message == f"port {port} is in use; set ORDERFLOW_HTTP_PORT"
        done = run("up", ORDERFLOW_HTTP_PORT=str(port), ORDERFLOW_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"orderflow up: port {port} is in use; set ORDERFLOW_HTTP_PORT"


def test_saved_ports_are_reused_only_while_free(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    ports.save(tmp_path, broker=free, postgres_dsn="postgresql://postgres@127.0.0.1:1/x")
    assert ports.saved_port(tmp_path, "broker", "127.0.0.1") == free
    assert ports.saved_port(tmp_path, "postgres", "127.0.0.1") is None
    assert ports.saved_dsn(tmp_path) == "postgresql://postgres@127.0.0.1:1/x"
    with socket.socket() as held:
        held.bind(("127.0.0.1", free))
        held.listen()
        assert ports.saved_port(tmp_path, "broker", "127.0.0.1") is None
