-- Cancel against execution, decided in one place. order_fates holds at most one row per
-- order: 'executing' once a transaction of it was recorded, 'cancelled' once a cancel won.
-- Whoever inserts the row first wins (the primary key makes a concurrent insert wait for
-- the first to commit); both functions also lock the order's executions row when it
-- exists, so a cancel and a broadcast record are serialised either way. A cancel may still
-- win over 'executing' when every recorded transaction is provably dead (expired or
-- rejected) and the order is not terminal.
CREATE TABLE IF NOT EXISTS order_fates (
    order_id      text PRIMARY KEY,
    fate          text NOT NULL CHECK (fate IN ('executing', 'cancelled')),
    reason        text,
    source        text,
    requested_at  timestamptz,
    decided_at    timestamptz NOT NULL DEFAULT now()
);

-- The read model shows the new states (and the order's type and expiry).
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'open', 'triggered', 'routing', 'building', 'submitted', 'confirmed',
     'failed', 'expired', 'cancelled'));
ALTER TABLE orders ADD COLUMN IF NOT EXISTS order_type text NOT NULL DEFAULT 'market'
    CHECK (order_type IN ('market', 'limit', 'sniper'));
ALTER TABLE orders ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS terms jsonb;
CREATE INDEX IF NOT EXISTS orders_status_type_idx
    ON orders (status, order_type, submitted_at DESC, order_id DESC);

-- The cancel that won for an order, as JSON (reason, source, requested_at_ms), or NULL.
CREATE OR REPLACE FUNCTION journal_cancel_json(p_order_id text)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'reason', coalesce(f.reason, 'cancelled'), 'source', coalesce(f.source, 'kafka'),
        'requested_at_ms',
        floor(extract(epoch FROM coalesce(f.requested_at, f.decided_at)) * 1000)::bigint)
      FROM order_fates f WHERE f.order_id = p_order_id AND f.fate = 'cancelled'
$$;

-- Returns 'cancelled' (won now or before) or 'refused <why>'.
CREATE OR REPLACE FUNCTION journal_cancel(
    p_order_id text, p_reason text, p_source text, p_requested_at timestamptz)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_exec  record;
    v_fate  text;
    v_live  record;
BEGIN
    SELECT status, terminal INTO v_exec FROM executions WHERE order_id = p_order_id
       FOR UPDATE;
    IF FOUND AND v_exec.terminal AND v_exec.status <> 'cancelled' THEN
        RETURN 'refused the order is already ' || v_exec.status;
    END IF;
    INSERT INTO order_fates (order_id, fate, reason, source, requested_at)
    VALUES (p_order_id, 'cancelled', p_reason, p_source, p_requested_at)
    ON CONFLICT (order_id) DO NOTHING;
    IF FOUND THEN
        RETURN 'cancelled';
    END IF;
    SELECT fate INTO v_fate FROM order_fates WHERE order_id = p_order_id;
    IF v_fate = 'cancelled' THEN
        RETURN 'cancelled';
    END IF;
    SELECT signature, outcome INTO v_live FROM broadcasts
     WHERE order_id = p_order_id AND (outcome IS NULL OR outcome = 'landed')
     ORDER BY created_at LIMIT 1;
    IF FOUND THEN
        RETURN 'refused the order''s transaction ' || v_live.signature || ' was sent ('
               || coalesce(v_live.outcome, 'open') || ') and may land';
    END IF;
    UPDATE order_fates SET fate = 'cancelled', reason = p_reason, source = p_source,
           requested_at = p_requested_at, decided_at = now()
     WHERE order_id = p_order_id;
    RETURN 'cancelled';
END
$$;

-- journal_record_broadcast (migration 004) plus the fate: a cancel that won refuses the
-- transaction ('cancelled'), and a recorded transaction makes later cancels lose.
CREATE OR REPLACE FUNCTION journal_record_broadcast(
    p_order_id text, p_owner text, p_signature text, p_attempt integer, p_tx bytea,
    p_last_valid_block_height bigint, p_venue text, p_expected_out numeric,
    p_min_out numeric)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_owner text;
    v_live  record;
    v_fate  text;
BEGIN
    SELECT owner INTO v_owner FROM executions
     WHERE order_id = p_order_id AND NOT terminal FOR UPDATE;
    IF NOT FOUND OR v_owner IS DISTINCT FROM p_owner THEN
        RETURN 'lease_lost';
    END IF;
    INSERT INTO order_fates (order_id, fate) VALUES (p_order_id, 'executing')
    ON CONFLICT (order_id) DO NOTHING;
    SELECT fate INTO v_fate FROM order_fates WHERE order_id = p_order_id;
    IF v_fate = 'cancelled' THEN
        RETURN 'cancelled ' || journal_cancel_json(p_order_id)::text;
    END IF;
    SELECT signature, outcome INTO v_live FROM broadcasts
     WHERE order_id = p_order_id AND (outcome IS NULL OR outcome = 'landed')
     ORDER BY created_at LIMIT 1;
    IF FOUND THEN
        RETURN 'conflict ' || v_live.signature || ' ' || coalesce(v_live.outcome, 'open');
    END IF;
    INSERT INTO broadcasts (signature, order_id, attempt, tx, last_valid_block_height, venue,
                            expected_out, min_out)
    VALUES (p_signature, p_order_id, p_attempt, p_tx, p_last_valid_block_height, p_venue,
            p_expected_out, p_min_out);
    UPDATE executions SET status = 'submitted', attempt = p_attempt, updated_at = now()
     WHERE order_id = p_order_id;
    RETURN 'recorded';
END
$$;
