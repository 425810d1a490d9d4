"""JSON-RPC parameters and errors: Agave's error codes, strict parameter reading, and the
base of the method tables (the bank a request's commitment reads, ``{context, value}``)."""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from localnet.chain import COMMITMENTS, Chain
from localnet.txerrors import Json

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


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# ---------------------------------------------------------------------------------------------
# parameter parsing


def param_arg(params: list[Json], index: int, name: str) -> Json:
    if index >= len(params):
        raise invalid_params(f"Invalid params: missing field `{name}`.")
    return params[index]


def param_config(params: list[Json], index: int) -> dict[str, Json]:
    if index >= len(params) or params[index] is None:
        return {}
    cfg = params[index]
    if not isinstance(cfg, dict):
        raise invalid_params(f"Invalid params: expected a config object at position {index}.")
    return cfg


def param_pubkey(value: Json) -> Pubkey:
    if not isinstance(value, str):
        raise invalid_params("Invalid params: expected a base-58 encoded public key string.")
    try:
        return Pubkey.from_string(value)
    except ValueError as e:
        raise invalid_params(f"Invalid param: {e}") from None


def param_int(value: Json, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_params(f"Invalid params: `{name}` must be an unsigned integer.")
    return value


def param_commitment(cfg: dict[str, Json]) -> str:
    raw = cfg.get("commitment") or "finalized"
    commitment = _LEGACY_COMMITMENT.get(raw, raw) if isinstance(raw, str) else raw
    if commitment not in COMMITMENTS:
        raise invalid_params(
            f"Invalid params: unknown variant `{raw}`, expected one of "
            "`processed`, `confirmed`, `finalized`."
        )
    return str(commitment)


def param_signature(raw: Json) -> Signature:
    if not isinstance(raw, str):
        raise invalid_params("Invalid params: expected a base-58 encoded signature string.")
    try:
        return Signature.from_string(raw)
    except ValueError as e:
        raise invalid_params(f"Invalid param: {e}") from None



class Methods:
    """What every method table needs: the chain, the bank a request reads, the context."""

    chain: Chain

    @staticmethod
    def _with_context(value: Json, slot: int) -> dict[str, Json]:
        """``{"context", "value"}``; ``slot`` is the bank the request's commitment reads."""
        return {"context": {"slot": slot, "apiVersion": API_VERSION}, "value": value}

    def _bank_slot(self, cfg: dict[str, Json]) -> int:
        """Slot of the bank ``cfg`` asks for, enforcing ``minContextSlot``."""
        slot = self.chain.commitment_slot(param_commitment(cfg))
        min_slot = cfg.get("minContextSlot")
        if min_slot is not None and param_int(min_slot, "minContextSlot") > slot:
            raise RpcError(
                MIN_CONTEXT_SLOT_NOT_REACHED,
                "Minimum context slot has not been reached",
                {"contextSlot": slot},
            )
        return slot
