"""The localnet's own configuration, handed to :func:`localnet.server.serve` by its caller.

The localnet is the simulated outside world and imports nothing of the engine, so it does not
read the engine's settings: the top layer (``orderflow``) builds a :class:`LocalnetConfig`
from its environment and passes it down. A configuration the localnet cannot use raises
:class:`LocalnetConfigError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


class LocalnetConfigError(ValueError):
    """A localnet configuration that cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class LocalnetConfig:
    host: str = "127.0.0.1"
    rpc_port: int = 8899
    venue_port: int = 8090
    pubsub_port: int | None = None  # the PubSub WebSocket; None = rpc_port + 1, as on Solana
    slot_ms: int = 400
    drift_bps: int = 20  # the market's random-walk step; 0 = off
    seed: int | None = None  # of the market's random walk; None = random
    faults: str | None = None  # fault switches, JSON or @file: see docs/faults.md
    admin_token: str | None = dataclasses.field(default=None, repr=False)  # never logged
    data_dir: Path = Path(".orderflow")  # admin token; the chain in data_dir/localnet
    persist: bool = True  # keep the chain in data_dir/localnet and resume it at start
    reset: bool = False  # start from a new genesis (deletes the saved chain)
    fork_url: str | None = None  # fetch missing accounts from this cluster (localnet.fork)
    programs: tuple[tuple[str, Path], ...] = ()  # --bpf-program ADDRESS PATH.so
    accounts: tuple[tuple[str, Path], ...] = ()  # --account ADDRESS PATH.json

    def __post_init__(self) -> None:
        for name in ("rpc_port", "venue_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise LocalnetConfigError(f"{name} must be a port (0-65535)")
        if self.slot_ms <= 0:
            raise LocalnetConfigError("slot_ms must be positive")
        if self.drift_bps < 0:
            raise LocalnetConfigError("drift_bps must not be negative")
        if self.pubsub_port is not None and not 0 <= self.pubsub_port <= 65535:
            raise LocalnetConfigError("pubsub_port must be a port (0-65535)")
        if self.pubsub_port is None and self.rpc_port == 65535:
            raise LocalnetConfigError("rpc_port + 1 (the PubSub WebSocket) must be a port")

    @property
    def ws_port(self) -> int:
        """The PubSub port: ``pubsub_port``, else ``rpc_port + 1`` (0 stays 0: any port)."""
        if self.pubsub_port is not None:
            return self.pubsub_port
        return self.rpc_port + 1 if self.rpc_port else 0
