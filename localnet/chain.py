"""A Solana cluster we run ourselves: LiteSVM plus the parts of a validator it lacks.

LiteSVM is the real runtime (real programs, real signature checks, real fees),
but it has no slots, no block height, no blockhash ageing, no signature
status and no transaction records. :class:`Chain` adds exactly those, with
Solana's rules, so that an engine talking to it through JSON-RPC
(:mod:`localnet.rpc`) sees what it would see on a real cluster:

* one slot every ``slot_ms``, one block per slot, a fresh blockhash per slot;
* a blockhash is valid while ``block_height <= lastValidBlockHeight``
  (issued height + 150); LiteSVM's own check (latest blockhash only) is off;
* a signature that already landed is never executed twice;
* a transaction that fails *after* its fee was charged lands with its error
  (LiteSVM commits the fee and nothing else); one that fails before that
  (bad signature, unknown fee payer, fee unpaid, expired blockhash) does not
  land, exactly as a leader would drop it;
* status goes processed -> confirmed (a later slot exists) -> finalized
  (32 slots later).

What LiteSVM loads by default (checked, solders 0.29): System, Compute
Budget, Address Lookup Table, SPL Token, Token-2022, Associated Token Account
and both Memo programs. The native mint account does not exist in LiteSVM;
:class:`Chain` writes it with the mainnet layout so wrap/unwrap works.

Single-threaded: every method must be called from one thread (the event loop).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from solders.account import Account
from solders.address_lookup_table_account import AddressLookupTable
from solders.clock import Clock
from solders.compute_budget import set_compute_unit_limit
from solders.epoch_schedule import EpochSchedule
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    TransactionMetadata,
)
from solders.transaction_status import TransactionErrorFieldless, TransactionErrorType

log = logging.getLogger(__name__)

Json = Any  # a value orjson can serialise

SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")

MAX_PROCESSING_AGE = 150
"""Blocks a blockhash stays usable: ``lastValidBlockHeight = issued height + 150``."""
FINALIZATION_DEPTH = 32
"""Slots after which a slot counts as rooted (finalized), as on Solana."""
MIN_HISTORY_SLOTS = MAX_PROCESSING_AGE + 2
"""Records younger than this are never evicted: they are what makes dedup safe."""
LAMPORTS_PER_SIGNATURE = 5000
CLOCK_RESYNC_S = 2.0
"""A clock stalled longer than this restarts its schedule instead of catching up."""
U64_MAX = 2**64 - 1
TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82

COMMITMENTS = ("processed", "confirmed", "finalized")

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana uses for instruction data and ``base58`` encodings."""
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; ``ValueError`` on a character outside the alphabet."""
    n = 0
    try:
        for ch in text:
            n = n * 58 + _B58_INDEX[ch]
    except KeyError:
        raise ValueError(f"invalid base58 character {ch!r}") from None
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + n.to_bytes((n.bit_length() + 7) // 8, "big")


# ---------------------------------------------------------------------------------------------
# Transaction errors: solders objects -> Solana's JSON and Display text


def error_json(err: TransactionErrorType | None) -> Json:
    """Solana's JSON form of a ``TransactionError``.

    E.g. ``"BlockhashNotFound"`` or ``{"InstructionError": [0, {"Custom": 1}]}``.

    Borrowed from solders' own serialiser so the shape is exactly what
    solana-py parses back.
    """
    if err is None:
        return None
    return orjson.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


_TX_ERROR_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "CallChainTooDeep": "Loader call chain is too deep",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "ClusterMaintenance": "Transactions are currently disabled due to cluster maintenance",
    "AccountBorrowOutstanding": "Transaction processing left an account with an outstanding "
    "borrowed reference",
    "WouldExceedMaxBlockCostLimit": "Transaction would exceed max Block Cost Limit",
    "UnsupportedVersion": "Transaction version is unsupported",
    "InvalidWritableAccount": "Transaction loads a writable account that cannot be written",
    "WouldExceedMaxAccountCostLimit": "Transaction would exceed max account limit within the block",
    "TooManyAccountLocks": "Transaction locked too many accounts",
    "AddressLookupTableNotFound": "Transaction loads an address table account that doesn't exist",
    "InvalidAddressLookupTableOwner": "Transaction loads an address table account with an "
    "invalid owner",
    "InvalidAddressLookupTableData": "Transaction loads an address table account with invalid data",
    "InvalidAddressLookupTableIndex": "Transaction address table lookup uses an invalid index",
    "InvalidRentPayingAccount": "Transaction leaves an account with a lower balance than "
    "rent-exempt minimum",
    "MaxLoadedAccountsDataSizeExceeded": "Transaction exceeded max loaded accounts data size cap",
    "InvalidLoadedAccountsDataSizeLimit": "LoadedAccountsDataSizeLimit set for transaction must "
    "be greater than 0.",
    "ResanitizationNeeded": "ResanitizationNeeded",
    "UnbalancedTransaction": "Sum of account balances before and after transaction do not match",
    "ProgramCacheHitMaxLimit": "Program cache hit max limit",
    "CommitCancelled": "CommitCancelled",
}

_IX_ERROR_TEXT = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "UnbalancedInstruction": "sum of account balances before and after instruction do not match",
    "ModifiedProgramId": "instruction illegally modified the program id of an account",
    "ExternalAccountLamportSpend": "instruction spent from the balance of an account it does "
    "not own",
    "ExternalAccountDataModified": "instruction modified data of an account it does not own",
    "ReadonlyLamportChange": "instruction changed the balance of a read-only account",
    "ReadonlyDataModified": "instruction modified data of a read-only account",
    "DuplicateAccountIndex": "instruction contains duplicate accounts",
    "ExecutableModified": "instruction changed executable bit of an account",
    "RentEpochModified": "instruction modified rent epoch of an account",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "AccountDataSizeChanged": "program other than the account's owner changed the size of the "
    "account data",
    "AccountNotExecutable": "instruction expected an executable account",
    "AccountBorrowFailed": "instruction tries to borrow reference for an account which is "
    "already borrowed",
    "AccountBorrowOutstanding": "instruction left account with an outstanding borrowed reference",
    "DuplicateAccountOutOfSync": "instruction modifications of multiply-passed account differ",
    "InvalidError": "program returned invalid error code",
    "ExecutableDataModified": "instruction changed executable accounts data",
    "ExecutableLamportChange": "instruction changed the balance of an executable account",
    "ExecutableAccountNotRentExempt": "executable accounts must be rent exempt",
    "UnsupportedProgramId": "Unsupported program id",
    "CallDepth": "Cross-program invocation call depth too deep",
    "MissingAccount": "An account required by the instruction is missing",
    "ReentrancyNotAllowed": "Cross-program invocation reentrancy not allowed for this instruction",
    "MaxSeedLengthExceeded": "Length of the seed is too long for address generation",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "InvalidRealloc": "Failed to reallocate account data",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "PrivilegeEscalation": "Cross-program invocation with unauthorized signer or writable account",
    "ProgramEnvironmentSetupFailure": "Failed to create program execution environment",
    "ProgramFailedToComplete": "Program failed to complete",
    "ProgramFailedToCompile": "Program failed to compile",
    "Immutable": "Account is immutable",
    "IncorrectAuthority": "Incorrect authority provided",
    "AccountNotRentExempt": "An account does not have enough lamports to be rent-exempt",
    "InvalidAccountOwner": "Invalid account owner",
    "ArithmeticOverflow": "Program arithmetic overflowed",
    "UnsupportedSysvar": "Unsupported sysvar",
    "IllegalOwner": "Provided owner is not allowed",
    "MaxAccountsDataAllocationsExceeded": "Accounts data allocations exceeded the maximum "
    "allowed per transaction",
    "MaxAccountsExceeded": "Max accounts exceeded",
    "MaxInstructionTraceLengthExceeded": "Max instruction trace length exceeded",
    "BuiltinProgramsMustConsumeComputeUnits": "Builtin programs must consume compute units",
}


def error_text(err_json: Json) -> str:
    """Solana's Display text for a JSON ``TransactionError`` (used in preflight messages)."""
    if isinstance(err_json, str):
        return _TX_ERROR_TEXT.get(err_json, err_json)
    if isinstance(err_json, dict) and len(err_json) == 1:
        ((name, value),) = err_json.items()
        if name == "InstructionError":
            index, ix_err = value
            if isinstance(ix_err, dict) and "Custom" in ix_err:
                detail = f"custom program error: {ix_err['Custom']:#x}"
            elif isinstance(ix_err, dict) and "BorshIoError" in ix_err:
                detail = "Failed to serialize or deserialize account data"
            else:
                detail = _IX_ERROR_TEXT.get(str(ix_err), str(ix_err))
            return f"Error processing Instruction {index}: {detail}"
        if name == "InsufficientFundsForRent":
            return (
                f"Transaction results in an account ({value['account_index']}) with "
                "insufficient funds for rent"
            )
        if name == "DuplicateInstruction":
            return f"Transaction contains a duplicate instruction ({value}) that is not allowed"
        if name == "ProgramExecutionTemporarilyRestricted":
            return (
                f"Execution of the program referenced by account at index "
                f"{value['account_index']} is temporarily restricted."
            )
    return str(err_json)


