"""What the cluster remembers and answers: landed transactions, statuses, simulations."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import TransactionMetadata
from solders.transaction_status import TransactionErrorType

from localnet.encoding import ui_token_amount
from localnet.txerrors import Json, error_json


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """One entry of ``pre/postTokenBalances``."""

    account_index: int
    mint: str
    owner: str
    program_id: str
    amount: int
    decimals: int

    def to_json(self) -> dict[str, Json]:
        return {
            "accountIndex": self.account_index,
            "mint": self.mint,
            "owner": self.owner,
            "programId": self.program_id,
            "uiTokenAmount": ui_token_amount(self.amount, self.decimals),
        }


@dataclass(slots=True)
class TxRecord:
    """What the chain remembers about a landed transaction (Solana's ``meta``).

    Logs, compute units, inner instructions and return data stay inside
    LiteSVM's ``TransactionMetadata`` and are rendered only when asked for.
    """

    signature: str
    slot: int
    block_time: int
    raw: bytes  # the wire transaction: half the memory of a parsed VersionedTransaction
    loaded_writable: list[Pubkey]
    loaded_readonly: list[Pubkey]
    err: TransactionErrorType | None
    err_json: Json
    fee: int
    pre_balances: array[int]  # u64 array: 8 bytes a balance instead of a 32-byte int object
    post_balances: array[int]
    pre_token_balances: list[TokenBalance]
    post_token_balances: list[TokenBalance]
    meta: TransactionMetadata

    @property
    def tx(self) -> VersionedTransaction:
        return VersionedTransaction.from_bytes(self.raw)

    @property
    def logs(self) -> list[str]:
        return self.meta.logs()

    @property
    def compute_units(self) -> int:
        return self.meta.compute_units_consumed()

    @property
    def account_keys(self) -> list[Pubkey]:
        """Static keys, then loaded writable, then loaded readonly (Solana's order)."""
        return [*self.tx.message.account_keys, *self.loaded_writable, *self.loaded_readonly]


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """One entry of ``getSignatureStatuses``."""

    slot: int
    confirmations: int | None
    err_json: Json
    confirmation_status: str

    def to_json(self) -> dict[str, Json]:
        err = self.err_json
        return {
            "slot": self.slot,
            "confirmations": self.confirmations,
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "confirmationStatus": self.confirmation_status,
        }


@dataclass(slots=True)
class Simulation:
    """Result of :meth:`Chain.simulate`; nothing was committed."""

    err: TransactionErrorType | None
    err_json: Json
    logs: list[str]
    units_consumed: int
    fee: int
    return_data: tuple[Pubkey, bytes] | None = None
    post_accounts: dict[Pubkey, Account] = field(default_factory=dict)
    replacement_blockhash: tuple[Hash, int] | None = None
    meta: TransactionMetadata | None = None  # for innerInstructions; None when nothing ran

    @classmethod
    def failed(cls, err: TransactionErrorType) -> Simulation:
        """A simulation refused before execution (nothing ran, no logs)."""
        return cls(err=err, err_json=error_json(err), logs=[], units_consumed=0, fee=0)
