"""The cluster's faucet: airdrops and mints made of real transactions it pays for.

Nothing is written around the runtime: an airdrop is a System transfer and a mint a
``CreateIdempotent`` + ``MintTo``, signed by the faucet keypair and sent through
:meth:`Chain.send <localnet.chain.Chain.send>`, so they land, are recorded and show in
balances exactly like anyone's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.programs import ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID
from localnet.txerrors import ChainError

if TYPE_CHECKING:
    from localnet.chain import Chain


class Faucet:
    """Sends transactions paid by ``keypair`` (funded at genesis) on ``chain``."""

    def __init__(self, chain: Chain, keypair: Keypair) -> None:
        self.chain = chain
        self.keypair = keypair
        self._nonce = 0

    def pubkey(self) -> Pubkey:
        return self.keypair.pubkey()

    def _send(self, instructions: Sequence[Instruction], *signers: Keypair) -> Signature:
        """Send a transaction paid by the faucet; a changing CU limit keeps repeats distinct."""
        self._nonce = (self._nonce + 1) % 1_000_000
        ixs = [set_compute_unit_limit(200_000 + self._nonce), *instructions]
        payer = self.keypair
        msg = Message.new_with_blockhash(ixs, payer.pubkey(), self.chain.latest_blockhash()[0])
        return self.chain.send(VersionedTransaction(msg, [payer, *signers]))

    def request_airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """A real System transfer from the faucet; the transaction may land with an error."""
        ix = transfer(TransferParams(from_pubkey=self.keypair.pubkey(), to_pubkey=pubkey,
                                     lamports=lamports))
        return self._send([ix])

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """:meth:`request_airdrop`, raising :class:`ChainError` if the transfer failed."""
        return self._checked(self.request_airdrop(pubkey, lamports))

    def mint_to(self, mint: Pubkey, owner: Pubkey, amount: int, authority: Keypair) -> Signature:
        """Real MintTo into ``owner``'s ATA (created idempotently; the faucet pays)."""
        mint_acc = self.chain.get_account(mint)
        if mint_acc is None:
            raise ValueError(f"mint {mint} does not exist")
        program = mint_acc.owner
        ata = self.chain.ata(owner, mint, program)
        payer = self.keypair.pubkey()
        create = Instruction(
            ASSOCIATED_TOKEN_PROGRAM_ID,
            bytes([1]),  # CreateIdempotent
            [
                AccountMeta(payer, True, True),
                AccountMeta(ata, False, True),
                AccountMeta(owner, False, False),
                AccountMeta(mint, False, False),
                AccountMeta(SYSTEM_PROGRAM_ID, False, False),
                AccountMeta(program, False, False),
            ],
        )
        mint_ix = Instruction(
            program,
            bytes([7]) + amount.to_bytes(8, "little"),  # MintTo
            [
                AccountMeta(mint, False, True),
                AccountMeta(ata, False, True),
                AccountMeta(authority.pubkey(), True, False),
            ],
        )
        signers = () if authority.pubkey() == payer else (authority,)
        return self._checked(self._send([create, mint_ix], *signers))

    def _checked(self, sig: Signature) -> Signature:
        rec = self.chain.transaction(sig)
        if rec is not None and rec.err is not None:
            raise ChainError(rec.err)
        return sig
