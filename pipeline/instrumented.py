"""The venue and chain edges with latency and errors recorded per call (decorators of the
:class:`~pipeline.venues.Venues` and :class:`~pipeline.solana_rpc.Chain` protocols)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from solders.transaction import VersionedTransaction

from pipeline.chain_history import PAGE, SignatureEntry
from pipeline.errors import OrderflowError
from pipeline.metrics import EngineMetrics
from pipeline.model import Quote, Venue
from pipeline.reconcile import TxBalances
from pipeline.solana_rpc import Chain
from pipeline.venues import SwapTransaction, Venues


def error_code_of(exc: BaseException) -> str:
    return exc.code if isinstance(exc, OrderflowError) else "internal_error"


class InstrumentedVenues:
    """:class:`~pipeline.venues.Venues` that records quote latency and errors per venue."""

    def __init__(self, inner: Venues, metrics: EngineMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        t0 = time.perf_counter()
        try:
            quote = await self._inner.quote(venue, input_mint, output_mint, amount,
                                            slippage_bps)
        except Exception as exc:
            self._metrics.quote(venue, time.perf_counter() - t0, error_code_of(exc))
            raise
        self._metrics.quote(venue, time.perf_counter() - t0)
        return quote

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        return await self._inner.swap_transaction(
            quote, user_public_key, memo=memo,
            priority_fee_micro_lamports=priority_fee_micro_lamports)


class InstrumentedChain:
    """:class:`~pipeline.solana_rpc.Chain` that records latency and errors per RPC method."""

    def __init__(self, inner: Chain, metrics: EngineMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def _timed(self, method: str, call: Any) -> Any:
        t0 = time.perf_counter()
        try:
            result = await call
        except Exception as exc:
            self._metrics.rpc(method, time.perf_counter() - t0, error_code_of(exc))
            raise
        self._metrics.rpc(method, time.perf_counter() - t0)
        return result

    async def send(self, tx: VersionedTransaction) -> str:
        result: str = await self._timed("sendTransaction", self._inner.send(tx))
        return result

    async def resend(self, tx_bytes: bytes) -> None:
        await self._timed("sendTransaction", self._inner.resend(tx_bytes))

    async def block_height(self) -> int:
        result: int = await self._timed("getBlockHeight", self._inner.block_height())
        return result

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        result: list[tuple[int, str | None, int] | None] = await self._timed(
            "getSignatureStatuses", self._inner.statuses(signatures))
        return result

    async def balances(self, signature: str) -> TxBalances:
        result: TxBalances = await self._timed("getTransaction", self._inner.balances(signature))
        return result

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = PAGE) -> list[SignatureEntry]:
        result: list[SignatureEntry] = await self._timed(
            "getSignaturesForAddress", self._inner.signatures_for_address(
                address, before=before, until=until, limit=limit))
        return result

    async def token_balance(self, owner: str, mint: str) -> int:
        result: int = await self._timed("getBalance", self._inner.token_balance(owner, mint))
        return result
