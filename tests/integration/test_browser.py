"""The page in a real browser against the real system.

Debian's chromium (``/usr/bin/chromium``, ``executable_path``; never a browser download)
driven by Playwright, against ``orderflow up`` as a child process on the session's real
Tansu broker and PostgreSQL, with its localnet and local market. One stack and one browser
for the module; each step saves a screenshot under the test's tmp dir (the path is printed).
The tests run in file order: each continues from what the one before did.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.wallet import write_keypair
from tests.helpers import free_port
from tests.unit.test_ingress_openapi import validate_response

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("ORDERFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

TERMINAL = {"confirmed", "failed", "expired", "cancelled"}
TIMEOUT_MS = 30_000


@dataclass
class System:
    url: str
    rpc: str
    wallet: str
    shots: Path
    env: dict[str, str]
    data: Path


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def system(broker: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[System]:
    from solders.keypair import Keypair

    data = tmp_path_factory.mktemp("browser-up")
    shots = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {shots}")
    wallet = Keypair()
    write_keypair(data / "wallet.json", wallet)
    http, rpc_port, venue_port = free_port(), free_port(span=2), free_port()
    env = {**os.environ,
           "ORDERFLOW_HTTP_PORT": str(http), "ORDERFLOW_KAFKA_BOOTSTRAP": broker,
           "ORDERFLOW_DATABASE_URL": database_url,
           "ORDERFLOW_WALLET": str(data / "wallet.json"), "ORDERFLOW_DATA_DIR": str(data),
           "ORDERFLOW_LOCALNET_RPC_PORT": str(rpc_port),
           "ORDERFLOW_LOCALNET_VENUE_PORT": str(venue_port),
           "ORDERFLOW_LOCALNET_SLOT_MS": "100", "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
           "ORDERFLOW_CONFIRM_POLL_MS": "50", "ORDERFLOW_SESSION_TIMEOUT_S": "2",
           "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
           "ORDERFLOW_APP_ID": f"orderflow-ui-{uuid.uuid4().hex[:6]}"}
    log_path = data / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "up"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError("orderflow up exited:\n" + log_path.read_text()[-4000:])
        return _http("GET", f"{url}/healthz")[0] == 200

    try:
        _wait(healthy, 120, "orderflow up to report healthy")
        env["ORDERFLOW_SOLANA_RPC_URL"] = f"http://127.0.0.1:{rpc_port}"
        env["ORDERFLOW_VENUE_URL"] = f"http://127.0.0.1:{venue_port}/swap/v1"  # as up does
        yield System(url, f"http://127.0.0.1:{rpc_port}", str(wallet.pubkey()), shots, env,
                     data)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


@pytest.fixture(scope="module")
def page(system: System) -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(system.url)
        pg.wait_for_selector("#conn[data-state=live]")
        yield pg
        assert errors == [], errors  # no uncaught script error on any step
        browser.close()


def shot(page: Any, system: System, name: str) -> None:
    page.screenshot(path=str(system.shots / f"{name}.png"), full_page=True)


def order_of(system: System, order_id: str) -> dict[str, Any]:
    status, doc = _http("GET", f"{system.url}/api/orders/{order_id}")
    return dict(doc) if status == 200 else {}


def submit(system: System, body: dict[str, Any]) -> str:
    status, doc = _http("POST", f"{system.url}/api/orders/execute", body)
    assert status == 202, doc
    return str(doc["orderId"])


def wait_terminal(system: System, order_id: str) -> dict[str, Any]:
    ended: dict[str, Any] = _wait(
        lambda: (o := order_of(system, order_id)) and o["status"] in TERMINAL and o,
        90, f"order {order_id} to end")
    return ended


def venue_rows(page: Any) -> dict[str, str]:
    rows = page.locator("#venue-rows tr").all()
    return {r.get_attribute("data-venue"): r.locator("td").first.inner_text() for r in rows}


def test_typing_an_amount_quotes_both_venues_live(page: Any, system: System) -> None:
    submit_button = page.locator("#submit")
    assert page.locator("#amount").get_attribute("placeholder") == "0.00"
    assert submit_button.is_disabled() and submit_button.inner_text() == "Enter an amount"
    page.wait_for_function("document.querySelector('#bal-in').textContent.includes('SOL')")
    page.locator("#amount").press_sequentially("1", delay=30)
    page.wait_for_function("document.querySelectorAll('#venue-rows tr').length === 2")
    first = venue_rows(page)
    assert set(first) == {"raydium", "meteora"}
    page.locator("#amount").press_sequentially("5", delay=30)  # 15 SOL now
    old = json.dumps(list(first.values()))
    page.wait_for_function(f"""() => {{
        const t = [...document.querySelectorAll('#venue-rows tr td:first-of-type')];
        return t.length === 2 && !t.some((td) => {old}.includes(td.textContent));
    }}""")
    second = venue_rows(page)
    for venue in ("raydium", "meteora"):  # both quotes moved with the amount, about 15x
        ratio = float(second[venue].split()[0].replace(",", "")) / float(
            first[venue].split()[0].replace(",", ""))
        assert 14 < ratio < 15.01, (venue, first, second)
    verdict = page.locator("#verdict").inner_text()
    assert "wins by" in verdict or "Split" in verdict, verdict
    facts = page.locator("#quote-facts").inner_text()
    for label in ("Rate", "Price impact", "Minimum received", "Venue fee", "Network fee",
                  "0.000005 SOL", "Priority fee", "Route"):
        assert label in facts, facts
    assert "1 SOL = " in page.locator("#rate").inner_text()
    shot(page, system, "01-quote")
    page.locator("#rate").click()
    assert "1 USDC = " in page.locator("#rate").inner_text()  # the rate both ways
    assert submit_button.is_enabled() and submit_button.inner_text() == "Swap"
    # Beyond the engine's price-impact limit the page refuses, naming why.
    page.locator("#amount").fill("5000")
    page.wait_for_selector("#warning.refusal")
    assert "price_impact_too_high" in page.locator("#warning").inner_text()
    assert submit_button.is_disabled()
    shot(page, system, "02-refused")


def test_swap_follows_the_timeline_to_confirmed(page: Any, system: System) -> None:
    page.locator("#amount").fill("0.5")
    page.wait_for_function("document.querySelector('#submit').textContent === 'Swap' "
                           "&& !document.querySelector('#submit').disabled")
    page.locator("#submit").click()
    page.locator("#form-msg a").click()
    page.wait_for_selector(".timeline [data-status=confirmed].reached")
    steps = page.locator(".timeline .step.reached")
    assert [s.get_attribute("data-status") for s in steps.all()] == [
        "pending", "routing", "building", "submitted", "confirmed"]
    assert all(":" in s.locator("time").inner_text() for s in steps.all())
    order_id = page.url.rsplit("/", 1)[1]
    order = wait_terminal(system, order_id)
    assert order["status"] == "confirmed", order
    page.wait_for_function("document.querySelector('.signature') !== null")
    assert page.locator(".signature").first.inner_text() == order["txHash"]  # in full
    assert "raydium" in page.locator("#order-body").inner_text()
    assert "meteora" in page.locator("#order-body").inner_text()  # both quotes
    assert "Received vs expected" in page.locator("#order-body").inner_text()
    shot(page, system, "03-order")


def test_transaction_page_shows_the_real_balance_changes(page: Any, system: System) -> None:
    order_id = page.url.rsplit("/", 1)[1]
    order = order_of(system, order_id)
    page.get_by_role("link", name="Inspect transaction").click()
    page.wait_for_selector("#token-changes")
    _, rpc = _http("POST", system.rpc, {
        "jsonrpc": "2.0", "id": 1, "method": "getTransaction",
        "params": [order["txHash"], {"encoding": "jsonParsed", "commitment": "confirmed",
                                     "maxSupportedTransactionVersion": 0}]})
    meta = rpc["result"]["meta"]

    def held(rows: list[dict[str, Any]]) -> int:
        return sum(int(b["uiTokenAmount"]["amount"]) for b in rows
                   if b["owner"] == system.wallet and b["mint"] == order["tokenOut"]["mint"])

    received = held(meta["postTokenBalances"]) - held(meta["preTokenBalances"])
    assert received == int(order["amountOut"]) > 0
    table = page.locator("#token-changes").inner_text()
    assert f"+{order['amountOutUi']}" in table, table
    body = page.locator("#tx-body").inner_text()
    assert f"({meta['fee']} lamports)" in body  # the fee the chain charged
    assert str(rpc["result"]["slot"]) in body
    assert "Confirmations" in body and "Program logs" in body
    assert f"orderflow:{order_id}" in body  # the order's memo instruction, from the chain
    shot(page, system, "04-transaction")
    status, view = _http("GET", f"{system.url}/api/tx/{order['txHash']}")
    validate_response("/api/tx/{signature}", "get", status, view)  # the real answer
    assert (view["slot"], view["feeLamports"]) == (rpc["result"]["slot"], str(meta["fee"]))
    for path in ("/api/info", "/api/markets/pools"):
        status, doc = _http("GET", system.url + path)
        validate_response(path, "get", status, doc)
        assert status == 200 and doc, (path, doc)


def test_history_filters_and_pages(page: Any, system: System) -> None:
    ids = [submit(system, {"tokenIn": "SOL", "tokenOut": "USDT", "amount": f"0.0{i + 1}"})
           for i in range(5)]
    failing = submit(system, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "150",
                              "maxPriceImpactBps": 1})
    for order_id in [*ids, failing]:
        wait_terminal(system, order_id)
    assert order_of(system, failing)["status"] == "failed"
    page.goto(f"{system.url}/#/orders")
    page.locator("#filters select[name=limit]").select_option("5")
    page.wait_for_function("document.querySelectorAll('#hist-rows tr').length === 5")
    first_page = page.locator("#hist-rows tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.orderId)")
    page.locator("#next").click()
    page.wait_for_function(f"""() => {{
        const ids = [...document.querySelectorAll('#hist-rows tr')].map((r) => r.dataset.orderId);
        return ids.length >= 2 && !ids.some((id) => {json.dumps(first_page)}.includes(id));
    }}""")
    assert page.locator("#page-info").inner_text().startswith("Page 2")
    shot(page, system, "05-history-page-2")
    page.locator("#filters select[name=status]").select_option("failed")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('#hist-rows tr')];
        return rows.length > 0 && rows.every((r) => r.dataset.status === 'failed');
    }""")
    assert failing in page.locator("#hist-rows tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.orderId)")
    shot(page, system, "06-history-failed")
    page.locator("#filters button[type=reset]").click()


