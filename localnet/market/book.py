"""A pool's book: on-chain settled state plus the swaps the market issued but not yet landed.

The market pays a fixed amount in each swap transaction it builds, computed on the book at
the time it builds it. The book is therefore a chain of swap records in issue order, each
with the state before (``pre``) and after (``post``) it::

    base --r1--> s1 --r2--> s2 --r3--> s3 = book

* issuing appends a record priced on the current book;
* landing marks a record settled (the book does not move: it already contained it), and
  settled records at the head of the chain fold into ``base``;
* expiry (or a failed transaction) removes a record: the book restarts from that record's
  ``pre`` and every later record is *replayed* on top of it with its fixed token amounts.

Token totals only ever move by a record's fixed ``(+amount_in, -amount_out)``, so once every
record has landed the pool's totals equal the vault balances exactly, whatever expired in
between. How the replay redistributes a record inside the pool is venue-specific.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Generic, TypeVar

from dexmath import cpmm, dlmm

S = TypeVar("S")


class SlippageExceeded(Exception):
    """The book now pays less than the caller's minimum (Jupiter program error 6001)."""

    def __init__(self, amount_out: int, minimum: int) -> None:
        super().__init__(f"would pay {amount_out}, below the minimum {minimum}")
        self.amount_out = amount_out
        self.minimum = minimum


class InsufficientVault(Exception):
    """The payout is not covered by what the vault is sure to hold."""


@dataclass(frozen=True, slots=True)
class Fill(Generic[S]):
    """A swap priced on some state."""

    x_to_y: bool
    amount_in: int
    amount_out: int
    fee: int
    price_impact: Fraction
    now: int
    pre: S
    post: S


@dataclass(slots=True, eq=False)
class Record(Generic[S]):
    """An issued swap: fixed token amounts, the transaction's key and its expiry."""

    key: bytes
    x_to_y: bool
    amount_in: int
    amount_out: int
    fee: int
    now: int
    last_valid_block_height: int
    pre: S
    post: S
    landed: bool = False


class Book(ABC, Generic[S]):
    """Venue-independent bookkeeping; subclasses supply pricing and replay."""

    def __init__(self, state: S) -> None:
        self._base = state
        self._records: list[Record[S]] = []
        self._by_key: dict[bytes, Record[S]] = {}

    # ---- venue-specific -------------------------------------------------------------

    @abstractmethod
    def price(self, state: S, x_to_y: bool, amount_in: int, now: int) -> Fill[S]:
        """Price a swap on ``state`` (raises the venue's error if it cannot fill)."""

    @abstractmethod
    def replay(self, state: S, record: Record[S]) -> S:
        """Re-apply an issued swap, whose token amounts are fixed, on another state."""

    @abstractmethod
    def totals(self, state: S) -> tuple[int, int]:
        """Tokens the pool holds in ``state`` (what its X and Y vaults must hold)."""

    # ---- book -----------------------------------------------------------------------

    @property
    def state(self) -> S:
        """The book: what quotes are priced on."""
        return self._records[-1].post if self._records else self._base

    def current_totals(self) -> tuple[int, int]:
        """Tokens the pool holds on the book (settled + in flight)."""
        return self.totals(self.state)

    def quote(self, x_to_y: bool, amount_in: int, now: int) -> Fill[S]:
        return self.price(self.state, x_to_y, amount_in, now)

    def fill(self, x_to_y: bool, amount_in: int, now: int, minimum_out: int) -> Fill[S]:
        """Price on the current book and enforce the caller's minimum output.

        Also refuses to promise tokens the vault might not have: the payout must be covered
        by the vault balance now, less everything the swaps in flight may still pay out of
        it, whichever of them land. Then no issued transfer can fail for want of funds.
        """
        fill = self.quote(x_to_y, amount_in, now)
        if fill.amount_out < minimum_out:
            raise SlippageExceeded(fill.amount_out, minimum_out)
        if fill.amount_out > self.payable(out_x=not x_to_y):
            raise InsufficientVault(f"vault cannot cover {fill.amount_out}")
        return fill

    def payable(self, *, out_x: bool) -> int:
        """Vault balance that no in-flight swap can claim."""
        settled = self.settled_totals()[0 if out_x else 1]
        owed = sum(r.amount_out for r in self.pending() if r.x_to_y != out_x)
        return settled - owed

    def commit(self, fill: Fill[S], key: bytes, last_valid_block_height: int) -> Record[S]:
        """Reserve a fill as pending under ``key``; it must be priced on the current book."""
        if fill.pre is not self.state:
            raise RuntimeError("fill was priced on a stale book")
        if key in self._by_key:
            raise RuntimeError("a swap with this key is already pending")
        record = Record(
            key,
            fill.x_to_y,
            fill.amount_in,
            fill.amount_out,
            fill.fee,
            fill.now,
            last_valid_block_height,
            fill.pre,
            fill.post,
        )
        self._records.append(record)
        self._by_key[key] = record
        return record

    def settle(self, key: bytes) -> bool:
        """The transaction landed: the swap is final. Returns False for unknown keys."""
        record = self._by_key.pop(key, None)
        if record is None:
            return False
        record.landed = True
        while self._records and self._records[0].landed:
            self._base = self._records.pop(0).post
        return True

    def release(self, key: bytes) -> Record[S] | None:
        """The transaction will never land: take the swap out of the book.

        Returns the released record (``None`` for unknown keys), which
        :meth:`land_released` needs if the transaction lands after all.
        """
        released = self._by_key.pop(key, None)
        if released is None:
            return None
        i = next(i for i, r in enumerate(self._records) if r is released)
        state = self._records.pop(i).pre
        for record in self._records[i:]:
            record.pre = state
            record.post = self.replay(state, record)
            state = record.post
        return released

    def land_released(self, record: Record[S]) -> None:
        """A released swap landed after all (e.g. re-sent once the wallet could pay).

        Its fixed amounts moved on chain, so they move the book too: replayed on top of the
        current book as a landed swap. Token totals stay equal to the vaults.
        """
        state = self.state
        record.pre = state
        record.post = self.replay(state, record)
        record.landed = True
        self._records.append(record)
        while self._records and self._records[0].landed:
            self._base = self._records.pop(0).post

    def pending(self) -> list[Record[S]]:
        """Swaps issued and not landed, in issue order."""
        return [r for r in self._records if not r.landed]

    def expired(self, block_height: int) -> list[bytes]:
        """Keys whose blockhash can no longer land at ``block_height``."""
        return [r.key for r in self.pending() if r.last_valid_block_height < block_height]

    def settled_totals(self) -> tuple[int, int]:
        """What the vaults hold on chain now: the book minus the swaps still in flight."""
        x, y = self.totals(self.state)
        for r in self.pending():
            if r.x_to_y:
                x, y = x - r.amount_in, y + r.amount_out
            else:
                x, y = x + r.amount_out, y - r.amount_in
        return x, y