class ChainError(Exception):
    """A transaction the cluster refused: it did not land and charged nothing.

    ``err`` is the solders ``TransactionError`` (e.g. ``BlockhashNotFound``),
    ``err_json`` its Solana JSON form.
    """

    def __init__(self, err: TransactionErrorType) -> None:
        self.err = err
        self.err_json = error_json(err)
        super().__init__(error_text(self.err_json))


class UnsupportedTransactionVersion(ValueError):
    """``getTransaction`` of a v0 transaction without ``maxSupportedTransactionVersion``."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(
            f"Transaction version ({version}) is not supported by the requesting client. "
            "Please try the request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0'
        )


# ---------------------------------------------------------------------------------------------
# Records


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


def ui_amount_string(amount: int, decimals: int) -> str:
    """Exact decimal string, trailing zeros trimmed, as Solana's ``uiAmountString``."""
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    frac_s = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{frac_s}" if frac_s else str(whole)


def ui_token_amount(amount: int, decimals: int) -> dict[str, Json]:
    """Solana's ``UiTokenAmount``."""
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": ui_amount_string(amount, decimals),
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

    @classmethod
    def failed(cls, err: TransactionErrorType) -> Simulation:
        """A simulation refused before execution (nothing ran, no logs)."""
        return cls(err=err, err_json=error_json(err), logs=[], units_consumed=0, fee=0)


