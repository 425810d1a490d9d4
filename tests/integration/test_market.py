"""The local market on an in-process :class:`Chain`, through its HTTP API (aiohttp test
server on loopback) and directly: quotes per venue, real swaps signed by the user and
landed on the chain, SOL wrap/unwrap, slippage refusal, pending/settle/expiry bookkeeping
(vault balances == books) and drift.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from localnet.admin import auth_headers
from localnet.chain import MAX_PROCESSING_AGE, Chain
from localnet.market import (
    METEORA_DLMM,
    RAYDIUM_CPMM,
    Market,
    build_market_app,
    cpmm,
    dlmm,
)
from localnet.market.book import CpmmBook, DlmmBook, Fill, InsufficientVault
from localnet.market.tokens import NATIVE_MINT, SOL, USDC, USDT
from localnet.market.txbuilder import ata
from localnet.records import TxRecord

SOL_MINT, USDC_MINT, USDT_MINT = str(SOL.mint), str(USDC.mint), str(USDT.mint)
ONE_SOL = 10**9
ADMIN_TOKEN = "market-test-token"
ADMIN = auth_headers(ADMIN_TOKEN)  # the faucet needs it


@pytest.fixture
def chain() -> Chain:
    return Chain(slot_ms=50)


@pytest.fixture
def market(chain: Chain) -> Market:
    return Market(chain, seed=11, drift_bps=0)


@pytest.fixture
async def client(market: Market) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_market_app(market, admin_token=ADMIN_TOKEN))) as c:
        yield c


@pytest.fixture
async def user(client: TestClient[Any, Any], chain: Chain) -> Keypair:
    kp = Keypair()
    resp = await client.post("/swap/v1/faucet", json={"owner": str(kp.pubkey())}, headers=ADMIN)
    doc = await resp.json()
    assert resp.status == 200, doc
    assert len(doc["signatures"]) == 3
    assert chain.get_balance(kp.pubkey()) == 100 * ONE_SOL
    assert chain.token_balance(ata(kp.pubkey(), USDC.mint)) == 100_000 * 10**6
    return kp


async def get_quote(
    client: TestClient[Any, Any],
    input_mint: str,
    output_mint: str,
    amount: int,
    dex: str | None = None,
    slippage_bps: int = 50,
) -> dict[str, Any]:
    params = {
        "inputMint": input_mint,
        "outputMint": output_mint,
        "amount": str(amount),
        "slippageBps": str(slippage_bps),
        "swapMode": "ExactIn",
    }
    if dex is not None:
        params["dexes"] = dex
    resp = await client.get("/swap/v1/quote", params=params)
    doc: dict[str, Any] = await resp.json()
    assert resp.status == 200, doc
    return doc


async def get_swap(
    client: TestClient[Any, Any], quote: dict[str, Any], user: Keypair, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {
        "quoteResponse": quote,
        "userPublicKey": str(user.pubkey()),
        "wrapAndUnwrapSol": True,
        **extra,
    }
    resp = await client.post("/swap/v1/swap", json=body)
    return resp.status, await resp.json()


def user_signed(swap: dict[str, Any], user: Keypair) -> VersionedTransaction:
    """What a wallet does: fill the fee payer's empty signature slot."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(swap["swapTransaction"]))
    msg = tx.message
    assert msg.account_keys[0] == user.pubkey()
    assert tx.signatures[0] == Signature.default()  # left for the user
    sigs = list(tx.signatures)
    sigs[0] = user.sign_message(to_bytes_versioned(msg))
    return VersionedTransaction.populate(msg, sigs)


def land(chain: Chain, tx: VersionedTransaction) -> TxRecord:
    sig = chain.send(tx)
    record = chain.transaction(sig)
    assert record is not None
    assert record.err is None, (record.err, record.logs)
    return record


def pool_of(market: Market, quote: dict[str, Any]) -> Any:
    key = quote["routePlan"][0]["swapInfo"]["ammKey"]
    return next(p for p in market.pools if str(p.amm_key) == key)


def assert_books_match_vaults(market: Market, chain: Chain) -> None:
    assert market.reconcile() == []
    for pool in market.pools:
        if not pool.book.pending():
            assert pool.book.current_totals() == (
                chain.token_balance(pool.vault_x),
                chain.token_balance(pool.vault_y),
            )


