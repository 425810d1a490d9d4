"""``orderflow up``: the whole system on embedded defaults, stopped cleanly as one.

Starts what is not configured (the durable embedded broker: Tansu on S3 storage in
SeaweedFS; durable embedded PostgreSQL; localnet with its market, a funded localnet
wallet), then the worker and the ingress as child processes. Every child dies with
the supervisor (``PR_SET_PDEATHSIG``); one that dies on its own is restarted with
back-off; all are stopped in reverse order (ingress first, infrastructure last) on
Ctrl-C / SIGTERM.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

from orderflow.embedded import EmbeddedProcess, spawn_child, start_durable_broker, start_postgres
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


RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Delay before the n-th consecutive restart of a child that died on its own."""
STABLE_S = 60.0  # a child that ran this long before dying starts its back-off afresh
STOP_TIMEOUT_S = {"worker": 20.0, "ingress": 15.0, "postgres": 30.0}
"""SIGTERM (SIGINT for PostgreSQL) then this long before SIGKILL; the worker's own bound
is 15 s (orderflow.worker.STOP_GRACE_S)."""


@dataclass
class _Child:
    """A supervised child: how to start it again (``None``: it cannot be restarted)."""

    name: str
    proc: Any  # EmbeddedProcess, or DurableBroker (the same interface)
    restart: Callable[[], Any] | None
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    due: float | None = None

    def check(self) -> bool:
        """Restart the child if it died and its back-off has passed; False: give up."""
        if self.proc.running():
            return True
        now = time.monotonic()
        if self.due is None:
            if self.restart is None:
                log.error("%s exited with code %s and cannot be restarted; stopping "
                          "everything (log: %s)", self.name, self.proc.returncode,
                          self.proc.log_path)
                return False
            self.failures = 1 if now - self.started >= STABLE_S else self.failures + 1
            delay = RESTART_BACKOFF_S[min(self.failures, len(RESTART_BACKOFF_S)) - 1]
            log.error("%s exited unexpectedly with code %s; restarting it in %.0fs "
                      "(restart %d in a row; log: %s)", self.name, self.proc.returncode,
                      delay, self.failures, self.proc.log_path)
            self.proc.stop()  # reap it and anything left in its process group
            self.due = now + delay
        if now >= self.due and self.restart is not None:
            try:
                self.proc = self.restart()
                log.info("restarted %s (pid %d)", self.name, self.proc.pid)
            except Exception as exc:
                log.error("restarting %s failed: %s", self.name, exc)
            self.started, self.due = time.monotonic(), None
        return True


def run_up(settings: Settings) -> int:
    """Start everything, supervise it, stop it in order on SIGTERM/SIGINT.

    A child that dies on its own is restarted with back-off (worker, ingress, and the
    embedded broker and PostgreSQL on the same port and data); the localnet cannot be
    (its chain lives in memory), so its death stops everything. Stop order: ingress
    (no new orders), worker (drains), localnet, then the infrastructure.
    """
    children: list[_Child] = []
    stop_requested = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        if not stop_requested:
            log.info("%s: stopping", signal.Signals(signum).name)
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    env = dict(os.environ)
    code = 0
    try:
        if settings.kafka_bootstrap is None:
            broker_dir = settings.data_dir / "broker"
            broker = start_durable_broker(None, broker_dir)
            port = broker.port
            children.append(_Child("broker", broker,
                                   lambda: start_durable_broker(port, broker_dir)))
            settings = settings.replace(kafka_bootstrap=broker.url)
        if settings.database_url is None:
            pg_dir = settings.data_dir / "postgres"
            pg, dsn = start_postgres(pg_dir)  # durable
            pg_port = int(dsn.rsplit(":", 1)[1].split("/")[0])
            children.append(_Child("postgres", pg,
                                   lambda: start_postgres(pg_dir, port=pg_port)[0]))
            settings = settings.replace(database_url=dsn)
        wallet_spec, wallet = _local_wallet(settings)
        settings = settings.replace(wallet=wallet_spec)
        localnet_started = False
        if settings.solana_rpc_url is None or settings.venue_url is None:
            rpc = f"http://{settings.http_host}:{settings.localnet_rpc_port}"
            venue = f"http://{settings.http_host}:{settings.localnet_venue_port}/swap/v1"
            ln = spawn_child("localnet", [sys.executable, "-m", "orderflow.cli", "localnet"],
                             env, logs)
            children.append(_Child("localnet", ln, None))
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

        def start(name: str) -> EmbeddedProcess:
            return spawn_child(name, [sys.executable, "-m", "orderflow.cli", name],
                               child_env, logs)
        worker = start("worker")
        children.append(_Child("worker", worker, lambda: start("worker")))
        ingress = start("ingress")
        children.append(_Child("ingress", ingress, lambda: start("ingress")))
        ui = f"http://{settings.http_host}:{settings.http_port}"
        _wait_http(f"{ui}/healthz", 90, "ingress", ingress)
        _print_urls(settings, ui, localnet_started, logs, wallet)
        while not stop_requested:
            if not all(child.check() for child in children):
                code = 1
                break
            time.sleep(0.2)
        return code
    except ConfigError as exc:
        log.error("%s", exc.message)
        return 1
    finally:
        for child in reversed(children):  # ingress, worker, localnet, postgres, broker
            child.proc.stop(STOP_TIMEOUT_S.get(child.name, 10.0))
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
