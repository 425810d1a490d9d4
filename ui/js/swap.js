// The swap panel: balances, live quotes from both venues as you type, the route and its
// fees, slippage, warnings and refusals, a confirmation for large orders, and the submit.

import { debounce, getJson, latest, submitOrder } from "./api.js";
import { $, $$, badge, facts, h, toast } from "./dom.js";
import { TOKENS, errorText, parseAmount, pct, pretty, shortKey, toUi, token } from "./format.js";

const QUOTE_DEBOUNCE_MS = 250;
const QUOTE_REFRESH_MS = 5000;
const WARN_IMPACT = 0.01; // a fraction of 1: above it the panel warns and asks to confirm
const LARGE_SHARE = 0.25; // spending more than this share of a balance asks to confirm
const NETWORK_FEE_DECIMALS = 9;

const state = {
  type: "market",
  slippageBps: 50,
  invert: false,
  balances: {},
  quote: null, // the last /api/quote answer for the current inputs
  parsed: null,
  busy: false,
};
let deps = null; // {store, route}

const form = () => $("#swap-form");
const symIn = () => form().tokenIn.value;
const symOut = () => form().tokenOut.value;

function balanceOf(sym) {
  const b = state.balances[sym];
  return b ? BigInt(b.amount) : null;
}

export async function loadWallet() {
  try {
    const w = await getJson("/api/wallet");
    state.balances = Object.fromEntries(w.balances.map((b) => [b.symbol, b]));
    const btn = $("#wallet-btn");
    btn.textContent = shortKey(w.address);
    btn.dataset.address = w.address;
    btn.title = `wallet ${w.address} (press to copy)`;
  } catch (err) {
    $("#wallet-btn").textContent = "wallet unavailable";
    $("#wallet-btn").title = err.message;
  }
  renderBalances();
}

function renderBalances() {
  const show = (sym) => {
    const b = state.balances[sym];
    return b ? `${pretty(b.ui, 4)} ${sym}` : "—";
  };
  $("#bal-in").textContent = show(symIn());
  $("#bal-out").textContent = show(symOut());
}

function setAmountShare(divisor) {
  const bal = balanceOf(symIn());
  if (bal === null) return;
  let amount = bal / BigInt(divisor);
  // Keep SOL for the network and priority fees when spending all of it.
  if (symIn() === "SOL" && divisor === 1) amount -= amount > 10_000_000n ? 10_000_000n : amount;
  $("#amount").value = toUi(amount, TOKENS[symIn()].decimals);
  changed();
}

function slippageFromInputs(preset) {
  if (preset !== undefined) {
    state.slippageBps = preset;
    $("#slip-custom").value = "";
  } else {
    const text = $("#slip-custom").value.trim();
    if (text === "") return;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0 || n > 50) {
      hint("Slippage is a percentage between 0 and 50");
      return;
    }
    state.slippageBps = Math.round(n * 100);
  }
  for (const b of $$(".presets .chip")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.bps) === state.slippageBps
                                          && $("#slip-custom").value === ""));
  }
  changed();
}

function hint(text) {
  $("#amount-hint").textContent = text || "";
}

function setButton(text, enabled) {
  const b = $("#submit");
  b.textContent = text;
  b.disabled = !enabled || state.busy;
}

function warn(text, refusal = false) {
  const w = $("#warning");
  w.hidden = !text;
  w.textContent = text || "";
  w.classList.toggle("refusal", refusal);
}

// Inputs changed: validate now, quote after the user pauses.
function changed() {
  renderBalances();
  $$(".unit-in").forEach((e) => { e.textContent = symIn(); });
  $$(".unit-out").forEach((e) => { e.textContent = symOut(); });
  const p = parseAmount($("#amount").value, TOKENS[symIn()].decimals);
  state.parsed = p;
  if (symIn() === symOut()) {
    hint("");
    setButton("Choose two different tokens", false);
    clearQuote();
    return;
  }
  if (p.empty || p.error) {
    hint(p.error || "");
    $("#amount").toggleAttribute("aria-invalid", Boolean(p.error));
    setButton(p.error ? "Fix the amount" : "Enter an amount", false);
    clearQuote();
    return;
  }
  $("#amount").removeAttribute("aria-invalid");
  hint("");
  if (state.type === "sniper") { // the new token has no pool yet: nothing to quote
    clearQuote();
    const mint = form().sniperMint.value.trim();
    const ok = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(mint);
    setButton(ok ? "Place sniper order" : "Enter the new token's mint", ok);
    return;
  }
  $("#quote-state").textContent = "updating…";
  requestQuote();
}

