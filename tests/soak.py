"""Soak: orders through the whole real system while its processes are SIGKILLed at random.

    .venv/bin/python -m tests.soak --orders 2000 --kill worker,postgres,broker,ingress \\
        --kill-every 5

Starts its own system (tests/soak_stack.py): a durable embedded PostgreSQL (never the
machine's server at 5432), its own embedded broker, the localnet with its market, W
workers and the ingress. The baseline balances are read first; then the RPC/venue faults
are switched on, and orders go in, half over HTTP (``Idempotency-Key``; a 5xx, 409 or
connection error is retried with the same key) and half straight onto Kafka (retried
until the produce is acknowledged). An order counts as *accepted* only after a 202 or a
Kafka ack; orders never accepted are reported apart. Every ``--kill-every`` seconds
(jittered) one to three of the ``--kill`` components are SIGKILLed together ("worker"
is one random worker; worker+postgres is a host dying), and restarted after 0.2-2 s.
Market orders get ``--market-ttl-s`` (600 s) to expire in: an order may wait through
outages and its own acceptance retries, and must not expire for that; one that does
expire is counted, and must have no swap on chain.

The verdict comes from the chain (tests/soak_audit.py): the wallet's transactions since
the baseline, attributed to orders by their memo ``orderflow:<orderId>``, compared with
the read model. The JSON report's ``failures`` lists lost, stuck, doubled,
failed/expired/cancelled_with_landed_swap, unreconciled... (see ``soak_audit.FAILURES``);
any non-zero count exits 1. ``localnet`` can be killed too: it resumes the chain saved in its data
directory, so every check holds across it, and ``fresh_chain`` counts a localnet that came
back as another chain (its genesis hash changed: the confirmed signatures would point
nowhere and in-flight orders would replay onto it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException

from tests.helpers import wait_until
from tests.soak_audit import (
    FAILURES,
    TERMINAL,
    judge,
    load_transactions,
    newest_signature,
    wallet_balances,
    wallet_history,
)
from tests.soak_mix import Market, parse_mix
from tests.soak_stack import COMPONENTS, Stack
from tests.soak_submit import Submitter, submit_all

log = logging.getLogger("tests.soak")

DEFAULT_FAULTS = {"seed": 3, "errors": [{"kind": "http429", "rate": 0.01},
                                         {"kind": "http503", "rate": 0.005}],
                  "drop": {"rate": 0.01}}
DEFAULT_VENUE_FAULTS = {"seed": 4, "errors": [{"kind": "http503", "rate": 0.01},
                                              {"kind": "http429", "rate": 0.005}]}


async def killer(stack: Stack, args: argparse.Namespace, stop: asyncio.Event,
                 events: list[dict[str, Any]], t0: float) -> None:
    """Kill events until ``stop``: every component once first (in random order, sometimes
    with a random companion; this goes on past ``stop`` until each was killed), then one to
    three components chosen at random."""
    rng = random.Random(args.seed)
    kinds = [k for k in args.kill if k]
    first = rng.sample(kinds, len(kinds))
    while first or not stop.is_set():
        delay = rng.uniform(0.5, 1.5) * args.kill_every
        if first:  # every component is killed once, even if that outlasts the submission
            await asyncio.sleep(delay)
        else:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
        size = min(len(kinds), rng.choices([1, 2, 3], [6, 3, 1])[0])
        chosen = [first.pop(0)] if first else []
        chosen += rng.sample([k for k in kinds if k not in chosen], size - len(chosen))
        names = sorted({n for c in chosen for n in stack.victims(c, rng)})
        slot = await chain_slot(stack)
        started = time.monotonic()
        stack.kill(names)
        down = rng.uniform(0.2, 2.0)
        await asyncio.sleep(down)  # the outage's chosen length
        await stack.restart(names)
        events.append({"t": round(started - t0, 1), "killed": names, "slotAtKill": slot,
                       "downS": round(time.monotonic() - started, 1)})
        log.warning("kill #%d at %.1fs: %s (back after %.1fs)", len(events), started - t0,
                    names, time.monotonic() - started)


async def chain_slot(stack: Stack) -> int | None:
    try:
        async with AsyncClient(stack.c.rpc, timeout=2) as rpc:
            return (await rpc.get_slot()).value
    except Exception:
        return None


async def read_model(dsn: str, ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """The ``orders`` rows (what the API serves) of ``ids``; None if the database is away."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=3) as conn:
            cur = await conn.execute(
                "SELECT order_id, status, tx_signature, token_in, token_out, amount_in_actual, "
                "amount_out, error_code, attempt FROM orders WHERE order_id = ANY(%s)", (ids,))
            return {r[0]: {"status": r[1], "signature": r[2], "tokenIn": r[3], "tokenOut": r[4],
                           "amountIn": int(r[5] or 0), "amountOut": int(r[6] or 0),
                           "error": r[7], "attempt": r[8]} for r in await cur.fetchall()}
    except psycopg.Error:
        return None


