"""Fault switches for the localnet JSON-RPC server and the local market: real faults, on the wire.

Everything is off by default; a fault is produced at the protocol level (HTTP 429/5xx,
JSON-RPC errors, held responses, transactions dropped or landing late), so nothing in the
engine is mocked. The manual -- ``ORDERFLOW_FAULTS``, ``/admin/faults``, ``/admin/clock``,
every rule and the state document -- is docs/faults.md.

Rooms: :mod:`.config` (the frozen configuration), :mod:`.parser` (strict parsing),
:mod:`.controller` (runtime switches, counters, RNG), :mod:`.send` (the RPC's send rules on
the chain), :mod:`.admin` (the HTTP routes).
"""

from localnet.faults.admin import add_admin_routes, add_clock_routes
from localnet.faults.config import (
    RPC,
    SOLANA_RPC_METHODS,
    VENUE,
    VENUE_ENDPOINTS,
    Delay,
    ErrorRule,
    FaultConfig,
    FaultConfigError,
    Latency,
    SendRule,
    Target,
    Trigger,
)
from localnet.faults.controller import FaultController, Plan, RuleState, VenueFaults, rpc_error_of
from localnet.faults.parser import parse_config, parse_env
from localnet.faults.send import RpcFaults

__all__ = [
    "RPC",
    "SOLANA_RPC_METHODS",
    "VENUE",
    "VENUE_ENDPOINTS",
    "Delay",
    "ErrorRule",
    "FaultConfig",
    "FaultConfigError",
    "FaultController",
    "Latency",
    "Plan",
    "RpcFaults",
    "RuleState",
    "SendRule",
    "Target",
    "Trigger",
    "VenueFaults",
    "add_admin_routes",
    "add_clock_routes",
    "parse_config",
    "parse_env",
    "rpc_error_of",
]