class CpmmBook(Book[cpmm.CpmmState]):
    """Reserves are plain token totals, so undoing or replaying a swap is exact arithmetic."""

    def price(
        self, state: cpmm.CpmmState, x_to_y: bool, amount_in: int, now: int
    ) -> Fill[cpmm.CpmmState]:
        out, fee, post, impact = cpmm.quote_exact_in(state, x_to_y, amount_in)
        return Fill(x_to_y, amount_in, out, fee, impact, now, state, post)

    def replay(self, state: cpmm.CpmmState, record: Record[cpmm.CpmmState]) -> cpmm.CpmmState:
        reserve_in, reserve_out = state.reserves(record.x_to_y)
        return state.with_reserves(
            record.x_to_y, reserve_in + record.amount_in, reserve_out - record.amount_out
        )

    def totals(self, state: cpmm.CpmmState) -> tuple[int, int]:
        return state.reserve_a, state.reserve_b


class DlmmBook(Book[dlmm.DlmmState]):
    """Bins, active id and volatility are path-dependent, so replay re-walks the bins.

    A replayed swap is re-priced with its original input and timestamp on the new state;
    the pool still pays the fixed ``amount_out`` it promised, and the difference to the
    re-priced output is booked against the output token's fee bucket (kept when the curve
    now pays less, taken from it — then from the bins nearest the active one — when the
    curve now pays more). Token totals stay exact either way, and since :meth:`Book.fill`
    never promises more than the vault is sure to hold, the bucket cannot go negative.
    """

    def price(
        self, state: dlmm.DlmmState, x_to_y: bool, amount_in: int, now: int
    ) -> Fill[dlmm.DlmmState]:
        q = dlmm.quote_exact_in(state, x_to_y, amount_in, now)
        return Fill(x_to_y, amount_in, q.amount_out, q.fee, q.price_impact, now, state, q.new_state)

    def replay(self, state: dlmm.DlmmState, record: Record[dlmm.DlmmState]) -> dlmm.DlmmState:
        try:
            q = dlmm.quote_exact_in(state, record.x_to_y, record.amount_in, record.now)
        except dlmm.DlmmError:
            # Cannot walk any more: keep the input as the pool's and pay from its holdings.
            held = _credit(state, in_x=record.x_to_y, amount=record.amount_in)
            return _debit(held, out_x=not record.x_to_y, amount=record.amount_out)
        surplus = q.amount_out - record.amount_out
        if surplus >= 0:
            return _credit(q.new_state, in_x=not record.x_to_y, amount=surplus)
        return _debit(q.new_state, out_x=not record.x_to_y, amount=-surplus)

    def totals(self, state: dlmm.DlmmState) -> tuple[int, int]:
        return state.total_x, state.total_y


def _credit(state: dlmm.DlmmState, *, in_x: bool, amount: int) -> dlmm.DlmmState:
    if in_x:
        return replace(state, fee_x=state.fee_x + amount)
    return replace(state, fee_y=state.fee_y + amount)


def _debit(state: dlmm.DlmmState, *, out_x: bool, amount: int) -> dlmm.DlmmState:
    """Take tokens from the fee bucket, then from bins nearest the active bin."""
    fee = state.fee_x if out_x else state.fee_y
    from_fee = min(fee, amount)
    left = amount - from_fee
    bins = dict(state.bins)
    for bin_id in sorted(bins, key=lambda i: (abs(i - state.active_id), i)):
        if left == 0:
            break
        b = bins[bin_id]
        have = b.amount_x if out_x else b.amount_y
        take = min(have, left)
        left -= take
        bins[bin_id] = (
            dlmm.Bin(b.amount_x - take, b.amount_y)
            if out_x
            else dlmm.Bin(b.amount_x, b.amount_y - take)
        )
    # Anything still owed (only if the pool ran dry, which Book.fill prevents) stays as a
    # negative fee bucket so that token totals remain exact.
    fee -= from_fee + left
    if out_x:
        return replace(state, bins=bins, fee_x=fee)
    return replace(state, bins=bins, fee_y=fee)
