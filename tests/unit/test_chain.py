"""In-process :class:`localnet.chain.Chain`: Solana's rules on top of LiteSVM, no RPC."""

from __future__ import annotations

import asyncio

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorType,
)

from localnet.chain import MAX_PROCESSING_AGE, MIN_HISTORY_SLOTS, Chain
from localnet.encoding import b58decode, b58encode, ui_amount_string
from localnet.programs import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    NATIVE_MINT,
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)
from localnet.txerrors import ChainError
from tests.helpers import wait_until

USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
SOL = 10**9


def pay(chain: Chain, payer: Keypair, to: Pubkey, lamports: int,
        blockhash: Hash | None = None) -> VersionedTransaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    bh = blockhash or chain.latest_blockhash()[0]
    return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], bh), [payer])


def create_ata_ix(payer: Pubkey, owner: Pubkey, mint: Pubkey, ata: Pubkey) -> Instruction:
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([1]), [
        AccountMeta(payer, True, True), AccountMeta(ata, False, True),
        AccountMeta(owner, False, False), AccountMeta(mint, False, False),
        AccountMeta(SYSTEM_PROGRAM_ID, False, False), AccountMeta(TOKEN_PROGRAM_ID, False, False),
    ])


def transfer_checked_ix(src: Pubkey, mint: Pubkey, dst: Pubkey, owner: Pubkey, amount: int,
                        decimals: int) -> Instruction:
    data = bytes([12]) + amount.to_bytes(8, "little") + bytes([decimals])
    return Instruction(TOKEN_PROGRAM_ID, data, [
        AccountMeta(src, False, True), AccountMeta(mint, False, False),
        AccountMeta(dst, False, True), AccountMeta(owner, True, False),
    ])


@pytest.fixture
def chain() -> Chain:
    return Chain(slot_ms=50)


@pytest.fixture
def funded(chain: Chain) -> Keypair:
    kp = Keypair()
    chain.faucet.airdrop(kp.pubkey(), 10 * SOL)
    return kp


def test_transfer_lands_with_balances(chain: Chain, funded: Keypair) -> None:
    dest = Keypair().pubkey()
    sig = chain.send(pay(chain, funded, dest, SOL))
    rec = chain.transaction(sig)
    assert rec is not None and rec.err is None and rec.slot == chain.slot
    assert rec.fee == 5000
    assert chain.get_balance(dest) == SOL
    assert chain.get_balance(funded.pubkey()) == 9 * SOL - 5000
    keys = [str(k) for k in rec.account_keys]
    i_payer, i_dest = keys.index(str(funded.pubkey())), keys.index(str(dest))
    assert rec.pre_balances[i_payer] - rec.post_balances[i_payer] == SOL + 5000
    assert (rec.pre_balances[i_dest], rec.post_balances[i_dest]) == (0, SOL)
    assert rec.compute_units > 0 and any("success" in line for line in rec.logs)


def test_duplicate_signature_executes_once(chain: Chain, funded: Keypair) -> None:
    dest = Keypair().pubkey()
    tx = pay(chain, funded, dest, SOL)
    count = chain.transaction_count
    assert chain.send(tx) == chain.send(tx) == tx.signatures[0]
    chain.tick()
    assert chain.send(tx) == tx.signatures[0]
    assert chain.get_balance(dest) == SOL
    assert chain.transaction_count == count + 1


def test_blockhash_valid_for_150_blocks_then_expires(chain: Chain, funded: Keypair) -> None:
    blockhash, lvbh = chain.latest_blockhash()
    assert lvbh == chain.block_height + MAX_PROCESSING_AGE
    for _ in range(MAX_PROCESSING_AGE):
        chain.tick()
    assert chain.block_height == lvbh and chain.is_blockhash_valid(blockhash)
    chain.send(pay(chain, funded, Keypair().pubkey(), SOL, blockhash))  # last valid height
    chain.tick()
    assert not chain.is_blockhash_valid(blockhash)
    late = pay(chain, funded, Keypair().pubkey(), SOL, blockhash)
    with pytest.raises(ChainError) as exc:
        chain.send(late)
    assert exc.value.err == TransactionErrorFieldless.BlockhashNotFound
    assert exc.value.err_json == "BlockhashNotFound"
    assert chain.signature_status(late.signatures[0]) is None
    assert chain.simulate(late).err_json == "BlockhashNotFound"


