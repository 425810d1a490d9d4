// The page: one store of orders fed by one WebSocket, and views chosen by the URL hash
// (#/swap, #/orders, #/markets, #/live, #/order/<id>, #/tx/<signature>).

import { debounce, getJson, wsProtocols } from "./api.js";
import { $, $$, copy } from "./dom.js";
import { createFeed } from "./feed.js";
import { initKey } from "./key.js";
import { hideLive, initLive, setConnState, showLive } from "./live.js";
import { hideMarkets, showMarkets } from "./markets.js";
import { initHistory, refreshHistory, reloadHistory } from "./history.js";
import { hideOrder, showOrder } from "./order_view.js";
import { createStore, TERMINAL } from "./store.js";
import { enableTypes, initSwap, loadWallet, renderRecent } from "./swap.js";
import { showTx } from "./tx_view.js";

const store = createStore();
let info = null;
let lastRoute = "#/swap";
const deps = { store, pending: new Set(), info: () => info };

const CONN_LABELS = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" };

function startFeed() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const conn = $("#conn");
  const feed = createFeed({
    url: `${scheme}://${location.host}/api/orders/ws`,
    protocols: () => wsProtocols(),
    WebSocketImpl: WebSocket,
    setTimer: (fn, ms) => setTimeout(fn, ms),
    random: Math.random,
    onEvent: (ev) => store.apply(ev),
    onState: (s) => {
      conn.textContent = CONN_LABELS[s];
      conn.className = `pill ${s === "live" ? "conn-up" : "conn-down"}`;
      conn.dataset.state = s;
      setConnState(s);
    },
    followed: () => store.inFlight(),
  });
  feed.start();
  window.addEventListener("online", () => feed.nudge());
}

// Which order types this ingress takes, from its OpenAPI document (market always).
async function orderTypes() {
  try {
    const doc = await getJson("/api/openapi.json");
    const found = new Set(["market"]);
    for (const schema of Object.values((doc.components && doc.components.schemas) || {})) {
      const t = schema && schema.properties && schema.properties.type;
      if (t && Array.isArray(t.enum) && t.enum.includes("market")) t.enum.forEach((x) => found.add(x));
    }
    return [...found];
  } catch (_) {
    return ["market"];
  }
}

function route() {
  const hash = location.hash || "#/swap";
  const [, view, arg] = hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) || [null, "swap", null];
  const known = ["swap", "orders", "markets", "live", "order", "tx"];
  const name = known.includes(view) ? view : "swap";
  for (const s of $$("[data-view]")) s.hidden = s.dataset.view !== name;
  const navName = name === "order" || name === "tx" ? "orders" : name;
  for (const a of $$("[data-nav]")) {
    if (a.dataset.nav === navName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  hideOrder();
  hideMarkets();
  hideLive();
  if (name === "order") showOrder(decodeURIComponent(arg || ""), deps);
  else if (name === "tx") showTx(decodeURIComponent(arg || ""), lastRoute.startsWith("#/order/") ? lastRoute : null);
  else if (name === "orders") reloadHistory();
  else if (name === "markets") showMarkets();
  else if (name === "live") showLive();
  document.title = `orderflow · ${name === "tx" ? "transaction" : name}`;
  lastRoute = hash;
}

document.addEventListener("DOMContentLoaded", async () => {
  const key = initKey();
  initSwap(deps);
  initHistory(deps);
  initLive(deps);
  const refresh = debounce(refreshHistory, 700); // the sink writes a moment after the feed
  store.subscribe((entry, ev) => {
    if (!$("[data-view=orders]").hidden) refresh();
    if (deps.pending.has(entry.orderId)) {
      renderRecent();
      if (TERMINAL.has(ev.status)) loadWallet();
    }
  });
  $("#wallet-btn").addEventListener("click", (e) => {
    if (e.currentTarget.dataset.address) copy(e.currentTarget.dataset.address, "Wallet address copied");
  });
  window.addEventListener("hashchange", () => {
    route();
    $("#view").focus({ preventScroll: true });
  });
  route();
  startFeed();
  loadWallet();
  getJson("/api/info").then((i) => {
    info = i;
    key.required(i.apiKeys === "required");
    const pill = $("#cluster");
    pill.textContent = i.cluster;
    pill.hidden = false;
  }).catch(() => {});
  enableTypes(await orderTypes());
});