def test_limit_order_is_placed_and_cancelled(page: Any, system: System) -> None:
    page.goto(f"{system.url}/#/swap")
    tab = page.locator(".tabs [data-type=limit]")
    page.wait_for_timeout(300)  # the order types come from /api/openapi.json
    if tab.is_hidden():
        pytest.skip("this ingress does not take limit orders")
    tab.click()
    page.locator("#amount").fill("0.2")
    page.locator("input[name=limitPrice]").fill("1000")  # far above the market: waits open
    page.wait_for_function("document.querySelector('#submit').textContent === 'Place limit order'")
    page.locator("#submit").click()
    page.wait_for_function("(document.querySelector('#form-msg a') || {}).textContent "
                           "=== 'follow it'")
    order_id = page.locator("#form-msg a").get_attribute("href").rsplit("/", 1)[1]
    assert order_of(system, order_id).get("type", "limit") == "limit"
    seen: list[str] = []
    _wait(lambda: seen.append(str(order_of(system, order_id).get("status")))  # type: ignore[func-returns-value]
          or seen[-1] == "open", 60, f"the limit order open (statuses seen: {seen[-1:]})")
    page.goto(f"{system.url}/#/orders")
    row = page.locator(f"#open-rows tr[data-order-id='{order_id}']")
    row.wait_for()
    shot(page, system, "07-open-limit-order")
    row.get_by_role("button", name="Cancel").click()
    ended = wait_terminal(system, order_id)
    assert ended["status"] == "cancelled", ended
    row.wait_for(state="detached")  # the table follows the feed


