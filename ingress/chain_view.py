"""What the page shows of the chain itself: ``GET /api/info`` (the cluster, so the page
links the right explorer, and whether API keys are required) and ``GET /api/tx/{signature}``
(a landed transaction as the RPC has it, for the localnet, where no public explorer can
see it).

The transaction is read from the ingress's own RPC (``getTransaction`` jsonParsed,
``getSignatureStatuses``, ``getSlot``) and reduced to what a person checks: the
instructions with their programs, every token and SOL balance change, the fee, the logs,
the slot and how many slots have passed since. Nothing is computed that the RPC did not say.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from ingress.responses import error_response, json_response
from pipeline.tokens import to_ui, token_by_mint
from pipeline.venue_set import VenueSet
from pipeline.venues.meteora.layout import PROGRAM_ID as DLMM_PROGRAM
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM

SIGNATURE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{64,90}$")
EXPLORER = "https://explorer.solana.com/tx/{signature}"
EXPLORER_CLUSTER = {"devnet": "?cluster=devnet", "mainnet": ""}
# Names for the programs every engine transaction uses; any other shows as its address.
PROGRAMS = {
    "11111111111111111111111111111111": "System Program",
    "ComputeBudget111111111111111111111111111111": "Compute Budget",
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA": "SPL Token",
    "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb": "Token-2022",
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL": "Associated Token Account",
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr": "Memo",
    **{str(program): "Raydium CP-Swap" for program in RAYDIUM_CP_PROGRAM.values()},
    str(DLMM_PROGRAM): "Meteora DLMM",
}
TIMEOUT = aiohttp.ClientTimeout(total=10)


def explorer_url(cluster: str, signature: str) -> str | None:
    """Solana Explorer for the public clusters; None on a localnet (the page's own view)."""
    suffix = EXPLORER_CLUSTER.get(cluster)
    return None if suffix is None else EXPLORER.format(signature=signature) + suffix


def _instruction(ix: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    program = ix.get("programId") or keys[ix.get("programIdIndex", 0)]
    parsed = ix.get("parsed")
    out: dict[str, Any] = {"programId": program, "program": PROGRAMS.get(program, program)}
    if isinstance(parsed, dict):
        out["type"] = parsed.get("type")
        out["info"] = parsed.get("info")
    elif isinstance(parsed, str):  # the memo program's parsed form is its text
        out["type"] = "memo"
        out["info"] = {"memo": parsed}
    else:
        out["accounts"] = ix.get("accounts", [])
        out["data"] = ix.get("data")
    return out


def _token_changes(meta: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    def by_index(rows: list[dict[str, Any]] | None) -> dict[int, dict[str, Any]]:
        return {int(r["accountIndex"]): r for r in rows or []}

    pre, post = by_index(meta.get("preTokenBalances")), by_index(meta.get("postTokenBalances"))
    changes = []
    for index in sorted(set(pre) | set(post)):
        row = post.get(index) or pre[index]
        mint = row["mint"]
        before = int(pre[index]["uiTokenAmount"]["amount"]) if index in pre else 0
        after = int(post[index]["uiTokenAmount"]["amount"]) if index in post else 0
        if before == after:
            continue
        token = token_by_mint(mint)
        decimals = int(row["uiTokenAmount"]["decimals"])
        changes.append({
            "account": keys[index] if index < len(keys) else None, "owner": row.get("owner"),
            "mint": mint, "symbol": None if token is None else token.symbol,
            "before": str(before), "after": str(after), "change": str(after - before),
            "changeUi": to_ui(after - before, decimals) if after >= before
            else "-" + to_ui(before - after, decimals)})
    return changes


def _sol_changes(meta: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    pairs = zip(keys, meta.get("preBalances", []), meta.get("postBalances", []), strict=False)
    return [{"account": key, "before": str(b), "after": str(a), "change": str(a - b)}
            for key, b, a in pairs if a != b]


def transaction_view(signature: str, tx: dict[str, Any], status: dict[str, Any] | None,
                     tip_slot: int, cluster: str) -> dict[str, Any]:
    """The page's view of a ``getTransaction`` (jsonParsed) answer."""
    meta = tx.get("meta") or {}
    message = tx["transaction"]["message"]
    keys = [k["pubkey"] if isinstance(k, dict) else k for k in message["accountKeys"]]
    loaded = meta.get("loadedAddresses") or {}
    keys += list(loaded.get("writable", [])) + list(loaded.get("readonly", []))
    inner = {int(group["index"]): [_instruction(ix, keys) for ix in group["instructions"]]
             for group in meta.get("innerInstructions") or []}
    instructions = [{**_instruction(ix, keys), "inner": inner.get(i, [])}
                    for i, ix in enumerate(message["instructions"])]
    slot = int(tx["slot"])
    return {
        "signature": signature,
        "cluster": cluster,
        "explorerUrl": explorer_url(cluster, signature),
        "slot": slot,
        "blockTime": tx.get("blockTime"),
        "confirmationStatus": None if status is None else status.get("confirmationStatus"),
        "confirmations": max(0, tip_slot - slot),
        "err": meta.get("err"),
        "feeLamports": str(meta.get("fee", 0)),
        "feeSol": to_ui(int(meta.get("fee", 0)), 9),
        "computeUnits": meta.get("computeUnitsConsumed"),
        "version": tx.get("version"),
        "signer": keys[0] if keys else None,
        "instructions": instructions,
        "tokenBalanceChanges": _token_changes(meta, keys),
        "solBalanceChanges": _sol_changes(meta, keys),
        "logs": meta.get("logMessages") or [],
    }


class ChainView:
    """The routes over the ingress's RPC (``None``: the transaction view answers 503)."""

    def __init__(self, rpc_url: str | None, venues: VenueSet | None, *,
                 keys_required: bool = False) -> None:
        self._rpc_url = rpc_url
        self._keys_required = keys_required
        self._venues = venues if venues is not None else VenueSet()
        self._session: aiohttp.ClientSession | None = None

    def register(self, app: web.Application) -> None:
        app.router.add_get("/api/info", self.info)
        app.router.add_get("/api/tx/{signature}", self.transaction)
        app.cleanup_ctx.append(self._client)

    async def _client(self, _app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        yield
        await self._session.close()

    async def info(self, _request: web.Request) -> web.Response:
        """``GET /api/info``: the cluster and the venues, so the page links the right
        explorer and names what it quotes, and whether it must ask for an API key."""
        spec = self._venues
        return json_response({"cluster": spec.cluster, "venueKind": spec.kind,
                              "venues": [v.value for v in spec.enabled],
                              "explorer": spec.cluster in EXPLORER_CLUSTER,
                              "apiKeys": "required" if self._keys_required else "optional"})

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        assert self._session is not None and self._rpc_url is not None
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self._session.post(self._rpc_url, json=body) as resp:
            doc = await resp.json(content_type=None)
        if "error" in doc:
            raise RuntimeError(f"{method}: {doc['error'].get('message')}")
        return doc["result"]

    async def transaction(self, request: web.Request) -> web.Response:
        """``GET /api/tx/{signature}``: the landed transaction as the RPC reports it."""
        signature = request.match_info["signature"]
        if not SIGNATURE.match(signature):
            return error_response(400, "invalid_signature",
                                  "a transaction signature is 64-90 base58 characters",
                                  "signature")
        if self._rpc_url is None:
            return error_response(503, "not_configured",
                                  "this ingress was started without a Solana RPC")
        try:
            tx = await self._rpc("getTransaction", [signature, {
                "encoding": "jsonParsed", "maxSupportedTransactionVersion": 0,
                "commitment": "confirmed"}])
            if tx is None:
                return error_response(404, "transaction_not_found",
                                      f"the RPC has no confirmed transaction {signature}",
                                      "signature")
            statuses = await self._rpc("getSignatureStatuses", [
                [signature], {"searchTransactionHistory": True}])
            tip = await self._rpc("getSlot", [{"commitment": "confirmed"}])
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            return error_response(502, "rpc_unavailable", f"the Solana RPC failed: {exc}")
        status = (statuses.get("value") or [None])[0]
        return json_response(transaction_view(signature, tx, status, int(tip),
                                              self._venues.cluster))