TxListener = Callable[[Signature, VersionedTransaction, TransactionErrorType | None, int], None]
SlotListener = Callable[[int, int], None]
RejectListener = Callable[[VersionedTransaction, TransactionErrorType], None]


def _writable_flags(
    msg: Message | MessageV0, n_loaded_writable: int, n_loaded_ro: int
) -> list[bool]:
    """Which account keys the message may write (header rule; loaded-writable keys too)."""
    h = msg.header
    n = len(msg.account_keys)
    signed = h.num_required_signatures
    signed_w = signed - h.num_readonly_signed_accounts
    unsigned_w_end = n - h.num_readonly_unsigned_accounts
    flags = [i < signed_w if i < signed else i < unsigned_w_end for i in range(n)]
    return flags + [True] * n_loaded_writable + [False] * n_loaded_ro


def _with_blockhash(tx: VersionedTransaction, blockhash: Hash) -> VersionedTransaction:
    """The same transaction with another recent blockhash (signatures kept, now invalid)."""
    msg = tx.message
    new_msg: Message | MessageV0
    if isinstance(msg, MessageV0):
        new_msg = MessageV0(
            msg.header, msg.account_keys, blockhash, msg.instructions, msg.address_table_lookups
        )
    else:
        h = msg.header
        new_msg = Message.new_with_compiled_instructions(
            h.num_required_signatures,
            h.num_readonly_signed_accounts,
            h.num_readonly_unsigned_accounts,
            msg.account_keys,
            blockhash,
            msg.instructions,
        )
    return VersionedTransaction.populate(new_msg, tx.signatures)


def _compiled_ix_json(program_id_index: int, accounts: bytes, data: bytes,
                      stack_height: int | None) -> dict[str, Json]:
    return {
        "programIdIndex": program_id_index,
        "accounts": list(accounts),
        "data": b58encode(data),
        "stackHeight": stack_height,
    }


def _inner_instructions_json(meta: TransactionMetadata) -> list[dict[str, Json]]:
    """``meta.innerInstructions``: one entry per top-level instruction that made CPIs."""
    out: list[dict[str, Json]] = []
    for index, group in enumerate(meta.inner_instructions()):
        if not group:
            continue
        instructions = []
        for inner in group:
            ix = inner.instruction()
            instructions.append(
                _compiled_ix_json(ix.program_id_index, ix.accounts, ix.data, inner.stack_height())
            )
        out.append({"index": index, "instructions": instructions})
    return out


