"""Orders the bench submits: always routable, each with a unique amount."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orderflow.bench.stats import units_text
from pipeline.tokens import SOL, USDC

SCHEMA = "orderflow-bench/1"
SOL_ORDER = 10_000_000  # 0.01 SOL, plus the order's index in lamports
USDC_ORDER = 1_000_000  # 1 USDC, plus the order's index in micro-USDC
LAMPORTS_PER_SOL = 1_000_000_000
FEE_BUDGET_LAMPORTS = 100_000  # per order: signatures and a temporary wSOL account, generously
TERMINAL = ("confirmed", "failed")
STAGES = ("queue", "pending_to_routing", "routing_to_building", "building_to_submitted",
          "submitted_to_confirmed")
CEILINGS = ("chain", "flow", "broker")
JSON_HEADERS = {"Content-Type": "application/json"}

@dataclass(frozen=True, slots=True)
class OrderSpec:
    index: int
    path: str
    token_in: str
    token_out: str
    amount: int

    @property
    def symbols(self) -> tuple[str, str]:
        return ("SOL", "USDC") if self.token_in == SOL.mint else ("USDC", "SOL")

    @property
    def ui_amount(self) -> str:
        return units_text(self.amount, 9 if self.token_in == SOL.mint else 6)


def order_specs(count: int, paths: Sequence[str], first_index: int) -> list[OrderSpec]:
    """Alternate paths and directions; every amount is unique, so venue calls map to orders."""
    out = []
    for k in range(count):
        i = first_index + k
        path = paths[k % len(paths)]
        sell_sol = (k // len(paths)) % 2 == 0
        if sell_sol:
            out.append(OrderSpec(i, path, SOL.mint, USDC.mint, SOL_ORDER + i))
        else:
            out.append(OrderSpec(i, path, USDC.mint, SOL.mint, USDC_ORDER + i))
    return out


def funds_needed(specs: Sequence[OrderSpec]) -> tuple[int, int]:
    """(lamports, micro-USDC) the orders spend at most."""
    lamports = sum(s.amount for s in specs if s.token_in == SOL.mint)
    usdc = sum(s.amount for s in specs if s.token_in == USDC.mint)
    return lamports + FEE_BUDGET_LAMPORTS * len(specs) + LAMPORTS_PER_SOL, usdc
