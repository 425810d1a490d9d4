"""The embedded system the bench starts: :class:`orderflow.stack.Stack` on free ports.

Like ``orderflow up`` but with a memory broker (the bench never kills it), its
database freshly created on a PostgreSQL server (the one kept in
``<data_dir>/bench/postgres``, or ``--database-url``) and dropped at the end,
``--workers`` workers each serving metrics, and with ``--trace`` the workers' venue and
RPC traffic routed through the recording proxies of :mod:`orderflow.bench.trace`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orderflow.bench.trace import EdgeTrace
from orderflow.settings import Settings
from orderflow.stack import Stack, StackOptions

if TYPE_CHECKING:
    from solders.keypair import Keypair

    from orderflow.bench.cli import BenchOptions


@dataclass
class Endpoints:
    bootstrap: str
    ingress_url: str | None
    rpc_url: str | None
    venue_url: str | None
    worker_metrics: tuple[str, ...]
    database_url: str | None = None
    processes: dict[str, int] = field(default_factory=dict)


class EmbeddedStack:
    """The whole system on free ports, started like ``orderflow up`` starts it."""

    def __init__(self, settings: Settings, opts: BenchOptions) -> None:
        from localnet.admin import TOKEN_ENV, new_token

        self.settings = settings
        self.opts = opts
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.root = settings.data_dir / "bench"
        self.run_dir = self.root / f"run-{stamp}-{uuid.uuid4().hex[:4]}"
        os.environ.setdefault(TOKEN_ENV, new_token())  # this localnet's, and faucet()'s
        self.stack = Stack(StackOptions(
            self.run_dir, host=settings.http_host, durable_broker=False,
            database_url=opts.database_url, postgres_dir=self.root / "postgres",
            postgres_database="postgres", fresh_database="orderflow_bench",
            fund_wallet=False, orders_partitions=settings.orders_partitions,
            status_partitions=settings.status_partitions,
            workers=tuple(f"worker-{i}" for i in range(opts.workers)), worker_metrics=True))
        self.trace: EdgeTrace | None = None

    @property
    def wallet(self) -> Keypair:
        return self.stack.wallet

    def worker_log(self, lines: int = 40) -> str:
        first = next((c.proc for c in self.stack.children if c.name.startswith("worker")), None)
        return first.log_tail(lines) if first is not None else ""

    async def start(self) -> Endpoints:
        s = self.stack
        await s.start_infrastructure()
        worker_env: dict[str, str] = {}
        if self.opts.trace:
            assert s.venue_url is not None and s.rpc_url is not None
            self.trace = EdgeTrace(s.venue_url.removesuffix("/swap/v1"), s.rpc_url)
            await self.trace.start(self.settings.http_host)
            # The PubSub stays the localnet's own (the proxy's port + 1 serves nothing):
            # notifications only hint; the status polls they trigger go through the proxy.
            worker_env = {"ORDERFLOW_SOLANA_RPC_URL": self.trace.rpc_url,
                          "ORDERFLOW_VENUE_URL": self.trace.venue_url,
                          "ORDERFLOW_SOLANA_WS_URL": f"ws://{self.settings.http_host}:"
                                                     f"{s.rpc_port + 1}"}
        await s.start_engine(worker_env)
        assert s.bootstrap is not None
        procs = {"bench": os.getpid(), **s.processes()}
        return Endpoints(s.bootstrap, s.ingress_url, s.rpc_url, s.venue_url,
                         tuple(s.worker_metrics), s.database_url, procs)

    def dead_children(self) -> list[str]:
        return self.stack.dead()

    async def stop(self) -> None:
        await asyncio.to_thread(self.stack.stop)
        if self.trace is not None:  # after the workers: they call through it until they stop
            await self.trace.stop()
        if not self.opts.keep_data:
            shutil.rmtree(self.run_dir / "faust", ignore_errors=True)
            for name in self.stack.options.workers:
                shutil.rmtree(self.run_dir / name, ignore_errors=True)