def test_unknown_blockhash_is_refused(chain: Chain, funded: Keypair) -> None:
    with pytest.raises(ChainError, match="Blockhash not found"):
        chain.send(pay(chain, funded, Keypair().pubkey(), 1, Hash.new_unique()))


def test_status_processed_confirmed_finalized(chain: Chain, funded: Keypair) -> None:
    sig = chain.send(pay(chain, funded, Keypair().pubkey(), SOL))
    st = chain.signature_status(sig)
    assert st is not None and (st.confirmation_status, st.confirmations) == ("processed", 0)
    chain.tick()
    st = chain.signature_status(sig)
    assert st is not None and (st.confirmation_status, st.confirmations) == ("confirmed", 1)
    for _ in range(30):
        chain.tick()
    st = chain.signature_status(sig)
    assert st is not None and (st.confirmation_status, st.confirmations) == ("confirmed", 31)
    chain.tick()
    st = chain.signature_status(sig)
    assert st is not None and (st.confirmation_status, st.confirmations) == ("finalized", None)
    assert st.to_json()["status"] == {"Ok": None}
    assert chain.signature_status(Signature.new_unique()) is None


def test_failed_transaction_lands_with_error_and_fee(chain: Chain, funded: Keypair) -> None:
    seen: list[tuple[Signature, TransactionErrorType | None, int]] = []
    chain.add_listener(lambda sig, tx, err, slot: seen.append((sig, err, slot)))
    before = chain.get_balance(funded.pubkey())
    tx = pay(chain, funded, Keypair().pubkey(), 1000 * SOL)
    sim = chain.simulate(tx)
    assert sim.err_json == {"InstructionError": [0, {"Custom": 1}]}
    assert chain.get_balance(funded.pubkey()) == before  # simulation commits nothing
    sig = chain.send(tx)
    rec = chain.transaction(sig)
    assert rec is not None and isinstance(rec.err, TransactionErrorInstructionError)
    assert rec.err_json == {"InstructionError": [0, {"Custom": 1}]}
    assert rec.fee == 5000 and chain.get_balance(funded.pubkey()) == before - 5000
    assert any("insufficient lamports" in line for line in rec.logs)
    st = chain.signature_status(sig)
    assert st is not None and st.to_json()["status"] == {"Err": rec.err_json}
    assert seen == [(sig, rec.err, chain.slot)]


def test_unfunded_payer_and_bad_signature_do_not_land(chain: Chain, funded: Keypair) -> None:
    broke = Keypair()
    with pytest.raises(ChainError) as exc:
        chain.send(pay(chain, broke, Keypair().pubkey(), 1))
    assert exc.value.err == TransactionErrorFieldless.AccountNotFound

    good = pay(chain, funded, Keypair().pubkey(), SOL)
    forged = VersionedTransaction.populate(good.message, [Keypair().sign_message(b"x")])
    before = chain.get_balance(funded.pubkey())
    with pytest.raises(ChainError) as exc:
        chain.send(forged)
    assert exc.value.err == TransactionErrorFieldless.SignatureFailure
    assert chain.get_balance(funded.pubkey()) == before
    assert chain.signature_status(forged.signatures[0]) is None


def test_token_balances_in_meta(chain: Chain) -> None:
    authority, alice, bob = Keypair(), Keypair(), Keypair()
    chain.faucet.airdrop(alice.pubkey(), SOL)
    chain.create_mint_at(USDC, 6, authority.pubkey())
    chain.create_mint_at(USDC, 6, authority.pubkey())  # idempotent
    with pytest.raises(ValueError):
        chain.create_mint_at(USDC, 9, authority.pubkey())
    sig = chain.faucet.mint_to(USDC, alice.pubkey(), 25_000_000, authority)
    rec = chain.transaction(sig)
    alice_ata, bob_ata = chain.ata(alice.pubkey(), USDC), chain.ata(bob.pubkey(), USDC)
    assert rec is not None and rec.pre_token_balances == []  # the ATA was created here
    (post,) = rec.post_token_balances
    assert (post.mint, post.owner, post.amount, post.decimals) == (
        str(USDC), str(alice.pubkey()), 25_000_000, 6)
    assert chain.token_balance(alice_ata) == 25_000_000

    ixs = [create_ata_ix(alice.pubkey(), bob.pubkey(), USDC, bob_ata),
           transfer_checked_ix(alice_ata, USDC, bob_ata, alice.pubkey(), 1_500_000, 6)]
    msg = Message.new_with_blockhash(ixs, alice.pubkey(), chain.latest_blockhash()[0])
    rec = chain.transaction(chain.send(VersionedTransaction(msg, [alice])))
    assert rec is not None and rec.err is None
    keys = [str(k) for k in rec.account_keys]
    pre = {keys[t.account_index]: t.amount for t in rec.pre_token_balances}
    post_map = {keys[t.account_index]: t.amount for t in rec.post_token_balances}
    assert pre == {str(alice_ata): 25_000_000}
    assert post_map == {str(alice_ata): 23_500_000, str(bob_ata): 1_500_000}
    js = [t.to_json() for t in rec.post_token_balances]
    assert {j["uiTokenAmount"]["uiAmountString"] for j in js} == {"23.5", "1.5"}
    assert all(j["programId"] == str(TOKEN_PROGRAM_ID) for j in js)
    assert chain.token_balance(bob_ata) == 1_500_000
    assert chain.token_balance(Keypair().pubkey()) == 0
    assert [a for a, _ in chain.tokens.by_owner(bob.pubkey(), mint=USDC)] == [bob_ata]


