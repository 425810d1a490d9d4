"""``orderflow localnet --bpf-program ADDRESS PATH.so --account ADDRESS PATH.json`` (and the
``ORDERFLOW_LOCALNET_PROGRAMS``/``_ACCOUNTS`` environment): loaded, visible over RPC, and the
program runs. The program is the SPL Memo ELF that LiteSVM bundles, deployed at a new id."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey

from localnet.config import LocalnetConfigError
from localnet.preload import parse_pairs, read_account_json
from tests.localnet_proc import LocalnetProcess, signed

MEMO = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
OWNER = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


def memo_elf() -> bytes:
    account = LiteSVM().get_account(MEMO)
    assert account is not None and bytes(account.data[:4]) == b"\x7fELF"
    return bytes(account.data)


def account_json(path: Path, address: Pubkey, data: bytes, lamports: int) -> Path:
    """What ``solana account ADDRESS --output json`` writes."""
    path.write_text(json.dumps({"pubkey": str(address), "account": {
        "lamports": lamports, "data": [base64.b64encode(data).decode(), "base64"],
        "owner": str(OWNER), "executable": False, "rentEpoch": 18446744073709551615,
        "space": len(data)}}))
    return path


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[tuple[Path, Pubkey, Path, Pubkey, Path, Pubkey]]:
    program, account, env_account = Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey()
    so = tmp_path / "memo.so"
    so.write_bytes(memo_elf())
    acc = account_json(tmp_path / "acc.json", account, b"\x01\x02\x03" * 30, 5_000_000)
    env_acc = account_json(tmp_path / "env.json", env_account, b"env", 1_000_000)
    yield so, program, acc, account, env_acc, env_account


async def test_program_and_account_switches(tmp_path: Path, files: tuple) -> None:  # type: ignore[type-arg]
    so, program, acc, account, env_acc, env_account = files
    alice = Keypair()
    net = LocalnetProcess(tmp_path / "data", "--ephemeral", "--fund", str(alice.pubkey()),
                          "--bpf-program", str(program), str(so),
                          "--account", str(account), str(acc))
    net.env["ORDERFLOW_LOCALNET_ACCOUNTS"] = f"{env_account}={env_acc}"
    await net.start()
    try:
        info = (await net.rpc("getAccountInfo", str(account), {"encoding": "base64"}))["value"]
        assert info["lamports"] == 5_000_000 and info["owner"] == str(OWNER)
        assert base64.b64decode(info["data"][0]) == b"\x01\x02\x03" * 30
        env_info = (await net.rpc("getAccountInfo", str(env_account),
                                  {"encoding": "base64"}))["value"]
        assert base64.b64decode(env_info["data"][0]) == b"env"
        prog = (await net.rpc("getAccountInfo", str(program), {"encoding": "base64"}))["value"]
        assert prog["executable"] is True
        assert prog["owner"] == "BPFLoaderUpgradeab1e11111111111111111111111"

        ix = Instruction(program, b"preloaded", [AccountMeta(alice.pubkey(), True, False)])
        sig = await net.send(signed([ix], alice, await net.blockhash()))
        await net.confirmed(sig)
        tx = await net.rpc("getTransaction", sig, {"commitment": "confirmed",
                                                   "maxSupportedTransactionVersion": 0})
        assert tx["meta"]["err"] is None
        assert "Program log: Memo (len 9)" in tx["meta"]["logMessages"]
        assert f"Program {program} success" in tx["meta"]["logMessages"]
    finally:
        net.stop()


async def test_bad_switches_fail_at_start_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not an elf")
    net = LocalnetProcess(tmp_path / "data", "--ephemeral",
                          "--bpf-program", str(Keypair().pubkey()), str(bad))
    with pytest.raises(AssertionError, match="not an ELF"):
        await net.start()


def test_account_json_and_env_pairs(tmp_path: Path) -> None:
    key = Keypair().pubkey()
    path = account_json(tmp_path / "a.json", key, b"xyz", 7)
    read_key, account = read_account_json(path)
    assert read_key == key and bytes(account.data) == b"xyz" and account.lamports == 7
    other = Keypair().pubkey()
    assert read_account_json(path, other)[0] == other  # --account ADDRESS overrides pubkey
    (tmp_path / "broken.json").write_text("{}")
    with pytest.raises(LocalnetConfigError, match=r"broken\.json"):
        read_account_json(tmp_path / "broken.json")
    assert parse_pairs(f" {key}=/x.so, {other}=~/y.so ", "X") == (
        (str(key), Path("/x.so")), (str(other), Path("~/y.so").expanduser()))
    with pytest.raises(LocalnetConfigError, match="ADDRESS=PATH"):
        parse_pairs("nope", "ORDERFLOW_LOCALNET_PROGRAMS")