function clearQuote() {
  requestQuote.cancel();
  state.quote = null;
  $("#out-amount").textContent = "0";
  $("#rate").textContent = "—";
  $("#quote").hidden = true;
  $("#quote-empty").hidden = false;
  $("#quote-state").textContent = "";
  warn("");
}

const fetchQuote = latest((signal, params) => getJson(`/api/quote?${params}`, { signal }));

async function runQuote() {
  const p = state.parsed;
  if (!p || !p.base) return;
  const params = new URLSearchParams({ tokenIn: symIn(), tokenOut: symOut(),
                                       amount: toUi(p.base, TOKENS[symIn()].decimals),
                                       slippageBps: String(state.slippageBps) });
  try {
    const r = await fetchQuote(params.toString());
    if (r.stale) return;
    state.quote = r.value;
    renderQuote(r.value);
  } catch (err) {
    state.quote = null;
    $("#quote-state").textContent = "";
    warn(`No quote: ${err.message}`, true);
    setButton("No quote", false);
  }
}
const requestQuote = debounce(runQuote, QUOTE_DEBOUNCE_MS);

function rateText(rate) {
  if (!rate || !rate.outPerIn) return "—";
  const [a, b] = [symIn(), symOut()];
  return state.invert ? `1 ${b} = ${pretty(rate.inPerOut, 8)} ${a}`
                      : `1 ${a} = ${pretty(rate.outPerIn, 6)} ${b}`;
}

function renderQuote(q) {
  const route = q.route;
  const out = token(q.tokenOut.mint);
  $("#quote-state").textContent = `slot ${q.quotes[0] ? q.quotes[0].contextSlot : "—"}`;
  $("#quote-empty").hidden = true;
  $("#quote").hidden = false;
  $("#out-amount").textContent = route ? pretty(route.expectedOutUi, 6) : "0";
  $("#rate").textContent = route ? rateText(route.rate) : "—";
  if (route && route.rate.outPerIn) form().limitPrice.placeholder = `market now: ${pretty(route.rate.outPerIn, 6)}`;
  const chosen = new Set(route ? route.legs.map((l) => l.pool) : []);
  $("#venue-rows").replaceChildren(...q.quotes.map((v) => h("tr",
    { class: chosen.has(v.pool) ? "best" : "", dataset: { venue: v.venue } },
    h("th", { scope: "row" }, v.venue, chosen.has(v.pool) ? h("span", { class: "tag" }, "route") : ""),
    h("td", { class: "num" }, `${pretty(v.amountOutUi, 6)} ${out.symbol}`),
    h("td", { class: "num" }, pct(Number(v.priceImpactPct) * 100)),
    h("td", { class: "num" }, `${pretty(v.fee.ui, 6)} ${v.fee.symbol || ""}`))),
  ...q.quoteErrors.map((e) => h("tr", { class: "err" }, h("th", { scope: "row" }, e.venue),
    h("td", { colspan: 3 }, typeof e.error === "string" ? e.error : JSON.stringify(e.error)))));
  renderVerdict(q);
  const fees = route ? route.fees : null;
  const prio = fees && fees.priority;
  facts($("#quote-facts"), route ? [
    ["Rate", rateText(route.rate)],
    ["Price impact", pct(Number(route.priceImpactPct) * 100)],
    ["Minimum received", `${pretty(route.minOutUi, 6)} ${out.symbol}`,
     `with ${state.slippageBps / 100}% slippage`],
    ["Venue fee", fees.venue.map((f) => `${pretty(f.ui, 6)} ${f.symbol} (${f.venue})`).join(" + ")],
    ["Network fee", `${toUi(fees.networkLamports, NETWORK_FEE_DECIMALS)} SOL`],
    ["Priority fee", prio.lamports !== null
      ? `${toUi(prio.lamports, NETWORK_FEE_DECIMALS)} SOL`
      : `set by the venue, at most ${toUi(prio.maxLamports, NETWORK_FEE_DECIMALS)} SOL`],
    ["Route", route.legs.map((l) => `${l.venue} ${shortKey(l.pool)}`).join(" + ")],
  ] : []);
  judge(q);
}

