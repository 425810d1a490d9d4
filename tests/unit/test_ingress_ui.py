"""The page's logic (ui/js/*.js, plain ES modules), run in node against fakes.

Reconnects with growing, capped, jittered back-off; the back-off resets once a
connection works; in-flight orders are re-subscribed with ``after``; events are
applied once per eventId; a submission keeps one Idempotency-Key across retries;
amounts typed are parsed exactly (an empty amount is "enter an amount", never sent);
a stale quote request is aborted; CSV export escapes; p50/p99 are true quantiles; an API
key is stored, sent as Bearer and offered on the feed's WebSocket as a subprotocol, and a
401 tells the page to ask for one.
The page itself runs in a real browser in tests/integration/test_browser.py.
Skipped where node is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orderflow.settings import REPO_ROOT

NODE = shutil.which("node")
UI_JS = REPO_ROOT / "ui" / "js"

HARNESS = r"""
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
const load = (name) => import(pathToFileURL(`${process.argv[2]}/${name}`).href);
const kept = new Map();  // the browser's localStorage
globalThis.localStorage = { getItem: (k) => kept.get(k) ?? null,
                            setItem: (k, v) => kept.set(k, String(v)),
                            removeItem: (k) => kept.delete(k) };
const ui = { ...(await load("api.js")), ...(await load("feed.js")), ...(await load("format.js")),
             ...(await load("history.js")), ...(await load("live.js")) };

// ---- back-off ----
for (let a = 0; a < 30; a++) {
  const ceiling = Math.min(10000, 500 * 2 ** a);
  assert.equal(ui.backoffDelay(a, () => 0), ceiling / 2);
  assert.equal(ui.backoffDelay(a, () => 0.999999),
               Math.round(ceiling / 2 + (ceiling / 2) * 0.999999));
}
assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => ui.backoffDelay(a, () => 1)),
                 [500, 1000, 2000, 4000, 8000, 10000]);

// ---- bounded de-duplication ----
const seen = ui.createSeen(3);
assert.deepEqual(["a", "b", "a", "c", "d", "a"].map((id) => seen.firstTime(id)),
                 [true, true, false, true, true, true]);  // "a" forgotten after 3 newer
assert.equal(seen.size, 3);

// ---- the feed ----
class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.all.push(this);
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() { this.readyState = 3; this.onclose && this.onclose({}); }
  receive(doc) { this.onmessage({ data: JSON.stringify(doc) }); }
  drop() { this.readyState = 3; this.onclose({ code: 1001 }); }
}
const timers = [];
const events = [];
const states = [];
let followed = [];
const feed = ui.createFeed({
  url: "ws://host/api/orders/ws",
  WebSocketImpl: FakeSocket,
  setTimer: (fn, ms) => timers.push({ fn, ms }),
  random: () => 1,
  onEvent: (ev) => events.push(ev.eventId),
  onState: (s) => states.push(s),
  followed: () => followed,
  protocols: () => ui.wsProtocols(),
});
const status = (id) => ({ type: "status", eventId: id, orderId: id.split(":")[0] });
feed.start();
let ws = FakeSocket.all[0];
assert.equal(ws.url, "ws://host/api/orders/ws");
assert.equal(ws.protocols, undefined);  // no key: no subprotocol offered
ws.receive(status("o1:1:pending"));
ws.receive({ type: "subscribed", all: true, replayed: 1 });
ws.receive(status("o1:1:routing"));
assert.deepEqual(states, ["connecting", "live"]);
assert.deepEqual(ws.sent, []);  // the first connection has nothing to re-subscribe

// The ingress restarts: the socket drops, reconnects fail twice, then one works.
ws.drop();
for (const expected of [500, 1000, 2000]) {
  const timer = timers.shift();
  assert.equal(timer.ms, expected);
  timer.fn();
  ws = FakeSocket.all.at(-1);
  if (expected < 2000) ws.drop();  // refused: the ingress is still down
}
assert.equal(FakeSocket.all.length, 4);
followed = [{ orderId: "o1", after: "o1:1:routing" }, { orderId: "o2", after: undefined }];
ws.receive(status("o1:1:pending"));   // the replay repeats what we have ...
ws.receive(status("o1:1:routing"));
ws.receive(status("o1:1:building"));  // ... and brings what we missed
ws.receive({ type: "subscribed", all: true, replayed: 3 });
assert.deepEqual(ws.sent, [{ action: "subscribe", orderId: "o1", after: "o1:1:routing" },
                           { action: "subscribe", orderId: "o2" }]);
