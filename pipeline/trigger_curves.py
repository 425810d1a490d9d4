"""One pair's pools at one moment, as the trigger engine reads them (pure).

A :class:`Curve` answers two questions about one pool: the exact net output for an
amount (the programs' integer math from :mod:`dexmath`, fees included, 0 when the pool
cannot fill it) and a *rate bound*: a number no amount can beat per unit in. The bound is
what makes the sorted book work (see :mod:`pipeline.trigger_book`); it must never be
below the truth, which ``tests/unit/test_trigger_curves.py`` checks against the exact
quote on random pools and amounts:

* CP-Swap: ``out = floor((a - fee) * R_out / (R_in + a - fee))`` with
  ``fee = ceil(a * rate / 1e6)``, so ``out <= a * (1 - rate/1e6) * R_out / R_in``.
* DLMM: every bin the walk visits is priced no better than the active bin (selling X walks
  down, selling Y walks up), each bin's output is floored, and each bin's fee is at least
  the base fee rate of its input, so ``out <= a * (1 - base/1e9) * price`` (X->Y) or
  ``a * (1 - base/1e9) / price`` (Y->X).

:class:`PairView` is the best over a pair's curves, the same choice the router makes
(the largest net output).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from dexmath import cpmm, dlmm


class Curve(Protocol):
    @property
    def mint_a(self) -> str: ...

    @property
    def mint_b(self) -> str: ...

    def rate_bound(self, a_to_b: bool) -> Fraction: ...

    def out(self, a_to_b: bool, amount_in: int) -> int: ...


@dataclass(frozen=True, slots=True)
class CpmmCurve:
    """A constant-product pool's effective reserves and fee rates (Raydium CP-Swap)."""

    mint_a: str
    mint_b: str
    reserve_a: int
    reserve_b: int
    rates: cpmm.FeeRates

    def rate_bound(self, a_to_b: bool) -> Fraction:
        r_in, r_out = ((self.reserve_a, self.reserve_b) if a_to_b
                       else (self.reserve_b, self.reserve_a))
        if r_in <= 0 or r_out <= 0:
            return Fraction(0)
        keep = Fraction(cpmm.FEE_RATE_DENOMINATOR - self.rates.trade_fee_rate,
                        cpmm.FEE_RATE_DENOMINATOR)
        return keep * Fraction(r_out, r_in)

    def out(self, a_to_b: bool, amount_in: int) -> int:
        r_in, r_out = ((self.reserve_a, self.reserve_b) if a_to_b
                       else (self.reserve_b, self.reserve_a))
        try:
            return cpmm.swap_base_input(amount_in, r_in, r_out, self.rates).amount_out
        except cpmm.CpmmError:
            return 0


@dataclass(frozen=True, slots=True)
class DlmmCurve:
    """A DLMM pair's bins and fee state at the cluster time ``now`` (X = a, Y = b)."""

    mint_a: str
    mint_b: str
    state: dlmm.DlmmState
    now: int

    def rate_bound(self, a_to_b: bool) -> Fraction:
        side = [b for b in self.state.bins.values() if (b.amount_y if a_to_b else b.amount_x)]
        if not side:
            return Fraction(0)
        base = min(dlmm.base_fee_rate(self.state.params, self.state.bin_step),
                   dlmm.MAX_FEE_RATE)
        keep = Fraction(dlmm.FEE_PRECISION - base, dlmm.FEE_PRECISION)
        price = Fraction(self.state.price(), dlmm.ONE)
        return keep * (price if a_to_b else 1 / price)

    def out(self, a_to_b: bool, amount_in: int) -> int:
        try:
            return dlmm.quote_exact_in(self.state, a_to_b, amount_in, self.now).amount_out
        except dlmm.DlmmError:
            return 0


@dataclass(frozen=True, slots=True)
class PairView:
    """Every curve of one pair at one moment, and where that moment is (slot).

    :meth:`best_out` quotes the curves in descending rate bound and skips a curve whose
    bound times the amount cannot beat the best output found so far: the same maximum,
    without walking a pool that cannot win (the bounds are computed once per view)."""

    curves: tuple[Curve, ...]
    slot: int = 0
    _oriented_cache: dict[tuple[str, str], list[tuple[Fraction, Curve, bool]]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, curves: Sequence[Curve], slot: int = 0) -> PairView:
        return cls(tuple(curves), slot)

    def _oriented(self, token_in: str, token_out: str) -> list[tuple[Fraction, Curve, bool]]:
        key = (token_in, token_out)
        cached = self._oriented_cache.get(key)
        if cached is None:
            out: list[tuple[Fraction, Curve, bool]] = []
            for c in self.curves:
                if (c.mint_a, c.mint_b) == key:
                    out.append((c.rate_bound(True), c, True))
                elif (c.mint_b, c.mint_a) == key:
                    out.append((c.rate_bound(False), c, False))
            out.sort(key=lambda item: item[0], reverse=True)
            cached = self._oriented_cache[key] = out
        return cached

    def rate_bound(self, token_in: str, token_out: str) -> Fraction:
        """No amount of ``token_in`` gets more than this much ``token_out`` per unit."""
        oriented = self._oriented(token_in, token_out)
        return oriented[0][0] if oriented else Fraction(0)

    def best_out(self, token_in: str, token_out: str, amount_in: int) -> int:
        """The best exact net output over the pair's pools (0 if none can fill)."""
        best = 0
        for bound, curve, a_to_b in self._oriented(token_in, token_out):
            if bound * amount_in <= best:
                break  # sorted by bound: no later curve can pay more
            best = max(best, curve.out(a_to_b, amount_in))
        return best
