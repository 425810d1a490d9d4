"""One bench run: start or find the system, warm up, load, measure, ceilings."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orderflow.bench.analysis import analyse
from orderflow.bench.ceilings import broker_ceiling, chain_ceiling, flow_ceiling
from orderflow.bench.cli import BenchOptions
from orderflow.bench.environment import load_avg, machine, read_topology, speed_probe_ms, versions
from orderflow.bench.http import rpc_call
from orderflow.bench.load import fund_for, submit_orders
from orderflow.bench.metrics import metrics_summary, scrape
from orderflow.bench.processes import ProcSampler
from orderflow.bench.profiling import Profiler
from orderflow.bench.report import render
from orderflow.bench.specs import CEILINGS, SCHEMA, SOL_ORDER, OrderSpec, order_specs
from orderflow.bench.stats import ratio
from orderflow.bench.status import StatusCollector
from orderflow.bench.system import EmbeddedStack, Endpoints
from orderflow.settings import Settings
from pipeline.tokens import SOL, USDC

if TYPE_CHECKING:
    import aiohttp


log = logging.getLogger("orderflow.bench")


async def _slot(session: aiohttp.ClientSession, rpc: str | None) -> tuple[float, int] | None:
    if rpc is None:
        return None
    try:
        slot = await rpc_call(session, rpc, "getSlot", [{"commitment": "processed"}])
        return time.time(), int(slot)
    except Exception:
        return None


@dataclass
class _Window:
    """What the load phase saw of the machine and the chain, for the environment."""

    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    slot0: tuple[float, int] | None = None
    slot1: tuple[float, int] | None = None
    profile: dict[str, Any] | None = None


async def bench(opts: BenchOptions, settings: Settings) -> dict[str, Any]:
    """One run; the report (schema :data:`SCHEMA`) as a JSON-ready dict."""
    import aiohttp

    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    before = {"load": load_avg(), "speed": speed_probe_ms()}
    stack = EmbeddedStack(settings, opts) if opts.embedded else None
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    collector: StatusCollector | None = None
    try:
        ep, owner = await _system(opts, stack)
        tag = f"bench-{uuid.uuid4().hex[:8]}"
        warm = order_specs(opts.warmup * len(opts.paths), opts.paths, first_index=opts.orders)
        specs = order_specs(opts.orders, opts.paths, first_index=0)
        if owner is not None and ep.venue_url is not None:
            await fund_for(session, ep.venue_url, owner, [*specs, *warm])
        collector = StatusCollector(ep.bootstrap)
        await collector.start()
        await _warm_up(opts, ep, stack, collector, warm, tag)
        results, window = await _load_phase(opts, ep, stack, session, collector, specs, tag)
        await collector.stop()
        collector = None
        topology = await read_topology(ep.bootstrap, opts.group or settings.app_id)
        ceilings = await _ceilings(opts, ep, topology)
        return {
            "schema": SCHEMA,
            "started_at": started_at,
            "command": ["orderflow", *sys.argv[1:]] if sys.argv[0].endswith(
                ("orderflow", "cli.py")) else sys.argv,
            "config": {"orders": opts.orders, "rate": opts.rate, "via": opts.via,
                       "warmup_per_path": opts.warmup, "slippage_bps": opts.slippage_bps,
                       "http_concurrency": opts.http_concurrency, "trace": opts.trace,
                       "profiled": opts.profile is not None},
            "environment": _environment(opts, settings, stack, topology, before, window),
            "results": results,
            "ceilings": ceilings,
            "ratios": _ratios(results, ceilings),
            "profile": window.profile,
        }
    finally:
        if collector is not None:
            await collector.stop()
        await session.close()
        if stack is not None:
            await stack.stop()


async def _system(opts: BenchOptions, stack: EmbeddedStack | None
                  ) -> tuple[Endpoints, str | None]:
    """The system's endpoints, and the wallet to fund (if any)."""
    if stack is not None:
        log.info("starting the embedded system in %s", stack.run_dir)
        ep = await stack.start()
        return ep, str(stack.wallet.pubkey())
    assert opts.bootstrap is not None
    return Endpoints(opts.bootstrap, opts.ingress_url, opts.rpc_url, opts.venue_url,
                     opts.worker_metrics), opts.fund


