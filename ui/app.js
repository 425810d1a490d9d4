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
const orders = new Map(); // orderId -> {el, rank, status, facts}
const seen = new Set(); // eventIds already applied (replays after a reconnect repeat them)

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

function apply(ev) {
  if (seen.has(ev.eventId)) return;
  seen.add(ev.eventId);
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
      setFact(entry, "error", `${d.code}: ${d.message}`);
      break;
  }
  if (ev.attempt > 1) setFact(entry, "attempt", ev.attempt);
  entry.stage = Math.max(entry.stage, STEPS.indexOf(ev.status));
  const r = rank(ev.status, ev.attempt);
  if (r > entry.rank) {
    entry.rank = r;
    entry.status = ev.status;
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

let backoff = 500;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/orders/ws`);
  const conn = $("#conn");
  ws.onopen = () => {
    backoff = 500;
    conn.textContent = "live";
    conn.className = "conn conn-up";
  };
  ws.onmessage = (msg) => {
    const m = JSON.parse(msg.data);
    if (m.type === "status") apply(m);
    else if (m.type === "error") console.warn("orderflow:", m.error);
  };
  ws.onclose = () => {
    conn.textContent = "reconnecting…";
    conn.className = "conn conn-down";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
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

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("#submit");
  const slippage = form.slippageBps.value.trim();
  const body = {
    tokenIn: form.tokenIn.value,
    tokenOut: form.tokenOut.value,
    amount: form.amount.value.trim(),
    slippageBps: slippage === "" ? 50 : Number(slippage),
  };
  button.disabled = true;
  try {
    const resp = await fetch("/api/orders/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const doc = await resp.json().catch(() => ({}));
    if (resp.status === 202) {
      showError(null);
      showInfo(`Accepted ${shortId(doc.orderId)}`);
    } else {
      showError(doc.error || { message: `HTTP ${resp.status}` });
    }
  } catch (err) {
    showError({ message: `Network error: ${err.message}` });
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#order-form").addEventListener("submit", submit);
  $("#flip").addEventListener("click", () => {
    const f = $("#order-form");
    [f.tokenIn.value, f.tokenOut.value] = [f.tokenOut.value, f.tokenIn.value];
  });
  connect();
});
