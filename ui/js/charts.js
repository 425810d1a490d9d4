// Plain SVG charts: DLMM liquidity by bin, a CP-Swap curve with the pool's current point,
// and a throughput sparkline. Coordinates are floats; the numbers shown come from strings.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function frame(w, hgt, label) {
  return svg("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": label,
                      class: "chart-svg", preserveAspectRatio: "xMidYMid meet" });
}

const num = (s, decimals) => Number(s) / 10 ** decimals;

function compact(n) {
  if (!Number.isFinite(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

// Liquidity per bin in quote-token units: X above the price, Y below, the active bin marked.
export function dlmmChart(pool) {
  const W = 520, H = 230, L = 48, B = 34, T = 26;
  const dx = pool.x.decimals, dy = pool.y.decimals;
  const bins = pool.bins.map((b) => ({ id: b.binId, price: Number(b.price),
    x: num(b.amountX, dx), y: num(b.amountY, dy) }))
    .map((b) => ({ ...b, value: b.x * b.price + b.y }));
  const el = frame(W, H, `${pool.x.symbol}/${pool.y.symbol} DLMM liquidity by bin, active price ${pool.activePrice}`);
  if (!bins.length) return el;
  const max = Math.max(...bins.map((b) => b.value)) || 1;
  const bw = (W - L - 8) / bins.length;
  el.append(svg("line", { x1: L, y1: H - B, x2: W - 8, y2: H - B, class: "axis" }));
  el.append(svg("text", { x: L - 6, y: T + 4, class: "tick", "text-anchor": "end" }, compact(max)));
  el.append(svg("text", { x: L - 6, y: H - B, class: "tick", "text-anchor": "end" }, "0"));
  el.append(svg("text", { x: L, y: 12, class: "tick" }, `${pool.y.symbol} value per bin`));
  bins.forEach((b, i) => {
    const hgt = ((H - B - T) * b.value) / max;
    const cls = b.id === pool.activeId ? "bar active" : b.x > 0 ? "bar side-x" : "bar side-y";
    const rect = svg("rect", { x: L + i * bw + 0.5, y: H - B - hgt, width: Math.max(bw - 1, 1), height: hgt, class: cls });
    rect.append(svg("title", {}, `bin ${b.id} · price ${b.price} · ${compact(b.x)} ${pool.x.symbol} + ${compact(b.y)} ${pool.y.symbol}`));
    el.append(rect);
  });
  const at = (i, anchor) => svg("text", { x: L + i * bw + bw / 2, y: H - B + 14, class: "tick", "text-anchor": anchor },
                                Number(bins[i].price).toPrecision(5));
  const active = bins.findIndex((b) => b.id === pool.activeId);
  el.append(at(0, "start"), at(bins.length - 1, "end"));
  if (active >= 0) {
    el.append(at(active, "middle"));
    el.append(svg("text", { x: L + active * bw + bw / 2, y: H - 4, class: "tick strong", "text-anchor": "middle" },
                  `active ${pool.y.symbol}/${pool.x.symbol}`));
  }
  return el;
}

// x·y = k through the pool's reserves, from a third to three times its X reserve.
export function cpmmChart(pool) {
  const W = 520, H = 230, L = 56, B = 34, T = 26, R = 10;
  const rx = num(pool.reserveX, pool.x.decimals);
  const ry = num(pool.reserveY, pool.y.decimals);
  const k = rx * ry;
  const x0 = rx / 3, x1 = rx * 3;
  const yMax = k / x0;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - (y / yMax) * (H - B - T);
  const el = frame(W, H, `${pool.x.symbol}/${pool.y.symbol} CP-Swap curve, reserves ${compact(rx)} ${pool.x.symbol} and ${compact(ry)} ${pool.y.symbol}`);
  const pts = [];
  for (let i = 0; i <= 80; i++) {
    const x = x0 * (x1 / x0) ** (i / 80);
    pts.push(`${sx(x).toFixed(1)},${sy(k / x).toFixed(1)}`);
  }
  el.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
            svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
            svg("polyline", { points: pts.join(" "), class: "curve" }),
            svg("line", { x1: sx(rx), y1: sy(ry), x2: sx(rx), y2: H - B, class: "guide" }),
            svg("line", { x1: L, y1: sy(ry), x2: sx(rx), y2: sy(ry), class: "guide" }),
            svg("circle", { cx: sx(rx), cy: sy(ry), r: 5, class: "point" }),
            svg("text", { x: sx(rx) + 8, y: sy(ry) - 8, class: "tick strong" },
                `${compact(rx)} ${pool.x.symbol} · ${compact(ry)} ${pool.y.symbol}`),
            svg("text", { x: W - R, y: H - 6, class: "tick", "text-anchor": "end" }, `${pool.x.symbol} reserve →`),
            svg("text", { x: L - 6, y: T + 4, class: "tick", "text-anchor": "end" }, compact(yMax)),
            svg("text", { x: L, y: 12, class: "tick" }, `↑ ${pool.y.symbol} reserve`),
            svg("text", { x: L, y: H - B + 14, class: "tick" }, compact(x0)),
            svg("text", { x: W - R, y: H - B + 14, class: "tick", "text-anchor": "end" }, compact(x1)));
  return el;
}

// Two series per second (submitted, confirmed) over the last `seconds`.
export function sparkline(submitted, confirmed) {
  const W = 1100, H = 170, L = 34, B = 20, T = 10;
  const n = submitted.length;
  const max = Math.max(1, ...submitted, ...confirmed);
  const sx = (i) => L + (i / Math.max(n - 1, 1)) * (W - L - 6);
  const sy = (v) => H - B - (v / max) * (H - B - T);
  const line = (vals, cls) => svg("polyline", { class: cls,
    points: vals.map((v, i) => `${sx(i).toFixed(1)},${sy(v).toFixed(1)}`).join(" ") });
  const el = frame(W, H, `orders per second over the last ${n} seconds, peak ${max}`);
  el.append(svg("line", { x1: L, y1: H - B, x2: W - 6, y2: H - B, class: "axis" }),
            svg("text", { x: L - 4, y: T + 6, class: "tick", "text-anchor": "end" }, String(max)),
            svg("text", { x: L - 4, y: H - B, class: "tick", "text-anchor": "end" }, "0"),
            svg("text", { x: L, y: H - 4, class: "tick" }, `-${n}s`),
            svg("text", { x: W - 6, y: H - 4, class: "tick", "text-anchor": "end" }, "now"),
            line(submitted, "spark-sub"), line(confirmed, "spark-conf"));
  return el;
}
