"""``orderflow bench --limit-orders N``: the trigger engine at scale.

A real local market on an in-process chain (LiteSVM) serves its API on a free port; N open
limit orders on SOL/USDC (both directions, limits spread 0.3..10 % away from the market,
sizes 0.01..100 SOL) are loaded into the worker's trigger engine; then real trades on the
CP-Swap pool move the price up and back down in steps. After each trade lands, the
market's feed reads ``/pools`` over HTTP once, and the engine sweeps both directions.

Measured: memory per open order (tracemalloc: the book entry, its Fraction rate, its place
in the sorted list, the id index and the expiry heap), the time to load N orders, and per
price step the time from the trade landing to each order's trigger, split into the feed's
read + parse and the sweep itself, with the candidates the bound let through and the
exact quotes they cost. The journal's compare-and-set is an in-memory double here (one
indexed ``UPDATE`` per triggered order on PostgreSQL; not measured by this run).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from localnet.chain import Chain
from localnet.market import Market, build_market_app
from pipeline.lifecycle import OrderTriggered
from pipeline.model import LimitTerms, OrderType
from pipeline.price_feed import MarketPoolsFeed
from pipeline.tokens import SOL, USDC
from pipeline.trigger import TriggerEngine
from pipeline.wire import ExecuteOrder, now_ms

ONE_SOL = 10**9


class _Store:
    """The journal's open rows in memory: every order is open until triggered."""

    def __init__(self) -> None:
        self.open: dict[str, dict[str, Any]] = {}

    async def open_orders(self) -> list[dict[str, Any]]:
        return []

    async def triggered(self) -> list[tuple[dict[str, Any], int]]:
        return []

    async def mark_triggered(self, order_id: str) -> tuple[dict[str, Any], int] | None:
        doc = self.open.pop(order_id, None)
        return None if doc is None else (doc, 1)

    async def command(self, order_id: str) -> dict[str, Any] | None:
        return None

    async def refuse(self, order_id: str, reason: str) -> None:
        return None


def _orders(n: int, price: float, rng: random.Random) -> list[ExecuteOrder]:
    """Half sell SOL above the market, half buy SOL below it; none fillable yet."""
    out: list[ExecuteOrder] = []
    expires = now_ms() + 3_600_000
    for i in range(n):
        sol = int(ONE_SOL * 10 ** rng.uniform(-2, 2))
        away = rng.uniform(0.003, 0.10)
        if i % 2 == 0:  # sell SOL for at least price * (1 + away) USDC
            tin, tout, amount = SOL.mint, USDC.mint, sol
            min_out = int(sol * price * (1 + away) / 1000)
        else:  # buy SOL: pay price * (1 - away) USDC per SOL, want the SOL
            tin, tout = USDC.mint, SOL.mint
            amount = int(sol * price * (1 - away) / 1000)
            min_out = sol
        out.append(ExecuteOrder(f"bench-limit-{i:08d}", tin, tout, max(amount, 1), 50,
                                now_ms(), "bench", order_type=OrderType.LIMIT,
                                expires_at_ms=expires, limit=LimitTerms(max(min_out, 1))))
    return out


