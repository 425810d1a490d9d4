"""``orderflow up``: the whole system on embedded defaults, stopped cleanly as one.

Starts what is not configured (the durable embedded broker: Tansu on S3 storage in
SeaweedFS; durable embedded PostgreSQL; localnet with its market, a funded localnet
wallet), then the worker and the ingress as child processes, all through
:class:`orderflow.stack.Stack`. Every child dies with the supervisor
(``PR_SET_PDEATHSIG``); one that dies on its own is restarted with back-off; all are
stopped in reverse order (ingress first, infrastructure last) on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence

from orderflow.port_check import check_ports
from orderflow.settings import Settings, redact
from orderflow.stack import Stack, StackOptions
from pipeline.errors import ConfigError

log = logging.getLogger("orderflow.up")


def run_up(settings: Settings) -> int:
    """Start everything, supervise it, stop it in order on SIGTERM/SIGINT.

    A child that dies on its own is restarted with back-off (worker, ingress, and the
    embedded broker and PostgreSQL on the same port and data); the localnet cannot be
    (its chain lives in memory), so its death stops everything. Stop order: ingress
    (no new orders), worker (drains), localnet, then the infrastructure.
    """
    try:
        check_ports(settings)
    except ConfigError as exc:
        print(f"orderflow up: {exc.message}", file=sys.stderr, flush=True)
        return 2
    stop_requested = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        if not stop_requested:
            log.info("%s: stopping", signal.Signals(signum).name)
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack: Stack | None = None
    try:
        stack = Stack(StackOptions.from_settings(settings))
        asyncio.run(stack.start())
        _print_urls(settings, stack)
        while not stop_requested:
            if not stack.check():
                return 1
            time.sleep(0.2)
        return 0
    except ConfigError as exc:
        log.error("%s", exc.message)
        return 1
    finally:
        if stack is not None:
            stack.stop()  # ingress, worker, localnet, postgres, broker


VENUE_NAMES = {"raydium": "Raydium CP-Swap", "meteora": "Meteora DLMM"}


def _pools_text(pools: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{VENUE_NAMES.get(v, v)} {addr}" for v, addr in pools)


def venue_lines(settings: Settings, stack: Stack) -> list[str]:
    """What the engine trades on: the venue API, or the programs' pools on chain (there
    is no venue URL then, so printing it said "None")."""
    localnet = stack.localnet is not None
    if stack.engine_env:  # the localnet's market on the real programs
        pools = [(v, a) for v, _, a in (p.partition("=")
                                        for p in stack.engine_env["ORDERFLOW_POOLS"].split(","))]
        return [f"  Venues             on-chain (localnet): {_pools_text(pools)}",
                f"  Local market       {stack.venue_url}  (faucet and pool admin)"]
    if settings.venues == "onchain":
        where = "localnet" if localnet else settings.cluster
        pools_text = _pools_text(settings.pools) or "no pools configured (ORDERFLOW_POOLS)"
        return [f"  Venues             on-chain ({where}): {pools_text}"]
    return [f"  Venue API          {stack.venue_url}" + ("  (local market)" if localnet else "")]


def _print_urls(settings: Settings, stack: Stack) -> None:
    ui = stack.ingress_url
    lines = [
        "",
        "orderflow is up",
        f"  UI and API         {ui}   (POST {ui}/api/orders/execute, WS {ui}/api/orders/ws)",
        f"  Metrics            {ui}/metrics"
        + (f"   worker http://{settings.http_host}:{settings.worker_metrics_port}/metrics"
           if settings.worker_metrics_port else ""),
        f"  Kafka bootstrap    {stack.bootstrap}",
        f"  PostgreSQL         {redact(stack.database_url or '')}",
        f"  Solana RPC         {stack.rpc_url}" + ("  (localnet)" if stack.localnet else ""),
        *venue_lines(settings, stack),
        f"  Wallet             {stack.wallet.pubkey()}",
        f"  Logs               {stack.logs}",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
