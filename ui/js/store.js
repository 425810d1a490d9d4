// Every order the page has heard of, kept from the live feed: one place the views read, so
// the swap panel, the order page and the throughput view never disagree.

export const STEPS = ["pending", "open", "triggered", "routing", "building", "submitted"];
export const TERMINAL = new Set(["confirmed", "failed", "expired", "cancelled"]);
const MAX_ORDERS = 2000;

function rank(status, attempt) {
  if (TERMINAL.has(status)) return 1e6;
  return attempt * 10 + STEPS.indexOf(status);
}

export function createStore() {
  const orders = new Map(); // orderId -> {orderId, order, events, status, rank, lastEventId}
  const listeners = new Set();
  return {
    orders,
    // Apply one status event (each eventId once: the feed de-duplicates).
    apply(ev) {
      let entry = orders.get(ev.orderId);
      if (!entry) {
        entry = { orderId: ev.orderId, order: ev.order, events: [], status: null, rank: -1,
                  lastEventId: null, mine: false };
        orders.set(ev.orderId, entry);
        while (orders.size > MAX_ORDERS) orders.delete(orders.keys().next().value);
      }
      entry.events.push(ev);
      const r = rank(ev.status, ev.attempt);
      if (r > entry.rank) {
        entry.rank = r;
        entry.status = ev.status;
        entry.lastEventId = ev.eventId;
      }
      for (const fn of listeners) fn(entry, ev);
    },
    markMine(orderId) {
      const entry = orders.get(orderId);
      if (entry) entry.mine = true;
      return entry;
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    inFlight() {
      const out = [];
      for (const [orderId, e] of orders) {
        if (!TERMINAL.has(e.status)) out.push({ orderId, after: e.lastEventId });
      }
      return out;
    },
  };
}