# ---------------------------------------------------------------------------------- quotes


async def test_quote_each_venue_in_jupiter_shape(
    client: TestClient[Any, Any], market: Market
) -> None:
    by_dex = {}
    for dex in (RAYDIUM_CPMM, METEORA_DLMM):
        q = await get_quote(client, SOL_MINT, USDC_MINT, ONE_SOL, dex)
        info = q["routePlan"][0]["swapInfo"]
        assert info["label"] == dex
        assert q["routePlan"][0]["percent"] == 100
        assert set(q) >= {
            "inputMint",
            "inAmount",
            "outputMint",
            "outAmount",
            "otherAmountThreshold",
            "swapMode",
            "slippageBps",
            "priceImpactPct",
            "routePlan",
            "contextSlot",
            "timeTaken",
        }
        assert set(info) == {
            "ammKey",
            "label",
            "inputMint",
            "outputMint",
            "inAmount",
            "outAmount",
            "feeAmount",
            "feeMint",
        }
        assert all(
            isinstance(q[k], str)
            for k in ("inAmount", "outAmount", "otherAmountThreshold", "priceImpactPct")
        )
        out = int(q["outAmount"])
        assert 140 * 10**6 < out < 150 * 10**6  # ~150 USDC less fees
        assert int(q["otherAmountThreshold"]) == out * 9_950 // 10_000
        assert info["feeMint"] == SOL_MINT
        by_dex[dex] = q
    # The CPMM fee is exactly ceil(1e9 * 2500 / 1e6) = 2_500_000 lamports.
    assert by_dex[RAYDIUM_CPMM]["routePlan"][0]["swapInfo"]["feeAmount"] == "2500000"
    # Without a filter the market quotes the better of the two.
    best = await get_quote(client, SOL_MINT, USDC_MINT, ONE_SOL)
    assert int(best["outAmount"]) == max(int(q["outAmount"]) for q in by_dex.values())
    # A quote is exactly what the venue math gives on the published pool state.
    pools = {p["ammKey"]: p for p in market.pools_json()["pools"]}
    cp = pools[by_dex[RAYDIUM_CPMM]["routePlan"][0]["swapInfo"]["ammKey"]]
    state = cpmm.CpmmState(int(cp["reserveX"]), int(cp["reserveY"]), cp["cpmm"]["tradeFeeRate"])
    assert (
        str(cpmm.quote_exact_in(state, True, ONE_SOL).amount_out)
        == (by_dex[RAYDIUM_CPMM]["outAmount"])
    )
    dl = pools[by_dex[METEORA_DLMM]["routePlan"][0]["swapInfo"]["ammKey"]]["dlmm"]
    dstate = dlmm.DlmmState(
        dl["binStep"],
        dl["activeId"],
        {b["binId"]: dlmm.Bin(int(b["amountX"]), int(b["amountY"])) for b in dl["bins"]},
        dlmm.FeeParams(
            dl["baseFactor"],
            dl["filterPeriod"],
            dl["decayPeriod"],
            dl["reductionFactor"],
            dl["variableFeeControl"],
            dl["maxVolatilityAccumulator"],
            dl["protocolShare"],
            dl["baseFeePowerFactor"],
        ),
        dlmm.VolatilityState(
            dl["volatilityAccumulator"],
            dl["volatilityReference"],
            dl["indexReference"],
            dl["lastUpdateTimestamp"],
        ),
    )
    assert (
        str(dlmm.quote_exact_in(dstate, True, ONE_SOL, market.now()).amount_out)
        == (by_dex[METEORA_DLMM]["outAmount"])
    )


