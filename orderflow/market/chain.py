"""What ``orderflow market`` does on a cluster besides the venues' own instructions:
send and confirm a transaction, read accounts, make test mints, fill token accounts.

Every write is a real transaction signed by the operator's keypair (no cluster-side
shortcut), so the same code runs on devnet, mainnet and our localnet.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Sequence

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
    sync_native,
)
from spl.token.models import InitializeMint2Params, MintToParams, SyncNativeParams

NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
MINT_LEN = 82
CONFIRM_TIMEOUT_S = 90.0


class MarketError(RuntimeError):
    """A step of creating or reading the market failed; the message says which and why."""


class Cluster:
    """The operator's view of one cluster: its RPC and the keypair that pays and signs."""

    def __init__(self, client: AsyncClient, payer: Keypair) -> None:
        self.client = client
        self.payer = payer
        self._sent: set[bytes] = set()

    @property
    def owner(self) -> Pubkey:
        return self.payer.pubkey()

    async def accounts(self, keys: Sequence[Pubkey]) -> list[tuple[Pubkey, bytes] | None]:
        """(owner program, data) of each account, None where it does not exist."""
        resp = await self.client.get_multiple_accounts(list(keys), Confirmed)
        return [None if a is None else (a.owner, bytes(a.data)) for a in resp.value]

    async def exists(self, key: Pubkey) -> bool:
        return (await self.accounts([key]))[0] is not None

    async def token_amount(self, account: Pubkey) -> int:
        """The balance of an SPL token account (0 when it does not exist)."""
        found = (await self.accounts([account]))[0]
        return 0 if found is None else int(struct.unpack_from("<Q", found[1], 64)[0])

    async def mint_decimals(self, mint: Pubkey) -> int:
        found = (await self.accounts([mint]))[0]
        if found is None or len(found[1]) < MINT_LEN:
            raise MarketError(f"mint {mint} does not exist on this cluster")
        return found[1][44]

    async def send(self, instructions: Sequence[Instruction], *signers: Keypair,
                   cu_limit: int = 400_000, what: str = "transaction") -> Signature:
        """Send with preflight and wait until confirmed; a failure raises with the logs.

        The same instructions twice (a second top-up of equal size) wait for a new
        blockhash: under the old one the cluster would drop the copy as already processed.
        """
        while True:
            blockhash = (await self.client.get_latest_blockhash(Confirmed)).value.blockhash
            message = MessageV0.try_compile(self.owner, [set_compute_unit_limit(cu_limit),
                                                         *instructions], [], blockhash)
            if bytes(message) not in self._sent:
                break
            await asyncio.sleep(0.2)
        self._sent.add(bytes(message))
        tx = VersionedTransaction(message, [self.payer, *signers])
        try:
            sig = (await self.client.send_raw_transaction(
                bytes(tx), TxOpts(preflight_commitment=Confirmed))).value
        except Exception as exc:  # preflight refused: the program's error and logs
            raise MarketError(f"{what} refused: {exc}") from None
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while time.monotonic() < deadline:
            status = (await self.client.get_signature_statuses([sig])).value[0]
            if status is not None and status.confirmation_status is not None:
                if status.err is not None:
                    raise MarketError(f"{what} {sig} failed on chain: {status.err}")
                return sig
            await asyncio.sleep(0.4)
        raise MarketError(f"{what} {sig} was not confirmed within {CONFIRM_TIMEOUT_S:.0f}s")

    async def ensure_sol(self, lamports: int, *, airdrop: bool) -> None:
        """The payer holds ``lamports``; on a cluster with a faucet, ask it for the rest."""
        balance = (await self.client.get_balance(self.owner, Confirmed)).value
        if balance >= lamports:
            return
        if not airdrop:
            raise MarketError(f"{self.owner} holds {balance / 1e9:.4f} SOL, needs "
                              f"{lamports / 1e9:.4f} (solana airdrop / fund it first)")
        sig = (await self.client.request_airdrop(self.owner, lamports - balance)).value
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while (await self.client.get_balance(self.owner, Confirmed)).value < lamports:
            if time.monotonic() > deadline:
                raise MarketError(f"airdrop {sig} did not arrive")
            await asyncio.sleep(0.4)

    async def create_mint(self, decimals: int) -> Pubkey:
        """A new SPL mint whose authority is the payer."""
        mint = Keypair()
        rent = (await self.client.get_minimum_balance_for_rent_exemption(MINT_LEN)).value
        await self.send([
            create_account(CreateAccountParams(from_pubkey=self.owner, to_pubkey=mint.pubkey(),
                                               lamports=rent, space=MINT_LEN,
                                               owner=TOKEN_PROGRAM_ID)),
            initialize_mint2(InitializeMint2Params(decimals=decimals, mint=mint.pubkey(),
                                                   mint_authority=self.owner,
                                                   program_id=TOKEN_PROGRAM_ID)),
        ], mint, what=f"create mint ({decimals} decimals)")
        return mint.pubkey()

    async def fill(self, mint: Pubkey, amount: int, *, mintable: bool) -> Pubkey:
        """The payer's ATA of ``mint`` holding at least ``amount``: wraps SOL for the native
        mint, mints the difference when the payer is the mint authority (``mintable``)."""
        ata = get_associated_token_address(self.owner, mint)
        have = await self.token_amount(ata)
        if have >= amount and await self.exists(ata):
            return ata
        ixs = [create_idempotent_associated_token_account(self.owner, self.owner, mint)]
        missing = amount - have
        if missing > 0 and mint == NATIVE_MINT:
            ixs += [transfer(TransferParams(from_pubkey=self.owner, to_pubkey=ata,
                                            lamports=missing)),
                    sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=ata))]
        elif missing > 0 and mintable:
            ixs.append(mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=mint, dest=ata,
                                            mint_authority=self.owner, amount=missing)))
        elif missing > 0:
            raise MarketError(f"{self.owner} holds {have} of {mint}, needs {amount}")
        await self.send(ixs, what=f"fund token account of {mint}")
        return ata
