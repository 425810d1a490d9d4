"""Before ``orderflow up`` starts anything: the fixed ports it will listen on must be free,
or it says which one and the variable that moves it, in one line (rather than a child's
traceback in a log file after the rest has started)."""

from __future__ import annotations

from orderflow.embedded.processes import bindable
from orderflow.settings import Settings
from pipeline.errors import ConfigError


def fixed_ports(settings: Settings) -> list[tuple[int, str]]:
    """(port, the variable that sets it) of everything ``up`` binds to a configured port."""
    wanted = [(settings.http_port, "ORDERFLOW_HTTP_PORT")]
    if settings.solana_rpc_url is None or settings.venue_url is None:  # the localnet runs
        wanted += [(settings.localnet_rpc_port, "ORDERFLOW_LOCALNET_RPC_PORT"),
                   (settings.localnet_rpc_port + 1,
                    "ORDERFLOW_LOCALNET_RPC_PORT (its PubSub is the next port)"),
                   (settings.localnet_venue_port, "ORDERFLOW_LOCALNET_VENUE_PORT")]
    return [(port, name) for port, name in wanted if port != 0]


def check_ports(settings: Settings) -> None:
    """:class:`ConfigError` ``port 3000 is in use; set ORDERFLOW_HTTP_PORT`` for the first
    fixed port that is taken."""
    for port, name in fixed_ports(settings):
        if not bindable(settings.http_host, port, reuse_addr=True):
            raise ConfigError(message=f"port {port} is in use; set {name}")
