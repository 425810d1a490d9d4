"""The words ``orderflow --help`` shows: for people running it, not for its developers."""

from __future__ import annotations

from importlib import metadata

DESCRIPTION = """\
orderflow executes market, limit and sniper orders on Solana: it quotes Raydium
CP-Swap and Meteora DLMM, picks the best route (or splits between them), sends the
swap and follows it to confirmation. `orderflow up` runs everything on this machine
(a local Solana cluster included) and serves the trading page and the API."""

EPILOG = """\
Start here:
  orderflow up                       everything, then open the printed URL
  orderflow keys create --name bot1 --scope trade
                                     an API key for a bot (needed beyond loopback)
  orderflow <command> --help         what a command does and what it reads

The API is described at /docs and /api/openapi.json on the running ingress."""

UP_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("ORDERFLOW_HTTP_HOST", "127.0.0.1", "address of the page and API; beyond loopback "
     "every API call needs a key"),
    ("ORDERFLOW_HTTP_PORT", "3000", "port of the page and API"),
    ("ORDERFLOW_DATA_DIR", ".orderflow", "chain, broker, database, wallet and logs; "
     "ports are kept here across restarts"),
    ("ORDERFLOW_KAFKA_BOOTSTRAP", "embedded broker", "use this Kafka instead"),
    ("ORDERFLOW_DATABASE_URL", "embedded PostgreSQL", "use this PostgreSQL instead"),
    ("ORDERFLOW_SOLANA_RPC_URL", "localnet", "trade on this cluster instead"),
    ("ORDERFLOW_VENUE_URL", "local market", "Jupiter-shaped swap API"),
    ("ORDERFLOW_VENUES", "local-market", "local-market, jupiter or onchain"),
    ("ORDERFLOW_WALLET", "generated, funded", "keypair file or JSON byte array"),
    ("ORDERFLOW_LOCALNET_RPC_PORT", "8899", "localnet RPC (PubSub on the next port)"),
    ("ORDERFLOW_LOCALNET_VENUE_PORT", "8090", "local market"),
    ("ORDERFLOW_MAX_PRICE_IMPACT_BPS", "300", "refuse a route with more impact"),
    ("ORDERFLOW_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING"),
)


def up_epilog() -> str:
    width = max(len(name) for name, _, _ in UP_VARIABLES)
    lines = ["Environment (unset: the default shown):"]
    for name, default, what in UP_VARIABLES:
        lines.append(f"  {name:<{width}}  {what} [{default}]")
    lines.append("The README lists every variable.")
    return "\n".join(lines)


def version() -> str:
    try:
        return f"orderflow {metadata.version('orderflow')}"
    except metadata.PackageNotFoundError:  # run from a checkout that was not installed
        return "orderflow (not installed)"
