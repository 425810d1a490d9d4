"""Worker metrics: Prometheus scrapes before and after the load, summarised."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orderflow.bench.stats import histogram_quantile

if TYPE_CHECKING:
    import aiohttp


log = logging.getLogger("orderflow.bench")


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            out[key] = out.get(key, 0.0) + float(s.value)
    return out


async def scrape(session: aiohttp.ClientSession, urls: Sequence[str]
                 ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every worker's metrics, summed."""
    total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for url in urls:
        try:
            async with session.get(url) as resp:
                text = await resp.text()
        except Exception as exc:
            log.warning("could not scrape %s: %r", url, exc)
            continue
        for k, v in parse_prometheus(text).items():
            total[k] = total.get(k, 0.0) + v
    return total


def metrics_summary(before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
                    after: dict[tuple[str, tuple[tuple[str, str], ...]], float]
                    ) -> dict[str, Any]:
    """Histogram quantiles (ms) and counter increases over the load window."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    hist: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    sums: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    counters: dict[str, float] = {}
    for (name, labels), v in delta.items():
        if name.endswith("_bucket"):
            le = dict(labels)["le"]
            rest = tuple(x for x in labels if x[0] != "le")
            hist.setdefault((name[:-7], rest), []).append((float(le), v))
        elif name.endswith("_sum"):
            sums[(name[:-4], labels)] = v
        elif name.endswith("_total") and v > 0:
            label_text = ",".join(f"{a}={b}" for a, b in labels)
            counters[f"{name}{{{label_text}}}" if label_text else name] = round(v, 3)
    wanted = {
        "orderflow_order_stage_seconds": ("stage_ms", 1000.0),
        "orderflow_venue_quote_seconds": ("venue_quote_ms", 1000.0),
        "orderflow_rpc_request_seconds": ("rpc_request_ms", 1000.0),
        "orderflow_order_end_to_end_seconds": ("end_to_end_ms", 1000.0),
        "orderflow_sink_write_seconds": ("sink_write_ms", 1000.0),
        "orderflow_sink_batch_events": ("sink_batch_events", 1.0),
        "orderflow_journal_batch_orders": ("journal_batch_orders", 1.0),
    }
    out: dict[str, Any] = {}
    for (name, labels), buckets in sorted(hist.items()):
        if name not in wanted:
            continue
        section, scale = wanted[name]
        buckets.sort()
        count = buckets[-1][1]
        if count <= 0:
            continue
        label = ",".join(b for _, b in labels) or "all"
        entry: dict[str, Any] = {"count": int(count),
                                 "mean": round(sums.get((name, labels), 0.0) / count * scale, 2)}
        for q in (0.5, 0.95, 0.99):
            qv = histogram_quantile(q, buckets)
            entry[f"p{round(q * 100)}"] = None if qv is None else round(qv * scale, 2)
        out.setdefault(section, {})[label] = entry
    out["counters"] = dict(sorted(counters.items()))
    return out
