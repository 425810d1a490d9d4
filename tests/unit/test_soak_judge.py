"""The soak's judge on hand-made histories: what counts as a transaction of ours.

The chain-level cases (doubled, lost, unknown order...) are proven on a real chain in
tests/integration/test_soak_audit.py; these are the judge's rules for a transaction that
names the wallet without a memo.
"""

from __future__ import annotations

from tests.soak_audit import WalletTx, judge

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
