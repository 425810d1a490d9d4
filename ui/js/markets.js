// Markets: every pool of both venues with price, liquidity and fee, a DLMM liquidity-by-bin
// chart and a CP-Swap curve per pair, and the engine's recent trades.

import { getJson } from "./api.js";
import { $, h } from "./dom.js";
import { pct, pretty, shortKey, time, toUi } from "./format.js";
import { cpmmChart, dlmmChart } from "./charts.js";

const REFRESH_MS = 4000;
let timer = null;

function liquidity(state) {
  if (!state) return "—";
  if (state.kind === "cpmm") {
    return `${pretty(toUi(state.reserveX, state.x.decimals), 2)} ${state.x.symbol} + ${pretty(toUi(state.reserveY, state.y.decimals), 2)} ${state.y.symbol}`;
  }
  let x = 0n, y = 0n;
  for (const b of state.bins) { x += BigInt(b.amountX); y += BigInt(b.amountY); }
  return `${pretty(toUi(x, state.x.decimals), 2)} ${state.x.symbol} + ${pretty(toUi(y, state.y.decimals), 2)} ${state.y.symbol} (±${Math.floor(state.bins.length / 2)} bins)`;
}

function feeRate(state) {
  if (!state) return null;
  if (state.kind === "cpmm") return `${(state.feeRate / 10000).toFixed(2)}%`;
  return `bin step ${state.binStep} bps`;
}

function pairCard(pair, states) {
  const rows = pair.pools.map((p) => {
    const s = states.get(p.pool);
    return h("tr", { dataset: { venue: p.venue } },
      h("th", { scope: "row" }, p.venue),
      h("td", { title: p.pool }, shortKey(p.pool)),
      h("td", { class: "num" }, `${pretty(p.price.outPerIn, 6)} ${pair.quote}`),
      h("td", {}, liquidity(s)),
      h("td", { class: "num" }, `${pretty(p.fee.ui, 6)} ${p.fee.symbol || ""}`, feeRate(s) ? h("small", { class: "muted" }, ` (${feeRate(s)})`) : ""),
      h("td", { class: "num" }, pct(Number(p.priceImpactPct) * 100, 3)));
  });
  const charts = pair.pools.map((p) => states.get(p.pool)).filter(Boolean).map((s) => h("figure", { class: "chart" },
    s.kind === "dlmm" ? dlmmChart(s) : cpmmChart(s),
    h("figcaption", {}, s.kind === "dlmm" ? `Meteora DLMM: liquidity by bin; blue bins hold ${s.y.symbol} (below the price), violet ${s.x.symbol} (above), orange is the active bin`
                                          : "Raydium CP-Swap: x·y = k, the dot is the pool now")));
  return h("section", { class: "card pair", dataset: { pair: `${pair.base}/${pair.quote}` } },
    h("h2", {}, `${pair.base} / ${pair.quote}`),
    h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": `${pair.base}/${pair.quote} pools` },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Venue"), h("th", { scope: "col" }, "Pool"),
        h("th", { scope: "col", class: "num" }, `Price per ${pair.base}`), h("th", { scope: "col" }, "Liquidity"),
        h("th", { scope: "col", class: "num" }, `Fee on 1 ${pair.base}`), h("th", { scope: "col", class: "num" }, "Impact"))),
      h("tbody", {}, rows))),
    pair.errors.length ? h("p", { class: "form-msg error" }, pair.errors.map((e) => `${e.venue}: ${JSON.stringify(e.error)}`).join("; ")) : "",
    h("div", { class: "charts" }, charts));
}

async function load() {
  try {
    const [markets, pools] = await Promise.all([getJson("/api/markets"), getJson("/api/markets/pools")]);
    const states = new Map(pools.pools.map((p) => [p.pool, p]));
    $("#markets-note").textContent = pools.unavailable
      ? `Charts: ${pools.unavailable}.` : `Pool state at slot ${pools.slot}; refreshed every ${REFRESH_MS / 1000} s.`;
    $("#markets-body").replaceChildren(...markets.pairs.map((p) => pairCard(p, states)));
  } catch (err) {
    $("#markets-body").replaceChildren(h("p", { class: "form-msg error" }, `Markets unavailable: ${err.message}`));
  }
  try {
    const doc = await getJson("/api/orders?status=confirmed&limit=15");
    const trades = doc.orders.filter((o) => o.status === "confirmed");
    $("#trade-rows").replaceChildren(...trades.map((o) => h("tr", {},
      h("td", {}, h("a", { href: `#/order/${o.orderId}` }, time(o.submittedAt))),
      h("td", {}, `${o.tokenIn.symbol} → ${o.tokenOut.symbol}`),
      h("td", { class: "num" }, `${pretty(o.amountInUi)} ${o.tokenIn.symbol}`),
      h("td", { class: "num" }, `${pretty(o.amountOutUi)} ${o.tokenOut.symbol}`),
      h("td", { class: "num" }, pretty(o.executedPrice, 6)),
      h("td", {}, o.venue || "—"))));
    $("#trades-empty").hidden = trades.length > 0;
  } catch (_) {
    $("#trades-empty").hidden = false;
  }
}

export function showMarkets() {
  hideMarkets();
  load();
  timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
}

export function hideMarkets() {
  clearInterval(timer);
  timer = null;
}
