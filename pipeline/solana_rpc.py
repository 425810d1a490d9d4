"""The engine's Solana edge: sign, send, watch confirmations, read balances.

Everything goes through solana-py's ``AsyncClient`` over JSON-RPC, so the same
code path runs against the localnet, devnet and mainnet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus

from pipeline.chain_history import PAGE, SignatureEntry
from pipeline.errors import (
    AlreadyProcessed,
    InsufficientFunds,
    OrderflowError,
    RpcUnavailable,
    SlippageExceeded,
    TransactionExpired,
    TransactionFailed,
    chain_error,
)
from pipeline.reconcile import TokenBalance, TxBalances
from pipeline.rpc_transport import AiohttpTransport
from pipeline.signature_feed import SignatureFeed
from pipeline.tasks import spawn
from pipeline.tokens import WSOL_MINT

log = logging.getLogger(__name__)

MAX_STATUS_BATCH = 256
_UNAVAILABLE = (TimeoutError, RPCException, SolanaRpcException, OSError)
"""Errors of a read that mean "ask again later": the RPC did not give an answer."""
_LEVELS = (
    (TransactionConfirmationStatus.Processed, 0),
    (TransactionConfirmationStatus.Confirmed, 1),
    (TransactionConfirmationStatus.Finalized, 2),
)
_WANTED = {"processed": 0, "confirmed": 1, "finalized": 2}


def sign_as(tx_bytes: bytes, signer: Keypair) -> VersionedTransaction:
    """Fill ``signer``'s slot of a venue-built transaction, keeping the venue's co-signatures."""
    tx = VersionedTransaction.from_bytes(tx_bytes)
    message = tx.message
    n_signers = message.header.num_required_signatures
    keys = message.account_keys[:n_signers]
    me = signer.pubkey()
    if me not in keys:
        raise TransactionFailed("unexpected_signer",
                                "the venue's transaction does not name our wallet as a signer")
    signatures = list(tx.signatures)
    signatures[keys.index(me)] = signer.sign_message(to_bytes_versioned(message))
    return VersionedTransaction.populate(message, signatures)


@dataclass(frozen=True, slots=True)
class Landed:
    slot: int
    err: str | None


class Chain(Protocol):
    async def send(self, tx: VersionedTransaction) -> str: ...

    async def resend(self, tx_bytes: bytes) -> None:
        """Rebroadcast the same bytes (no preflight); harmless if it already landed."""
        ...

    async def block_height(self) -> int: ...

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        """Per signature: (slot, error or None, confirmation level 0..2), or None if unknown."""
        ...

    async def balances(self, signature: str) -> TxBalances: ...

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = PAGE) -> list[SignatureEntry]: ...

    async def token_balance(self, owner: str, mint: str) -> int:
        """What ``owner`` holds of ``mint`` in base units (SOL: lamports plus wrapped)."""
        ...


def _error_text(exc: RPCException) -> str:
    arg = exc.args[0] if exc.args else exc
    message = getattr(arg, "message", None) or str(arg)
    data = getattr(arg, "data", None)
    err = getattr(data, "err", None)
    return f"{message} ({err})" if err is not None else str(message)


def classify_send_error(text: str) -> OrderflowError:
    """Map a sendTransaction error to the engine's error tree."""
    lowered = text.lower()
    if "already been processed" in lowered or "alreadyprocessed" in lowered:
        return AlreadyProcessed(message=text)
    if "blockhashnotfound" in lowered or "blockhash not found" in lowered:
        return TransactionExpired(message=text)
    if "insufficient" in lowered:
        return InsufficientFunds(message=text)
    if "slippage" in lowered:
        return SlippageExceeded(message=text)
    return chain_error(text)


