"""The one way to start the whole system: broker, PostgreSQL, localnet, workers, ingress.

``orderflow up`` (:mod:`orderflow.supervisor`), the bench's embedded system
(:mod:`orderflow.bench.system`) and the test fixtures (``tests/cluster.py``) all start
it here, with :class:`StackOptions` saying what differs: a durable broker (Tansu on S3
storage, as ``orderflow up`` runs it) or a memory one, or a running broker; PostgreSQL
started (durable) or given, optionally with a fresh database dropped at the end; a
localnet with its market, or a given RPC and venue; which workers; the ingress or not;
the ports.

A :class:`Stack` starts its pieces in order (:meth:`Stack.start`, or piece by piece)
and keeps every child as a :class:`Child` that knows how to start it again:
:meth:`Stack.check` restarts a child that died on its own with back-off (the localnet,
whose chain lives in memory, and a memory broker cannot be: their death is final), and
:meth:`Stack.stop` stops everything in reverse order (ingress, workers, localnet,
PostgreSQL, broker). Children are spawned from the calling thread: call from the main
thread (see :mod:`orderflow.embedded.processes`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from solders.keypair import Keypair

from orderflow.embedded import (
    EmbeddedProcess,
    free_port,
    ports,
    spawn_child,
    start_broker,
    start_durable_broker,
    start_postgres,
)
from orderflow.market.local import localnet_market, programs_loaded, with_config_accounts
from orderflow.settings import Settings
from pipeline.errors import ConfigError
from pipeline.topic_admin import create_topics
from pipeline.topics import topic_specs
from pipeline.wallet import load_keypair, write_keypair

log = logging.getLogger("orderflow.stack")

RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Delay before the n-th consecutive restart of a child that died on its own."""
STABLE_S = 60.0  # a child that ran this long before dying starts its back-off afresh
STOP_TIMEOUT_S = {"worker": 20.0, "ingress": 15.0, "postgres": 30.0}
"""SIGTERM (SIGINT for PostgreSQL) then this long before SIGKILL, by name (``worker-1``
counts as ``worker``); the worker's own bound is 15 s (orderflow.worker.STOP_GRACE_S)."""
CLI = (sys.executable, "-m", "orderflow.cli")


@dataclass
class Child:
    """A child of the stack: how to start it again (``None``: it cannot be restarted)."""

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

    def stop(self) -> None:
        self.proc.stop(STOP_TIMEOUT_S.get(self.name.split("-")[0], 10.0))


@dataclass(frozen=True)
class StackOptions:
    """What to start; a given URL (broker, database, RPC + venue) is used instead."""

    data_dir: Path  # logs/, the generated wallet, the children's ORDERFLOW_DATA_DIR
    host: str = "127.0.0.1"
    bootstrap: str | None = None
    durable_broker: bool = True  # Tansu on S3 (SeaweedFS); False: memory, lost on a stop
    broker_dir: Path | None = None  # default data_dir/broker
    database_url: str | None = None
    postgres_dir: Path | None = None  # default data_dir/postgres
    postgres_database: str = "orderflow"
    fresh_database: str | None = None  # a prefix: create <prefix>_<random>, drop it at stop
    rpc_url: str | None = None  # with venue_url: no localnet
    venue_url: str | None = None
    rpc_port: int | None = None  # localnet ports (None: free ones)
    venue_port: int | None = None
    wallet: str | None = None  # a keypair file or JSON; None: data_dir/wallet.json
    fund_wallet: bool = True  # the localnet funds the wallet at start
    orders_partitions: int = 8
    status_partitions: int = 8
    workers: tuple[str, ...] = ("worker",)
    worker_metrics: bool = False  # a free Prometheus port per worker (else the env's)
    ingress: bool = True
    http_port: int | None = None  # None: a free one
    onchain_market: bool = False  # the localnet loads both programs: trade pools of theirs
    needs_venue_url: bool = True  # False: the venues read the chain (ORDERFLOW_VENUES=onchain)

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> StackOptions:
        """What ``orderflow up`` starts: whatever the settings do not configure."""
        values: dict[str, Any] = dict(
            data_dir=settings.data_dir, host=settings.http_host,
            bootstrap=settings.kafka_bootstrap, database_url=settings.database_url,
            rpc_url=settings.solana_rpc_url, venue_url=settings.venue_url,
            rpc_port=settings.localnet_rpc_port, venue_port=settings.localnet_venue_port,
            wallet=settings.wallet, orders_partitions=settings.orders_partitions,
            status_partitions=settings.status_partitions, http_port=settings.http_port,
            onchain_market=programs_loaded(settings.localnet_programs),
            needs_venue_url=settings.venues != "onchain")
        values.update(changes)
        return cls(**values)


