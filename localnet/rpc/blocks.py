"""Block methods: ``getBlock``, ``getBlocks``, ``getBlocksWithLimit``, ``getBlockTime``,
``getFirstAvailableBlock``, ``getRecentPrioritizationFees``; from :mod:`localnet.blocks`.

Block explorers and indexers walk the chain with these. Shapes and errors are Agave's:
a slot past the commitment's bank is ``-32004`` (not available), one before the first
block still held is ``-32001`` (cleaned up), ``processed`` is refused as for
``getTransaction``.
"""

from __future__ import annotations

from solders.message import MessageV0

from localnet.blocks import Block, blocks_of
from localnet.encoding import UnsupportedTransactionVersion, transaction_result_json
from localnet.records import TxRecord
from localnet.rpc.params import (
    UNSUPPORTED_TRANSACTION_VERSION,
    Methods,
    RpcError,
    invalid_params,
    param_arg,
    param_commitment,
    param_config,
    param_int,
    param_pubkey,
)
from localnet.txerrors import Json

BLOCK_CLEANED_UP = -32001
BLOCK_NOT_AVAILABLE = -32004
MAX_GET_CONFIRMED_BLOCKS_RANGE = 500_000
MAX_TX_ACCOUNT_LOCKS = 128
TRANSACTION_DETAILS = ("full", "accounts", "signatures", "none")
BLOCK_ENCODINGS = ("json", "jsonParsed", "base64", "base58")


class BlockMethods(Methods):
    def _ledger_commitment(self, cfg: dict[str, Json]) -> int:
        """The highest slot a ``confirmed``/``finalized`` ledger read may see."""
        commitment = param_commitment(cfg)
        if commitment == "processed":
            raise invalid_params("Method does not support commitment below `confirmed`")
        return self._bank_slot(cfg)

    def _block_at(self, slot: int, highest: int) -> Block:
        blocks = blocks_of(self.chain)
        if slot < blocks.first_available:
            raise RpcError(BLOCK_CLEANED_UP, "Block cleaned up, does not exist on node. First "
                           f"available block: {blocks.first_available}")
        block = blocks.get(slot) if slot <= highest else None
        if block is None:
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        return block

    def get_block(self, params: list[Json]) -> Json:
        slot = param_int(param_arg(params, 0, "slot"), "slot")
        second = params[1] if len(params) > 1 else None
        cfg = {"encoding": second} if isinstance(second, str) else param_config(params, 1)
        block = self._block_at(slot, self._ledger_commitment(cfg))
        encoding = cfg.get("encoding") or "json"
        details = cfg.get("transactionDetails") or "full"
        if encoding not in BLOCK_ENCODINGS:
            raise invalid_params(f"Invalid params: unknown variant `{encoding}`, expected one "
                                 "of `json`, `jsonParsed`, `base58`, `base64`.")
        if details not in TRANSACTION_DETAILS:
            raise invalid_params(f"Invalid params: unknown variant `{details}`, expected one "
                                 "of `full`, `accounts`, `signatures`, `none`.")
        raw_version = cfg.get("maxSupportedTransactionVersion")
        max_version = None if raw_version is None else param_int(
            raw_version, "maxSupportedTransactionVersion")
        out: dict[str, Json] = {
            "blockHeight": block.block_height,
            "blockTime": block.block_time,
            "blockhash": block.blockhash,
            "parentSlot": block.parent_slot,
            "previousBlockhash": block.previous_blockhash,
        }
        records = [r for s in block.signatures if (r := self.chain.transaction(s)) is not None]
        if details == "signatures":
            out["signatures"] = [r.signature for r in records]
        elif details != "none":
            try:
                out["transactions"] = [
                    _block_transaction(r, str(encoding), max_version, details == "accounts")
                    for r in records]
            except UnsupportedTransactionVersion as e:
                raise RpcError(UNSUPPORTED_TRANSACTION_VERSION, str(e)) from None
        if cfg.get("rewards") is not False:  # absent or null: true, as Agave
            out["rewards"] = []
        return out

    def get_blocks(self, params: list[Json]) -> Json:
        start = param_int(param_arg(params, 0, "start_slot"), "start_slot")
        second = params[1] if len(params) > 1 else None
        if isinstance(second, dict):
            end, cfg = None, second
        else:
            end = None if second is None else param_int(second, "end_slot")
            cfg = param_config(params, 2)
        highest = self._ledger_commitment(cfg)
        end = highest if end is None else min(end, highest)
        if end - start > MAX_GET_CONFIRMED_BLOCKS_RANGE:
            raise invalid_params(f"Slot range too large; max {MAX_GET_CONFIRMED_BLOCKS_RANGE}")
        return blocks_of(self.chain).slots(start, end) if end >= start else []

    def get_blocks_with_limit(self, params: list[Json]) -> Json:
        start = param_int(param_arg(params, 0, "start_slot"), "start_slot")
        limit = param_int(param_arg(params, 1, "limit"), "limit")
        if limit > MAX_GET_CONFIRMED_BLOCKS_RANGE:
            raise invalid_params(f"Limit too large; max {MAX_GET_CONFIRMED_BLOCKS_RANGE}")
        highest = self._ledger_commitment(param_config(params, 2))
        return blocks_of(self.chain).slots(start, highest)[:limit]

    def get_block_time(self, params: list[Json]) -> Json:
        slot = param_int(param_arg(params, 0, "slot"), "slot")
        return self._block_at(slot, self.chain.commitment_slot("confirmed")).block_time

    def get_first_available_block(self, params: list[Json]) -> Json:
        return blocks_of(self.chain).first_available

    def get_recent_prioritization_fees(self, params: list[Json]) -> Json:
        raw = params[0] if params and params[0] is not None else []
        if not isinstance(raw, list):
            raise invalid_params("Invalid params: expected an array of account addresses.")
        if len(raw) > MAX_TX_ACCOUNT_LOCKS:
            raise invalid_params(f"Too many inputs provided; max {MAX_TX_ACCOUNT_LOCKS}")
        accounts = [param_pubkey(k) for k in raw]
        blocks = blocks_of(self.chain).recent(self.chain.commitment_slot("confirmed"))
        return [{"slot": b.slot, "prioritizationFee": b.prioritization_fee(accounts)}
                for b in blocks]


def _block_transaction(rec: TxRecord, encoding: str, max_version: int | None,
                       accounts_only: bool) -> dict[str, Json]:
    """One entry of ``getBlock``'s ``transactions``: ``getTransaction``'s result without the
    slot and time (the block has them), or, for ``accounts``, keys and balances only."""
    full = transaction_result_json(rec, "jsonParsed" if accounts_only else encoding,
                                   max_version)
    if not accounts_only:
        return {k: v for k, v in full.items() if k not in ("slot", "blockTime")}
    tx = full["transaction"]
    meta = full["meta"]
    assert isinstance(tx, dict) and isinstance(meta, dict)
    message = tx["message"]
    assert isinstance(message, dict)
    out: dict[str, Json] = {
        "transaction": {"signatures": tx["signatures"], "accountKeys": message["accountKeys"]},
        "meta": {k: meta[k] for k in ("err", "status", "fee", "preBalances", "postBalances",
                                      "preTokenBalances", "postTokenBalances")},
    }
    if max_version is not None:
        out["version"] = 0 if isinstance(rec.tx.message, MessageV0) else "legacy"
    return out
