// The API as the page calls it: JSON in and out, an optional API key, idempotent submits.
//
// The API key (needed when the ingress listens beyond loopback) is kept in this browser's
// localStorage. It goes as `Authorization: Bearer` on every fetch, and on the WebSocket,
// which a browser cannot give headers, as the subprotocol `bearer.<key>` beside
// `orderflow` (the server answers `orderflow`); never in a URL.

const KEY_STORE = "orderflow.apiKey";
export const KEY_PATTERN = /^ofk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/;
const unauthorized = new Set();

function storage() {
  try {
    return globalThis.localStorage || null;
  } catch (_) {
    return null; // storage disabled: the page works on loopback without a key
  }
}

export function apiKey() {
  const store = storage();
  return store ? store.getItem(KEY_STORE) : null;
}

export function setApiKey(key) {
  const store = storage();
  if (!store) return;
  if (key) store.setItem(KEY_STORE, key);
  else store.removeItem(KEY_STORE);
}

// The WebSocket subprotocols that carry the key (none without one).
export function wsProtocols(key = apiKey()) {
  return key ? ["orderflow", `bearer.${key}`] : [];
}

// fn(error) on every 401 answer: the ingress wants a (valid) key.
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

function checkAuth(status, error) {
  if (status === 401) for (const fn of unauthorized) fn(error || {});
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error && error.code;
    this.field = error && error.field;
  }
}

// GET a JSON document; a non-2xx answer throws ApiError with the API's error shape.
export async function getJson(path, { signal } = {}) {
  const resp = await fetch(path, { headers: headers(), signal });
  const doc = await resp.json().catch(() => ({}));
  checkAuth(resp.status, doc.error);
  if (!resp.ok) throw new ApiError(resp.status, doc.error);
  return doc;
}

export async function deleteJson(path) {
  const resp = await fetch(path, { method: "DELETE", headers: headers() });
  const doc = await resp.json().catch(() => ({}));
  checkAuth(resp.status, doc.error);
  if (!resp.ok) throw new ApiError(resp.status, doc.error);
  return doc;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10000;

// Delay before retry `attempt` (0-based): exponential, capped, "equal jitter" (half fixed,
// half random) so a restarted ingress is not hit by every tab at once.
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

// A new idempotency key per order the user submits; retries of that submission reuse it,
// so a retry after a timeout or a 503 can never create a second order.
export function newIdempotencyKey() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") {
    return globalThis.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const RETRIABLE = new Set([409, 429, 502, 503, 504]);

// POST the order with one Idempotency-Key, retrying network errors and transient statuses.
// Returns {status, doc, key, attempts}; status 0 means the network never answered.
export async function submitOrder(body, opts = {}) {
  const fetchImpl = opts.fetchImpl || fetch;
  const sleep = opts.sleep || ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const maxAttempts = opts.maxAttempts || 4;
  const key = opts.key || newIdempotencyKey();
  const onRetry = opts.onRetry || (() => {});
  let last = { status: 0, doc: { error: { message: "network error" } } };
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    try {
      const resp = await fetchImpl("/api/orders/execute", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", "Idempotency-Key": key }),
        body: JSON.stringify(body),
      });
      const doc = await resp.json().catch(() => ({}));
      checkAuth(resp.status, doc.error);
      last = { status: resp.status, doc };
      if (!RETRIABLE.has(resp.status)) return { ...last, key, attempts: attempt };
    } catch (err) {
      last = { status: 0, doc: { error: { message: `Network error: ${err.message}` } } };
    }
    if (attempt < maxAttempts) {
      onRetry(attempt);
      await sleep(backoffDelay(attempt - 1));
    }
  }
  return { ...last, key, attempts: maxAttempts };
}

// Runs `load(signal)` for the latest call only: a newer call aborts the one in flight, so a
// slow answer for an old amount can never overwrite the quote for the new one.
export function latest(load) {
  let controller = null;
  return async (...args) => {
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    try {
      return { value: await load(mine.signal, ...args), stale: false };
    } catch (err) {
      if (mine.signal.aborted) return { stale: true };
      throw err;
    } finally {
      if (controller === mine) controller = null;
    }
  };
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
