-- api_keys: bearer keys of the HTTP/WebSocket API (ingress/api_keys.py, ingress/auth.py),
-- created by `orderflow keys create` and shown once.
--
-- key_id       the token's public part (ofk_<key_id>_<secret>): finds the row.
-- secret_hash  sha256 of the token's secret (32 random bytes): the secret is never stored.
-- scope        'read' (orders, quotes, markets, wallet, status streams) or 'trade' (also submit).
-- rate_per_s / burst  the key's token bucket (429 with Retry-After beyond it).
-- revoked_at   set by `orderflow keys revoke`: the key stops working (within the ingress's
--              key cache, a few seconds); the row stays so its orders stay attributed.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    scope        text NOT NULL CHECK (scope IN ('read', 'trade')),
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    rate_per_s   double precision NOT NULL CHECK (rate_per_s > 0),
    burst        integer NOT NULL CHECK (burst >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
-- One live key per name; a revoked key's name may be reused.
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name_idx ON api_keys (name)
    WHERE revoked_at IS NULL;

-- api_key_orders: which key submitted which order (a key sees only its own orders).
-- Written by the ingress before the order is produced, so an accepted order is always
-- attributed; a row whose order never reached the broker names no order and is harmless.
CREATE TABLE IF NOT EXISTS api_key_orders (
    order_id    text PRIMARY KEY,
    key_id      text NOT NULL REFERENCES api_keys (key_id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_key_orders_key_idx ON api_key_orders (key_id, order_id);
