-- The executor's journal: the one place that decides whether a transaction may be sent.
-- executions: one row per order, owned by at most one live worker at a time (lease).
-- broadcasts: every signed transaction, written BEFORE it is sent; a new transaction for an
-- order is built only when every earlier one is provably expired and absent.
CREATE TABLE IF NOT EXISTS executions (
    order_id        text PRIMARY KEY,
    command         jsonb NOT NULL,
    attempt         integer NOT NULL DEFAULT 1,
    status          text NOT NULL,
    terminal        boolean NOT NULL DEFAULT false,
    retry_due_at    timestamptz,
    error_code      text,
    error_message   text,
    owner           text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS broadcasts (
    signature               text PRIMARY KEY,
    order_id                text NOT NULL REFERENCES executions (order_id),
    attempt                 integer NOT NULL,
    tx                      bytea NOT NULL,
    last_valid_block_height bigint NOT NULL,
    venue                   text NOT NULL,
    expected_out            numeric(20,0) NOT NULL,
    min_out                 numeric(20,0) NOT NULL,
    outcome                 text,  -- null while open; 'landed' or 'expired' once known
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS broadcasts_order_idx ON broadcasts (order_id, created_at);
