// Markets: every pool of both venues with price, liquidity and fee, a DLMM liquidity-by-bin
// chart and a CP-Swap curve per pool, the pools' own recent trades (on-chain venues: from
// each pool's transaction history) and the engine's recent trades.

import { getJson } from "./api.js";
import { $, h } from "./dom.js";
import { pct, pretty, shortKey, time, toUi, venueLabel } from "./format.js";
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
  const rate = (n) => `${((100 * Number(n)) / state.feeRateDenominator).toFixed(3).replace(/0$/, "")}%`;
  if (state.kind === "cpmm") return rate(state.feeRate);
  const step = `bin step ${state.binStep} bps`;
  if (state.feeRate === undefined) return step;
  return state.feeRate > state.baseFeeRate ? `${rate(state.feeRate)} now, base ${rate(state.baseFeeRate)}, ${step}`
                                           : `${rate(state.feeRate)}, ${step}`;
}

// The pool's price of one `base` in the other token, from its own state (no quote).
function statePrice(state, base) {
  const p = state.kind === "cpmm" ? state.price : state.activePrice;
  if (!p || Number(p) === 0) return null;
  return state.x.symbol === base ? p : String(1 / Number(p));
}

function pairOf(state, pair) {
  const syms = [state.x.symbol, state.y.symbol];
  return syms.includes(pair.base) && syms.includes(pair.quote);
}

// Pools of the pair the chain view found beside the venues' best (an on-chain venue
// quotes every pool of a pair but /api/markets shows the best one per venue).
function extraRow(pair, s) {
  return h("tr", { dataset: { venue: s.venue || "" } },
    h("th", { scope: "row" }, s.venue || "—"),
    h("td", { title: s.pool }, shortKey(s.pool)),
    h("td", { class: "num" }, statePrice(s, pair.base) ? `${pretty(statePrice(s, pair.base), 6)} ${pair.quote}` : "—"),
    h("td", {}, liquidity(s)),
    h("td", { class: "num" }, h("small", { class: "muted" }, feeRate(s))),
    h("td", { class: "num" }, h("small", { class: "muted" }, "not the best")));
}

function tradeRows(pair, pools) {
  const trades = pools.flatMap((s) => (s.trades || []).map((t) => ({ ...t, pool: s })));
  trades.sort((a, b) => b.slot - a.slot);
  return trades.slice(0, 10).map((t) => {
    const tin = t.tokenIn === t.pool.x.mint ? t.pool.x : t.pool.y;
    const tout = t.tokenIn === t.pool.x.mint ? t.pool.y : t.pool.x;
    const inUi = toUi(t.amountIn, tin.decimals), outUi = toUi(t.amountOut, tout.decimals);
    const price = tin.symbol === pair.base ? Number(outUi) / Number(inUi) : Number(inUi) / Number(outUi);
    const when = t.blockTime ? time(new Date(t.blockTime * 1000).toISOString()) : `slot ${t.slot}`;
    return h("tr", {},
      h("td", {}, h("a", { href: `#/tx/${t.signature}`, title: t.signature }, when)),
      h("td", {}, t.pool.venue || "—"),
      h("td", {}, `${tin.symbol} → ${tout.symbol}`),
      h("td", { class: "num" }, `${pretty(inUi)} ${tin.symbol}`),
      h("td", { class: "num" }, `${pretty(outUi)} ${tout.symbol}`),
      h("td", { class: "num" }, Number.isFinite(price) ? pretty(String(price.toPrecision(8)), 6) : "—"));
  });
}

function poolTrades(pair, pools) {
  if (!pools.some((s) => s.trades)) return "";
  const rows = tradeRows(pair, pools);
  return h("div", { class: "pool-trades" },
    h("h3", {}, "Recent trades in these pools"),
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": `${pair.base}/${pair.quote} pool trades` },
      h("thead", {}, h("tr", {}, ...["Time", "Venue", "Side", "In", "Out", `Price (${pair.quote})`].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)))
      : h("p", { class: "empty" }, "No trades in these pools' recent transactions."));
}