async def test_each_venue_wins_somewhere(client: TestClient[Any, Any]) -> None:
    winners = set()
    for a, b, amount in (
        (SOL_MINT, USDC_MINT, ONE_SOL),
        (USDC_MINT, SOL_MINT, 150 * 10**6),
        (USDC_MINT, USDT_MINT, 10**9),
        (USDT_MINT, USDC_MINT, 10**9),
    ):
        winners.add((await get_quote(client, a, b, amount))["routePlan"][0]["swapInfo"]["label"])
    assert winners == {RAYDIUM_CPMM, METEORA_DLMM}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"inputMint": "So11111111111111111111111111111111111111111"}, "TOKEN_NOT_TRADABLE"),
        ({"dexes": "Orca"}, "COULD_NOT_FIND_ANY_ROUTE"),
        ({"amount": "1"}, "COULD_NOT_FIND_ANY_ROUTE"),  # pays 0 after the fee
        # more than the DLMM's bins hold (a CPMM always pays something)
        ({"amount": str(10**18), "dexes": METEORA_DLMM}, "COULD_NOT_FIND_ANY_ROUTE"),
        ({"outputMint": SOL_MINT}, "CIRCULAR_ARBITRAGE_IS_DISABLED"),
        ({"amount": "1.5"}, "INVALID_REQUEST"),
    ],
)
async def test_quote_errors(
    client: TestClient[Any, Any], params: dict[str, str], code: str
) -> None:
    query = {"inputMint": SOL_MINT, "outputMint": USDC_MINT, "amount": str(ONE_SOL), **params}
    resp = await client.get("/swap/v1/quote", params=query)
    assert resp.status == 400
    doc = await resp.json()
    assert doc["errorCode"] == code and doc["error"]


# ---------------------------------------------------------------------------------- swaps


@pytest.mark.parametrize("dex", [RAYDIUM_CPMM, METEORA_DLMM])
async def test_sol_in_wraps_and_settles_exactly(
    client: TestClient[Any, Any], market: Market, chain: Chain, user: Keypair, dex: str
) -> None:
    me = user.pubkey()
    q = await get_quote(client, SOL_MINT, USDC_MINT, 2 * ONE_SOL, dex)
    pool = pool_of(market, q)
    in_amount, out_amount = int(q["inAmount"]), int(q["outAmount"])
    lamports, usdc = chain.get_balance(me), chain.token_balance(ata(me, USDC.mint))
    vault_sol, vault_usdc = chain.token_balance(pool.vault_x), chain.token_balance(pool.vault_y)

    status, swap = await get_swap(client, q, user)
    assert status == 200, swap
    assert swap["lastValidBlockHeight"] == chain.latest_blockhash()[1]
    assert pool.book.pending() and market.reconcile() == []  # reserved, not yet on chain
    record = land(chain, user_signed(swap, user))

    assert record.fee == 2 * 5_000  # user + maker signatures, paid by the user
    assert chain.get_balance(me) == lamports - in_amount - record.fee  # wSOL rent came back
    assert chain.get_account(ata(me, NATIVE_MINT)) is None  # unwrapped: account closed
    assert chain.token_balance(ata(me, USDC.mint)) == usdc + out_amount
    assert chain.token_balance(pool.vault_x) == vault_sol + in_amount
    assert chain.token_balance(pool.vault_y) == vault_usdc - out_amount
    assert not pool.book.pending()
    assert_books_match_vaults(market, chain)


@pytest.mark.parametrize("dex", [RAYDIUM_CPMM, METEORA_DLMM])
async def test_sol_out_unwraps(
    client: TestClient[Any, Any], market: Market, chain: Chain, user: Keypair, dex: str
) -> None:
    me = user.pubkey()
    q = await get_quote(client, USDT_MINT, SOL_MINT, 300 * 10**6, dex)
    pool = pool_of(market, q)
    in_amount, out_amount = int(q["inAmount"]), int(q["outAmount"])
    lamports, usdt = chain.get_balance(me), chain.token_balance(ata(me, USDT.mint))
    status, swap = await get_swap(client, q, user)
    assert status == 200, swap
    record = land(chain, user_signed(swap, user))
    assert chain.get_balance(me) == lamports + out_amount - record.fee
    assert chain.get_account(ata(me, NATIVE_MINT)) is None
    assert chain.token_balance(ata(me, USDT.mint)) == usdt - in_amount
    assert chain.token_balance(pool.vault_x) > 0
    assert_books_match_vaults(market, chain)


