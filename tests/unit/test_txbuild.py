"""The transaction around an on-chain swap (pipeline/txbuild.py): priority fee and
compute limit policy, and the instruction envelope's order and contents."""

from __future__ import annotations

import pytest
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM
from solders.transaction import VersionedTransaction
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID

from pipeline.chain_history import has_memo
from pipeline.tokens import SOL, USDC
from pipeline.txbuild import (
    MAX_COMPUTE_UNITS,
    MEMO_PROGRAM,
    FeePolicy,
    SwapEnvelope,
    compute_limit,
    priority_price,
    swap_instructions,
    swap_message,
    wallet_account,
)

LEG = Instruction(Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"), b"leg", [])


def test_priority_price_is_the_percentile_clamped() -> None:
    policy = FeePolicy(percentile=75, min_micro_lamports=10, max_micro_lamports=5_000)
    assert priority_price([], policy) == 10
    assert priority_price([100, 1, 50, 20], policy) == 50  # nearest rank: 3rd of 4
    assert priority_price([0, 0, 0, 1], policy) == 10  # the floor
    assert priority_price([10**9], policy) == 5_000  # a spike cannot empty the wallet
    assert priority_price([7, 8, 9], FeePolicy(percentile=100)) == 9
    assert priority_price([7, 8, 9], FeePolicy(percentile=0)) == 7


def test_compute_limit_is_the_simulation_plus_margin_rounded_up() -> None:
    assert compute_limit(100_001, FeePolicy(cu_margin_pct=10, cu_headroom=0)) == 110_002
    assert compute_limit(10, FeePolicy(cu_margin_pct=10, cu_headroom=0)) == 11
    assert compute_limit(10, FeePolicy(cu_margin_pct=10, cu_headroom=5)) == 16
    assert compute_limit(MAX_COMPUTE_UNITS, FeePolicy()) == MAX_COMPUTE_UNITS
    with pytest.raises(ValueError):
        compute_limit(0, FeePolicy())


def test_the_default_limit_has_room_for_a_pool_that_moved() -> None:
    """Found by the real-programs hand check: a DLMM swap simulated at 60k units, sent
    after another trade moved the pool, walked more bins than 10 % more units allow and
    died of ComputationalBudgetExceeded before the program could refuse it with its
    slippage error. The default limit leaves fixed headroom (about 20 DLMM bins)."""
    assert compute_limit(60_000, FeePolicy()) == 66_000 + 100_000
    with pytest.raises(ValueError):
        FeePolicy(cu_headroom=-1)


def _programs(ixs: list[Instruction]) -> list[Pubkey]:
    return [ix.program_id for ix in ixs]


def test_sol_in_wraps_exactly_the_input_and_unwraps_after_the_legs() -> None:
    payer = Keypair().pubkey()
    env = SwapEnvelope(payer, Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint),
                       1_500_000_000, "orderflow:o-1")
    ixs = swap_instructions(env, [LEG], cu_limit=123_456, cu_price=77)
    assert _programs(ixs) == [COMPUTE_BUDGET, COMPUTE_BUDGET, ASSOCIATED_TOKEN_PROGRAM_ID,
                              ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM, TOKEN_PROGRAM_ID,
                              LEG.program_id, TOKEN_PROGRAM_ID, MEMO_PROGRAM]
    assert ixs[0].data == bytes([2]) + (123_456).to_bytes(4, "little")
    assert ixs[1].data == bytes([3]) + (77).to_bytes(8, "little")
    wsol = wallet_account(payer, Pubkey.from_string(SOL.mint))
    assert ixs[4].accounts[1].pubkey == wsol  # the input goes into the wSOL account
    assert int.from_bytes(ixs[4].data[4:12], "little") == 1_500_000_000
    assert ixs[7].data[0] == 9 and ixs[7].accounts[0].pubkey == wsol  # CloseAccount
    assert ixs[-1].data == b"orderflow:o-1"


def test_a_token_to_token_split_has_both_legs_and_no_wrapping() -> None:
    payer = Keypair().pubkey()
    env = SwapEnvelope(payer, Pubkey.from_string(USDC.mint), Keypair().pubkey(), 10,
                       "orderflow:o-2")
    other = Instruction(Pubkey.from_string("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"),
                        b"leg2", [])
    ixs = swap_instructions(env, [LEG, other], cu_limit=1, cu_price=0)
    assert _programs(ixs) == [COMPUTE_BUDGET, COMPUTE_BUDGET, ASSOCIATED_TOKEN_PROGRAM_ID,
                              LEG.program_id, other.program_id, MEMO_PROGRAM]
    with pytest.raises(ValueError):
        swap_instructions(env, [], cu_limit=1, cu_price=0)


def test_the_signed_message_carries_the_order_memo() -> None:
    payer = Keypair()
    env = SwapEnvelope(payer.pubkey(), Pubkey.from_string(USDC.mint),
                       Pubkey.from_string(SOL.mint), 10, "orderflow:o-3")
    msg = swap_message(env, [LEG], cu_limit=200_000, cu_price=1, blockhash=Hash.new_unique())
    tx = VersionedTransaction(msg, [payer])
    assert has_memo(tx, "orderflow:o-3") and not has_memo(tx, "orderflow:o-4")
