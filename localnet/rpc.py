"""Solana JSON-RPC 2.0 over HTTP for a :class:`~localnet.chain.Chain`.

The engine uses solana-py's ``AsyncClient`` unchanged against this server, so
every result and error has the exact shape of an Agave 2.x RPC node (checked
by parsing with solana-py's strict typed responses in the tests).

Semantics worth knowing:

* ``commitment`` selects the bank for slot, block height and blockhash
  (processed = latest, confirmed = one slot behind, finalized = 32 behind,
  so a ``finalized`` blockhash has less life left, as on mainnet). Account
  state is LiteSVM's single latest state whatever the commitment.
* ``sendTransaction`` without ``skipPreflight`` verifies signatures (-32003)
  and simulates (-32002) first. With ``skipPreflight`` a transaction the
  cluster would drop (expired blockhash, unfunded payer...) still gets its
  signature back and then never lands, exactly like a real leader dropping
  it. ``maxRetries`` is accepted and ignored: the "leader" is in-process.
* ``getTransaction`` honours ``confirmed``/``finalized`` (``processed`` is
  rejected, as on Solana) and ``maxSupportedTransactionVersion``.

``getSignaturesForAddress`` is answered from a per-address index (:mod:`localnet.history`).

Not supported: ``jsonParsed`` for transactions, ``base64+zstd``, websockets
(``*Subscribe``), and block/ledger queries (``getBlock``, ``getBlocks``...).

Fault switches (latency, HTTP 429/5xx, ``-32005``/``-32603``, held responses, dropped and
late transactions) are off by default; see :mod:`localnet.faults` and ``/admin/faults``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable

import orjson
from aiohttp import web
from solders.account import Account
from solders.hash import Hash
from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction

from localnet import admin
from localnet.chain import COMMITMENTS, FINALIZATION_DEPTH, Chain
from localnet.encoding import UnsupportedTransactionVersion, b58decode, b58encode, ui_token_amount
from localnet.faults import (
    ErrorRule,
    Plan,
    RpcFaults,
    add_admin_routes,
    add_clock_routes,
    rpc_error_of,
)
from localnet.programs import NATIVE_MINT, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from localnet.records import Simulation
from localnet.txerrors import ChainError, Json, error_text

log = logging.getLogger(__name__)

SOLANA_CORE_VERSION = "2.2.0"
API_VERSION = SOLANA_CORE_VERSION
FEATURE_SET = 3_294_202_862
PACKET_DATA_SIZE = 1232
MAX_BASE58_SIZE = 1683  # base58 length of a full packet
MAX_BASE64_SIZE = 1644  # base64 length of a full packet
MAX_SIGNATURE_STATUSES = 256
MAX_SIGNATURES_FOR_ADDRESS = 1000
MAX_MULTIPLE_ACCOUNTS = 100
MAX_BASE58_ACCOUNT_DATA = 128

# Solana / jsonrpc-core error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
UNSUPPORTED_TRANSACTION_VERSION = -32015
MIN_CONTEXT_SLOT_NOT_REACHED = -32016

_LEGACY_COMMITMENT = {
    "recent": "processed",
    "single": "confirmed",
    "singleGossip": "confirmed",
    "max": "finalized",
    "root": "finalized",
}

CHAIN_KEY = web.AppKey("chain", Chain)
RPC_FAULTS_KEY = web.AppKey("rpc_faults", RpcFaults)


class RpcError(Exception):
    """A JSON-RPC error response (``code``, ``message``, optional ``data``)."""

    def __init__(self, code: int, message: str, data: Json = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# ---------------------------------------------------------------------------------------------
# parameter parsing


def _arg(params: list[Json], index: int, name: str) -> Json:
    if index >= len(params):
        raise _invalid(f"Invalid params: missing field `{name}`.")
    return params[index]


def _config(params: list[Json], index: int) -> dict[str, Json]:
    if index >= len(params) or params[index] is None:
        return {}
    cfg = params[index]
    if not isinstance(cfg, dict):
        raise _invalid(f"Invalid params: expected a config object at position {index}.")
    return cfg


def _pubkey(value: Json) -> Pubkey:
    if not isinstance(value, str):
        raise _invalid("Invalid params: expected a base-58 encoded public key string.")
    try:
        return Pubkey.from_string(value)
    except ValueError as e:
        raise _invalid(f"Invalid param: {e}") from None


def _int(value: Json, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"Invalid params: `{name}` must be an unsigned integer.")
    return value


def _commitment(cfg: dict[str, Json]) -> str:
    raw = cfg.get("commitment") or "finalized"
    commitment = _LEGACY_COMMITMENT.get(raw, raw) if isinstance(raw, str) else raw
    if commitment not in COMMITMENTS:
        raise _invalid(
            f"Invalid params: unknown variant `{raw}`, expected one of "
            "`processed`, `confirmed`, `finalized`."
        )
    return str(commitment)


class _Rpc:
    """Method table plus the JSON-RPC envelope; one per app."""

    def __init__(self, chain: Chain, faults: RpcFaults) -> None:
        self.chain = chain
        self.faults = faults
        self.methods: dict[str, Callable[[list[Json]], Json]] = {
            "getHealth": self.get_health,
            "getVersion": self.get_version,
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_block_height,
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenSupply": self.get_token_supply,
            "requestAirdrop": self.request_airdrop,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getFeeForMessage": self.get_fee_for_message,
            "getEpochInfo": self.get_epoch_info,
            "getEpochSchedule": self.get_epoch_schedule,
            "getGenesisHash": self.get_genesis_hash,
            "getTransactionCount": self.get_transaction_count,
        }

    # -- envelope ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _respond(_error_envelope(None, RpcError(PARSE_ERROR, "Parse error")))
        faults = self.faults
        if not faults.active or payload == []:
            return self._answer(payload, None)
        calls = payload if isinstance(payload, list) else [payload]
        names = [c["method"] for c in calls if _is_call(c)]
        plan = faults.plan(names)
        if plan.empty:
            return self._answer(payload, None)
        first = calls[0]
        rid = first.get("id") if isinstance(payload, dict) and isinstance(first, dict) else None

        async def execute() -> web.StreamResponse:
            return self._answer(payload, plan)

        return await faults.run(request, plan, execute, rid)

    def _answer(self, payload: Json, plan: Plan | None) -> web.Response:
        """Run a request (one call or a batch) and build the HTTP answer."""
        per_call = iter(plan.calls if plan is not None else ())
        if isinstance(payload, list):
            if not payload:
                return _respond(_error_envelope(None, RpcError(INVALID_REQUEST, "Invalid request")))
            replies = [self.call(c, next(per_call, None) if _is_call(c) else None)
                       for c in payload]
            out = [r for r in replies if r is not None]
            return _respond(out) if out else web.Response(status=200)
        single = self.call(payload, next(per_call, None) if _is_call(payload) else None)
        return _respond(single) if single is not None else web.Response(status=200)

    def call(self, req: Json, fault: ErrorRule | None = None) -> dict[str, Json] | None:
        """Run one request object; ``None`` for a notification (no ``id``).

        ``fault``, a JSON-RPC-level fault decided for this call, answers it instead: before
        running it, or after (``afterExecute``).
        """
        if not _is_call(req):
            rid = req.get("id") if isinstance(req, dict) else None
            return _error_envelope(rid, RpcError(INVALID_REQUEST, "Invalid request"))
        is_notification = "id" not in req
        rid = req.get("id")
        if fault is not None and not fault.after_execute:
            return None if is_notification else _error_envelope(rid, RpcError(*rpc_error_of(fault)))
        handler = self.methods.get(req["method"])
        if handler is None:
            err = RpcError(METHOD_NOT_FOUND, "Method not found")
            return None if is_notification else _error_envelope(rid, err)
        params = req.get("params")
        if params is None:
            params = []
        try:
            if not isinstance(params, list):
                raise _invalid("Invalid params: expected an array of parameters.")
            result = handler(params)
        except RpcError as e:
            return None if is_notification else _error_envelope(rid, e)
        except Exception:
            log.exception("RPC %s failed", req["method"])
            err = RpcError(INTERNAL_ERROR, "Internal error")
            return None if is_notification else _error_envelope(rid, err)
        if fault is not None:  # after execution: the call ran, the client hears an error
            return None if is_notification else _error_envelope(rid, RpcError(*rpc_error_of(fault)))
        return None if is_notification else {"jsonrpc": "2.0", "result": result, "id": rid}

    @staticmethod
    def _with_context(value: Json, slot: int) -> dict[str, Json]:
        """``{"context", "value"}``; ``slot`` is the bank the request's commitment reads."""
        return {"context": {"slot": slot, "apiVersion": API_VERSION}, "value": value}

    def _bank_slot(self, cfg: dict[str, Json]) -> int:
        """Slot of the bank ``cfg`` asks for, enforcing ``minContextSlot``."""
        slot = self.chain.commitment_slot(_commitment(cfg))
        min_slot = cfg.get("minContextSlot")
        if min_slot is not None and _int(min_slot, "minContextSlot") > slot:
            raise RpcError(
                MIN_CONTEXT_SLOT_NOT_REACHED,
                "Minimum context slot has not been reached",
                {"contextSlot": slot},
            )
        return slot

    # -- cluster -------------------------------------------------------------------------------

    def get_health(self, params: list[Json]) -> Json:
        return "ok"

    def get_version(self, params: list[Json]) -> Json:
        return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}

    def get_slot(self, params: list[Json]) -> Json:
        return self._bank_slot(_config(params, 0))

    def get_block_height(self, params: list[Json]) -> Json:
        cfg = _config(params, 0)
        self._bank_slot(cfg)
        return self.chain.commitment_block_height(_commitment(cfg))

    def get_latest_blockhash(self, params: list[Json]) -> Json:
        cfg = _config(params, 0)
        slot = self._bank_slot(cfg)
        blockhash, lvbh = self.chain.latest_blockhash(_commitment(cfg))
        return self._with_context(
            {"blockhash": str(blockhash), "lastValidBlockHeight": lvbh}, slot
        )

    def is_blockhash_valid(self, params: list[Json]) -> Json:
        raw = _arg(params, 0, "blockhash")
        slot = self._bank_slot(_config(params, 1))
        try:
            blockhash = Hash.from_string(raw) if isinstance(raw, str) else None
        except ValueError:
            blockhash = None
        if blockhash is None:
            raise _invalid(f"Invalid param: {raw!r} is not a valid blockhash")
        return self._with_context(self.chain.is_blockhash_valid(blockhash), slot)

    def get_epoch_info(self, params: list[Json]) -> Json:
        cfg = _config(params, 0)
        self._bank_slot(cfg)
        return self.chain.epoch_info(_commitment(cfg))

    def get_epoch_schedule(self, params: list[Json]) -> Json:
        s = self.chain.epoch_schedule
        return {
            "slotsPerEpoch": s.slots_per_epoch,
            "leaderScheduleSlotOffset": s.leader_schedule_slot_offset,
            "warmup": s.warmup,
            "firstNormalEpoch": s.first_normal_epoch,
            "firstNormalSlot": s.first_normal_slot,
        }

    def get_genesis_hash(self, params: list[Json]) -> Json:
        return str(self.chain.genesis_hash)

    def get_transaction_count(self, params: list[Json]) -> Json:
        self._bank_slot(_config(params, 0))
        return self.chain.transaction_count

    def get_minimum_balance_for_rent_exemption(self, params: list[Json]) -> Json:
        size = _int(_arg(params, 0, "usize"), "usize")
        return self.chain.minimum_balance_for_rent_exemption(size)

    def get_fee_for_message(self, params: list[Json]) -> Json:
        raw = _arg(params, 0, "message")
        slot = self._bank_slot(_config(params, 1))
        if not isinstance(raw, str):
            raise _invalid("Invalid params: message must be a base64 string.")
        try:
            message = from_bytes_versioned(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as e:
            raise _invalid(f"invalid message: {e}") from None
        if not isinstance(message, Message | MessageV0):
            raise _invalid("invalid message: unsupported message version")
        return self._with_context(self.chain.fee_for_message(message), slot)

    # -- transactions --------------------------------------------------------------------------

    @staticmethod
    def _decode_transaction(data: Json, encoding: str) -> VersionedTransaction:
        name = "solana_sdk::transaction::versioned::VersionedTransaction"
        if not isinstance(data, str):
            raise _invalid("Invalid params: transaction must be an encoded string.")
        if encoding == "base58":
            if len(data) > MAX_BASE58_SIZE:
                raise _invalid(
                    f"base58 encoded {name} too large: {len(data)} bytes "
                    f"(max: encoded/raw {MAX_BASE58_SIZE}/{PACKET_DATA_SIZE})"
                )
            try:
                raw = b58decode(data)
            except ValueError as e:
                raise _invalid(f"invalid base58 encoding: {e}") from None
        elif encoding == "base64":
            if len(data) > MAX_BASE64_SIZE:
                raise _invalid(
                    f"base64 encoded {name} too large: {len(data)} bytes "
                    f"(max: encoded/raw {MAX_BASE64_SIZE}/{PACKET_DATA_SIZE})"
                )
            try:
                raw = base64.b64decode(data, validate=True)
            except binascii.Error as e:
                raise _invalid(f"invalid base64 encoding: {e}") from None
        else:
            raise _invalid(
                f"unsupported encoding: {encoding}. Supported encodings: base58, base64"
            )
        if len(raw) > PACKET_DATA_SIZE:
            raise _invalid(
                f"decoded {name} too large: {len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)"
            )
        try:
            tx = VersionedTransaction.from_bytes(raw)
        except ValueError as e:
            raise _invalid(f"failed to deserialize {name}: {e}") from None
        try:
            tx.sanitize()
        except Exception as e:
            raise _invalid(f"invalid transaction: {e}") from None
        return tx

    @staticmethod
    def _simulation_json(sim: Simulation, accounts: Json = None) -> dict[str, Json]:
        rd = sim.return_data
        replacement = sim.replacement_blockhash
        return {
            "err": sim.err_json,
            "logs": sim.logs,
            "accounts": accounts,
            "unitsConsumed": sim.units_consumed,
            "returnData": None
            if rd is None
            else {"programId": str(rd[0]), "data": [base64.b64encode(rd[1]).decode(), "base64"]},
            "innerInstructions": None,
            "replacementBlockhash": None
            if replacement is None
            else {"blockhash": str(replacement[0]), "lastValidBlockHeight": replacement[1]},
            "fee": sim.fee if sim.err_json is None else None,
        }

    def send_transaction(self, params: list[Json]) -> Json:
        cfg = _config(params, 1)
        tx = self._decode_transaction(_arg(params, 0, "transaction"),
                                      cfg.get("encoding") or "base58")
        if cfg.get("preflightCommitment") is not None:
            _commitment({"commitment": cfg["preflightCommitment"]})
        if cfg.get("maxRetries") is not None:
            _int(cfg["maxRetries"], "maxRetries")
        skip_preflight = bool(cfg.get("skipPreflight", False))
        sig = tx.signatures[0]
        if not skip_preflight:
            if not all(tx.verify_with_results()):
                raise RpcError(
                    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                    "Transaction signature verification failure",
                )
            sim = self.chain.simulate(tx, sig_verify=False)  # just verified above
            if sim.err is not None:
                self.chain.rejected(tx, sim.err)
                raise self._preflight_error(sim)
        if not self.faults.on_send(tx):
            return str(sig)  # dropped, or queued to land late: accepted all the same
        try:
            self.chain.send(tx)
        except ChainError as e:
            self.chain.rejected(tx, e.err)
            if not skip_preflight:  # simulation passed but execution refused: report it alike
                raise self._preflight_error(Simulation.failed(e.err)) from None
            log.debug("dropped %s: %s", sig, e)  # a leader would drop it silently
        return str(sig)

    def _preflight_error(self, sim: Simulation) -> RpcError:
        data = self._simulation_json(sim)
        del data["fee"]  # Agave 2.2's preflight data has no fee
        return RpcError(
            SEND_TRANSACTION_PREFLIGHT_FAILURE,
            f"Transaction simulation failed: {error_text(sim.err_json)}",
            data,
        )

    def simulate_transaction(self, params: list[Json]) -> Json:
        cfg = _config(params, 1)
        tx = self._decode_transaction(_arg(params, 0, "transaction"),
                                      cfg.get("encoding") or "base58")
        slot = self._bank_slot(cfg)
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise _invalid("sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(
                TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                "Transaction signature verification failure",
            )
        sim = self.chain.simulate(tx, sig_verify=sig_verify, replace_recent_blockhash=replace)
        accounts: Json = None
        wanted = cfg.get("accounts")
        if isinstance(wanted, dict):
            addresses = wanted.get("addresses") or []
            if not isinstance(addresses, list):
                raise _invalid("Invalid params: accounts.addresses must be an array.")
            encoding = wanted.get("encoding") or "base64"
            if encoding not in ("base64", "jsonParsed"):
                raise _invalid(f"Invalid params: unsupported accounts encoding {encoding}.")
            accounts = []
            for raw in addresses:
                key = _pubkey(raw)
                # as Agave: a failed simulation reports no post-state
                acc = None if sim.err is not None else (
                    sim.post_accounts.get(key) or self.chain.get_account(key))
                accounts.append(None if acc is None else self._account_json(acc, encoding, None))
        return self._with_context(self._simulation_json(sim, accounts), slot)

    def get_signature_statuses(self, params: list[Json]) -> Json:
        sigs = _arg(params, 0, "signatures")
        if not isinstance(sigs, list):
            raise _invalid("Invalid params: expected an array of signatures.")
        if len(sigs) > MAX_SIGNATURE_STATUSES:
            raise _invalid(f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
        _config(params, 1)  # searchTransactionHistory: our window is the whole history
        status = self.chain.signature_status
        value: list[Json] = []
        for raw in sigs:
            st = status(raw) if isinstance(raw, str) else None
            if st is None:
                _signature(raw)  # reject garbage the way Solana does
                value.append(None)
            else:
                value.append(st.to_json())
        return self._with_context(value, self.chain.slot)  # statuses read the processed bank

    def get_transaction(self, params: list[Json]) -> Json:
        raw = _arg(params, 0, "signature")
        second = params[1] if len(params) > 1 else None
        # legacy form: the encoding itself as the second parameter
        cfg = {"encoding": second} if isinstance(second, str) else _config(params, 1)
        sig = _signature(raw)
        commitment = _commitment(cfg)
        if commitment == "processed":
            raise _invalid("Method does not support commitment below `confirmed`")
        encoding = cfg.get("encoding") or "json"
        if encoding not in ("json", "base64", "base58"):
            raise _invalid(
                f"Invalid params: encoding `{encoding}` is not supported by the localnet "
                "(json, base64, base58)."
            )
        raw_version = cfg.get("maxSupportedTransactionVersion")
        max_version = None
        if raw_version is not None:
            max_version = _int(raw_version, "maxSupportedTransactionVersion")
            if max_version != 0:
                raise _invalid(f"Invalid param: unsupported transaction version {max_version}")
        status = self.chain.signature_status(sig)
        if status is None or status.confirmation_status == "processed":
            return None
        if commitment == "finalized" and status.confirmation_status != "finalized":
            return None
        try:
            return self.chain.get_transaction(
                sig, encoding, max_supported_transaction_version=max_version
            )
        except UnsupportedTransactionVersion as e:
            raise RpcError(UNSUPPORTED_TRANSACTION_VERSION, str(e)) from None

    def get_signatures_for_address(self, params: list[Json]) -> Json:
        """Newest first; ``memo`` as Agave formats it (see :mod:`localnet.memo`)."""
        address = _pubkey(_arg(params, 0, "address"))
        cfg = _config(params, 1)
        commitment = _commitment(cfg)
        if commitment == "processed":
            raise _invalid("Method does not support commitment below `confirmed`")
        self._bank_slot(cfg)
        raw_limit = cfg.get("limit")
        limit = MAX_SIGNATURES_FOR_ADDRESS if raw_limit is None else _int(raw_limit, "limit")
        if limit == 0 or limit > MAX_SIGNATURES_FOR_ADDRESS:
            raise _invalid(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
        before = cfg.get("before")
        until = cfg.get("until")
        return self.chain.history.signatures(
            bytes(address),
            limit=limit,
            before=None if before is None else str(_signature(before)),
            until=None if until is None else str(_signature(until)),
            # the bank's slot, unclamped: nothing is finalized before slot 32
            max_slot=self.chain.slot - (1 if commitment == "confirmed" else FINALIZATION_DEPTH),
        )

    def request_airdrop(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0, "pubkey"))
        lamports = _int(_arg(params, 1, "lamports"), "lamports")
        try:
            return str(self.chain.faucet.request_airdrop(pubkey, lamports))
        except ChainError as e:
            raise RpcError(INTERNAL_ERROR, f"airdrop failed: {e}") from None

    # -- accounts ------------------------------------------------------------------------------

    def get_balance(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0, "pubkey"))
        slot = self._bank_slot(_config(params, 1))
        return self._with_context(self.chain.get_balance(pubkey), slot)

    def _account_json(
        self, acc: Account, encoding: str, data_slice: Json
    ) -> dict[str, Json]:
        data = acc.data
        data_json: Json
        parsed = self._parse_account(acc) if encoding == "jsonParsed" else None
        if parsed is not None:
            data_json = parsed
        else:
            if isinstance(data_slice, dict):
                offset = _int(data_slice.get("offset", 0), "dataSlice.offset")
                length = _int(data_slice.get("length", 0), "dataSlice.length")
                data = data[offset : offset + length]
            if encoding in ("base64", "jsonParsed"):
                data_json = [base64.b64encode(data).decode(), "base64"]
            elif encoding in ("base58", "binary"):
                if len(data) > MAX_BASE58_ACCOUNT_DATA:
                    raise _invalid(
                        "Encoded binary (base 58) data should be less than 128 bytes, "
                        "please use Base64 encoding."
                    )
                data_json = b58encode(data) if encoding == "binary" else [b58encode(data), "base58"]
            else:
                raise _invalid(
                    f"Invalid params: encoding `{encoding}` is not supported by the localnet "
                    "(base58, base64, jsonParsed)."
                )
        return {
            "data": data_json,
            "executable": acc.executable,
            "lamports": acc.lamports,
            "owner": str(acc.owner),
            "rentEpoch": acc.rent_epoch,
            "space": len(acc.data),
        }

    def _parse_account(self, acc: Account) -> dict[str, Json] | None:
        """``jsonParsed`` for SPL Token accounts and mints; ``None`` means "no parser"."""
        owner = acc.owner
        if owner == TOKEN_PROGRAM_ID:
            program = "spl-token"
        elif owner == TOKEN_2022_PROGRAM_ID:
            program = "spl-token-2022"
        else:
            return None
        data = acc.data
        info: dict[str, Json]
        if self.chain.tokens.balance_of(0, acc) is not None:
            ta = TokenAccount.from_bytes(data[:165])
            decimals = self.chain.tokens.mint_decimals(ta.mint) or 0
            info = {
                "isNative": ta.is_native is not None,
                "mint": str(ta.mint),
                "owner": str(ta.owner),
                "state": "frozen" if ta.state == TokenAccountState.Frozen else "initialized",
                "tokenAmount": ui_token_amount(ta.amount, decimals),
            }
            if ta.delegate is not None:
                info["delegate"] = str(ta.delegate)
                info["delegatedAmount"] = ui_token_amount(ta.delegated_amount, decimals)
            if ta.is_native is not None:
                info["rentExemptReserve"] = ui_token_amount(ta.is_native, decimals)
            if ta.close_authority is not None:
                info["closeAuthority"] = str(ta.close_authority)
            kind = "account"
        elif len(data) >= 82 and data[45] == 1 and (len(data) == 82 or data[165:166] == b"\x01"):
            mint = Mint.from_bytes(data[:82])
            info = {
                "decimals": mint.decimals,
                "freezeAuthority": None if mint.freeze_authority is None
                else str(mint.freeze_authority),
                "isInitialized": mint.is_initialized,
                "mintAuthority": None if mint.mint_authority is None
                else str(mint.mint_authority),
                "supply": str(mint.supply),
            }
            kind = "mint"
        else:
            return None
        return {"program": program, "parsed": {"info": info, "type": kind}, "space": len(data)}

    def get_account_info(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0, "pubkey"))
        cfg = _config(params, 1)
        slot = self._bank_slot(cfg)
        acc = self.chain.get_account(pubkey)
        value = None if acc is None else self._account_json(
            acc, cfg.get("encoding") or "binary", cfg.get("dataSlice")
        )
        return self._with_context(value, slot)

    def get_multiple_accounts(self, params: list[Json]) -> Json:
        keys = _arg(params, 0, "pubkeys")
        if not isinstance(keys, list):
            raise _invalid("Invalid params: expected an array of public keys.")
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise _invalid(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        cfg = _config(params, 1)
        slot = self._bank_slot(cfg)
        encoding = cfg.get("encoding") or "base64"
        value: list[Json] = []
        for raw in keys:
            acc = self.chain.get_account(_pubkey(raw))
            value.append(
                None if acc is None else self._account_json(acc, encoding, cfg.get("dataSlice"))
            )
        return self._with_context(value, slot)

    def get_token_account_balance(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0, "pubkey"))
        slot = self._bank_slot(_config(params, 1))
        acc = self.chain.get_account(pubkey)
        if acc is None:
            raise _invalid("Invalid param: could not find account")
        tb = self.chain.tokens.balance_of(0, acc)
        if tb is None:
            raise _invalid("Invalid param: not a Token account")
        return self._with_context(ui_token_amount(tb.amount, tb.decimals), slot)

    def get_token_supply(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0, "pubkey"))
        slot = self._bank_slot(_config(params, 1))
        acc = self.chain.get_account(pubkey)
        if acc is None:
            raise _invalid("Invalid param: could not find account")
        decimals = self.chain.tokens.mint_decimals(pubkey)
        if decimals is None:
            raise _invalid("Invalid param: not a Token mint")
        supply = int.from_bytes(acc.data[36:44], "little")
        return self._with_context(ui_token_amount(supply, decimals), slot)

    def get_token_accounts_by_owner(self, params: list[Json]) -> Json:
        owner = _pubkey(_arg(params, 0, "pubkey"))
        flt = _arg(params, 1, "filter")
        cfg = _config(params, 2)
        slot = self._bank_slot(cfg)
        if isinstance(flt, dict) and "mint" in flt:
            mint = _pubkey(flt["mint"])
            if mint != NATIVE_MINT and self.chain.tokens.mint_decimals(mint) is None:
                raise _invalid("Invalid param: could not find mint")
            found = self.chain.tokens.by_owner(owner, mint=mint)
        elif isinstance(flt, dict) and "programId" in flt:
            program = _pubkey(flt["programId"])
            if program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                raise _invalid("Invalid param: unrecognized Token program id")
            found = self.chain.tokens.by_owner(owner, program_id=program)
        else:
            raise _invalid("Invalid params: expected a `mint` or `programId` filter.")
        encoding = cfg.get("encoding") or "binary"
        value = [
            {"pubkey": str(address), "account": self._account_json(acc, encoding,
                                                                   cfg.get("dataSlice"))}
            for address, acc in found
        ]
        return self._with_context(value, slot)


