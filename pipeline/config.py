"""What a worker process needs to know, frozen, built by the top layer (``orderflow/``)
from its settings and handed down: nothing below ``orderflow`` reads the environment or
imports the settings object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.txbuild import FeePolicy

if TYPE_CHECKING:
    from pipeline.venue_set import VenueSet


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """The faust app over Kafka: shared by every role of a worker."""

    bootstrap: str
    app_id: str = "orderflow"
    data_dir: Path = Path(".orderflow")
    orders_partitions: int = 8
    rebalance_timeout_s: int = 3
    session_timeout_s: int = 6  # Tansu's group join waits about half of it
    fetch_max_wait_ms: int = 100  # the worker consumer's long-poll (faust hard-codes 1500)

    def faust_settings(self, *, produce_timeout_s: float) -> dict[str, Any]:
        return {
            "broker": [f"kafka://{h.strip()}" for h in self.bootstrap.split(",")],
            "store": "memory://",
            "key_serializer": "raw",
            "value_serializer": "raw",
            "topic_partitions": self.orders_partitions,
            "topic_allow_declare": False,
            "topic_disable_leader": True,
            "datadir": str(self.data_dir / "faust"),
            "processing_guarantee": "at_least_once",
            "broker_rebalance_timeout": self.rebalance_timeout_s,
            "broker_session_timeout": self.session_timeout_s,
            "broker_heartbeat_interval": max(0.3, self.session_timeout_s / 6),
            "broker_commit_interval": 0.5,
            "producer_acks": -1,
            "producer_linger_ms": 1,
            # faust waits 20 minutes for a produce by default; an order's status must not.
            "producer_request_timeout": produce_timeout_s,
            "consumer_auto_offset_reset": "earliest",
            "stream_buffer_maxsize": 4096,
            "web_enabled": False,
            "table_cleanup_interval": 3600.0,
        }


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """The executor role: where it trades, with which wallet, and its bounds."""

    database_url: str
    solana_rpc_url: str
    venue_url: str | None  # the Jupiter-shaped API (local market or Jupiter); unused on-chain
    wallet: str  # path to a keypair JSON file, or the JSON byte array itself
    venues: str = "local-market"  # local-market | jupiter | onchain
    cluster: str = "localnet"  # localnet | devnet | mainnet: picks the programs' ids
    pools: tuple[tuple[str, str], ...] = ()  # (venue, pool address): skip program scans
    jupiter_api_key: str | None = None  # x-api-key (Jupiter's portal); never in repr or logs
    jupiter_priority_level: str = "veryHigh"  # Jupiter v1 priorityLevelWithMaxLamports
    jupiter_max_priority_lamports: int = 1_000_000
    # Priority fee and compute limit of the transactions the engine builds (onchain).
    priority_fee: FeePolicy = field(default_factory=FeePolicy)
    max_in_flight: int = 512
    max_attempts: int = 3
    lease_s: int = 10
    rebroadcast_ms: int = 2000
    confirm_poll_ms: int = 200
    commitment: str = "confirmed"
    # Confirm through signatureSubscribe on this PubSub URL (the poll stays the judge and
    # the fallback: pipeline/signature_feed.py); None = poll only.
    solana_ws_url: str | None = None
    failpoints: str | None = None  # test-only crash points, see pipeline/failpoints.py
    max_price_impact_bps: int = 300
    max_venue_deviation_bps: int = 500
    max_recent_deviation_bps: int = 500
    # A market order without expiresAt expires this long after its submission
    # (ORDERFLOW_MARKET_ORDER_TTL_S): an order reached later ends expired, never trades.
    market_ttl_ms: int = 60_000

    def venue_set(self) -> VenueSet:
        """The venues this executor trades on (the ingress quotes on the same ones)."""
        from pipeline.venue_set import VenueSet  # venue clients: only where venues are built

        return VenueSet(kind=self.venues, venue_url=self.venue_url, cluster=self.cluster,
                        pools=self.pools, jupiter_api_key=self.jupiter_api_key,
                        jupiter_priority_level=self.jupiter_priority_level,
                        jupiter_max_priority_lamports=self.jupiter_max_priority_lamports,
                        fees=self.priority_fee)

    def __repr__(self) -> str:  # the wallet may be the key itself: never in a log line
        return (f"ExecutorConfig(rpc={self.solana_rpc_url!r}, venue={self.venue_url!r}, "
                f"max_in_flight={self.max_in_flight})")
