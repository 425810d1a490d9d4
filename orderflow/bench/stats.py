"""Statistics: quantiles, summaries, steady rates, interval unions, histogram quantiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(values: Iterable[float], digits: int = 1) -> dict[str, float | int]:
    s = sorted(values)
    if not s:
        return {"n": 0}
    return {"n": len(s), "mean": round(sum(s) / len(s), digits),
            "p50": round(quantile(s, 0.50), digits), "p95": round(quantile(s, 0.95), digits),
            "p99": round(quantile(s, 0.99), digits), "max": round(s[-1], digits)}


def steady_rate(times: Sequence[float], lo: float = 0.1, hi: float = 0.9,
                min_span_s: float = 3.0) -> float | None:
    """Events per second between the ``lo`` and ``hi`` quantiles of their times.

    ``None`` when that window is shorter than ``min_span_s``: confirmations come in bursts
    (one per slot and status poll), so a short window measures a burst, not a rate.
    """
    s = sorted(times)
    if len(s) < 10:
        return None
    i, j = int(lo * (len(s) - 1)), int(hi * (len(s) - 1))
    span = s[j] - s[i]
    return (j - i) / span if span >= min_span_s else None


def union_length(intervals: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of ``intervals`` clipped to [lo, hi]."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi)
    total, end = 0.0, lo
    for a, b in clipped:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative (le, count) buckets."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def ratio(ours: float | None, ceiling: float | None) -> float | None:
    if not ours or not ceiling:
        return None
    return round(ours / ceiling, 4)


def units_text(units: int, decimals: int) -> str:
    return f"{units // 10**decimals}.{units % 10**decimals:0{decimals}d}"