def test_wrap_and_unwrap_native_sol(chain: Chain, funded: Keypair) -> None:
    owner = funded.pubkey()
    wsol = chain.ata(owner, NATIVE_MINT)
    sync = Instruction(TOKEN_PROGRAM_ID, bytes([17]), [AccountMeta(wsol, False, True)])
    wrap = [create_ata_ix(owner, owner, NATIVE_MINT, wsol),
            transfer(TransferParams(from_pubkey=owner, to_pubkey=wsol, lamports=2 * SOL)), sync]
    msg = MessageV0.try_compile(owner, wrap, [], chain.latest_blockhash()[0])
    rec = chain.transaction(chain.send(VersionedTransaction(msg, [funded])))
    assert rec is not None and rec.err is None
    assert chain.token_balance(wsol) == 2 * SOL
    assert [(t.mint, t.amount, t.decimals) for t in rec.post_token_balances] == [
        (str(NATIVE_MINT), 2 * SOL, 9)]
    close = Instruction(TOKEN_PROGRAM_ID, bytes([9]), [
        AccountMeta(wsol, False, True), AccountMeta(owner, False, True),
        AccountMeta(owner, True, False)])
    before = chain.get_balance(owner)
    msg = MessageV0.try_compile(owner, [close], [], chain.latest_blockhash()[0])
    rec = chain.transaction(chain.send(VersionedTransaction(msg, [funded])))
    assert rec is not None and rec.err is None and rec.post_token_balances == []
    rent = chain.minimum_balance_for_rent_exemption(165)
    assert chain.get_balance(owner) == before + 2 * SOL + rent - 5000
    assert chain.get_account(wsol) is None


def test_airdrop_repeats_are_distinct_transactions(chain: Chain) -> None:
    who = Keypair().pubkey()
    a = chain.faucet.airdrop(who, SOL)
    b = chain.faucet.airdrop(who, SOL)
    assert a != b and chain.get_balance(who) == 2 * SOL
    with pytest.raises(ChainError, match="insufficient funds for rent"):
        chain.faucet.airdrop(Keypair().pubkey(), 1)  # lands, but with an error


