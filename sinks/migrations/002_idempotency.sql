-- idempotency_keys: one row per Idempotency-Key a client sent to POST /api/orders/execute
-- (or as "idempotencyKey" in the first message of WS /api/orders/execute).
--
-- fingerprint  sha256 (hex) of the canonical JSON of the validated request (mints, amount in
--              base units, slippage, clientRef): the same key with another fingerprint is a 422.
-- command      the ExecuteOrder v1 this key stands for, so a retry re-produces the same orderId
--              (and the same submittedAt) after a failed or interrupted produce.
-- produced_at  null while reserved, set once the broker acknowledged the order on `orders`.
-- expires_at   created_at + 24 hours (set by ingress): an expired key is forgotten, and the same
--              key then starts a new order. Ingress deletes expired rows periodically.
--
-- Concurrency: the row is inserted (ON CONFLICT DO NOTHING) and committed before anything is
-- produced; the produce itself runs under SELECT ... FOR UPDATE of the row, so concurrent
-- requests with one key wait for each other and exactly one of them produces.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key          text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 128),
    fingerprint  text NOT NULL,
    order_id     text NOT NULL,
    command      jsonb NOT NULL,
    produced_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_idx ON idempotency_keys (expires_at);
