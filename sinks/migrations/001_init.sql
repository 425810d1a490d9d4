-- orders: current state of each order (one row, moved only forward by rank).
-- order_events: append-only history, one row per distinct status event (event_id is deterministic).
CREATE TABLE IF NOT EXISTS orders (
    order_id            text PRIMARY KEY,
    status              text NOT NULL CHECK (status IN ('pending','routing','building','submitted','confirmed','failed')),
    rank                integer NOT NULL,
    attempt             integer NOT NULL DEFAULT 1,
    source              text NOT NULL,
    token_in            text NOT NULL,
    token_out           text NOT NULL,
    amount_in           numeric(20,0) NOT NULL CHECK (amount_in > 0),
    slippage_bps        integer NOT NULL,
    client_ref          text,
    venue               text CHECK (venue IN ('raydium','meteora')),
    quotes              jsonb,
    expected_out        numeric(20,0),
    min_out             numeric(20,0),
    tx_signature        text,
    slot                bigint,
    amount_in_actual    numeric(20,0),
    amount_out          numeric(20,0),
    executed_price      numeric,
    error_code          text,
    error_message       text,
    submitted_at        timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_submitted_at_idx ON orders (submitted_at DESC, order_id DESC);

CREATE TABLE IF NOT EXISTS order_events (
    event_id    text PRIMARY KEY,
    order_id    text NOT NULL,
    status      text NOT NULL,
    attempt     integer NOT NULL,
    rank        integer NOT NULL,
    ts          timestamptz NOT NULL,
    data        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS order_events_order_idx ON order_events (order_id, rank, ts);
