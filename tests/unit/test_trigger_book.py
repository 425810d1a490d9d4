"""The trigger book: sorted by limit rate, swept with the pools' rate bound.

Properties over random books and random sequences of pool states (CP-Swap and DLMM, the
market moving both ways): after every update no order left in the book is fillable at its
limit (none missed), every order taken was fillable at that moment (none early), and no
order is taken twice. Plus the bookkeeping: idempotent add, take once, candidate counts.
"""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from dexmath import cpmm, dlmm
from pipeline.trigger_book import OpenLimit, TriggerBook, sweep
from pipeline.trigger_curves import CpmmCurve, Curve, DlmmCurve, PairView

SOL, USDC = "So11111111111111111111111111111111111111112", "USDCmint"


@st.composite
def views(draw: st.DrawFn) -> PairView:
    """One moment of a SOL/USDC market: a CP-Swap pool and a DLMM pool near 150."""
    sol = draw(st.integers(1_000, 5_000)) * 10**9
    price = draw(st.integers(120_000, 180_000))  # USDC base units per 1e3 lamports
    cp = CpmmCurve(SOL, USDC, sol, sol * price // 1_000_000, cpmm.FeeRates(2_500))
    active = dlmm.bin_id_for_price(Fraction(draw(st.integers(120, 180)), 1000), 10)
    bins = {active + i: dlmm.Bin(10**11 if i >= 0 else 0, 15 * 10**9 if i <= 0 else 0)
            for i in range(-30, 31)}
    dl = DlmmCurve(SOL, USDC, dlmm.DlmmState(10, active, bins, dlmm.FeeParams()), now=1_000)
    curves: list[Curve] = [cp, dl] if draw(st.booleans()) else [cp]
    return PairView.of(curves)


@st.composite
def orders(draw: st.DrawFn) -> list[OpenLimit]:
    out: list[OpenLimit] = []
    for i in range(draw(st.integers(1, 60))):
        sell_sol = draw(st.booleans())
        amount = draw(st.sampled_from([10**6, 10**8, 10**9, 5 * 10**10, 10**12, 3 * 10**12]))
        if not sell_sol:
            amount //= 1_000  # USDC base units of similar value
            amount = max(amount, 1)
        # limit price around the market: 100..200 USDC per SOL, either direction
        cents = draw(st.integers(100_00, 200_00))
        if sell_sol:
            min_out = max(1, amount * cents // 100_000)
        else:
            min_out = max(1, amount * 100_000 // cents)
        tin, tout = (SOL, USDC) if sell_sol else (USDC, SOL)
        out.append(OpenLimit(f"o{i}", tin, tout, amount, min_out))
    return out


@settings(max_examples=150, deadline=None)
@given(orders(), st.lists(views(), min_size=1, max_size=6))
def test_sweeps_take_every_fillable_order_once_and_no_other(
        book_orders: list[OpenLimit], moments: list[PairView]) -> None:
    book = TriggerBook()
    for o in book_orders:
        assert book.add(o)
    taken: list[str] = []
    for view in moments:
        for tin, tout in ((SOL, USDC), (USDC, SOL)):
            def best_out(amount: int, v: PairView = view, d: tuple[str, str] = (tin, tout)
                         ) -> int:
                return v.best_out(d[0], d[1], amount)
            done = sweep(book, (tin, tout), view.rate_bound(tin, tout), best_out)
            for o in done.triggered:
                assert view.best_out(o.token_in, o.token_out, o.amount_in) >= o.min_out
                taken.append(o.order_id)
        for o in book_orders:  # brute force: what is left must not be fillable now
            if o.order_id in book:
                assert view.best_out(o.token_in, o.token_out, o.amount_in) < o.min_out
    assert len(taken) == len(set(taken))
    assert set(taken) | {o.order_id for o in book_orders if o.order_id in book} == {
        o.order_id for o in book_orders}


def test_candidates_are_the_prefix_at_or_below_the_bound() -> None:
    book = TriggerBook()
    for i, min_out in enumerate([150, 140, 160, 150, 170]):
        book.add(OpenLimit(f"o{i}", SOL, USDC, 1, min_out))
    book.add(OpenLimit("other-side", USDC, SOL, 150, 1))
    got = [o.order_id for o in book.candidates((SOL, USDC), Fraction(150))]
    assert got[0] == "o1" and sorted(got[1:]) == ["o0", "o3"]
    assert book.count_at_most((SOL, USDC), Fraction(159)) == 3
    assert list(book.candidates((SOL, "nothing"), Fraction(10**9))) == []


def test_add_is_idempotent_and_take_returns_an_order_once() -> None:
    book = TriggerBook()
    order = OpenLimit("o1", SOL, USDC, 10**9, 150 * 10**6)
    assert book.add(order) and not book.add(order)
    assert len(book) == 1
    assert book.take("o1") == order
    assert book.take("o1") is None
    assert len(book) == 0 and book.directions() == []


def test_a_sweep_quotes_each_distinct_amount_once() -> None:
    book = TriggerBook()
    for i in range(10):
        book.add(OpenLimit(f"o{i}", SOL, USDC, 10**9, (140 + i) * 10**6))
    asked: list[int] = []

    def best_out(amount: int) -> int:
        asked.append(amount)
        return 145 * 10**6

    done = sweep(book, (SOL, USDC), Fraction(150 * 10**6, 10**9), best_out)
    assert [o.order_id for o in done.triggered] == [f"o{i}" for i in range(6)]
    assert done.candidates == 10 and done.quotes == 1 and asked == [10**9]
    assert len(book) == 4


def test_retain_drops_the_directions_of_revoked_partitions() -> None:
    book = TriggerBook()
    book.add(OpenLimit("a", SOL, USDC, 1, 1))
    book.add(OpenLimit("b", USDC, SOL, 1, 1))
    dropped = book.retain({(SOL, USDC)})
    assert [o.order_id for o in dropped] == ["b"] and "a" in book and "b" not in book


def test_memory_per_open_order_is_bounded() -> None:
    """An open order costs its record, its Fraction rate, a slot in the sorted list and
    in the id index: under 1 KiB each (the bench reports the measured figure)."""
    n = 20_000
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    book = TriggerBook()
    for i in range(n):
        book.add(OpenLimit(f"{i:032x}", SOL, USDC, 10**9 + i, 150 * 10**6 + 7 * i))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_order = sum(s.size_diff for s in after.compare_to(before, "filename")) / n
    assert 150 < per_order < 1024, per_order
