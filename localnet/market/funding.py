"""Money on the localnet's market: the mints, the pools' vaults, the noise trader's
wallet and the faucet, all made of real transactions (airdrops, ``MintTo``, wrapping SOL)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import create_idempotent_associated_token_account, sync_native
from spl.token.models import SyncNativeParams

from localnet.chain import Chain
from localnet.market.errors import MarketError, parse_amount, parse_pubkey
from localnet.market.pools import Pool
from localnet.market.tokens import BY_MINT, NATIVE_MINT, TOKENS, MarketToken
from localnet.market.txbuilder import ata, compile_message, partially_signed
from localnet.txerrors import ChainError

LAMPORTS_PER_SOL = 10**9
FAUCET_SOL = 100 * LAMPORTS_PER_SOL
FAUCET_TOKENS_UI = 100_000
NOISE_TRADER_SOL = 1_000_000 * LAMPORTS_PER_SOL
NOISE_TRADER_TOKENS_UI = 1_000_000_000


class Funding:
    """Mints tokens with ``mint_authority`` and airdrops SOL from the chain's faucet."""

    def __init__(self, chain: Chain, mint_authority: Keypair,
                 tokens: Mapping[str, MarketToken] = BY_MINT) -> None:
        self.chain = chain
        self.mint_authority = mint_authority
        self.tokens = tokens  # what the faucet hands out by mint (launched tokens too)

    def create_mints(self) -> None:
        for token in TOKENS:
            if not token.is_native:  # the chain writes the native mint itself
                self.chain.create_mint_at(token.mint, token.decimals, self.mint_authority.pubkey())

    def fund_vaults(self, pool: Pool) -> None:
        total_x, total_y = pool.book.current_totals()
        for token, amount in ((pool.x, total_x), (pool.y, total_y)):
            if token.is_native:
                self._wrap(pool.maker, amount)
            else:
                self.chain.faucet.mint_to(token.mint, pool.maker.pubkey(), amount,
                                          self.mint_authority)

    def _wrap(self, owner: Keypair, lamports: int) -> None:
        """Put ``lamports`` of wrapped SOL in ``owner``'s wSOL ATA with a real transaction."""
        chain, key = self.chain, owner.pubkey()
        chain.faucet.airdrop(key, lamports + LAMPORTS_PER_SOL)  # + rent and fees
        wsol = ata(key, NATIVE_MINT)
        ixs = [
            create_idempotent_associated_token_account(key, key, NATIVE_MINT),
            transfer(TransferParams(from_pubkey=key, to_pubkey=wsol, lamports=lamports)),
            sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=wsol)),
        ]
        msg = compile_message(key, ixs, chain.latest_blockhash()[0])
        self._send_checked(partially_signed(msg, [owner]))

    def _send_checked(self, tx: VersionedTransaction) -> Signature:
        sig = self.chain.send(tx)
        record = self.chain.transaction(sig)
        if record is not None and record.err is not None:
            raise ChainError(record.err)
        return sig

    def fund(
        self,
        owner: Pubkey,
        lamports: int,
        tokens_ui: int | None,
        mint: MarketToken | None = None,
        amount: int | None = None,
    ) -> dict[str, Any]:
        """Airdrop SOL and/or mint SPL tokens into ``owner``'s ATAs with real transactions."""
        signatures: list[str] = []
        funded: dict[str, str] = {}
        wanted: list[tuple[MarketToken, int]] = []
        if mint is None:
            wanted.append((TOKENS[0], lamports))
            wanted += [(t, (tokens_ui or 0) * 10**t.decimals) for t in TOKENS if not t.is_native]
        else:
            wanted.append(
                (
                    mint,
                    amount
                    if amount is not None
                    else (lamports if mint.is_native else (tokens_ui or 0) * 10**mint.decimals),
                )
            )
        for token, raw in wanted:
            if raw <= 0:
                continue
            if token.is_native:
                sig = self.chain.faucet.airdrop(owner, raw)
            else:
                sig = self.chain.faucet.mint_to(token.mint, owner, raw, self.mint_authority)
            signatures.append(str(sig))
            funded[str(token.mint)] = str(raw)
        return {"owner": str(owner), "signatures": signatures, "funded": funded}

    def faucet(self, owner: Any, mint: Any = None, amount: Any = None) -> dict[str, Any]:
        """Localnet only: fund a wallet (SOL airdrop and/or minted tokens into its ATAs).

        Without ``mint``: ``amount`` lamports of SOL (default 100 SOL) plus 100,000 of each
        SPL token. With ``mint``: ``amount`` raw units of that token (same defaults).
        """
        key = parse_pubkey(owner, "owner")
        token: MarketToken | None = None
        if mint is not None:
            token = self.tokens.get(str(mint))
            if token is None:
                raise MarketError(400, f"The token {mint} is not tradable", "TOKEN_NOT_TRADABLE")
        raw = parse_amount(amount, "amount") if amount is not None else None
        try:
            if token is None:
                return self.fund(key, raw or FAUCET_SOL, FAUCET_TOKENS_UI)
            return self.fund(key, FAUCET_SOL, FAUCET_TOKENS_UI, token, raw)
        except ChainError as exc:
            raise MarketError(500, f"faucet transaction failed: {exc}", "FAUCET_FAILED") from None