ws.receive(status("o1:1:building"));
ws.receive(status("o1:1:submitted"));
assert.deepEqual(events, ["o1:1:pending", "o1:1:routing", "o1:1:building", "o1:1:submitted"]);
assert.equal(states.at(-1), "live");
assert.equal(feed.attempt, 0);  // a working connection resets the back-off
ws.drop();
assert.equal(timers.shift().ms, 500);

// ---- the API key: stored, offered as a subprotocol on the next connection, never in the URL
const KEY = "ofk_0123456789ab_" + "A".repeat(43);
assert.ok(ui.KEY_PATTERN.test(KEY) && !ui.KEY_PATTERN.test(KEY + "x"));
ui.setApiKey(KEY);
assert.equal(ui.apiKey(), KEY);
ws.drop();
timers.shift().fn();
ws = FakeSocket.all.at(-1);
assert.deepEqual(ws.protocols, ["orderflow", `bearer.${KEY}`]);
assert.equal(ws.url, "ws://host/api/orders/ws");
ui.setApiKey(null);
assert.equal(ui.apiKey(), null);
assert.deepEqual(ui.wsProtocols(), []);
ws.receive({ type: "subscribed", all: true, replayed: 0 });

// Back online: reconnect at once; the pending timer then does nothing.
ws.drop();
const stale = timers.shift();
feed.nudge();
const count = FakeSocket.all.length;
stale.fn();
assert.equal(FakeSocket.all.length, count);
feed.stop();
assert.equal(timers.length, 0);  // stopping does not reconnect

