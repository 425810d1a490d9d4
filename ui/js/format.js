// Exact amounts for people: base units (integer strings) <-> decimal strings, with BigInt.
// Floats appear only in chart coordinates and rates shown, never in an amount sent.

export const TOKENS = {
  SOL: { symbol: "SOL", mint: "So11111111111111111111111111111111111111112", decimals: 9 },
  USDC: { symbol: "USDC", mint: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", decimals: 6 },
  USDT: { symbol: "USDT", mint: "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", decimals: 6 },
};
const BY_MINT = Object.fromEntries(Object.values(TOKENS).map((t) => [t.mint, t]));

// A token by symbol or mint; unknown mints keep their address as the name.
export function token(key) {
  if (!key) return { symbol: "?", mint: "", decimals: null };
  return TOKENS[key] || BY_MINT[key] || { symbol: `${key.slice(0, 4)}…`, mint: key, decimals: null };
}

// Base units -> exact decimal string (trailing zeros dropped).
export function toUi(amount, decimals) {
  if (amount === null || amount === undefined || decimals === null || decimals === undefined) {
    return amount === null || amount === undefined ? "—" : String(amount);
  }
  let base = BigInt(amount);
  const sign = base < 0n ? "-" : "";
  if (base < 0n) base = -base;
  const scale = 10n ** BigInt(decimals);
  const frac = (base % scale).toString().padStart(decimals, "0").replace(/0+$/, "");
  return `${sign}${base / scale}${frac ? `.${frac}` : ""}`;
}

// A decimal string as typed -> base units (BigInt), or an error message.
export function parseAmount(text, decimals) {
  const s = String(text ?? "").trim().replace(/,/g, "");
  if (s === "") return { empty: true };
  if (!/^\d*\.?\d*$/.test(s) || s === ".") return { error: "Type a number, like 0.25" };
  const [whole, frac = ""] = s.split(".");
  if (frac.length > decimals) return { error: `At most ${decimals} decimals` };
  const base = BigInt(whole || "0") * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, "0") || "0");
  if (base === 0n) return { error: "The amount must be more than 0" };
  return { base };
}

// Group thousands and cut to `digits` fraction digits for display (input is a decimal string).
export function pretty(text, digits = 6) {
  if (text === null || text === undefined || text === "—") return "—";
  const s = String(text);
  const neg = s.startsWith("-");
  const [whole, frac = ""] = (neg ? s.slice(1) : s).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const cut = frac.slice(0, digits).replace(/0+$/, "");
  return `${neg ? "-" : ""}${grouped}${cut ? `.${cut}` : ""}`;
}

export function pct(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return `${n < 0.01 && n > 0 ? "<0.01" : n.toFixed(digits)}%`;
}

export function bps(value) {
  if (value === null || value === undefined) return "—";
  return `${value > 0 ? "+" : ""}${value} bps`;
}

// Where an order traded: its venue, or for a split both legs with their share of the input
// ("split: meteora 88% / raydium 12%"); the order's own `venue` is only the larger leg's.
export function venueLabel(order) {
  const legs = (order && order.route && order.route.legs) || [];
  if (legs.length < 2) return (order && order.venue) || (legs[0] && legs[0].venue) || "—";
  const share = (b) => `${b % 100 === 0 ? b / 100 : (b / 100).toFixed(1)}%`;
  return `split: ${[...legs].sort((x, y) => y.fractionBps - x.fractionBps)
    .map((l) => `${l.venue} ${share(l.fractionBps)}`).join(" / ")}`;
}

export function shortKey(key, head = 4, tail = 4) {
  if (!key) return "—";
  return key.length > head + tail + 1 ? `${key.slice(0, head)}…${key.slice(-tail)}` : key;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "—";
}

export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}`;
}

export function seconds(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// The difference of `actual` against `expected` (base-unit strings) in whole bps.
export function diffBps(actual, expected) {
  if (actual === null || actual === undefined || !expected || BigInt(expected) === 0n) return null;
  return Number(((BigInt(actual) - BigInt(expected)) * 10000n) / BigInt(expected));
}

// Failure codes a person can read at a glance; the message has the numbers.
const ERROR_TITLES = {
  price_impact_too_high: "Price impact too high",
  quote_deviation: "Quote deviates from the market",
  slippage_exceeded: "Price moved past the slippage tolerance",
  insufficient_funds: "Insufficient funds",
  no_route: "No venue can fill this order",
  transaction_failed: "Transaction failed on chain",
  transaction_expired: "Transaction expired",
};

export function errorText(code, message) {
  const title = ERROR_TITLES[code];
  if (!title) return message ? `${code}: ${message}` : String(code);
  return message ? `${title}: ${message} (${code})` : `${title} (${code})`;
}

export function errorTitle(code) {
  return ERROR_TITLES[code] || code || "unknown";
}
