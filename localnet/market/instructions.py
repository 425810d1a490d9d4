"""The market's ``POST /swap/v1/swap-instructions``: Jupiter's v1 answer shape, the payout
escrowed (see :mod:`localnet.market.escrow`), so the caller builds and signs alone.

The instructions, in Jupiter's slots: ``computeBudgetInstructions`` (a compute limit and a
zero price: the localnet has no fee market), ``setupInstructions`` (the output ATA, wSOL
wrapping of a SOL input, then the user's payment into the pool's input vault),
``swapInstruction`` (the escrowed payout to the user), ``cleanupInstruction`` (unwrap SOL
output or leftovers). No lookup tables: a local swap fits without them.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from dexmath import cpmm, dlmm
from localnet.market.book import Fill, InsufficientVault, SlippageExceeded
from localnet.market.errors import MarketError, no_route, slippage
from localnet.market.escrow import EXPIRY_MARGIN_BLOCKS, close_escrow, open_escrow, payout
from localnet.market.txbuilder import SwapLegs, ata, swap_instructions
from localnet.txerrors import ChainError

if TYPE_CHECKING:
    from localnet.market.market import Market

log = logging.getLogger(__name__)

COMPUTE_UNIT_LIMIT = 200_000


def instruction_json(ix: Instruction) -> dict[str, Any]:
    """An instruction in Jupiter's JSON form."""
    return {"programId": str(ix.program_id),
            "accounts": [{"pubkey": str(m.pubkey), "isSigner": m.is_signer,
                          "isWritable": m.is_writable} for m in ix.accounts],
            "data": base64.b64encode(bytes(ix.data)).decode()}


def issue_instructions(market: Market, quote_response: Any, user_public_key: Any,
                       wrap_and_unwrap_sol: bool = True) -> dict[str, Any]:
    """Price on the book, escrow the payout, reserve it, answer the instructions."""
    pool, x_to_y, user, amount_in, threshold = market.parse_swap_request(
        quote_response, user_public_key)
    try:
        fill: Fill[Any] = pool.book.fill(x_to_y, amount_in, market.now(), threshold)
    except SlippageExceeded:
        raise slippage() from None
    except (cpmm.CpmmError, dlmm.DlmmError, InsufficientVault):
        raise (slippage() if threshold > 0 else no_route()) from None
    if fill.amount_out == 0:
        raise no_route("Amount too small to swap")
    try:
        escrow = open_escrow(market.chain, pool, x_to_y, user, fill.amount_out)
    except ChainError as exc:
        raise MarketError(500, f"could not escrow the payout: {exc}", "ESCROW_FAILED") from None
    _, last_valid = market.chain.latest_blockhash()
    key = bytes(escrow.address)
    pool.book.commit(fill, key, last_valid + EXPIRY_MARGIN_BLOCKS)
    market.track_escrow(key, pool, escrow)

    token_in, token_out = pool.tokens(x_to_y)
    vault_in, vault_out = pool.vaults(x_to_y)
    # The /swap sequence (ATAs, wrap, two transfers, unwrap) with the maker's transfer
    # replaced by the delegated one from the escrow.
    legs = SwapLegs(user, pool.maker.pubkey(), token_in, token_out, amount_in, fill.amount_out,
                    vault_in, vault_out)
    sequence = swap_instructions(legs, wrap_and_unwrap_sol=wrap_and_unwrap_sol)
    pay_at = next(i for i, ix in enumerate(sequence)
                  if any(m.pubkey == pool.maker.pubkey() for m in ix.accounts))
    setup = sequence[:pay_at]  # ... the user's payment is the last of them
    cleanup = sequence[pay_at + 1:]
    swap = payout(escrow, pool, ata(user, token_out.mint), user, fill.amount_out)
    return {
        "tokenLedgerInstruction": None,
        "computeBudgetInstructions": [instruction_json(set_compute_unit_limit(
            COMPUTE_UNIT_LIMIT)), instruction_json(set_compute_unit_price(0))],
        "setupInstructions": [instruction_json(ix) for ix in setup],
        "swapInstruction": instruction_json(swap),
        "cleanupInstruction": instruction_json(cleanup[0]) if cleanup else None,
        "otherInstructions": [],
        "addressLookupTableAddresses": [],
        "prioritizationFeeLamports": 0,
        "computeUnitLimit": COMPUTE_UNIT_LIMIT,
        "prioritizationType": {"computeBudget": {"microLamports": 0,
                                                 "estimatedMicroLamports": 0}},
        "dynamicSlippageReport": None,
        "simulationError": None,
    }


def escrow_landed(market: Market, tx: VersionedTransaction,
                  err: TransactionErrorType | None) -> None:
    """A transaction wrote an escrow whose swap is pending: settle it (or release it)."""
    for key in map(bytes, tx.message.account_keys):
        if key not in market.escrows:
            continue
        pool = market.inflight.pop(key, None)
        if pool is None:
            continue
        if err is None:
            pool.book.settle(key)
        else:
            log.info("escrowed swap on %s failed on chain (%s); releasing", pool.name, err)
            pool.book.release(key)


def close_finished(market: Market) -> None:
    """Close every escrow whose swap is no longer pending (landed, failed or expired)."""
    by_name = {pool.name: pool for pool in market.pools}
    for key, escrow in list(market.escrows.items()):
        if key in market.inflight:
            continue
        try:
            close_escrow(market.chain, escrow, by_name[escrow.pool])
        except ChainError as exc:
            log.warning("closing escrow %s failed (%s); trying again next slot",
                        escrow.address, exc)
            continue
        del market.escrows[key]


def escrowed(market: Market) -> dict[Pubkey, int]:
    """Vault -> tokens its open escrows hold (still the pool's until they land)."""
    by_name = {pool.name: pool for pool in market.pools}
    out: dict[Pubkey, int] = {}
    for escrow in market.escrows.values():
        vault = escrow.vault(by_name[escrow.pool])
        out[vault] = out.get(vault, 0) + market.chain.token_balance(escrow.address)
    return out