async def test_token_to_token_creates_output_account(
    client: TestClient[Any, Any], market: Market, chain: Chain
) -> None:
    payer = Keypair()
    # SOL for fees and USDC only: the USDT account does not exist yet.
    await client.post(
        "/swap/v1/faucet",
        json={"owner": str(payer.pubkey()), "mint": SOL_MINT, "amount": str(ONE_SOL)},
        headers=ADMIN,
    )
    await client.post(
        "/swap/v1/faucet",
        json={"owner": str(payer.pubkey()), "mint": USDC_MINT, "amount": str(5_000 * 10**6)},
        headers=ADMIN,
    )
    assert chain.get_account(ata(payer.pubkey(), USDT.mint)) is None
    for dex in (RAYDIUM_CPMM, METEORA_DLMM):
        q = await get_quote(client, USDC_MINT, USDT_MINT, 1_000 * 10**6, dex)
        before = chain.token_balance(ata(payer.pubkey(), USDT.mint))
        status, swap = await get_swap(client, q, payer)
        assert status == 200, swap
        land(chain, user_signed(swap, payer))
        assert chain.token_balance(ata(payer.pubkey(), USDT.mint)) == before + int(q["outAmount"])
    assert chain.token_balance(ata(payer.pubkey(), USDC.mint)) == 3_000 * 10**6
    assert_books_match_vaults(market, chain)