async def drain(stack: Stack, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait (bounded) for every accepted order to be terminal; the last read model seen."""
    seen: dict[str, dict[str, Any]] = {}

    async def all_terminal() -> bool:
        rows = await read_model(stack.dsn, ids)
        if rows is not None:
            seen.clear()
            seen.update(rows)
        return rows is not None and all(seen.get(i, {}).get("status") in TERMINAL for i in ids)
    try:
        await wait_until(all_terminal, timeout, "every accepted order to be terminal",
                         interval=0.5)
    except AssertionError as exc:
        log.warning("%s", str(exc)[:300])
    return seen


async def quiet_chain(stack: Stack, ids: list[str]) -> None:
    """Wait until no recorded transaction of these orders can still land (blockhash expired)."""
    async with await psycopg.AsyncConnection.connect(stack.dsn) as conn:
        cur = await conn.execute("SELECT max(last_valid_block_height) FROM broadcasts "
                                 "WHERE order_id = ANY(%s)", (ids,))
        row = await cur.fetchone()
    last_valid = int(row[0]) if row and row[0] is not None else 0
    async with AsyncClient(stack.c.rpc) as rpc:
        async def expired() -> bool:
            return (await rpc.get_block_height()).value > last_valid
        await wait_until(expired, 120, f"block height past {last_valid}", interval=0.2)


async def journal_signatures(dsn: str) -> list[tuple[str, list[str]]]:
    """Fallback without getSignaturesForAddress: every broadcast the journal recorded."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT signature, order_id FROM broadcasts")
        return [(r[0], [r[1]]) for r in await cur.fetchall()]