class RpcChain:
    """:class:`Chain` over solana-py's ``AsyncClient``."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        # No transport-level retry: a resend after a lost answer must be our decision (the
        # journal's), never a hidden second sendTransaction.
        self.client = AsyncClient(url, timeout=timeout_s, http2=False, max_transport_retries=0)
        # Same client, cheaper wire: see pipeline/rpc_transport.py. solana-py has no
        # constructor argument for the transport, so its provider's session is replaced.
        self.client._provider.session = httpx2.AsyncClient(
            transport=AiohttpTransport(timeout_s=timeout_s), timeout=timeout_s)

    async def close(self) -> None:
        await self.client.close()

    async def send(self, tx: VersionedTransaction) -> str:
        opts = TxOpts(skip_preflight=False, preflight_commitment=Commitment("processed"),
                      max_retries=0)
        try:
            resp = await self.client.send_raw_transaction(bytes(tx), opts)
        except RPCException as exc:
            error = classify_send_error(_error_text(exc))
            if isinstance(error, AlreadyProcessed):
                return str(tx.signatures[0])
            raise error from None
        except RPCNoResultException as exc:
            raise TransactionFailed(message=str(exc)) from None
        except (TimeoutError, SolanaRpcException, OSError) as exc:
            raise RpcUnavailable(message=f"sendTransaction: {exc}") from None
        return str(resp.value)

    async def resend(self, tx_bytes: bytes) -> None:
        opts = TxOpts(skip_preflight=True, max_retries=0)
        try:
            await self.client.send_raw_transaction(tx_bytes, opts)
        except (RPCException, RPCNoResultException) as exc:
            log.debug("rebroadcast refused: %s", exc)
        except (TimeoutError, SolanaRpcException, OSError) as exc:
            raise RpcUnavailable(message=f"sendTransaction (rebroadcast): {exc}") from None

    async def block_height(self) -> int:
        try:
            return (await self.client.get_block_height(Commitment("confirmed"))).value
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getBlockHeight: {exc}") from None

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        sigs = [Signature.from_string(s) for s in signatures]
        try:
            resp = await self.client.get_signature_statuses(sigs)
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getSignatureStatuses: {exc}") from None
        out: list[tuple[int, str | None, int] | None] = []
        for st in resp.value:
            if st is None:
                out.append(None)
                continue
            level = next((lvl for cs, lvl in _LEVELS if cs == st.confirmation_status), 2)
            out.append((st.slot, None if st.err is None else str(st.err), level))
        return out

    async def balances(self, signature: str) -> TxBalances:
        try:
            resp = await self.client.get_transaction(
                Signature.from_string(signature), encoding="base64",
                commitment=Commitment("confirmed"), max_supported_transaction_version=0)
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getTransaction: {exc}") from None
        if resp.value is None:
            raise RpcUnavailable(message=f"getTransaction: {signature} not found yet")
        return balances_of(resp.value)

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = PAGE) -> list[SignatureEntry]:
        try:
            resp = await self.client.get_signatures_for_address(
                Pubkey.from_string(address),
                before=Signature.from_string(before) if before else None,
                until=Signature.from_string(until) if until else None,
                limit=limit, commitment=Commitment("confirmed"))
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getSignaturesForAddress: {exc}") from None
        return [SignatureEntry(str(e.signature), e.slot, None if e.err is None else str(e.err),
                               e.memo, e.block_time) for e in resp.value]

    async def token_balance(self, owner: str, mint: str) -> int:
        key = Pubkey.from_string(owner)
        try:
            held = 0
            if mint == WSOL_MINT:
                held += (await self.client.get_balance(key, Commitment("confirmed"))).value
            resp = await self.client.get_token_accounts_by_owner_json_parsed(
                key, TokenAccountOpts(mint=Pubkey.from_string(mint)), Commitment("confirmed"))
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"balance of {owner}: {exc}") from None
        for acc in resp.value:
            parsed: Any = acc.account.data.parsed
            held += int(parsed["info"]["tokenAmount"]["amount"])
        return held


def balances_of(value: Any) -> TxBalances:
    """Read :class:`TxBalances` from solana-py's typed ``getTransaction`` result."""
    enc = value.transaction
    meta = enc.meta
    tx = enc.transaction
    if not isinstance(tx, VersionedTransaction):
        raise TransactionFailed(message="getTransaction returned an unexpected encoding")
    keys = [str(k) for k in tx.message.account_keys]
    loaded = getattr(meta, "loaded_addresses", None)
    if loaded is not None:
        keys += [str(k) for k in loaded.writable] + [str(k) for k in loaded.readonly]

    def tokens(raw: Any) -> list[TokenBalance]:
        return [TokenBalance(tb.account_index, str(tb.mint), str(tb.owner or ""),
                             int(tb.ui_token_amount.amount)) for tb in (raw or [])]

    return TxBalances(
        account_keys=keys,
        fee=meta.fee,
        fee_payer=keys[0],
        pre_lamports=list(meta.pre_balances),
        post_lamports=list(meta.post_balances),
        pre_tokens=tokens(meta.pre_token_balances),
        post_tokens=tokens(meta.post_token_balances),
    )


