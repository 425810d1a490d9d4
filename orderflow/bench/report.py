"""The human-readable summary printed at the end of a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orderflow.bench.specs import STAGES


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
