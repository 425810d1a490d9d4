"""Splitting one order across two venues when that pays: pure integer search.

Each venue's exact-in output ``f(x)`` (base units in → base units out, fees included) is
known exactly from its pool state (``dexmath``), is non-decreasing, and has diminishing
returns (the price moves against the trader as ``x`` grows; a DLMM's variable fee only
adds to that). So the optimum of ``f_a(x) + f_b(total - x)`` is where the two marginal
outputs cross: found by bisection on ever finer steps in ``O(log total)`` evaluations,
then a scan of the few hundred integers around it, which absorbs the floor of each quote.

A split costs one more swap instruction (compute units, so priority fee); the caller
states that cost in output units as ``min_gain``, and the split is taken only when it
beats the better single venue by more than that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_EXHAUSTIVE = 4_096
"""Up to this many base units every split is tried: the marginals of tiny amounts are
mostly rounding, too noisy to bisect on."""

_SCAN = 64
"""Integers scanned either side of the unit-step crossing: the floor of each quote makes
unit marginals noisy, so the last step is a scan."""

Curve = Callable[[int], int]
"""Exact-in output of one venue for an input amount (0 for 0; never raises for 0..total)."""



@dataclass(frozen=True, slots=True)
class Split:
    amount_a: int
    amount_b: int
    out_a: int
    out_b: int

    @property
    def out(self) -> int:
        return self.out_a + self.out_b

    @property
    def fraction_a_bps(self) -> int:
        total = self.amount_a + self.amount_b
        return 0 if total == 0 else self.amount_a * 10_000 // total


def best_split(f_a: Curve, f_b: Curve, total: int, *, min_gain: int = 0) -> Split:
    """The best way to send ``total`` through venues a and b: all to one, or a split that
    beats the better single venue by more than ``min_gain`` output units."""
    if total <= 0:
        raise ValueError("total must be positive")
    all_a = Split(total, 0, f_a(total), 0)
    all_b = Split(0, total, 0, f_b(total))
    single = all_a if all_a.out >= all_b.out else all_b
    best_x = max(_candidates(f_a, f_b, total),
                 key=lambda x: f_a(x) + f_b(total - x), default=None)
    if best_x is None:
        return single
    split = Split(best_x, total - best_x, f_a(best_x), f_b(total - best_x))
    return split if split.out > single.out + min_gain else single


def _candidates(f_a: Curve, f_b: Curve, total: int) -> range:
    """Where the best split lies: every split of a small order; else the integers around
    the crossing of the two venues' marginal outputs. Marginals are taken over a step
    ``d`` so that the floor of each quote cannot flip their sign; the crossing is found by
    bisection, then again inside the window around it with a 64 times finer step, down to
    a step of one unit: ``O(log total)`` evaluations for any order size (a 10^12-unit
    order costs a few hundred quotes, not a scan of its window)."""
    if total <= _EXHAUSTIVE:
        return range(1, total)
    lo, hi = 0, total
    d = max(1, total // 2048)
    while True:
        x = _crossing(f_a, f_b, total, lo, max(lo, hi - d), d)
        lo, hi = max(0, x - 2 * d), min(total, x + 2 * d)
        if d == 1:
            break
        d = max(1, d // 64)
    return range(max(1, lo - _SCAN), min(total - 1, hi + _SCAN) + 1)


def _crossing(f_a: Curve, f_b: Curve, total: int, lo: int, hi: int, d: int) -> int:
    """The first ``x`` in ``lo..hi`` where a's marginal over ``d`` no longer beats b's."""
    while lo < hi:
        mid = (lo + hi) // 2
        if f_a(mid + d) - f_a(mid) > f_b(total - mid) - f_b(total - mid - d):
            lo = mid + 1
        else:
            hi = mid
    return lo