async def triggered_ids(dsn: str, ids: list[str]) -> set[str]:
    """The orders whose ``triggered`` event the read model holds."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT DISTINCT order_id FROM order_events WHERE status = "
                                 "'triggered' AND order_id = ANY(%s)", (ids,))
        return {r[0] for r in await cur.fetchall()}


async def known_http_ids(dsn: str, keys: list[str]) -> set[str]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT order_id FROM idempotency_keys WHERE key = ANY(%s)",
                                 (keys,))
        return {r[0] for r in await cur.fetchall()}


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    data = (args.data_dir or Path(tempfile.mkdtemp(prefix="orderflow-soak-"))).resolve()
    data.mkdir(parents=True, exist_ok=True)
    tag = f"soak-{uuid.uuid4().hex[:6]}"
    stack = Stack(data, workers=args.workers, slot_ms=args.slot_ms,
                  env={"ORDERFLOW_MAX_ATTEMPTS": str(args.max_attempts),
                       "ORDERFLOW_MARKET_ORDER_TTL_S": str(args.market_ttl_s)})
    events: list[dict[str, Any]] = []
    stop = asyncio.Event()
    try:
        await stack.start()
        wallet = stack.c.wallet.pubkey()
        async with AsyncClient(stack.c.rpc) as rpc:  # the baseline, before any fault
            try:
                baseline_sig, from_chain = await newest_signature(rpc, wallet), True
            except RPCException as exc:  # the localnet cannot list a wallet's transactions
                log.warning("getSignaturesForAddress unavailable (%s): swaps are found from "
                            "the journal's broadcasts instead, which misses vanished rows", exc)
                baseline_sig, from_chain = None, False
            before = await wallet_balances(rpc, wallet)
            genesis = (await rpc.get_genesis_hash()).value
        if args.faults:
            stack.faults(stack.c.rpc, json.loads(args.rpc_faults))
            stack.faults(stack.c.venue_root, json.loads(args.venue_faults))
        await stack.start_engine()
        t0 = time.monotonic()
        supervisor = asyncio.create_task(stack.supervise(), name="soak-supervisor")
        killing = (asyncio.create_task(killer(stack, args, stop, events, t0))
                   if args.kill_every and args.kill else None)
        market = Market(stack.c.venue, stack.c.rpc, stack.admin_token, args.mix, args.seed + 1,
                        expire_s=args.expire_s, wait_s=args.wait_s)
        async with Submitter(stack, args.accept_timeout) as sub:
            try:
                await submit_all(sub, args, tag, market)
            finally:
                await market.close()
            submitted_s = time.monotonic() - t0
            stop.set()
            if killing is not None:
                await killing
            await stack.wait_all_running(120)
            ids = sorted(sub.accepted)
            rows = await drain(stack, ids, args.drain_timeout)
        supervisor.cancel()
        drained_s = time.monotonic() - t0
        if args.faults and stack.procs["localnet"].running():
            stack.faults(stack.c.rpc, None)
            stack.faults(stack.c.venue_root, None)
        await quiet_chain(stack, ids)
        rows = await read_model(stack.dsn, ids) or rows
        known = sub.known | await known_http_ids(
            stack.dsn, [w["idempotencyKey"] for w in sub.never if w["via"] == "http"])
        async with AsyncClient(stack.c.rpc) as rpc:
            async def stable() -> tuple[Any, ...] | None:
                after = await wallet_balances(rpc, wallet)
                history = (await wallet_history(rpc, wallet, baseline_sig) if from_chain
                           else await load_transactions(
                               rpc, wallet, await journal_signatures(stack.dsn)))
                return (after, history) if after == await wallet_balances(rpc, wallet) else None
            found: Any = await wait_until(stable, 30, "balances to hold still")
            after, history = found
            fresh = int((await rpc.get_genesis_hash()).value != genesis)
        verdict = judge(ids, rows, history, before, after, known - set(ids), market.plans,
                        await triggered_ids(stack.dsn, ids))
        verdict.counts["fresh_chain"] = fresh
        verdict.counts["chain_history_unavailable"] = 0 if from_chain else 1
        for case in verdict.examples.get("doubled", []):
            slots = [s for _, s in case["landed"]]
            case["killsBefore"] = [e for e in events if e["slotAtKill"] is not None
                                   and e["slotAtKill"] <= max(slots)][-3:]
        result = report(args, stack, sub, verdict, rows, events,
                      {"submit": submitted_s, "drain": drained_s - submitted_s,
                       "total": time.monotonic() - t0}, before, after)
        result["byKind"] = verdict.by_kind
        result["market"] = {"trades": market.trades, "launched": market.launched,
                            "cancels": market.cancels}
        return result
    finally:
        stack.stop()


def report(args: argparse.Namespace, stack: Stack, sub: Submitter, verdict: Any,
           rows: dict[str, dict[str, Any]], events: list[dict[str, Any]],
           seconds: dict[str, float], before: dict[str, int], after: dict[str, int]
           ) -> dict[str, Any]:
    failures = {k: verdict.counts[k] for k in (*FAILURES, "chain_history_unavailable",
                                                 "fresh_chain")}
    by_code: dict[str, int] = {}
    for r in rows.values():
        if r["status"] == "failed":
            by_code[r["error"]] = by_code.get(r["error"], 0) + 1
    killed: dict[str, int] = {}
    for e in events:
        for n in e["killed"]:
            kind = "worker" if n.startswith("w") else n
            killed[kind] = killed.get(kind, 0) + 1
    return {
        "ok": not any(failures.values()),
        "failures": failures,
        "orders": {
            "submitted": args.orders, "accepted": len(sub.accepted),
            "acceptedVia": {v: list(sub.accepted.values()).count(v) for v in ("http", "kafka")},
            "neverAccepted": len(sub.never), "submitRetries": sub.retries,
            "confirmed": verdict.counts.get("confirmed", 0),
            "failed": verdict.counts.get("failed", 0), "failedByCode": by_code,
            "expired": verdict.counts.get("expired", 0),
            "cancelled": verdict.counts.get("cancelled", 0),
            "retriedOrders": sum(1 for r in rows.values() if (r["attempt"] or 1) > 1)},
        "chain": {k: verdict.counts[k] for k in
                  ("landed_swaps", "wallet_transactions", "failed_transactions_landed")}
        | {"balancesBefore": before, "balancesAfter": after},
        "kills": {"count": len(events), "byComponent": killed,
                  "unexpectedExits": stack.unexpected_exits, "events": events},
        "examples": verdict.examples,
        "neverAccepted": sub.never[:20],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "config": {"orders": args.orders, "workers": args.workers, "kill": args.kill,
                   "killEvery": args.kill_every, "rate": args.rate, "httpShare": args.http_share,
                   "seed": args.seed, "slotMs": args.slot_ms, "faults": args.faults},
        "dataDir": str(stack.data),
    }


def summary(r: dict[str, Any]) -> str:
    f, o = r["failures"], r["orders"]
    bad = ", ".join(f"{k} {v}" for k, v in f.items() if v) or "none"
    return (f"soak {'PASS' if r['ok'] else 'FAIL'}: {o['accepted']}/{o['submitted']} accepted "
            f"(http {o['acceptedVia']['http']}, kafka {o['acceptedVia']['kafka']}), "
            f"{o['confirmed']} confirmed, {o['failed']} failed, {o['expired']} expired, "
            f"{r['chain']['landed_swaps']} "
            f"landed swaps on chain, {r['kills']['count']} kills {r['kills']['byComponent']}, "
            f"{o['neverAccepted']} never accepted; failures: {bad}; {r['seconds']['total']}s"
            + "".join(f"\n  {kind}: {_ends(ends)}" for kind, ends in sorted(r["byKind"].items())
                      if kind != "market" or len(r["byKind"]) > 1))


def _ends(ends: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(ends.items()))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=40.0, help="orders per second submitted")
    p.add_argument("--http-share", type=float, default=0.5, help="fraction sent over HTTP")
    p.add_argument("--kill", type=lambda s: [c for c in s.split(",") if c],
                   default=["worker", "postgres", "broker", "ingress"],
                   help=f"components to kill, comma-separated, of {','.join(COMPONENTS)}; "
                   "'' = none (localnet: see above)")
    p.add_argument("--kill-every", type=float, default=8.0, help="mean seconds; 0 = no kills")
    p.add_argument("--slot-ms", type=int, default=50)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--market-ttl-s", type=int, default=600,
                   help="ORDERFLOW_MARKET_ORDER_TTL_S of the workers: longer than an order "
                   "may wait through the kills and its own acceptance retries (the engine's "
                   "default of 60 s would expire orders held by outages; an expired order "
                   "must have no swap on chain either way)")
    p.add_argument("--mix", type=parse_mix, default=parse_mix("market=1"),
                   help="weights of the order types, e.g. market=70,limit=20,sniper=10 "
                   "(see tests/soak_mix.py for the kinds of limit and sniper orders)")
    p.add_argument("--wait-s", type=float, default=240,
                   help="expiry of the limit and sniper orders meant to fill (seconds)")
    p.add_argument("--expire-s", type=float, default=30,
                   help="expiry of the limit and sniper orders meant to expire (seconds)")
    p.add_argument("--accept-timeout", type=float, default=120,
                   help="seconds one order is retried before it counts as never accepted")
    p.add_argument("--drain-timeout", type=float, default=300,
                   help="seconds to wait for every accepted order to be terminal")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-faults", dest="faults", action="store_false")
    p.add_argument("--rpc-faults", default=json.dumps(DEFAULT_FAULTS))
    p.add_argument("--venue-faults", default=json.dumps(DEFAULT_VENUE_FAULTS))
    p.add_argument("--out", type=Path, help="also write the JSON report here")
    p.add_argument("--data-dir", type=Path, help="where the soak's system keeps its data "
                   "and logs (default: a new temporary directory, kept)")
    return p


def main() -> None:
    args = parser().parse_args()
    unknown = set(args.kill) - set(COMPONENTS)
    if unknown:
        parser().error(f"unknown components {sorted(unknown)}; choose from {COMPONENTS}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # outages are the point here
    result = asyncio.run(soak(args))
    text = json.dumps(result, indent=2)
    print(text)
    print(summary(result))
    if args.out:
        args.out.write_text(text)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