def transaction_json(tx: VersionedTransaction) -> dict[str, Json]:
    """Solana's ``json`` encoding of a transaction (``UiTransaction`` with a raw message)."""
    msg = tx.message
    h = msg.header
    message: dict[str, Json] = {
        "accountKeys": [str(k) for k in msg.account_keys],
        "header": {
            "numRequiredSignatures": h.num_required_signatures,
            "numReadonlySignedAccounts": h.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": h.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(msg.recent_blockhash),
        "instructions": [
            _compiled_ix_json(ix.program_id_index, ix.accounts, ix.data, None)
            for ix in msg.instructions
        ],
    }
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = [
            {
                "accountKey": str(lk.account_key),
                "writableIndexes": list(lk.writable_indexes),
                "readonlyIndexes": list(lk.readonly_indexes),
            }
            for lk in msg.address_table_lookups
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": message}


# ---------------------------------------------------------------------------------------------


class Chain:
    """An in-process Solana cluster on LiteSVM with Solana's slot, blockhash and status rules.

    ``history_slots`` / ``max_history`` bound memory: a landed transaction's
    record is dropped once it is older than ``history_slots`` slots, or
    earlier when more than ``max_history`` records are held -- but never
    before it is ``MIN_HISTORY_SLOTS`` (152) slots old, because until then
    its blockhash may still be valid and the record is what stops a
    rebroadcast from executing twice. After eviction ``signature_status`` and
    ``get_transaction`` return ``None`` (like a node that pruned its ledger).
    Defaults: one hour of slots at 400 ms, at most 100k records. A record
    measured ~3 KB (a SOL + token transfer; mostly LiteSVM's metadata and
    logs), so the cap is ~300 MB at full load.
    """

    def __init__(
        self,
        *,
        slot_ms: int = 400,
        history_slots: int = 9_000,
        max_history: int = 100_000,
        faucet_lamports: int = 500_000_000 * 10**9,
        faucet: Keypair | None = None,
    ) -> None:
        if slot_ms <= 0:
            raise ValueError("slot_ms must be positive")
        if history_slots < MIN_HISTORY_SLOTS:
            raise ValueError(f"history_slots must be >= {MIN_HISTORY_SLOTS}")
        self.slot_ms = slot_ms
        self.history_slots = history_slots
        self.max_history = max_history
        svm = LiteSVM()
        svm.with_blockhash_check(False)  # we apply Solana's 150-block rule instead
        svm.with_transaction_history(0)  # we dedup and keep records ourselves
        svm.with_sigverify(True)
        self._svm = svm
        self._schedule = svm.get_epoch_schedule()
        self._slot = 0
        self._block_height = 0
        self._unix_ts = self._genesis_ts = int(time.time())
        # blockhash -> lastValidBlockHeight, and per-slot (hash, lvbh) for commitment views
        self._blockhashes: dict[Hash, int] = {}
        self._slot_hashes: deque[tuple[int, Hash, int]] = deque()
        self._parent_hashes: deque[tuple[int, Hash]] = deque(maxlen=512)  # MAX_ENTRIES
        self._records: dict[str, TxRecord] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._decimals: dict[bytes, int] = {}
        self._key_strs: dict[bytes, str] = {}
        self._listeners: list[TxListener] = []
        self._slot_listeners: list[SlotListener] = []
        self._reject_listeners: list[RejectListener] = []
        self._tx_count = 0
        self._faucet_nonce = 0
        self._clock_changed: asyncio.Event | None = None
        self._set_clock()
        self._issue_blockhash(svm.latest_blockhash())
        self.genesis_hash: Hash = svm.latest_blockhash()
        self.faucet = faucet or Keypair()
        svm.set_account(self.faucet.pubkey(), Account(faucet_lamports, b"", SYSTEM_PROGRAM_ID))
        self.create_mint_at(NATIVE_MINT, 9, None)
        from localnet.history import AddressIndex  # it imports this module's types

        self.history = AddressIndex(self)  # getSignaturesForAddress, in O(limit)

    # -- clock ---------------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def block_height(self) -> int:
        return self._block_height

    @property
    def svm(self) -> LiteSVM:
        """The underlying LiteSVM, for reads; writes that bypass :class:`Chain` skip its rules."""
        return self._svm

    @property
    def transaction_count(self) -> int:
        """Transactions that landed since genesis (failed ones included, as on Solana)."""
        return self._tx_count

    @property
    def epoch_schedule(self) -> EpochSchedule:
        return self._schedule

    def _set_clock(self) -> None:
        epoch = self._schedule.get_epoch(self._slot)
        self._svm.set_clock(
            Clock(
                self._slot,
                self._genesis_ts,
                epoch,
                self._schedule.get_leader_schedule_epoch(self._slot),
                self._unix_ts,
            )
        )

    def _issue_blockhash(self, blockhash: Hash) -> None:
        lvbh = self._block_height + MAX_PROCESSING_AGE
        self._blockhashes[blockhash] = lvbh
        self._slot_hashes.append((self._slot, blockhash, lvbh))

    def tick(self) -> None:
        """Advance one slot and one block.

        Issues a fresh blockhash, updates the Clock and SlotHashes sysvars,
        retires expired blockhashes and evicts old records.
        """
        self._parent_hashes.appendleft((self._slot, self._slot_hashes[-1][1]))
        self._slot += 1
        self._block_height += 1
        self._unix_ts = int(time.time())
        svm = self._svm
        svm.expire_blockhash()
        self._issue_blockhash(svm.latest_blockhash())
        self._set_clock()
        # SlotHashes holds the ancestors (newest first): lookup-table creation needs it
        svm.set_slot_hashes(self._parent_hashes)
        hashes = self._slot_hashes
        height = self._block_height
        while hashes and hashes[0][2] < height:
            del self._blockhashes[hashes.popleft()[1]]
        self._evict()
        for cb in list(self._slot_listeners):
            try:
                cb(self._slot, height)
            except Exception:
                log.exception("slot listener failed")

    def _evict(self) -> None:
        order, records = self._order, self._records
        oldest_kept = self._slot - self.history_slots
        oldest_safe = self._slot - MIN_HISTORY_SLOTS
        while order:
            slot, sig = order[0]
            if slot < oldest_kept or (len(records) > self.max_history and slot < oldest_safe):
                order.popleft()
                records.pop(sig, None)
            else:
                break

    def advance(self, slots: int) -> None:
        """Tick ``slots`` slots at once (e.g. to expire every blockhash issued so far)."""
        for _ in range(slots):
            self.tick()

    def set_slot_ms(self, slot_ms: int) -> None:
        """Change the slot time; a running :meth:`run_clock` switches to it at once."""
        if slot_ms <= 0:
            raise ValueError("slot_ms must be positive")
        self.slot_ms = slot_ms
        if self._clock_changed is not None:
            self._clock_changed.set()

    async def run_clock(self) -> None:
        """Tick every ``slot_ms`` until cancelled, on a fixed schedule (no drift).

        A late tick (the event loop was busy) is caught up at once, so block height
        follows wall time even at 20 ms slots; after a stall longer than
        ``CLOCK_RESYNC_S`` (debugger, suspend) the schedule restarts from now instead.
        Cost: about 0.1 ms of CPU a tick, i.e. ~1% of a core at 20 ms slots.
        """
        loop = asyncio.get_running_loop()
        changed = self._clock_changed = asyncio.Event()
        try:
            deadline = loop.time() + self.slot_ms / 1000
            while True:
                delay = deadline - loop.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await changed.wait()
                    except TimeoutError:
                        pass
                    else:  # the slot time changed: the next slot is one new period away
                        changed.clear()
                        deadline = loop.time() + self.slot_ms / 1000
                        continue
                self.tick()
                period = self.slot_ms / 1000
                deadline += period
                if loop.time() - deadline > max(10 * period, CLOCK_RESYNC_S):
                    deadline = loop.time() + period  # stalled: resync rather than burst
        finally:
            if self._clock_changed is changed:
                self._clock_changed = None

    def commitment_slot(self, commitment: str = "processed") -> int:
        """Slot of the bank a commitment level reads: latest, one behind, or 32 behind."""
        if commitment == "processed":
            return self._slot
        if commitment == "confirmed":
            return max(0, self._slot - 1)
        return max(0, self._slot - FINALIZATION_DEPTH)

    def commitment_block_height(self, commitment: str = "processed") -> int:
        return self._block_height - (self._slot - self.commitment_slot(commitment))

    def latest_blockhash(self, commitment: str = "processed") -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight) of the bank at ``commitment``."""
        want = self.commitment_slot(commitment)
        hashes = self._slot_hashes
        index = want - hashes[0][0]
        _, blockhash, lvbh = hashes[max(0, min(index, len(hashes) - 1))]
        return blockhash, lvbh

    def last_valid_block_height(self, blockhash: Hash) -> int | None:
        """``lastValidBlockHeight`` of a still-valid blockhash, else ``None``."""
        lvbh = self._blockhashes.get(blockhash)
        if lvbh is None or lvbh < self._block_height:
            return None
        return lvbh

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        return self.last_valid_block_height(blockhash) is not None

    def epoch_info(self, commitment: str = "processed") -> dict[str, Json]:
        """Solana's ``getEpochInfo`` value for the bank at ``commitment``."""
        slot = self.commitment_slot(commitment)
        epoch, index = self._schedule.get_epoch_and_slot_index(slot)
        return {
            "absoluteSlot": slot,
            "blockHeight": self.commitment_block_height(commitment),
            "epoch": epoch,
            "slotIndex": index,
            "slotsInEpoch": self._schedule.get_slots_in_epoch(epoch),
            "transactionCount": self._tx_count,
        }

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, callback: TxListener) -> None:
        """Call ``callback(signature, tx, err, slot)`` after every transaction that lands."""
        self._listeners.append(callback)

    def remove_listener(self, callback: TxListener) -> None:
        self._listeners.remove(callback)

    def add_slot_listener(self, callback: SlotListener) -> None:
        """Call ``callback(slot, block_height)`` after every slot tick."""
        self._slot_listeners.append(callback)

    def remove_slot_listener(self, callback: SlotListener) -> None:
        self._slot_listeners.remove(callback)

    def add_reject_listener(self, callback: RejectListener) -> None:
        """Call ``callback(tx, err)`` when a submitted transaction was refused unlanded."""
        self._reject_listeners.append(callback)

    def remove_reject_listener(self, callback: RejectListener) -> None:
        self._reject_listeners.remove(callback)

    def rejected(self, tx: VersionedTransaction, err: TransactionErrorType) -> None:
        """A submitted ``tx`` was refused without landing (failed preflight, fee unpaid...).

        The RPC server reports it, so that whoever waits on the transaction (the market's
        reservation) learns at once instead of when its blockhash expires.
        """
        for cb in list(self._reject_listeners):
            try:
                cb(tx, err)
            except Exception:
                log.exception("reject listener failed")

    # -- accounts ------------------------------------------------------------------------------

    def get_account(self, pubkey: Pubkey) -> Account | None:
        return self._svm.get_account(pubkey)

    def get_balance(self, pubkey: Pubkey) -> int:
        return self._svm.get_balance(pubkey) or 0

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Write an account directly (test/market setup only: bypasses the runtime)."""
        self._decimals.pop(bytes(pubkey), None)
        self._svm.set_account(pubkey, account)

    def minimum_balance_for_rent_exemption(self, data_len: int) -> int:
        return self._svm.minimum_balance_for_rent_exemption(data_len)

    def ata(self, owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
        """The associated token account address of ``owner`` for ``mint``."""
        return get_associated_token_address(owner, mint, token_program)

    def create_mint_at(
        self, address: Pubkey, decimals: int, mint_authority: Pubkey | None
    ) -> None:
        """Write an initialised SPL Token mint at ``address`` (mainnet mint addresses locally).

        Idempotent when an identical mint is already there; ``ValueError`` if a
        different account occupies the address (overwriting would desync supply
        from existing token accounts).
        """
        existing = self._svm.get_account(address)
        if existing is not None:
            if existing.owner == TOKEN_PROGRAM_ID and len(existing.data) == MINT_LEN:
                mint = Mint.from_bytes(existing.data)
                if mint.decimals == decimals and mint.mint_authority == mint_authority:
                    return
            raise ValueError(f"{address} already holds a different account")
        data = bytes(Mint(mint_authority, 0, decimals, True, None))
        lamports = self._svm.minimum_balance_for_rent_exemption(len(data))
        self.set_account(address, Account(lamports, data, TOKEN_PROGRAM_ID, False, U64_MAX))

    def token_balance(self, token_account: Pubkey) -> int:
        """Raw amount in a token account; 0 if the account does not exist."""
        acc = self._svm.get_account(token_account)
        if acc is None:
            return 0
        if acc.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID) or len(acc.data) < 165:
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

    def token_balance_of(self, index: int, account: Account | None) -> TokenBalance | None:
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

    def token_accounts_by_owner(
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
                if self.token_balance_of(0, acc) is None:
                    continue
                data = acc.data
                if data[32:64] == owner_b and (mint_b is None or data[0:32] == mint_b):
                    out.append((address, acc))
        return out

    # -- transactions --------------------------------------------------------------------------

    def _loaded_addresses(self, msg: Message | MessageV0) -> tuple[list[Pubkey], list[Pubkey]]:
        """Resolve a v0 message's lookup tables (best effort: LiteSVM does the real check)."""
        if not isinstance(msg, MessageV0) or not msg.address_table_lookups:
            return [], []
        writable: list[Pubkey] = []
        readonly: list[Pubkey] = []
        for lookup in msg.address_table_lookups:
            acc = self._svm.get_account(lookup.account_key)
            if acc is None:
                return [], []
            try:
                addresses = AddressLookupTable.deserialize(acc.data).addresses
                writable.extend(addresses[i] for i in lookup.writable_indexes)
                readonly.extend(addresses[i] for i in lookup.readonly_indexes)
            except (ValueError, IndexError):
                return [], []
        return writable, readonly

    def send(self, tx: VersionedTransaction) -> Signature:
        """Execute and commit ``tx``; return its signature.

        A signature seen before returns at once (no second execution). Raises
        :class:`ChainError` when the transaction would not land on Solana
        (unknown or expired blockhash, bad signature, unfunded fee payer...).
        A transaction that fails after its fee is charged lands with ``err``.
        """
        if not tx.signatures:
            raise ChainError(TransactionErrorFieldless.SanitizeFailure)
        sig = tx.signatures[0]
        key = str(sig)
        if key in self._records:
            return sig
        msg = tx.message
        if not isinstance(msg, Message | MessageV0):
            raise ChainError(TransactionErrorFieldless.UnsupportedVersion)
        if self.last_valid_block_height(msg.recent_blockhash) is None:
            raise ChainError(TransactionErrorFieldless.BlockhashNotFound)
        loaded_w, loaded_r = self._loaded_addresses(msg)
        keys = [*msg.account_keys, *loaded_w, *loaded_r]
        svm = self._svm
        get = svm.get_account
        pre_accounts = [get(k) for k in keys]
        pre_balances = [a.lamports if a is not None else 0 for a in pre_accounts]

        result = svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            err: TransactionErrorType | None = result.err()
            # LiteSVM commits a failed transaction only if it charged the fee ("included").
            if (svm.get_balance(keys[0]) or 0) == pre_balances[0]:
                assert err is not None
                raise ChainError(err)
            meta = result.meta()
        else:
            err = None
            meta = result

        writable = _writable_flags(msg, len(loaded_w), len(loaded_r))
        post_accounts = [
            get(k) if w else a for k, w, a in zip(keys, writable, pre_accounts, strict=True)
        ]
        parse = self.token_balance_of
        pre_tokens = [tb for i, a in enumerate(pre_accounts) if (tb := parse(i, a)) is not None]
        post_tokens = [tb for i, a in enumerate(post_accounts) if (tb := parse(i, a)) is not None]
        record = TxRecord(
            signature=key,
            slot=self._slot,
            block_time=self._unix_ts,
            raw=bytes(tx),
            loaded_writable=loaded_w,
            loaded_readonly=loaded_r,
            err=err,
            err_json=error_json(err),
            fee=meta.fee(),
            pre_balances=array("Q", pre_balances),
            post_balances=array("Q", [a.lamports if a is not None else 0 for a in post_accounts]),
            pre_token_balances=pre_tokens,
            post_token_balances=post_tokens,
            meta=meta,
        )
        self._records[key] = record
        self._order.append((self._slot, key))
        self._tx_count += 1
        for cb in list(self._listeners):
            try:
                cb(sig, tx, err, self._slot)
            except Exception:
                log.exception("transaction listener failed for %s", key)
        return sig

    def simulate(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = True,
        replace_recent_blockhash: bool = False,
    ) -> Simulation:
        """Execute ``tx`` against current state without committing anything."""
        replacement: tuple[Hash, int] | None = None
        if replace_recent_blockhash:
            replacement = self.latest_blockhash()
            tx = _with_blockhash(tx, replacement[0])
            sig_verify = False
        elif self.last_valid_block_height(tx.message.recent_blockhash) is None:
            return Simulation.failed(TransactionErrorFieldless.BlockhashNotFound)
        if str(tx.signatures[0]) in self._records:
            return Simulation.failed(TransactionErrorFieldless.AlreadyProcessed)
        svm = self._svm
        if not sig_verify:
            svm.with_sigverify(False)
        try:
            result = svm.simulate_transaction(tx)
        finally:
            if not sig_verify:
                svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            err: TransactionErrorType | None = result.err()
            meta = result.meta()
            post: dict[Pubkey, Account] = {}
        else:
            err = None
            meta = result.meta()
            post = dict(result.post_accounts())
        rd = meta.return_data()
        return Simulation(
            err=err,
            err_json=error_json(err),
            logs=meta.logs(),
            units_consumed=meta.compute_units_consumed(),
            fee=meta.fee(),
            return_data=(rd.program_id, bytes(rd.data)) if rd.data else None,
            post_accounts=post,
            replacement_blockhash=replacement,
        )

    def fee_for_message(self, msg: Message | MessageV0) -> int | None:
        """Fee LiteSVM would charge (base + priority); ``None`` if the blockhash is invalid."""
        if self.last_valid_block_height(msg.recent_blockhash) is None:
            return None
        n_sigs = msg.header.num_required_signatures
        tx = VersionedTransaction.populate(msg, [Signature.default()] * n_sigs)
        svm = self._svm
        svm.with_sigverify(False)
        try:
            result = svm.simulate_transaction(tx)
        finally:
            svm.with_sigverify(True)
        fee = result.meta().fee()
        return fee or LAMPORTS_PER_SIGNATURE * n_sigs

    def transaction(self, sig: Signature | str) -> TxRecord | None:
        """The record of a landed transaction still in the history window."""
        return self._records.get(sig if isinstance(sig, str) else str(sig))

    def signature_status(self, sig: Signature | str) -> SignatureStatus | None:
        """Solana's status: processed, confirmed (a later slot exists), finalized (32 later)."""
        rec = self._records.get(sig if isinstance(sig, str) else str(sig))
        if rec is None:
            return None
        age = self._slot - rec.slot
        if age >= FINALIZATION_DEPTH:
            return SignatureStatus(rec.slot, None, rec.err_json, "finalized")
        return SignatureStatus(
            rec.slot, age, rec.err_json, "confirmed" if age > 0 else "processed"
        )

    def get_transaction(
        self,
        sig: Signature | str,
        encoding: str = "json",
        *,
        max_supported_transaction_version: int | None = 0,
    ) -> dict[str, Json] | None:
        """Solana's ``getTransaction`` result (``json``, ``base64`` or ``base58``), or ``None``.

        Raises :class:`UnsupportedTransactionVersion` for a v0 transaction when
        ``max_supported_transaction_version`` is ``None``, as Solana does, and
        ``ValueError`` for an unsupported encoding.
        """
        rec = self.transaction(sig)
        if rec is None:
            return None
        tx = rec.tx
        is_v0 = isinstance(tx.message, MessageV0)
        if is_v0 and max_supported_transaction_version is None:
            raise UnsupportedTransactionVersion(0)
        encoded: Json
        if encoding == "json":
            encoded = transaction_json(tx)
        elif encoding == "base64":
            encoded = [base64.b64encode(bytes(tx)).decode(), "base64"]
        elif encoding == "base58":
            encoded = [b58encode(bytes(tx)), "base58"]
        else:
            raise ValueError(f"unsupported encoding {encoding!r}")
        meta = rec.meta
        inner = _inner_instructions_json(meta)
        meta_json: dict[str, Json] = {
            "err": rec.err_json,
            "status": {"Ok": None} if rec.err_json is None else {"Err": rec.err_json},
            "fee": rec.fee,
            "preBalances": rec.pre_balances.tolist(),
            "postBalances": rec.post_balances.tolist(),
            "innerInstructions": inner,
            "logMessages": meta.logs(),
            "preTokenBalances": [tb.to_json() for tb in rec.pre_token_balances],
            "postTokenBalances": [tb.to_json() for tb in rec.post_token_balances],
            "rewards": [],
            "loadedAddresses": {
                "writable": [str(k) for k in rec.loaded_writable],
                "readonly": [str(k) for k in rec.loaded_readonly],
            },
            "computeUnitsConsumed": meta.compute_units_consumed(),
        }
        rd = meta.return_data()
        if rd.data:
            meta_json["returnData"] = {
                "programId": str(rd.program_id),
                "data": [base64.b64encode(bytes(rd.data)).decode(), "base64"],
            }
        out: dict[str, Json] = {
            "slot": rec.slot,
            "transaction": encoded,
            "meta": meta_json,
            "blockTime": rec.block_time,
        }
        if max_supported_transaction_version is not None:
            out["version"] = 0 if is_v0 else "legacy"
        return out

    # -- helpers built from real transactions --------------------------------------------------

    def _faucet_tx(self, instructions: Sequence[Instruction], *signers: Keypair) -> Signature:
        """Send a transaction paid by the faucet; a changing CU limit keeps repeats distinct."""
        self._faucet_nonce = (self._faucet_nonce + 1) % 1_000_000
        ixs = [set_compute_unit_limit(200_000 + self._faucet_nonce), *instructions]
        payer = self.faucet
        msg = Message.new_with_blockhash(ixs, payer.pubkey(), self.latest_blockhash()[0])
        return self.send(VersionedTransaction(msg, [payer, *signers]))

    def request_airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """A real System transfer from the faucet; the transaction may land with an error."""
        ix = transfer(TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=pubkey,
                                     lamports=lamports))
        return self._faucet_tx([ix])

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """:meth:`request_airdrop`, raising :class:`ChainError` if the transfer failed."""
        return self._checked(self.request_airdrop(pubkey, lamports))

    def mint_to(self, mint: Pubkey, owner: Pubkey, amount: int, authority: Keypair) -> Signature:
        """Real MintTo into ``owner``'s ATA (created idempotently; the faucet pays)."""
        mint_acc = self._svm.get_account(mint)
        if mint_acc is None:
            raise ValueError(f"mint {mint} does not exist")
        program = mint_acc.owner
        ata = self.ata(owner, mint, program)
        create = Instruction(
            ASSOCIATED_TOKEN_PROGRAM_ID,
            bytes([1]),  # CreateIdempotent
            [
                AccountMeta(self.faucet.pubkey(), True, True),
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
        signers = () if authority.pubkey() == self.faucet.pubkey() else (authority,)
        return self._checked(self._faucet_tx([create, mint_ix], *signers))

    def _checked(self, sig: Signature) -> Signature:
        rec = self._records.get(str(sig))
        if rec is not None and rec.err is not None:
            raise ChainError(rec.err)
        return sig
