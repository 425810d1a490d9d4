"""Transaction methods: send (with preflight and the send fault rules), simulate,
signature statuses, getTransaction, getSignaturesForAddress, requestAirdrop."""

from __future__ import annotations

import base64
import binascii
import logging

from solders.message import Message, MessageV0
from solders.transaction import VersionedTransaction

from localnet.chain import FINALIZATION_DEPTH
from localnet.encoding import UnsupportedTransactionVersion, b58decode
from localnet.faults import (
    RpcFaults,
)
from localnet.messages import loaded_addresses
from localnet.parsed import parsed_inner_instructions
from localnet.records import Simulation
from localnet.rpc.accounts import AccountMethods
from localnet.rpc.params import (
    INTERNAL_ERROR,
    MAX_BASE58_SIZE,
    MAX_BASE64_SIZE,
    MAX_SIGNATURE_STATUSES,
    MAX_SIGNATURES_FOR_ADDRESS,
    PACKET_DATA_SIZE,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
    RpcError,
    invalid_params,
    param_arg,
    param_commitment,
    param_config,
    param_int,
    param_pubkey,
    param_signature,
)
from localnet.txerrors import ChainError, Json, error_text

log = logging.getLogger(__name__)


class TransactionMethods(AccountMethods):
    """The transaction methods; the account ones too (simulations return accounts)."""

    faults: RpcFaults

    @staticmethod
    def _decode_transaction(data: Json, encoding: str) -> VersionedTransaction:
        name = "solana_sdk::transaction::versioned::VersionedTransaction"
        if not isinstance(data, str):
            raise invalid_params("Invalid params: transaction must be an encoded string.")
        if encoding == "base58":
            if len(data) > MAX_BASE58_SIZE:
                raise invalid_params(
                    f"base58 encoded {name} too large: {len(data)} bytes "
                    f"(max: encoded/raw {MAX_BASE58_SIZE}/{PACKET_DATA_SIZE})"
                )
            try:
                raw = b58decode(data)
            except ValueError as e:
                raise invalid_params(f"invalid base58 encoding: {e}") from None
        elif encoding == "base64":
            if len(data) > MAX_BASE64_SIZE:
                raise invalid_params(
                    f"base64 encoded {name} too large: {len(data)} bytes "
                    f"(max: encoded/raw {MAX_BASE64_SIZE}/{PACKET_DATA_SIZE})"
                )
            try:
                raw = base64.b64decode(data, validate=True)
            except binascii.Error as e:
                raise invalid_params(f"invalid base64 encoding: {e}") from None
        else:
            raise invalid_params(
                f"unsupported encoding: {encoding}. Supported encodings: base58, base64"
            )
        if len(raw) > PACKET_DATA_SIZE:
            raise invalid_params(
                f"decoded {name} too large: {len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)"
            )
        try:
            tx = VersionedTransaction.from_bytes(raw)
        except ValueError as e:
            raise invalid_params(f"failed to deserialize {name}: {e}") from None
        try:
            tx.sanitize()
        except Exception as e:
            raise invalid_params(f"invalid transaction: {e}") from None
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
        cfg = param_config(params, 1)
        tx = self._decode_transaction(param_arg(params, 0, "transaction"),
                                      cfg.get("encoding") or "base58")
        if cfg.get("preflightCommitment") is not None:
            param_commitment({"commitment": cfg["preflightCommitment"]})
        if cfg.get("maxRetries") is not None:
            param_int(cfg["maxRetries"], "maxRetries")
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
        cfg = param_config(params, 1)
        tx = self._decode_transaction(param_arg(params, 0, "transaction"),
                                      cfg.get("encoding") or "base58")
        slot = self._bank_slot(cfg)
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
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
                raise invalid_params("Invalid params: accounts.addresses must be an array.")
            encoding = wanted.get("encoding") or "base64"
            if encoding not in ("base64", "jsonParsed"):
                raise invalid_params(f"Invalid params: unsupported accounts encoding {encoding}.")
            accounts = []
            for raw in addresses:
                key = param_pubkey(raw)
                # as Agave: a failed simulation reports no post-state
                acc = None if sim.err is not None else (
                    sim.post_accounts.get(key) or self.chain.get_account(key))
                accounts.append(None if acc is None else self._account_json(acc, encoding, None))
        out = self._simulation_json(sim, accounts)
        if cfg.get("innerInstructions"):
            out["innerInstructions"] = self._simulated_inner(tx, sim)
        return self._with_context(out, slot)

    def _simulated_inner(self, tx: VersionedTransaction, sim: Simulation) -> Json:
        """``innerInstructions`` of a simulation, parsed as Agave does; ``None`` if nothing ran."""
        msg = tx.message
        if sim.meta is None or not isinstance(msg, Message | MessageV0):
            return None
        loaded_w, loaded_r = loaded_addresses(self.chain.svm, msg)
        return parsed_inner_instructions(sim.meta, [*msg.account_keys, *loaded_w, *loaded_r])

    def get_signature_statuses(self, params: list[Json]) -> Json:
        sigs = param_arg(params, 0, "signatures")
        if not isinstance(sigs, list):
            raise invalid_params("Invalid params: expected an array of signatures.")
        if len(sigs) > MAX_SIGNATURE_STATUSES:
            raise invalid_params(f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
        param_config(params, 1)  # searchTransactionHistory: our window is the whole history
        status = self.chain.signature_status
        value: list[Json] = []
        for raw in sigs:
            st = status(raw) if isinstance(raw, str) else None
            if st is None:
                param_signature(raw)  # reject garbage the way Solana does
                value.append(None)
            else:
                value.append(st.to_json())
        return self._with_context(value, self.chain.slot)  # statuses read the processed bank

    def get_transaction(self, params: list[Json]) -> Json:
        raw = param_arg(params, 0, "signature")
        second = params[1] if len(params) > 1 else None
        # legacy form: the encoding itself as the second parameter
        cfg = {"encoding": second} if isinstance(second, str) else param_config(params, 1)
        sig = param_signature(raw)
        commitment = param_commitment(cfg)
        if commitment == "processed":
            raise invalid_params("Method does not support commitment below `confirmed`")
        encoding = cfg.get("encoding") or "json"
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise invalid_params(
                f"Invalid params: encoding `{encoding}` is not supported by the localnet "
                "(json, jsonParsed, base64, base58)."
            )
        raw_version = cfg.get("maxSupportedTransactionVersion")
        max_version = None
        if raw_version is not None:
            max_version = param_int(raw_version, "maxSupportedTransactionVersion")
            if max_version != 0:
                raise invalid_params(
                    f"Invalid param: unsupported transaction version {max_version}")
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
        address = param_pubkey(param_arg(params, 0, "address"))
        cfg = param_config(params, 1)
        commitment = param_commitment(cfg)
        if commitment == "processed":
            raise invalid_params("Method does not support commitment below `confirmed`")
        self._bank_slot(cfg)
        raw_limit = cfg.get("limit")
        limit = MAX_SIGNATURES_FOR_ADDRESS if raw_limit is None else param_int(raw_limit, "limit")
        if limit == 0 or limit > MAX_SIGNATURES_FOR_ADDRESS:
            raise invalid_params(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
        before = cfg.get("before")
        until = cfg.get("until")
        return self.chain.history.signatures(
            bytes(address),
            limit=limit,
            before=None if before is None else str(param_signature(before)),
            until=None if until is None else str(param_signature(until)),
            # the bank's slot, unclamped: nothing is finalized before slot 32
            max_slot=self.chain.slot - (1 if commitment == "confirmed" else FINALIZATION_DEPTH),
        )

    def request_airdrop(self, params: list[Json]) -> Json:
        pubkey = param_pubkey(param_arg(params, 0, "pubkey"))
        lamports = param_int(param_arg(params, 1, "lamports"), "lamports")
        try:
            return str(self.chain.faucet.request_airdrop(pubkey, lamports))
        except ChainError as e:
            raise RpcError(INTERNAL_ERROR, f"airdrop failed: {e}") from None
