// Order history: a table with filters (applied by the API), keyset paging, sorting within
// the page, CSV export of everything the filters match; open orders with cancel.

import { deleteJson, getJson } from "./api.js";
import { $, $$, badge, h, toast } from "./dom.js";
import { dateTime, errorText, errorTitle, pretty, shortKey, toUi, token, venueLabel } from "./format.js";
import { txLink } from "./order_view.js";

const CSV_MAX_ROWS = 10000;
const CONDITIONAL = new Set(["limit", "sniper"]);
const state = { cursors: [null], page: 0, rows: [], next: null, sort: { key: "submittedAt", dir: -1 } };
let deps = null;

function filterParams() {
  const f = $("#filters");
  const p = new URLSearchParams();
  for (const name of ["status", "type", "venue", "token"]) if (f[name].value) p.set(name, f[name].value);
  for (const name of ["from", "to"]) {
    if (f[name].value) p.set(name, new Date(f[name].value).toISOString());
  }
  return p;
}

function pair(o) {
  return `${o.tokenIn.symbol || shortKey(o.tokenIn.mint)} → ${o.tokenOut.symbol || shortKey(o.tokenOut.mint)}`;
}

const SORTERS = {
  submittedAt: (o) => Date.parse(o.submittedAt),
  type: (o) => o.type || "market",
  pair: pair,
  amountIn: (o) => BigInt(o.amountIn ?? 0),
  amountOut: (o) => BigInt(o.amountOut ?? -1),
  venue: (o) => venueLabel(o),
  status: (o) => o.status,
};

function sorted(rows) {
  const key = SORTERS[state.sort.key];
  return [...rows].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir;
  });
}

function row(o) {
  const sig = o.txHash;
  return h("tr", { dataset: { orderId: o.orderId, status: o.status } },
    h("td", {}, h("a", { href: `#/order/${o.orderId}` }, dateTime(o.submittedAt))),
    h("td", {}, o.type || "market"),
    h("td", {}, pair(o)),
    h("td", { class: "num" }, `${pretty(o.amountInUi)} ${o.tokenIn.symbol || ""}`),
    h("td", { class: "num" }, o.amountOutUi ? `${pretty(o.amountOutUi)} ${o.tokenOut.symbol || ""}` : "—"),
    h("td", {}, venueLabel(o)),
    h("td", { title: o.error ? errorText(o.error.code, o.error.message) : "" }, badge(o.status),
      o.error ? h("small", { class: "muted reason" }, ` ${errorTitle(o.error.code)}`) : ""),
    h("td", {}, sig ? txLink(sig, deps.info(), shortKey(sig, 6, 6)) : "—"));
}

