"""The soak's judge on hand-made histories: what counts as a transaction of ours.

The chain-level cases (doubled, lost, unknown order...) are proven on a real chain in
tests/integration/test_soak_audit.py; these are the judge's rules for a transaction that
names the wallet without a memo, and the checks of an order's own kind (a limit's fill
against its limit, a conditional order's swap against its trigger).
"""

from __future__ import annotations

from pipeline.model import OrderType
from tests.soak_audit import WalletTx, judge
from tests.soak_mix import Plan

SOL = "So11111111111111111111111111111111111111112"


def _verdict(*txs: WalletTx) -> dict[str, int]:
    return judge([], {}, list(txs), {SOL: 1}, {SOL: 1}).counts


def test_a_transaction_the_wallet_signed_without_a_memo_is_a_failure() -> None:
    tx = WalletTx("sig1", 5, None, [], {}, 5000, signed_by_wallet=True)
    assert _verdict(tx).get("landed_without_memo") == 1


def test_someone_elses_transaction_moving_the_wallets_balance_is_a_failure() -> None:
    tx = WalletTx("sig2", 5, None, [], {SOL: -10}, 0, signed_by_wallet=False)
    assert _verdict(tx).get("landed_without_memo") == 1


def test_someone_elses_transaction_that_only_names_the_wallet_is_not_ours() -> None:
    """E.g. the local market approving the wallet as delegate of its payout escrow: the
    wallet appears in the accounts (so in getSignaturesForAddress) but spends nothing."""
    tx = WalletTx("sig3", 5, None, [], {SOL: 0}, 0, signed_by_wallet=False)
    assert _verdict(tx).get("landed_without_memo", 0) == 0


USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def _limit_case(got: int, *, triggered: bool) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """A limit order selling 1 SOL for at least 150 USDC that confirmed with one swap
    giving ``got`` USDC on chain (the read model says the same)."""
    plan = Plan("limit_move", OrderType.LIMIT, SOL, USDC, 10**9, 150_000_000, 60)
    tx = WalletTx("sig-l", 9, None, ["lim-1"], {SOL: -10**9, USDC: got}, 5000)
    row = {"status": "confirmed", "signature": "sig-l", "tokenIn": SOL, "tokenOut": USDC,
           "amountIn": 10**9, "amountOut": got}
    before = {SOL: 2 * 10**9 + 5000, USDC: 0}
    after = {SOL: 10**9, USDC: got}
    v = judge(["lim-1"], {"lim-1": row}, [tx], before, after, (), {"lim-1": plan},
              {"lim-1"} if triggered else set())
    return v.counts, v.by_kind


def test_a_limit_fill_below_its_limit_on_chain_is_a_failure() -> None:
    counts, by_kind = _limit_case(149_999_999, triggered=True)
    assert counts["filled_below_limit"] == 1
    assert by_kind["limit_move"] == {"confirmed": 1, "landed_swaps": 1, "triggered": 1}


def test_a_limit_fill_at_or_above_its_limit_passes_and_is_measured() -> None:
    counts, by_kind = _limit_case(151_500_000, triggered=True)
    assert counts["filled_below_limit"] == 0 and counts["swapped_without_trigger"] == 0
    assert by_kind["limit_move"]["worst_bps_above_min"] == 100


def test_a_conditional_orders_swap_without_a_trigger_is_a_failure() -> None:
    counts, _ = _limit_case(151_500_000, triggered=False)
    assert counts["swapped_without_trigger"] == 1
