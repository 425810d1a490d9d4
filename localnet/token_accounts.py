"""SPL Token reads on LiteSVM state: balances, mint decimals, token accounts by owner.

Caches what never changes (a mint's decimals once initialised; the base58 text of a key) so
that recording every transaction's token balances stays cheap. Used by :class:`Chain`
(``pre/postTokenBalances``) and the RPC's token methods.
"""

from __future__ import annotations

from solders.account import Account
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey

from localnet.programs import MINT_LEN, TOKEN_2022_PROGRAM_ID, TOKEN_ACCOUNT_LEN, TOKEN_PROGRAM_ID
from localnet.records import TokenBalance


class TokenAccounts:
    """Token account and mint parsing over one LiteSVM; call :meth:`forget` on a direct write."""

    def __init__(self, svm: LiteSVM) -> None:
        self._svm = svm
        self._decimals: dict[bytes, int] = {}
        self._key_strs: dict[bytes, str] = {}

    def forget(self, pubkey: Pubkey) -> None:
        """An account was overwritten directly: drop what was cached about it."""
        self._decimals.pop(bytes(pubkey), None)

    def balance(self, token_account: Pubkey) -> int:
        """Raw amount in a token account; 0 if the account does not exist."""
        acc = self._svm.get_account(token_account)
        if acc is None:
            return 0
        if (acc.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)
                or len(acc.data) < TOKEN_ACCOUNT_LEN):
            raise ValueError(f"{token_account} is not a token account")
        return int.from_bytes(acc.data[64:72], "little")

    def mint_decimals(self, mint: Pubkey) -> int | None:
        """Decimals of a mint (cached: decimals never change once a mint is initialised)."""
        return self._mint_decimals(bytes(mint))

    def _mint_decimals(self, mint: bytes) -> int | None:
        cached = self._decimals.get(mint)
        if cached is not None:
            return cached
        acc = self._svm.get_account(Pubkey.from_bytes(mint))
        if acc is None or acc.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            return None
        data = acc.data
        if len(data) < MINT_LEN or data[45] == 0:  # not initialised
            return None
        self._decimals[mint] = data[44]
        return data[44]

    def balance_of(self, index: int, account: Account | None) -> TokenBalance | None:
        """Parse a token account into a :class:`TokenBalance`; ``None`` if it is not one."""
        if account is None:
            return None
        owner = account.owner
        if owner != TOKEN_PROGRAM_ID and owner != TOKEN_2022_PROGRAM_ID:
            return None
        data = account.data
        n = len(data)
        if n < TOKEN_ACCOUNT_LEN or data[108] == 0:  # too short, or uninitialised
            return None
        if n > TOKEN_ACCOUNT_LEN and (owner != TOKEN_2022_PROGRAM_ID or data[165] != 2):
            return None  # a Token-2022 mint with extensions, or junk
        mint = data[0:32]
        decimals = self._mint_decimals(mint)
        if decimals is None:
            return None
        return TokenBalance(
            index,
            self._key_str(mint),
            self._key_str(data[32:64]),
            self._key_str(bytes(owner)),
            int.from_bytes(data[64:72], "little"),
            decimals,
        )

    def _key_str(self, key: bytes) -> str:
        """Base58 of a pubkey, shared: records then hold one string per key, not one per use."""
        text = self._key_strs.get(key)
        if text is None:
            if len(self._key_strs) >= 100_000:
                self._key_strs.clear()
            text = self._key_strs[key] = str(Pubkey.from_bytes(key))
        return text

    def by_owner(
        self, owner: Pubkey, *, mint: Pubkey | None = None, program_id: Pubkey | None = None
    ) -> list[tuple[Pubkey, Account]]:
        """Token accounts owned by ``owner`` (optionally of one mint). Scans: not for hot paths."""
        programs = [program_id] if program_id else [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]
        if mint is not None:
            mint_acc = self._svm.get_account(mint)
            programs = [mint_acc.owner] if mint_acc is not None else []
        owner_b = bytes(owner)
        mint_b = bytes(mint) if mint is not None else None
        out: list[tuple[Pubkey, Account]] = []
        for program in programs:
            for address, acc in self._svm.get_program_accounts(program):
                if self.balance_of(0, acc) is None:
                    continue
                data = acc.data
                if data[32:64] == owner_b and (mint_b is None or data[0:32] == mint_b):
                    out.append((address, acc))
        return out
