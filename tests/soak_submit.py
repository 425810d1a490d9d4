"""How the soak gets orders accepted: over HTTP (``Idempotency-Key``) and straight onto Kafka.

An order is *accepted* once it got a 202 or its Kafka produce was acknowledged. Until then
it is retried (same key, same orderId) through kills of the ingress, the broker or
PostgreSQL, up to a deadline; an order never accepted is reported apart, not as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from decimal import Decimal
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from pipeline.tokens import SOL, USDC, USDT, token_by_mint
from pipeline.wire import ExecuteOrder, now_ms
from tests.soak_stack import Stack

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

    async def kafka(self, order: ExecuteOrder) -> None:
        assert self.producer is not None

        async def attempt() -> tuple[bool, str]:
            assert self.producer is not None
            await self.producer.send_and_wait("orders", order.encode(),
                                              key=order.order_id.encode())
            self.accepted[order.order_id] = "kafka"
            return True, ""
        self.known.add(order.order_id)
        await self._until_accepted(attempt, {"via": "kafka", "orderId": order.order_id})

    async def http(self, key: str, body: dict[str, Any]) -> None:
        url = f"{self.stack.http}/api/orders/execute"

        async def attempt() -> tuple[bool, str]:
            assert self.session is not None
            async with self.session.post(url, json=body,
                                         headers={"Idempotency-Key": key}) as resp:
                answer = await resp.json(content_type=None)
                if resp.status == 202:
                    self.accepted[answer["orderId"]] = "http"
                    return True, ""
                if isinstance(answer, dict) and answer.get("orderId"):
                    self.known.add(answer["orderId"])
                if resp.status in (409,) or resp.status >= 500:
                    return False, f"{resp.status} {answer}"
                raise Refused(f"{resp.status} {answer}")
        await self._until_accepted(attempt, {"via": "http", "idempotencyKey": key})


def http_body(tin: str, tout: str, amount: int) -> dict[str, Any]:
    decimals = token_by_mint(tin).decimals  # type: ignore[union-attr]
    ui = format(Decimal(amount).scaleb(-decimals), "f")
    return {"tokenIn": tin, "tokenOut": tout, "amount": ui, "slippageBps": 300}


async def submit_all(sub: Submitter, args: argparse.Namespace, tag: str) -> None:
    rng = random.Random(args.seed + 1)
    gate = asyncio.Semaphore(128)
    tasks = []

    async def one(i: int) -> None:
        async with gate:
            tin, tout, amount = PAIRS[i % len(PAIRS)]
            if rng.random() < args.http_share:
                await sub.http(f"{tag}-{i}", http_body(tin, tout, amount + i))
            else:
                await sub.kafka(ExecuteOrder(f"{tag}-{i:05d}", tin, tout, amount + i, 300,
                                             now_ms(), "kafka"))
    for i in range(args.orders):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1 / args.rate)
    await asyncio.gather(*tasks)
