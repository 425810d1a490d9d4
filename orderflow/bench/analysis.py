"""Per-order times from the status stream, and the run's results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orderflow.bench.load import LoadResult, Submitted
from orderflow.bench.specs import STAGES
from orderflow.bench.stats import quantile, steady_rate, summarize
from orderflow.bench.status import Ev, StatusCollector

if TYPE_CHECKING:
    from orderflow.bench.trace import EdgeTrace


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


def _latency(os_: Sequence[OrderTimes]) -> dict[str, Any]:
    return {
        "submit_to_confirmed": summarize(
            (o.confirmed_ts - o.sub.sent) * 1000 for o in os_ if o.confirmed_ts),
        "submit_to_confirmed_observed": summarize(
            (o.confirmed_recv - o.sub.sent) * 1000 for o in os_ if o.confirmed_recv),
    }


def _by_path(load: LoadResult, confirmed: Sequence[OrderTimes]) -> dict[str, Any]:
    by_path: dict[str, Any] = {}
    for path in sorted({s.spec.path for s in load.submitted}):
        mine = [o for o in confirmed if o.sub.spec.path == path]
        entry = _latency(mine)
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
    return by_path


def _timeline(confirmed: Sequence[OrderTimes], first_sent: float, step: float = 10.0
              ) -> list[dict[str, Any]]:
    """Per ``step`` seconds of submit time: latency and queue quantiles."""
    timeline: list[dict[str, Any]] = []
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
    return timeline


def _throughput(load: LoadResult, confirmed: Sequence[OrderTimes], first_sent: float
                ) -> dict[str, Any]:
    conf_ts = [o.confirmed_ts for o in confirmed if o.confirmed_ts is not None]
    sustained = steady_rate(conf_ts)
    span = (max(conf_ts) - first_sent) if conf_ts else 0.0
    overall = len(conf_ts) / span if span > 0 else None
    submit_span = load.finished - load.started
    return {
        "sustained_per_s": round(sustained, 2) if sustained else None,
        "overall_per_s": round(overall, 2) if overall else None,
        "offered_per_s": round(len(load.submitted) / submit_span, 2)
        if submit_span > 0 else None,
        "method": "confirmations/s between the 10th and 90th percentile of confirmation "
                  "times (event ts); overall = confirmed / (last confirmation - first "
                  "submit)",
    }


def analyse(load: LoadResult, collector: StatusCollector, lost_ids: Sequence[str],
            trace: EdgeTrace | None) -> dict[str, Any]:
    orders = [order_times(s, collector.events.get(s.order_id, [])) for s in load.submitted]
    confirmed = [o for o in orders if o.status == "confirmed"]
    failed = [o for o in orders if o.status == "failed"]
    by_code: dict[str, int] = {}
    for o in failed:
        by_code[o.code or "?"] = by_code.get(o.code or "?", 0) + 1
    first_sent = min((s.sent for s in load.submitted), default=load.started)
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for o in confirmed:
        for name, ms in stage_durations(o).items():
            stages[name].append(ms)
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
        "throughput": _throughput(load, confirmed, first_sent),
        "latency_ms": _latency(confirmed),
        "stages_ms": {k: summarize(v) for k, v in stages.items()},
        "by_path": _by_path(load, confirmed),
        "submit_lag_ms": summarize((s.sent - s.scheduled) * 1000 for s in load.submitted),
        "timeline_by_submit_10s": _timeline(confirmed, first_sent),
        "status_events_per_order": round(mine_events / len(load.submitted), 2)
        if load.submitted else None,
        "overhead_ms": trace.overhead(confirmed) if trace is not None else None,
    }
