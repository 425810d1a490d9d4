"""The soak's judge catches what it exists to catch, on a real chain.

Real swaps from the local market, signed by the wallet and landed on the localnet, carry
the memos an engine bug would leave behind: one order swapped twice, a swap for an order
nobody submitted, a failed order whose swap landed, a swap without a memo. The judge
(``tests.soak_audit``), reading only the chain, must count each, and the wallet must not
reconcile while a swap is unattributed.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from solana.rpc.async_api import AsyncClient
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from pipeline.tokens import SOL, USDC
from tests.cluster import Cluster
from tests.helpers import wait_until
from tests.soak_audit import judge, memo_texts, newest_signature, wallet_balances, wallet_history

pytestmark = pytest.mark.integration


@pytest.fixture
async def cluster(broker: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(broker, "", tmp_path)  # the localnet alone: no worker, no database
    await c.start_localnet()
    try:
        yield c
    finally:
        c.stop()


async def swap(c: Cluster, http: aiohttp.ClientSession, rpc: AsyncClient, amount: int,
               memo: str | None) -> str:
    """A real SOL->USDC swap from the market, signed by the wallet, landed: its signature."""
    params = {"inputMint": SOL.mint, "outputMint": USDC.mint, "amount": str(amount),
              "slippageBps": "300"}
    async with http.get(f"{c.venue}/quote", params=params) as resp:
        quote = await resp.json()
    body: dict[str, Any] = {"quoteResponse": quote, "userPublicKey": str(c.wallet.pubkey())}
    if memo is not None:
        body["memo"] = memo
    async with http.post(f"{c.venue}/swap", json=body) as resp:
        doc = await resp.json()
        assert resp.status == 200, doc
    tx = VersionedTransaction.from_bytes(base64.b64decode(doc["swapTransaction"]))
    sigs = list(tx.signatures)
    sigs[0] = c.wallet.sign_message(to_bytes_versioned(tx.message))
    signature = (await rpc.send_raw_transaction(
        bytes(VersionedTransaction.populate(tx.message, sigs)))).value

    async def landed() -> bool:
        st = (await rpc.get_signature_statuses([signature])).value[0]
        return (st is not None and st.err is None
                and str(st.confirmation_status) in ("TransactionConfirmationStatus.Confirmed",
                                                    "TransactionConfirmationStatus.Finalized"))
    await wait_until(landed, 30, f"swap {signature} to land")
    return str(signature)


def test_memo_format_is_read_as_solana_writes_it() -> None:
    assert memo_texts("[20] orderflow:abc; def-1") == ["orderflow:abc; def-1"]
    assert memo_texts("[11] orderflow:a; [5] hello") == ["orderflow:a", "hello"]
    assert memo_texts(None) == [] and memo_texts("") == []


async def test_judge_counts_doubles_unknown_failed_and_unattributed_swaps(
        cluster: Cluster) -> None:
    wallet = cluster.wallet.pubkey()
    async with AsyncClient(cluster.rpc) as rpc, aiohttp.ClientSession() as http:
        baseline = await newest_signature(rpc, wallet)
        before = await wallet_balances(rpc, wallet)
        ok = await swap(cluster, http, rpc, 10_000_000, "orderflow:ok")
        first = await swap(cluster, http, rpc, 11_000_000, "orderflow:twice")
        second = await swap(cluster, http, rpc, 12_000_000, "orderflow:twice")
        failed = await swap(cluster, http, rpc, 13_000_000, "orderflow:failed")
        expired = await swap(cluster, http, rpc, 16_000_000, "orderflow:expired")
        cancelled = await swap(cluster, http, rpc, 17_000_000, "orderflow:cancelled")
        await swap(cluster, http, rpc, 14_000_000, "orderflow:stranger")
        await swap(cluster, http, rpc, 15_000_000, None)
        history = await wallet_history(rpc, wallet, baseline)
        after = await wallet_balances(rpc, wallet)
    assert len(history) == 8 and {t.signature for t in history} >= {
        ok, first, second, failed, expired, cancelled}
    fill = {t.signature: t.deltas for t in history}

    def confirmed(sig: str) -> dict[str, Any]:
        return {"status": "confirmed", "signature": sig, "tokenIn": SOL.mint,
                "tokenOut": USDC.mint, "amountIn": -fill[sig][SOL.mint],
                "amountOut": fill[sig][USDC.mint]}
    read_model = {"ok": confirmed(ok), "twice": confirmed(first),
                  "failed": {**confirmed(failed), "status": "failed", "signature": None},
                  "pending": {**confirmed(ok), "status": "submitted"},
                  # an order that ended without trading must have no swap on chain
                  "expired": {**confirmed(expired), "status": "expired", "signature": None},
                  "cancelled": {**confirmed(cancelled), "status": "cancelled",
                                "signature": None},
                  "expired-clean": {**confirmed(ok), "status": "expired", "signature": None}}
    v = judge(["ok", "twice", "failed", "pending", "gone", "expired", "cancelled",
               "expired-clean"], read_model, history, before, after)
    failures = {k: n for k, n in v.counts.items() if n and k not in (
        "confirmed", "failed", "submitted", "expired", "cancelled", "landed_swaps",
        "wallet_transactions")}
    assert failures == {"doubled": 1, "failed_with_landed_swap": 1, "swap_for_unknown_order": 1,
                        "expired_with_landed_swap": 1, "cancelled_with_landed_swap": 1,
                        "landed_without_memo": 1, "stuck": 1, "lost": 1,
                        "unreconciled_mints": 2}, v.examples
    assert [c["orderId"] for c in v.examples["expired_with_landed_swap"]] == ["expired"]
    assert (v.counts["expired"], v.counts["cancelled"]) == (2, 1)
    assert v.examples["doubled"][0]["landed"] == [
        (first, next(t.slot for t in history if t.signature == first)),
        (second, next(t.slot for t in history if t.signature == second))]
    assert {e["mint"] for e in v.examples["unreconciled_mints"]} == {SOL.mint, USDC.mint}

