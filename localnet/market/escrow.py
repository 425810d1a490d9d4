"""``/swap-instructions`` on a localnet without an AMM program: escrowed payouts.

Jupiter's ``/swap-instructions`` hands out instructions that the *user* alone signs; the
caller adds its own (a memo, compute budget) and builds the transaction. The market's
``/swap`` settles with a transfer signed by the pool's maker, which a transaction built
elsewhere cannot carry. So for instructions the market first moves the payout out of the
pool's output vault into a fresh token account of its own (the *escrow*, owned by the
maker) and approves the user as its delegate for exactly that amount, in one real maker
transaction. The user's transaction then pays the input vault and takes the escrow as
delegate: both transfers land together or not at all, with only the user's signature.

What the real programs enforce and this cannot: a client could drop the payment and keep
the delegated payout. The local market trusts its client to send what it was given (the
engine does: it adds instructions, never removes them); the real CP-Swap and DLMM programs
need no such trust (``ORDERFLOW_VENUES=onchain``).

Lifecycle (driven by :class:`~localnet.market.market.Market`'s chain listeners): the
swap's book record is keyed by the escrow address; a landed transaction that writes the
escrow settles it (or, failed, releases it); an escrow whose record is no longer pending is
closed on the next slot, its remaining tokens back in the vault. Its record expires one
blockhash lifetime after the blockhash the user's transaction can have used, so a swap
never lands after its escrow was reclaimed (it would fail, not double-pay).
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    approve_checked,
    close_account,
    initialize_account3,
    transfer_checked,
)
from spl.token.models import (
    ApproveCheckedParams,
    CloseAccountParams,
    InitializeAccount3Params,
    TransferCheckedParams,
)

from localnet.chain import Chain
from localnet.market.pools import Pool
from localnet.market.txbuilder import compile_message, partially_signed
from localnet.programs import TOKEN_ACCOUNT_LEN
from localnet.txerrors import ChainError

LAMPORTS_PER_SOL = 10**9
MAKER_MIN_LAMPORTS = LAMPORTS_PER_SOL // 10  # escrow rent and fees; topped up from the faucet
EXPIRY_MARGIN_BLOCKS = 150
"""Beyond the blockhash the market saw when it opened the escrow: the user fetches its own
blockhash afterwards, at most this much younger in any realistic run."""


@dataclass(frozen=True, slots=True)
class Escrow:
    """An escrowed payout: which pool's vault it came from (and goes back to)."""

    address: Pubkey
    pool: str
    x_to_y: bool  # the swap's direction: the payout is the pool's Y (True) or X token

    def vault(self, pool: Pool) -> Pubkey:
        return pool.vaults(self.x_to_y)[1]


def _send(chain: Chain, payer: Keypair, ixs: list[Instruction],
          signers: list[Keypair]) -> None:
    if chain.get_balance(payer.pubkey()) < MAKER_MIN_LAMPORTS:
        chain.faucet.airdrop(payer.pubkey(), LAMPORTS_PER_SOL)
    message = compile_message(payer.pubkey(), ixs, chain.latest_blockhash()[0])
    sig = chain.send(partially_signed(message, [payer, *signers]))
    record = chain.transaction(sig)
    if record is not None and record.err is not None:
        raise ChainError(record.err)


def open_escrow(chain: Chain, pool: Pool, x_to_y: bool, user: Pubkey, amount: int) -> Escrow:
    """Move ``amount`` of the swap's output from the pool's vault into a new escrow the
    ``user`` may spend exactly once, as delegate (one maker transaction)."""
    maker, account = pool.maker, Keypair()
    token = pool.tokens(x_to_y)[1]
    rent = chain.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)
    _send(chain, maker, [
        create_account(CreateAccountParams(
            from_pubkey=maker.pubkey(), to_pubkey=account.pubkey(), lamports=rent,
            space=TOKEN_ACCOUNT_LEN, owner=TOKEN_PROGRAM_ID)),
        initialize_account3(InitializeAccount3Params(
            program_id=TOKEN_PROGRAM_ID, account=account.pubkey(), mint=token.mint,
            owner=maker.pubkey())),
        transfer_checked(TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=pool.vaults(x_to_y)[1], mint=token.mint,
            dest=account.pubkey(), owner=maker.pubkey(), amount=amount,
            decimals=token.decimals)),
        approve_checked(ApproveCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=account.pubkey(), mint=token.mint,
            delegate=user, owner=maker.pubkey(), amount=amount, decimals=token.decimals,
            signers=[])),
    ], [account])
    return Escrow(account.pubkey(), pool.name, x_to_y)


def payout(escrow: Escrow, pool: Pool, user_out: Pubkey, user: Pubkey,
           amount: int) -> Instruction:
    """The user's side of the payout: the escrow to the user's account, as its delegate."""
    token = pool.tokens(escrow.x_to_y)[1]
    return transfer_checked(TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID, source=escrow.address, mint=token.mint, dest=user_out,
        owner=user, amount=amount, decimals=token.decimals))


def close_escrow(chain: Chain, escrow: Escrow, pool: Pool) -> None:
    """Return what the escrow still holds to the vault and close it (rent to the maker)."""
    maker = pool.maker
    token = pool.tokens(escrow.x_to_y)[1]
    left = chain.token_balance(escrow.address)
    ixs: list[Instruction] = []
    if left:
        ixs.append(transfer_checked(TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=escrow.address, mint=token.mint,
            dest=escrow.vault(pool), owner=maker.pubkey(), amount=left,
            decimals=token.decimals)))
    if chain.get_account(escrow.address) is not None:
        ixs.append(close_account(CloseAccountParams(
            program_id=TOKEN_PROGRAM_ID, account=escrow.address, dest=maker.pubkey(),
            owner=maker.pubkey())))
    if ixs:
        _send(chain, maker, ixs, [])