def test_markets_show_pools_and_charts(page: Any, system: System) -> None:
    page.goto(f"{system.url}/#/markets")
    page.wait_for_selector("section.pair[data-pair='SOL/USDC'] svg rect.bar.active")
    card = page.locator("section.pair[data-pair='SOL/USDC']")
    assert card.locator("svg circle.point").count() == 1  # the CP-Swap curve's current point
    text = card.inner_text()
    assert "raydium" in text and "meteora" in text and "USDC" in text
    _, markets = _http("GET", f"{system.url}/api/markets")
    for pair in markets["pairs"]:  # a pair without pools is an empty state, not raw errors
        if pair["state"] == "no_pool":
            name = f"{pair['base']}/{pair['quote']}"
            empty = page.locator(f"section.pair[data-pair='{name}'][data-state=no_pool]")
            assert "No pool" in empty.inner_text(), name
    assert "no_route" not in page.locator("#markets-body").inner_text()
    charts = "document.querySelector(\"section.pair[data-pair='SOL/USDC'] .charts\").innerHTML"
    before = page.evaluate(charts)
    # this test's own swap (no earlier test's): it moves the pool and lists as a trade
    order_id = submit(system, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "40"})
    assert wait_terminal(system, order_id)["status"] == "confirmed"
    page.wait_for_function(f"{charts} !== {json.dumps(before)}",  # the pool moved: redrawn
                           timeout=15_000)
    page.wait_for_selector(f"#trade-rows a[href='#/order/{order_id}']", timeout=15_000)
    shot(page, system, "08-markets")


