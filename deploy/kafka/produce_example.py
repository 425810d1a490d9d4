#!/usr/bin/env python3
"""Produce one order straight onto the `orders` topic, as a program other than orderflow would.

It depends only on aiokafka and the public contract (orders.v1.schema.json):
no orderflow import. The order gets the same lifecycle as one from HTTP; watch
it on `order-status`, the WebSocket, or GET /api/orders/<orderId>.

    python deploy/kafka/produce_example.py --bootstrap 127.0.0.1:9092 \
        --token-in So11111111111111111111111111111111111111112 \
        --token-out EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v --amount-in 1500000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer


async def produce(args: argparse.Namespace) -> str:
    order_id = args.order_id or str(uuid.uuid4())
    message = {
        "schemaVersion": 1,
        "orderId": order_id,
        "type": "market",
        "tokenIn": args.token_in,
        "tokenOut": args.token_out,
        "amountIn": args.amount_in,          # integer, base units
        "slippageBps": args.slippage_bps,
        "submittedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"),
        "source": args.source,
    }
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            "orders", json.dumps(message).encode(), key=order_id.encode())
    finally:
        await producer.stop()
    print(f"produced order {order_id} to orders[{meta.partition}]@{meta.offset}")
    return order_id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--order-id")
    p.add_argument("--token-in", default="So11111111111111111111111111111111111111112")
    p.add_argument("--token-out", default="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
    p.add_argument("--amount-in", type=int, default=1_500_000_000)
    p.add_argument("--slippage-bps", type=int, default=50)
    p.add_argument("--source", default="example-producer")
    asyncio.run(produce(p.parse_args()))


if __name__ == "__main__":
    main()