function renderVerdict(q) {
  const route = q.route;
  const v = $("#verdict");
  const split = $("#split");
  split.hidden = !(route && route.split);
  if (!route) {
    v.textContent = "No venue can fill this amount.";
    return;
  }
  if (route.split) {
    v.textContent = `Split between the venues beats the best single pool by ${route.marginBps ?? 0} bps.`;
    split.replaceChildren(...route.legs.map((l) => h("span",
      { class: `leg-bar venue-${l.venue}`, style: `flex:${l.fractionBps}` },
      `${l.venue} ${(l.fractionBps / 100).toFixed(1)}%`)));
  } else if (route.runnerUp) {
    v.textContent = `${route.venue} wins by ${route.marginBps ?? 0} bps over ${route.runnerUp}.`;
  } else {
    v.textContent = `${route.venue} is the only venue with a quote.`;
  }
}

// Can this be sent, and does it need a warning or a confirmation?
function judge(q) {
  const p = state.parsed;
  const bal = balanceOf(symIn());
  const impact = q.route ? Number(q.route.priceImpactPct) : 0;
  if (state.type === "limit") { // it waits for its price: today's refusal does not apply
    const price = form().limitPrice.value.trim();
    warn("");
    if (bal !== null && p.base > bal) setButton(`Insufficient ${symIn()} balance`, false);
    else if (!/^\d*\.?\d+$|^\d+\.$/.test(price)) setButton("Enter a limit price", false);
    else setButton("Place limit order", true);
    return;
  }
  if (q.refused) {
    warn(`The engine would refuse this order: ${errorText(q.refused.code, q.refused.message)}`, true);
    setButton(q.refused.code === "price_impact_too_high" ? "Price impact too high" : "Not routable", false);
    return;
  }
  if (!q.route) {
    warn("No route for this amount.", true);
    setButton("No route", false);
    return;
  }
  if (bal !== null && p.base > bal) {
    warn("");
    setButton(`Insufficient ${symIn()} balance`, false);
    return;
  }
  warn(impact >= WARN_IMPACT ? `High price impact: ${pct(impact * 100)}. You will be asked to confirm.` : "");
  const label = { market: "Swap", limit: "Place limit order", sniper: "Place sniper order" };
  setButton(label[state.type], true);
}

function isLarge(q) {
  const bal = balanceOf(symIn());
  const impact = q && q.route ? Number(q.route.priceImpactPct) : 0;
  const share = bal && bal > 0n ? Number((state.parsed.base * 1000n) / bal) / 1000 : 0;
  const why = [];
  if (impact >= WARN_IMPACT) why.push(`price impact ${pct(impact * 100)}`);
  if (share >= LARGE_SHARE) why.push(`${Math.round(share * 100)}% of your ${symIn()}`);
  return why;
}