async def run_trigger_bench(n: int, out: Path | None, *, steps: int = 16,
                            seed: int = 13) -> int:
    rng = random.Random(seed)
    chain = Chain(slot_ms=400)
    market = Market(chain, seed=seed, drift_bps=0)
    cp = next(p for p in market.pools
              if p.label == "Raydium CP" and (p.x.symbol, p.y.symbol) == ("SOL", "USDC"))
    market.funding.fund(market.noise_trader.pubkey(), 10**6 * ONE_SOL, 10**9)
    runner = web.AppRunner(build_market_app(market, run_drift=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    venue = f"http://127.0.0.1:{port}/swap/v1"
    store = _Store()
    fired_at: dict[str, float] = {}

    async def fire(cmd: ExecuteOrder, attempt: int, event: OrderTriggered) -> None:
        fired_at[cmd.order_id] = time.perf_counter()

    engine = TriggerEngine(store, fire, partitions=1)  # type: ignore[arg-type]
    price = float(cp.mid_price()) * 1000  # USDC per SOL
    orders = _orders(n, price, rng)
    for cmd in orders:
        store.open[cmd.order_id] = cmd.to_json()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    t0 = time.perf_counter()
    for cmd in orders:
        engine.accept(cmd)
    load_s = time.perf_counter() - t0
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_order = sum(s.size_diff for s in after.compare_to(before, "filename")) / n
    del orders
    report: dict[str, Any] = {"orders": n, "load_s": round(load_s, 3),
                              "memory_bytes_per_open_order": round(per_order),
                              "steps": []}
    try:
        async with aiohttp.ClientSession() as session:
            feed = MarketPoolsFeed(venue, session, refresh_s=0)
            await feed.read_once(engine.pairs(), engine.on_view)  # first view: nothing fills
            assert not fired_at, "orders were generated away from the market"
            share = [0.012] * (steps // 3) + [-0.012] * (steps - steps // 3)
            for k, move in enumerate(share):
                report["steps"].append(await _step(market, cp, move, engine, feed, fired_at,
                                                   k))
    finally:
        await runner.cleanup()
        market.close()
    p50s = [s["p50"] for s in report["steps"] if s["fired"]]
    report["fired_total"] = len(fired_at)
    report["open_after"] = len(engine.book)
    report["trigger_ms_median_of_step_p50"] = statistics.median(p50s) if p50s else None
    _print(report)
    if out is not None:
        await asyncio.to_thread(out.write_text, json.dumps(report, indent=2))
    return 0


async def _step(market: Market, cp: Any, move: float, engine: TriggerEngine,
                feed: MarketPoolsFeed, fired_at: dict[str, float], k: int) -> dict[str, Any]:
    """One real trade on the CP-Swap pool, then one feed read and sweep."""
    x_to_y = move < 0  # selling SOL lowers it
    reserve_in = cp.book.current_totals()[0 if x_to_y else 1]
    amount = int(reserve_in * abs(move))
    trader = market.noise_trader  # funded by run_trigger_bench
    issued = market.issue(cp, trader.pubkey(), x_to_y, amount, 0, extra_signers=[trader])
    before = set(fired_at)
    stats0 = (engine.stats.candidates, engine.stats.quotes)
    landed = time.perf_counter()
    market.chain.send(issued.tx)
    market.chain.tick()
    t_read = time.perf_counter()
    await feed.read_once(engine.pairs(), engine.on_view)
    done = time.perf_counter()
    new = [fired_at[o] - landed for o in set(fired_at) - before]
    step: dict[str, Any] = {
        "step": k, "move_pct": round(move * 100, 2),
        "price": round(float(cp.mid_price()) * 1000, 3),
        "fired": len(new), "open": len(engine.book),
        "candidates": engine.stats.candidates - stats0[0],
        "exact_quotes": engine.stats.quotes - stats0[1],
        "feed_and_sweep_ms": round((done - t_read) * 1000, 2),
        "sweep_ms": round(engine.stats.last_sweep_s * 1000, 2),
    }
    if new:
        ms = sorted(x * 1000 for x in new)
        step["trigger_ms"] = {"p50": round(ms[len(ms) // 2], 2),
                              "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
                              "max": round(ms[-1], 2)}
        step["p50"] = step["trigger_ms"]["p50"]
    return step


def _print(report: dict[str, Any]) -> None:
    print(f"trigger bench: {report['orders']} open limit orders loaded in "
          f"{report['load_s']} s, {report['memory_bytes_per_open_order']} B per open order")
    print(" step  move%    price   fired    open  candidates  quotes  feed+sweep ms  "
          "sweep ms  trigger ms p50/p99/max")
    for s in report["steps"]:
        t = s.get("trigger_ms")
        tr = f"{t['p50']}/{t['p99']}/{t['max']}" if t else "-"
        print(f" {s['step']:>4} {s['move_pct']:>6} {s['price']:>8} {s['fired']:>7} "
              f"{s['open']:>7} {s['candidates']:>11} {s['exact_quotes']:>7} "
              f"{s['feed_and_sweep_ms']:>14} {s['sweep_ms']:>9}  {tr}")


def main(n: int, out: Path | None) -> int:
    return asyncio.run(run_trigger_bench(n, out))
