"""Account methods: balances, accounts in every encoding (``jsonParsed`` for SPL Token),
program accounts (``memcmp``/``dataSize`` filters), token balances, supply and token
accounts by owner."""

from __future__ import annotations

import base64
import logging

from solders.account import Account
from solders.token.state import Mint, TokenAccount, TokenAccountState

from localnet.encoding import b58encode, ui_token_amount
from localnet.programs import NATIVE_MINT, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from localnet.rpc.filters import matches_all, parse_filters
from localnet.rpc.params import (
    MAX_BASE58_ACCOUNT_DATA,
    MAX_MULTIPLE_ACCOUNTS,
    Methods,
    invalid_params,
    param_arg,
    param_config,
    param_int,
    param_pubkey,
)
from localnet.txerrors import Json

log = logging.getLogger(__name__)


class AccountMethods(Methods):
    def get_balance(self, params: list[Json]) -> Json:
        pubkey = param_pubkey(param_arg(params, 0, "pubkey"))
        slot = self._bank_slot(param_config(params, 1))
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
                offset = param_int(data_slice.get("offset", 0), "dataSlice.offset")
                length = param_int(data_slice.get("length", 0), "dataSlice.length")
                data = data[offset : offset + length]
            if encoding in ("base64", "jsonParsed"):
                data_json = [base64.b64encode(data).decode(), "base64"]
            elif encoding in ("base58", "binary"):
                if len(data) > MAX_BASE58_ACCOUNT_DATA:
                    raise invalid_params(
                        "Encoded binary (base 58) data should be less than 128 bytes, "
                        "please use Base64 encoding."
                    )
                data_json = b58encode(data) if encoding == "binary" else [b58encode(data), "base58"]
            else:
                raise invalid_params(
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
        pubkey = param_pubkey(param_arg(params, 0, "pubkey"))
        cfg = param_config(params, 1)
        slot = self._bank_slot(cfg)
        acc = self.chain.get_account(pubkey)
        value = None if acc is None else self._account_json(
            acc, cfg.get("encoding") or "binary", cfg.get("dataSlice")
        )
        return self._with_context(value, slot)

    def get_multiple_accounts(self, params: list[Json]) -> Json:
        keys = param_arg(params, 0, "pubkeys")
        if not isinstance(keys, list):
            raise invalid_params("Invalid params: expected an array of public keys.")
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise invalid_params(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        cfg = param_config(params, 1)
        slot = self._bank_slot(cfg)
        encoding = cfg.get("encoding") or "base64"
        value: list[Json] = []
        for raw in keys:
            acc = self.chain.get_account(param_pubkey(raw))
            value.append(
                None if acc is None else self._account_json(acc, encoding, cfg.get("dataSlice"))
            )
        return self._with_context(value, slot)

    def get_token_account_balance(self, params: list[Json]) -> Json:
        pubkey = param_pubkey(param_arg(params, 0, "pubkey"))
        slot = self._bank_slot(param_config(params, 1))
        acc = self.chain.get_account(pubkey)
        if acc is None:
            raise invalid_params("Invalid param: could not find account")
        tb = self.chain.tokens.balance_of(0, acc)
        if tb is None:
            raise invalid_params("Invalid param: not a Token account")
        return self._with_context(ui_token_amount(tb.amount, tb.decimals), slot)

    def get_token_supply(self, params: list[Json]) -> Json:
        pubkey = param_pubkey(param_arg(params, 0, "pubkey"))
        slot = self._bank_slot(param_config(params, 1))
        acc = self.chain.get_account(pubkey)
        if acc is None:
            raise invalid_params("Invalid param: could not find account")
        decimals = self.chain.tokens.mint_decimals(pubkey)
        if decimals is None:
            raise invalid_params("Invalid param: not a Token mint")
        supply = int.from_bytes(acc.data[36:44], "little")
        return self._with_context(ui_token_amount(supply, decimals), slot)

    def get_token_accounts_by_owner(self, params: list[Json]) -> Json:
        owner = param_pubkey(param_arg(params, 0, "pubkey"))
        flt = param_arg(params, 1, "filter")
        cfg = param_config(params, 2)
        slot = self._bank_slot(cfg)
        if self.chain.source is not None and isinstance(flt, dict) and len(flt) == 1:
            key, value = next(iter(flt.items()))
            if key in ("mint", "programId") and isinstance(value, str):
                self.chain.source.token_accounts(owner, {key: str(param_pubkey(value))})
        if isinstance(flt, dict) and "mint" in flt:
            mint = param_pubkey(flt["mint"])
            if mint != NATIVE_MINT and self.chain.tokens.mint_decimals(mint) is None:
                raise invalid_params("Invalid param: could not find mint")
            found = self.chain.tokens.by_owner(owner, mint=mint)
        elif isinstance(flt, dict) and "programId" in flt:
            program = param_pubkey(flt["programId"])
            if program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                raise invalid_params("Invalid param: unrecognized Token program id")
            found = self.chain.tokens.by_owner(owner, program_id=program)
        else:
            raise invalid_params("Invalid params: expected a `mint` or `programId` filter.")
        encoding = cfg.get("encoding") or "binary"
        value = [
            {"pubkey": str(address), "account": self._account_json(acc, encoding,
                                                                   cfg.get("dataSlice"))}
            for address, acc in found
        ]
        return self._with_context(value, slot)

    def get_program_accounts(self, params: list[Json]) -> Json:
        """Every account ``program`` owns that passes the filters; a scan, as on a node."""
        program = param_pubkey(param_arg(params, 0, "program_id"))
        cfg = param_config(params, 1)
        slot = self._bank_slot(cfg)
        filters = parse_filters(cfg.get("filters"))
        encoding = cfg.get("encoding") or "binary"
        data_slice = cfg.get("dataSlice")
        value: list[Json] = [
            {"pubkey": str(address), "account": self._account_json(acc, encoding, data_slice)}
            for address, acc in self.chain.svm.get_program_accounts(program)
            if acc.lamports > 0 and matches_all(filters, acc.data)
        ]
        return self._with_context(value, slot) if cfg.get("withContext") else value
