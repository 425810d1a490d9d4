"""``orderflow up``: the whole system on embedded defaults, stopped cleanly as one.

Starts what is not configured (Tansu broker, embedded PostgreSQL, localnet with
its market, a funded localnet wallet), then the worker and the ingress as child
processes. Every child dies with the supervisor (``PR_SET_PDEATHSIG``) and is
stopped in reverse order on Ctrl-C / SIGTERM, or when any child exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

from orderflow.embedded import EmbeddedProcess, spawn_child, start_broker, start_postgres
from orderflow.settings import Settings, redact
from pipeline.errors import ConfigError
from pipeline.wallet import load_keypair, write_keypair

log = logging.getLogger("orderflow.up")


def _wait_http(url: str, deadline_s: float, what: str, child: EmbeddedProcess) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if child.popen.poll() is not None:
            raise ConfigError(message=f"{what} exited with code {child.popen.returncode}; "
                              f"see {child.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise ConfigError(message=f"{what} did not become ready at {url} within {deadline_s:.0f}s")


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers=headers or {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _local_wallet(settings: Settings) -> tuple[str, Keypair]:
    if settings.wallet is not None:
        return settings.wallet, load_keypair(settings.wallet)
    path = settings.data_dir / "wallet.json"
    if not path.exists():
        write_keypair(path, Keypair())
    return str(path), load_keypair(str(path))


def run_up(settings: Settings) -> int:
    children: list[EmbeddedProcess] = []
    stop_requested = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    env = dict(os.environ)
    try:
        if settings.kafka_bootstrap is None:
            broker = start_broker(None, settings.data_dir)
            children.append(broker)
            settings = settings.replace(kafka_bootstrap=broker.url)
        if settings.database_url is None:
            pg, dsn = start_postgres(settings.data_dir / "postgres")
            children.append(pg)
            settings = settings.replace(database_url=dsn)
        wallet_spec, wallet = _local_wallet(settings)
        settings = settings.replace(wallet=wallet_spec)
        localnet_started = False
        if settings.solana_rpc_url is None or settings.venue_url is None:
            rpc = f"http://{settings.http_host}:{settings.localnet_rpc_port}"
            venue = f"http://{settings.http_host}:{settings.localnet_venue_port}/swap/v1"
            ln = spawn_child("localnet", [sys.executable, "-m", "orderflow.cli", "localnet"],
                             env, logs)
            children.append(ln)
            _wait_http(f"{rpc}/health", 60, "localnet RPC", ln)
            _wait_http(f"{venue}/pools", 60, "local market", ln)
            settings = settings.replace(solana_rpc_url=rpc, venue_url=venue)
            localnet_started = True
            from localnet.admin import auth_headers, read_token  # the faucet needs its token

            funded = _post_json(f"{venue}/faucet", {"owner": str(wallet.pubkey())},
                                auth_headers(read_token(settings.data_dir)))
            log.info("funded localnet wallet %s: %s", wallet.pubkey(), funded)
        child_env = {
            **env,
            "ORDERFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
            "ORDERFLOW_DATABASE_URL": settings.database_url or "",
            "ORDERFLOW_SOLANA_RPC_URL": settings.solana_rpc_url or "",
            "ORDERFLOW_VENUE_URL": settings.venue_url or "",
            "ORDERFLOW_WALLET": settings.wallet or "",
        }
        from sinks.migrate import migrate

        assert settings.database_url
        asyncio.run(migrate(settings.database_url))
        worker = spawn_child("worker", [sys.executable, "-m", "orderflow.cli", "worker"],
                             child_env, logs)
        children.append(worker)
        ingress = spawn_child("ingress", [sys.executable, "-m", "orderflow.cli", "ingress"],
                              child_env, logs)
        children.append(ingress)
        ui = f"http://{settings.http_host}:{settings.http_port}"
        _wait_http(f"{ui}/healthz", 90, "ingress", ingress)
        _print_urls(settings, ui, localnet_started, logs, wallet)
        while not stop_requested:
            for child in children:
                if child.popen is not None and child.popen.poll() is not None:
                    log.error("%s exited with code %s; stopping everything (log: %s)",
                              child.name, child.popen.returncode, child.log_path)
                    stop_requested = True
                    break
            time.sleep(0.2)
        return 0
    except ConfigError as exc:
        log.error("%s", exc.message)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        log.info("stopped %d processes", len(children))


def _print_urls(settings: Settings, ui: str, localnet: bool, logs: Path, wallet: Keypair) -> None:
    lines = [
        "",
        "orderflow is up",
        f"  UI and API         {ui}   (POST {ui}/api/orders/execute, WS {ui}/api/orders/ws)",
        f"  Metrics            {ui}/metrics"
        + (f"   worker http://{settings.http_host}:{settings.worker_metrics_port}/metrics"
           if settings.worker_metrics_port else ""),
        f"  Kafka bootstrap    {settings.kafka_bootstrap}",
        f"  PostgreSQL         {redact(settings.database_url or '')}",
        f"  Solana RPC         {settings.solana_rpc_url}" + ("  (localnet)" if localnet else ""),
        f"  Venue API          {settings.venue_url}" + ("  (local market)" if localnet else ""),
        f"  Wallet             {wallet.pubkey()}",
        f"  Logs               {logs}",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