function confirmLarge(q, why) {
  const dialog = $("#confirm");
  facts($("#confirm-facts"), [
    ["You pay", `${toUi(state.parsed.base, TOKENS[symIn()].decimals)} ${symIn()}`],
    ["You receive", `≈ ${pretty(q.route.expectedOutUi)} ${symOut()}`],
    ["At least", `${pretty(q.route.minOutUi)} ${symOut()}`],
    ["Route", q.route.legs.map((l) => l.venue).join(" + ")],
  ]);
  $("#confirm-why").textContent = `This order is large: ${why.join(", ")}.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("#confirm-ok").focus();
  });
}

function orderBody() {
  const f = form();
  const amount = toUi(state.parsed.base, TOKENS[symIn()].decimals);
  const body = { type: state.type, tokenIn: symIn(), tokenOut: symOut(), amount,
                 slippageBps: state.slippageBps };
  const expires = (s) => new Date(Date.now() + Number(s) * 1000).toISOString();
  if (state.type === "limit") {
    body.limitPrice = f.limitPrice.value.trim();
    body.expiresAt = expires(f.expiry.value);
  } else if (state.type === "sniper") {
    body.tokenOut = f.sniperMint.value.trim();
    body.sniper = { minQuoteLiquidity: f.minQuoteLiquidity.value.trim() || "0" };
    if (f.sniperImpact.value.trim()) {
      body.sniper.maxPriceImpactBps = Math.round(Number(f.sniperImpact.value) * 100);
    }
    body.expiresAt = expires(f.sniperExpiry.value);
  }
  return body;
}

async function submit(event) {
  event.preventDefault();
  const q = state.quote;
  if (!state.parsed || !state.parsed.base || (state.type === "market" && !q)) return;
  const why = state.type === "market" ? isLarge(q) : [];
  if (why.length && !(await confirmLarge(q, why))) return;
  state.busy = true;
  setButton("Sending…", false);
  const msg = $("#form-msg");
  msg.hidden = true;
  msg.replaceChildren();
  try {
    const { status, doc } = await submitOrder(orderBody(), {
      onRetry: () => { msg.hidden = false; msg.textContent = "Retrying…"; } });
    msg.hidden = false;
    if (status === 202) {
      msg.className = "form-msg ok";
      msg.replaceChildren("Order accepted: ", h("a", { href: `#/order/${doc.orderId}` },
                                                 "follow it"));
      deps.pending.add(doc.orderId);
      deps.store.markMine(doc.orderId);
      renderRecent();
      toast("Order accepted");
    } else {
      msg.className = "form-msg error";
      msg.textContent = errorText(doc.error && doc.error.code, doc.error && doc.error.message)
        || `HTTP ${status}`;
    }
  } finally {
    state.busy = false;
    if (state.quote) judge(state.quote);
  }
}

export function renderRecent() {
  const mine = [...deps.store.orders.values()].filter((e) => e.mine || deps.pending.has(e.orderId));
  for (const e of mine) e.mine = true;
  const rows = mine.slice(-6).reverse().map((e) => {
    const o = e.order;
    const tin = token(o.tokenIn);
    const tout = token(o.tokenOut);
    return h("li", {}, h("a", { href: `#/order/${e.orderId}` },
      `${toUi(o.amountIn, tin.decimals)} ${tin.symbol} → ${tout.symbol}`), badge(e.status));
  });
  $("#recent").replaceChildren(...rows);
  $("#recent-empty").hidden = rows.length > 0;
}

function setType(type) {
  state.type = type;
  for (const t of $$(".tabs [role=tab]")) t.setAttribute("aria-selected", String(t.dataset.type === type));
  $("#limit-fields").hidden = type !== "limit";
  $("#sniper-fields").hidden = type !== "sniper";
  changed();
}

// Show the order types this ingress accepts (read from its OpenAPI document).
export function enableTypes(types) {
  for (const t of $$(".tabs [role=tab]")) t.hidden = !types.includes(t.dataset.type);
}

export function initSwap(d) {
  deps = d;
  const f = form();
  f.addEventListener("submit", submit);
  $("#amount").addEventListener("input", changed);
  f.tokenIn.addEventListener("change", changed);
  f.tokenOut.addEventListener("change", changed);
  $("#flip").addEventListener("click", () => {
    [f.tokenIn.value, f.tokenOut.value] = [f.tokenOut.value, f.tokenIn.value];
    changed();
  });
  $("#half").addEventListener("click", () => setAmountShare(2));
  $("#max").addEventListener("click", () => setAmountShare(1));
  $("#rate").addEventListener("click", () => {
    state.invert = !state.invert;
    if (state.quote) renderQuote(state.quote);
  });
  for (const b of $$(".presets .chip")) b.addEventListener("click", () => slippageFromInputs(Number(b.dataset.bps)));
  $("#slip-custom").addEventListener("input", () => slippageFromInputs());
  for (const t of $$(".tabs [role=tab]")) t.addEventListener("click", () => setType(t.dataset.type));
  f.limitPrice.addEventListener("input", () => { if (state.quote) judge(state.quote); });
  f.sniperMint.addEventListener("input", changed);
  // Quotes age: refresh the shown one while the page is visible.
  setInterval(() => {
    if (state.parsed && state.parsed.base && !document.hidden && !state.busy) runQuote();
  }, QUOTE_REFRESH_MS);
  changed();
}
