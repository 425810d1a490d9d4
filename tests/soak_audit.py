"""The soak's judge: what the chain says happened, compared with what the API says.

Nothing here trusts the engine's journal. Landed swaps are found from the wallet's own
transaction history (``getSignaturesForAddress``, newest first, paged back to the
baseline signature), attributed to orders by their SPL Memo ``orderflow:<orderId>``, and
their balance changes read from ``getTransaction``. The verdict then compares that with
the read model (the ``orders`` table, which the API serves).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.models import TokenAccountOpts
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.reconcile import TokenBalance, TxBalances, wallet_deltas
from pipeline.tokens import WSOL_MINT

MEMO_PREFIX = "orderflow:"
TERMINAL = ("confirmed", "failed", "expired", "cancelled")
ENDED_WITHOUT_TRADING = ("failed", "expired", "cancelled")
"""An order that ends so must have no swap on chain: each with a landed swap is a failure."""
CONFIRMED = Commitment("confirmed")
_MEMO_HEAD = re.compile(rb"\[(\d+)\] ")


def memo_texts(memo: str | None) -> list[str]:
    """The memos in Solana's ``memo`` field: each ``"[<byte length>] <text>"``, joined by ``"; "``.

    The length is used to cut each text, so a memo that itself contains ``"; "`` is read
    whole; a field that does not follow the format is split on ``"; "`` as a fallback.
    """
    if not memo:
        return []
    raw, out, pos = memo.encode(), [], 0
    while pos < len(raw):
        head = _MEMO_HEAD.match(raw, pos)
        if head is None:
            break
        end = head.end() + int(head.group(1))
        if end > len(raw) or raw[end:end + 2] not in (b"", b"; "):
            break
        out.append(raw[head.end():end].decode(errors="replace"))
        pos = end + 2
    else:
        return out
    return [re.sub(r"^\[\d+\] ", "", part) for part in memo.split("; ")]


def memo_order_ids(memo: str | None) -> list[str]:
    return [t[len(MEMO_PREFIX):] for t in memo_texts(memo) if t.startswith(MEMO_PREFIX)]


@dataclass
class WalletTx:
    """One transaction of the wallet after the baseline, as the chain recorded it."""

    signature: str
    slot: int
    err: str | None
    order_ids: list[str]
    deltas: dict[str, int]  # per mint, fee excluded (pipeline.reconcile.wallet_deltas)
    fee: int  # paid by the wallet (0 if someone else paid)
    signed_by_wallet: bool = True  # False: another party's transaction naming the wallet


def balances_of(value: Any) -> TxBalances:
    """:class:`TxBalances` of solana-py's typed ``getTransaction`` result (base64 encoding)."""
    meta, tx = value.transaction.meta, value.transaction.transaction
    keys = [str(k) for k in tx.message.account_keys]
    loaded = getattr(meta, "loaded_addresses", None)
    if loaded is not None:
        keys += [str(k) for k in loaded.writable] + [str(k) for k in loaded.readonly]

    def tokens(raw: Any) -> list[TokenBalance]:
        return [TokenBalance(tb.account_index, str(tb.mint), str(tb.owner or ""),
                             int(tb.ui_token_amount.amount)) for tb in (raw or [])]
    return TxBalances(keys, meta.fee, keys[0], list(meta.pre_balances),
                      list(meta.post_balances), tokens(meta.pre_token_balances),
                      tokens(meta.post_token_balances))


def _signatures(value: Any) -> int:
    """How many of the transaction's first account keys signed it."""
    return int(value.transaction.transaction.message.header.num_required_signatures)


async def newest_signature(rpc: AsyncClient, wallet: Pubkey) -> str | None:
    resp = await rpc.get_signatures_for_address(wallet, limit=1, commitment=CONFIRMED)
    return str(resp.value[0].signature) if resp.value else None


async def wallet_history(rpc: AsyncClient, wallet: Pubkey, until: str | None,
                         *, concurrency: int = 16) -> list[WalletTx]:
    """Every transaction of ``wallet`` newer than ``until``, oldest first, with its deltas."""
    entries: list[Any] = []
    before: Signature | None = None
    stop = Signature.from_string(until) if until else None
    while True:
        page = (await rpc.get_signatures_for_address(
            wallet, before=before, until=stop, limit=1000, commitment=CONFIRMED)).value
        if not page:
            break
        entries += page
        before = page[-1].signature
    found = [(str(e.signature), memo_order_ids(e.memo)) for e in entries]
    txs = await load_transactions(rpc, wallet, found, concurrency=concurrency)
    missing = {sig for sig, _ in found} - {t.signature for t in txs}
    assert not missing, f"listed by getSignaturesForAddress, unknown to getTransaction: {missing}"
    return txs


