"""Reading the chain for engine-built swaps: accounts, program scans, the cluster clock,
simulation, recent priority fees and blockhashes, over solana-py's ``AsyncClient``.

Every call maps an unanswered RPC to :class:`~pipeline.errors.RpcUnavailable` (transient:
another attempt may succeed) and a refused simulation to a permanent error from the
program-error table (the swap would fail on chain: sending it would only burn the fee).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any, Protocol

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from pipeline.errors import RpcUnavailable, chain_error

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
MULTIPLE_ACCOUNTS_MAX = 100  # getMultipleAccounts' limit per call
_UNAVAILABLE = (TimeoutError, RPCException, SolanaRpcException, OSError)


class AccountReader(Protocol):
    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]: ...

    async def program_accounts(self, program: Pubkey, filters: Sequence[dict[str, Any]]
                               ) -> list[tuple[Pubkey, bytes]]: ...

    async def clock(self) -> tuple[int, int]:
        """(slot, unix timestamp) of the cluster's Clock sysvar."""
        ...

    async def latest_blockhash(self) -> tuple[Hash, int]: ...

    async def simulate_units(self, tx: VersionedTransaction) -> int: ...

    async def prioritization_fees(self, writable: Sequence[Pubkey]) -> list[int]: ...


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana writes bytes in JSON-RPC."""
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _filter(spec: dict[str, Any]) -> MemcmpOpts | int:
    """A ``getProgramAccounts`` filter in JSON-RPC form -> solana-py's (which sends base58
    only: a base64 memcmp is re-encoded)."""
    if "dataSize" in spec:
        return int(spec["dataSize"])
    memcmp = spec["memcmp"]
    text = str(memcmp["bytes"])
    if memcmp.get("encoding") == "base64":
        text = b58encode(base64.b64decode(text))
    return MemcmpOpts(offset=int(memcmp["offset"]), bytes=text)


class RpcAccounts:
    """:class:`AccountReader` over a solana-py client (share the engine's ``RpcChain``'s)."""

    def __init__(self, client: AsyncClient, *, commitment: str = "confirmed") -> None:
        self._client = client
        self._commitment = Commitment(commitment)

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for start in range(0, len(keys), MULTIPLE_ACCOUNTS_MAX):
            chunk = list(keys[start:start + MULTIPLE_ACCOUNTS_MAX])
            try:
                resp = await self._client.get_multiple_accounts(chunk, self._commitment,
                                                                encoding="base64")
            except _UNAVAILABLE as exc:
                raise RpcUnavailable(message=f"getMultipleAccounts: {exc}") from None
            out.extend(None if acc is None else bytes(acc.data) for acc in resp.value)
        return out

    async def program_accounts(self, program: Pubkey, filters: Sequence[dict[str, Any]]
                               ) -> list[tuple[Pubkey, bytes]]:
        try:
            resp = await self._client.get_program_accounts(
                program, self._commitment, encoding="base64",
                filters=[_filter(f) for f in filters])
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getProgramAccounts: {exc}") from None
        return [(keyed.pubkey, bytes(keyed.account.data)) for keyed in resp.value]

    async def clock(self) -> tuple[int, int]:
        [data] = await self.accounts([CLOCK_SYSVAR])
        if data is None or len(data) < 40:
            raise RpcUnavailable(message="the Clock sysvar is not readable")
        slot, _, _, _, unix_timestamp = struct.unpack_from("<QqQQq", data)
        return slot, unix_timestamp

    async def latest_blockhash(self) -> tuple[Hash, int]:
        try:
            resp = await self._client.get_latest_blockhash(self._commitment)
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getLatestBlockhash: {exc}") from None
        return resp.value.blockhash, resp.value.last_valid_block_height

    async def simulate_units(self, tx: VersionedTransaction) -> int:
        """Compute units the transaction consumes (no signature check, fresh blockhash);
        a simulation that fails is the error the transaction would land with."""
        try:
            resp = await self._client.simulate_transaction(
                tx, sig_verify=False, commitment=self._commitment, replace_recent_blockhash=True)
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"simulateTransaction: {exc}") from None
        value = resp.value
        if value.err is not None:
            logs = "; ".join((value.logs or [])[-3:])
            raise chain_error(str(value.err), f"simulation failed ({logs})")
        if not value.units_consumed:
            raise RpcUnavailable(message="simulateTransaction reported no compute units")
        return int(value.units_consumed)

    async def prioritization_fees(self, writable: Sequence[Pubkey]) -> list[int]:
        try:
            resp = await self._client.get_recent_prioritization_fees(list(writable[:128]))
        except _UNAVAILABLE as exc:
            raise RpcUnavailable(message=f"getRecentPrioritizationFees: {exc}") from None
        return [int(entry.prioritization_fee) for entry in resp.value]
