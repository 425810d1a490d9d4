-- worker_heartbeats: every executor/sinks worker writes its row every few seconds, so
-- readiness (the ingress's /healthz) can say whether any worker will move an order.
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    worker_id   text PRIMARY KEY,
    roles       text[] NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    stopping    boolean NOT NULL DEFAULT false
);

-- executions.final_event: the terminal status event exactly as published (same eventId),
-- so whoever meets a terminal order again (redelivery, the read-model reconciler)
-- re-publishes the journal's truth instead of recomputing it.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS final_event jsonb;
CREATE INDEX IF NOT EXISTS executions_terminal_updated_idx
    ON executions (updated_at) WHERE terminal;