def test_live_throughput_moves(page: Any, system: System) -> None:
    page.goto(f"{system.url}/#/live")
    page.wait_for_selector("#spark svg")
    before = int(page.locator("#t-total").inner_text())
    ids = [submit(system, {"tokenIn": "USDC", "tokenOut": "SOL", "amount": "3"})
           for _ in range(6)]
    total = "Number(document.querySelector('#t-total').textContent)"
    page.wait_for_function(f"{total} >= {before + 6}", timeout=60_000)
    for order_id in ids:
        assert wait_terminal(system, order_id)["status"] == "confirmed"
    assert page.locator("#t-p50").inner_text().endswith(("ms", " s"))
    assert page.locator("#t-p99").inner_text().endswith(("ms", " s"))
    assert page.locator("#share .share-row").count() >= 1
    shot(page, system, "09-live")


def test_phone_width_and_keyboard(page: Any, system: System) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{system.url}/#/swap")
    page.locator(".tabs [data-type=market]").click()
    page.locator("#amount").fill("1")
    page.wait_for_function("document.querySelectorAll('#venue-rows tr').length === 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    shot(page, system, "10-phone")
    page.locator("#max").focus()
    page.keyboard.press("Enter")  # MAX by keyboard
    assert page.locator("#amount").input_value() not in ("", "1")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline  # focus is visible
    for link in page.locator("nav a").all():
        assert link.inner_text()  # every control has a name
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture(scope="module")
def keyed(system: System) -> Iterator[tuple[str, str]]:
    """A second ingress on the same system listening beyond loopback (keys required), and
    a trade key made by ``orderflow keys create``: (its URL, the key)."""
    made = subprocess.run([sys.executable, "-m", "orderflow.cli", "keys", "create",
                           "--name", "browser-page", "--scope", "trade"],
                          env=system.env, capture_output=True, text=True, timeout=60,
                          check=True)
    token = made.stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**system.env, "ORDERFLOW_HTTP_HOST": "0.0.0.0", "ORDERFLOW_HTTP_PORT": str(port)}
    log_path = system.data / "ingress-keyed.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "ingress"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is not None or _http("GET", f"{url}/healthz")[0] == 200,
              60, "the keyed ingress")
        assert proc.poll() is None, log_path.read_text()[-4000:]
        yield url, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_beyond_loopback_the_page_asks_for_a_key_and_uses_it(
        keyed: tuple[str, str], page: Any, system: System) -> None:
    """The key goes as Bearer on fetches and as the ``bearer.<key>`` subprotocol on the
    feed's WebSocket (which chromium accepts only because the server answers
    ``orderflow``); no URL the page opens carries it."""
    url, token = keyed
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()  # a fresh browser profile: no key stored
        page.set_default_timeout(TIMEOUT_MS)
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on("websocket", lambda w: urls.append(w.url))
        page.goto(url)
        page.wait_for_selector("#key-form:not([hidden])")  # a 401 asked for it
        assert "requires an API key" in page.locator("#key-why").inner_text()
        assert page.locator("#conn").get_attribute("data-state") != "live"
        label = page.locator("label[for=api-key]").inner_text()
        assert label.startswith("API key"), label
        page.locator("#api-key").fill("not-a-key")
        page.get_by_role("button", name="Use key").click()
        assert "ofk_" in page.locator("#key-msg").inner_text()
        shot(page, system, "11-key-asked")
        page.locator("#api-key").fill(token)
        page.get_by_role("button", name="Use key").click()
        page.wait_for_selector("#conn[data-state=live]")  # the feed authenticated
        assert page.evaluate("localStorage.getItem('orderflow.apiKey')") == token
        assert page.locator("#key-form").is_hidden()
        assert page.locator("#key-btn").inner_text() == "API key ✓"
        page.wait_for_function("document.querySelector('#bal-in').textContent.includes('SOL')")
        page.locator("#amount").fill("0.1")
        page.wait_for_function("document.querySelector('#submit').textContent === 'Swap' "
                               "&& !document.querySelector('#submit').disabled")
        page.locator("#submit").click()
        page.locator("#form-msg a").click()
        page.wait_for_selector(".timeline [data-status=confirmed].reached")  # by the feed
        order_id = page.url.rsplit("/", 1)[1]
        assert wait_terminal(system, order_id)["status"] == "confirmed"
        shot(page, system, "12-key-used")
        assert not [u for u in urls if token in u], "the key must never be in a URL"
        page.locator("#key-btn").click()
        page.get_by_role("button", name="Forget key").click()
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.evaluate("localStorage.getItem('orderflow.apiKey')") is None
    finally:
        context.close()