async def _warm_up(opts: BenchOptions, ep: Endpoints, stack: EmbeddedStack | None,
                   collector: StatusCollector, warm: list[OrderSpec], tag: str) -> None:
    if not warm:
        return
    log.info("warm-up: %d orders", len(warm))
    w = await submit_orders(warm, 0.0, opts, ep.bootstrap, ep.ingress_url, tag)
    missing = await collector.wait_terminal([x.order_id for x in w.submitted], 120)
    if missing or w.errors:
        raise RuntimeError(f"warm-up failed: {len(missing)} not terminal, errors "
                           f"{w.errors[:3]}"
                           + (f"\n{stack.worker_log(40)}" if stack else ""))


async def _load_phase(opts: BenchOptions, ep: Endpoints, stack: EmbeddedStack | None,
                      session: aiohttp.ClientSession, collector: StatusCollector,
                      specs: list[OrderSpec], tag: str) -> tuple[dict[str, Any], _Window]:
    """Submit the measured orders, wait for them, and analyse what happened."""
    sampler = ProcSampler(ep.processes) if ep.processes else None
    profiler = None
    if opts.profile is not None and stack is not None:
        targets = {k: v for k, v in ep.processes.items()
                   if k.startswith("worker") or k in ("localnet", "ingress")}
        profiler = Profiler(opts.profile, targets)
        profiler.start()
    metrics_before = await scrape(session, ep.worker_metrics)
    window = _Window(slot0=await _slot(session, ep.rpc_url), load_start=load_avg())
    if sampler is not None:
        sampler.start()
    rate_text = f"{opts.rate:g}/s" if opts.rate else "max rate"
    log.info("load: %d orders via %s at %s", opts.orders, opts.via, rate_text)
    load = await submit_orders(specs, opts.rate, opts, ep.bootstrap, ep.ingress_url, tag)
    lost = await collector.wait_terminal([s.order_id for s in load.submitted], opts.timeout)
    load_end_t = time.time()
    if sampler is not None:
        await sampler.stop()
    window.profile = profiler.stop() if profiler is not None else None
    window.load_end = load_avg()
    window.slot1 = await _slot(session, ep.rpc_url)
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
        results["processes"] = _processes(sampler, results["confirmed"])
    return results, window


def _processes(sampler: ProcSampler, confirmed: int) -> dict[str, Any]:
    out = sampler.summary()
    if confirmed:
        per_order = {k: round(v / confirmed * 1000, 2) for k, v in sampler.cpu_seconds().items()}
        out["cpu_ms_per_confirmed_order"] = per_order
        # The localnet does the same work per order whatever the engine does: the
        # workers' CPU over it is steadier across runs than either figure alone.
        workers = sum(v for k, v in per_order.items() if k.startswith("worker"))
        if per_order.get("localnet"):
            out["workers_cpu_per_localnet_cpu"] = round(workers / per_order["localnet"], 3)
    return out


async def _ceilings(opts: BenchOptions, ep: Endpoints, topology: dict[str, Any]
                    ) -> dict[str, Any]:
    ceilings: dict[str, Any] = {}
    for name in CEILINGS:
        if name not in opts.ceilings:
            continue
        if name in ("chain", "flow") and (ep.rpc_url is None or ep.venue_url is None):
            ceilings[name] = {"skipped": "needs --rpc-url and --venue-url"}
            continue
        log.info("ceiling: %s", name)
        ceil_load = load_avg()
        ceil_sampler = ProcSampler(ep.processes) if ep.processes else None
        if ceil_sampler is not None:
            ceil_sampler.start()
        try:
            ceilings[name] = await _ceiling(name, opts, ep, topology)
        except Exception as exc:
            log.exception("ceiling %s failed", name)
            ceilings[name] = {"error": repr(exc)[:300]}
        ceilings[name]["load_before"] = ceil_load
        if ceil_sampler is not None:
            await ceil_sampler.stop()
            ceilings[name]["cpu_cores"] = ceil_sampler.cpu()
    return ceilings


