"""Reconciliation reads the chain's balance records; hand-computed cases."""

from __future__ import annotations

import pytest

from pipeline.reconcile import (
    TokenBalance,
    TxBalances,
    executed_price,
    fill_of,
    wallet_deltas,
)
from pipeline.tokens import SOL, USDC

W = "Wallet111"
POOL = "Pool111"


def test_sol_in_with_temporary_wsol_and_new_ata() -> None:
    # keys: 0 wallet, 1 wallet wSOL ATA (created+closed), 2 wallet USDC ATA (new), 3 pool vaults
    tx = TxBalances(
        account_keys=[W, "wsolAta", "usdcAta", "poolSolVault", "poolUsdcVault"],
        fee=10_000, fee_payer=W,
        # wallet pays 1.5 SOL to the pool, 5000*2 fee, 2_039_280 rent for the new USDC ATA
        pre_lamports=[10_000_000_000, 0, 0, 50, 60],
        post_lamports=[10_000_000_000 - 1_500_000_000 - 10_000 - 2_039_280, 0, 2_039_280,
                       50 + 1_500_000_000, 60],
        pre_tokens=[TokenBalance(4, USDC.mint, POOL, 1_000_000_000)],
        post_tokens=[TokenBalance(2, USDC.mint, W, 225_000_000),
                     TokenBalance(4, USDC.mint, POOL, 775_000_000)],
    )
    assert wallet_deltas(tx, W) == {SOL.mint: -1_500_000_000, USDC.mint: 225_000_000}
    fill = fill_of(tx, W, SOL.mint, USDC.mint)
    assert (fill.amount_in, fill.amount_out) == (1_500_000_000, 225_000_000)


def test_token_in_sol_out_unwraps() -> None:
    tx = TxBalances(
        account_keys=[W, "usdcAta", "wsolAta"], fee=5_000, fee_payer=W,
        pre_lamports=[1_000_000, 2_039_280, 0],
        post_lamports=[1_000_000 - 5_000 + 666_666_666, 2_039_280, 0],
        pre_tokens=[TokenBalance(1, USDC.mint, W, 100_000_000)],
        post_tokens=[TokenBalance(1, USDC.mint, W, 0)],
    )
    fill = fill_of(tx, W, USDC.mint, SOL.mint)
    assert (fill.amount_in, fill.amount_out) == (100_000_000, 666_666_666)


def test_not_a_swap_is_refused() -> None:
    tx = TxBalances([W], 5_000, W, [100_000], [95_000], [], [])
    with pytest.raises(ValueError):
        fill_of(tx, W, SOL.mint, USDC.mint)


def test_executed_price_in_ui_units() -> None:
    assert executed_price(1_500_000_000, 9, 225_000_000, 6) == "150"
    assert executed_price(100_000_000, 6, 666_666_666, 9) == "0.00666666666"
