"""A localnet as a real ``orderflow localnet`` process, for restart, preload and fork tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from tests.helpers import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent


class LocalnetProcess:
    """``orderflow localnet ARGS`` on free ports with ``data`` as its data directory."""

    def __init__(self, data: Path, *args: str, slot_ms: int = 50) -> None:
        self.data = data
        self.args = args
        self.rpc_port = free_port(span=2)  # + PubSub
        self.url = f"http://127.0.0.1:{self.rpc_port}"
        self.env = {**os.environ, "ORDERFLOW_DATA_DIR": str(data),
                    "ORDERFLOW_LOCALNET_RPC_PORT": str(self.rpc_port),
                    "ORDERFLOW_LOCALNET_VENUE_PORT": str(free_port()),
                    "ORDERFLOW_LOCALNET_SLOT_MS": str(slot_ms),
                    "ORDERFLOW_LOCALNET_DRIFT_BPS": "0"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, extra: tuple[str, ...]) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.data / f"localnet-{self.rpc_port}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orderflow.cli", "localnet", *self.args, *extra],
            env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    async def start(self, *extra: str) -> LocalnetProcess:
        self._spawn(extra)

        async def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"localnet exited {self.proc.returncode}:\n{self.log()}")
            try:
                await self.rpc("getSlot")
            except (aiohttp.ClientError, OSError):
                return False
            return True
        await wait_until(up, 60, "the localnet RPC")
        return self

    def log(self) -> str:
        path = self.data / f"localnet-{self.rpc_port}-{self.starts}.log"
        return path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no clean stop, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    async def call(self, method: str, *params: Any) -> dict[str, Any]:
        """The whole JSON-RPC answer (``result`` or ``error``)."""
        async with aiohttp.ClientSession() as session, session.post(self.url, json={
                "jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}) as resp:
            doc: dict[str, Any] = await resp.json()
            return doc

    async def rpc(self, method: str, *params: Any) -> Any:
        doc = await self.call(method, *params)
        assert "error" not in doc, (method, doc)
        return doc["result"]

    async def blockhash(self) -> Hash:
        value = (await self.rpc("getLatestBlockhash"))["value"]
        return Hash.from_string(value["blockhash"])

    async def send(self, tx: VersionedTransaction) -> str:
        import base64
        sig: str = await self.rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(),
                                  {"encoding": "base64"})
        return sig

    async def confirmed(self, sig: str) -> dict[str, Any]:
        async def status() -> Any:
            value = (await self.rpc("getSignatureStatuses", [sig]))["value"][0]
            return value if value and value["confirmationStatus"] != "processed" else None
        result: dict[str, Any] = await wait_until(status, 30, f"{sig} confirmed")  # type: ignore[assignment]
        return result

    async def balance(self, key: Pubkey) -> int:
        value: int = (await self.rpc("getBalance", str(key)))["value"]
        return value


def transfer_tx(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> VersionedTransaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return signed([ix], payer, blockhash)


def signed(ixs: list[Instruction], payer: Keypair, blockhash: Hash) -> VersionedTransaction:
    return VersionedTransaction(Message.new_with_blockhash(ixs, payer.pubkey(), blockhash),
                                [payer])


async def gather(*coros: Any) -> list[Any]:
    return list(await asyncio.gather(*coros))
