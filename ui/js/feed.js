// One WebSocket follows every order. When it drops (an ingress restart, a network blip) it
// reconnects with exponential back-off and jitter; the server replays recent history on
// every (re)subscription, and each order still in flight is re-subscribed with `after` = the
// last eventId we have, so nothing missed is lost. Events are de-duplicated by eventId
// (deterministic: orderId:attempt:status) before they are applied.

import { backoffDelay } from "./api.js";

// A bounded set of eventIds already seen (oldest forgotten first).
export function createSeen(limit = 20000) {
  const ids = new Set();
  return {
    firstTime(id) {
      if (ids.has(id)) return false;
      ids.add(id);
      if (ids.size > limit) ids.delete(ids.values().next().value);
      return true;
    },
    get size() {
      return ids.size;
    },
  };
}

// The live feed, with its outside world injected (the browser's, or a test's):
//   url            WebSocket URL (all orders)
//   protocols()    subprotocols to offer on each connection ([] none; the API key's, see api.js)
//   WebSocketImpl  constructor with the browser WebSocket interface
//   setTimer       (fn, ms) => void
//   random         () => [0, 1)
//   onEvent(ev)    a status event, called once per eventId
//   onState(s)     "connecting" | "live" | "reconnecting"
//   followed()     [{orderId, after}] orders to re-subscribe after a reconnect
export function createFeed(opts) {
  const seen = createSeen();
  let attempt = 0;
  let ws = null;
  let stopped = false;
  let connections = 0;
  let scheduled = 0; // id of the pending reconnect (0: none)
  let nextId = 1;

  function connect() {
    if (stopped) return;
    connections += 1;
    const reconnecting = connections > 1;
    opts.onState(reconnecting ? "reconnecting" : "connecting");
    const protocols = opts.protocols ? opts.protocols() : [];
    ws = protocols.length ? new opts.WebSocketImpl(opts.url, protocols)
      : new opts.WebSocketImpl(opts.url);
    ws.onmessage = (msg) => {
      let m;
      try {
        m = JSON.parse(msg.data);
      } catch (_) {
        return;
      }
      if (m.type === "status") {
        if (seen.firstTime(m.eventId)) opts.onEvent(m);
      } else if (m.type === "subscribed" && m.all) {
        attempt = 0; // the server answered with its backlog: this connection works
        opts.onState("live");
        if (reconnecting) resubscribe(ws);
      } else if (m.type === "error") {
        console.warn("orderflow:", m.error);
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      opts.onState("reconnecting");
      const delay = backoffDelay(attempt, opts.random);
      attempt += 1;
      const id = nextId++;
      scheduled = id;
      opts.setTimer(() => {
        if (scheduled !== id) return; // nudged meanwhile
        scheduled = 0;
        connect();
      }, delay);
    };
  }

  function resubscribe(socket) {
    for (const { orderId, after } of opts.followed()) {
      const msg = { action: "subscribe", orderId };
      if (after) msg.after = after;
      socket.send(JSON.stringify(msg));
    }
  }

  return {
    start: connect,
    stop() {
      stopped = true;
      if (ws) ws.close();
    },
    // Reconnect now (the browser came back online) instead of waiting for the timer.
    nudge() {
      if (!scheduled || stopped) return;
      scheduled = 0;
      attempt = 0;
      connect();
    },
    get attempt() {
      return attempt;
    },
  };
}
