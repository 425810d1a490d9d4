"""A real multi-process pipeline for reliability tests.

Localnet (LiteSVM JSON-RPC + local market) and any number of ``orderflow worker``
processes in one consumer group, on the session's real broker and PostgreSQL.
Workers can be SIGKILLed and restarted; nothing here is a mock.
"""

from __future__ import annotations

import os
import signal
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.models import TokenAccountOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from localnet.admin import auth_headers, read_token
from orderflow.embedded import EmbeddedProcess
from orderflow.stack import Stack, StackOptions
from pipeline.tokens import SOL, USDC, USDT
from pipeline.topic_admin import create_topics
from pipeline.topics import topic_specs
from pipeline.wallet import write_keypair
from pipeline.wire import ExecuteOrder
from tests.helpers import free_port, wait_until

TERMINAL = ("confirmed", "failed", "expired", "cancelled")


@dataclass
class Cluster:
    broker: str
    database_url: str
    data: Path
    slot_ms: int = 50
    extra_env: dict[str, str] = field(default_factory=dict)
    wallet: Keypair = field(default_factory=Keypair)
    app_id: str = field(default_factory=lambda: f"orderflow-it-{uuid.uuid4().hex[:8]}")
    workers: dict[str, EmbeddedProcess] = field(default_factory=dict)
    localnet: EmbeddedProcess | None = None
    _stack: Stack | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.rpc_port, self.venue_port = free_port(span=2), free_port()
        self.rpc = f"http://127.0.0.1:{self.rpc_port}"
        self.venue_root = f"http://127.0.0.1:{self.venue_port}"
        self.venue = f"{self.venue_root}/swap/v1"
        write_keypair(self.data / "wallet.json", self.wallet)

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "ORDERFLOW_KAFKA_BOOTSTRAP": self.broker,
            "ORDERFLOW_DATABASE_URL": self.database_url,
            "ORDERFLOW_SOLANA_RPC_URL": self.rpc,
            "ORDERFLOW_VENUE_URL": self.venue,
            "ORDERFLOW_WALLET": str(self.data / "wallet.json"),
            "ORDERFLOW_DATA_DIR": str(self.data),
            "ORDERFLOW_APP_ID": self.app_id,
            "ORDERFLOW_LOCALNET_RPC_PORT": str(self.rpc_port),
            "ORDERFLOW_LOCALNET_VENUE_PORT": str(self.venue_port),
            "ORDERFLOW_LOCALNET_SLOT_MS": str(self.slot_ms),
            "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
            "ORDERFLOW_LOCALNET_SEED": "11",
            "ORDERFLOW_CONFIRM_POLL_MS": "50",
            "ORDERFLOW_REBROADCAST_MS": "500",
            "ORDERFLOW_SESSION_TIMEOUT_S": "2",
            "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
            "ORDERFLOW_LEASE_S": "3",
            # Kills and outages hold orders for a while; these tests are about losing and
            # doubling nothing, not expiry (tests/integration/test_order_endings.py is).
            "ORDERFLOW_MARKET_ORDER_TTL_S": "600",
            **self.extra_env,
            **overrides,
        }

    @property
    def stack(self) -> Stack:
        """The stack's pieces on this cluster's broker and database (no ingress)."""
        if self._stack is None:
            self._stack = Stack(StackOptions(
                self.data, bootstrap=self.broker, database_url=self.database_url,
                rpc_port=self.rpc_port, venue_port=self.venue_port,
                wallet=str(self.data / "wallet.json"), workers=(), ingress=False),
                env=self.env())
        return self._stack

    async def start_localnet(self) -> None:
        await create_topics(self.broker, topic_specs(8, 8))
        await self.stack.start_localnet(fund=[str(self.wallet.pubkey())])
        self.localnet = self.stack.localnet

    def localnet_log(self) -> str:
        return self.localnet.log_tail(60) if self.localnet else ""

    def start_worker(self, name: str, *args: str, **env: str) -> EmbeddedProcess:
        proc = self.stack.start_worker(name, *args, env=self.env(**env))
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str) -> None:
        proc = self.workers[name]
        if proc.running():
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(10)

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.stop()
        for proc in [*self.workers.values(), self.localnet]:  # any replaced from outside
            if proc is not None:
                proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(40)}" for n, p in self.workers.items())

    async def produce(self, orders: list[ExecuteOrder], raw: Mapping[str, bytes] | None = None
                      ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.broker, acks="all", linger_ms=5)
        await producer.start()
        try:
            futs = [await producer.send("orders", o.encode(), key=o.order_id.encode())
                    for o in orders]
            for key, value in (raw or {}).items():
                futs.append(await producer.send("orders", value, key=key.encode()))
            for fut in futs:
                await fut
        finally:
            await producer.stop()

    async def wait_terminal(self, order_ids: list[str], timeout: float) -> dict[str, str]:
        """Poll the read model until every order is terminal; return id → status."""
        states: dict[str, str] = {}

        async def done() -> bool:
            if self.workers and not any(w.running() for w in self.workers.values()):
                raise AssertionError(f"every worker has exited\n{self.logs()}")
            async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
                cur = await conn.execute(
                    "SELECT order_id, status FROM orders WHERE order_id = ANY(%s)", (order_ids,))
                states.update({r[0]: r[1] for r in await cur.fetchall()})
            pending = [i for i in order_ids if states.get(i) not in TERMINAL]
            return not pending
        try:
            await wait_until(done, timeout, f"{len(order_ids)} orders to be terminal",
                             interval=0.25)
        except AssertionError as exc:
            stuck = {i: states.get(i) for i in order_ids if states.get(i) not in TERMINAL}
            raise AssertionError(f"{exc}; not terminal: {stuck}\n{self.logs()}") from None
        return states

    async def ledger(self, order_ids: list[str]) -> dict[str, Any]:
        """What the database says happened: orders, events and broadcasts."""
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            cur = await conn.execute(
                "SELECT order_id, status, token_in, token_out, amount_in_actual, amount_out, "
                "tx_signature, attempt, error_code FROM orders WHERE order_id = ANY(%s)",
                (order_ids,))
            orders = {r[0]: {"status": r[1], "tokenIn": r[2], "tokenOut": r[3],
                             "amountIn": int(r[4] or 0), "amountOut": int(r[5] or 0),
                             "signature": r[6], "attempt": r[7], "error": r[8]}
                      for r in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT order_id, signature, outcome FROM broadcasts WHERE order_id = ANY(%s)",
                (order_ids,))
            broadcasts: dict[str, list[tuple[str, str | None]]] = {}
            for oid, sig, outcome in await cur.fetchall():
                broadcasts.setdefault(oid, []).append((sig, outcome))
            cur = await conn.execute(
                "SELECT order_id, status, attempt, data FROM order_events "
                "WHERE order_id = ANY(%s) ORDER BY rank, ts", (order_ids,))
            events: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
            for oid, status, attempt, data in await cur.fetchall():
                events.setdefault(oid, []).append((status, attempt, data))
        return {"orders": orders, "broadcasts": broadcasts, "events": events}

    async def balances(self) -> dict[str, int]:
        owner = self.wallet.pubkey()
        async with AsyncClient(self.rpc) as rpc:
            out = {SOL.mint: (await rpc.get_balance(owner, Commitment("confirmed"))).value}
            for mint in (USDC.mint, USDT.mint):
                resp = await rpc.get_token_accounts_by_owner_json_parsed(
                    owner, TokenAccountOpts(mint=Pubkey.from_string(mint)),
                    Commitment("confirmed"))
                out[mint] = sum(int(a.account.data.parsed["info"]["tokenAmount"]["amount"])
                                for a in resp.value)
        return out

    async def landed_swaps(self, signatures: list[str]) -> dict[str, int]:
        """Fee of every signature the chain has landed (absent ones are left out)."""
        fees: dict[str, int] = {}
        async with AsyncClient(self.rpc) as rpc:
            for sig in signatures:
                tx = await rpc.get_transaction(Signature.from_string(sig), encoding="json",
                                               commitment=Commitment("confirmed"),
                                               max_supported_transaction_version=0)
                if tx.value is not None and tx.value.transaction.meta is not None:
                    fees[sig] = tx.value.transaction.meta.fee
        return fees

    def admin(self, base: str, faults: dict[str, Any] | None) -> Any:
        """Set (or with ``None`` reset) a fault configuration on the localnet or market."""
        method = "DELETE" if faults is None else "POST"
        req = urllib.request.Request(f"{base}/admin/faults", method=method,
                                     data=None if faults is None else orjson.dumps(faults),
                                     headers=auth_headers(read_token(self.data)))
        with urllib.request.urlopen(req, timeout=5) as resp:
            return orjson.loads(resp.read() or b"null")


def reconcile(before: dict[str, int], after: dict[str, int], ledger: dict[str, Any],
              fees: dict[str, int]) -> None:
    """The wallet moved by exactly the confirmed orders' amounts plus the fees of every
    transaction that landed: no swap happened that the ledger does not show."""
    expected = dict.fromkeys(after, 0)
    for order in ledger["orders"].values():
        if order["status"] == "confirmed":
            expected[order["tokenIn"]] -= order["amountIn"]
            expected[order["tokenOut"]] += order["amountOut"]
    expected[SOL.mint] -= sum(fees.values())
    delta = {m: after[m] - before[m] for m in after}
    assert delta == expected, (delta, expected)
