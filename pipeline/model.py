"""The market's nouns, shared by routing, venues, the lifecycle and the wire: a venue and
one venue's quote for an order (amounts in base units)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


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