// ---- submitting with an idempotency key ----
(async () => {
  const calls = [];
  const answers = [
    () => { throw new Error("connection reset"); },
    () => ({ status: 503, json: async () => ({ error: { code: "broker_unavailable" } }) }),
    () => ({ status: 202, json: async () => ({ orderId: "o9", status: "pending" }) }),
  ];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    return answers[calls.length - 1]();
  };
  const result = await ui.submitOrder({ tokenIn: "SOL" }, { fetchImpl, sleep: async () => {} });
  assert.equal(calls[0].init.headers.Authorization, undefined);  // no key stored
  assert.equal(result.status, 202);
  assert.equal(result.doc.orderId, "o9");
  assert.equal(calls.length, 3);
  const keys = new Set(calls.map((c) => c.init.headers["Idempotency-Key"]));
  assert.equal(keys.size, 1);
  assert.match([...keys][0], /^[\x20-\x7e]{1,128}$/);
  assert.equal(calls[0].url, "/api/orders/execute");

  for (const code of [400, 422]) {  // the client's mistakes are not retried
    let n = 0;
    const r = await ui.submitOrder({}, {
      fetchImpl: async () => { n++; return { status: code, json: async () => ({ error: {} }) }; },
      sleep: async () => {} });
    assert.equal(r.status, code);
    assert.equal(n, 1);
  }
  // A 401 tells the page to ask for a key; a stored key goes as Bearer.
  const refusals = [];
  const stop = ui.onUnauthorized((error) => refusals.push(error.code));
  ui.setApiKey(KEY);
  let sent = null;
  const r401 = await ui.submitOrder({}, {
    fetchImpl: async (url, init) => { sent = init.headers;
      return { status: 401, json: async () => ({ error: { code: "invalid_api_key" } }) }; },
    sleep: async () => {} });
  assert.equal(r401.status, 401);  // not retried
  assert.deepEqual(refusals, ["invalid_api_key"]);
  assert.equal(sent.Authorization, `Bearer ${KEY}`);
  stop();
  ui.setApiKey(null);
  let n = 0;
  const down = await ui.submitOrder({}, {
    fetchImpl: async () => { n++; throw new Error("offline"); },
    sleep: async () => {},
    maxAttempts: 3,
  });
  assert.equal(down.status, 0);
  assert.equal(n, 3);
  assert.notEqual(ui.newIdempotencyKey(), ui.newIdempotencyKey());
  // ---- amounts typed, exactly ----
  assert.deepEqual(ui.parseAmount("", 9), { empty: true });   // no "1.5" placeholder sent
  assert.deepEqual(ui.parseAmount(" 1.5 ", 9), { base: 1500000000n });
  assert.deepEqual(ui.parseAmount("0.000000001", 9), { base: 1n });
  assert.equal(ui.parseAmount("0.0000000001", 9).error, "At most 9 decimals");
  assert.equal(ui.parseAmount("1e3", 9).error, "Type a number, like 0.25");
  assert.equal(ui.parseAmount("0", 6).error, "The amount must be more than 0");
  assert.equal(ui.toUi("18446744073709551615", 9), "18446744073.709551615");
  assert.equal(ui.toUi(-1500000n, 6), "-1.5");
  assert.equal(ui.pretty("1234567.1234567", 4), "1,234,567.1234");
  assert.equal(ui.diffBps("1010", "1000"), 100);
  assert.equal(ui.diffBps("995", "1000"), -50);
  // ---- only the latest quote request counts ----
  const aborted = [];
  const quote = ui.latest((signal, n) => new Promise((resolve, reject) => {
    signal.addEventListener("abort", () => { aborted.push(n); reject(new Error("aborted")); });
    setTimeout(() => resolve(n), 5);
  }));
  const [first, second] = await Promise.all([quote(1), quote(2)]);
  assert.deepEqual(first, { stale: true });
  assert.deepEqual(second, { value: 2, stale: false });
  assert.deepEqual(aborted, [1]);
  // ---- CSV export and latency quantiles ----
  const csv = ui.toCsv([{ orderId: "o1", submittedAt: "t", status: "failed",
                          tokenIn: { symbol: "SOL" }, tokenOut: { symbol: "USDC" }, amountIn: 1,
                          error: { code: "no_route" },
                          executedPrice: 'say "hi", ok' }]);
  assert.equal(csv.split("\n")[1].split(",")[0], "o1");
  assert.ok(csv.includes('"say ""hi"", ok"'));
  const lat = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(ui.quantile(lat, 0.5), 50);
  assert.equal(ui.quantile(lat, 0.99), 99);
  assert.equal(ui.quantile([], 0.5), null);
  assert.equal(ui.errorText("price_impact_too_high", "impact 12.5% exceeds 3%"),
               "Price impact too high: impact 12.5% exceeds 3% (price_impact_too_high)");
  assert.equal(ui.errorText("quote_deviation", "raydium 2% from meteora"),
               "Quote deviates from the market: raydium 2% from meteora (quote_deviation)");
  assert.equal(ui.errorText("something_new", "msg"), "something_new: msg");
  // ---- a split order names both legs, wherever a venue is shown ----
  const split = { venue: "meteora", route: { split: true, legs: [
    { venue: "raydium", fractionBps: 1150 }, { venue: "meteora", fractionBps: 8850 }] } };
  assert.equal(ui.venueLabel(split), "split: meteora 88.5% / raydium 11.5%");
  assert.equal(ui.venueLabel({ venue: "meteora", route: { legs: [
    { venue: "meteora", fractionBps: 8800 }, { venue: "raydium", fractionBps: 1200 }] } }),
               "split: meteora 88% / raydium 12%");
  assert.equal(ui.venueLabel({ venue: "raydium", route: { legs: [{ venue: "raydium" }] } }),
               "raydium");
  assert.equal(ui.venueLabel({ venue: null, route: null }), "—");
  const splitCsv = ui.toCsv([{ ...split, orderId: "o2", status: "confirmed",
                              tokenIn: { symbol: "SOL" }, tokenOut: { symbol: "USDC" } }]);
  assert.ok(splitCsv.includes(",meteora,split: meteora 88.5% / raydium 11.5%,"));
  console.log("ui ok");
})().catch((err) => { console.error(err); process.exit(1); });
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_ui_feed_reconnects_resubscribes_dedupes_and_submits_idempotently(
        tmp_path: Path) -> None:
    assert NODE is not None
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS)
    done = subprocess.run([NODE, str(harness), str(UI_JS)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ui ok"
