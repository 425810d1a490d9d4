// Live throughput from the status feed: orders/s submitted and confirmed, p50/p99
// submit -> confirmed, venue share and failures by reason, over the last minute.

import { $, h } from "./dom.js";
import { errorTitle, seconds } from "./format.js";
import { sparkline } from "./charts.js";
import { TERMINAL } from "./store.js";

const WINDOW_MS = 60_000;
const RATE_MS = 5_000; // orders/s are averaged over the last 5 s
const samples = []; // {kind: "sub"|"conf"|"fail", at, latency?, venue?, code?}
let timer = null;
let store = null;
let connState = "connecting";

export function record(ev) {
  const at = Date.parse(ev.ts);
  if (ev.status === "pending" && ev.attempt === 1) samples.push({ kind: "sub", at });
  else if (ev.status === "confirmed") {
    const legs = (ev.data.route && ev.data.route.legs) || [];
    samples.push({ kind: "conf", at, latency: at - Date.parse(ev.order.submittedAt),
                   venues: legs.length ? legs.map((l) => [l.venue, l.fractionBps / 10000])
                                       : [[ev.data.venue || "unknown", 1]] });
  } else if (ev.status === "failed") samples.push({ kind: "fail", at, code: ev.data.code || "unknown" });
}

export function setConnState(s) {
  connState = s;
}

export function quantile(sortedValues, q) {
  if (!sortedValues.length) return null;
  const i = Math.min(sortedValues.length - 1, Math.ceil(q * sortedValues.length) - 1);
  return sortedValues[Math.max(0, i)];
}

export function stats(now = Date.now()) {
  while (samples.length && samples[0].at < now - WINDOW_MS * 2) samples.shift();
  const recent = samples.filter((s) => s.at >= now - WINDOW_MS && s.at <= now + 1000);
  const rate = (kind) => recent.filter((s) => s.kind === kind && s.at >= now - RATE_MS).length / (RATE_MS / 1000);
  const conf = recent.filter((s) => s.kind === "conf");
  const lat = conf.map((s) => s.latency).sort((a, b) => a - b);
  const share = new Map();
  for (const c of conf) for (const [v, f] of c.venues) share.set(v, (share.get(v) || 0) + f);
  const fails = new Map();
  for (const f of recent.filter((s) => s.kind === "fail")) fails.set(f.code, (fails.get(f.code) || 0) + 1);
  const buckets = (kind) => Array.from({ length: 60 }, (_, i) => {
    const end = now - (59 - i) * 1000;
    return recent.filter((s) => s.kind === kind && s.at > end - 1000 && s.at <= end).length;
  });
  return { submitted: rate("sub"), confirmed: rate("conf"), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99),
           total: conf.length, share, fails, subSeries: buckets("sub"), confSeries: buckets("conf") };
}

function render() {
  const s = stats();
  $("#t-sub").textContent = s.submitted.toFixed(1);
  $("#t-conf").textContent = s.confirmed.toFixed(1);
  $("#t-p50").textContent = seconds(s.p50);
  $("#t-p99").textContent = seconds(s.p99);
  $("#t-total").textContent = String(s.total);
  let flight = 0;
  for (const e of store.orders.values()) if (!TERMINAL.has(e.status) && e.status !== "open") flight += 1;
  $("#t-flight").textContent = String(flight);
  $("#live-note").textContent = connState === "live"
    ? "Counted from the live status feed over the last 60 s. The Grafana dashboard is the production view."
    : `Paused: the status feed is ${connState}. Numbers resume when it is live again.`;
  $("#spark").replaceChildren(sparkline(s.subSeries, s.confSeries),
    h("p", { class: "legend" }, h("span", { class: "key key-sub" }), "submitted  ",
      h("span", { class: "key key-conf" }), "confirmed"));
  const total = [...s.share.values()].reduce((a, b) => a + b, 0);
  $("#share").replaceChildren(...[...s.share].sort((a, b) => b[1] - a[1]).map(([v, n]) => h("div", { class: "share-row" },
    h("span", { class: "share-name" }, v),
    h("span", { class: "share-bar" }, h("span", { class: `share-fill venue-${v}`, style: `width:${(100 * n) / total}%` })),
    h("span", { class: "num" }, `${((100 * n) / total).toFixed(0)}%`))));
  $("#share-empty").hidden = total > 0;
  $("#fail-rows").replaceChildren(...[...s.fails].sort((a, b) => b[1] - a[1]).map(([code, n]) => h("tr", {},
    h("th", { scope: "row", title: code }, errorTitle(code)), h("td", { class: "num" }, String(n)))));
  $("#fail-empty").hidden = s.fails.size > 0;
}

export function initLive(d) {
  store = d.store;
  store.subscribe((_entry, ev) => record(ev));
}

export function showLive() {
  hideLive();
  render();
  timer = setInterval(render, 1000);
}

export function hideLive() {
  clearInterval(timer);
  timer = null;
}
