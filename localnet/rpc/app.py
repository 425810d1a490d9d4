"""The JSON-RPC server: the method table, the JSON-RPC 2.0 envelope (single calls, batches,
notifications, fault plans) and the cluster methods; :func:`build_rpc_app`."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable

import orjson
from aiohttp import web
from solders.hash import Hash
from solders.message import Message, MessageV0, from_bytes_versioned

from localnet import admin
from localnet.blocks import blocks_of
from localnet.chain import Chain
from localnet.faults import (
    ErrorRule,
    Plan,
    RpcFaults,
    add_admin_routes,
    add_clock_routes,
    rpc_error_of,
)
from localnet.rpc.blocks import BlockMethods
from localnet.rpc.node import NodeMethods
from localnet.rpc.params import (
    FEATURE_SET,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SOLANA_CORE_VERSION,
    RpcError,
    invalid_params,
    param_arg,
    param_commitment,
    param_config,
    param_int,
)
from localnet.rpc.transactions import TransactionMethods
from localnet.txerrors import Json

log = logging.getLogger(__name__)

CHAIN_KEY = web.AppKey("chain", Chain)
RPC_FAULTS_KEY = web.AppKey("rpc_faults", RpcFaults)


class _Rpc(TransactionMethods, BlockMethods, NodeMethods):
    """Method table plus the JSON-RPC envelope; one per app."""

    def __init__(self, chain: Chain, faults: RpcFaults) -> None:
        self.chain = chain
        self.faults = faults
        self.methods: dict[str, Callable[[list[Json]], Json]] = {
            "getIdentity": self.get_identity,
            "getClusterNodes": self.get_cluster_nodes,
            "getSlotLeader": self.get_slot_leader,
            "getSlotLeaders": self.get_slot_leaders,
            "getBlock": self.get_block,
            "getBlocks": self.get_blocks,
            "getBlocksWithLimit": self.get_blocks_with_limit,
            "getBlockTime": self.get_block_time,
            "getFirstAvailableBlock": self.get_first_available_block,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "getProgramAccounts": self.get_program_accounts,
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
                raise invalid_params("Invalid params: expected an array of parameters.")
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

    # -- cluster -------------------------------------------------------------------------------

    def get_health(self, params: list[Json]) -> Json:
        return "ok"

    def get_version(self, params: list[Json]) -> Json:
        return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}

    def get_slot(self, params: list[Json]) -> Json:
        return self._bank_slot(param_config(params, 0))

    def get_block_height(self, params: list[Json]) -> Json:
        cfg = param_config(params, 0)
        self._bank_slot(cfg)
        return self.chain.commitment_block_height(param_commitment(cfg))

    def get_latest_blockhash(self, params: list[Json]) -> Json:
        cfg = param_config(params, 0)
        slot = self._bank_slot(cfg)
        blockhash, lvbh = self.chain.latest_blockhash(param_commitment(cfg))
        return self._with_context(
            {"blockhash": str(blockhash), "lastValidBlockHeight": lvbh}, slot
        )

    def is_blockhash_valid(self, params: list[Json]) -> Json:
        raw = param_arg(params, 0, "blockhash")
        slot = self._bank_slot(param_config(params, 1))
        try:
            blockhash = Hash.from_string(raw) if isinstance(raw, str) else None
        except ValueError:
            blockhash = None
        if blockhash is None:
            raise invalid_params(f"Invalid param: {raw!r} is not a valid blockhash")
        return self._with_context(self.chain.is_blockhash_valid(blockhash), slot)

    def get_epoch_info(self, params: list[Json]) -> Json:
        cfg = param_config(params, 0)
        self._bank_slot(cfg)
        return self.chain.epoch_info(param_commitment(cfg))

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
        self._bank_slot(param_config(params, 0))
        return self.chain.transaction_count

    def get_minimum_balance_for_rent_exemption(self, params: list[Json]) -> Json:
        size = param_int(param_arg(params, 0, "usize"), "usize")
        return self.chain.minimum_balance_for_rent_exemption(size)

    def get_fee_for_message(self, params: list[Json]) -> Json:
        raw = param_arg(params, 0, "message")
        slot = self._bank_slot(param_config(params, 1))
        if not isinstance(raw, str):
            raise invalid_params("Invalid params: message must be a base64 string.")
        try:
            message = from_bytes_versioned(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as e:
            raise invalid_params(f"invalid message: {e}") from None
        if not isinstance(message, Message | MessageV0):
            raise invalid_params("invalid message: unsupported message version")
        return self._with_context(self.chain.fee_for_message(message), slot)


def _is_call(req: Json) -> bool:
    """A well-formed JSON-RPC 2.0 request object."""
    return (isinstance(req, dict) and req.get("jsonrpc") == "2.0"
            and isinstance(req.get("method"), str))



def _error_envelope(rid: Json, err: RpcError) -> dict[str, Json]:
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": rid}


def _respond(payload: Json) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_rpc_app(
    chain: Chain,
    faults: RpcFaults | None = None,
    *,
    admin_token: str | None = None,
    rpc_address: str | None = None,
    pubsub_address: str | None = None,
) -> web.Application:
    """An aiohttp app serving Solana JSON-RPC at ``POST /`` and ``GET /health`` for ``chain``.

    The app does not run the slot clock: whoever owns ``chain`` runs
    ``chain.run_clock()`` (so tests can also drive slots with ``tick()``).
    ``faults`` (default: all off) are the switches behind ``/admin/faults``; the clock is
    at ``/admin/clock`` (see :mod:`localnet.faults`). ``GET /health`` is never faulted.
    ``/admin/*`` needs ``admin_token`` from a loopback client (see :mod:`localnet.admin`;
    a random token, at ``app[admin.ADMIN_TOKEN_KEY]``, when None).
    ``rpc_address``/``pubsub_address`` (``host:port``) are what ``getClusterNodes`` advertises.
    """
    app = web.Application(client_max_size=64 * 1024 * 1024)
    admin.guard(app, admin_token, frozenset())
    app[CHAIN_KEY] = chain
    if faults is None:
        faults = RpcFaults(chain)
    app[RPC_FAULTS_KEY] = faults
    blocks_of(chain)  # blocks are known from here on
    rpc = _Rpc(chain, faults)
    rpc.rpc_address, rpc.pubsub_address = rpc_address, pubsub_address
    app.router.add_post("/", rpc.handle)
    app.router.add_get("/health", _health)
    add_admin_routes(app, faults)
    add_clock_routes(app, chain)

    async def close_faults(app: web.Application) -> None:
        faults.close()

    app.on_cleanup.append(close_faults)
    return app