async def _ceiling(name: str, opts: BenchOptions, ep: Endpoints, topology: dict[str, Any]
                   ) -> dict[str, Any]:
    if name == "chain":
        assert ep.rpc_url and ep.venue_url
        return await chain_ceiling(ep.rpc_url, ep.venue_url, opts.ceiling_seconds,
                                   opts.chain_senders, opts.chain_batch)
    if name == "flow":
        assert ep.rpc_url and ep.venue_url
        return await flow_ceiling(ep.rpc_url, ep.venue_url, opts.ceiling_seconds,
                                  opts.flow_concurrency, opts.slippage_bps)
    size = len(_sample_order(opts.slippage_bps))
    return await broker_ceiling(ep.bootstrap, int(topology.get("orders_partitions", 8)),
                                opts.broker_messages, size)


def _ratios(results: dict[str, Any], ceilings: dict[str, Any]) -> dict[str, Any]:
    ours = results["throughput"]["sustained_per_s"] or results["throughput"]["overall_per_s"]
    msgs_per_order = (results["status_events_per_order"] or 0) + 1
    broker_rate = ceilings.get("broker", {}).get("msgs_per_s")
    return {
        "of_chain_raw_tx_rate": ratio(ours, ceilings.get("chain", {}).get("tx_per_s")),
        "of_flow_ceiling": ratio(ours, ceilings.get("flow", {}).get("orders_per_s")),
        "of_broker_raw_msg_rate": ratio(ours, broker_rate),
        "broker_messages_per_order": round(msgs_per_order, 2),
        "of_broker_rate_per_order": ratio(ours * msgs_per_order if ours else None,
                                          broker_rate),
    }


def _environment(opts: BenchOptions, settings: Settings, stack: EmbeddedStack | None,
                 topology: dict[str, Any], before: dict[str, Any], w: _Window
                 ) -> dict[str, Any]:
    slot_ms = None
    if w.slot0 and w.slot1 and w.slot1[1] > w.slot0[1]:
        slot_ms = round((w.slot1[0] - w.slot0[0]) / (w.slot1[1] - w.slot0[1]) * 1000, 1)
    return {
        "machine": machine(),
        "load_avg_1_5_15": {"before": before["load"], "load_start": w.load_start,
                            "load_end": w.load_end, "after": load_avg()},
        "speed_probe_ms": {"before": before["speed"], "after": speed_probe_ms()},
        "system": "embedded" if stack else "external",
        "workers": opts.workers if stack else topology.get("group_members"),
        "group_members": topology.get("group_members"),
        "orders_partitions": topology.get("orders_partitions"),
        "order_status_partitions": topology.get("order-status_partitions"),
        "localnet_slot_ms_measured": slot_ms,
        "localnet_slot_ms_configured": settings.localnet_slot_ms if stack else None,
        "max_in_flight": settings.max_in_flight if stack else None,
        "confirm_poll_ms": settings.confirm_poll_ms if stack else None,
        "signature_subscriptions": settings.signature_subscriptions if stack else None,
        "versions": versions(),
        "run_dir": str(stack.run_dir) if stack else None,
    }


def _sample_order(slippage_bps: int) -> bytes:
    from pipeline.wire import ExecuteOrder

    return ExecuteOrder(str(uuid.uuid4()), SOL.mint, USDC.mint, SOL_ORDER, slippage_bps,
                        int(time.time() * 1000), "kafka", client_ref="bench-00000000").encode()


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of ``orderflow bench``: 0 when every order confirmed, 1 otherwise."""
    if args.limit_orders:
        from orderflow.bench.triggers import main as trigger_bench

        return trigger_bench(args.limit_orders, args.out)
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