def test_history_is_bounded_by_count_but_keeps_dedup_window(funded: Keypair) -> None:
    chain = Chain(history_slots=10_000, max_history=1)
    chain.faucet.airdrop(funded.pubkey(), SOL)  # slot 0
    first = chain.send(pay(chain, funded, Keypair().pubkey(), SOL // 10))  # slot 0
    chain.tick()
    second = chain.send(pay(chain, funded, Keypair().pubkey(), SOL // 10))  # slot 1
    for _ in range(MIN_HISTORY_SLOTS):
        chain.tick()
        # over max_history, but young records stay: their blockhash may still be valid
        assert chain.transaction(second) is not None
    assert chain.slot == MIN_HISTORY_SLOTS + 1
    assert chain.transaction(first) is None and chain.signature_status(first) is None
    chain.tick()
    assert chain.transaction(second) is not None  # back within max_history


def test_history_is_bounded_by_age(funded: Keypair) -> None:
    chain = Chain(history_slots=MIN_HISTORY_SLOTS)
    chain.faucet.airdrop(funded.pubkey(), SOL)
    sig = chain.send(pay(chain, funded, Keypair().pubkey(), SOL // 10))
    for _ in range(MIN_HISTORY_SLOTS):
        chain.tick()
    assert chain.transaction(sig) is not None
    chain.tick()
    assert chain.transaction(sig) is None


def test_slot_listener_and_clock_sysvar(chain: Chain) -> None:
    seen: list[tuple[int, int]] = []
    chain.add_slot_listener(lambda slot, height: seen.append((slot, height)))
    start = chain.slot
    chain.tick()
    chain.tick()
    assert seen == [(start + 1, start + 1), (start + 2, start + 2)]
    assert chain.svm.get_clock().slot == chain.slot
    assert chain.latest_blockhash("finalized")[0] == chain.genesis_hash  # clamped at genesis


def test_commitment_views(chain: Chain) -> None:
    for _ in range(40):
        chain.tick()
    assert chain.commitment_slot("confirmed") == chain.slot - 1
    assert chain.commitment_slot("finalized") == chain.slot - 32
    bh, lvbh = chain.latest_blockhash("finalized")
    assert lvbh == chain.block_height - 32 + MAX_PROCESSING_AGE and chain.is_blockhash_valid(bh)


async def test_run_clock_advances_slots() -> None:
    chain = Chain(slot_ms=10)
    task = asyncio.create_task(chain.run_clock())
    try:
        await wait_until(lambda: chain.slot >= 5, 5, "the clock to advance 5 slots",
                         interval=0.005)
    finally:
        task.cancel()
    assert chain.block_height == chain.slot
    first = chain.latest_blockhash()[0]
    chain.tick()
    assert chain.latest_blockhash()[0] != first


def test_fee_for_message_includes_priority_fee(chain: Chain, funded: Keypair) -> None:
    from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price

    ixs = [set_compute_unit_limit(10_000), set_compute_unit_price(1_000_000),
           transfer(TransferParams(from_pubkey=funded.pubkey(), to_pubkey=funded.pubkey(),
                                   lamports=1))]
    msg = MessageV0.try_compile(funded.pubkey(), ixs, [], chain.latest_blockhash()[0])
    assert chain.fee_for_message(msg) == 5000 + 10_000
    stale = MessageV0.try_compile(funded.pubkey(), ixs, [], Hash.new_unique())
    assert chain.fee_for_message(stale) is None


def test_base58_and_ui_amounts() -> None:
    for raw in (b"", b"\0\0\x01", bytes(range(40))):
        assert b58decode(b58encode(raw)) == raw
    key = Keypair().pubkey()
    assert b58encode(bytes(key)) == str(key)
    assert [ui_amount_string(a, d) for a, d in ((0, 6), (1_500_000, 6), (1, 9), (7, 0))] == [
        "0", "1.5", "0.000000001", "7"]


def test_v0_with_address_lookup_table(chain: Chain, funded: Keypair) -> None:
    from solders.address_lookup_table_account import AddressLookupTableAccount
    from solders.system_program import create_lookup_table, extend_lookup_table

    chain.tick()
    payer = funded.pubkey()
    create, table = create_lookup_table(
        {"authority_address": payer, "payer_address": payer, "recent_slot": chain.slot - 1})
    dests = [Keypair().pubkey() for _ in range(3)]
    extend = extend_lookup_table({"payer_address": payer, "lookup_table_address": table,
                                  "authority_address": payer, "new_addresses": dests})
    msg = Message.new_with_blockhash([create, extend], payer, chain.latest_blockhash()[0])
    rec = chain.transaction(chain.send(VersionedTransaction(msg, [funded])))
    assert rec is not None and rec.err is None, rec and rec.logs
    chain.tick()  # extended addresses are usable from the next slot

    alt = AddressLookupTableAccount(table, dests)
    ixs = [transfer(TransferParams(from_pubkey=payer, to_pubkey=d, lamports=SOL)) for d in dests]
    msg0 = MessageV0.try_compile(payer, ixs, [alt], chain.latest_blockhash()[0])
    assert msg0.address_table_lookups
    rec = chain.transaction(chain.send(VersionedTransaction(msg0, [funded])))
    assert rec is not None and rec.err is None
    assert sorted(map(str, rec.loaded_writable)) == sorted(map(str, dests))
    keys = rec.account_keys
    for d in dests:
        i = keys.index(d)
        assert (rec.pre_balances[i], rec.post_balances[i]) == (0, SOL)
    got = chain.get_transaction(rec.signature)
    assert got is not None
    assert got["meta"]["loadedAddresses"]["writable"] == [str(d) for d in rec.loaded_writable]