function renderTable() {
  const rows = sorted(state.rows);
  $("#hist-rows").replaceChildren(...rows.map(row));
  const empty = $("#hist-empty");
  const filtered = [...filterParams().keys()].length > 0;
  empty.hidden = rows.length > 0;
  $("#hist-table").hidden = rows.length === 0;
  empty.textContent = filtered ? "No orders match these filters. Clear them to see every order."
    : "No orders yet. Make a swap on the Swap page, or POST /api/orders/execute.";
  $("#prev").disabled = state.page === 0;
  $("#next").disabled = !state.next;
  $("#page-info").textContent = rows.length ? `Page ${state.page + 1} · ${rows.length} orders` : "";
  for (const th of $$("#hist-table th")) {
    const b = th.querySelector("button");
    if (!b) continue;
    th.setAttribute("aria-sort", b.dataset.sort === state.sort.key
      ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
  }
}

async function loadPage() {
  const p = filterParams();
  p.set("limit", $("#filters").limit.value);
  const before = state.cursors[state.page];
  if (before) p.set("before", before);
  const err = $("#hist-error");
  try {
    const doc = await getJson(`/api/orders?${p}`);
    err.hidden = true;
    state.rows = doc.orders;
    state.next = doc.nextBefore;
  } catch (e) {
    err.hidden = false;
    err.textContent = e.message;
    state.rows = [];
    state.next = null;
  }
  renderTable();
}

// A status changed while the table is shown: the current page and the open orders again.
export function refreshHistory() {
  loadPage();
  loadOpen();
}

export function reloadHistory() {
  state.cursors = [null];
  state.page = 0;
  loadPage();
  loadOpen();
}

async function loadOpen() {
  let open = [];
  try {
    open = (await getJson("/api/orders?status=open&limit=100")).orders;
  } catch (_) {
    open = []; // an engine without conditional orders has no open ones
  }
  open = open.filter((o) => o.status === "open" && CONDITIONAL.has(o.type));
  $("#open-rows").replaceChildren(...open.map((o) => h("tr", { dataset: { orderId: o.orderId } },
    h("td", {}, h("a", { href: `#/order/${o.orderId}` }, dateTime(o.submittedAt))),
    h("td", {}, o.type),
    h("td", {}, pair(o)),
    h("td", { class: "num" }, `${pretty(o.amountInUi)} ${o.tokenIn.symbol || ""}`),
    h("td", {}, condition(o)),
    h("td", {}, o.expiresAt ? dateTime(o.expiresAt) : "—"),
    h("td", {}, h("button", { type: "button", class: "secondary danger",
                              "aria-label": `cancel order ${o.orderId}`,
                              onclick: (e) => cancel(o.orderId, e.target) }, "Cancel")))));
  $("#open-empty").hidden = open.length > 0;
  $("#open-rows").closest("table").hidden = open.length === 0;
}

function condition(o) {
  const out = token(o.tokenOut.mint);
  const terms = o.terms || {};
  const limit = terms.limit || {};
  const w = o.waiting && o.waiting.distance;
  const far = w && w.toTriggerBps !== null && w.toTriggerBps !== undefined
    ? ` · ${(w.toTriggerBps / 100).toFixed(2)}% away` : "";
  if (limit.minAmountOutUi) return `≥ ${pretty(limit.minAmountOutUi)} ${out.symbol}${far}`;
  return (o.waiting && o.waiting.condition) || "new pool";
}

async function cancel(orderId, button) {
  button.disabled = true;
  button.textContent = "Cancelling…";
  try {
    await deleteJson(`/api/orders/${encodeURIComponent(orderId)}`);
    toast("Cancel requested");
  } catch (e) {
    toast(`Cancel failed: ${e.message}`);
    button.disabled = false;
    button.textContent = "Cancel";
  }
}

function csvCell(v) {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(orders) {
  const cols = ["orderId", "submittedAt", "type", "status", "tokenIn", "tokenOut", "amountIn",
                "amountInUi", "amountOut", "amountOutUi", "expectedOut", "minOut", "venue",
                "route", "executedPrice", "txHash", "slot", "error"];
  const lines = [cols.join(",")];
  for (const o of orders) {
    lines.push([o.orderId, o.submittedAt, o.type || "market", o.status, o.tokenIn.symbol || o.tokenIn.mint,
                o.tokenOut.symbol || o.tokenOut.mint, o.amountIn, o.amountInUi, o.amountOut, o.amountOutUi,
                o.expectedOut, o.minOut, o.venue,
                o.route && o.route.legs.length > 1 ? venueLabel(o) : "", o.executedPrice, o.txHash, o.slot,
                o.error ? o.error.code : ""].map(csvCell).join(","));
  }
  return `${lines.join("\n")}\n`;
}

async function exportCsv() {
  const all = [];
  let before = null;
  do {
    const p = filterParams();
    p.set("limit", "200");
    if (before) p.set("before", before);
    const doc = await getJson(`/api/orders?${p}`);
    all.push(...doc.orders);
    before = doc.nextBefore;
  } while (before && all.length < CSV_MAX_ROWS);
  const url = URL.createObjectURL(new Blob([toCsv(all)], { type: "text/csv" }));
  const a = h("a", { href: url, download: `orderflow-orders-${new Date().toISOString().slice(0, 19)}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  toast(`Exported ${all.length} orders`);
}

export function initHistory(d) {
  deps = d;
  const f = $("#filters");
  f.addEventListener("change", reloadHistory);
  f.addEventListener("reset", () => setTimeout(reloadHistory));
  f.addEventListener("submit", (e) => e.preventDefault());
  $("#next").addEventListener("click", () => {
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    loadPage();
  });
  $("#prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    loadPage();
  });
  $("#csv").addEventListener("click", () => exportCsv().catch((e) => toast(`Export failed: ${e.message}`)));
  for (const b of $$("#hist-table th button")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : -1 };
      renderTable();
    });
  }
}
