"""One frozen settings object, built from the environment in ``main()`` and passed down.

Nothing reads the environment at import time. ``None`` for an endpoint means
"the embedded one that ``orderflow up`` starts"; processes that need a concrete
endpoint call :meth:`Settings.require`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ingress.config import IngressConfig
from localnet.config import LocalnetConfig
from pipeline.config import BrokerConfig, ExecutorConfig
from pipeline.errors import ConfigError
from pipeline.guards import PriceLimits
from pipeline.signature_feed import pubsub_url
from pipeline.txbuild import FeePolicy
from pipeline.venue_set import VenueSet
from sinks.status_sink import SinkConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(message=f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(message=f"{name}={value} is outside {lo}..{hi}")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(message=f"{name} must be a {'/'.join(schemes)} URL, got {redact(raw)!r}")
    return raw.rstrip("/")


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated web origins, each ``http(s)://host[:port]`` with no path."""
    out = []
    for item in (env.get(name) or "").split(","):
        origin = item.strip().rstrip("/").lower()
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path \
                or parts.query or parts.fragment:
            raise ConfigError(message=f"{name}: {item.strip()!r} is not an origin "
                              "(http(s)://host[:port])")
        out.append(origin)
    return tuple(out)


def _pairs(env: Mapping[str, str], name: str) -> tuple[tuple[str, Path], ...]:
    """``ADDRESS=PATH,ADDRESS=PATH`` (programs or account files to load into the localnet)."""
    from localnet.config import LocalnetConfigError
    from localnet.preload import parse_pairs

    try:
        return parse_pairs(env.get(name), name)
    except LocalnetConfigError as exc:
        raise ConfigError(message=str(exc)) from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(message=f"{name}={raw!r} is not a switch (true/false, 1/0, on/off)")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(message=f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _fee_policy(env: Mapping[str, str]) -> FeePolicy:
    """The priority fee: a percentile of the recent prioritization fees over the swap's
    writable accounts, clamped (micro-lamports per compute unit)."""
    d = FeePolicy()
    lo = _int(env, "ORDERFLOW_PRIORITY_FEE_MIN_MICROLAMPORTS", d.min_micro_lamports, 0,
              1_000_000_000)
    hi = _int(env, "ORDERFLOW_PRIORITY_FEE_MAX_MICROLAMPORTS", d.max_micro_lamports, 0,
              1_000_000_000)
    if lo > hi:
        raise ConfigError(message=f"ORDERFLOW_PRIORITY_FEE_MIN_MICROLAMPORTS={lo} is above "
                                  f"ORDERFLOW_PRIORITY_FEE_MAX_MICROLAMPORTS={hi}")
    return FeePolicy(percentile=_int(env, "ORDERFLOW_PRIORITY_FEE_PERCENTILE", d.percentile,
                                     0, 100),
                     min_micro_lamports=lo, max_micro_lamports=hi)


def _pools(raw: str) -> tuple[tuple[str, str], ...]:
    """``raydium=ADDR,meteora=ADDR`` (repeat a venue for several pools)."""
    out: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        venue, sep, address = part.partition("=")
        if not sep or venue not in ("raydium", "meteora") or not 32 <= len(address) <= 44:
            raise ConfigError(message=f"ORDERFLOW_POOLS: {part!r} is not venue=ADDRESS "
                                      "(venue raydium or meteora)")
        out.append((venue, address))
    return tuple(out)


def redact(url: str) -> str:
    """A URL with its password replaced, safe to print and log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 3000
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    solana_rpc_url: str | None = None
    venue_url: str | None = None
    wallet: str | None = None  # path to a keypair JSON file, or the JSON byte array itself
    data_dir: Path = REPO_ROOT / ".orderflow"
    ui_dir: Path = REPO_ROOT / "ui"
    orders_partitions: int = 8
    status_partitions: int = 8
    app_id: str = "orderflow"
    rebalance_timeout_s: int = 3
    session_timeout_s: int = 6  # Tansu's group join waits about half of it
    max_in_flight: int = 512
    max_attempts: int = 3
    lease_s: int = 10
    rebroadcast_ms: int = 2000
    failpoints: str | None = None  # test-only crash points, see pipeline/failpoints.py
    confirm_poll_ms: int = 200
    fetch_max_wait_ms: int = 100  # the worker consumer's long-poll (faust hard-codes 1500)
    commitment: str = "confirmed"
    solana_ws_url: str | None = None  # None: the RPC URL's PubSub (ws, port + 1)
    signature_subscriptions: bool = True  # confirm via signatureSubscribe (poll as fallback)
    venues: str = "local-market"  # local-market | jupiter | onchain (see pipeline/venues)
    cluster: str = "localnet"  # localnet | devnet | mainnet
    pools: tuple[tuple[str, str], ...] = ()  # ORDERFLOW_POOLS: raydium=ADDR,meteora=ADDR
    jupiter_api_key: str | None = dataclasses.field(default=None, repr=False)  # never logged
    jupiter_priority_level: str = "veryHigh"  # medium | high | veryHigh (Jupiter v1)
    jupiter_max_priority_lamports: int = 1_000_000  # cap of Jupiter's priority fee per swap
    # Priority fee of the transactions the engine builds itself (ORDERFLOW_VENUES=onchain).
    priority_fee: FeePolicy = dataclasses.field(default_factory=FeePolicy)
    max_price_impact_bps: int = 300  # an order's default price-impact bound (pipeline/guards)
    max_venue_deviation_bps: int = 500  # winning quote vs the other venue
    max_recent_deviation_bps: int = 500  # winning quote vs recent fills (+ the impact bound)
    market_order_ttl_s: int = 60  # a market order without expiresAt expires after this
    worker_metrics_port: int = 0  # 0 = no metrics server
    localnet_rpc_port: int = 8899
    localnet_venue_port: int = 8090
    localnet_slot_ms: int = 400
    localnet_drift_bps: int = 20
    localnet_seed: int | None = None
    localnet_faults: str | None = None  # fault switches, JSON or @file: see docs/faults.md
    localnet_admin_token: str | None = dataclasses.field(default=None, repr=False)  # never logged
    # ADDRESS=PATH,... : --bpf-program / --account of solana-test-validator (localnet.preload)
    localnet_programs: tuple[tuple[str, Path], ...] = ()
    localnet_accounts: tuple[tuple[str, Path], ...] = ()
    localnet_fork_url: str | None = None  # fetch missing accounts from this cluster
    log_level: str = "INFO"
    # Browser origins (scheme://host[:port]) besides the ingress's own that may open its
    # WebSockets and POST to it; see ingress/origin.py.
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        seed = env.get("ORDERFLOW_LOCALNET_SEED")
        wallet = env.get("ORDERFLOW_WALLET") or None
        if wallet is not None and not wallet.lstrip().startswith("["):
            if not Path(wallet).expanduser().is_file():
                raise ConfigError(message=f"ORDERFLOW_WALLET: no keypair file at {wallet}")
        if wallet is not None and wallet.lstrip().startswith("["):
            try:
                raw = json.loads(wallet)
            except ValueError:
                raise ConfigError(message="ORDERFLOW_WALLET is not a JSON byte array") from None
            if not (isinstance(raw, list) and len(raw) == 64):
                raise ConfigError(message="ORDERFLOW_WALLET must hold 64 bytes")
        commitment = env.get("ORDERFLOW_COMMITMENT", "confirmed")
        if commitment not in ("processed", "confirmed", "finalized"):
            raise ConfigError(message=f"ORDERFLOW_COMMITMENT={commitment!r} is not a commitment")
        return cls(
            http_host=env.get("ORDERFLOW_HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "ORDERFLOW_HTTP_PORT", 3000, 0, 65535),
            kafka_bootstrap=env.get("ORDERFLOW_KAFKA_BOOTSTRAP") or None,
            database_url=_url(env, "ORDERFLOW_DATABASE_URL", ("postgresql", "postgres")),
            solana_rpc_url=_url(env, "ORDERFLOW_SOLANA_RPC_URL", ("http", "https")),
            venue_url=_url(env, "ORDERFLOW_VENUE_URL", ("http", "https")),
            wallet=wallet,
            data_dir=Path(env.get("ORDERFLOW_DATA_DIR", str(REPO_ROOT / ".orderflow"))),
            ui_dir=Path(env.get("ORDERFLOW_UI_DIR", str(REPO_ROOT / "ui"))),
            orders_partitions=_int(env, "ORDERFLOW_ORDERS_PARTITIONS", 8, 1, 1024),
            status_partitions=_int(env, "ORDERFLOW_STATUS_PARTITIONS", 8, 1, 1024),
            app_id=env.get("ORDERFLOW_APP_ID", "orderflow"),
            rebalance_timeout_s=_int(env, "ORDERFLOW_REBALANCE_TIMEOUT_S", 3, 1, 600),
            session_timeout_s=_int(env, "ORDERFLOW_SESSION_TIMEOUT_S", 6, 1, 600),
            max_in_flight=_int(env, "ORDERFLOW_MAX_IN_FLIGHT", 512, 1, 100_000),
            max_attempts=_int(env, "ORDERFLOW_MAX_ATTEMPTS", 3, 1, 20),
            lease_s=_int(env, "ORDERFLOW_LEASE_S", 10, 2, 600),
            rebroadcast_ms=_int(env, "ORDERFLOW_REBROADCAST_MS", 2000, 50, 60_000),
            failpoints=env.get("ORDERFLOW_FAILPOINTS") or None,
            confirm_poll_ms=_int(env, "ORDERFLOW_CONFIRM_POLL_MS", 200, 10, 10_000),
            fetch_max_wait_ms=_int(env, "ORDERFLOW_FETCH_MAX_WAIT_MS", 100, 1, 10_000),
            commitment=commitment,
            solana_ws_url=_url(env, "ORDERFLOW_SOLANA_WS_URL", ("ws", "wss")),
            signature_subscriptions=_flag(env, "ORDERFLOW_SIGNATURE_SUBSCRIPTIONS", True),
            venues=_choice(env, "ORDERFLOW_VENUES", "local-market",
                           ("local-market", "jupiter", "onchain")),
            cluster=_choice(env, "ORDERFLOW_CLUSTER", "localnet",
                            ("localnet", "devnet", "mainnet")),
            jupiter_api_key=env.get("ORDERFLOW_JUPITER_API_KEY") or None,
            jupiter_priority_level=_choice(env, "ORDERFLOW_JUPITER_PRIORITY_LEVEL", "veryHigh",
                                           ("medium", "high", "veryHigh")),
            jupiter_max_priority_lamports=_int(env, "ORDERFLOW_JUPITER_MAX_PRIORITY_LAMPORTS",
                                               1_000_000, 0, 100_000_000),
            pools=_pools(env.get("ORDERFLOW_POOLS", "")),
            priority_fee=_fee_policy(env),
            max_price_impact_bps=_int(env, "ORDERFLOW_MAX_PRICE_IMPACT_BPS", 300, 1, 10_000),
            max_venue_deviation_bps=_int(env, "ORDERFLOW_MAX_VENUE_DEVIATION_BPS", 500, 0,
                                         1_000_000),
            max_recent_deviation_bps=_int(env, "ORDERFLOW_MAX_RECENT_DEVIATION_BPS", 500, 0,
                                          1_000_000),
            market_order_ttl_s=_int(env, "ORDERFLOW_MARKET_ORDER_TTL_S", 60, 1, 7 * 86_400),
            worker_metrics_port=_int(env, "ORDERFLOW_WORKER_METRICS_PORT", 0, 0, 65535),
            localnet_rpc_port=_int(env, "ORDERFLOW_LOCALNET_RPC_PORT", 8899, 0, 65535),
            localnet_venue_port=_int(env, "ORDERFLOW_LOCALNET_VENUE_PORT", 8090, 0, 65535),
            localnet_slot_ms=_int(env, "ORDERFLOW_LOCALNET_SLOT_MS", 400, 10, 60_000),
            localnet_drift_bps=_int(env, "ORDERFLOW_LOCALNET_DRIFT_BPS", 20, 0, 5000),
            localnet_seed=int(seed) if seed else None,
            localnet_faults=env.get("ORDERFLOW_FAULTS") or None,
            localnet_admin_token=env.get("ORDERFLOW_LOCALNET_ADMIN_TOKEN") or None,
            localnet_programs=_pairs(env, "ORDERFLOW_LOCALNET_PROGRAMS"),
            localnet_accounts=_pairs(env, "ORDERFLOW_LOCALNET_ACCOUNTS"),
            localnet_fork_url=_url(env, "ORDERFLOW_LOCALNET_FORK_URL", ("http", "https")),
            log_level=env.get("ORDERFLOW_LOG_LEVEL", "INFO").upper(),
            allowed_origins=_origins(env, "ORDERFLOW_ALLOWED_ORIGINS"),
        )

    def require(self, *names: str) -> Settings:
        """Fail with a clear message when a process needs an endpoint that is not set."""
        env_names = {
            "kafka_bootstrap": "ORDERFLOW_KAFKA_BOOTSTRAP",
            "database_url": "ORDERFLOW_DATABASE_URL",
            "solana_rpc_url": "ORDERFLOW_SOLANA_RPC_URL",
            "venue_url": "ORDERFLOW_VENUE_URL",
            "wallet": "ORDERFLOW_WALLET",
        }
        missing = [env_names[n] for n in names if getattr(self, n) is None]
        if missing:
            raise ConfigError(
                message=f"{', '.join(missing)} must be set for this command "
                "(or use `orderflow up`, which starts embedded defaults)"
            )
        return self

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def broker_config(self) -> BrokerConfig:
        """The worker's faust app over the broker (every role)."""
        self.require("kafka_bootstrap")
        assert self.kafka_bootstrap is not None
        return BrokerConfig(
            bootstrap=self.kafka_bootstrap, app_id=self.app_id, data_dir=self.data_dir,
            orders_partitions=self.orders_partitions,
            rebalance_timeout_s=self.rebalance_timeout_s,
            session_timeout_s=self.session_timeout_s, fetch_max_wait_ms=self.fetch_max_wait_ms)

    def executor_config(self) -> ExecutorConfig:
        """The executor role: needs the database, the RPC, the venue and the wallet."""
        needed = ["database_url", "solana_rpc_url", "wallet"]
        if self.venues != "onchain":
            needed.append("venue_url")
        s = self.require(*needed)
        assert s.database_url and s.solana_rpc_url and s.wallet
        ws_url = None
        if s.signature_subscriptions:
            ws_url = s.solana_ws_url or pubsub_url(s.solana_rpc_url)
        return ExecutorConfig(
            database_url=s.database_url, solana_rpc_url=s.solana_rpc_url,
            venue_url=s.venue_url, wallet=s.wallet, venues=s.venues, cluster=s.cluster,
            pools=s.pools, jupiter_api_key=s.jupiter_api_key,
            jupiter_priority_level=s.jupiter_priority_level,
            jupiter_max_priority_lamports=s.jupiter_max_priority_lamports,
            priority_fee=s.priority_fee,
            max_in_flight=s.max_in_flight,
            max_attempts=s.max_attempts, lease_s=s.lease_s, rebroadcast_ms=s.rebroadcast_ms,
            confirm_poll_ms=s.confirm_poll_ms, commitment=s.commitment, solana_ws_url=ws_url,
            failpoints=s.failpoints, max_price_impact_bps=s.max_price_impact_bps,
            max_venue_deviation_bps=s.max_venue_deviation_bps,
            max_recent_deviation_bps=s.max_recent_deviation_bps,
            market_ttl_ms=s.market_order_ttl_s * 1000)

    def sink_config(self) -> SinkConfig:
        """The sinks role: needs the database."""
        self.require("database_url")
        assert self.database_url is not None
        return SinkConfig(database_url=self.database_url)

    def ingress_config(self) -> IngressConfig:
        """What ``orderflow ingress`` runs with; needs the broker and the database."""
        self.require("kafka_bootstrap", "database_url")
        assert self.kafka_bootstrap is not None and self.database_url is not None
        quoting = self.solana_rpc_url is not None and self.wallet is not None and (
            self.venues == "onchain" or self.venue_url is not None)
        return IngressConfig(
            bootstrap=self.kafka_bootstrap, database_url=self.database_url,
            host=self.http_host, port=self.http_port, rpc_url=self.solana_rpc_url,
            ui_dir=self.ui_dir, allowed_origins=self.allowed_origins,
            orders_partitions=self.orders_partitions,
            status_partitions=self.status_partitions, app_id=self.app_id,
            venues=self.venue_set() if quoting else None,
            wallet_address=self.wallet_address(),
            price_limits=PriceLimits(self.max_price_impact_bps, self.max_venue_deviation_bps,
                                     self.max_recent_deviation_bps),
            market_ttl_ms=self.market_order_ttl_s * 1000)

    def venue_set(self) -> VenueSet:
        """The venues the executor trades on (the ingress quotes on the same)."""
        return VenueSet(
            kind=self.venues, venue_url=self.venue_url, cluster=self.cluster, pools=self.pools,
            jupiter_api_key=self.jupiter_api_key,
            jupiter_priority_level=self.jupiter_priority_level,
            jupiter_max_priority_lamports=self.jupiter_max_priority_lamports,
            fees=self.priority_fee)

    def wallet_address(self) -> str | None:
        """The wallet's public address (the ingress shows it; it never holds the key)."""
        if self.wallet is None:
            return None
        from pipeline.wallet import load_keypair

        return str(load_keypair(self.wallet).pubkey())

    def localnet_config(self) -> LocalnetConfig:
        """The localnet's own configuration (it reads nothing of the engine's settings)."""
        return LocalnetConfig(
            host=self.http_host,
            rpc_port=self.localnet_rpc_port,
            venue_port=self.localnet_venue_port,
            slot_ms=self.localnet_slot_ms,
            drift_bps=self.localnet_drift_bps,
            seed=self.localnet_seed,
            faults=self.localnet_faults,
            admin_token=self.localnet_admin_token,
            data_dir=self.data_dir,
            programs=self.localnet_programs,
            accounts=self.localnet_accounts,
            fork_url=self.localnet_fork_url,
        )