class ConfirmationWatcher:
    """Waits for many signatures with one batched ``getSignatureStatuses`` loop.

    Awaiting a confirmation parks a future here instead of holding a partition:
    one poll round serves every in-flight order of the process. With a ``feed``
    (:mod:`pipeline.signature_feed`), a notification makes the loop ask about that signature
    at once; while the feed is live the full rounds (expiry, rebroadcast, missed
    notifications) run every ``live_poll_s`` instead of every ``poll_s``.
    """

    def __init__(self, chain: Chain, *, poll_s: float, commitment: str,
                 rebroadcast_s: float = 2.0, rpc_outage_s: float = 60.0,
                 feed: SignatureFeed | None = None, live_poll_s: float = 1.0) -> None:
        self._chain = chain
        self._poll_s = poll_s
        self._rebroadcast_s = rebroadcast_s
        self._resend: dict[str, tuple[bytes, float]] = {}
        self._wanted = _WANTED[commitment]
        self._outage_s = rpc_outage_s
        self._pending: dict[str, tuple[asyncio.Future[Landed], int]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._feed = feed
        self._live_poll_s = max(live_poll_s, poll_s)
        self._hinted: set[str] = set()

    def start(self) -> None:
        if self._task is None:
            if self._feed is not None:
                self._feed.start(self._hint, self._wake.set)
            self._task = spawn(self._run(), name="confirmation-watcher")

    async def stop(self) -> None:
        if self._feed is not None:
            await self._feed.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(RpcUnavailable(message="worker stopping"))
        self._pending.clear()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def wait(self, signature: str, last_valid_block_height: int,
                   tx_bytes: bytes | None = None) -> Landed:
        """Resolve when the signature reaches the commitment; raise if it expires unlanded.

        With ``tx_bytes``, the same bytes are rebroadcast every ``rebroadcast_s`` until the
        signature is seen (we send with ``maxRetries: 0``, as Solana's docs recommend for
        clients that manage their own retries).
        """
        existing = self._pending.get(signature)
        if existing is not None:
            return await asyncio.shield(existing[0])
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Landed] = loop.create_future()
        self._pending[signature] = (fut, last_valid_block_height)
        if tx_bytes is not None:
            self._resend[signature] = (tx_bytes, loop.time())
        if self._feed is not None:
            self._feed.watch(signature)
        self._wake.set()
        try:
            return await fut
        finally:
            self._pending.pop(signature, None)
            self._resend.pop(signature, None)
            self._hinted.discard(signature)
            if self._feed is not None:
                self._feed.unwatch(signature)

    def _hint(self, signature: str) -> None:
        if signature in self._pending:
            self._hinted.add(signature)
            self._wake.set()

    def _interval(self) -> float:
        live = self._feed is not None and self._feed.live
        return self._live_poll_s if live else self._poll_s

    async def _run(self) -> None:
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        last_round = -float("inf")
        while True:
            self._wake.clear()
            if not self._pending:
                await self._wake.wait()
                continue
            due = last_round + self._interval()
            if loop.time() < due and not self._hinted:
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that
                # arrives as the event is set (found as a hung stop).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due - loop.time()):
                        await self._wake.wait()
                continue
            try:
                if loop.time() >= due:
                    self._hinted.clear()  # this round asks about every signature
                    await self._poll_once()
                    last_round = loop.time()  # the next round is an interval after this one
                else:
                    hinted = [s for s in self._hinted if s in self._pending]
                    self._hinted.clear()
                    await self._check(hinted, height=None)
                failing_since = None
            except RpcUnavailable as exc:
                now = loop.time()
                failing_since = failing_since or now
                last_round = now - self._interval() + self._poll_s  # retry at the fast pace
                log.warning("confirmation poll failed: %s", exc.message)
                if now - failing_since > self._outage_s:
                    for fut, _ in list(self._pending.values()):
                        if not fut.done():
                            fut.set_exception(RpcUnavailable(message=exc.message))

    async def _rebroadcast_due(self) -> None:
        now = asyncio.get_running_loop().time()
        for sig, (tx, last) in list(self._resend.items()):
            if now - last >= self._rebroadcast_s:
                self._resend[sig] = (tx, now)
                try:
                    await self._chain.resend(tx)
                except RpcUnavailable as exc:
                    # A refused rebroadcast must not hold up confirmations: the statuses are
                    # still polled, and the next round sends the same bytes again.
                    log.warning("rebroadcast of %s failed: %s", sig, exc.message)
                    return

    async def _poll_once(self) -> None:
        sigs = [s for s, (fut, _) in self._pending.items() if not fut.done()]
        if not sigs:
            return
        await self._rebroadcast_due()
        await self._check(sigs, height=await self._chain.block_height())

    async def _check(self, sigs: list[str], *, height: int | None) -> None:
        """Ask the chain about ``sigs``; expire unknown ones only with a ``height``."""
        for start in range(0, len(sigs), MAX_STATUS_BATCH):
            batch = sigs[start:start + MAX_STATUS_BATCH]
            results = await self._chain.statuses(batch)
            for sig, result in zip(batch, results, strict=True):
                entry = self._pending.get(sig)
                if entry is None or entry[0].done():
                    continue
                fut, lvbh = entry
                if result is None:
                    if height is not None and height > lvbh:
                        fut.set_exception(TransactionExpired(
                            message=f"{sig} did not land before block height {lvbh}"))
                    continue
                self._resend.pop(sig, None)
                slot, err, level = result
                if err is not None or level >= self._wanted:
                    fut.set_result(Landed(slot, err))