async def test_slippage_refused_when_book_moved(
    client: TestClient[Any, Any], market: Market, chain: Chain, user: Keypair
) -> None:
    stale = await get_quote(client, SOL_MINT, USDC_MINT, 10 * ONE_SOL, RAYDIUM_CPMM, slippage_bps=0)
    tolerant = {**stale, "otherAmountThreshold": str(int(stale["outAmount"]) * 98 // 100)}
    # Someone else sells 30 SOL into the same pool first (~1.2% price move; not even landed
    # yet: the book already holds the reservation).
    other = await get_quote(client, SOL_MINT, USDC_MINT, 30 * ONE_SOL, RAYDIUM_CPMM)
    status, swap = await get_swap(client, other, user)
    assert status == 200
    pool = pool_of(market, stale)
    book_before = pool.book.state

    status, doc = await get_swap(client, stale, user)
    assert status == 422
    assert doc == {"error": "Slippage tolerance exceeded", "errorCode": "6001"}
    assert pool.book.state == book_before  # nothing reserved for the refused swap

    # With 2% tolerance it goes through, paying what the book gives now: less than quoted.
    status, swap2 = await get_swap(client, tolerant, user)
    assert status == 200
    paid = pool.book.pending()[-1].amount_out
    assert int(tolerant["otherAmountThreshold"]) <= paid < int(stale["outAmount"])
    usdc = chain.token_balance(ata(user.pubkey(), USDC.mint))
    land(chain, user_signed(swap, user))
    land(chain, user_signed(swap2, user))
    assert chain.token_balance(ata(user.pubkey(), USDC.mint)) == (
        usdc + int(other["outAmount"]) + paid
    )
    assert_books_match_vaults(market, chain)


async def test_swap_request_errors(client: TestClient[Any, Any], user: Keypair) -> None:
    q = await get_quote(client, SOL_MINT, USDC_MINT, ONE_SOL)
    bad_amm = {
        **q,
        "routePlan": [
            {
                **q["routePlan"][0],
                "swapInfo": {**q["routePlan"][0]["swapInfo"], "ammKey": str(Keypair().pubkey())},
            }
        ],
    }
    status, doc = await get_swap(client, bad_amm, user)
    assert (status, doc["errorCode"]) == (400, "COULD_NOT_FIND_ANY_ROUTE")
    status, doc = await get_swap(client, {"inputMint": SOL_MINT}, user)
    assert (status, doc["errorCode"]) == (400, "INVALID_REQUEST")
    resp = await client.post("/swap/v1/swap", json={"quoteResponse": q, "userPublicKey": "x"})
    assert resp.status == 400


# ---------------------------------------------------------------------------------- books


@pytest.mark.parametrize("dex", [RAYDIUM_CPMM, METEORA_DLMM])
async def test_expired_swap_is_released_exactly(
    client: TestClient[Any, Any], market: Market, chain: Chain, user: Keypair, dex: str
) -> None:
    q = await get_quote(client, USDC_MINT, SOL_MINT, 5_000 * 10**6, dex)
    pool = pool_of(market, q)
    before = pool.book.state
    status, _ = await get_swap(client, q, user)
    assert status == 200
    assert pool.book.state != before
    # The reservation is visible: the same quote now pays less.
    assert int(
        (await get_quote(client, USDC_MINT, SOL_MINT, 5_000 * 10**6, dex))["outAmount"]
    ) < int(q["outAmount"])
    for _ in range(MAX_PROCESSING_AGE):
        chain.tick()
    assert pool.book.pending()  # still valid at lastValidBlockHeight
    chain.tick()
    assert not pool.book.pending() and market.pending_count() == 0
    assert pool.book.state == before
    assert (await get_quote(client, USDC_MINT, SOL_MINT, 5_000 * 10**6, dex))["outAmount"] == (
        q["outAmount"]
    )
    assert_books_match_vaults(market, chain)


async def test_failed_transaction_releases(
    client: TestClient[Any, Any], market: Market, chain: Chain
) -> None:
    broke = Keypair()  # has SOL for the fee but no USDC to pay with
    await client.post(
        "/swap/v1/faucet", json={"owner": str(broke.pubkey()), "mint": SOL_MINT}, headers=ADMIN
    )
    q = await get_quote(client, USDC_MINT, SOL_MINT, 100 * 10**6, METEORA_DLMM)
    pool = pool_of(market, q)
    before = pool.book.state
    status, swap = await get_swap(client, q, broke)
    assert status == 200
    record = chain.transaction(chain.send(user_signed(swap, broke)))
    assert record is not None and record.err is not None  # landed, failed, fee charged
    assert pool.book.state == before and not pool.book.pending()
    assert_books_match_vaults(market, chain)


@pytest.mark.parametrize("dex", [RAYDIUM_CPMM, METEORA_DLMM])
async def test_out_of_order_landing_and_expiry_keep_vaults_equal_to_books(
    client: TestClient[Any, Any], market: Market, chain: Chain, user: Keypair, dex: str
) -> None:
    swaps = []
    for mint_in, mint_out, amount in (
        (SOL_MINT, USDC_MINT, 30 * ONE_SOL),
        (USDC_MINT, SOL_MINT, 9_000 * 10**6),
        (SOL_MINT, USDC_MINT, 12 * ONE_SOL),
        (USDC_MINT, SOL_MINT, 700 * 10**6),
    ):
        q = await get_quote(client, mint_in, mint_out, amount, dex)
        status, swap = await get_swap(client, q, user)
        assert status == 200, swap
        swaps.append(swap)
    pool = pool_of(market, q)
    assert len(pool.book.pending()) == 4
    # Land the last and the second, never send the first and the third.
    land(chain, user_signed(swaps[3], user))
    land(chain, user_signed(swaps[1], user))
    assert market.reconcile() == []
    for _ in range(MAX_PROCESSING_AGE + 1):
        chain.tick()
    assert not pool.book.pending()
    assert_books_match_vaults(market, chain)
    # The pool keeps trading normally afterwards.
    q = await get_quote(client, SOL_MINT, USDC_MINT, ONE_SOL, dex)
    status, swap = await get_swap(client, q, user)
    land(chain, user_signed(swap, user))
    assert_books_match_vaults(market, chain)


async def test_pools_listing(client: TestClient[Any, Any], market: Market, chain: Chain) -> None:
    resp = await client.get("/swap/v1/pools")
    doc = await resp.json()
    assert resp.status == 200
    pools = doc["pools"]
    assert {(p["label"], p["symbolX"], p["symbolY"]) for p in pools} == {
        (label, x, y)
        for label in (RAYDIUM_CPMM, METEORA_DLMM)
        for x, y in (("SOL", "USDC"), ("SOL", "USDT"), ("USDC", "USDT"))
    }
    for p in pools:
        assert chain.token_balance(Pubkey.from_string(p["vaultX"])) == int(p["reserveX"])
        assert chain.token_balance(Pubkey.from_string(p["vaultY"])) == int(p["reserveY"])
        if p["label"] == METEORA_DLMM:
            d = p["dlmm"]
            assert sum(int(b["amountX"]) for b in d["bins"]) + int(d["feeX"]) == int(p["reserveX"])
            assert d["activeId"] in {b["binId"] for b in d["bins"]}
        else:
            assert p["cpmm"]["tradeFeeRate"] in (100, 2_500)


# ---------------------------------------------------------------------------------- drift


async def test_drift_trades_on_chain_and_moves_prices(chain: Chain) -> None:
    market = Market(chain, seed=3, drift_bps=40)
    start = {p.name: p.mid_price() for p in market.pools}
    best = []
    for _ in range(40):
        sigs = market.drift_step()
        assert sigs
        for sig in sigs:  # real, successful transactions by the noise trader
            record = chain.transaction(sig)
            assert record is not None and record.err is None
            assert record.tx.message.account_keys[0] == market.noise_trader.pubkey()
        chain.tick()
        pool, _ = market.best_fill(SOL.mint, USDC.mint, 10 * ONE_SOL)
        best.append(pool.label)
        assert market.reconcile() == []
    moved = {p.name for p in market.pools if p.mid_price() != start[p.name]}
    assert moved == set(start)
    assert set(best) == {RAYDIUM_CPMM, METEORA_DLMM}  # the winning venue changes
    for pool in market.pools:  # stayed within a sane band of where it started
        assert abs(float(pool.mid_price() / start[pool.name]) - 1) < 0.2
    assert_books_match_vaults(market, chain)


async def test_same_seed_same_market(chain: Chain) -> None:
    a = Market(Chain(slot_ms=50), seed=5, drift_bps=30)
    b = Market(Chain(slot_ms=50), seed=5, drift_bps=30)
    assert [str(p.amm_key) for p in a.pools] == [str(p.amm_key) for p in b.pools]
    a.drift_step()
    b.drift_step()
    assert [p.mid_price() for p in a.pools] == [p.mid_price() for p in b.pools]


# ---------------------------------------------------------------------------------- book model


def _small_dlmm() -> dlmm.DlmmState:
    bins = {i: dlmm.Bin(0 if i < 0 else 10**9, 0 if i > 0 else 10**9) for i in range(-8, 9)}
    return dlmm.DlmmState(
        10,
        0,
        bins,
        dlmm.FeeParams(variable_fee_control=40_000),
        dlmm.VolatilityState(index_reference=0),
    )


_ops = st.lists(
    st.tuples(
        st.sampled_from(["issue", "issue", "land", "expire"]),
        st.booleans(),
        st.integers(1, 3 * 10**9),
        st.integers(0, 50),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops)
def test_book_totals_always_equal_base_plus_landed_swaps(
    ops: list[tuple[str, bool, int, int]],
) -> None:
    """Whatever lands, expires or fails, in any order: settled totals (what the vaults hold)
    are the start plus the landed swaps' fixed amounts, and the book never goes negative."""
    books: list[CpmmBook | DlmmBook] = [
        CpmmBook(cpmm.CpmmState(10**10, 2 * 10**10, 2_500)),
        DlmmBook(_small_dlmm()),
    ]
    for book in books:
        expected = list(book.current_totals())
        alive: list[tuple[bytes, Fill[Any]]] = []
        for n, (op, x_to_y, amount, pick) in enumerate(ops):
            if op == "issue":
                try:
                    fill: Fill[Any] = book.fill(x_to_y, amount, 1_000 + n, 0)
                except (cpmm.CpmmError, dlmm.DlmmError, InsufficientVault):
                    continue
                key = n.to_bytes(8, "little")
                book.commit(fill, key, 0)
                alive.append((key, fill))
            elif alive:
                key, fill = alive.pop(pick % len(alive))
                if op == "land":
                    assert book.settle(key)
                    i_in, i_out = (0, 1) if fill.x_to_y else (1, 0)
                    expected[i_in] += fill.amount_in
                    expected[i_out] -= fill.amount_out
                else:
                    assert book.release(key)
            assert list(book.settled_totals()) == expected
            state = book.state
            if isinstance(state, dlmm.DlmmState):
                assert all(b.amount_x >= 0 and b.amount_y >= 0 for b in state.bins.values())
                assert state.fee_x >= 0 and state.fee_y >= 0
            else:
                assert state.reserve_a > 0 and state.reserve_b > 0
        for key, fill in alive:
            book.settle(key)
            i_in, i_out = (0, 1) if fill.x_to_y else (1, 0)
            expected[i_in] += fill.amount_in
            expected[i_out] -= fill.amount_out
        assert list(book.current_totals()) == expected == list(book.settled_totals())
        assert not book.pending()
