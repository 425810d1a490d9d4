"""How the soak gets orders accepted: over HTTP (``Idempotency-Key``) and straight onto Kafka.

An order is *accepted* once it got a 202 or its Kafka produce was acknowledged. Until then
it is retried (same key, same orderId) through kills of the ingress, the broker or
PostgreSQL, up to a deadline; an order never accepted is reported apart, not as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

import aiohttp
import psycopg
from aiokafka import AIOKafkaProducer

from pipeline.tokens import SOL, USDC, USDT
from pipeline.wire import ExecuteOrder
from tests.helpers import wait_until
from tests.soak_mix import Market
from tests.soak_stack import Stack

log = logging.getLogger("tests.soak")

PAIRS = [(SOL.mint, USDC.mint, 100_000_000), (USDC.mint, SOL.mint, 7_000_000),
         (SOL.mint, USDT.mint, 50_000_000)]
RETRY_S = 0.2  # back-off between attempts to get one order accepted


class Refused(Exception):
    """The ingress refused the order for good (4xx other than 409)."""


class Submitter:
    """Gets orders accepted, over HTTP or Kafka, retrying each until accepted or its deadline."""

    def __init__(self, stack: Stack, accept_timeout: float) -> None:
        self.stack = stack
        self.accept_timeout = accept_timeout
        self.accepted: dict[str, str] = {}  # orderId -> "http" | "kafka"
        self.never: list[dict[str, Any]] = []
        self.known: set[str] = set()  # ids seen but never accepted
        self.retries = 0
        self.producer: AIOKafkaProducer | None = None
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Submitter:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.stack.c.broker, acks="all",
                                         linger_ms=5, request_timeout_ms=5000)
        await self.producer.start()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.producer is not None and self.session is not None
        await self.session.close()
        await self.producer.stop()

    async def _until_accepted(self, attempt: Any, what: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.accept_timeout
        error = ""
        while time.monotonic() < deadline:
            try:
                done, error = await attempt()
            except Refused as exc:
                self.never.append({**what, "refused": str(exc)[:200]})
                return
            except Exception as exc:  # the component is down or restarting: try again
                done, error = False, f"{type(exc).__name__}: {exc}"
            if done:
                return
            self.retries += 1
            await asyncio.sleep(RETRY_S)
        self.never.append({**what, "lastError": error[:200]})

    async def kafka(self, order: ExecuteOrder) -> str | None:
        """The order's id once accepted; None if it never was."""
        assert self.producer is not None

        async def attempt() -> tuple[bool, str]:
            assert self.producer is not None
            await self.producer.send_and_wait("orders", order.encode(),
                                              key=order.order_id.encode())
            self.accepted[order.order_id] = "kafka"
            return True, ""
        self.known.add(order.order_id)
        await self._until_accepted(attempt, {"via": "kafka", "orderId": order.order_id})
        return order.order_id if order.order_id in self.accepted else None

    async def http(self, key: str, body: dict[str, Any]) -> str | None:
        """The order's id once accepted; None if it never was."""
        url = f"{self.stack.http}/api/orders/execute"
        accepted: list[str] = []

        async def attempt() -> tuple[bool, str]:
            assert self.session is not None
            async with self.session.post(url, json=body,
                                         headers={"Idempotency-Key": key}) as resp:
                answer = await resp.json(content_type=None)
                if resp.status == 202:
                    self.accepted[answer["orderId"]] = "http"
                    accepted.append(answer["orderId"])
                    return True, ""
                if isinstance(answer, dict) and answer.get("orderId"):
                    self.known.add(answer["orderId"])
                if resp.status in (409,) or resp.status >= 500:
                    return False, f"{resp.status} {answer}"
                raise Refused(f"{resp.status} {answer}")
        await self._until_accepted(attempt, {"via": "http", "idempotencyKey": key})
        return accepted[0] if accepted else None


async def submit_all(sub: Submitter, args: argparse.Namespace, tag: str, market: Market
                     ) -> None:
    """Submit ``args.orders`` orders of the mix; the trader lifts SOL halfway and at the end
    (limit_move orders), the sniper tokens launch once their orders wait, and each
    limit_cancel order is cancelled as soon as it is accepted."""
    gate = asyncio.Semaphore(128)
    tasks, events = [], []

    async def one(i: int) -> None:
        async with gate:
            plan = await market.plan(i, PAIRS[i % len(PAIRS)])
            if market.rng.random() < args.http_share:
                order_id = await sub.http(f"{tag}-{i}", plan.http_body())
            else:
                order_id = await sub.kafka(plan.command(f"{tag}-{i:05d}", "kafka"))
        if order_id is not None:
            market.plans[order_id] = plan
            if plan.kind == "limit_cancel":
                await market.cancel(sub.stack.http, order_id)
    if market.conditional:
        await market.fund_trader()
    for i in range(args.orders):
        tasks.append(asyncio.create_task(one(i)))
        if i == args.orders // 2 and market.wants("limit_move"):
            events.append(asyncio.create_task(market.lift_sol()))
        await asyncio.sleep(1 / args.rate)
    await asyncio.gather(*tasks, *events)
    if market.wants("limit_move"):
        await market.lift_sol()
    launching = [oid for oid, p in market.plans.items() if p.kind == "sniper_launch"]
    if launching:
        await snipers_waiting(sub.stack.dsn, launching)
        for mint in sorted({market.plans[oid].token_out for oid in launching}):
            await market.launch(mint)


async def snipers_waiting(dsn: str, ids: list[str], timeout: float = 60) -> None:
    """Until each sniper order is past ``pending`` (open, or already ended): a pool launched
    before its order opens is one its watch lists at start, never a launch."""
    async def waiting() -> bool:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=3) as conn:
                cur = await conn.execute("SELECT count(*) FROM orders WHERE order_id = ANY(%s) "
                                         "AND status <> 'pending'", (ids,))
                row = await cur.fetchone()
        except psycopg.Error:
            return False
        return row is not None and row[0] == len(ids)
    try:
        await wait_until(waiting, timeout, "the sniper orders to wait open", interval=0.5)
    except AssertionError as exc:
        log.warning("launching anyway: %s", str(exc)[:200])