async def load_transactions(rpc: AsyncClient, wallet: Pubkey, found: list[tuple[str, list[str]]],
                            *, concurrency: int = 16) -> list[WalletTx]:
    """``getTransaction`` of each (signature, order ids) that landed, oldest first."""
    gate = asyncio.Semaphore(concurrency)
    owner = str(wallet)

    async def load(sig: str, order_ids: list[str]) -> WalletTx | None:
        async with gate:
            resp = await rpc.get_transaction(Signature.from_string(sig), encoding="base64",
                                             commitment=CONFIRMED,
                                             max_supported_transaction_version=0)
        if resp.value is None:
            return None
        meta = resp.value.transaction.meta
        tx = balances_of(resp.value)
        signers = tx.account_keys[:_signatures(resp.value)]
        return WalletTx(sig, resp.value.slot,
                        None if meta is None or meta.err is None else str(meta.err),
                        order_ids, wallet_deltas(tx, owner),
                        tx.fee if tx.fee_payer == owner else 0, owner in signers)

    txs = await asyncio.gather(*(load(sig, oids) for sig, oids in found))
    return sorted((t for t in txs if t is not None), key=lambda t: t.slot)


async def wallet_balances(rpc: AsyncClient, wallet: Pubkey) -> dict[str, int]:
    """Everything the wallet holds, per mint, as ``wallet_deltas`` counts it: SOL is its own
    lamports plus the lamports of every token account it owns (wrapped SOL and rent)."""
    out: Counter[str] = Counter({WSOL_MINT: (await rpc.get_balance(wallet, CONFIRMED)).value})
    resp = await rpc.get_token_accounts_by_owner_json_parsed(
        wallet, TokenAccountOpts(program_id=TOKEN_PROGRAM_ID), CONFIRMED)
    for acc in resp.value:
        out[WSOL_MINT] += acc.account.lamports
        info: Any = acc.account.data.parsed["info"]
        if info["mint"] != WSOL_MINT:
            out[info["mint"]] += int(info["tokenAmount"]["amount"])
    return dict(out)


@dataclass
class Verdict:
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Any]] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> end -> n

    def add(self, what: str, example: Any) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        cases = self.examples.setdefault(what, [])
        if len(cases) < 60:
            cases.append(example)


# Every count here makes the soak fail.
FAILURES = ("lost", "stuck", "doubled", "failed_with_landed_swap",
            "expired_with_landed_swap", "cancelled_with_landed_swap", "swapped_not_confirmed",
            "confirmed_without_landed_swap", "confirmed_signature_mismatch",
            "confirmed_amount_mismatch", "swap_for_unknown_order", "landed_without_memo",
            "unreconciled_mints", "filled_below_limit", "swapped_without_trigger")


class Planned(Protocol):
    """What the soak asked of one order (``tests.soak_mix.Plan``)."""

    @property
    def kind(self) -> str: ...

    @property
    def min_out(self) -> int | None: ...

    @property
    def conditional(self) -> bool: ...


