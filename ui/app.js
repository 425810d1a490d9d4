// orderflow UI: submit market orders, follow every order's status live over one WebSocket.
// Plain browser JS, no build step. All server data is rendered with textContent (never HTML).
"use strict";

// Mirror of pipeline/tokens.py, only to render base units as UI amounts.
const TOKENS = {
  So11111111111111111111111111111111111111112: { symbol: "SOL", decimals: 9 },
  EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v: { symbol: "USDC", decimals: 6 },
  Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB: { symbol: "USDT", decimals: 6 },
};
const STEPS = ["pending", "routing", "building", "submitted"];
const TERMINAL = new Set(["confirmed", "failed"]);
const MAX_CARDS = 200;

const $ = (sel) => document.querySelector(sel);
const orders = new Map(); // orderId -> {el, rank, status, facts, lastEventId}

function token(mint) {
  return TOKENS[mint] || { symbol: mint.slice(0, 4) + "…", decimals: null };
}

// Base units -> decimal string, exact (BigInt), trailing zeros dropped.
function toUi(amount, mint) {
  const t = token(mint);
  if (amount === null || amount === undefined || t.decimals === null) return String(amount ?? "—");
  const base = BigInt(amount);
  const scale = 10n ** BigInt(t.decimals);
  const whole = base / scale;
  const frac = (base % scale).toString().padStart(t.decimals, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

function rank(status, attempt) {
  if (TERMINAL.has(status)) return 1e6;
  return attempt * 10 + STEPS.indexOf(status);
}

function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

// ---- rendering ----

// Failure codes a person should be able to read at a glance; the message has the numbers.
const ERROR_TITLES = {
  price_impact_too_high: "Price impact too high",
  quote_deviation: "Quote deviates from the market",
  slippage_exceeded: "Price moved past the slippage tolerance",
  insufficient_funds: "Insufficient funds",
  no_route: "No venue can fill this order",
  transaction_failed: "Transaction failed on chain",
  transaction_expired: "Transaction expired",
};

function errorText(code, message) {
  const title = ERROR_TITLES[code];
  if (!title) return message ? `${code}: ${message}` : String(code);
  return message ? `${title}: ${message} (${code})` : `${title} (${code})`;
}

// The request body of the order form (always a market order; empty optional fields omitted).
function orderBody(fields) {
  const body = {
    type: "market",
    tokenIn: fields.tokenIn,
    tokenOut: fields.tokenOut,
    amount: String(fields.amount).trim(),
    slippageBps: String(fields.slippageBps ?? "").trim() === "" ? 50 : Number(fields.slippageBps),
  };
  const impact = String(fields.maxPriceImpactBps ?? "").trim();
  if (impact !== "") body.maxPriceImpactBps = Number(impact);
  return body;
}

function card(ev) {
  let entry = orders.get(ev.orderId);
  if (entry) return entry;
  const el = $("#order-template").content.firstElementChild.cloneNode(true);
  const o = ev.order;
  el.querySelector(".pair").textContent =
    `${toUi(o.amountIn, o.tokenIn)} ${token(o.tokenIn).symbol} → ${token(o.tokenOut).symbol}`;
  const id = el.querySelector(".order-id");
  id.textContent = shortId(ev.orderId);
  id.title = ev.orderId;
  el.querySelector(".time").textContent = new Date(o.submittedAt).toLocaleTimeString();
  const steps = el.querySelector(".steps");
  for (const s of [...STEPS, "done"]) {
    const li = document.createElement("li");
    li.dataset.step = s;
    li.textContent = s === "done" ? "confirmed" : s;
    steps.append(li);
  }
  entry = { el, rank: -1, stage: -1, status: null, facts: new Map(), order: o };
  orders.set(ev.orderId, entry);
  $("#orders").prepend(el);
  $("#empty").hidden = true;
  while (orders.size > MAX_CARDS) {
    const [oldest] = orders.keys();
    orders.get(oldest).el.remove();
    orders.delete(oldest);
  }
  return entry;
}

function setFact(entry, label, value, title) {
  if (value === null || value === undefined || value === "") return;
  entry.facts.set(label, { value: String(value), title });
  const dl = entry.el.querySelector(".facts");
  dl.replaceChildren();
  for (const [k, v] of entry.facts) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v.value;
    if (v.title) dd.title = v.title;
    dl.append(dt, dd);
  }
}

// Every status event is applied once, whatever the server replays after a reconnect.
function apply(ev) {
  const entry = card(ev);
  const o = entry.order;
  const d = ev.data || {};
  switch (ev.status) {
    case "routing": {
      const best = (d.quotes || []).map((q) => `${q.venue} ${toUi(q.outAmount, o.tokenOut)}`);
      setFact(entry, "quotes", best.join(" · ") || "none");
      break;
    }
    case "building":
      setFact(entry, "venue", d.venue);
      setFact(entry, "expected", `${toUi(d.expectedOut, o.tokenOut)} ${token(o.tokenOut).symbol}`);
      setFact(entry, "min out", `${toUi(d.minOut, o.tokenOut)} ${token(o.tokenOut).symbol}`);
      break;
    case "submitted":
      setFact(entry, "tx", shortId(d.signature || ""), d.signature);
      break;
    case "confirmed":
      setFact(entry, "venue", d.venue);
      setFact(entry, "paid", `${toUi(d.amountIn, o.tokenIn)} ${token(o.tokenIn).symbol}`);
      setFact(entry, "received", `${toUi(d.amountOut, o.tokenOut)} ${token(o.tokenOut).symbol}`);
      setFact(entry, "price", d.executedPrice);
      setFact(entry, "tx", shortId(d.signature || ""), d.signature);
      break;
    case "failed":
      setFact(entry, "error", errorText(d.code, d.message));
      entry.el.dataset.error = d.code || "";
      break;
  }
  if (ev.attempt > 1) setFact(entry, "attempt", ev.attempt);
  entry.stage = Math.max(entry.stage, STEPS.indexOf(ev.status));
  const r = rank(ev.status, ev.attempt);
  if (r > entry.rank) {
    entry.rank = r;
    entry.status = ev.status;
    entry.lastEventId = ev.eventId;
    renderStatus(entry);
  }
}

function renderStatus(entry) {
  const badge = entry.el.querySelector(".badge");
  badge.textContent = entry.status;
  badge.className = `badge badge-${entry.status}`;
  entry.el.classList.toggle("is-failed", entry.status === "failed");
  entry.el.classList.toggle("is-confirmed", entry.status === "confirmed");
  for (const li of entry.el.querySelectorAll(".steps li")) {
    if (li.dataset.step === "done") {
      li.textContent = entry.status === "failed" ? "failed" : "confirmed";
      li.classList.toggle("reached", TERMINAL.has(entry.status));
      li.classList.toggle("failed", entry.status === "failed");
    } else {
      const i = STEPS.indexOf(li.dataset.step);
      li.classList.toggle("reached", i <= entry.stage || entry.status === "confirmed");
    }
  }
}

// ---- live feed ----
//
// One WebSocket follows all orders. When it drops (an ingress restart, a network blip) it
// reconnects with exponential back-off and jitter; the server replays recent history on
// every (re)subscription, and each order still in flight on the page is re-subscribed
// with `after` = the last eventId we have, so nothing missed is lost. Events are
// de-duplicated by eventId (deterministic: orderId:attempt:status) before they are applied.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10000;

// Delay before reconnect attempt `attempt` (0-based): exponential, capped, "equal jitter"
// (half fixed, half random) so a restarted ingress is not hit by every tab at once.
function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

// A bounded set of eventIds already seen (oldest forgotten first).
function createSeen(limit = 20000) {
  const ids = new Set();
  return {
    firstTime(id) {
      if (ids.has(id)) return false;
      ids.add(id);
      if (ids.size > limit) ids.delete(ids.values().next().value);
      return true;
    },
    get size() {
      return ids.size;
    },
  };
}

// The live feed, with its outside world injected (the browser's, or a test's):
//   url            WebSocket URL (all orders)
//   WebSocketImpl  constructor with the browser WebSocket interface
//   setTimer       (fn, ms) => void
//   random         () => [0, 1)
//   onEvent(ev)    a status event, called once per eventId
//   onState(s)     "connecting" | "live" | "reconnecting"
//   followed()     [{orderId, after}] orders to re-subscribe after a reconnect
function createFeed(opts) {
  const seen = createSeen();
  let attempt = 0;
  let ws = null;
  let stopped = false;
  let connections = 0;
  let scheduled = 0; // id of the pending reconnect (0: none)
  let nextId = 1;

  function connect() {
    if (stopped) return;
    connections += 1;
    const reconnecting = connections > 1;
    opts.onState(reconnecting ? "reconnecting" : "connecting");
    ws = new opts.WebSocketImpl(opts.url);
    ws.onmessage = (msg) => {
      let m;
      try {
        m = JSON.parse(msg.data);
      } catch (_) {
        return;
      }
      if (m.type === "status") {
        if (seen.firstTime(m.eventId)) opts.onEvent(m);
      } else if (m.type === "subscribed" && m.all) {
        attempt = 0; // the server answered with its backlog: this connection works
        opts.onState("live");
        if (reconnecting) resubscribe(ws);
      } else if (m.type === "error") {
        console.warn("orderflow:", m.error);
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      opts.onState("reconnecting");
      const delay = backoffDelay(attempt, opts.random);
      attempt += 1;
      const id = nextId++;
      scheduled = id;
      opts.setTimer(() => {
        if (scheduled !== id) return; // nudged meanwhile
        scheduled = 0;
        connect();
      }, delay);
    };
  }

  function resubscribe(socket) {
    for (const { orderId, after } of opts.followed()) {
      const msg = { action: "subscribe", orderId };
      if (after) msg.after = after;
      socket.send(JSON.stringify(msg));
    }
  }

  return {
    start: connect,
    stop() {
      stopped = true;
      if (ws) ws.close();
    },
    // Reconnect now (the browser came back online) instead of waiting for the timer.
    nudge() {
      if (!scheduled || stopped) return;
      scheduled = 0;
      attempt = 0;
      connect();
    },
    get attempt() {
      return attempt;
    },
  };
}

function inFlightOrders() {
  const out = [];
  for (const [orderId, entry] of orders) {
    if (!TERMINAL.has(entry.status)) out.push({ orderId, after: entry.lastEventId });
  }
  return out;
}

function startFeed() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const conn = $("#conn");
  const labels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" };
  const feed = createFeed({
    url: `${scheme}://${location.host}/api/orders/ws`,
    WebSocketImpl: WebSocket,
    setTimer: (fn, ms) => setTimeout(fn, ms),
    random: Math.random,
    onEvent: apply,
    onState: (state) => {
      conn.textContent = labels[state];
      conn.className = state === "live" ? "conn conn-up" : "conn conn-down";
    },
    followed: inFlightOrders,
  });
  feed.start();
  window.addEventListener("online", () => feed.nudge());
  return feed;
}

// ---- order form ----

function showError(error) {
  const p = $("#form-error");
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (!error) {
    p.hidden = true;
    return;
  }
  p.textContent = error.message || error.code;
  p.className = "form-error";
  p.hidden = false;
  const input = error.field && document.querySelector(`[name="${error.field}"]`);
  if (input) input.setAttribute("aria-invalid", "true");
}

function showInfo(text) {
  const p = $("#form-error");
  p.textContent = text;
  p.className = "form-info";
  p.hidden = false;
}

// A new idempotency key per order the user submits; retries of that submission reuse it,
// so a retry after a timeout or a 503 can never create a second order.
function newIdempotencyKey() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") {
    return globalThis.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const RETRIABLE = new Set([409, 429, 502, 503, 504]);

// POST the order with one Idempotency-Key, retrying network errors and transient statuses.
// Returns {status, doc, key, attempts}; status 0 means the network never answered.
async function submitOrder(body, opts = {}) {
  const fetchImpl = opts.fetchImpl || fetch;
  const sleep = opts.sleep || ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const maxAttempts = opts.maxAttempts || 4;
  const key = opts.key || newIdempotencyKey();
  const onRetry = opts.onRetry || (() => {});
  let last = { status: 0, doc: { error: { message: "network error" } } };
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    try {
      const resp = await fetchImpl("/api/orders/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify(body),
      });
      const doc = await resp.json().catch(() => ({}));
      last = { status: resp.status, doc };
      if (!RETRIABLE.has(resp.status)) return { ...last, key, attempts: attempt };
    } catch (err) {
      last = { status: 0, doc: { error: { message: `Network error: ${err.message}` } } };
    }
    if (attempt < maxAttempts) {
      onRetry(attempt);
      await sleep(backoffDelay(attempt - 1));
    }
  }
  return { ...last, key, attempts: maxAttempts };
}

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("#submit");
  const body = orderBody({
    tokenIn: form.tokenIn.value,
    tokenOut: form.tokenOut.value,
    amount: form.amount.value,
    slippageBps: form.slippageBps.value,
    maxPriceImpactBps: form.maxPriceImpactBps ? form.maxPriceImpactBps.value : "",
  });
  button.disabled = true;
  try {
    const { status, doc } = await submitOrder(body, {
      onRetry: () => showInfo("Retrying…"),
    });
    if (status === 202) {
      showError(null);
      showInfo(`Accepted ${shortId(doc.orderId)}`);
    } else {
      showError((doc && doc.error) || { message: `HTTP ${status}` });
    }
  } finally {
    button.disabled = false;
  }
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", () => {
    $("#order-form").addEventListener("submit", submit);
    $("#flip").addEventListener("click", () => {
      const f = $("#order-form");
      [f.tokenIn.value, f.tokenOut.value] = [f.tokenOut.value, f.tokenIn.value];
    });
    startFeed();
  });
}

// For the unit tests (node); browsers have no `module`.
if (typeof module !== "undefined" && module.exports) {
  module.exports = { backoffDelay, createSeen, createFeed, submitOrder, newIdempotencyKey,
                     errorText, orderBody };
}
