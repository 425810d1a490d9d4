// One order: its lifecycle as a timeline with times, both quotes, the route, expected vs
// received, and the full signature with copy and a way to inspect the transaction.

import { ApiError, getJson } from "./api.js";
import { $, badge, copyButton, facts, h } from "./dom.js";
import { bps, diffBps, errorText, pct, pretty, shortKey, toUi, token, venueLabel } from "./format.js";
import { TERMINAL } from "./store.js";

const PATHS = {
  market: ["pending", "routing", "building", "submitted", "confirmed"],
  limit: ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"],
  sniper: ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"],
};

let current = null; // {orderId, unsubscribe, timer}

function clock(iso) {
  const d = new Date(iso);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

// The signature as a link to where it can be inspected: Solana Explorer on a public
// cluster, the page's own transaction view on a localnet.
export function txLink(signature, info, text) {
  if (info && info.explorer) {
    const suffix = info.cluster === "devnet" ? "?cluster=devnet" : "";
    return h("a", { href: `https://explorer.solana.com/tx/${signature}${suffix}`, target: "_blank",
                    rel: "noopener" }, text || "Solana Explorer ↗");
  }
  return h("a", { href: `#/tx/${signature}` }, text || "Inspect transaction");
}

function timeline(detail) {
  const events = [...detail.events].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  const start = events.length ? Date.parse(events[0].ts) : 0;
  const path = PATHS[detail.type || "market"] || PATHS.market;
  const reached = new Set(events.map((e) => e.status));
  const items = events.map((e) => h("li", { class: `step reached step-${e.status}`,
                                            dataset: { status: e.status } },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "step-name" }, e.status, e.attempt > 1 ? ` (attempt ${e.attempt})` : ""),
    h("time", { datetime: e.ts }, clock(e.ts)),
    h("span", { class: "delta" }, e === events[0] ? "" : `+${((Date.parse(e.ts) - start) / 1000).toFixed(3)} s`)));
  if (!TERMINAL.has(detail.status)) {
    for (const s of path.filter((s) => !reached.has(s))) {
      items.push(h("li", { class: "step upcoming", dataset: { status: s } },
        h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "step-name" }, s),
        h("span", { class: "muted" }, "waiting")));
    }
  }
  return h("ol", { class: "timeline", "aria-label": "lifecycle" }, items);
}

function quotesTable(detail, out) {
  const quotes = detail.quotes || [];
  if (!quotes.length) return h("p", { class: "empty" }, "No quotes yet: the order has not been routed.");
  const chosen = new Set(((detail.route && detail.route.legs) || []).map((l) => l.pool));
  return h("table", { class: "table", "aria-label": "quotes" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Venue"), h("th", { scope: "col" }, "Pool"),
      h("th", { scope: "col", class: "num" }, "Quoted out"), h("th", { scope: "col", class: "num" }, "Impact"))),
    h("tbody", {}, quotes.map((q) => h("tr", { class: chosen.has(q.ammKey) ? "best" : "" },
      h("th", { scope: "row" }, q.venue, chosen.has(q.ammKey) ? h("span", { class: "tag" }, "route") : ""),
      h("td", { title: q.ammKey }, shortKey(q.ammKey)),
      h("td", { class: "num" }, `${pretty(toUi(q.outAmount, out.decimals))} ${out.symbol}`),
      h("td", { class: "num" }, pct(Number(q.priceImpactPct) * 100))))));
}

function routeList(detail, tin, out) {
  const legs = (detail.route && detail.route.legs) || [];
  if (!legs.length) return h("p", { class: "empty" }, "No route yet.");
  return h("ul", { class: "legs" }, legs.map((l) => h("li", {},
    `${(l.fractionBps / 100).toFixed(1)}% via ${l.venue} (${shortKey(l.pool)}): `,
    `${pretty(toUi(l.amountIn, tin.decimals))} ${tin.symbol} → ≥ ${pretty(toUi(l.minOut, out.decimals))} ${out.symbol}`)));
}

