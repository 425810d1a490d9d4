"""The transaction around a swap the engine builds itself (on-chain venues).

Every such transaction, in this order:

1. ``SetComputeUnitLimit`` from a simulation's units consumed times (1 + margin) plus a fixed
   headroom, so the fee pays for what the swap uses, not the 200k-per-instruction default,
   yet a pool that moved before the swap lands (a DLMM walk over more bins) still gets far
   enough for its program to enforce the minimum out;
2. ``SetComputeUnitPrice`` from ``getRecentPrioritizationFees`` over the writable
   accounts: a configurable percentile, clamped (a fee spike cannot empty the wallet);
3. idempotent creation of the wallet's associated token accounts it receives into (and
   the input one for a wrapped-SOL input), so a first trade of a token just works;
4. SOL in: wrap exactly the input (transfer + ``SyncNative``) into the wSOL account;
5. the venue legs (one swap instruction each; two for a split, in one transaction so
   the split is atomic);
6. SOL involved: close the wSOL account, which unwraps what is left to the wallet;
7. an SPL Memo ``orderflow:<orderId>``, by which recovery and people find the order's
   transaction on chain (``pipeline/chain_history.py``).

Pure: the caller fetches the fees, the simulation and the blockhash.

An aggregator's swap (Jupiter ``/swap-instructions``) brings its own compute budget, ATA
and wrap instructions: :func:`aggregator_message` keeps them in the aggregator's order, adds
the same memo (with compute units for it), sets an order's own compute-unit price where
the order has one (a sniper's priority fee), and compiles through its lookup tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    sync_native,
)
from spl.token.models import CloseAccountParams, SyncNativeParams

from pipeline.tokens import WSOL_MINT

MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
WSOL = Pubkey.from_string(WSOL_MINT)
MAX_COMPUTE_UNITS = 1_400_000


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """How the priority fee and the compute limit are set."""

    percentile: int = 75  # of the recent prioritization fees over our writable accounts
    min_micro_lamports: int = 0
    max_micro_lamports: int = 2_000_000  # per compute unit: 0.002 lamports
    cu_margin_pct: int = 10
    # Units on top of the margin: a DLMM bin costs ~5k units on the real program, so a swap
    # simulated inside one bin and landing after the pool moved ~20 bins still completes
    # and meets its minimum-out check (6003) instead of ComputationalBudgetExceeded.
    cu_headroom: int = 100_000

    def __post_init__(self) -> None:
        if not 0 <= self.percentile <= 100:
            raise ValueError("percentile must be within 0..100")
        if not 0 <= self.min_micro_lamports <= self.max_micro_lamports:
            raise ValueError("min_micro_lamports must be within 0..max_micro_lamports")
        if self.cu_headroom < 0:
            raise ValueError("cu_headroom must not be negative")


def priority_price(recent_fees: Sequence[int], policy: FeePolicy) -> int:
    """Micro-lamports per compute unit: the policy's percentile of the recent fees
    (nearest rank), clamped to the policy's bounds; the minimum when nothing is known."""
    if not recent_fees:
        return policy.min_micro_lamports
    ranked = sorted(recent_fees)
    index = max(0, -(-policy.percentile * len(ranked) // 100) - 1)  # ceil, 1-based rank
    return min(max(ranked[index], policy.min_micro_lamports), policy.max_micro_lamports)


def compute_limit(units_consumed: int, policy: FeePolicy) -> int:
    """The simulation's units plus the margin (rounded up) and the headroom, at most the
    cluster's cap."""
    if units_consumed <= 0:
        raise ValueError("a simulated swap consumes compute units")
    limit = -(-units_consumed * (100 + policy.cu_margin_pct) // 100) + policy.cu_headroom
    return min(limit, MAX_COMPUTE_UNITS)


@dataclass(frozen=True, slots=True)
class SwapEnvelope:
    """What the transaction around the legs needs to know."""

    payer: Pubkey
    mint_in: Pubkey
    mint_out: Pubkey
    amount_in: int
    memo: str  # ``orderflow:<orderId>`` (pipeline.chain_history.order_memo)
    token_program_in: Pubkey = TOKEN_PROGRAM_ID
    token_program_out: Pubkey = TOKEN_PROGRAM_ID


def wallet_account(owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID
                   ) -> Pubkey:
    """The wallet's associated token account the legs read from / write to."""
    return get_associated_token_address(owner, mint, token_program)


def swap_instructions(env: SwapEnvelope, legs: Sequence[Instruction], *, cu_limit: int,
                      cu_price: int) -> list[Instruction]:
    """The whole instruction list, in the order the module docstring gives."""
    if not legs:
        raise ValueError("a swap needs at least one venue leg")
    payer = env.payer
    out: list[Instruction] = [set_compute_unit_limit(cu_limit), set_compute_unit_price(cu_price)]
    sol_in, sol_out = env.mint_in == WSOL, env.mint_out == WSOL
    out.append(create_idempotent_associated_token_account(
        payer, payer, env.mint_out, env.token_program_out))
    if sol_in:
        wsol = wallet_account(payer, WSOL)
        out.append(create_idempotent_associated_token_account(payer, payer, WSOL))
        out.append(transfer(TransferParams(from_pubkey=payer, to_pubkey=wsol,
                                           lamports=env.amount_in)))
        out.append(sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=wsol)))
    out.extend(legs)
    if sol_in or sol_out:
        out.append(close_account(CloseAccountParams(
            program_id=TOKEN_PROGRAM_ID, account=wallet_account(payer, WSOL), dest=payer,
            owner=payer)))
    out.append(Instruction(MEMO_PROGRAM, env.memo.encode(), []))
    return out


def swap_message(env: SwapEnvelope, legs: Sequence[Instruction], *, cu_limit: int,
                 cu_price: int, blockhash: Hash) -> MessageV0:
    """A v0 message of :func:`swap_instructions` (no lookup tables: two legs fit)."""
    return MessageV0.try_compile(env.payer, swap_instructions(
        env, legs, cu_limit=cu_limit, cu_price=cu_price), [], blockhash)


# ---- aggregator-built swaps (Jupiter /swap-instructions, /build) ----

COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
MEMO_COMPUTE_UNITS = 1_000
"""Room for our memo on top of an aggregator's simulated compute limit (it simulated its
swap without the memo): the SPL Memo program used 287 units for ``orderflow:<uuid>`` and
410 for 210 bytes on the localnet (no signer accounts)."""


@dataclass(frozen=True, slots=True)
class AggregatorSwap:
    """An aggregator's instructions for one swap, in the order it documents them
    (compute budget, setup, the swap, cleanup, others), already decoded."""

    compute_budget: Sequence[Instruction]
    setup: Sequence[Instruction]
    swap: Instruction
    cleanup: Instruction | None = None
    other: Sequence[Instruction] = ()


def with_memo_units(compute_budget: Sequence[Instruction],
                    extra: int = MEMO_COMPUTE_UNITS, *,
                    cu_price: int | None = None) -> list[Instruction]:
    """The aggregator's compute budget instructions with room for our memo: its
    ``SetComputeUnitLimit`` raised by ``extra`` (at most the cluster's cap). Its
    ``SetComputeUnitPrice`` is kept, unless ``cu_price`` (micro-lamports: an order's own
    priority fee) is given: then that price replaces it, or is added when it set none."""
    out: list[Instruction] = []
    priced = False
    for ix in compute_budget:
        data = bytes(ix.data)
        if ix.program_id == COMPUTE_BUDGET_PROGRAM and len(data) == 5 and data[0] == 2:
            limit = int.from_bytes(data[1:5], "little")
            out.append(set_compute_unit_limit(min(limit + extra, MAX_COMPUTE_UNITS)))
        elif (cu_price is not None and ix.program_id == COMPUTE_BUDGET_PROGRAM
              and data[:1] == b"\x03"):
            out.append(set_compute_unit_price(cu_price))
            priced = True
        else:
            out.append(ix)
    if cu_price is not None and not priced:
        out.append(set_compute_unit_price(cu_price))
    return out


def aggregator_instructions(swap: AggregatorSwap, memo: str | None, *,
                            cu_price: int | None = None) -> list[Instruction]:
    """The aggregator's instructions plus our memo ``orderflow:<orderId>`` after the swap
    and its cleanup (Jupiter: compute budget, setup, swap, cleanup, then your own); with
    ``cu_price``, at that compute-unit price (:func:`with_memo_units`)."""
    budget = (swap.compute_budget if memo is None and cu_price is None
              else with_memo_units(swap.compute_budget, 0 if memo is None
                                   else MEMO_COMPUTE_UNITS, cu_price=cu_price))
    out = [*budget, *swap.setup, swap.swap]
    if swap.cleanup is not None:
        out.append(swap.cleanup)
    out.extend(swap.other)
    if memo is not None:
        out.append(Instruction(MEMO_PROGRAM, memo.encode(), []))
    return out


def aggregator_message(payer: Pubkey, swap: AggregatorSwap, memo: str | None, *,
                       lookup_tables: Sequence[AddressLookupTableAccount],
                       blockhash: Hash, cu_price: int | None = None) -> MessageV0:
    """A v0 message of :func:`aggregator_instructions`, its accounts compressed through the
    aggregator's address lookup tables (a routed swap rarely fits without them)."""
    return MessageV0.try_compile(payer, aggregator_instructions(swap, memo, cu_price=cu_price),
                                 list(lookup_tables), blockhash)
