"""The ``bench`` subcommand: its options and its entry point."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from orderflow.bench.specs import CEILINGS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options (called by ``orderflow.cli``)."""
    p.add_argument("--orders", type=int, default=1000, help="orders to submit (default 1000)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="orders per second over all paths; 0 = as fast as possible")
    p.add_argument("--via", choices=("http", "kafka", "both"), default="both",
                   help="submit through the ingress HTTP API, Kafka producers, or both")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--limit-orders", type=int, metavar="N",
                   help="instead: the trigger engine with N open limit orders, priced by real "
                   "trades on a local market (orderflow/bench/triggers.py)")
    g = p.add_argument_group("system under test (default: start an embedded one)")
    g.add_argument("--bootstrap", help="Kafka bootstrap of a running system (status stream, "
                   "--via kafka)")
    g.add_argument("--ingress-url", help="ingress base URL of a running system (--via http)")
    g.add_argument("--rpc-url", help="its Solana JSON-RPC (for the chain/flow ceilings)")
    g.add_argument("--venue-url", help="its venue, e.g. http://h:8090/swap/v1 (flow ceiling, "
                   "--fund)")
    g.add_argument("--worker-metrics", action="append", default=[], metavar="URL",
                   help="a worker's /metrics URL (repeat per worker)")
    g.add_argument("--fund", metavar="PUBKEY",
                   help="fund this wallet from the localnet faucet for the orders first")
    g.add_argument("--group", help="the workers' consumer group, to count them "
                   "(default ORDERFLOW_APP_ID)")
    g.add_argument("--workers", type=int, default=1, help="embedded: worker processes")
    g.add_argument("--database-url", help="embedded: a PostgreSQL server (admin DSN) to use "
                   "instead of starting one; a fresh database is created there and dropped")
    g.add_argument("--trace", action="store_true",
                   help="embedded: route the worker's venue/RPC calls through a recording "
                   "proxy to measure the engine's own overhead per order")
    g.add_argument("--keep-data", action="store_true", help="embedded: keep the run directory")
    t = p.add_argument_group("load")
    t.add_argument("--http-concurrency", type=int, default=64,
                   help="HTTP requests in flight at most (default 64)")
    t.add_argument("--warmup", type=int, default=4,
                   help="orders per path confirmed before measuring (default 4)")
    t.add_argument("--slippage-bps", type=int, default=300)
    t.add_argument("--timeout", type=float, default=600.0,
                   help="seconds to wait for every order to be terminal (default 600)")
    c = p.add_argument_group("ceilings and profiling")
    c.add_argument("--ceilings", default=",".join(CEILINGS),
                   help=f"which to measure, comma-separated from {','.join(CEILINGS)}, "
                   "or 'none'")
    c.add_argument("--ceiling-seconds", type=float, default=10.0,
                   help="duration of the chain and flow ceilings (default 10)")
    c.add_argument("--chain-senders", type=int, default=64)
    c.add_argument("--chain-batch", type=int, default=1,
                   help="transactions per JSON-RPC request in the chain ceiling (default 1, "
                   "as the engine sends)")
    c.add_argument("--flow-concurrency", type=int, default=1024)
    c.add_argument("--broker-messages", type=int, default=50_000)
    c.add_argument("--profile", type=Path, metavar="DIR",
                   help="record py-spy profiles of the embedded processes during the load")


@dataclass(frozen=True)
class BenchOptions:
    orders: int = 1000
    rate: float = 0.0
    via: str = "both"
    out: Path | None = None
    bootstrap: str | None = None
    ingress_url: str | None = None
    rpc_url: str | None = None
    venue_url: str | None = None
    worker_metrics: tuple[str, ...] = ()
    fund: str | None = None
    group: str | None = None
    workers: int = 1
    database_url: str | None = None
    trace: bool = False
    keep_data: bool = False
    http_concurrency: int = 64
    warmup: int = 4
    slippage_bps: int = 300
    timeout: float = 600.0
    ceilings: frozenset[str] = frozenset(CEILINGS)
    ceiling_seconds: float = 10.0
    chain_senders: int = 64
    chain_batch: int = 1
    flow_concurrency: int = 1024
    broker_messages: int = 50_000
    profile: Path | None = None

    @property
    def embedded(self) -> bool:
        return self.bootstrap is None

    @property
    def paths(self) -> tuple[str, ...]:
        return ("http", "kafka") if self.via == "both" else (self.via,)

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> BenchOptions:
        from pipeline.errors import ConfigError

        names = {c.strip() for c in str(a.ceilings).split(",") if c.strip()}
        if names == {"none"}:
            names = set()
        unknown = names - set(CEILINGS)
        if unknown:
            raise ConfigError(message=f"--ceilings: unknown {sorted(unknown)}; "
                              f"choose from {','.join(CEILINGS)} or none")
        opts = cls(
            orders=a.orders, rate=a.rate, via=a.via, out=a.out, bootstrap=a.bootstrap,
            ingress_url=a.ingress_url.rstrip("/") if a.ingress_url else None,
            rpc_url=a.rpc_url, venue_url=a.venue_url.rstrip("/") if a.venue_url else None,
            worker_metrics=tuple(a.worker_metrics), fund=a.fund, group=a.group,
            workers=a.workers, database_url=a.database_url, trace=a.trace,
            keep_data=a.keep_data, http_concurrency=a.http_concurrency, warmup=a.warmup,
            slippage_bps=a.slippage_bps, timeout=a.timeout, ceilings=frozenset(names),
            ceiling_seconds=a.ceiling_seconds, chain_senders=a.chain_senders,
            chain_batch=a.chain_batch,
            flow_concurrency=a.flow_concurrency, broker_messages=a.broker_messages,
            profile=a.profile)
        if opts.orders < 1 or opts.rate < 0 or opts.workers < 1 or opts.http_concurrency < 1:
            raise ConfigError(message="--orders, --workers, --http-concurrency must be >= 1 "
                              "and --rate >= 0")
        if not opts.embedded:
            if "http" in opts.paths and not opts.ingress_url:
                raise ConfigError(message="--via http/both against a running system needs "
                                  "--ingress-url")
            if opts.trace or opts.profile:
                raise ConfigError(message="--trace and --profile need the embedded system "
                                  "(no --bootstrap)")
        elif opts.ingress_url:
            raise ConfigError(message="--ingress-url needs --bootstrap (the system's broker)")
        return opts