function render(detail, info) {
  const tin = token(detail.tokenIn.mint);
  const out = token(detail.tokenOut.mint);
  const diff = diffBps(detail.amountOut, detail.expectedOut);
  const sig = detail.txHash;
  const body = $("#order-body");
  const dl = h("dl", { class: "facts" });
  facts(dl, [
    ["Type", detail.type || "market"],
    ["Paid", `${pretty(detail.amountInUi)} ${tin.symbol}`],
    ["Expected", detail.expectedOut !== null ? `${pretty(toUi(detail.expectedOut, out.decimals))} ${out.symbol}` : "—"],
    ["Minimum", detail.minOut !== null ? `${pretty(toUi(detail.minOut, out.decimals))} ${out.symbol}` : "—"],
    ["Received", detail.amountOutUi ? `${pretty(detail.amountOutUi)} ${out.symbol}` : "—"],
    ["Received vs expected", diff === null ? "—" : bps(diff)],
    ["Price", detail.executedPrice ? `${pretty(detail.executedPrice)} ${out.symbol} per ${tin.symbol}` : "—"],
    ["Venue", venueLabel(detail)],
    ["Slot", detail.slot ?? "—"],
    detail.error ? ["Error", errorText(detail.error.code, detail.error.message)] : null,
    detail.terms && detail.terms.limit ? ["Limit", `≥ ${pretty(detail.terms.limit.minAmountOutUi)} ${out.symbol} (${detail.terms.limit.limitPrice || "exact"} ${out.symbol} per ${tin.symbol})`] : null,
    detail.expiresAt ? ["Expires", new Date(detail.expiresAt).toLocaleString()] : null,
    detail.waiting ? ["Waiting for", detail.waiting.condition] : null,
  ]);
  const sigBlock = sig ? h("div", { class: "sig" },
    h("code", { class: "signature", "aria-label": "transaction signature" }, sig),
    h("div", { class: "sig-actions" }, copyButton(sig, "copy the signature"), txLink(sig, info)))
    : h("p", { class: "empty" }, "No transaction yet.");
  body.replaceChildren(
    h("div", { class: "order-head card" },
      h("h1", {}, `${pretty(detail.amountInUi)} ${tin.symbol} → ${out.symbol}`), badge(detail.status),
      h("code", { class: "muted order-id" }, detail.orderId)),
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "Lifecycle"), timeline(detail)),
      h("section", { class: "card" }, h("h2", {}, "Result"), dl, h("h3", {}, "Transaction"), sigBlock)),
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "Quotes"), quotesTable(detail, out)),
      h("section", { class: "card" }, h("h2", {}, "Route"), routeList(detail, tin, out))));
}

// Before the read model has the order, show what the feed said.
function fromFeed(entry) {
  const o = entry.order;
  const data = Object.assign({}, ...entry.events.map((e) => e.data || {}));
  const tin = token(o.tokenIn);
  return {
    orderId: entry.orderId, status: entry.status, type: o.type || "market",
    tokenIn: { mint: tin.mint || o.tokenIn }, tokenOut: { mint: token(o.tokenOut).mint || o.tokenOut },
    amountInUi: toUi(o.amountIn, tin.decimals), amountOut: data.amountOut ?? null,
    amountOutUi: data.amountOut ? toUi(data.amountOut, token(o.tokenOut).decimals) : null,
    expectedOut: data.expectedOut ?? null, minOut: data.minOut ?? null, venue: data.venue,
    executedPrice: data.executedPrice, txHash: data.signature, slot: data.slot,
    error: data.code ? { code: data.code, message: data.message } : null,
    quotes: data.quotes || [], route: data.route || null,
    events: entry.events.map((e) => ({ status: e.status, attempt: e.attempt, ts: e.ts })),
  };
}

async function load(orderId, deps) {
  try {
    const detail = await getJson(`/api/orders/${encodeURIComponent(orderId)}`);
    const entry = deps.store.orders.get(orderId);
    if (entry && TERMINAL.has(entry.status) && !TERMINAL.has(detail.status)) {
      render(fromFeed(entry), deps.info()); // the sink is a moment behind the feed
      setTimeout(() => { if (current && current.orderId === orderId) load(orderId, deps); }, 500);
      return;
    }
    render(detail, deps.info());
  } catch (err) {
    const entry = deps.store.orders.get(orderId);
    if (entry) render(fromFeed(entry), deps.info());
    else if (err instanceof ApiError && err.status === 404) {
      $("#order-body").replaceChildren(h("p", { class: "empty" }, `No order ${orderId} (yet).`));
    } else $("#order-body").replaceChildren(h("p", { class: "form-msg error" }, err.message));
  }
}

export function showOrder(orderId, deps) {
  hideOrder();
  $("#order-body").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let pending = null;
  const unsubscribe = deps.store.subscribe((entry) => {
    if (entry.orderId !== orderId) return;
    render(fromFeed(entry), deps.info()); // at once from the feed ...
    clearTimeout(pending); // ... then the persisted view, once the sink has written it
    pending = setTimeout(() => load(orderId, deps), 300);
  });
  current = { orderId, unsubscribe, timer: () => clearTimeout(pending) };
  load(orderId, deps);
}

export function hideOrder() {
  if (current) {
    current.unsubscribe();
    current.timer();
    current = null;
  }
}