// A pair no enabled venue has a pool for: nothing to trade, said as an empty state.
function noPoolCard(pair) {
  const venues = (pair.noPool || []).join(" or ") || "any enabled venue";
  return h("section", { class: "card pair", dataset: { pair: `${pair.base}/${pair.quote}`, state: "no_pool" } },
    h("h2", {}, `${pair.base} / ${pair.quote}`),
    h("p", { class: "empty" }, `No pool: ${venues} has no ${pair.base}/${pair.quote} pool, so there is nothing to quote or trade here. `
      + "Trade a pair above that has one, or create a pool for this pair on a venue."));
}

function pairCard(pair, states, all) {
  const listed = new Set(pair.pools.map((p) => p.pool));
  const extra = all.filter((s) => pairOf(s, pair) && !listed.has(s.pool));
  if (pair.state === "no_pool" && !extra.length) return noPoolCard(pair);
  const shownPools = [...pair.pools.map((p) => states.get(p.pool)).filter(Boolean), ...extra];
  const rows = pair.pools.map((p) => {
    const s = states.get(p.pool);
    return h("tr", { dataset: { venue: p.venue } },
      h("th", { scope: "row" }, p.venue),
      h("td", { title: p.pool }, shortKey(p.pool)),
      h("td", { class: "num" }, `${pretty(p.price.outPerIn, 6)} ${pair.quote}`),
      h("td", {}, liquidity(s)),
      h("td", { class: "num" }, `${pretty(p.fee.ui, 6)} ${p.fee.symbol || ""}`, feeRate(s) ? h("small", { class: "muted" }, ` (${feeRate(s)})`) : ""),
      h("td", { class: "num" }, pct(Number(p.priceImpactPct) * 100, 3)));
  }).concat(extra.map((s) => extraRow(pair, s)));
  const charts = shownPools.map((s) => h("figure", { class: "chart" },
    s.kind === "dlmm" ? dlmmChart(s) : cpmmChart(s),
    h("figcaption", {}, s.kind === "dlmm" ? `Meteora DLMM: liquidity by bin; blue bins hold ${s.y.symbol} (below the price), violet ${s.x.symbol} (above), orange is the active bin`
                                          : "Raydium CP-Swap: x·y = k, the dot is the pool now",
      extra.includes(s) ? ` (${shortKey(s.pool)})` : "")));
  return h("section", { class: "card pair", dataset: { pair: `${pair.base}/${pair.quote}` } },
    h("h2", {}, `${pair.base} / ${pair.quote}`),
    h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": `${pair.base}/${pair.quote} pools` },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Venue"), h("th", { scope: "col" }, "Pool"),
        h("th", { scope: "col", class: "num" }, `Price per ${pair.base}`), h("th", { scope: "col" }, "Liquidity"),
        h("th", { scope: "col", class: "num" }, `Fee on 1 ${pair.base}`), h("th", { scope: "col", class: "num" }, "Impact"))),
      h("tbody", {}, rows))),
    pair.errors.length ? h("p", { class: "form-msg error" }, `Unavailable: ${pair.errors.map((e) => `${e.venue}: ${e.error}`).join("; ")}`) : "",
    h("div", { class: "charts" }, charts),
    poolTrades(pair, shownPools));
}

async function load() {
  try {
    const [markets, pools] = await Promise.all([getJson("/api/markets"), getJson("/api/markets/pools")]);
    const states = new Map(pools.pools.map((p) => [p.pool, p]));
    $("#markets-note").textContent = pools.unavailable
      ? `Charts: ${pools.unavailable}.`
      : `Pool state at slot ${pools.slot}; refreshed every ${REFRESH_MS / 1000} s.${pools.tradesUnavailable ? ` Pool trades: ${pools.tradesUnavailable}.` : ""}`;
    $("#markets-body").replaceChildren(...markets.pairs.map((p) => pairCard(p, states, pools.pools)));
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
      h("td", {}, venueLabel(o)))));
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
