"""What the ingress process needs to know, frozen, built by the top layer (``orderflow/``,
``Settings.ingress_config()``) and handed down: nothing in ``ingress`` reads the
environment or imports the settings object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pipeline.guards import PriceLimits
from pipeline.venue_set import VenueSet
from pipeline.wire_terms import DEFAULT_MARKET_TTL_MS


@dataclass(frozen=True, slots=True)
class IngressConfig:
    """The HTTP/WebSocket ingress: where it listens, what it talks to, and its bounds.

    ``bootstrap`` and ``database_url`` are what :func:`ingress.app.running_ingress`
    connects to; :func:`ingress.app.build_app` (routes on injected ports) reads only
    ``rpc_url``, ``allowed_origins`` and ``ui_dir``.
    """

    bootstrap: str  # Kafka bootstrap servers
    database_url: str = dataclasses.field(repr=False)  # the DSN may hold a password
    host: str = "127.0.0.1"
    port: int = 3000  # 0 = any free port (the bound URL is in RunningIngress.url)
    rpc_url: str | None = None  # Solana JSON-RPC checked by /healthz; None = not checked
    ui_dir: Path | None = None  # the static UI (index.html + assets); None = no UI routes
    # Browser origins besides the ingress's own that may open its WebSockets and POST to
    # it (ingress/origin.py); each normalized ``scheme://host[:port]``.
    allowed_origins: tuple[str, ...] = ()
    # Topics are created (idempotently) at start with these partition counts.
    orders_partitions: int = 8
    status_partitions: int = 8
    app_id: str = "orderflow"  # Kafka client ids are ``<app_id>-ingress[-status]``
    producer_request_timeout_ms: int = 10_000
    db_pool_max: int = 10
    # Keyed submissions hold a connection while their order is produced (the row lock
    # that serializes one key's requests), so they get their own pool and never starve
    # reads.
    idempotency_pool_max: int = 16
    db_pool_timeout_s: float = 5.0
    db_open_timeout_s: float = 10.0
    shutdown_timeout_s: float = 5.0
    purge_interval_s: float = 600.0  # how often expired idempotency keys are deleted
    # GET /api/quote and /api/markets quote on the engine's own venues with its price
    # guards; /api/wallet reads this wallet's balances on ``rpc_url``. None = not served
    # (503). The wallet is its public address only: the ingress never holds the key.
    venues: VenueSet | None = None
    wallet_address: str | None = None
    price_limits: PriceLimits = dataclasses.field(default_factory=PriceLimits)
    # The executor's default expiry of a market order without expiresAt (the pending
    # event the ingress announces states the same expiry the executor will apply).
    market_ttl_ms: int = DEFAULT_MARKET_TTL_MS