def _is_call(req: Json) -> bool:
    """A well-formed JSON-RPC 2.0 request object."""
    return (isinstance(req, dict) and req.get("jsonrpc") == "2.0"
            and isinstance(req.get("method"), str))


def _signature(raw: Json) -> Signature:
    if not isinstance(raw, str):
        raise _invalid("Invalid params: expected a base-58 encoded signature string.")
    try:
        return Signature.from_string(raw)
    except ValueError as e:
        raise _invalid(f"Invalid param: {e}") from None


def _error_envelope(rid: Json, err: RpcError) -> dict[str, Json]:
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": rid}


def _respond(payload: Json) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_rpc_app(
    chain: Chain, faults: RpcFaults | None = None, *, admin_token: str | None = None
) -> web.Application:
    """An aiohttp app serving Solana JSON-RPC at ``POST /`` and ``GET /health`` for ``chain``.

    The app does not run the slot clock: whoever owns ``chain`` runs
    ``chain.run_clock()`` (so tests can also drive slots with ``tick()``).
    ``faults`` (default: all off) are the switches behind ``/admin/faults``; the clock is
    at ``/admin/clock`` (see :mod:`localnet.faults`). ``GET /health`` is never faulted.
    ``/admin/*`` needs ``admin_token`` from a loopback client (see :mod:`localnet.admin`;
    a random token, at ``app[admin.ADMIN_TOKEN_KEY]``, when None).
    """
    app = web.Application(client_max_size=64 * 1024 * 1024)
    admin.guard(app, admin_token, frozenset())
    app[CHAIN_KEY] = chain
    if faults is None:
        faults = RpcFaults(chain)
    app[RPC_FAULTS_KEY] = faults
    rpc = _Rpc(chain, faults)
    app.router.add_post("/", rpc.handle)
    app.router.add_get("/health", _health)
    add_admin_routes(app, faults)
    add_clock_routes(app, chain)

    async def close_faults(app: web.Application) -> None:
        faults.close()

    app.on_cleanup.append(close_faults)
    return app
