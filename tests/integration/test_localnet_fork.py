"""``orderflow localnet --fork-url``: a second localnet forks the first (both real processes).
The fork fetches accounts on first access -- one created on the origin *after* the fork
started included --, runs an upgradeable program deployed only on the origin (fetched with
its ProgramData), executes a transfer of an origin wallet's SOL, and keeps what it fetched:
the origin does not see the fork's transactions, and the fork's state survives a restart."""

from __future__ import annotations

from pathlib import Path

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair

from tests.integration.test_localnet_preload import memo_elf
from tests.localnet_proc import LocalnetProcess, signed, transfer_tx


async def test_fork_fetches_lazily_and_executes(tmp_path: Path) -> None:
    alice, dave, erin = Keypair(), Keypair(), Keypair()
    program = Keypair().pubkey()
    so = tmp_path / "memo.so"
    so.write_bytes(memo_elf())
    origin = LocalnetProcess(tmp_path / "origin", "--ephemeral", "--fund", str(alice.pubkey()),
                             "--bpf-program", str(program), str(so))
    await origin.start()
    fork = LocalnetProcess(tmp_path / "fork", "--fork-url", origin.url)
    try:
        await fork.start()
        # created on the origin after the fork started: found on first access
        sig = await origin.send(transfer_tx(alice, dave.pubkey(), 3_000_000,
                                            await origin.blockhash()))
        await origin.confirmed(sig)
        assert await fork.balance(dave.pubkey()) == 3_000_000
        alice_on_origin = await origin.balance(alice.pubkey())
        assert await fork.balance(alice.pubkey()) == alice_on_origin

        # a transfer of the origin's SOL, executed on the fork only
        sig = await fork.send(transfer_tx(alice, erin.pubkey(), 5_000_000, await fork.blockhash()))
        await fork.confirmed(sig)
        assert await fork.balance(erin.pubkey()) == 5_000_000
        assert await origin.balance(erin.pubkey()) == 0
        assert (await origin.rpc("getSignatureStatuses", [sig]))["value"] == [None]
        assert await origin.balance(alice.pubkey()) == alice_on_origin

        # the origin's upgradeable program, with its ProgramData, runs on the fork
        ix = Instruction(program, b"forked", [AccountMeta(alice.pubkey(), True, False)])
        sig = await fork.send(signed([ix], alice, await fork.blockhash()))
        await fork.confirmed(sig)
        tx = await fork.rpc("getTransaction", sig, {"commitment": "confirmed"})
        assert "Program log: Memo (len 6)" in tx["meta"]["logMessages"]

        # fetched state is the fork's own: kept across a restart, not fetched again
        fork.stop()
        await fork.start()
        assert await fork.balance(erin.pubkey()) == 5_000_000
        assert await fork.balance(alice.pubkey()) < alice_on_origin  # the fork's, not origin's
    finally:
        fork.stop()
        origin.stop()
