"""Reconciliation: what a landed swap really moved, from the chain's own balance records.

Pure functions over the ``meta`` of ``getTransaction``. Native SOL is counted
as the wallet's lamport change plus the fee it paid plus the lamport change of
every token account the wallet owns in the transaction (rent it locked in an
account it still owns, and wrapped SOL, are still the wallet's). Accounts that
are created and closed inside the transaction (the temporary wSOL account)
start and end at zero, so they net out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from pipeline.tokens import WSOL_MINT


@dataclass(frozen=True, slots=True)
class TokenBalance:
    account_index: int
    mint: str
    owner: str
    amount: int


@dataclass(frozen=True, slots=True)
class TxBalances:
    """The parts of ``getTransaction.meta`` reconciliation needs."""

    account_keys: Sequence[str]
    fee: int
    fee_payer: str
    pre_lamports: Sequence[int]
    post_lamports: Sequence[int]
    pre_tokens: Sequence[TokenBalance]
    post_tokens: Sequence[TokenBalance]


def wallet_deltas(tx: TxBalances, wallet: str) -> dict[str, int]:
    """Net change per mint of everything ``wallet`` holds, swap only (fee excluded)."""
    deltas: dict[str, int] = defaultdict(int)
    owned_token_accounts: set[int] = set()
    for tb in tx.pre_tokens:
        if tb.owner == wallet:
            owned_token_accounts.add(tb.account_index)
            if tb.mint != WSOL_MINT:
                deltas[tb.mint] -= tb.amount
    for tb in tx.post_tokens:
        if tb.owner == wallet:
            owned_token_accounts.add(tb.account_index)
            if tb.mint != WSOL_MINT:
                deltas[tb.mint] += tb.amount
    sol = 0
    for i, key in enumerate(tx.account_keys):
        if key == wallet or i in owned_token_accounts:
            sol += tx.post_lamports[i] - tx.pre_lamports[i]
    if tx.fee_payer == wallet:
        sol += tx.fee
    if sol:
        deltas[WSOL_MINT] += sol
    return {mint: d for mint, d in deltas.items() if d}


@dataclass(frozen=True, slots=True)
class Fill:
    amount_in: int
    amount_out: int


def fill_of(tx: TxBalances, wallet: str, mint_in: str, mint_out: str) -> Fill:
    """The swap's real input and output for ``wallet``; raise if the chain disagrees with a swap."""
    deltas = wallet_deltas(tx, wallet)
    spent = -deltas.get(mint_in, 0)
    received = deltas.get(mint_out, 0)
    if spent <= 0 or received <= 0:
        raise ValueError(
            f"transaction does not show a swap of {mint_in} for {mint_out} by {wallet}: {deltas}"
        )
    return Fill(spent, received)


def executed_price(amount_in: int, decimals_in: int, amount_out: int, decimals_out: int) -> str:
    """Units of token out per unit of token in, in UI units, to 12 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 12
        price = (Decimal(amount_out) / Decimal(10) ** decimals_out) / (
            Decimal(amount_in) / Decimal(10) ** decimals_in
        )
    return format(price.normalize(), "f")


def balances_from_rpc_meta(
    account_keys: Sequence[str], fee_payer: str, meta: Mapping[str, object]
) -> TxBalances:
    """Build :class:`TxBalances` from the JSON ``meta`` object of ``getTransaction``."""

    def tokens(key: str) -> list[TokenBalance]:
        out = []
        for raw in meta.get(key) or []:  # type: ignore[attr-defined]
            out.append(TokenBalance(int(raw["accountIndex"]), raw["mint"], raw.get("owner", ""),
                                    int(raw["uiTokenAmount"]["amount"])))
        return out

    return TxBalances(
        account_keys=account_keys,
        fee=int(meta["fee"]),  # type: ignore[call-overload]
        fee_payer=fee_payer,
        pre_lamports=list(meta["preBalances"]),  # type: ignore[call-overload]
        post_lamports=list(meta["postBalances"]),  # type: ignore[call-overload]
        pre_tokens=tokens("preTokenBalances"),
        post_tokens=tokens("postTokenBalances"),
    )