class Stack:
    """The system's processes, started in order and stopped in reverse order."""

    def __init__(self, options: StackOptions, env: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.base_env = dict(os.environ if env is None else env)
        self.logs = options.data_dir / "logs"
        self.children: list[Child] = []
        self.bootstrap = options.bootstrap
        self.database_url = options.database_url
        self.admin_dsn: str | None = None  # the server a fresh database was created on
        self.rpc_url, self.venue_url = options.rpc_url, options.venue_url
        self.rpc_port = options.rpc_port or free_port(options.host, span=2)  # + PubSub
        self.venue_port = options.venue_port or free_port(options.host)
        self.http_port = options.http_port or free_port(options.host)
        self.ingress_url: str | None = None
        self.localnet: EmbeddedProcess | None = None
        self.worker_metrics: list[str] = []
        self.wallet_spec, self.wallet = _wallet(options)
        self.engine_env: dict[str, str] = {}  # venues of the market on the real programs

    # ------------------------------------------------------------------ the whole system

    async def start(self) -> None:
        await self.start_infrastructure()
        await self.start_engine()

    async def start_infrastructure(self) -> None:
        """Broker, PostgreSQL, localnet (whatever is not given), topics and migrations."""
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        if self.bootstrap is None:
            self.start_broker()
        if self.database_url is None or self.options.fresh_database:
            self.start_postgres()
        if self.wants_localnet():
            fund = [str(self.wallet.pubkey())] if self.options.fund_wallet else []
            await self.start_localnet(fund=fund)
            if self.options.onchain_market:
                assert self.rpc_url is not None and self.venue_url is not None
                self.engine_env = await localnet_market(self.rpc_url, self.venue_url,
                                                        self.options.data_dir)
                log.info("market on the real programs: %s", self.engine_env["ORDERFLOW_POOLS"])
        await self.prepare()

    def wants_localnet(self) -> bool:
        """No RPC given, or the venues need a venue API and none is given (a localnet
        brings both); with a given RPC and on-chain venues it would replace that RPC."""
        return self.rpc_url is None or (self.venue_url is None
                                        and self.options.needs_venue_url)

    async def start_engine(self, worker_env: Mapping[str, str] | None = None) -> None:
        """The workers (``worker_env`` added to theirs) and the ingress; returns when the
        ingress is ready and every worker's metrics answer (with ``worker_metrics``)."""
        metrics: list[tuple[str, EmbeddedProcess]] = []
        for name in self.options.workers:
            env = self.child_env(**(worker_env or {}))
            if self.options.worker_metrics:
                port = free_port(self.options.host)
                env["ORDERFLOW_WORKER_METRICS_PORT"] = str(port)
                url = f"http://{self.options.host}:{port}/metrics"
                self.worker_metrics.append(url)
                metrics.append((url, self.start_worker(name, env=env)))
            else:
                self.start_worker(name, env=env)
        if self.options.ingress:
            await self.start_ingress()
        for url, proc in metrics:
            await wait_http(url, 60, proc.name, proc)

    # ------------------------------------------------------------------ pieces

    def start_broker(self) -> str:
        o = self.options
        broker_dir = o.broker_dir or o.data_dir / "broker"
        if o.durable_broker:  # same port as last time in this data dir, when free
            broker: Any = start_durable_broker(
                ports.saved_port(o.data_dir, "broker", o.host), broker_dir, host=o.host)
            port = broker.port
            ports.save(o.data_dir, broker=port)
            self._add("broker", broker,
                      lambda: start_durable_broker(port, broker_dir, host=o.host))
        else:  # memory storage: a restart would come back empty, so there is none
            broker = start_broker(None, broker_dir, host=o.host)
            self._add("broker", broker, None)
        self.bootstrap = str(broker.url)
        return self.bootstrap

    def start_postgres(self) -> str:
        """A durable embedded PostgreSQL, unless a server is given; with
        ``fresh_database`` a new database on it (dropped by :meth:`stop`)."""
        o = self.options
        server = self.database_url
        if server is None:
            pg_dir = o.postgres_dir or o.data_dir / "postgres"
            database = o.postgres_database
            pg, server = start_postgres(pg_dir, host=o.host, database=database,
                                        port=ports.saved_port(o.data_dir, "postgres", o.host))
            port = int(server.rsplit(":", 1)[1].split("/")[0])
            if not o.postgres_dir:  # the data dir's own database: remembered with it
                ports.save(o.data_dir, postgres=port, postgres_dsn=server)
            self._add("postgres", pg,
                      lambda: start_postgres(pg_dir, port=port, host=o.host,
                                             database=database)[0])
        self.database_url = server
        if o.fresh_database:
            self.admin_dsn = server
            self.database_url = _create_database(server, o.fresh_database)
        return self.database_url

    async def start_localnet(self, fund: Sequence[str] = ()) -> None:
        """The localnet and its market; returns once both answer."""
        o = self.options
        self.rpc_url = f"http://{o.host}:{self.rpc_port}"
        self.venue_url = f"http://{o.host}:{self.venue_port}/swap/v1"
        argv = [*CLI, "localnet", *(a for owner in fund for a in ("--fund", owner))]
        env = self.child_env()
        if o.onchain_market:  # the admin-created accounts the programs' pools need
            env["ORDERFLOW_LOCALNET_ACCOUNTS"] = with_config_accounts(
                env.get("ORDERFLOW_LOCALNET_ACCOUNTS"), o.data_dir)

        def start() -> EmbeddedProcess:  # its chain is in data_dir/localnet: a restart resumes
            self.localnet = spawn_child("localnet", argv, env, self.logs)
            return self.localnet
        proc = self._add("localnet", start(), start)
        await wait_http(f"{self.rpc_url}/health", 60, "localnet RPC", proc)
        await wait_http(f"{self.venue_url}/pools", 60, "local market", proc)

    async def prepare(self) -> None:
        """Create the topics and apply the migrations (idempotent)."""
        from sinks.migrate import migrate

        assert self.bootstrap is not None and self.database_url is not None
        o = self.options
        await create_topics(self.bootstrap, topic_specs(o.orders_partitions, o.status_partitions))
        await migrate(self.database_url)

    def start_worker(self, name: str, *args: str,
                     env: Mapping[str, str] | None = None) -> EmbeddedProcess:
        """``orderflow worker ARGS`` as ``name``, restarted by :meth:`check` if it dies."""
        argv = [*CLI, "worker", *args]
        child_env = dict(env) if env is not None else self.child_env()

        def start() -> EmbeddedProcess:
            return spawn_child(name, argv, child_env, self.logs)
        proc = start()
        self._add(name, proc, start)
        return proc

    async def start_ingress(self) -> str:
        env = self.child_env()

        def start() -> EmbeddedProcess:
            return spawn_child("ingress", [*CLI, "ingress"], env, self.logs)
        proc = self._add("ingress", start(), start)
        self.ingress_url = f"http://{self.options.host}:{self.http_port}"
        await wait_http(f"{self.ingress_url}/healthz", 90, "ingress", proc)
        return self.ingress_url

    # ------------------------------------------------------------------ running

    def child_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a child: the base one plus where everything is."""
        known = {
            "ORDERFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "ORDERFLOW_DATABASE_URL": self.database_url,
            "ORDERFLOW_SOLANA_RPC_URL": self.rpc_url,
            "ORDERFLOW_VENUE_URL": self.venue_url,
            "ORDERFLOW_WALLET": self.wallet_spec,
        }
        return {
            **self.base_env,
            **{k: v for k, v in known.items() if v is not None},
            "ORDERFLOW_DATA_DIR": str(self.options.data_dir),
            "ORDERFLOW_HTTP_PORT": str(self.http_port),
            "ORDERFLOW_LOCALNET_RPC_PORT": str(self.rpc_port),
            "ORDERFLOW_LOCALNET_VENUE_PORT": str(self.venue_port),
            **self.engine_env,
            **overrides,
        }

    def _add(self, name: str, proc: Any, restart: Callable[[], Any] | None) -> Any:
        self.children.append(Child(name, proc, restart))
        return proc

    def check(self) -> bool:
        """Restart what died on its own (with back-off); False: a child that cannot be
        restarted is dead, so the system is."""
        return all(child.check() for child in self.children)

    def dead(self) -> list[str]:
        return [f"{c.proc.name} exited with {c.proc.returncode}" for c in self.children
                if not c.proc.running()]

    def processes(self) -> dict[str, int]:
        """pid of every running child, by its process name (``tansu``, ``worker-0``…)."""
        return {c.proc.name: c.proc.pid for c in self.children if c.proc.running()}

    def stop(self) -> None:
        """Stop every child in reverse order; a fresh database is dropped before the
        PostgreSQL it lives on stops."""
        for child in reversed(self.children):
            if child.name == "postgres":
                self._drop_fresh_database()
            child.stop()
        self._drop_fresh_database()
        log.info("stopped %d processes", len(self.children))

    def _drop_fresh_database(self) -> None:
        if self.admin_dsn is None or self.database_url is None:
            return
        admin, self.admin_dsn = self.admin_dsn, None
        try:
            _drop_database(admin, urlsplit(self.database_url).path.lstrip("/"))
        except Exception as exc:
            log.warning("could not drop database %s: %r", self.database_url, exc)


def _create_database(admin_dsn: str, prefix: str) -> str:
    """``CREATE DATABASE <prefix>_<random>`` on the server of ``admin_dsn``; its DSN."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}"))


def _drop_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def _wallet(options: StackOptions) -> tuple[str, Keypair]:
    if options.wallet is not None:
        return options.wallet, load_keypair(options.wallet)
    path = options.data_dir / "wallet.json"
    if not path.exists():
        write_keypair(path, Keypair())
    return str(path), load_keypair(str(path))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status < 400)
    except (urllib.error.URLError, OSError):  # HTTPError (4xx/5xx) included
        return False


async def wait_http(url: str, deadline_s: float, what: str, child: EmbeddedProcess) -> None:
    """Return once ``url`` answers 2xx/3xx; :class:`ConfigError` if ``child`` exits first
    or the deadline passes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not child.running():
            raise ConfigError(message=f"{what} exited with code {child.returncode} "
                              f"(log {child.log_path}):\n{child.log_tail(30)}")
        if await asyncio.to_thread(_http_ok, url):
            return
        await asyncio.sleep(0.1)
    raise ConfigError(message=f"{what} did not become ready at {url} within {deadline_s:.0f}s "
                      f"(log {child.log_path})")
