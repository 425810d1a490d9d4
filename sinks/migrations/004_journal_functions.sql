-- record_broadcast in one round trip (it was six: BEGIN, lock, read, insert, update, COMMIT).
-- The guard is unchanged: lock the order's row, THEN look for a live transaction. In a
-- VOLATILE PL/pgSQL function under READ COMMITTED every statement takes a fresh snapshot,
-- so the read after the lock sees a broadcast committed by whoever held the lock before us;
-- a single SQL statement (CTEs share one snapshot) would not, which is why this is a function.
CREATE OR REPLACE FUNCTION journal_record_broadcast(
    p_order_id text, p_owner text, p_signature text, p_attempt integer, p_tx bytea,
    p_last_valid_block_height bigint, p_venue text, p_expected_out numeric,
    p_min_out numeric)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_owner text;
    v_live  record;
BEGIN
    SELECT owner INTO v_owner FROM executions
     WHERE order_id = p_order_id AND NOT terminal FOR UPDATE;
    IF NOT FOUND OR v_owner IS DISTINCT FROM p_owner THEN
        RETURN 'lease_lost';
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
