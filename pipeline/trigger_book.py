"""Open limit orders, per direction of a token pair, sorted by limit rate (pure).

A limit order sells ``amount_in`` of A for at least ``min_out`` of B. It triggers when the
best net output across the venues *for its own amount* reaches ``min_out``. Output is
not linear in the amount, so no single price decides every order; the book therefore
keeps each direction's orders sorted by the limit rate ``min_out / amount_in`` (an exact
:class:`~fractions.Fraction`) and uses one cheap, sound bound to find the candidates:

**The bound.** Every pool curve is concave with ``out(0) = 0`` and its output only gets
worse as the trade walks the curve (fees and floors only subtract), so for *any* amount
``a``: ``out(a) <= a * m``, where ``m`` is the curve's marginal net rate at its current
state (CP-Swap: ``(1 - fee) * R_out / R_in``; DLMM: ``(1 - base fee) * price`` of the
bin the walk starts in; see :mod:`pipeline.trigger_curves`). The best over venues obeys
the same bound with ``M = max m``. An order with rate ``r > M`` therefore cannot trigger
(``out(a) <= M * a < r * a = min_out``): only the prefix ``r <= M`` of the sorted book is
read, found by bisection in O(log n). Each candidate is then confirmed with an exact
quote for its own amount (:meth:`TriggerBook.take` removes it, so it triggers once).

Cost of one price update: O(log n + k), k = orders with ``r <= M``: the ones that
trigger, plus the ones "in the money at the margin" whose own size moves the price below
their limit (large orders within ``impact`` of the market). ``orderflow bench`` reports k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

from sortedcontainers import SortedKeyList

Direction = tuple[str, str]
"""(token_in mint, token_out mint): the two directions of a pair are separate books."""


@dataclass(frozen=True, slots=True)
class OpenLimit:
    """An open limit order, as the trigger engine needs it (amounts in base units)."""

    order_id: str
    token_in: str
    token_out: str
    amount_in: int
    min_out: int
    rate: Fraction = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.amount_in <= 0 or self.min_out <= 0:
            raise ValueError("a limit order needs a positive amount_in and min_out")
        object.__setattr__(self, "rate", Fraction(self.min_out, self.amount_in))

    @property
    def direction(self) -> Direction:
        return (self.token_in, self.token_out)


def _rate(order: OpenLimit) -> Fraction:
    return order.rate


class TriggerBook:
    """Every open limit order of the pairs this worker owns; one sorted list per direction.

    Not thread-safe; the trigger agent runs it on the event loop. Adding an order twice is
    a no-op (a redelivered ``open`` message), and :meth:`take` returns an order at most
    once, so a trigger cannot fire twice in this process (the journal's compare-and-set
    does it across processes).
    """

    def __init__(self) -> None:
        self._books: dict[Direction, SortedKeyList] = {}
        self._by_id: dict[str, OpenLimit] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._by_id

    def directions(self) -> list[Direction]:
        return [d for d, book in self._books.items() if book]

    def add(self, order: OpenLimit) -> bool:
        """Hold ``order``; False if its id is already held (idempotent)."""
        if order.order_id in self._by_id:
            return False
        book = self._books.get(order.direction)
        if book is None:
            book = self._books[order.direction] = SortedKeyList(key=_rate)
        book.add(order)
        self._by_id[order.order_id] = order
        return True

    def take(self, order_id: str) -> OpenLimit | None:
        """Remove and return the order (triggered, cancelled or expired); None if not held."""
        order = self._by_id.pop(order_id, None)
        if order is None:
            return None
        book = self._books[order.direction]
        book.remove(order)
        if not book:
            del self._books[order.direction]
        return order

    def get(self, order_id: str) -> OpenLimit | None:
        return self._by_id.get(order_id)

    def candidates(self, direction: Direction, bound: Fraction) -> Iterator[OpenLimit]:
        """The orders of ``direction`` whose limit rate is at most ``bound`` (ascending
        rate): the only ones that can trigger when no amount gets more than ``bound`` per
        unit in. O(log n) to find, then one step per candidate. Materialise the iterator
        before taking orders out of the book."""
        book = self._books.get(direction)
        if book is None:
            return iter(())
        stop = book.bisect_key_right(bound)
        return iter(book.islice(0, stop))

    def count_at_most(self, direction: Direction, bound: Fraction) -> int:
        book = self._books.get(direction)
        return 0 if book is None else int(book.bisect_key_right(bound))

    def retain(self, keep: set[Direction] | None = None) -> list[OpenLimit]:
        """Drop every order whose direction is not in ``keep`` (partitions revoked);
        return what was dropped."""
        dropped: list[OpenLimit] = []
        for direction in list(self._books):
            if keep is not None and direction in keep:
                continue
            for order in self._books.pop(direction):
                del self._by_id[order.order_id]
                dropped.append(order)
        return dropped


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one price update did to one direction: the orders it took out (triggered,
    in ascending limit rate) and how many candidates it had to quote exactly."""

    triggered: tuple[OpenLimit, ...]
    candidates: int
    quotes: int


def sweep(book: TriggerBook, direction: Direction, bound: Fraction,
          best_out: Callable[[int], int]) -> Sweep:
    """Take out every order of ``direction`` that the market fills now.

    ``bound`` must be at least ``best_out(a) / a`` for every ``a`` (the pools' rate
    bound); ``best_out`` is the exact best net output for an amount. Each candidate is
    confirmed for its own amount (one quote per distinct amount); the ones that reach
    their ``min_out`` are removed from the book and returned, so none is returned twice.
    """
    candidates = list(book.candidates(direction, bound))
    outs: dict[int, int] = {}
    fired: list[OpenLimit] = []
    for order in candidates:
        out = outs.get(order.amount_in)
        if out is None:
            out = outs[order.amount_in] = best_out(order.amount_in)
        if out >= order.min_out and book.take(order.order_id) is not None:
            fired.append(order)
    return Sweep(tuple(fired), len(candidates), len(outs))
