"""Submitting the load: HTTP and Kafka paths, paced or at once; funding the wallet."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orderflow.bench.http import RpcCallError, faucet, post_json
from orderflow.bench.specs import LAMPORTS_PER_SOL, OrderSpec, funds_needed
from pipeline.tokens import SOL, USDC

if TYPE_CHECKING:
    import aiohttp

    from orderflow.bench.cli import BenchOptions


async def fund_for(session: aiohttp.ClientSession, venue: str, owner: str,
                   specs: Sequence[OrderSpec]) -> None:
    """The faucet's default grant (100 SOL, 100k of each token), topped up for large runs."""
    await faucet(session, venue, owner)
    lamports, usdc = funds_needed(specs)
    extra_sol = lamports - 100 * LAMPORTS_PER_SOL
    if extra_sol > 0:
        await faucet(session, venue, owner, SOL.mint, extra_sol)
    extra_usdc = usdc - 100_000 * 10**6
    if extra_usdc > 0:
        await faucet(session, venue, owner, USDC.mint, extra_usdc)

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