def judge(accepted: Iterable[str], read_model: Mapping[str, Mapping[str, Any]],
          history: list[WalletTx], before: Mapping[str, int], after: Mapping[str, int],
          known: Iterable[str] = (), plans: Mapping[str, Planned] | None = None,
          triggered: Collection[str] = ()) -> Verdict:
    """Compare the chain (``history``, balances) with the read model for the accepted orders.

    ``read_model``: order id -> ``{"status", "signature", "tokenIn", "tokenOut", "amountIn",
    "amountOut"}``. ``known``: ids the soak submitted but never saw accepted (their swaps are
    not "unknown", though they are not judged as accepted orders either). ``plans``: what
    each order asked for (its kind and least output: a swap that gave less, read from the
    chain, is ``filled_below_limit``); ``triggered``: the conditional orders the read model
    shows triggered (a conditional order's swap without a trigger is a failure).
    """
    v = Verdict()
    accepted = list(accepted)
    ours = set(accepted) | set(known)
    landed: dict[str, list[WalletTx]] = {}
    for tx in history:
        if tx.err is not None:
            continue
        if not tx.order_ids and (tx.signed_by_wallet or any(tx.deltas.values())):
            # Unexplained: the wallet spent, or its balances moved. Another party's
            # transaction that only names the wallet (the local market approving it as
            # delegate of a payout escrow) moves nothing of ours and is not judged.
            v.add("landed_without_memo", {"signature": tx.signature, "deltas": tx.deltas})
        for oid in tx.order_ids:
            landed.setdefault(oid, []).append(tx)
            if oid not in ours:
                v.add("swap_for_unknown_order", {"orderId": oid, "signature": tx.signature})
    for oid in accepted:
        row = read_model.get(oid)
        swaps = landed.get(oid, [])
        sigs = [t.signature for t in swaps]
        case = {"orderId": oid, "status": row and row["status"], "apiSignature":
                row and row["signature"], "landed": [(t.signature, t.slot) for t in swaps]}
        if len(swaps) > 1:
            v.add("doubled", case)
        if row is None:
            v.add("lost", case)
            continue
        status = row["status"]
        if status not in TERMINAL:
            v.add("stuck", case)
            if swaps:
                v.add("swapped_not_confirmed", case)
        elif status in ENDED_WITHOUT_TRADING and swaps:
            v.add(f"{status}_with_landed_swap", case)
        elif status == "confirmed":
            if not swaps:
                v.add("confirmed_without_landed_swap", case)
            elif row["signature"] not in sigs:
                v.add("confirmed_signature_mismatch", case)
            else:
                d = next(t for t in swaps if t.signature == row["signature"]).deltas
                if (-d.get(row["tokenIn"], 0), d.get(row["tokenOut"], 0)) != (
                        row["amountIn"], row["amountOut"]):
                    v.add("confirmed_amount_mismatch", {**case, "chainDeltas": d,
                                                        "apiIn": row["amountIn"],
                                                        "apiOut": row["amountOut"]})
        v.counts.setdefault(status, 0)
        v.counts[status] += 1
        plan = (plans or {}).get(oid)
        if plan is not None:
            _judge_plan(v, plan, row, swaps, oid in triggered, case)
    expected: Counter[str] = Counter()
    for tx in history:
        if tx.err is None and tx.order_ids:
            expected.update(tx.deltas)
        expected[WSOL_MINT] -= tx.fee
    for mint in sorted(set(before) | set(after) | set(expected)):
        actual = after.get(mint, 0) - before.get(mint, 0)
        if actual != expected.get(mint, 0):
            v.add("unreconciled_mints", {"mint": mint, "actual": actual,
                                         "fromLandedSwaps": expected.get(mint, 0),
                                         "diff": actual - expected.get(mint, 0)})
    v.counts["landed_swaps"] = sum(len(s) for s in landed.values())
    v.counts["wallet_transactions"] = len(history)
    v.counts["failed_transactions_landed"] = sum(1 for t in history if t.err is not None)
    for what in FAILURES:
        v.counts.setdefault(what, 0)
    return v


def _judge_plan(v: Verdict, plan: Planned, row: Mapping[str, Any], swaps: list[WalletTx],
                was_triggered: bool, case: dict[str, Any]) -> None:
    """The checks of an order's own kind, and its line in ``by_kind``."""
    ends = v.by_kind.setdefault(plan.kind, {})
    ends[row["status"]] = ends.get(row["status"], 0) + 1
    ends["landed_swaps"] = ends.get("landed_swaps", 0) + len(swaps)
    if plan.conditional:
        ends["triggered"] = ends.get("triggered", 0) + int(was_triggered)
        if was_triggered and row["status"] != "confirmed":  # re-opened, or worse: look
            ends["triggered_unfilled"] = ends.get("triggered_unfilled", 0) + 1
        if swaps and not was_triggered:
            v.add("swapped_without_trigger", case)
    if plan.min_out is None:
        return
    for tx in swaps:
        got = tx.deltas.get(row["tokenOut"], 0)
        if got < plan.min_out:
            v.add("filled_below_limit", {**case, "minOut": plan.min_out, "chainOut": got,
                                         "signature": tx.signature})
        else:
            # how far above its limit each fill landed, in bps of the limit (the worst)
            bps = (got - plan.min_out) * 10_000 // plan.min_out
            ends["worst_bps_above_min"] = min(ends.get("worst_bps_above_min", bps), bps)
