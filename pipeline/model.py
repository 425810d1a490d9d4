"""The market's nouns, shared by routing, venues, the lifecycle and the wire: a venue, one
venue's quote for an order, and the route an order takes (amounts in base units)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Venue(StrEnum):
    RAYDIUM = "raydium"
    METEORA = "meteora"


@dataclass(frozen=True, slots=True)
class Quote:
    """One venue's answer for the order, in base units."""

    venue: Venue
    in_amount: int
    out_amount: int
    fee_amount: int
    fee_mint: str
    price_impact_pct: str
    amm_key: str
    context_slot: int
    raw: dict[str, object] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    # What the route's own instructions add to the transaction's fee (priority fee on its
    # estimated compute units), in lamports; 0 when the venue builds the transaction itself.
    cost_lamports: int = 0
    # The pool's exact curve on the state this quote read (engine-built venues only): lets
    # the router split the order; None for venues that build their own transactions.
    curve: PoolCurve | None = dataclasses.field(default=None, compare=False, repr=False)
    # A split: one quote per leg, each for its own share (``in_amount`` is their sum).
    legs: tuple[Quote, ...] = ()


class PoolCurve(Protocol):
    """One pool's exact-in output for any input, on the pool state already read (no RPC)."""

    def out(self, amount_in: int) -> int:
        """The exact output for ``amount_in`` (0 when the pool cannot fill it)."""
        ...

    def at(self, amount_in: int, min_out: int) -> Quote:
        """This pool's quote for ``amount_in`` whose swap the program refuses below
        ``min_out`` (a leg of a split)."""
        ...


@dataclass(frozen=True, slots=True)
class RouteLeg:
    """One swap of an order's route: where, how much in, what it should pay, the least the
    program accepts, and its share of the order's input in bps."""

    venue: Venue
    pool: str
    amount_in: int
    expected_out: int
    min_out: int
    fraction_bps: int


class OrderType(StrEnum):
    """What an order waits for: nothing (market), a price (limit), a new pool (sniper)."""

    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"

    @property
    def conditional(self) -> bool:
        """It waits ``open`` on the market until its condition holds, then executes."""
        return self is not OrderType.MARKET


@dataclass(frozen=True, slots=True)
class LimitTerms:
    """A limit order's condition: at least ``min_out`` (base units of the output) for the
    whole input. It triggers when the best net quote reaches it and is sent with it as the
    swap's on-chain minimum, so it never fills worse."""

    min_out: int

    def __post_init__(self) -> None:
        if not isinstance(self.min_out, int) or isinstance(self.min_out, bool) \
                or self.min_out < 1:
            raise ValueError("a limit's min_out is a positive integer (base units)")


@dataclass(frozen=True, slots=True)
class SniperTerms:
    """A sniper order's guards; the token to buy is the order's ``token_out`` and what it
    pays its ``amount_in`` of ``token_in`` (the quote side, e.g. SOL).

    - ``min_quote_liquidity``: the new pool must hold at least this much of ``token_in``
      (base units), else it is refused (a dust pool is a trap, not a launch);
    - ``min_out``: the maximum price, as the least ``token_out`` to receive for the input
      (exact: a price in UI units needs the new token's decimals, unknown before launch);
    - ``max_price_impact_bps``: the largest price impact the swap may have;
    - ``max_delay_slots``: give up on a pool detected more than this many slots after the
      slot it was created in (a late snipe buys someone else's pump);
    - ``priority_fee_micro_lamports``: the compute-unit price of this order's swap.
    """

    min_quote_liquidity: int
    min_out: int | None = None
    max_price_impact_bps: int | None = None
    max_delay_slots: int | None = None
    priority_fee_micro_lamports: int | None = None

    def __post_init__(self) -> None:
        for name, low in (("min_quote_liquidity", 0), ("min_out", 1),
                          ("max_price_impact_bps", 1), ("max_delay_slots", 0),
                          ("priority_fee_micro_lamports", 0)):
            value = getattr(self, name)
            if value is None and name != "min_quote_liquidity":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"a sniper's {name} is an integer >= {low}")
        if self.max_price_impact_bps is not None and self.max_price_impact_bps > 10_000:
            raise ValueError("a sniper's max_price_impact_bps is at most 10000")
