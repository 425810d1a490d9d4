"""Soak: N orders through the real pipeline with random worker kills and injected faults.

    .venv/bin/python -m tests.soak --orders 1000 --workers 2 --kill-every 8

Starts its own Tansu broker, uses PostgreSQL at ORDERFLOW_TEST_DATABASE_URL (or
127.0.0.1:5432, a fresh database), a localnet with the market, and W worker
processes in one group. While orders flow, a random worker is SIGKILLed every
``--kill-every`` seconds and restarted; the localnet and market inject RPC 429s,
venue 503s and dropped transactions. At the end it reports, as JSON:
lost (not terminal), double-executed (more than one landed transaction for one
order), confirmed/failed counts, and whether the wallet's real balances reconcile
with the ledger (every landed swap accounted for).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from orderflow.embedded import start_broker
from sinks.migrate import migrate
from tests.cluster import Cluster, reconcile
from tests.integration.test_reliability import orders

DEFAULT_FAULTS = {"seed": 3, "errors": [{"kind": "http429", "rate": 0.01},
                                         {"kind": "http503", "rate": 0.005}],
                  "drop": {"rate": 0.01}}
DEFAULT_VENUE_FAULTS = {"seed": 4, "errors": [{"kind": "http503", "rate": 0.01},
                                              {"kind": "http429", "rate": 0.005}]}


async def soak(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="orderflow-soak-"))
    broker = start_broker(None, data)
    admin_dsn = args.database_url
    name = f"orderflow_soak_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    await migrate(dsn)
    cluster = Cluster(broker.url, dsn, data, slot_ms=args.slot_ms,
                      extra_env={"ORDERFLOW_MAX_ATTEMPTS": str(args.max_attempts)})
    rng = random.Random(args.seed)
    kills = 0
    try:
        await cluster.start_localnet()
        if args.faults:
            cluster.admin(cluster.rpc, json.loads(args.rpc_faults))
            cluster.admin(cluster.venue_root, json.loads(args.venue_faults))
        before = await cluster.balances()
        names = [f"w{i}" for i in range(args.workers)]
        for n in names:
            cluster.start_worker(n)
        batch = orders(args.orders, "soak")
        ids = [o.order_id for o in batch]
        started = time.monotonic()

        async def produce() -> None:
            for i in range(0, len(batch), args.chunk):
                await cluster.produce(batch[i:i + args.chunk])
                await asyncio.sleep(args.chunk / args.rate)

        async def killer() -> None:
            nonlocal kills
            while True:
                await asyncio.sleep(args.kill_every)
                victim = rng.choice(names)
                cluster.kill_worker(victim)
                kills += 1
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                cluster.start_worker(victim)

        killing = asyncio.create_task(killer(), name="soak-killer") if args.kill_every else None
        await produce()
        try:
            await cluster.wait_terminal(ids, args.timeout)
        finally:
            if killing is not None:
                killing.cancel()
        elapsed = time.monotonic() - started
        if args.faults:
            cluster.admin(cluster.rpc, None)
            cluster.admin(cluster.venue_root, None)
        ledger = await cluster.ledger(ids)
        sigs = [s for b in ledger["broadcasts"].values() for s, _ in b]
        fees = await cluster.landed_swaps(sigs)
        landed_per_order = {oid: sum(1 for s, _ in b if s in fees)
                            for oid, b in ledger["broadcasts"].items()}
        statuses = [o["status"] for o in ledger["orders"].values()]
        reconciled = True
        try:
            reconcile(before, await cluster.balances(), ledger, fees)
        except AssertionError as exc:
            reconciled = False
            print(f"reconciliation failed: {exc}", file=sys.stderr)
        errors: dict[str, int] = {}
        for o in ledger["orders"].values():
            if o["status"] == "failed":
                errors[o["error"]] = errors.get(o["error"], 0) + 1
        return {
            "orders": len(ids),
            "terminal": sum(1 for s in statuses if s in ("confirmed", "failed")),
            "lost": len(ids) - sum(1 for s in statuses if s in ("confirmed", "failed")),
            "confirmed": statuses.count("confirmed"),
            "failed": statuses.count("failed"),
            "failed_by_code": errors,
            "double_executed": sum(1 for n in landed_per_order.values() if n > 1),
            "confirmed_without_landed_swap": sum(
                1 for oid, o in ledger["orders"].items()
                if o["status"] == "confirmed" and landed_per_order.get(oid, 0) != 1),
            "failed_with_landed_swap": sum(
                1 for oid, o in ledger["orders"].items()
                if o["status"] == "failed" and landed_per_order.get(oid, 0) != 0),
            "retried_orders": sum(1 for o in ledger["orders"].values() if o["attempt"] > 1),
            "worker_kills": kills,
            "wallet_reconciles_with_ledger": reconciled,
            "seconds": round(elapsed, 1),
            "workers": args.workers,
            "slot_ms": args.slot_ms,
            "faults": {"rpc": json.loads(args.rpc_faults),
                       "venue": json.loads(args.venue_faults)} if args.faults else None,
        }
    finally:
        cluster.stop()
        broker.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=40.0, help="orders per second produced")
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--kill-every", type=float, default=8.0, help="0 = no kills")
    p.add_argument("--slot-ms", type=int, default=50)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-faults", dest="faults", action="store_false")
    p.add_argument("--rpc-faults", default=json.dumps(DEFAULT_FAULTS))
    p.add_argument("--venue-faults", default=json.dumps(DEFAULT_VENUE_FAULTS))
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--out", type=Path)
    result = asyncio.run(soak(p.parse_args()))
    text = json.dumps(result, indent=2)
    print(text)
    args = p.parse_args()
    if args.out:
        args.out.write_text(text)
    ok = (result["lost"] == 0 and result["double_executed"] == 0
          and result["wallet_reconciles_with_ledger"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
